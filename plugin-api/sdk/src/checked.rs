//! The native side of the guard's checks: [`open_checked`] opens a plugin's connection as a
//! native [`Driver`] that runs [`rules::check`] (the ABI guard's table, order, codes and texts)
//! before each call. The exported guard (`guard.rs`) wraps this same type, so the mapping from
//! method to rule-table entry is written once, here; a plugin's own tests use it to see what the
//! host would refuse without loading the library.

use virtplug_model::{DomainInfo, Result, SnapshotInfo};

use crate::{
    Plugin,
    driver::{Driver, PluginDescriptor},
    rules::{self, OpRules},
};

/// Opens `P`'s connection for `uri` with the generic checks applied, as the exported guard
/// applies them (without its panic handling: a panic in the plugin unwinds to the caller).
pub fn open_checked<P: Plugin>(uri: &str, read_only: bool) -> Result<Box<dyn Driver>> {
    Ok(with_checks::<P>(P::open(uri, read_only)?, read_only))
}

/// Puts the generic checks in front of a connection of `P` opened some other way (e.g. with
/// explicit credentials instead of `P::open`'s); `read_only` must be what it was opened with.
pub fn with_checks<P: Plugin>(inner: Box<dyn Driver>, read_only: bool) -> Box<dyn Driver> {
    Box::new(Checked::new(P::DESCRIPTOR, read_only, inner))
}

/// A native driver behind the rule table: every method checks, then delegates.
pub(crate) struct Checked {
    descriptor: PluginDescriptor,
    /// As given to `open`: the read-only refusals of the rule table apply.
    read_only: bool,
    inner: Box<dyn Driver>,
}

impl Checked {
    pub(crate) fn new(descriptor: PluginDescriptor, read_only: bool, inner: Box<dyn Driver>) -> Self {
        Self { descriptor, read_only, inner }
    }

    /// The six checks of `op` for `flags` on this connection (`rules::check`).
    pub(crate) fn check(&self, op: &OpRules, flags: u32) -> Result<()> {
        rules::check(op, self.read_only, self.descriptor.ops, &self.descriptor.caps, flags).map_err(Into::into)
    }

    /// `domain_job_begin` with the ABI's flags, which the native method does not carry but the
    /// rule table checks.
    pub(crate) fn job_begin(&self, dom: &str, job: &str, flags: u32) -> Result<String> {
        self.check(&rules::DOMAIN_JOB, flags)?;
        self.inner.domain_job_begin(dom, job)
    }

    /// `domain_job_end` with the ABI's flags.
    pub(crate) fn job_end(&self, dom: &str, job: &str, flags: u32) -> Result<()> {
        self.check(&rules::DOMAIN_JOB, flags)?;
        self.inner.domain_job_end(dom, job)
    }

    /// `snapshot_generation` with the ABI's flags.
    pub(crate) fn generation(&self, dom: &str, flags: u32) -> Result<u64> {
        self.check(&rules::SNAPSHOT_GENERATION, flags)?;
        self.inner.snapshot_generation(dom)
    }

    /// `snapshot_store` with the ABI's flags.
    pub(crate) fn store(&self, dom: &str, flags: u32) -> Result<String> {
        self.check(&rules::SNAPSHOT_STORE, flags)?;
        self.inner.snapshot_store(dom)
    }

    /// `snapshot_handover` with the ABI's flags.
    pub(crate) fn handover(&self, dom: &str, to: &str, flags: u32) -> Result<()> {
        self.check(&rules::SNAPSHOT_HANDOVER, flags)?;
        self.inner.snapshot_handover(dom, to)
    }
}

impl Driver for Checked {
    fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        self.check(&rules::DOMAIN_LIST, 0)?;
        self.inner.domain_list()
    }
    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        self.check(&rules::DOMAIN_LOOKUP, 0)?;
        self.inner.domain_lookup_by_name(name)
    }
    fn domain_lookup_by_uuid(&self, uuid: &str) -> Result<DomainInfo> {
        self.check(&rules::DOMAIN_LOOKUP, 0)?;
        self.inner.domain_lookup_by_uuid(uuid)
    }
    fn domain_define(&self, xml: &str) -> Result<DomainInfo> {
        self.check(&rules::DOMAIN_DEFINE, 0)?;
        self.inner.domain_define(xml)
    }
    fn domain_undefine(&self, dom: &str, flags: u32) -> Result<()> {
        self.check(&rules::DOMAIN_UNDEFINE, flags)?;
        self.inner.domain_undefine(dom, flags)
    }
    fn domain_start(&self, dom: &str) -> Result<()> {
        self.check(&rules::DOMAIN_START, 0)?;
        self.inner.domain_start(dom)
    }
    fn domain_shutdown(&self, dom: &str) -> Result<()> {
        self.check(&rules::DOMAIN_SHUTDOWN, 0)?;
        self.inner.domain_shutdown(dom)
    }
    fn domain_destroy(&self, dom: &str) -> Result<()> {
        self.check(&rules::DOMAIN_DESTROY, 0)?;
        self.inner.domain_destroy(dom)
    }
    fn domain_suspend(&self, dom: &str) -> Result<()> {
        self.check(&rules::DOMAIN_SUSPEND, 0)?;
        self.inner.domain_suspend(dom)
    }
    fn domain_resume(&self, dom: &str) -> Result<()> {
        self.check(&rules::DOMAIN_RESUME, 0)?;
        self.inner.domain_resume(dom)
    }
    fn domain_xml(&self, dom: &str, flags: u32) -> Result<String> {
        self.check(&rules::DOMAIN_XML, flags)?;
        self.inner.domain_xml(dom, flags)
    }
    fn snapshot_create(&self, dom: &str, xml: &str, flags: u32) -> Result<String> {
        self.check(&rules::SNAPSHOT_CREATE, flags)?;
        self.inner.snapshot_create(dom, xml, flags)
    }
    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> Result<String> {
        self.check(&rules::SNAPSHOT_XML, flags)?;
        self.inner.snapshot_xml(dom, snap, flags)
    }
    fn snapshot_list(&self, dom: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
        self.check(&rules::SNAPSHOT_LIST, flags)?;
        self.inner.snapshot_list(dom, flags)
    }
    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        self.check(&rules::SNAPSHOT_LOOKUP, 0)?;
        self.inner.snapshot_lookup(dom, snap)
    }
    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        self.check(&rules::SNAPSHOT_CURRENT, 0)?;
        self.inner.snapshot_current(dom)
    }
    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        self.check(&rules::SNAPSHOT_REVERT, flags)?;
        self.inner.snapshot_revert(dom, snap, flags)
    }
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        self.check(&rules::SNAPSHOT_DELETE, flags)?;
        self.inner.snapshot_delete(dom, snap, flags)
    }
    fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> Result<()> {
        self.check(&rules::SNAPSHOT_IMPORT, flags)?;
        self.inner.snapshot_import(dom, xmls, current, flags)
    }
    fn snapshot_edit(&self, dom: &str, snap: &str, xml: &str, flags: u32) -> Result<String> {
        self.check(&rules::SNAPSHOT_EDIT, flags)?;
        self.inner.snapshot_edit(dom, snap, xml, flags)
    }
    fn domain_job_begin(&self, dom: &str, job: &str) -> Result<String> {
        self.job_begin(dom, job, 0)
    }
    fn domain_job_end(&self, dom: &str, job: &str) -> Result<()> {
        self.job_end(dom, job, 0)
    }
    fn snapshot_generation(&self, dom: &str) -> Result<u64> {
        self.generation(dom, 0)
    }
    fn snapshot_store(&self, dom: &str) -> Result<String> {
        self.store(dom, 0)
    }
    fn snapshot_handover(&self, dom: &str, to: &str) -> Result<()> {
        self.handover(dom, to, 0)
    }
}

#[cfg(test)]
mod tests;
