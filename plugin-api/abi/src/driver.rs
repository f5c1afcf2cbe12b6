//! The `Driver` trait object: one method per operation, all taking the domain by name.

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
};

use crate::types::{AbiError, DomainInfo, SnapshotInfo};

/// The trait object a plugin's `open()` returns.
pub type DriverBox = Driver_TO<'static, RBox<()>>;

/// One open connection of a plugin. Methods are only ever appended (after
/// `selftest_panic`, the last prefix method), each with a default body returning `NO_SUPPORT`.
///
/// The host runs every generic check before calling a method; a method must still refuse
/// flags outside its declared mask (`INVALID_ARG`) rather than ignore them.
#[sabi_trait]
pub trait Driver: Send + Sync {
    /// `domain_list`: every domain, active and inactive. Since 1.0.
    fn domain_list(&self) -> RResult<RVec<DomainInfo>, AbiError>;
    /// `domain_lookup` by name. Since 1.0.
    fn domain_lookup_by_name(&self, name: RStr<'_>) -> RResult<DomainInfo, AbiError>;
    /// `domain_lookup` by UUID. Since 1.0.
    fn domain_lookup_by_uuid(&self, uuid: RStr<'_>) -> RResult<DomainInfo, AbiError>;
    /// `domain_define` from domain XML. Since 1.0.
    fn domain_define(&self, xml: RStr<'_>) -> RResult<DomainInfo, AbiError>;
    /// `domain_undefine`. Since 1.0.
    fn domain_undefine(&self, dom: RStr<'_>, flags: u32) -> RResult<(), AbiError>;
    /// `domain_start`. Since 1.0.
    fn domain_start(&self, dom: RStr<'_>) -> RResult<(), AbiError>;
    /// `domain_shutdown`. Since 1.0.
    fn domain_shutdown(&self, dom: RStr<'_>) -> RResult<(), AbiError>;
    /// `domain_destroy`. Since 1.0.
    fn domain_destroy(&self, dom: RStr<'_>) -> RResult<(), AbiError>;
    /// `domain_suspend`. Since 1.0.
    fn domain_suspend(&self, dom: RStr<'_>) -> RResult<(), AbiError>;
    /// `domain_resume`. Since 1.0.
    fn domain_resume(&self, dom: RStr<'_>) -> RResult<(), AbiError>;
    /// `domain_xml`. Since 1.0.
    fn domain_xml(&self, dom: RStr<'_>, flags: u32) -> RResult<RString, AbiError>;
    /// `snapshot_create`: returns the new (or redefined) snapshot's name. Since 1.0.
    fn snapshot_create(&self, dom: RStr<'_>, xml: RStr<'_>, flags: u32) -> RResult<RString, AbiError>;
    /// `snapshot_xml`. Since 1.0.
    fn snapshot_xml(&self, dom: RStr<'_>, snap: RStr<'_>, flags: u32) -> RResult<RString, AbiError>;
    /// `snapshot_list`: every snapshot of the domain; the host filters and orders. Since 1.0.
    fn snapshot_list(&self, dom: RStr<'_>, flags: u32) -> RResult<RVec<SnapshotInfo>, AbiError>;
    /// `snapshot_lookup` by name. Since 1.0.
    fn snapshot_lookup(&self, dom: RStr<'_>, snap: RStr<'_>) -> RResult<SnapshotInfo, AbiError>;
    /// `snapshot_current`: the current snapshot, if any. Since 1.0.
    fn snapshot_current(&self, dom: RStr<'_>) -> RResult<ROption<SnapshotInfo>, AbiError>;
    /// `snapshot_revert`. Since 1.0.
    fn snapshot_revert(&self, dom: RStr<'_>, snap: RStr<'_>, flags: u32) -> RResult<(), AbiError>;
    /// `snapshot_delete`. Since 1.0.
    fn snapshot_delete(&self, dom: RStr<'_>, snap: RStr<'_>, flags: u32) -> RResult<(), AbiError>;
    /// `snapshot_import`: redefine every snapshot (parents first) in one transaction and mark
    /// `current`; all or nothing. Since 1.0.
    fn snapshot_import(
        &self,
        dom: RStr<'_>,
        xmls: RVec<RString>,
        current: ROption<RString>,
        flags: u32,
    ) -> RResult<(), AbiError>;
    /// `snapshot_edit`: redefine `snap` from `xml`, whose name may differ (a rename), in one
    /// transaction. `flags` are `snapshot_create` flags (REDEFINE is implied). Since 1.0.
    fn snapshot_edit(&self, dom: RStr<'_>, snap: RStr<'_>, xml: RStr<'_>, flags: u32) -> RResult<RString, AbiError>;
    /// Robustness probe for the conformance suite: an SDK plugin panics inside its wrapper and
    /// must return `INTERNAL_ERROR`. Since 1.0.
    #[sabi(last_prefix_field)]
    fn selftest_panic(&self) -> RResult<(), AbiError>;
    /// `domain_job_begin`: holds `dom` for a multi-step job described by `job` (e.g.
    /// `migration m1`) on behalf of this connection; every change to the domain through any
    /// other connection or process is refused (`OPERATION_TIMEOUT`) until `domain_job_end` or
    /// until this connection closes. Returns the job id. Appended to 1.0: a plugin built
    /// before it has no vtable entry, and the host gets this default body.
    fn domain_job_begin(&self, dom: RStr<'_>, job: RStr<'_>, flags: u32) -> RResult<RString, AbiError> {
        let _ = (dom, job, flags);
        RResult::RErr(AbiError::new(crate::codes::NO_SUPPORT, "domain_job"))
    }
    /// `domain_job_end`: releases the job `job` (an id from `domain_job_begin`) on `dom`.
    /// Appended to 1.0, like `domain_job_begin`.
    fn domain_job_end(&self, dom: RStr<'_>, job: RStr<'_>, flags: u32) -> RResult<(), AbiError> {
        let _ = (dom, job, flags);
        RResult::RErr(AbiError::new(crate::codes::NO_SUPPORT, "domain_job"))
    }
    /// `snapshot_generation`: a number that changes with every committed change to `dom`'s
    /// snapshot metadata (create, redefine, edit, delete, revert, import, a metadata drop, an
    /// undefine), by any connection or process, and never repeats a value `dom` had before (also
    /// across restarts, and after an undefine and a new define); callers cache answers about the
    /// snapshot tree keyed by it. `flags` must be 0. Appended to 1.0, like `domain_job_begin`.
    fn snapshot_generation(&self, dom: RStr<'_>, flags: u32) -> RResult<u64, AbiError> {
        let _ = (dom, flags);
        RResult::RErr(AbiError::new(crate::codes::NO_SUPPORT, "snapshot_generation"))
    }
    /// `snapshot_store`: where `dom`'s snapshot metadata lives when several hosts share it, as
    /// `<store>\n<host>`: the store's identity (the same text on every host of that store) and
    /// this connection's host on it. `NO_SUPPORT` when the metadata is this connection's own (a
    /// migration then copies it). `flags` must be 0. Appended to 1.0, like `domain_job_begin`.
    fn snapshot_store(&self, dom: RStr<'_>, flags: u32) -> RResult<RString, AbiError> {
        let _ = (dom, flags);
        RResult::RErr(AbiError::new(crate::codes::NO_SUPPORT, "snapshot_store"))
    }
    /// `snapshot_handover`: hands `dom`'s snapshot metadata on the shared store to host `to`
    /// (the `<host>` of the destination's `snapshot_store`), with no copy: only its owner may,
    /// and only while the store still counts it alive. `flags` must be 0. Appended to 1.0, like
    /// `domain_job_begin`.
    fn snapshot_handover(&self, dom: RStr<'_>, to: RStr<'_>, flags: u32) -> RResult<(), AbiError> {
        let _ = (dom, to, flags);
        RResult::RErr(AbiError::new(crate::codes::NO_SUPPORT, "snapshot_handover"))
    }
}
