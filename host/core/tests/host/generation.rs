//! `Connection::snapshot_generation`: the mock's value moves with each change made through the
//! host and stays put across reads; a backend that keeps none answers `None` (undeclared, or a
//! plugin or backend answering `NO_SUPPORT`), so callers can fall back to reading the tree.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use virtplug_host::{Backend, Connection, PluginDirs, Registry, codes, flags::ops, load_plugin};
use virtplug_test_support::{MOCK, fixture, target_dir};

fn mock_registry() -> Registry {
    MOCK.built();
    Registry::discover(&PluginDirs { dirs: vec![target_dir()], beside_executable: vec![] })
}

#[test]
fn the_mock_generation_moves_with_changes_only() {
    let registry = mock_registry();
    let tmp = tempfile::tempdir().unwrap();
    let uri = format!("mock://{}", tmp.path().display());
    let conn = Connection::open(&registry, &uri, false).unwrap();
    let ro = Connection::open(&registry, &uri, true).unwrap();
    let g0 = conn.snapshot_generation("test").unwrap().expect("the mock keeps a generation");
    assert_eq!(conn.snapshot_generation("test").unwrap(), Some(g0), "stable across reads");
    conn.snapshot_create("test", "<domainsnapshot><name>s1</name></domainsnapshot>", 0).unwrap();
    let g1 = conn.snapshot_generation("test").unwrap().unwrap();
    assert!(g1 > g0, "{g1} after {g0}");
    assert_eq!(ro.snapshot_generation("test").unwrap(), Some(g1), "a read-only connection reads it too");
    conn.snapshot_list("test", 0).unwrap();
    assert_eq!(conn.snapshot_generation("test").unwrap(), Some(g1));
    conn.snapshot_delete("test", "s1", 0).unwrap();
    let g2 = conn.snapshot_generation("test").unwrap().unwrap();
    assert!(g2 > g1, "{g2} after {g1}");
    let e = conn.snapshot_generation("nosuch").unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (codes::NO_DOMAIN, "Domain not found: no domain with matching name 'nosuch'".into())
    );
    let e = conn.snapshot_generation("").unwrap_err();
    assert_eq!(e.code(), codes::INVALID_ARG);
}

/// A backend serving nothing: every method is the trait's `NO_SUPPORT` default.
struct Nothing;

impl Backend for Nothing {}

#[test]
fn no_generation_is_none() {
    // declared, but the backend answers NO_SUPPORT (as the daemon client does for now)
    let registry = mock_registry();
    let tmp = tempfile::tempdir().unwrap();
    let mock = Connection::open(&registry, &format!("mock://{}", tmp.path().display()), false).unwrap();
    let info = mock.plugin_info().clone();
    assert_ne!(info.ops & ops::SNAPSHOT_GENERATION, 0);
    let declared = Connection::from_backend("mock:///nothing", false, info.clone(), Box::new(Nothing));
    assert_eq!(declared.snapshot_generation("test").unwrap(), None);
    // not declared: the host answers without calling
    let undeclared_info = virtplug_host::PluginInfo { ops: info.ops & !ops::SNAPSHOT_GENERATION, ..info };
    let undeclared = Connection::from_backend("mock:///nothing", false, undeclared_info, Box::new(Nothing));
    assert_eq!(undeclared.snapshot_generation("test").unwrap(), None);
    // a real plugin that does not declare it
    let mut registry = Registry::default();
    registry.add(load_plugin(&fixture("panicky").built()).expect("fixture loads"));
    let panicky = Connection::open(&registry, "panicky:///", false).unwrap();
    assert_eq!(panicky.snapshot_generation("test").unwrap(), None);
}
