//! Import and migration with a plugin that redefines snapshots but declares no
//! `snapshot_import`: the host redefines parents first, the current one with CURRENT, leaves an
//! identical existing snapshot alone, refuses a different one before writing anything, and
//! rolls back what it redefined when a redefine fails. A plugin that declares neither is
//! refused by the operation's name, not by a flag mask.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::sync::atomic::{AtomicUsize, Ordering};

use virtplug_test_support::{MOCK, target_dir};

use virtplug_host::{
    Backend, BackendResult, Connection, HostError, PluginDirs, Registry, SnapshotInfo,
    flags::{ops, snapshot_delete},
    model,
};

fn registry() -> Registry {
    MOCK.built();
    Registry::discover(&PluginDirs { dirs: vec![target_dir()], beside_executable: vec![] })
}

fn native<T>(r: Result<T, HostError>) -> BackendResult<T> {
    r.map_err(|e| model::Error::new(e.code(), e.to_string()).into())
}

/// The mock without its import; `fail_at` makes that redefine (1-based) fail. `intruder`, when
/// set, is another client of the same mock host that tries to create a snapshot during the first
/// redefine; what it got is recorded in `calls`.
struct NoImport {
    inner: Connection,
    redefines: AtomicUsize,
    fail_at: usize,
    calls: Calls,
    intruder: Option<Connection>,
}

type Calls = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

impl Backend for NoImport {
    fn domain_lookup_by_name(&self, name: &str) -> BackendResult<virtplug_host::DomainInfo> {
        native(self.inner.domain_lookup(name))
    }
    fn domain_job_begin(&self, dom: &str, job: &str) -> BackendResult<String> {
        native(self.inner.domain_job_begin(dom, job))
    }
    fn domain_job_end(&self, dom: &str, job: &str) -> BackendResult<()> {
        native(self.inner.domain_job_end(dom, job))
    }
    fn snapshot_create(&self, dom: &str, xml: &str, flags: u32) -> BackendResult<String> {
        let n = self.redefines.fetch_add(1, Ordering::SeqCst) + 1;
        if let (1, Some(other)) = (n, &self.intruder) {
            let r = other.snapshot_create(dom, "<domainsnapshot><name>intruder</name></domainsnapshot>", 0);
            self.calls.lock().unwrap().push(format!("intruder {:?}", r.map_err(|e| e.code())));
        }
        if n == self.fail_at {
            return Err(model::Error::new(virtplug_host::codes::OPERATION_FAILED, "injected failure").into());
        }
        let name = native(self.inner.snapshot_create(dom, xml, flags))?;
        self.calls.lock().unwrap().push(format!("create {name} {flags}"));
        Ok(name)
    }
    fn snapshot_lookup(&self, dom: &str, snap: &str) -> BackendResult<SnapshotInfo> {
        native(self.inner.snapshot_lookup(dom, snap))
    }
    fn snapshot_list(&self, dom: &str, flags: u32) -> BackendResult<Vec<SnapshotInfo>> {
        native(self.inner.snapshot_list_unfiltered(dom, flags))
    }
    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<String> {
        native(self.inner.snapshot_xml(dom, snap, flags))
    }
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<()> {
        self.calls.lock().unwrap().push(format!("delete {snap} {flags}"));
        native(self.inner.snapshot_delete(dom, snap, flags))
    }
}

/// A mock host `a` holding a chain with a branch; returns its export.
fn source(registry: &Registry, dir: &std::path::Path) -> (Vec<String>, Option<String>) {
    let a = Connection::open(registry, &format!("mock://{}", dir.join("a").display()), false).unwrap();
    for (name, parent) in [("s1", None), ("s2", Some("s1")), ("s3", Some("s2")), ("b1", Some("s1"))] {
        if let Some(p) = parent {
            a.snapshot_revert("test", p, 0).unwrap();
        }
        a.snapshot_create("test", &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 0).unwrap();
    }
    a.snapshot_revert("test", "s3", 0).unwrap();
    let h = a.snapshot_export_hierarchy("test").unwrap();
    (h.xmls, h.current)
}

fn destination(registry: &Registry, dir: &std::path::Path, fail_at: usize, without: u64) -> (Connection, Calls) {
    with_intruder(registry, dir, fail_at, without, false)
}

fn with_intruder(
    registry: &Registry,
    dir: &std::path::Path,
    fail_at: usize,
    without: u64,
    intrude: bool,
) -> (Connection, Calls) {
    let uri = format!("mock://{}", dir.join("b").display());
    let inner = Connection::open(registry, &uri, false).unwrap();
    let mut info = inner.plugin_info().clone();
    info.ops &= !without;
    let calls = Calls::default();
    let intruder = intrude.then(|| Connection::open(registry, &uri, false).unwrap());
    let backend = NoImport { inner, redefines: AtomicUsize::new(0), fail_at, calls: calls.clone(), intruder };
    (Connection::from_backend(&uri, false, info, Box::new(backend)), calls)
}

fn tree(c: &Connection) -> Vec<(String, Option<String>, bool)> {
    let mut t: Vec<_> =
        c.snapshot_list_unfiltered("test", 0).unwrap().into_iter().map(|s| (s.name, s.parent, s.current)).collect();
    t.sort();
    t
}

#[test]
fn import_through_redefine_parents_first_with_the_current_marked() {
    let registry = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (xmls, current) = source(&registry, tmp.path());
    let (b, calls) = destination(&registry, tmp.path(), 0, ops::SNAPSHOT_IMPORT);
    b.snapshot_import("test", &xmls, current.as_deref(), 1).unwrap();
    assert!(tree(&b).is_empty(), "a dry run writes nothing");
    b.snapshot_import("test", &xmls, current.as_deref(), 0).unwrap();
    let want = vec![
        ("b1".to_owned(), Some("s1".to_owned()), false),
        ("s1".to_owned(), None, false),
        ("s2".to_owned(), Some("s1".to_owned()), false),
        ("s3".to_owned(), Some("s2".to_owned()), true),
    ];
    assert_eq!(tree(&b), want);
    // Parents first, in the model's import order (REDEFINE = 1, the current one REDEFINE | CURRENT = 3).
    assert_eq!(*calls.lock().unwrap(), ["create s1 1", "create s2 1", "create s3 3", "create b1 1"]);
    // A retry changes nothing; a different definition under an existing name is refused first.
    b.snapshot_import("test", &xmls, current.as_deref(), 0).unwrap();
    assert_eq!(tree(&b), want);
    let other = xmls[0].replace("</name>", "</name>\n  <description>other</description>");
    let e = b.snapshot_import("test", &[other], None, 0).unwrap_err();
    assert_eq!(e.to_string(), "operation failed: domain moment s1 already exists");
}

#[test]
fn a_failed_redefine_rolls_back_what_was_redefined() {
    let registry = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (xmls, current) = source(&registry, tmp.path());
    let (b, calls) = destination(&registry, tmp.path(), 3, ops::SNAPSHOT_IMPORT);
    let e = b.snapshot_import("test", &xmls, current.as_deref(), 0).unwrap_err();
    assert_eq!(e.to_string(), "operation failed: injected failure");
    assert!(tree(&b).is_empty(), "the two redefined before the failure are removed");
    let m = snapshot_delete::METADATA_ONLY;
    assert_eq!(
        *calls.lock().unwrap(),
        ["create s1 1".to_owned(), "create s2 1".to_owned(), format!("delete s2 {m}"), format!("delete s1 {m}")],
        "children first, metadata only"
    );
}

#[test]
fn an_undeclared_operation_is_refused_by_name() {
    let registry = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (xmls, current) = source(&registry, tmp.path());
    let (b, _) = destination(&registry, tmp.path(), 0, ops::SNAPSHOT_IMPORT | ops::SNAPSHOT_CREATE);
    let e = b.snapshot_import("test", &xmls, current.as_deref(), 1).unwrap_err();
    assert_eq!(e.to_string(), "this function is not supported by the connection driver: snapshot_import");
}

#[test]
fn no_other_client_writes_while_the_import_redefines() {
    let registry = registry();
    let tmp = tempfile::tempdir().unwrap();
    let (xmls, current) = source(&registry, tmp.path());
    let (b, calls) = with_intruder(&registry, tmp.path(), 0, ops::SNAPSHOT_IMPORT, true);
    b.snapshot_import("test", &xmls, current.as_deref(), 0).unwrap();
    // The other client was refused as busy (OPERATION_TIMEOUT, 68) while the import held the
    // domain's job, so nothing it wrote can be replaced by a redefine or removed by a rollback.
    assert_eq!(calls.lock().unwrap()[0], format!("intruder Err({})", virtplug_host::codes::OPERATION_TIMEOUT));
    assert!(!tree(&b).iter().any(|(n, _, _)| n == "intruder"));
    // After the import the job is released: the other client can write again.
    let c = Connection::open(&registry, &format!("mock://{}", tmp.path().join("b").display()), false).unwrap();
    c.snapshot_create("test", "<domainsnapshot><name>after</name></domainsnapshot>", 0).unwrap();
}
