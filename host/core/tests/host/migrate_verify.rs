//! The migration engine verifies before it drops: when the source changes after the export (a
//! writer that does not honour jobs, on a plugin that keeps no job record), the migration fails
//! at `verify`, rolls the destination back and leaves every snapshot of the source in place —
//! the newcomer included.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::atomic::{AtomicUsize, Ordering};

use virtplug_test_support::{MOCK, target_dir};

use virtplug_host::{
    Backend, BackendResult, Connection, HostError, PluginDirs, Registry, SnapshotInfo, codes,
    migrate::{self, Journal, Reporter, Side},
    model,
};

fn registry() -> Registry {
    MOCK.built();
    Registry::discover(&PluginDirs { dirs: vec![target_dir()], beside_executable: vec![] })
}

fn native<T>(r: Result<T, HostError>) -> BackendResult<T> {
    r.map_err(|e| model::Error::new(e.code(), e.to_string()).into())
}

/// The mock seen through a backend that keeps no job record and, on the source's second listing
/// (the verify step's re-export), lets another writer create a snapshot first.
struct Racing {
    inner: Connection,
    lists: AtomicUsize,
}

impl Backend for Racing {
    fn domain_lookup_by_name(&self, name: &str) -> BackendResult<virtplug_host::DomainInfo> {
        native(self.inner.domain_lookup(name))
    }
    fn snapshot_list(&self, dom: &str, flags: u32) -> BackendResult<Vec<SnapshotInfo>> {
        if self.lists.fetch_add(1, Ordering::SeqCst) == 1 {
            native(self.inner.snapshot_create(dom, "<domainsnapshot><name>newcomer</name></domainsnapshot>", 0))?;
        }
        native(self.inner.snapshot_list_unfiltered(dom, flags))
    }
    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<String> {
        native(self.inner.snapshot_xml(dom, snap, flags))
    }
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<()> {
        native(self.inner.snapshot_delete(dom, snap, flags))
    }
}

struct Quiet;

impl Reporter for Quiet {
    fn step(&mut self, _: &str, _: &str, _: &str) {}
    fn progress(&mut self, _: u64, _: u64) {}
    fn journal(&mut self, _: &Journal) -> virtplug_host::Result<()> {
        Ok(())
    }
}

fn names(conn: &Connection) -> Vec<String> {
    let mut n: Vec<String> = conn.snapshot_list_unfiltered("test", 0).unwrap().into_iter().map(|s| s.name).collect();
    n.sort();
    n
}

#[test]
fn a_source_changed_after_the_export_is_left_whole() {
    let registry = registry();
    let tmp = tempfile::tempdir().unwrap();
    let a_uri = format!("mock://{}", tmp.path().join("a").display());
    let b_uri = format!("mock://{}", tmp.path().join("b").display());
    let a = Connection::open(&registry, &a_uri, false).unwrap();
    for name in ["s1", "s2", "s3"] {
        a.snapshot_create("test", &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 0).unwrap();
    }
    let info = a.plugin_info().clone();
    let racing = Racing { inner: Connection::open(&registry, &a_uri, false).unwrap(), lists: AtomicUsize::new(0) };
    let from = Side::local(Connection::from_backend(&a_uri, false, info, Box::new(racing)));
    let to = Side::open(&registry, &b_uri).unwrap();

    let e = migrate::migrate(&from, &to, "m-test", "test", false, &mut Quiet).unwrap_err();
    assert_eq!(e.code(), codes::OPERATION_FAILED, "{e}");
    assert_eq!(e.to_string(), "operation failed: the source now has 4 snapshots, 3 were exported",);
    assert_eq!(names(&a), ["newcomer", "s1", "s2", "s3"], "the source keeps everything");
    assert!(names(&to.conn).is_empty(), "the destination is rolled back");
}
