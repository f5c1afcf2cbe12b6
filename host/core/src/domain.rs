//! Public domain entry points: each checks, then dispatches.

use virtplug_model::DomainInfo;

use crate::{
    connection::{Connection, check_name},
    error::Result,
    rules,
};

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-') && (c == '-' || c.is_ascii_hexdigit()))
}

impl Connection {
    /// `domain_list`: every domain.
    pub fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        self.dispatch(&rules::DOMAIN_LIST, 0, |d| d.domain_list())
    }

    /// `domain_lookup` by name, UUID or running id, as virsh accepts them.
    pub fn domain_lookup(&self, name_or_uuid: &str) -> Result<DomainInfo> {
        check_name("domain", name_or_uuid)?;
        if looks_like_uuid(name_or_uuid) {
            let uuid = name_or_uuid.to_ascii_lowercase();
            return self.dispatch(&rules::DOMAIN_LOOKUP, 0, |d| d.domain_lookup_by_uuid(&uuid));
        }
        let by_name = self.dispatch(&rules::DOMAIN_LOOKUP, 0, |d| d.domain_lookup_by_name(name_or_uuid));
        match (by_name, name_or_uuid.parse::<i32>()) {
            (Ok(info), _) => Ok(info),
            (Err(e), Ok(id)) if id >= 0 => self.domain_list()?.into_iter().find(|d| d.id == id).ok_or(e),
            (Err(e), _) => Err(e),
        }
    }

    /// `domain_lookup` by name only (libvirt's `virDomainLookupByName`: a name that looks like a
    /// UUID or an id is still only a name).
    pub fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        check_name("domain", name)?;
        self.dispatch(&rules::DOMAIN_LOOKUP, 0, |d| d.domain_lookup_by_name(name))
    }

    /// `domain_define` from domain XML.
    pub fn domain_define(&self, xml: &str) -> Result<DomainInfo> {
        self.dispatch(&rules::DOMAIN_DEFINE, 0, |d| d.domain_define(xml))
    }

    /// `domain_undefine` with `flags::domain_undefine` bits.
    pub fn domain_undefine(&self, dom: &str, flags: u32) -> Result<()> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_UNDEFINE, flags, |d| d.domain_undefine(dom, flags))
    }

    /// `domain_start`.
    pub fn domain_start(&self, dom: &str) -> Result<()> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_START, 0, |d| d.domain_start(dom))
    }

    /// `domain_shutdown`.
    pub fn domain_shutdown(&self, dom: &str) -> Result<()> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_SHUTDOWN, 0, |d| d.domain_shutdown(dom))
    }

    /// `domain_destroy`.
    pub fn domain_destroy(&self, dom: &str) -> Result<()> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_DESTROY, 0, |d| d.domain_destroy(dom))
    }

    /// `domain_suspend`.
    pub fn domain_suspend(&self, dom: &str) -> Result<()> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_SUSPEND, 0, |d| d.domain_suspend(dom))
    }

    /// `domain_resume`.
    pub fn domain_resume(&self, dom: &str) -> Result<()> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_RESUME, 0, |d| d.domain_resume(dom))
    }

    /// `domain_xml` with `flags::domain_xml` bits.
    pub fn domain_xml(&self, dom: &str, flags: u32) -> Result<String> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_XML, flags, |d| d.domain_xml(dom, flags))
    }

    /// `domain_job_begin`: holds `dom` for the multi-step job described by `job` (e.g.
    /// `migration m1 to qemu+unix:///system`) and returns the job id. Until
    /// [`Connection::domain_job_end`], or until this connection is dropped, every change to the
    /// domain through another connection or process is refused with `OPERATION_TIMEOUT`
    /// naming this job; a job whose process died is taken over by the next one. `NO_SUPPORT`
    /// from a plugin that keeps no job record.
    pub fn domain_job_begin(&self, dom: &str, job: &str) -> Result<String> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_JOB, 0, |d| d.domain_job_begin(dom, job))
    }

    /// `domain_job_end`: releases job `id` on `dom`.
    pub fn domain_job_end(&self, dom: &str, id: &str) -> Result<()> {
        check_name("domain", dom)?;
        self.dispatch(&rules::DOMAIN_JOB, 0, |d| d.domain_job_end(dom, id))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuid_detection() {
        assert!(super::looks_like_uuid("6695eb01-f6a4-8304-79aa-97f2502e193f"));
        assert!(!super::looks_like_uuid("6695eb01-f6a4-8304-79aa-97f2502e193"));
        assert!(!super::looks_like_uuid("test"));
        assert!(!super::looks_like_uuid("6695eb01xf6a4-8304-79aa-97f2502e193f"));
    }
}
