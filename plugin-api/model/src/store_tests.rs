//! Unit tests of the SQLite metadata store: schema versions, operations that mirror the tree,
//! imports and edits that are all-or-nothing, and connections that share one store.
use rusqlite::params;

use super::*;
use crate::xml::{self, ParseFlags};
use crate::{
    domain::TEST_DOMAIN_XML,
    flags::{domain_state as st, snapshot_delete},
    tree::RedefineFlags,
};

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("m.db"), Sync::Normal).unwrap();
    let d = DomainDef::parse(TEST_DOMAIN_XML).unwrap();
    s.define_domain(&d, st::RUNNING, 1, 1).unwrap();
    (dir, s)
}

fn snap(name: &str, parent: Option<&str>) -> SnapshotDef {
    SnapshotDef {
        name: name.into(),
        parent: parent.map(Into::into),
        state: st::RUNNING,
        creation_time: 1795681679,
        domain: Some(TEST_DOMAIN_XML.into()),
        ..Default::default()
    }
}

fn shape(s: &mut Store) -> String {
    let mut parts: Vec<String> = s
        .snapshots(VM)
        .unwrap()
        .iter()
        .map(|i| format!("{}<-{}", i.name, i.parent.as_deref().unwrap_or("None")))
        .collect();
    parts.push(format!("current={}", s.current(VM).unwrap().map_or("None".into(), |c| c.name)));
    parts.join(" ")
}

#[test]
fn schema_version_and_reopen() {
    let (dir, mut s) = fresh();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    s.create(VM, &snap("a", None)).unwrap();
    drop(s);
    let mut s = Store::open(&dir.path().join("m.db"), Sync::Full).unwrap();
    assert_eq!(shape(&mut s), "a<-None current=a");
    assert_eq!(s.domain_by_name("test").unwrap().info().vcpus, 2);
    assert_eq!(s.domain_by_name("nosuch").unwrap_err().code, codes::NO_DOMAIN);
}

#[test]
fn newer_schema_is_refused_older_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("new.db");
    {
        let c = Connection::open(&p).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let e = Store::open(&p, Sync::Normal).unwrap_err();
    assert_eq!(e.code, codes::OPERATION_FAILED);
    let want = format!("schema version 99, newer than the supported version {SCHEMA_VERSION}");
    assert!(e.message.contains(&want), "{}", e.message);

    let old = dir.path().join("old.db");
    {
        let c = Connection::open(&old).unwrap();
        c.execute_batch(SCHEMA_V1).unwrap();
        c.execute(
            "INSERT INTO domains (uuid, name, xml, state, reason, dom_id) VALUES (?1, 'test', ?2, 5, 0, -1)",
            params![VM, TEST_DOMAIN_XML],
        )
        .unwrap();
        c.pragma_update(None, "user_version", 1).unwrap();
    }
    let mut s = Store::open(&old, Sync::Normal).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(s.domain_by_name("test").unwrap().persistent);

    let v2 = dir.path().join("v2.db");
    {
        let c = Connection::open(&v2).unwrap();
        c.execute_batch(SCHEMA_V1).unwrap();
        c.execute_batch(MIGRATE_V1_V2).unwrap();
        c.execute(
            "INSERT INTO domains (uuid, name, xml, state, reason, dom_id) VALUES (?1, 'test', ?2, 5, 0, -1)",
            params![VM, TEST_DOMAIN_XML],
        )
        .unwrap();
        let inline = xml::format(&snap("old", None), None, FormatFlags { secure: true, ..Default::default() });
        c.execute(
            "INSERT INTO snapshots (dom_uuid, name, parent, xml, creation_time, state, external, disk_only, is_current, seq)
             VALUES (?1, 'old', NULL, ?2, 1, 1, 0, 0, 1, 0)",
            params![VM, inline],
        )
        .unwrap();
        c.pragma_update(None, "user_version", 2).unwrap();
    }
    let mut s = Store::open(&v2, Sync::Normal).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(s.snapshot_def(VM, "old").unwrap().domain.as_deref(), Some(TEST_DOMAIN_XML));
    assert_eq!(s.current(VM).unwrap().unwrap().name, "old");

    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign).unwrap().execute_batch("CREATE TABLE t (x)").unwrap();
    assert!(Store::open(&foreign, Sync::Normal).unwrap_err().message.contains("not a virtplug metadata store"));
}

#[test]
fn names_are_data() {
    let (_d, mut s) = fresh();
    let long = "x".repeat(10_000);
    let names = ["a/b", "../../etc/passwd", "..", "ctl\u{1}\u{7f}\n\t", "quote'\"<&>", long.as_str(), "ünï"];
    for n in names {
        s.create(VM, &snap(n, None)).unwrap();
    }
    for n in names {
        let xml = s.snapshot_xml(VM, n, FormatFlags { secure: true, ..Default::default() }).unwrap();
        let back = xml::parse(&xml, ParseFlags { redefine: true, ..Default::default() }).unwrap();
        // The XML drops the control characters XML cannot carry, as libvirt's formatter does.
        assert_eq!(back.name, n.replace('\u{1}', ""));
    }
    assert_eq!(s.snapshot_count(VM).unwrap(), names.len());
    s.delete(VM, "../../etc/passwd", 0).unwrap();
    assert_eq!(s.snapshot(VM, "..").unwrap().parent.as_deref(), Some("a/b"));
}

#[test]
fn operations_mirror_the_tree() {
    let (_d, mut s) = fresh();
    for n in ["r", "a", "b", "c"] {
        s.create(VM, &snap(n, None)).unwrap();
    }
    assert_eq!(shape(&mut s), "r<-None a<-r b<-a c<-b current=c");
    let mut moved = snap("b", Some("r"));
    moved.domain = None;
    s.redefine(VM, moved, RedefineFlags::default()).unwrap();
    assert_eq!(shape(&mut s), "r<-None b<-r c<-b a<-r current=c");
    assert!(s.snapshot_def(VM, "b").unwrap().domain.is_some(), "old <domain> kept");
    s.set_current(VM, "a").unwrap();
    s.create(VM, &snap("a2", None)).unwrap();
    s.set_current(VM, "c").unwrap();
    s.delete(VM, "b", snapshot_delete::CHILDREN_ONLY).unwrap();
    assert_eq!(shape(&mut s), "r<-None b<-r a<-r a2<-a current=b");
    s.delete(VM, "b", snapshot_delete::METADATA_ONLY).unwrap();
    assert_eq!(shape(&mut s), "r<-None a<-r a2<-a current=r");
    s.delete(VM, "r", 0).unwrap();
    assert_eq!(shape(&mut s), "a<-None a2<-a current=None");
    let e = s.redefine(VM, snap("a", Some("a2")), RedefineFlags::default()).unwrap_err();
    assert_eq!(e.message, "parent a2 would create cycle to a");
    let mut bad = snap("a", None);
    bad.domain = Some(TEST_DOMAIN_XML.replace("<vcpu placement='static'>2</vcpu>", "<vcpu>3</vcpu>"));
    let e = s.redefine(VM, bad, RedefineFlags::default()).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (codes::CONFIG_UNSUPPORTED, "Target domain vCPU max 3 does not match source 2")
    );
    assert_eq!(shape(&mut s), "a<-None a2<-a current=None");
}

#[test]
fn xml_output_carries_parent_and_active() {
    let (_d, mut s) = fresh();
    s.create(VM, &snap("s1", None)).unwrap();
    s.create(VM, &snap("s2", None)).unwrap();
    let x = s.snapshot_xml(VM, "s2", FormatFlags { secure: true, internal: true, current: false }).unwrap();
    assert!(x.starts_with("<domainsnapshot>\n  <name>s2</name>\n  <state>running</state>\n  <parent>\n    <name>s1</name>\n  </parent>\n  <creationTime>1795681679</creationTime>\n  <domain type='test'>\n    <name>test</name>\n"), "{x}");
    assert!(x.ends_with("  </domain>\n  <active>1</active>\n</domainsnapshot>\n"), "{x}");
}

#[test]
fn import_is_all_or_nothing_and_idempotent() {
    let (_d, mut s) = fresh();
    let mut defs: Vec<SnapshotDef> = (0..12)
        .map(|i| {
            let parent = (i > 0).then(|| format!("snap-{}", i - 1));
            snap(&format!("snap-{i}"), parent.as_deref())
        })
        .collect();
    defs.sort_by(|a, b| a.name.cmp(&b.name)); // name order: snap-10 before snap-9
    s.import(VM, defs.clone(), Some("snap-11")).unwrap();
    assert_eq!(s.snapshot_count(VM).unwrap(), 12);
    assert_eq!(s.current(VM).unwrap().unwrap().name, "snap-11");
    s.import(VM, defs.clone(), Some("snap-11")).unwrap();
    assert_eq!(s.snapshot_count(VM).unwrap(), 12);

    let (_d2, mut t) = fresh();
    let mut broken = defs;
    broken.push(snap("orphan", Some("missing")));
    let e = t.import(VM, broken, None).unwrap_err();
    assert_eq!(e.message, "parent missing for moment orphan not found");
    assert_eq!(t.snapshot_count(VM).unwrap(), 0);
}

#[test]
fn edit_renames_atomically() {
    let (_d, mut s) = fresh();
    for n in ["a", "b", "c"] {
        s.create(VM, &snap(n, None)).unwrap();
    }
    let mut d = s.snapshot_def(VM, "b").unwrap();
    d.name = "bee".into();
    d.description = Some("renamed".into());
    s.edit(VM, "b", d, RedefineFlags::default()).unwrap();
    assert_eq!(shape(&mut s), "a<-None bee<-a c<-bee current=c");
    let mut clash = s.snapshot_def(VM, "c").unwrap();
    clash.name = "a".into();
    assert_eq!(s.edit(VM, "c", clash, RedefineFlags::default()).unwrap_err().message, "domain moment a already exists");
    assert_eq!(shape(&mut s), "a<-None bee<-a c<-bee current=c");
}

#[test]
fn two_connections_share_state() {
    let (dir, mut a) = fresh();
    let mut b = Store::open(&dir.path().join("m.db"), Sync::Normal).unwrap();
    assert_eq!(b.snapshot_count(VM).unwrap(), 0);
    a.create(VM, &snap("x", None)).unwrap();
    assert_eq!(b.snapshot_count(VM).unwrap(), 1);
    b.create(VM, &snap("y", None)).unwrap();
    assert_eq!(shape(&mut a), "x<-None y<-x current=y");
}

/// Three connections opening one fresh store at once (a daemon's first clients) all succeed:
/// the switch to WAL mode once failed with "database is locked" in about one round in twenty.
#[test]
fn connections_opening_a_fresh_store_at_once_all_succeed() {
    for _ in 0..60 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        let opened: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..3).map(|_| s.spawn(|| Store::open(&path, Sync::Normal).map(drop))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in opened {
            r.unwrap();
        }
        let s = Store::open(&path, Sync::Normal).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let mode: String = s.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }
}

/// Opening a store of the current version takes no write lock: a reader (`virtplug
/// snapshot-list`) opens and reads while another connection holds a long write transaction
/// (a large import), instead of waiting for it.
#[test]
fn opening_a_current_store_waits_for_no_writer() {
    let (dir, mut s) = fresh();
    s.create(VM, &snap("a", None)).unwrap();
    let writer = rusqlite::Connection::open(dir.path().join("m.db")).unwrap();
    writer.execute_batch("BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('busy', '1');").unwrap();
    // an open that needed the write lock would fail here, "database is locked", after the busy timeout
    let mut reader = Store::open(&dir.path().join("m.db"), Sync::Normal).unwrap();
    assert_eq!(shape(&mut reader), "a<-None current=a");
    assert_eq!(reader.meta("busy").unwrap(), None, "the writer's change is not committed");
    writer.execute_batch("COMMIT").unwrap();
    assert_eq!(reader.meta("busy").unwrap().as_deref(), Some("1"));
}

#[test]
fn zero_creation_time_survives_storage() {
    let (_d, mut s) = fresh();
    let mut z = snap("zero", None);
    z.creation_time = 0;
    s.redefine(VM, z, RedefineFlags::default()).unwrap();
    assert_eq!(s.snapshot_def(VM, "zero").unwrap().creation_time, 0);
    // Written back (unlike libvirt), so the dump redefines it (issue 11.4).
    assert!(s.snapshot_xml(VM, "zero", FormatFlags::default()).unwrap().contains("<creationTime>0</creationTime>"));
}

#[test]
fn undefine_removes_metadata() {
    let (_d, mut s) = fresh();
    s.create(VM, &snap("x", None)).unwrap();
    s.undefine_domain(VM).unwrap();
    assert_eq!(s.snapshot_count(VM).unwrap(), 0);
    assert!(s.domains().unwrap().is_empty());
    // the shared domain text was collected; a new snapshot stores it again
    s.define_domain(&DomainDef::parse(TEST_DOMAIN_XML).unwrap(), st::SHUTOFF, 0, -1).unwrap();
    s.create(VM, &snap("y", None)).unwrap();
    assert_eq!(s.snapshot_def(VM, "y").unwrap().domain.as_deref(), Some(TEST_DOMAIN_XML));
}

/// Everything an import may not change: the listing (order, parents, current) and every
/// snapshot's secure XML as libvirt's internal format prints it (with `<active>`).
fn everything(s: &mut Store) -> (String, Vec<String>) {
    let flags = FormatFlags { secure: true, internal: true, current: false };
    let names: Vec<String> = s.snapshots(VM).unwrap().into_iter().map(|i| i.name).collect();
    (shape(s), names.iter().map(|n| s.snapshot_xml(VM, n, flags).unwrap()).collect())
}

/// A hierarchy as `(name, parent)` pairs, redefined in that order.
fn host_with(links: &[(&str, Option<&str>)], current: Option<&str>) -> (tempfile::TempDir, Store) {
    let (d, mut s) = fresh();
    for (n, p) in links {
        s.redefine(VM, snap(n, *p), RedefineFlags { current: current == Some(*n), disk_only: false }).unwrap();
    }
    (d, s)
}

fn defs_of(links: &[(&str, Option<&str>)]) -> Vec<SnapshotDef> {
    links.iter().map(|(n, p)| snap(n, *p)).collect()
}

/// Issue 11.2: host s0→s1→s2→s3, bundle b0→b1→b2→s1→b4: the bundle's s1 is another snapshot
/// (other parent, or other content under the same parent): refused, dry run and real run
/// alike, with libvirt's duplicate-name error, and nothing changes.
#[test]
fn import_never_replaces_a_different_snapshot() {
    let host = [("s0", None), ("s1", Some("s0")), ("s2", Some("s1")), ("s3", Some("s2"))];
    let (_d, mut s) = host_with(&host, Some("s3"));
    let before = everything(&mut s);
    let mut bundle =
        defs_of(&[("b0", None), ("b1", Some("b0")), ("b2", Some("b1")), ("s1", Some("b2")), ("b4", Some("s1"))]);
    bundle[3].description = Some("the other host's s1".into());
    let mut same_parent_other_text = defs_of(&[("s0", None), ("s1", Some("s0")), ("n", Some("s1"))]);
    same_parent_other_text[1].description = Some("other".into());
    let mut other_parent_only = defs_of(&[("b0", None), ("s1", Some("b0"))]);
    other_parent_only.reverse();
    let mut other_domain = defs_of(&[("s0", None), ("s1", Some("s0"))]);
    other_domain[1].domain = Some(TEST_DOMAIN_XML.replace("<memory unit='KiB'>", "<memory unit='KiB'>1"));
    let mut other_time = defs_of(&[("s0", None), ("s1", Some("s0"))]);
    other_time[1].creation_time = 0;
    for (k, defs) in
        [bundle, same_parent_other_text, other_parent_only, other_domain, other_time].into_iter().enumerate()
    {
        for dry in [true, false] {
            let e = if dry {
                s.dry_run(|w| w.import(VM, defs.clone(), Some(&defs[defs.len() - 1].name))).unwrap_err()
            } else {
                s.import(VM, defs.clone(), None).unwrap_err()
            };
            assert_eq!(
                (e.code, e.to_string().as_str()),
                (codes::OPERATION_FAILED, "operation failed: domain moment s1 already exists"),
                "case {k} dry {dry}"
            );
            assert_eq!(everything(&mut s), before, "case {k} dry {dry}");
        }
    }
}

/// Replaying an import changes nothing, not even which snapshot is current; an overlap with
/// identical content imports only what is new.
#[test]
fn import_is_retry_safe_and_merges_identical_overlap() {
    let links = [("s0", None), ("s1", Some("s0")), ("a", Some("s1")), ("b", Some("s1")), ("s2", Some("b"))];
    let (_d, mut s) = fresh();
    s.import(VM, defs_of(&links), Some("s2")).unwrap();
    let once = everything(&mut s);
    assert_eq!(once.0, "s0<-None s1<-s0 a<-s1 b<-s1 s2<-b current=s2");
    s.import(VM, defs_of(&links), Some("s2")).unwrap();
    s.dry_run(|w| w.import(VM, defs_of(&links), Some("s2"))).unwrap();
    assert_eq!(everything(&mut s), once);
    // the host moved on (revert); a retry leaves its current snapshot where it is
    s.set_current(VM, "a").unwrap();
    let reverted = everything(&mut s);
    s.import(VM, defs_of(&links), Some("s2")).unwrap();
    assert_eq!(everything(&mut s), reverted);
    // identical overlap plus new snapshots: only the new ones are added, the new current applies
    let more =
        [("s1", Some("s0")), ("s0", None), ("c", Some("s1")), ("s3", Some("s2")), ("s2", Some("b")), ("b", Some("s1"))];
    s.import(VM, defs_of(&more), Some("s3")).unwrap();
    assert_eq!(shape(&mut s), "s0<-None s1<-s0 c<-s1 a<-s1 b<-s1 s2<-b s3<-s2 current=s3");
    // an import whose current already exists identically does not move current
    s.set_current(VM, "c").unwrap();
    s.import(VM, defs_of(&[("s0", None), ("z", Some("s0"))]), Some("s0")).unwrap();
    assert_eq!(s.current(VM).unwrap().unwrap().name, "c");
    // a definition without <domain> matches the stored one (a redefine would keep it)
    let mut bare = snap("z", Some("s0"));
    bare.domain = None;
    s.import(VM, vec![bare], None).unwrap();
    let e = s.import(VM, defs_of(&[("s0", None)]), Some("nosuch")).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::INVALID_ARG, "current snapshot nosuch is not in the bundle"));
}

/// Export order in, same listing out: the destination lists siblings in the bundle's order.
#[test]
fn import_keeps_the_listing_order() {
    let links = [("r", None), ("a", Some("r")), ("b", Some("r")), ("b1", Some("b")), ("c", Some("r")), ("q", None)];
    let (_d, mut src) = host_with(&links, Some("b1"));
    let listing = src.snapshots(VM).unwrap();
    assert_eq!(shape(&mut src), "q<-None r<-None c<-r b<-r b1<-b a<-r current=b1");
    let defs: Vec<SnapshotDef> = listing.iter().map(|i| src.snapshot_def(VM, &i.name).unwrap()).collect();
    let (_d2, mut dst) = fresh();
    dst.import(VM, defs, Some("b1")).unwrap();
    assert_eq!(everything(&mut dst), everything(&mut src));
}

/// libvirt's order survives a reopen: redefine and delete store the new seqs they assign.
#[test]
fn listing_order_is_stored() {
    let (dir, mut s) = fresh();
    for (n, p) in [("R", None), ("x", Some("R")), ("p", Some("R")), ("k0", Some("p")), ("k1", Some("p")), ("A", None)] {
        s.redefine(VM, snap(n, p), RedefineFlags::default()).unwrap();
    }
    s.redefine(VM, snap("x", Some("R")), RedefineFlags::default()).unwrap();
    s.delete(VM, "p", 0).unwrap();
    s.redefine(VM, snap("R", None), RedefineFlags::default()).unwrap();
    let want = "R<-None k1<-R k0<-R x<-R A<-None current=None";
    assert_eq!(shape(&mut s), want);
    drop(s);
    let mut s = Store::open(&dir.path().join("m.db"), Sync::Normal).unwrap();
    assert_eq!(shape(&mut s), want);
}

/// An edit is a redefine: the edited snapshot becomes its parent's newest child (renamed or
/// not), its children keep their order.
#[test]
fn edit_relinks_like_a_redefine() {
    let (_d, mut s) = fresh();
    for (n, p) in [("r", None), ("a", Some("r")), ("a1", Some("a")), ("a2", Some("a")), ("b", Some("r"))] {
        s.redefine(VM, snap(n, p), RedefineFlags::default()).unwrap();
    }
    assert_eq!(shape(&mut s), "r<-None b<-r a<-r a2<-a a1<-a current=None");
    let mut d = s.snapshot_def(VM, "a").unwrap();
    d.description = Some("edited".into());
    s.edit(VM, "a", d.clone(), RedefineFlags::default()).unwrap();
    assert_eq!(shape(&mut s), "r<-None a<-r a2<-a a1<-a b<-r current=None");
    let b = s.snapshot_def(VM, "b").unwrap();
    s.edit(VM, "b", b, RedefineFlags::default()).unwrap();
    d.name = "aa".into();
    s.edit(VM, "a", d, RedefineFlags::default()).unwrap();
    assert_eq!(shape(&mut s), "r<-None aa<-r a2<-aa a1<-aa b<-r current=None");
}

/// What a write stores is the text `redefine::stored_xml` gives (what an import compares), and
/// its layout is kept only when that text parses back to itself.
#[test]
fn the_stored_text_is_the_stored_xml_and_its_layout_is_checked() {
    let mut plain = snap("p&<1>", Some("parent"));
    plain.description = Some("d 'q'".into());
    let mut offline_cookie = snap("c", None);
    offline_cookie.state = st::SHUTOFF;
    offline_cookie.cookie = Some("<cookie/>".into());
    let mut legacy = snap("l", None);
    legacy.domain = None;
    legacy.legacy_uuid = Some("11111111-2222-3333-4444-555555555555".into());
    for (def, spliced) in [(plain, true), (offline_cookie, false), (legacy, true)] {
        let (text, layout) = crate::store_rows::stored_text(&def, &mut Default::default());
        assert_eq!(text, crate::redefine::stored_xml(&def), "{}", def.name);
        assert_eq!(layout.is_some(), spliced, "{}", def.name);
        assert_eq!(crate::store_rows::stored_layout(&text), layout, "{}", def.name);
    }
}

/// A transaction reads its domain's row as last written, whoever wrote it: the writer keeps the
/// rows it read by name between transactions, and drops them on every write to a domain row and
/// on another connection's commit.
#[test]
fn a_writer_reads_the_domain_row_as_last_written() {
    let (dir, mut s) = fresh();
    let read = |s: &mut Store| {
        s.write(|w| w.domain_by_name("test")).map(|d| (d.state, d.reason, d.id, d.persistent, d.xml.len()))
    };
    let defined = TEST_DOMAIN_XML.len();
    assert_eq!(read(&mut s).unwrap(), (st::RUNNING, 1, 1, true, defined));
    s.set_domain_state(VM, st::PAUSED, 2, 1).unwrap();
    assert_eq!(read(&mut s).unwrap(), (st::PAUSED, 2, 1, true, defined));
    s.write(|w| w.set_domain_persistent(VM, false)).unwrap();
    assert_eq!(read(&mut s).unwrap(), (st::PAUSED, 2, 1, false, defined));
    // in the same transaction as the write
    let in_tx = s.write(|w| {
        w.domain_by_name("test")?;
        w.set_domain_state(VM, st::SHUTOFF, 1, -1)?;
        w.domain_by_name("test")
    });
    assert_eq!(in_tx.unwrap().state, st::SHUTOFF);
    // a new definition under the same uuid
    let longer = TEST_DOMAIN_XML.replace("</domain>", "  <description>longer</description>\n</domain>");
    s.define_domain(&DomainDef::parse(&longer).unwrap(), st::SHUTOFF, 1, -1).unwrap();
    assert_eq!(read(&mut s).unwrap().4, longer.len());
    // another connection's commit
    let mut other = Store::open(&dir.path().join("m.db"), Sync::Normal).unwrap();
    other.set_domain_state(VM, st::RUNNING, 1, 7).unwrap();
    assert_eq!(read(&mut s).unwrap(), (st::RUNNING, 1, 7, false, longer.len()));
    other.undefine_domain(VM).unwrap();
    assert_eq!(read(&mut s).unwrap_err().code, codes::NO_DOMAIN);
}
