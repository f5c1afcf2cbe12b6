//! hello-plugin: the smallest useful virtplug plugin. It serves `hello:///` with one running
//! domain, `test`, and keeps its snapshot metadata in a directory of files (one per snapshot),
//! so snapshots survive restarts: `$HELLO_STATE_DIR`, else `$XDG_STATE_HOME/virtplug-hello`,
//! else `~/.local/state/virtplug-hello`.
//!
//! The snapshot rules (parent = current, reparenting on delete, CHILDREN, CHILDREN_ONLY,
//! libvirt's listing order) come with the SDK's metadata store; the host filters listings, and
//! the SDK refuses every operation and flag this plugin does not declare, and every change on a
//! read-only connection.

use std::{
    path::PathBuf,
    sync::{Mutex, MutexGuard},
};

use virtplug_plugin_sdk::{
    Capabilities, DirBackend, DomainInfo, Driver, Error, Metadata, MetadataStore, Plugin, PluginDescriptor, Result,
    SnapshotInfo, codes, export_plugin,
    flags::{domain_state, ops, snapshot_delete, snapshot_list},
    metadata::DomainSnapshotSource,
};

const DOMAIN: &str = "test";
const UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";
/// The domain's definition, embedded in every snapshot: a snapshot dumped here and redefined
/// elsewhere needs it (libvirt refuses a new snapshot that names its domain by UUID only).
const DOMAIN_XML: &str = "<domain type='hello'>\n  <name>test</name>\n  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n  <memory unit='KiB'>1048576</memory>\n  <vcpu>1</vcpu>\n</domain>";

struct Hello;

impl Plugin for Hello {
    const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
        name: "hello",
        version: env!("CARGO_PKG_VERSION"),
        schemes: &["hello"],
        ops: ops::DOMAIN_LIST
            | ops::DOMAIN_LOOKUP
            | ops::SNAPSHOT_CREATE
            | ops::SNAPSHOT_XML
            | ops::SNAPSHOT_LIST
            | ops::SNAPSHOT_LOOKUP
            | ops::SNAPSHOT_CURRENT
            | ops::SNAPSHOT_REVERT
            | ops::SNAPSHOT_DELETE,
        caps: Capabilities {
            snapshot_create: 0,
            snapshot_revert: 0,
            snapshot_delete: snapshot_delete::CHILDREN | snapshot_delete::CHILDREN_ONLY,
            // The host does the filtering; declare the filters your records can answer.
            snapshot_list: snapshot_list::ROOTS
                | snapshot_list::LEAVES
                | snapshot_list::NO_LEAVES
                | snapshot_list::METADATA
                | snapshot_list::TOPOLOGICAL,
            snapshot_xml: 0,
            snapshot_import: 0,
            domain_undefine: 0,
            domain_xml: 0,
        },
    };

    // `read_only` needs no code here: the SDK refuses every change on a read-only connection
    // (and SECURE reads) before it calls the driver, with libvirt's text.
    fn open(uri: &str, _read_only: bool) -> Result<Box<dyn Driver>> {
        if uri != "hello:///" {
            // The host prints "no connection driver available for " first: start with the URI.
            return Err(Error::new(codes::NO_CONNECT, format!("{uri} (hello serves only hello:///)")));
        }
        let mut store = store();
        if store.is_none() {
            *store = Some(Metadata::new(DirBackend::new(state_dir(uri)?)));
        }
        Ok(Box::new(HelloDriver))
    }
}

/// Where the metadata lives.
fn state_dir(uri: &str) -> Result<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = env("HELLO_STATE_DIR") {
        return Ok(dir);
    }
    let base = env("XDG_STATE_HOME").or_else(|| env("HOME").map(|h| h.join(".local/state")));
    let base =
        base.ok_or_else(|| Error::new(codes::NO_CONNECT, format!("{uri} (neither XDG_STATE_HOME nor HOME is set)")))?;
    Ok(base.join("virtplug-hello"))
}

/// The metadata store, shared by every connection of the process (one writer per commit across
/// processes too: the directory backend locks).
static STORE: Mutex<Option<Metadata<DirBackend>>> = Mutex::new(None);

fn store() -> MutexGuard<'static, Option<Metadata<DirBackend>>> {
    // A poisoned lock only means an earlier call panicked; the SDK already reported it.
    STORE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` on the store that `open` created.
fn with_store<T>(f: impl FnOnce(&mut Metadata<DirBackend>) -> Result<T>) -> Result<T> {
    store().as_mut().map_or_else(|| Err(Error::internal("hello: no connection is open")), f)
}

struct HelloDriver;

impl HelloDriver {
    fn domain(&self, name: &str) -> Result<()> {
        if name == DOMAIN { Ok(()) } else { Err(Error::no_domain(name)) }
    }
}

fn domain_info() -> DomainInfo {
    DomainInfo {
        name: DOMAIN.into(),
        uuid: UUID.into(),
        id: 1,
        state: domain_state::RUNNING,
        reason: 1,
        max_memory_kib: 1 << 20,
        memory_kib: 1 << 20,
        vcpus: 1,
        persistent: true,
    }
}

impl Driver for HelloDriver {
    fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        Ok(vec![domain_info()])
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        self.domain(name).map(|()| domain_info())
    }

    fn domain_lookup_by_uuid(&self, uuid: &str) -> Result<DomainInfo> {
        if uuid == UUID {
            Ok(domain_info())
        } else {
            Err(Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{uuid}'")))
        }
    }

    fn snapshot_create(&self, dom: &str, text: &str, flags: u32) -> Result<String> {
        self.domain(dom)?;
        // The store fills libvirt's defaults (name, creation time, state, memory), links the
        // snapshot under the current one and makes it current, in one commit.
        let source = DomainSnapshotSource { uuid: UUID, state: domain_state::RUNNING, xml: Some(DOMAIN_XML) };
        with_store(|s| s.create(&source, text, flags)).map(|def| def.name)
    }

    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> Result<String> {
        self.domain(dom)?;
        with_store(|s| s.xml(UUID, snap, flags))
    }

    fn snapshot_list(&self, dom: &str, _flags: u32) -> Result<Vec<SnapshotInfo>> {
        self.domain(dom)?;
        with_store(|s| s.list(UUID))
    }

    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        self.domain(dom)?;
        with_store(|s| s.lookup(UUID, snap))
    }

    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        self.domain(dom)?;
        with_store(|s| s.current(UUID))
    }

    fn snapshot_revert(&self, dom: &str, snap: &str, _flags: u32) -> Result<()> {
        self.domain(dom)?;
        with_store(|s| s.set_current(UUID, snap))
    }

    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        self.domain(dom)?;
        with_store(|s| s.delete(UUID, snap, flags))
    }
}

export_plugin!(Hello);
