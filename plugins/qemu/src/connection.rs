//! The `Driver` impl of a qemu connection: each operation dispatched to the module that owns it
//! (domain life cycle here, snapshots in [`crate::snapshot`], [`crate::redefine`] and
//! [`crate::revert`]); the state it works on is [`crate::driver`].

use std::time::Duration;

use virtplug_plugin_sdk::{
    DomainInfo, Driver, Error, Result, SnapshotInfo,
    flags::{domain_state as st, domain_undefine, domain_xml, snapshot_import},
    model::{
        domain::{self, normalize_uuid},
        store::DomainRecord,
        xml,
    },
};

use crate::{
    domain::QemuDef,
    driver::{QemuDriver, is_active, not_running, qmp_error, reason},
    process, redefine, revert, snapshot,
};

impl Driver for QemuDriver {
    fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        let mut g = self.lock()?;
        let mut out = Vec::new();
        for d in g.store.domains()? {
            let d = if self.read_only { d } else { self.refresh(&mut g, d.clone()).unwrap_or(d) };
            out.push(d.info());
        }
        Ok(out)
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        let mut g = self.lock()?;
        if self.read_only {
            return Ok(g.store.domain_by_name(name)?.info());
        }
        Ok(self.domain(&mut g, name)?.info())
    }

    fn domain_lookup_by_uuid(&self, uuid: &str) -> Result<DomainInfo> {
        let norm = normalize_uuid(uuid).unwrap_or_else(|| uuid.to_owned());
        let mut g = self.lock()?;
        let d = g.store.domain_by_uuid(&norm)?;
        if self.read_only {
            return Ok(d.info());
        }
        Ok(self.refresh(&mut g, d)?.info())
    }

    fn domain_define(&self, xml_text: &str) -> Result<DomainInfo> {
        let text = virtplug_plugin_sdk::model::domain::with_uuid(xml_text);
        let def = QemuDef::parse_definition(&text)?;
        let mut g = self.lock()?;
        g.store.write(|w| {
            w.check_define(&def.def)?;
            let existing = w.domain(&def.def.uuid).ok();
            let (state, why, id) = existing.as_ref().map_or((st::SHUTOFF, 0, -1), |d| (d.state, d.reason, d.id));
            let rec = w.define_domain(&def.def, state, why, id)?;
            w.set_domain_persistent(&rec.uuid, true)?;
            Ok(DomainRecord { persistent: true, ..rec }.info())
        })
    }

    fn domain_undefine(&self, dom: &str, flags: u32) -> Result<()> {
        let mut g = self.lock()?;
        let d = self.domain_for_change(&mut g, dom)?;
        if is_active(d.state) {
            return g.store.write(|w| w.set_domain_persistent(&d.uuid, false));
        }
        let n = g.snaps(&d.uuid)?.len();
        if n > 0 && flags & domain_undefine::SNAPSHOTS_METADATA == 0 {
            return Err(Error::operation_invalid(format!("cannot delete inactive domain with {n} snapshots")));
        }
        // the local store drops the snapshot rows with the domain; a fleet store is told to
        let edits = if g.fleet.is_some() { g.drop_all(&d.uuid)? } else { Vec::new() };
        g.commit(&d.uuid, &edits, |w| w.undefine_domain(&d.uuid))
    }

    fn domain_start(&self, dom: &str) -> Result<()> {
        let mut g = self.lock()?;
        let d = self.domain_for_change(&mut g, dom)?;
        if is_active(d.state) {
            return Err(Error::operation_invalid("domain is already running"));
        }
        let def = QemuDef::parse(&d.xml)?;
        self.launch(&mut g, &def)?;
        let started = self.qmp(&mut g, &d)?.execute("cont", None);
        if let Err(e) = started {
            self.stop_process(&mut g, &d);
            process::clear(&self.cfg, &d.uuid);
            return Err(qmp_error(dom, "cont", &e));
        }
        let id = Self::next_id(&mut g)?;
        g.store.set_domain_state(&d.uuid, st::RUNNING, reason::RUNNING_BOOTED, id)
    }

    fn domain_shutdown(&self, dom: &str) -> Result<()> {
        let mut g = self.lock()?;
        let d = self.domain_for_change(&mut g, dom)?;
        if !is_active(d.state) {
            return Err(not_running());
        }
        let grace = Duration::from_millis(self.cfg.shutdown_timeout_ms);
        let q = self.qmp(&mut g, &d)?;
        q.execute("system_powerdown", None).map_err(|e| qmp_error(dom, "system_powerdown", &e))?;
        let end = std::time::Instant::now() + grace;
        while !q.saw_shutdown() && std::time::Instant::now() < end {
            if q.status().is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop_process(&mut g, &d);
        self.mark_stopped(&mut g, &d, reason::SHUTOFF_SHUTDOWN)
    }

    fn domain_destroy(&self, dom: &str) -> Result<()> {
        let mut g = self.lock()?;
        let d = self.domain_for_change(&mut g, dom)?;
        if !is_active(d.state) {
            return Err(not_running());
        }
        self.stop_process(&mut g, &d);
        self.mark_stopped(&mut g, &d, reason::SHUTOFF_DESTROYED)
    }

    fn domain_suspend(&self, dom: &str) -> Result<()> {
        let paused =
            |s| if s == st::PAUSED { Err(Error::operation_invalid("domain is already paused")) } else { Ok(()) };
        self.simple(dom, "stop", paused, (st::PAUSED, reason::PAUSED_USER))
    }

    fn domain_resume(&self, dom: &str) -> Result<()> {
        let paused = |s| if s == st::PAUSED { Ok(()) } else { Err(Error::operation_invalid("domain is not paused")) };
        self.simple(dom, "cont", paused, (st::RUNNING, reason::RUNNING_UNPAUSED))
    }

    fn domain_xml(&self, dom: &str, flags: u32) -> Result<String> {
        let d = self.lock()?.store.domain_by_name(dom)?;
        let text = if flags & domain_xml::SECURE != 0 { d.xml } else { xml::strip_secrets(&d.xml) };
        let text = if flags & domain_xml::INACTIVE != 0 { text } else { domain::live_xml(&text, d.id) };
        Ok(format!("{}\n", text.trim_end()))
    }

    fn snapshot_create(&self, dom: &str, xml_text: &str, flags: u32) -> Result<String> {
        snapshot::create(self, dom, xml_text, flags)
    }

    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> Result<String> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.snap_xml(&d.uuid, snap, flags)
    }

    fn snapshot_list(&self, dom: &str, _flags: u32) -> Result<Vec<SnapshotInfo>> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.snaps(&d.uuid)
    }

    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.snap(&d.uuid, snap)
    }

    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.snap_current(&d.uuid)
    }

    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        revert::revert(self, dom, snap, flags)
    }

    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        snapshot::delete(self, dom, snap, flags)
    }

    fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> Result<()> {
        redefine::import(self, dom, xmls, current, flags & snapshot_import::DRY_RUN != 0)
    }

    fn snapshot_edit(&self, dom: &str, snap: &str, xml_text: &str, flags: u32) -> Result<String> {
        redefine::edit(self, dom, snap, xml_text, flags)
    }

    fn domain_job_begin(&self, dom: &str, job: &str) -> Result<String> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.store.job_begin(&d.uuid, job)
    }

    fn domain_job_end(&self, dom: &str, job: &str) -> Result<()> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.store.job_end(&d.uuid, job)
    }

    fn snapshot_generation(&self, dom: &str) -> Result<u64> {
        if let Some(watch) = self.generations.get() {
            return watch.generation_of_named(dom);
        }
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.snap_generation(&d.uuid)
    }

    /// On a fleet store: its identity and this host; the local store is this host's own.
    fn snapshot_store(&self, dom: &str) -> Result<String> {
        let mut g = self.lock()?;
        g.store.domain_by_name(dom)?;
        match &mut g.fleet {
            Some(f) => Ok(f.identity()),
            None => Err(Error::no_support("snapshot_store")),
        }
    }

    fn snapshot_handover(&self, dom: &str, to: &str) -> Result<()> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        match &mut g.fleet {
            Some(f) => f.handover(&d.uuid, to),
            None => Err(Error::no_support("snapshot_handover")),
        }
    }
}
