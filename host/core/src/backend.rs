//! The host's backend interface: what a [`Connection`](crate::Connection) calls after its checks
//! passed. Implemented here for a plugin's ABI driver object (local connections) and in
//! `remote/` for a daemon client. Conversions between ABI and native records live here, once.
//!
//! The trait is the host's own, not the SDK's `Driver` (which plugins implement): the two have
//! the same methods today, but the host's side can grow (a remote-only call, a different error
//! split) without touching the plugin-facing API.

use std::sync::Arc;

use virtplug_model::{self as model, DomainInfo, SnapshotInfo};
use virtplug_plugin_api::{
    self as abi, AbiError, DriverBox,
    abi_stable::std_types::{ROption, RResult, RStr, RString, RVec},
};

use crate::error::{BackendError, BackendResult};

/// One serving side of a connection, called only after the generic checks passed. Every method
/// defaults to `NO_SUPPORT` naming the operation, so a partial backend (a test double, a future
/// transport) implements only what it serves. Errors are what the serving side reported
/// ([`BackendError::Driver`]) or, for a remote backend, a failure of the way there
/// ([`BackendError::Remote`]).
#[allow(unused_variables, reason = "default bodies ignore their arguments")]
pub trait Backend: Send + Sync {
    /// `domain_list`.
    fn domain_list(&self) -> BackendResult<Vec<DomainInfo>> {
        Err(model::Error::no_support("domain_list").into())
    }
    /// `domain_lookup` by name.
    fn domain_lookup_by_name(&self, name: &str) -> BackendResult<DomainInfo> {
        Err(model::Error::no_support("domain_lookup").into())
    }
    /// `domain_lookup` by UUID.
    fn domain_lookup_by_uuid(&self, uuid: &str) -> BackendResult<DomainInfo> {
        Err(model::Error::no_support("domain_lookup").into())
    }
    /// `domain_define` from XML.
    fn domain_define(&self, xml: &str) -> BackendResult<DomainInfo> {
        Err(model::Error::no_support("domain_define").into())
    }
    /// `domain_undefine` with `flags::domain_undefine` bits.
    fn domain_undefine(&self, dom: &str, flags: u32) -> BackendResult<()> {
        Err(model::Error::no_support("domain_undefine").into())
    }
    /// `domain_start`.
    fn domain_start(&self, dom: &str) -> BackendResult<()> {
        Err(model::Error::no_support("domain_start").into())
    }
    /// `domain_shutdown`.
    fn domain_shutdown(&self, dom: &str) -> BackendResult<()> {
        Err(model::Error::no_support("domain_shutdown").into())
    }
    /// `domain_destroy`.
    fn domain_destroy(&self, dom: &str) -> BackendResult<()> {
        Err(model::Error::no_support("domain_destroy").into())
    }
    /// `domain_suspend`.
    fn domain_suspend(&self, dom: &str) -> BackendResult<()> {
        Err(model::Error::no_support("domain_suspend").into())
    }
    /// `domain_resume`.
    fn domain_resume(&self, dom: &str) -> BackendResult<()> {
        Err(model::Error::no_support("domain_resume").into())
    }
    /// `domain_xml` with `flags::domain_xml` bits.
    fn domain_xml(&self, dom: &str, flags: u32) -> BackendResult<String> {
        Err(model::Error::no_support("domain_xml").into())
    }
    /// `snapshot_create`; returns the snapshot's name.
    fn snapshot_create(&self, dom: &str, xml: &str, flags: u32) -> BackendResult<String> {
        Err(model::Error::no_support("snapshot_create").into())
    }
    /// `snapshot_xml` with `flags::snapshot_xml` bits.
    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<String> {
        Err(model::Error::no_support("snapshot_xml").into())
    }
    /// `snapshot_list`, unfiltered (the connection filters).
    fn snapshot_list(&self, dom: &str, flags: u32) -> BackendResult<Vec<SnapshotInfo>> {
        Err(model::Error::no_support("snapshot_list").into())
    }
    /// `snapshot_list` already filtered as the connection filters (`filter::list_domain`), when
    /// the backend gets that cheaper than the whole list: the daemon client, whose daemon filters
    /// with the same code and keeps the answer, revalidated by its ETag (shared: a kept answer is
    /// handed out without copying its 1,000 names). `None`: the connection filters
    /// [`Backend::snapshot_list`] itself.
    fn snapshot_list_filtered(&self, dom: &str, flags: u32) -> Option<BackendResult<Arc<[SnapshotInfo]>>> {
        None
    }
    /// `snapshot_lookup`.
    fn snapshot_lookup(&self, dom: &str, snap: &str) -> BackendResult<SnapshotInfo> {
        Err(model::Error::no_support("snapshot_lookup").into())
    }
    /// `snapshot_current`.
    fn snapshot_current(&self, dom: &str) -> BackendResult<Option<SnapshotInfo>> {
        Err(model::Error::no_support("snapshot_current").into())
    }
    /// `snapshot_revert` with `flags::snapshot_revert` bits.
    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<()> {
        Err(model::Error::no_support("snapshot_revert").into())
    }
    /// `snapshot_delete` with `flags::snapshot_delete` bits.
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<()> {
        Err(model::Error::no_support("snapshot_delete").into())
    }
    /// `snapshot_import`: a whole hierarchy, parents first, in one transaction.
    fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> BackendResult<()> {
        Err(model::Error::no_support("snapshot_import").into())
    }
    /// `snapshot_edit`: an atomic rename/redefine; returns the resulting name.
    fn snapshot_edit(&self, dom: &str, snap: &str, xml: &str, flags: u32) -> BackendResult<String> {
        Err(model::Error::no_support("snapshot_edit").into())
    }
    /// `domain_job_begin`: holds `dom` for `job`; returns the job id.
    fn domain_job_begin(&self, dom: &str, job: &str) -> BackendResult<String> {
        Err(model::Error::no_support("domain_job").into())
    }
    /// `domain_job_end`: releases job `job` on `dom`.
    fn domain_job_end(&self, dom: &str, job: &str) -> BackendResult<()> {
        Err(model::Error::no_support("domain_job").into())
    }
    /// `snapshot_generation`: `dom`'s snapshot tree generation. The daemon client keeps the
    /// default (`NO_SUPPORT`) for now: the HTTP API does not carry it yet.
    fn snapshot_generation(&self, dom: &str) -> BackendResult<u64> {
        Err(model::Error::no_support("snapshot_generation").into())
    }
    /// `snapshot_store`: `<store>\n<host>` when `dom`'s metadata is on a store hosts share
    /// (the daemon client asks its daemon: `GET …/snapshot-store`).
    fn snapshot_store(&self, dom: &str) -> BackendResult<String> {
        Err(model::Error::no_support("snapshot_store").into())
    }
    /// `snapshot_handover`: hands `dom`'s metadata on the shared store to host `to`.
    fn snapshot_handover(&self, dom: &str, to: &str) -> BackendResult<()> {
        Err(model::Error::no_support("snapshot_handover").into())
    }
}

/// A loaded plugin's driver object seen through the native trait.
pub(crate) struct AbiBackend(pub(crate) DriverBox);

pub(crate) fn native_error(e: AbiError) -> model::Error {
    model::Error::new(e.code, e.message.into_string())
}

fn native<T, U>(r: RResult<T, AbiError>, f: impl FnOnce(T) -> U) -> BackendResult<U> {
    r.into_result().map(f).map_err(|e| BackendError::Driver(native_error(e)))
}

pub(crate) fn native_domain(d: abi::DomainInfo) -> DomainInfo {
    DomainInfo {
        name: d.name.into_string(),
        uuid: d.uuid.into_string(),
        id: d.id,
        state: d.state,
        reason: d.reason,
        max_memory_kib: d.max_memory_kib,
        memory_kib: d.memory_kib,
        vcpus: d.vcpus,
        persistent: d.persistent,
    }
}

pub(crate) fn native_snapshot(s: abi::SnapshotInfo) -> SnapshotInfo {
    SnapshotInfo {
        name: s.name.into_string(),
        parent: s.parent.into_option().map(|p| p.into_string()),
        creation_time: s.creation_time,
        state: s.state,
        current: s.current,
        has_metadata: s.has_metadata,
        external: s.external,
        disk_only: s.disk_only,
    }
}

fn s(v: &str) -> RStr<'_> {
    RStr::from_str(v)
}

impl Backend for AbiBackend {
    fn domain_list(&self) -> BackendResult<Vec<DomainInfo>> {
        native(self.0.domain_list(), |v| v.into_iter().map(native_domain).collect())
    }
    fn domain_lookup_by_name(&self, name: &str) -> BackendResult<DomainInfo> {
        native(self.0.domain_lookup_by_name(s(name)), native_domain)
    }
    fn domain_lookup_by_uuid(&self, uuid: &str) -> BackendResult<DomainInfo> {
        native(self.0.domain_lookup_by_uuid(s(uuid)), native_domain)
    }
    fn domain_define(&self, xml: &str) -> BackendResult<DomainInfo> {
        native(self.0.domain_define(s(xml)), native_domain)
    }
    fn domain_undefine(&self, dom: &str, flags: u32) -> BackendResult<()> {
        native(self.0.domain_undefine(s(dom), flags), |()| ())
    }
    fn domain_start(&self, dom: &str) -> BackendResult<()> {
        native(self.0.domain_start(s(dom)), |()| ())
    }
    fn domain_shutdown(&self, dom: &str) -> BackendResult<()> {
        native(self.0.domain_shutdown(s(dom)), |()| ())
    }
    fn domain_destroy(&self, dom: &str) -> BackendResult<()> {
        native(self.0.domain_destroy(s(dom)), |()| ())
    }
    fn domain_suspend(&self, dom: &str) -> BackendResult<()> {
        native(self.0.domain_suspend(s(dom)), |()| ())
    }
    fn domain_resume(&self, dom: &str) -> BackendResult<()> {
        native(self.0.domain_resume(s(dom)), |()| ())
    }
    fn domain_xml(&self, dom: &str, flags: u32) -> BackendResult<String> {
        native(self.0.domain_xml(s(dom), flags), RString::into_string)
    }
    fn snapshot_create(&self, dom: &str, xml: &str, flags: u32) -> BackendResult<String> {
        native(self.0.snapshot_create(s(dom), s(xml), flags), RString::into_string)
    }
    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<String> {
        native(self.0.snapshot_xml(s(dom), s(snap), flags), RString::into_string)
    }
    fn snapshot_list(&self, dom: &str, flags: u32) -> BackendResult<Vec<SnapshotInfo>> {
        native(self.0.snapshot_list(s(dom), flags), |v| v.into_iter().map(native_snapshot).collect())
    }
    fn snapshot_lookup(&self, dom: &str, snap: &str) -> BackendResult<SnapshotInfo> {
        native(self.0.snapshot_lookup(s(dom), s(snap)), native_snapshot)
    }
    fn snapshot_current(&self, dom: &str) -> BackendResult<Option<SnapshotInfo>> {
        native(self.0.snapshot_current(s(dom)), |c| c.into_option().map(native_snapshot))
    }
    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<()> {
        native(self.0.snapshot_revert(s(dom), s(snap), flags), |()| ())
    }
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<()> {
        native(self.0.snapshot_delete(s(dom), s(snap), flags), |()| ())
    }
    fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> BackendResult<()> {
        let xmls: RVec<RString> = xmls.iter().map(|x| RString::from(x.as_str())).collect();
        let current: ROption<RString> = current.map(RString::from).into();
        native(self.0.snapshot_import(s(dom), xmls, current, flags), |()| ())
    }
    fn snapshot_edit(&self, dom: &str, snap: &str, xml: &str, flags: u32) -> BackendResult<String> {
        native(self.0.snapshot_edit(s(dom), s(snap), s(xml), flags), RString::into_string)
    }
    fn domain_job_begin(&self, dom: &str, job: &str) -> BackendResult<String> {
        native(self.0.domain_job_begin(s(dom), s(job), 0), RString::into_string)
    }
    fn domain_job_end(&self, dom: &str, job: &str) -> BackendResult<()> {
        native(self.0.domain_job_end(s(dom), s(job), 0), |()| ())
    }
    fn snapshot_generation(&self, dom: &str) -> BackendResult<u64> {
        native(self.0.snapshot_generation(s(dom), 0), |g| g)
    }
    fn snapshot_store(&self, dom: &str) -> BackendResult<String> {
        native(self.0.snapshot_store(s(dom), 0), String::from)
    }
    fn snapshot_handover(&self, dom: &str, to: &str) -> BackendResult<()> {
        native(self.0.snapshot_handover(s(dom), s(to), 0), |()| ())
    }
}
