//! The qemu connection: domain life cycle and state tracking. Snapshot operations are in
//! [`crate::snapshot`]. One operation at a time per connection (one mutex), so a snapshot job
//! never races a state change.

use std::{
    collections::HashMap,
    fs,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use virtplug_plugin_sdk::{
    DomainInfo, Driver, Error, Result, SnapshotInfo, codes,
    flags::{domain_state as st, domain_undefine, domain_xml, snapshot_import, snapshot_xml},
    model::{
        domain::normalize_uuid,
        store::{DomainRecord, Store, Sync},
        xml::{self, FormatFlags},
    },
};

use crate::{
    domain::QemuDef,
    process::{self, Runtime},
    qmp::{Qmp, QmpError},
    snapshot,
    uri::Config,
};

pub(crate) use virtplug_plugin_sdk::flags::domain_state_reason as reason;

/// Mutable connection state: the metadata store and open QMP connections by domain UUID.
#[derive(Debug)]
pub(crate) struct Inner {
    pub store: Store,
    pub qmp: HashMap<String, Qmp>,
}

/// One open `qemu:` connection.
#[derive(Debug)]
pub struct QemuDriver {
    pub(crate) cfg: Config,
    read_only: bool,
    inner: Mutex<Inner>,
}

pub(crate) fn is_active(state: u32) -> bool {
    state != st::SHUTOFF && state != st::NOSTATE
}

pub(crate) fn not_running() -> Error {
    Error::operation_invalid("domain is not running")
}

/// A QMP failure as a libvirt error for `dom`.
pub(crate) fn qmp_error(dom: &str, what: &str, e: &QmpError) -> Error {
    match e {
        QmpError::Timeout => {
            Error::new(codes::OPERATION_FAILED, format!("{what}: QMP monitor of domain '{dom}' did not answer in time"))
        }
        QmpError::Gone(why) => Error::new(
            codes::OPERATION_FAILED,
            format!("{what}: QMP monitor of domain '{dom}' is gone ({why}); qemu exited"),
        ),
        QmpError::Command(d) => Error::new(codes::OPERATION_FAILED, format!("{what}: {d}")),
    }
}

fn random_uuid() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    normalize_uuid(&h).unwrap_or(h)
}

impl QemuDriver {
    /// Opens the store under `cfg.lib_dir` and reconnects to every domain the store believes
    /// active: live ones get their state from QMP, dead ones are marked shut off (crashed).
    /// A read-only connection creates nothing: it reads an existing store, or serves an empty
    /// host (no store yet means no domain) from memory.
    pub fn open(cfg: Config, read_only: bool) -> Result<Self> {
        let db = cfg.lib_dir.join("virtplug-qemu.db");
        let store = if read_only {
            match Store::open_read_only(&db)? {
                Some(store) => store,
                None => Store::open(std::path::Path::new(":memory:"), Sync::Normal)?,
            }
        } else {
            for d in [&cfg.lib_dir, &cfg.run_dir] {
                fs::create_dir_all(d).map_err(|e| {
                    Error::new(
                        codes::NO_CONNECT,
                        format!("qemu state directory '{}' cannot be created: {e}", d.display()),
                    )
                })?;
            }
            Store::open(&db, Sync::Normal)?
        };
        let drv = Self { cfg, read_only, inner: Mutex::new(Inner { store, qmp: HashMap::new() }) };
        {
            let mut g = drv.lock()?;
            for d in g.store.domains()? {
                if is_active(d.state) && !read_only {
                    // an unresponsive monitor stays as it is; the next call reports it
                    let _ = drv.refresh(&mut g, d);
                }
            }
        }
        Ok(drv)
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| Error::internal("qemu driver lock poisoned"))
    }

    pub(crate) fn deny_read_only(&self, function: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::new(codes::OPERATION_DENIED, format!("read only access prevents {function}")));
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.qmp_timeout_ms)
    }

    /// The domain's QMP connection, opened from its runtime record when not cached.
    pub(crate) fn qmp<'a>(&self, g: &'a mut Inner, d: &DomainRecord) -> Result<&'a mut Qmp> {
        if !g.qmp.contains_key(&d.uuid) {
            let rt = process::load(&self.cfg, &d.uuid).ok_or_else(not_running)?;
            let q = Qmp::connect(&rt.socket, self.timeout())
                .map_err(|e| qmp_error(&d.name, "cannot connect to monitor", &e))?;
            g.qmp.insert(d.uuid.clone(), q);
        }
        g.qmp.get_mut(&d.uuid).ok_or_else(|| Error::internal("QMP connection lost"))
    }

    /// Records that `d` stopped: runtime files go; a transient domain disappears.
    pub(crate) fn mark_stopped(&self, g: &mut Inner, d: &DomainRecord, why: u32) -> Result<()> {
        g.qmp.remove(&d.uuid);
        process::clear(&self.cfg, &d.uuid);
        if d.persistent {
            g.store.set_domain_state(&d.uuid, st::SHUTOFF, why, -1)
        } else {
            g.store.undefine_domain(&d.uuid)
        }
    }

    /// Brings `d`'s state up to date from qemu (see module docs); returns the fresh record.
    pub(crate) fn refresh(&self, g: &mut Inner, d: DomainRecord) -> Result<DomainRecord> {
        if !is_active(d.state) {
            return Ok(d);
        }
        let alive = process::load(&self.cfg, &d.uuid).is_some_and(|rt| process::alive(rt.pid, &rt.uuid));
        let status =
            if alive { self.qmp(g, &d).map(|q| q.status()) } else { Ok(Err(QmpError::Gone("no process".into()))) };
        let (state, why) = match status {
            Ok(Ok(s)) => match s.as_str() {
                "running" => (st::RUNNING, if d.state == st::RUNNING { d.reason } else { reason::RUNNING_UNPAUSED }),
                "shutdown" => {
                    self.stop_process(g, &d);
                    (st::SHUTOFF, reason::SHUTOFF_SHUTDOWN)
                }
                _ => (st::PAUSED, if d.state == st::PAUSED { d.reason } else { reason::PAUSED_USER }),
            },
            Ok(Err(QmpError::Timeout)) | Err(_) if alive => {
                g.qmp.remove(&d.uuid);
                return Err(Error::new(
                    codes::OPERATION_FAILED,
                    format!("QMP monitor of domain '{}' did not answer in time", d.name),
                ));
            }
            _ => {
                let shutdown = g.qmp.get(&d.uuid).is_some_and(Qmp::saw_shutdown);
                (st::SHUTOFF, if shutdown { reason::SHUTOFF_SHUTDOWN } else { reason::SHUTOFF_CRASHED })
            }
        };
        if state == st::SHUTOFF {
            self.mark_stopped(g, &d, why)?;
            return g.store.domain_by_uuid(&d.uuid).or(Ok(DomainRecord { state, reason: why, id: -1, ..d }));
        }
        if (state, why) != (d.state, d.reason) {
            g.store.set_domain_state(&d.uuid, state, why, d.id)?;
        }
        Ok(DomainRecord { state, reason: why, ..d })
    }

    /// The domain named `name`, its state refreshed.
    pub(crate) fn domain(&self, g: &mut Inner, name: &str) -> Result<DomainRecord> {
        let d = g.store.domain_by_name(name)?;
        self.refresh(g, d)
    }

    /// [`QemuDriver::domain`] for an operation that changes it: refused at once while another
    /// job holds the domain, before any image or QMP work that its metadata commit would then
    /// be refused to record.
    pub(crate) fn domain_for_change(&self, g: &mut Inner, name: &str) -> Result<DomainRecord> {
        let d = self.domain(g, name)?;
        g.store.job_check(&d.uuid)?;
        Ok(d)
    }

    /// Ends qemu: `quit`, else SIGTERM/SIGKILL; waits until the process (and its image locks)
    /// are gone.
    pub(crate) fn stop_process(&self, g: &mut Inner, d: &DomainRecord) {
        let Some(rt) = process::load(&self.cfg, &d.uuid) else { return };
        if let Some(mut q) = g.qmp.remove(&d.uuid)
            && q.send("quit", None).is_ok()
            && process::wait_gone(rt.pid, &rt.uuid, Duration::from_secs(3))
        {
            return;
        }
        process::kill(&rt);
    }

    /// Starts qemu for `def` (paused) and connects its monitor.
    pub(crate) fn launch(&self, g: &mut Inner, def: &QemuDef) -> Result<Runtime> {
        let rt = process::spawn(&self.cfg, def)?;
        match Qmp::connect(&rt.socket, self.timeout()) {
            Ok(q) => {
                g.qmp.insert(def.def.uuid.clone(), q);
                Ok(rt)
            }
            Err(e) => {
                process::kill(&rt);
                process::clear(&self.cfg, &def.def.uuid);
                Err(qmp_error(&def.def.name, "cannot connect to monitor", &e))
            }
        }
    }

    pub(crate) fn next_id(g: &mut Inner) -> Result<i32> {
        g.store.write(|w| {
            let id: i32 = w.meta("next_id")?.and_then(|v| v.parse().ok()).unwrap_or(1);
            w.set_meta("next_id", &(id + 1).to_string())?;
            Ok(id)
        })
    }

    /// Runs a simple QMP command on a running domain and records the new state.
    fn simple(
        &self,
        function: &str,
        name: &str,
        cmd: &str,
        want: impl Fn(u32) -> Result<()>,
        new: (u32, u32),
    ) -> Result<()> {
        self.deny_read_only(function)?;
        let mut g = self.lock()?;
        let d = self.domain_for_change(&mut g, name)?;
        if !is_active(d.state) {
            return Err(not_running());
        }
        want(d.state)?;
        self.qmp(&mut g, &d)?.execute(cmd, None).map_err(|e| qmp_error(name, cmd, &e))?;
        g.store.set_domain_state(&d.uuid, new.0, new.1, d.id)
    }
}

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
        self.deny_read_only("virDomainDefineXML")?;
        let text = if xml_text.contains("<uuid>") {
            xml_text.to_owned()
        } else {
            xml_text.replacen("</name>", &format!("</name>\n  <uuid>{}</uuid>", random_uuid()), 1)
        };
        let def = QemuDef::parse(&text)?;
        let mut g = self.lock()?;
        g.store.write(|w| {
            let existing = w.domain(&def.def.uuid).ok();
            let (state, why, id) = existing.as_ref().map_or((st::SHUTOFF, 0, -1), |d| (d.state, d.reason, d.id));
            let rec = w.define_domain(&def.def, state, why, id)?;
            w.set_domain_persistent(&rec.uuid, true)?;
            Ok(DomainRecord { persistent: true, ..rec }.info())
        })
    }

    fn domain_undefine(&self, dom: &str, flags: u32) -> Result<()> {
        self.deny_read_only("virDomainUndefineFlags")?;
        let mut g = self.lock()?;
        let d = self.domain_for_change(&mut g, dom)?;
        g.store.write(|w| {
            if is_active(d.state) {
                return w.set_domain_persistent(&d.uuid, false);
            }
            let n = w.snapshot_count(&d.uuid)?;
            if n > 0 && flags & domain_undefine::SNAPSHOTS_METADATA == 0 {
                return Err(Error::operation_invalid(format!("cannot delete inactive domain with {n} snapshots")));
            }
            w.undefine_domain(&d.uuid)
        })
    }

    fn domain_start(&self, dom: &str) -> Result<()> {
        self.deny_read_only("virDomainCreate")?;
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
        self.deny_read_only("virDomainShutdown")?;
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
        self.deny_read_only("virDomainDestroy")?;
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
        self.simple("virDomainSuspend", dom, "stop", paused, (st::PAUSED, reason::PAUSED_USER))
    }

    fn domain_resume(&self, dom: &str) -> Result<()> {
        let paused = |s| if s == st::PAUSED { Ok(()) } else { Err(Error::operation_invalid("domain is not paused")) };
        self.simple("virDomainResume", dom, "cont", paused, (st::RUNNING, reason::RUNNING_UNPAUSED))
    }

    fn domain_xml(&self, dom: &str, flags: u32) -> Result<String> {
        if self.read_only && flags & domain_xml::SECURE != 0 {
            return Err(Error::new(codes::OPERATION_DENIED, "virDomainGetXMLDesc with secure flag"));
        }
        let d = self.lock()?.store.domain_by_name(dom)?;
        let text = if flags & domain_xml::SECURE != 0 { d.xml } else { xml::strip_secrets(&d.xml) };
        Ok(format!("{}\n", text.trim_end()))
    }

    fn snapshot_create(&self, dom: &str, xml_text: &str, flags: u32) -> Result<String> {
        snapshot::create(self, dom, xml_text, flags)
    }

    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> Result<String> {
        if self.read_only && flags & snapshot_xml::SECURE != 0 {
            return Err(Error::new(codes::OPERATION_DENIED, "virDomainSnapshotGetXMLDesc with secure flag"));
        }
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        let secure = flags & snapshot_xml::SECURE != 0;
        g.store.snapshot_xml(&d.uuid, snap, FormatFlags { secure, ..Default::default() })
    }

    fn snapshot_list(&self, dom: &str, _flags: u32) -> Result<Vec<SnapshotInfo>> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.store.snapshots(&d.uuid)
    }

    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.store.snapshot(&d.uuid, snap)
    }

    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.store.current(&d.uuid)
    }

    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        snapshot::revert(self, dom, snap, flags)
    }

    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        snapshot::delete(self, dom, snap, flags)
    }

    fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> Result<()> {
        snapshot::import(self, dom, xmls, current, flags & snapshot_import::DRY_RUN != 0)
    }

    fn snapshot_edit(&self, dom: &str, snap: &str, xml_text: &str, flags: u32) -> Result<String> {
        snapshot::edit(self, dom, snap, xml_text, flags)
    }

    fn domain_job_begin(&self, dom: &str, job: &str) -> Result<String> {
        self.deny_read_only("virtplugDomainJobBegin")?;
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.store.job_begin(&d.uuid, job)
    }

    fn domain_job_end(&self, dom: &str, job: &str) -> Result<()> {
        let mut g = self.lock()?;
        let d = g.store.domain_by_name(dom)?;
        g.store.job_end(&d.uuid, job)
    }
}
