//! virtplug's VMware vSphere driver plugin (URI scheme `vsphere`): ESXi hosts and vCenter
//! servers over the vim25 SOAP API, with a small blocking HTTP/1.1 client of its own (rustls)
//! and quick-xml.
//!
//! vSphere keeps snapshot metadata itself, so this is the "metadata-less hypervisor" of the
//! founding design: NO_METADATA is trivially true, REDEFINE and CURRENT are not declared (the
//! host refuses them before dispatch), and METADATA_ONLY deletes are a declared no-op.
//! Snapshot names are not unique in vSphere: a name that matches several snapshots is an error
//! listing their ids, and creating a duplicate name is refused.
//!
//! This crate owns the SOAP transport, the session, fault mapping and the vSphere object
//! model; it must not implement generic snapshot semantics (list filters, flag rules, XML
//! validation): those live in the host and `virtplug-model`. It depends on the SDK only.

mod conn;
mod fault;
mod http;
mod props;
mod snap;
mod soap;
mod tree;
pub mod uri;
mod vim;
mod watch;
mod xmldom;

pub use conn::Connection;
pub use fault::{Fault, Subject, to_error};

use virtplug_plugin_sdk::{
    Capabilities, DomainInfo, Driver, Plugin, PluginDescriptor, Result, SnapshotInfo, export_plugin,
    flags::{
        domain_xml, ops, snapshot_create as cf, snapshot_delete as df, snapshot_list, snapshot_revert as rf,
        snapshot_xml,
    },
};

/// Flags `snapshot_create` accepts: libvirt's esx mask (0x254). REDEFINE and CURRENT are
/// deliberately absent.
pub const CREATE_FLAGS: u32 = cf::NO_METADATA | cf::DISK_ONLY | cf::QUIESCE | cf::VALIDATE;
/// Flags `snapshot_revert` accepts (libvirt's esx driver accepts none).
pub const REVERT_FLAGS: u32 = rf::RUNNING | rf::PAUSED;
/// Flags `snapshot_delete` accepts (libvirt's esx driver refuses CHILDREN_ONLY).
pub const DELETE_FLAGS: u32 = df::CHILDREN | df::METADATA_ONLY | df::CHILDREN_ONLY;

/// The plugin.
#[derive(Debug)]
pub struct Vsphere;

impl Plugin for Vsphere {
    const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
        name: "vsphere",
        version: env!("CARGO_PKG_VERSION"),
        schemes: &["vsphere"],
        ops: ops::DOMAIN_LIST
            | ops::DOMAIN_LOOKUP
            | ops::DOMAIN_START
            | ops::DOMAIN_SHUTDOWN
            | ops::DOMAIN_DESTROY
            | ops::DOMAIN_SUSPEND
            | ops::DOMAIN_RESUME
            | ops::DOMAIN_XML
            | ops::SNAPSHOT_CREATE
            | ops::SNAPSHOT_XML
            | ops::SNAPSHOT_LIST
            | ops::SNAPSHOT_LOOKUP
            | ops::SNAPSHOT_CURRENT
            | ops::SNAPSHOT_REVERT
            | ops::SNAPSHOT_DELETE,
        caps: Capabilities {
            snapshot_create: CREATE_FLAGS,
            snapshot_revert: REVERT_FLAGS,
            snapshot_delete: DELETE_FLAGS,
            // The host filters and orders lists from the full tree this plugin returns.
            snapshot_list: snapshot_list::ALL,
            // Nothing secret in a vSphere snapshot or domain XML: SECURE changes nothing.
            snapshot_xml: snapshot_xml::SECURE,
            snapshot_import: 0,
            domain_undefine: 0,
            domain_xml: domain_xml::ALL,
        },
    };

    // The generic refusals (read-only, SECURE on read-only, libvirt's flag rules) are not
    // repeated in the connection: the host only ever calls it through the SDK's guard, which
    // applies the rule table first. Called raw (without the guard or `open_checked`), a read-only
    // connection is not refused writes.
    fn open(uri: &str, read_only: bool) -> Result<Box<dyn Driver>> {
        Ok(Box::new(Connection::open(uri, read_only)?))
    }
}

impl Driver for Connection {
    fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        Connection::domain_list(self)
    }
    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        Connection::domain_lookup_by_name(self, name)
    }
    fn domain_lookup_by_uuid(&self, uuid: &str) -> Result<DomainInfo> {
        Connection::domain_lookup_by_uuid(self, uuid)
    }
    fn domain_start(&self, dom: &str) -> Result<()> {
        Connection::domain_start(self, dom)
    }
    fn domain_shutdown(&self, dom: &str) -> Result<()> {
        Connection::domain_shutdown(self, dom)
    }
    fn domain_destroy(&self, dom: &str) -> Result<()> {
        Connection::domain_destroy(self, dom)
    }
    fn domain_suspend(&self, dom: &str) -> Result<()> {
        Connection::domain_suspend(self, dom)
    }
    fn domain_resume(&self, dom: &str) -> Result<()> {
        Connection::domain_resume(self, dom)
    }
    fn domain_xml(&self, dom: &str, _flags: u32) -> Result<String> {
        Connection::domain_xml(self, dom)
    }
    fn snapshot_create(&self, dom: &str, xml: &str, flags: u32) -> Result<String> {
        Connection::snapshot_create(self, dom, xml, flags)
    }
    fn snapshot_xml(&self, dom: &str, snap: &str, _flags: u32) -> Result<String> {
        Connection::snapshot_xml(self, dom, snap)
    }
    fn snapshot_list(&self, dom: &str, _flags: u32) -> Result<Vec<SnapshotInfo>> {
        Connection::snapshot_list(self, dom)
    }
    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        Connection::snapshot_lookup(self, dom, snap)
    }
    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        Connection::snapshot_current(self, dom)
    }
    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        Connection::snapshot_revert(self, dom, snap, flags)
    }
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        Connection::snapshot_delete(self, dom, snap, flags)
    }
}

export_plugin!(Vsphere);
