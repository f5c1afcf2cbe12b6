//! hello-plugin: the smallest useful virtplug plugin. It serves `hello:///` with one running
//! domain, `test`, and keeps its snapshots in memory (they last as long as the process).
//!
//! The snapshot rules (parent = current, reparenting on delete, CHILDREN, CHILDREN_ONLY) come
//! from `virtplug_plugin_sdk::model`; the host filters and orders listings, and the SDK refuses
//! every operation and flag this plugin does not declare, and every change on a read-only
//! connection.

use std::sync::{Mutex, MutexGuard};

use virtplug_plugin_sdk::{
    Capabilities, DomainInfo, Driver, Error, Plugin, PluginDescriptor, Result, SnapshotInfo, codes, export_plugin,
    flags::{domain_state, ops, snapshot_delete, snapshot_list},
    model::{tree::SnapshotTree, xml},
    now,
};

const DOMAIN: &str = "test";
const UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

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
        Ok(Box::new(HelloDriver))
    }
}

/// Snapshots (tree and definitions), shared by every connection of the process.
#[derive(Default)]
struct State {
    tree: SnapshotTree,
    defs: Vec<xml::SnapshotDef>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn state() -> MutexGuard<'static, Option<State>> {
    // A poisoned lock only means an earlier call panicked; the SDK already reported it.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
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

    fn snapshot_create(&self, dom: &str, text: &str, _flags: u32) -> Result<String> {
        self.domain(dom)?;
        let mut def = xml::parse(text, xml::ParseFlags::default())?;
        def.fill_defaults(now());
        def.state = domain_state::RUNNING;
        let mut guard = state();
        let st = guard.get_or_insert_with(State::default);
        st.tree.create(&def)?;
        def.parent = st.tree.get(&def.name)?.parent;
        let name = def.name.clone();
        st.defs.push(def);
        Ok(name)
    }

    fn snapshot_xml(&self, dom: &str, snap: &str, _flags: u32) -> Result<String> {
        self.domain(dom)?;
        let mut guard = state();
        let st = guard.get_or_insert_with(State::default);
        let info = st.tree.get(snap)?;
        let mut def = st.defs.iter().find(|d| d.name == snap).cloned().ok_or_else(|| Error::no_snapshot(snap))?;
        def.parent = info.parent;
        Ok(xml::format(&def, Some(UUID), xml::FormatFlags::default()))
    }

    fn snapshot_list(&self, dom: &str, _flags: u32) -> Result<Vec<SnapshotInfo>> {
        self.domain(dom)?;
        Ok(state().get_or_insert_with(State::default).tree.list())
    }

    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        self.domain(dom)?;
        state().get_or_insert_with(State::default).tree.get(snap)
    }

    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        self.domain(dom)?;
        let mut guard = state();
        let st = guard.get_or_insert_with(State::default);
        st.tree.current().map(str::to_owned).map(|c| st.tree.get(&c)).transpose()
    }

    fn snapshot_revert(&self, dom: &str, snap: &str, _flags: u32) -> Result<()> {
        self.domain(dom)?;
        state().get_or_insert_with(State::default).tree.revert(snap).map(drop)
    }

    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        self.domain(dom)?;
        let mut guard = state();
        let st = guard.get_or_insert_with(State::default);
        st.tree.delete(snap, flags)?;
        let tree = &st.tree;
        st.defs.retain(|d| tree.contains(&d.name));
        Ok(())
    }
}

export_plugin!(Hello);
