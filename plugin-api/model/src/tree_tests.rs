//! Unit tests of the snapshot tree: libvirt's create, delete, redefine and rename rules, and the
//! orders libvirt lists snapshots in.
use super::*;

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

fn def(name: &str, parent: Option<&str>, state: u32) -> SnapshotDef {
    SnapshotDef {
        name: name.to_owned(),
        parent: parent.map(str::to_owned),
        state,
        creation_time: 1,
        ..Default::default()
    }
}

fn redefine(t: &mut SnapshotTree, name: &str, parent: Option<&str>, current: bool) -> Result<Vec<Change>> {
    t.redefine(&def(name, parent, st::RUNNING), None, VM, RedefineFlags { current, disk_only: false })
}

/// The tree as libvirt's probes print it: `x<-parent` in topological order, then `current=`.
fn show(t: &SnapshotTree) -> String {
    let mut parts: Vec<String> =
        t.list().iter().map(|i| format!("{}<-{}", i.name, i.parent.as_deref().unwrap_or("None"))).collect();
    parts.push(format!("current={}", t.current().unwrap_or("None")));
    parts.join(" ")
}

fn chain() -> SnapshotTree {
    let mut t = SnapshotTree::new();
    for n in ["r", "a", "b", "c"] {
        t.create(&def(n, None, st::RUNNING)).unwrap();
    }
    t
}

#[test]
fn create_links_to_current_and_becomes_current() {
    let t = chain();
    assert_eq!(show(&t), "r<-None a<-r b<-a c<-b current=c");
    let mut t = t;
    let e = t.create(&def("a", None, st::RUNNING)).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::OPERATION_FAILED, "domain moment a already exists"));
}

/// The reference's §8.2 python session, printed in libvirt's topological order.
#[test]
fn reference_sequence_8_2() {
    let mut t = chain();
    redefine(&mut t, "b", Some("r"), false).unwrap();
    assert_eq!(show(&t), "r<-None b<-r c<-b a<-r current=c");
    t.revert("a").unwrap();
    assert_eq!(show(&t), "r<-None b<-r c<-b a<-r current=a");
    t.create(&def("a2", None, st::RUNNING)).unwrap();
    assert_eq!(show(&t), "r<-None b<-r c<-b a<-r a2<-a current=a2");
    t.revert("c").unwrap();
    t.delete("b", snapshot_delete::CHILDREN_ONLY).unwrap();
    assert_eq!(show(&t), "r<-None b<-r a<-r a2<-a current=b");
    t.delete("b", 0).unwrap();
    assert_eq!(show(&t), "r<-None a<-r a2<-a current=r");
    t.delete("r", 0).unwrap();
    assert_eq!(show(&t), "a<-None a2<-a current=None");
}

#[test]
fn delete_children_moves_current_to_parent() {
    let mut t = chain();
    let ch = t.delete("a", snapshot_delete::CHILDREN).unwrap();
    assert_eq!(show(&t), "r<-None current=r");
    assert!(ch.contains(&Change::Remove("c".into())) && ch.contains(&Change::Current(Some("r".into()))));
    let mut t = chain();
    t.revert("r").unwrap();
    t.delete("a", snapshot_delete::CHILDREN | snapshot_delete::METADATA_ONLY).unwrap();
    assert_eq!(show(&t), "r<-None current=r");
    t.delete("r", snapshot_delete::CHILDREN).unwrap();
    assert_eq!(show(&t), "current=None");
}

#[test]
fn delete_reparents_many_children() {
    let mut t = SnapshotTree::new();
    t.create(&def("root", None, st::RUNNING)).unwrap();
    t.create(&def("p", None, st::RUNNING)).unwrap();
    for i in 0..10 {
        redefine(&mut t, &format!("k{i}"), Some("p"), false).unwrap();
    }
    let ch = t.delete("p", 0).unwrap();
    assert_eq!(ch.iter().filter(|c| matches!(c, Change::Reparent { .. })).count(), 10);
    assert_eq!(t.children("root").unwrap().len(), 10);
    assert_eq!(t.current(), Some("root"));
}

#[test]
fn redefine_errors() {
    let mut t = chain();
    let check =
        |t: &mut SnapshotTree, d: SnapshotDef, uuid: Option<&str>, flags: RedefineFlags, code: u32, msg: &str| {
            let e = t.redefine(&d, uuid, VM, flags).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (code, msg));
        };
    let f = RedefineFlags::default();
    check(
        &mut t,
        def("b", Some("b"), st::RUNNING),
        None,
        f,
        codes::INVALID_ARG,
        "cannot set moment b as its own parent",
    );
    check(
        &mut t,
        def("b", Some("nosuch"), st::RUNNING),
        None,
        f,
        codes::INVALID_ARG,
        "parent nosuch for moment b not found",
    );
    check(&mut t, def("a", Some("c"), st::RUNNING), None, f, codes::INVALID_ARG, "parent c would create cycle to a");
    check(
        &mut t,
        def("b", Some("a"), st::RUNNING),
        Some("6695eb01-f6a4-8304-79aa-97f2502e1930"),
        f,
        codes::INVALID_ARG,
        "definition for snapshot b must use uuid 6695eb01-f6a4-8304-79aa-97f2502e193f",
    );
    check(
        &mut t,
        def("b", Some("a"), st::SHUTOFF),
        None,
        f,
        codes::INVALID_ARG,
        "cannot change between online and offline snapshot state in snapshot b",
    );
    let mut off = def("off", None, st::SHUTOFF);
    t.redefine(&off, None, VM, f).unwrap();
    off.state = st::DISK_SNAPSHOT;
    check(&mut t, off, None, f, codes::INVALID_ARG, "cannot change between disk only and full system in snapshot off");
    check(
        &mut t,
        def("n", None, st::RUNNING),
        None,
        RedefineFlags { current: false, disk_only: true },
        codes::INVALID_ARG,
        "disk-only flag for snapshot n requires disk-snapshot state",
    );
    let mut legacy = def("old", None, st::RUNNING);
    legacy.legacy_uuid = Some(VM.into());
    check(&mut t, legacy, None, f, codes::INTERNAL_ERROR, "missing domain in snapshot");
    assert!(!t.contains("old") && !t.contains("n"));
    // "off" was redefined last: the newest root
    assert_eq!(show(&t), "off<-None r<-None a<-r b<-a c<-b current=c");
}

#[test]
fn redefine_current_handling() {
    let mut t = chain();
    redefine(&mut t, "c", Some("b"), false).unwrap();
    assert_eq!(t.current(), Some("c"));
    redefine(&mut t, "a", Some("r"), true).unwrap();
    assert_eq!(t.current(), Some("a"));
    let mut fresh = SnapshotTree::new();
    redefine(&mut fresh, "x", None, false).unwrap();
    assert_eq!(fresh.current(), None);
    let again = redefine(&mut fresh, "x", None, false).unwrap();
    assert_eq!(again, vec![Change::Update("x".into())]);
}

#[test]
fn rename_keeps_links() {
    let mut t = chain();
    t.rename("b", "bee").unwrap();
    assert_eq!(show(&t), "r<-None a<-r bee<-a c<-bee current=c");
    t.rename("c", "see").unwrap();
    assert_eq!(t.current(), Some("see"));
    assert_eq!(t.rename("a", "r").unwrap_err().message, "domain moment r already exists");
}

#[test]
fn long_chain_redefine_is_linear() {
    let mut t = SnapshotTree::new();
    let mut parent: Option<String> = None;
    for i in 0..16_000 {
        let name = format!("s{i}");
        redefine(&mut t, &name, parent.as_deref(), i == 15_999).unwrap();
        parent = Some(name);
    }
    assert_eq!(t.len(), 16_000);
    let topo = t.topological_names();
    assert_eq!(topo.first().map(String::as_str), Some("s0"));
    assert_eq!(topo.last().map(String::as_str), Some("s15999"));
    // replaying the same redefines (idempotent import) stays linear: unchanged links skip the walk
    let mut parent: Option<String> = None;
    for i in 0..16_000 {
        let name = format!("s{i}");
        assert_eq!(redefine(&mut t, &name, parent.as_deref(), false).unwrap(), vec![Change::Update(name.clone())]);
        parent = Some(name);
    }
    // redefining a node with a deep subtree walks once, to the root
    let e = redefine(&mut t, "s1", Some("s15000"), false).unwrap_err();
    assert_eq!(e.message, "parent s15000 would create cycle to s1");
}

#[test]
fn from_records_round_trip() {
    let mut t = chain();
    for (n, p) in [("x", Some("r")), ("y", Some("r")), ("a", Some("r")), ("q", None)] {
        redefine(&mut t, n, p, false).unwrap();
    }
    assert_eq!(show(&t), "q<-None r<-None a<-r b<-a c<-b y<-r x<-r current=c");
    let records: Vec<(SnapshotInfo, u64)> = t
        .list()
        .into_iter()
        .rev()
        .map(|i| {
            let s = t.seq(&i.name).unwrap();
            (i, s)
        })
        .collect();
    let back = SnapshotTree::from_records(records);
    assert_eq!(show(&back), show(&t));
}

/// One step of an ordering scenario.
enum Op {
    Create(&'static str),
    Redefine(&'static str, Option<&'static str>),
    Delete(&'static str, u32),
    Revert(&'static str),
    Rename(&'static str, &'static str),
}

/// Runs `ops` on an empty tree and checks the topological listing (names only) after each
/// step that has an expectation.
fn check_order(ops: &[(Op, &str)]) {
    let mut t = SnapshotTree::new();
    for (k, (op, want)) in ops.iter().enumerate() {
        match op {
            Op::Create(n) => drop(t.create(&def(n, None, st::RUNNING)).unwrap()),
            Op::Redefine(n, p) => drop(redefine(&mut t, n, *p, false).unwrap()),
            Op::Delete(n, f) => drop(t.delete(n, *f).unwrap()),
            Op::Revert(n) => drop(t.revert(n).unwrap()),
            Op::Rename(a, b) => drop(t.rename(a, b).unwrap()),
        }
        if !want.is_empty() {
            assert_eq!(t.topological_names().join(" "), *want, "after step {k}");
        }
    }
}

/// libvirt keeps children newest first and walks depth first (reference §5.2 "Order").
#[test]
fn libvirt_orders() {
    use Op::*;
    // Appendix A: chain s1 -> s2 -> N; delete s2 moves N under s1; redefining s2 makes it
    // s1's newest child: `--topological --name` printed s1, s2, 1795681679.
    check_order(&[
        (Create("s1"), ""),
        (Create("s2"), ""),
        (Create("1795681679"), "s1 s2 1795681679"),
        (Delete("s2", 0), "s1 1795681679"),
        (Redefine("s2", Some("s1")), "s1 s2 1795681679"),
        (Redefine("s2", Some("s1")), "s1 s2 1795681679"),
    ]);
    // §12.3: A listed s1, s2, s1a, s1a1 (s2 newer than s1a); B redefined in that order lists
    // s1, s1a, s1a1, s2 — the founding workflow reverses siblings, as libvirt does.
    check_order(&[
        (Redefine("s1", None), ""),
        (Redefine("s2", Some("s1")), ""),
        (Redefine("s1a", Some("s1")), ""),
        (Redefine("s1a1", Some("s1a")), "s1 s1a s1a1 s2"),
    ]);
    // A redefine of an existing snapshot re-links it as the newest child even when its parent
    // does not change (ReplaceDef + LinkParent), subtree included; roots behave alike.
    check_order(&[
        (Redefine("r", None), ""),
        (Redefine("a", Some("r")), ""),
        (Redefine("b", Some("r")), ""),
        (Redefine("c", Some("r")), "r c b a"),
        (Redefine("a1", Some("a")), "r c b a a1"),
        (Redefine("a", Some("r")), "r a a1 c b"),
        (Redefine("q", None), "q r a a1 c b"),
        (Redefine("r", None), "r a a1 c b q"),
        (Revert("c"), "r a a1 c b q"),
        (Rename("b", "bee"), "r a a1 c bee q"),
    ]);
    // virDomainMomentMoveChildren: a delete moves the children as one block, in their order,
    // in front of the new parent's children; a deleted root's children become the newest roots.
    check_order(&[
        (Redefine("R", None), ""),
        (Redefine("x", Some("R")), ""),
        (Redefine("p", Some("R")), ""),
        (Redefine("k0", Some("p")), ""),
        (Redefine("k1", Some("p")), ""),
        (Redefine("k1c", Some("k1")), ""),
        (Redefine("k2", Some("p")), "R p k2 k1 k1c k0 x"),
        (Redefine("y", Some("R")), "R y p k2 k1 k1c k0 x"),
        (Delete("p", 0), "R k2 k1 k1c k0 y x"),
        (Redefine("A", None), "A R k2 k1 k1c k0 y x"),
        (Delete("R", snapshot_delete::METADATA_ONLY), "k2 k1 k1c k0 y x A"),
        (Delete("k1", snapshot_delete::CHILDREN_ONLY), "k2 k1 k0 y x A"),
        (Delete("y", snapshot_delete::CHILDREN), "k2 k1 k0 x A"),
    ]);
    // plain creates: each new snapshot is the newest child of the current one
    check_order(&[
        (Create("r"), ""),
        (Create("a"), ""),
        (Revert("r"), ""),
        (Create("b"), ""),
        (Revert("r"), ""),
        (Create("c"), "r c b a"),
    ]);
}

#[test]
fn children_and_descendants_are_newest_first_depth_first() {
    let mut t = SnapshotTree::new();
    for (n, p) in [("r", None), ("a", Some("r")), ("a1", Some("a")), ("b", Some("r")), ("a2", Some("a"))] {
        redefine(&mut t, n, p, false).unwrap();
    }
    assert_eq!(t.children("r").unwrap(), ["b", "a"]);
    assert_eq!(t.children("a").unwrap(), ["a2", "a1"]);
    assert_eq!(t.descendants("r").unwrap(), ["b", "a", "a2", "a1"]);
    assert_eq!(t.list().iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), ["r", "b", "a", "a2", "a1"]);
}

#[test]
fn seq_changes_are_reported_as_updates_and_reparents() {
    let mut t = SnapshotTree::new();
    for (n, p) in [("r", None), ("p", Some("r")), ("k", Some("p"))] {
        redefine(&mut t, n, p, false).unwrap();
    }
    let before = t.seq("k").unwrap();
    let ch = t.delete("p", 0).unwrap();
    assert!(t.seq("k").unwrap() > before);
    assert_eq!(ch[0], Change::Reparent { name: "k".into(), parent: Some("r".into()) });
    let before = t.seq("r").unwrap();
    assert_eq!(redefine(&mut t, "r", None, false).unwrap(), [Change::Update("r".into())]);
    assert!(t.seq("r").unwrap() > before);
}

/// Records whose parent is missing (a store written by something else, or damaged) are roots
/// of their own, among the parentless ones by age (newest first), with their subtrees; every
/// listing of the tree walks from the same roots.
#[test]
fn records_whose_parent_is_missing_are_roots() {
    let info = |name: &str, parent: Option<&str>| info_from_def(&def(name, parent, st::RUNNING));
    let records = vec![
        (info("d", Some("gone")), 0),
        (info("a", None), 1),
        (info("b", Some("gone")), 2),
        (info("c", Some("a")), 3),
        (info("e", Some("b")), 4),
    ];
    let t = SnapshotTree::from_records(records);
    let listed: Vec<String> = t.list().into_iter().map(|i| i.name).collect();
    assert_eq!(listed, ["b", "e", "a", "c", "d"]);
    assert_eq!(t.topological_names(), listed);
    // Without an orphan, the parentless snapshots alone are the roots.
    let t = SnapshotTree::from_records(vec![(info("a", None), 1), (info("c", Some("a")), 3), (info("z", None), 5)]);
    assert_eq!(t.topological_names(), ["z", "a", "c"]);
}
