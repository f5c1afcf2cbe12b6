//! The native traits a plugin implements.

use virtplug_model::{DomainInfo, Error, Result, SnapshotInfo};
use virtplug_plugin_api::Capabilities;

/// A plugin's constant self-description.
#[derive(Debug, Clone, Copy)]
pub struct PluginDescriptor {
    /// Short name, e.g. `mock`.
    pub name: &'static str,
    /// The plugin's own version (usually `env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    /// URI schemes served.
    pub schemes: &'static [&'static str],
    /// Operations implemented (`flags::ops` bits).
    pub ops: u64,
    /// Flags accepted per operation.
    pub caps: Capabilities,
}

/// A plugin: its description and how to open a connection.
pub trait Plugin: 'static {
    /// The constant description returned by `info()`.
    const DESCRIPTOR: PluginDescriptor;
    /// Opens a connection for `uri`. A `read_only` connection must refuse every change.
    fn open(uri: &str, read_only: bool) -> Result<Box<dyn Driver>>;
}

/// One open connection. Every method has a default that returns `NO_SUPPORT`; implement those
/// the descriptor declares. Domains are named by name.
#[allow(unused_variables, reason = "default bodies ignore their arguments")]
pub trait Driver: Send + Sync {
    /// `domain_list`.
    fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        Err(Error::no_support("domain_list"))
    }
    /// `domain_lookup` by name.
    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        Err(Error::no_support("domain_lookup"))
    }
    /// `domain_lookup` by UUID.
    fn domain_lookup_by_uuid(&self, uuid: &str) -> Result<DomainInfo> {
        Err(Error::no_support("domain_lookup"))
    }
    /// `domain_define`.
    fn domain_define(&self, xml: &str) -> Result<DomainInfo> {
        Err(Error::no_support("domain_define"))
    }
    /// `domain_undefine`.
    fn domain_undefine(&self, dom: &str, flags: u32) -> Result<()> {
        Err(Error::no_support("domain_undefine"))
    }
    /// `domain_start`.
    fn domain_start(&self, dom: &str) -> Result<()> {
        Err(Error::no_support("domain_start"))
    }
    /// `domain_shutdown`.
    fn domain_shutdown(&self, dom: &str) -> Result<()> {
        Err(Error::no_support("domain_shutdown"))
    }
    /// `domain_destroy`.
    fn domain_destroy(&self, dom: &str) -> Result<()> {
        Err(Error::no_support("domain_destroy"))
    }
    /// `domain_suspend`.
    fn domain_suspend(&self, dom: &str) -> Result<()> {
        Err(Error::no_support("domain_suspend"))
    }
    /// `domain_resume`.
    fn domain_resume(&self, dom: &str) -> Result<()> {
        Err(Error::no_support("domain_resume"))
    }
    /// `domain_xml`.
    fn domain_xml(&self, dom: &str, flags: u32) -> Result<String> {
        Err(Error::no_support("domain_xml"))
    }
    /// `snapshot_create`: returns the snapshot's name.
    fn snapshot_create(&self, dom: &str, xml: &str, flags: u32) -> Result<String> {
        Err(Error::no_support("snapshot_create"))
    }
    /// `snapshot_xml`.
    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> Result<String> {
        Err(Error::no_support("snapshot_xml"))
    }
    /// `snapshot_list`: every snapshot; the host filters and orders.
    fn snapshot_list(&self, dom: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
        Err(Error::no_support("snapshot_list"))
    }
    /// `snapshot_lookup`.
    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        Err(Error::no_support("snapshot_lookup"))
    }
    /// `snapshot_current`.
    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        Err(Error::no_support("snapshot_current"))
    }
    /// `snapshot_revert`.
    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        Err(Error::no_support("snapshot_revert"))
    }
    /// `snapshot_delete`.
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        Err(Error::no_support("snapshot_delete"))
    }
    /// `snapshot_import`: all or nothing.
    fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> Result<()> {
        Err(Error::no_support("snapshot_import"))
    }
    /// `snapshot_edit`: redefine `snap` from `xml` (possibly renamed) atomically.
    fn snapshot_edit(&self, dom: &str, snap: &str, xml: &str, flags: u32) -> Result<String> {
        Err(Error::no_support("snapshot_edit"))
    }
    /// `domain_job_begin`: holds `dom` for the multi-step job described by `job` on behalf of
    /// this connection and returns the job id; until `domain_job_end` (or until this
    /// connection is dropped) every change to `dom` through another connection or process must
    /// fail with `OPERATION_TIMEOUT`. Plugins on the model's store get this from
    /// `Store::job_begin`.
    fn domain_job_begin(&self, dom: &str, job: &str) -> Result<String> {
        Err(Error::no_support("domain_job"))
    }
    /// `domain_job_end`: releases job `job` (an id from `domain_job_begin`) on `dom`.
    fn domain_job_end(&self, dom: &str, job: &str) -> Result<()> {
        Err(Error::no_support("domain_job"))
    }
    /// `snapshot_generation`: a number that changes with every committed change to `dom`'s
    /// snapshot metadata, by any connection or process, and never repeats a value `dom` had
    /// before (also across restarts, and after an undefine and a new define). Plugins on the
    /// model's store get this from `Store::generation`.
    fn snapshot_generation(&self, dom: &str) -> Result<u64> {
        Err(Error::no_support("snapshot_generation"))
    }
    /// `snapshot_store`: `<store>\n<host>` when `dom`'s snapshot metadata is on a store several
    /// hosts share (the store's identity, the same on every host of it, and this connection's
    /// host on it); the default `NO_SUPPORT` means the metadata is this connection's own.
    fn snapshot_store(&self, dom: &str) -> Result<String> {
        Err(Error::no_support("snapshot_store"))
    }
    /// `snapshot_handover`: hands `dom`'s metadata on the shared store to host `to`, no copy.
    fn snapshot_handover(&self, dom: &str, to: &str) -> Result<()> {
        Err(Error::no_support("snapshot_handover"))
    }
}
