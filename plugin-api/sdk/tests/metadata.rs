//! The metadata-store interface over the directory backend: libvirt's tree rules (plain create
//! defaults, listing order, reparenting, CHILDREN / CHILDREN_ONLY, REDEFINE + CURRENT checks,
//! all-or-nothing import, generations), what lands on disk, and — with the `sqlite` feature — the
//! same 600-step sequence on both backends giving the same answers and the same state.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod metadata_common;

use metadata_common::{VM, redefine_xml, snap};
use virtplug_plugin_sdk::{
    DirBackend, Metadata, MetadataStore, codes,
    flags::{domain_state as st, snapshot_create as cf, snapshot_delete},
    metadata::DomainSnapshotSource,
};

fn dir_store(root: &std::path::Path) -> Metadata<DirBackend> {
    Metadata::new(DirBackend::new(root))
}

fn names(s: &mut dyn MetadataStore) -> Vec<String> {
    s.list(VM).unwrap().into_iter().map(|i| i.name).collect()
}

/// `(code, message)` of an operation's error.
fn err<T: std::fmt::Debug>(r: virtplug_plugin_sdk::Result<T>) -> (u32, String) {
    let e = r.expect_err("the operation must fail");
    (e.code, e.message)
}

#[test]
fn plain_create_fills_libvirt_defaults_and_links_under_current() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = dir_store(dir.path());
    let dom_xml = format!("<domain type='test'><name>test</name><uuid>{VM}</uuid></domain>");
    let src = DomainSnapshotSource { uuid: VM, state: st::RUNNING, xml: Some(&dom_xml) };
    let a = s.create(&src, "<domainsnapshot><name>a</name></domainsnapshot>", 0).unwrap();
    assert_eq!((a.state, a.creation_time > 0, a.domain.as_deref()), (st::RUNNING, true, Some(dom_xml.as_str())));
    let b = s.create(&src, "<domainsnapshot/>", 0).unwrap();
    // no name: the creation time, in decimal
    assert_eq!(b.name, b.creation_time.to_string());
    let info = s.lookup(VM, &b.name).unwrap();
    assert_eq!((info.parent.as_deref(), info.current), (Some("a"), true));
    let xml = s.xml(VM, "a", 0).unwrap();
    assert!(xml.contains("<state>running</state>") && xml.contains("<memory snapshot='internal'/>"), "{xml}");
    assert_eq!(
        err(s.create(&src, "<domainsnapshot><name>a</name></domainsnapshot>", 0)),
        (codes::OPERATION_FAILED, "domain moment a already exists".into())
    );
    let off = DomainSnapshotSource { uuid: VM, state: st::SHUTOFF, xml: None };
    let c = s.create(&off, "<domainsnapshot><name>c</name></domainsnapshot>", 0).unwrap();
    assert_eq!((c.state, c.memory.unwrap().mode.as_str()), (st::SHUTOFF, "no"));
}

#[test]
fn delete_reparents_and_children_flags_follow_libvirt() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = dir_store(dir.path());
    // a -> b -> {c, d}; d current
    for (n, p) in [("a", None), ("b", Some("a")), ("c", Some("b")), ("d", Some("b"))] {
        s.redefine(VM, &redefine_xml(n, p), 0).unwrap();
    }
    s.set_current(VM, "d").unwrap();
    // newest sibling first
    assert_eq!(names(&mut s), ["a", "b", "d", "c"]);
    s.delete(VM, "b", 0).unwrap();
    // the children move as one block, in their order (newest first)
    assert_eq!(names(&mut s), ["a", "d", "c"]);
    assert_eq!(s.lookup(VM, "c").unwrap().parent.as_deref(), Some("a"));
    s.delete(VM, "a", snapshot_delete::CHILDREN_ONLY).unwrap();
    assert_eq!(names(&mut s), ["a"]);
    assert_eq!(s.current(VM).unwrap().unwrap().name, "a");
    s.delete(VM, "a", snapshot_delete::CHILDREN).unwrap();
    assert!(names(&mut s).is_empty() && s.current(VM).unwrap().is_none());
    assert_eq!(
        err(s.delete(VM, "a", 0)),
        (codes::NO_DOMAIN_SNAPSHOT, "no domain snapshot with matching name 'a'".into())
    );
}

#[test]
fn redefine_checks_change_nothing_and_current_needs_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = dir_store(dir.path());
    s.redefine(VM, &redefine_xml("a", None), 0).unwrap();
    assert!(s.current(VM).unwrap().is_none(), "a redefine without CURRENT sets no current snapshot");
    s.redefine(VM, &redefine_xml("b", Some("a")), cf::REDEFINE | cf::CURRENT).unwrap();
    assert_eq!(s.current(VM).unwrap().unwrap().name, "b");
    let before = s.generation(VM).unwrap();
    assert_eq!(
        err(s.redefine(VM, &redefine_xml("c", Some("x")), 0)),
        (codes::INVALID_ARG, "parent x for moment c not found".into())
    );
    assert_eq!(
        err(s.redefine(VM, &redefine_xml("a", Some("b")), 0)),
        (codes::INVALID_ARG, "parent b would create cycle to a".into())
    );
    assert_eq!(
        err(s.redefine(VM, &redefine_xml("a", Some("a")), 0)),
        (codes::INVALID_ARG, "cannot set moment a as its own parent".into())
    );
    let other = "<domainsnapshot><name>e</name><state>shutoff</state><creationTime>1</creationTime>\
                 <domain type='test'><name>x</name><uuid>00000000-0000-0000-0000-000000000001</uuid></domain></domainsnapshot>";
    assert_eq!(
        err(s.redefine(VM, other, 0)),
        (codes::INVALID_ARG, format!("definition for snapshot e must use uuid {VM}"))
    );
    let running = "<domainsnapshot><name>a</name><state>running</state><creationTime>1</creationTime></domainsnapshot>";
    assert_eq!(
        err(s.redefine(VM, running, 0)),
        (codes::INVALID_ARG, "cannot change between online and offline snapshot state in snapshot a".into())
    );
    assert_eq!(s.generation(VM).unwrap(), before, "refused redefines commit nothing");
    assert_eq!(names(&mut s), ["a", "b"]);
}

#[test]
fn import_is_all_or_nothing_and_replays_as_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = dir_store(dir.path());
    // children before parents: the import orders them
    let xmls = vec![redefine_xml("c", Some("b")), redefine_xml("b", Some("a")), redefine_xml("a", None)];
    s.import(VM, &xmls, Some("c"), true).unwrap();
    assert!(names(&mut s).is_empty(), "a dry run writes nothing");
    s.import(VM, &xmls, Some("c"), false).unwrap();
    assert_eq!(names(&mut s), ["a", "b", "c"]);
    let generation = s.generation(VM).unwrap();
    s.import(VM, &xmls, Some("c"), false).unwrap();
    assert_eq!(s.generation(VM).unwrap(), generation, "replaying an import changes nothing");
    // one conflicting name refuses everything, including the new ones before it
    let bad = vec![redefine_xml("d", Some("c")), redefine_xml("b", None)];
    assert_eq!(
        err(s.import(VM, &bad, None, false)),
        (codes::OPERATION_FAILED, "domain moment b already exists".into())
    );
    assert_eq!(
        err(s.import(VM, &[redefine_xml("e", None)], Some("z"), false)),
        (codes::INVALID_ARG, "current snapshot z is not in the bundle".into())
    );
    assert_eq!(names(&mut s), ["a", "b", "c"]);
    assert_eq!(s.current(VM).unwrap().unwrap().name, "c");
}

#[test]
fn one_file_per_snapshot_and_state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = dir_store(dir.path());
    for (n, p) in [("a", None), ("b/../x", Some("a"))] {
        s.create_def(VM, &snap(n, p)).unwrap();
    }
    s.delete(VM, "a", 0).unwrap();
    s.create_def(VM, &snap("c", None)).unwrap();
    let generation = s.generation(VM).unwrap();
    assert_eq!(generation, 4);
    let dom_dir = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    let mut files: Vec<String> =
        std::fs::read_dir(&dom_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    // names are hex-encoded (never paths); superseded files are gone
    assert_eq!(files, ["622f2e2e2f78.3.xml", "63.4.xml", "index", "lock"]);
    let mut again = dir_store(dir.path());
    assert_eq!(names(&mut again), ["b/../x", "c"]);
    assert_eq!(again.lookup(VM, "c").unwrap().parent.as_deref(), Some("b/../x"));
    assert_eq!(again.current(VM).unwrap().unwrap().name, "c");
    assert_eq!(again.generation(VM).unwrap(), generation);
}

/// The directory backend and the model's SQLite store give the same answer to every step of a
/// 600-step sequence and hold the same state after each.
#[cfg(feature = "sqlite")]
#[test]
fn the_directory_backend_matches_the_sqlite_store() {
    use virtplug_plugin_sdk::{SqliteMetadata, model::store::Sync};
    let dir = tempfile::tempdir().unwrap();
    let mut files = dir_store(&dir.path().join("files"));
    let mut sqlite = SqliteMetadata::open(&dir.path().join("meta.db"), Sync::Normal).unwrap();
    for k in 0..600 {
        let a = metadata_common::apply(&mut files, k);
        let b = metadata_common::apply(&mut sqlite, k);
        assert_eq!(a, b, "step {k}");
        assert_eq!(metadata_common::digest(&mut files), metadata_common::digest(&mut sqlite), "step {k}");
    }
}

/// `apply` commits several changes together: a delete with its reparenting plus a rewritten
/// survivor land as one commit (one generation step); a batch whose last change fails leaves
/// every earlier one uncommitted. Same answers on the SQLite store.
fn apply_is_one_commit(s: &mut dyn MetadataStore) {
    use virtplug_plugin_sdk::{Edit, model::tree::RedefineFlags};
    for (n, p) in [("a", None), ("b", Some("a")), ("c", Some("b"))] {
        s.redefine(VM, &redefine_xml(n, p), 0).unwrap();
    }
    let before = s.generation(VM).unwrap();
    let rewritten =
        virtplug_plugin_sdk::model::xml::SnapshotDef { description: Some("repointed".into()), ..snap("c", Some("a")) };
    let off = RedefineFlags { current: false, disk_only: false };
    s.apply(VM, &[Edit::Delete("b".into(), 0), Edit::Redefine(rewritten, off), Edit::SetCurrent("a".into())]).unwrap();
    assert_ne!(s.generation(VM).unwrap(), before);
    assert_eq!(names(s), ["a", "c"]);
    let c = s.definition(VM, "c").unwrap();
    assert_eq!((c.parent.as_deref(), c.description.as_deref()), (Some("a"), Some("repointed")));
    assert_eq!(s.current(VM).unwrap().map(|i| i.name).as_deref(), Some("a"));
    let settled = s.generation(VM).unwrap();
    assert_eq!(
        err(s.apply(VM, &[Edit::Delete("c".into(), 0), Edit::Create(snap("d", None)), Edit::SetCurrent("c".into())])),
        (codes::NO_DOMAIN_SNAPSHOT, "no domain snapshot with matching name 'c'".into())
    );
    assert_eq!((names(s), s.generation(VM).unwrap()), (vec!["a".to_owned(), "c".to_owned()], settled));
}

#[test]
fn apply_commits_its_changes_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    apply_is_one_commit(&mut dir_store(dir.path()));
    #[cfg(feature = "sqlite")]
    {
        use virtplug_plugin_sdk::{SqliteMetadata, model::domain::DomainDef, model::store::Sync};
        let mut sqlite = SqliteMetadata::open(&dir.path().join("meta.db"), Sync::Normal).unwrap();
        // the SQLite store's generation lives on the domain's row
        let def = DomainDef::parse(&format!(
            "<domain type='test'><name>vm</name><uuid>{VM}</uuid><memory>1024</memory><vcpu>1</vcpu></domain>"
        ))
        .unwrap();
        sqlite.store().define_domain(&def, st::SHUTOFF, 0, -1).unwrap();
        apply_is_one_commit(&mut sqlite);
    }
}
