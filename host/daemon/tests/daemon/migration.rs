//! Two daemons on this machine (different sockets and state dirs): the supervised migration of
//! a snapshot hierarchy end to end on the mock, its dry run, and a refused migration that must
//! leave both hosts as they were.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use crate::common::{Connect, Daemon, check_tree, create, plugin_dir};
use virtplug_host::{
    flags::{snapshot_create, snapshot_list, snapshot_xml},
    remote::{
        Client,
        wire::{MigrationRequest, TaskState},
    },
};

fn build_tree(conn: &virtplug_host::Connection) {
    // s1 ─┬─ s1a ── s1a1
    //     └─ s2 (current after we revert nothing: created last under s1)
    create(conn, "s1");
    create(conn, "s1a");
    create(conn, "s1a1");
    conn.snapshot_revert("test", "s1", 0).unwrap();
    create(conn, "s2");
    for i in 0..12 {
        create(conn, &format!("snap-{i}"));
    }
    conn.snapshot_revert("test", "s1a", 0).unwrap();
}

fn xmls(conn: &virtplug_host::Connection) -> Vec<(String, String)> {
    let list = conn.snapshot_list("test", snapshot_list::TOPOLOGICAL).unwrap();
    list.iter().map(|s| (s.name.clone(), conn.snapshot_xml("test", &s.name, snapshot_xml::SECURE).unwrap())).collect()
}

fn migrate(a: &Daemon, b: &Daemon, dry_run: bool) -> virtplug_host::remote::wire::TaskJson {
    let client = Client::from_uri(&a.uri(), false).unwrap();
    let task = client.start_migration(&MigrationRequest { domain: "test".into(), to: b.uri(), dry_run }).unwrap();
    let mut seen = Vec::new();
    let done = client.wait_task(task.id, |t| seen.push(t.clone())).unwrap();
    assert!(!seen.is_empty());
    done
}

#[test]
fn two_daemons_migrate_a_hierarchy() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
    let b = Daemon::start(&tmp.path().join("b"), &plugins, &[]);
    let (ca, cb) = (a.connect(), b.connect());
    build_tree(&ca);
    let tree_a = check_tree(&ca);
    let xml_a = xmls(&ca);
    let current_a = ca.snapshot_current("test").unwrap().map(|s| s.name);
    assert_eq!(current_a.as_deref(), Some("s1a"));

    // Dry run: every step checked, nothing changed anywhere.
    let dry = migrate(&a, &b, true);
    assert_eq!(dry.state, TaskState::Succeeded, "{dry:?}");
    assert_eq!(
        dry.steps.iter().map(|s| s.state.as_str()).collect::<Vec<_>>(),
        ["done", "done", "skipped", "skipped", "skipped"]
    );
    assert_eq!(check_tree(&ca), tree_a);
    assert!(check_tree(&cb).is_empty());

    // The real migration.
    let done = migrate(&a, &b, false);
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    assert!(done.steps.iter().all(|s| s.state == "done"), "{done:?}");
    assert_eq!(check_tree(&cb), tree_a, "B's tree equals A's");
    assert_eq!(xmls(&cb), xml_a, "B's XML equals A's");
    assert_eq!(cb.snapshot_current("test").unwrap().map(|s| s.name), current_a);
    let left_on_a = ca.snapshot_list("test", snapshot_list::METADATA).unwrap();
    assert!(left_on_a.is_empty(), "A keeps no metadata: {left_on_a:?}");

    // Back again, through the CLI-facing URIs of the other daemon.
    let back = migrate(&b, &a, false);
    assert_eq!(back.state, TaskState::Succeeded, "{back:?}");
    assert_eq!(check_tree(&ca), tree_a);
}

#[test]
fn a_refused_migration_changes_nothing() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
    let b = Daemon::start(&tmp.path().join("b"), &plugins, &[]);
    let (ca, cb) = (a.connect(), b.connect());
    build_tree(&ca);
    let tree_a = check_tree(&ca);
    // B already has a different `s1a1` (another parent): the import must refuse, all or nothing.
    create(&cb, "other");
    let mut x = ca.snapshot_xml("test", "s1a1", snapshot_xml::SECURE).unwrap();
    x = x.replace("<name>s1a</name>", "<name>other</name>");
    cb.snapshot_create("test", &x, snapshot_create::REDEFINE).unwrap();
    let tree_b = check_tree(&cb);

    let failed = migrate(&a, &b, false);
    assert_eq!(failed.state, TaskState::Failed, "{failed:?}");
    assert!(failed.error.is_some());
    assert_eq!(check_tree(&ca), tree_a, "A untouched");
    assert_eq!(check_tree(&cb), tree_b, "B as before");
}

/// A snapshot someone creates on B while B's import waits is theirs: the import fails on the
/// name (it committed nothing), and the migration must not "roll back" their snapshot by name.
#[test]
fn a_failed_import_leaves_what_others_created_on_b() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
    let b = Daemon::start(&tmp.path().join("b"), &plugins, &["--fault-import-delay-ms".into(), "1500".into()]);
    let (ca, cb) = (a.connect(), b.connect());
    build_tree(&ca);
    let tree_a = check_tree(&ca);
    let client = Client::from_uri(&a.uri(), false).unwrap();
    let task =
        client.start_migration(&MigrationRequest { domain: "test".into(), to: b.uri(), dry_run: false }).unwrap();
    crate::faults::wait_import_step(&client, task.id);
    // B's import is held open: another client of B creates one of the migrating names.
    let mine = "<domainsnapshot><name>s1a1</name><description>mine</description></domainsnapshot>";
    cb.snapshot_create("test", mine, 0).unwrap();
    let failed = client.wait_task(task.id, |_| {}).unwrap();
    assert_eq!(failed.state, TaskState::Failed, "{failed:?}");
    assert_eq!(check_tree(&ca), tree_a, "A untouched");
    assert_eq!(check_tree(&cb), [("s1a1".to_owned(), None)], "B keeps the acknowledged s1a1");
    let x = cb.snapshot_xml("test", "s1a1", 0).unwrap();
    assert!(x.contains("<description>mine</description>"), "{x}");
}
