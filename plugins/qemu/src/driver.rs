//! The qemu connection's state: the store, QMP connections, domain state tracking and the
//! helpers every operation shares. The operations are in [`crate::connection`] (the `Driver`
//! impl), [`crate::snapshot`], [`crate::redefine`] and [`crate::revert`], which import this
//! module and never the other way round. One operation at a time per connection (one mutex), so
//! a snapshot job never races a state change.

use std::{
    collections::HashMap,
    fs,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use virtplug_plugin_sdk::{
    Error, Result, codes,
    flags::domain_state as st,
    model::store::{DomainRecord, LazyGenerationWatch, Store, Sync},
};
use virtplug_store_etcd::Fleet;

use crate::{
    domain::QemuDef,
    process::{self, Runtime},
    qmp::{Qmp, QmpError},
    uri::Config,
};

pub(crate) use virtplug_plugin_sdk::flags::domain_state_reason as reason;

/// Mutable connection state: the local store, the fleet store when snapshot metadata lives
/// there (`store=`; see [`crate::meta`]), and open QMP connections by domain UUID.
pub(crate) struct Inner {
    pub store: Store,
    pub fleet: Option<Fleet>,
    pub qmp: HashMap<String, Qmp>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("store", &self.store)
            .field("fleet", &self.fleet.is_some())
            .field("qmp", &self.qmp)
            .finish()
    }
}

/// The fleet store's watch (see `virtplug_store_etcd::fleet::connect`), ended with the connection.
struct FleetWatch(#[allow(dead_code, reason = "held for its Drop")] Option<virtplug_store_etcd::FleetWatch>);

impl std::fmt::Debug for FleetWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "FleetWatch(running)" } else { "FleetWatch(none)" })
    }
}

/// One open `qemu:` connection.
#[derive(Debug)]
pub struct QemuDriver {
    pub(crate) cfg: Config,
    pub(crate) read_only: bool,
    /// Shared with the connection's watcher (`watch.rs`), which holds it only while it looks.
    pub(crate) inner: Arc<Mutex<Inner>>,
    _watch: FleetWatch,
    /// Generations read without `inner`'s lock (which a snapshot create holds for seconds), from
    /// memory while nothing commits: the daemon asks for one on every conditional read. Opened
    /// when first asked for, and only for a store file without a fleet store.
    pub(crate) generations: LazyGenerationWatch,
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

impl QemuDriver {
    /// Opens the store under `cfg.lib_dir` and reconnects to every domain the store believes
    /// active: live ones get their state from QMP, dead ones are marked shut off (crashed).
    /// A read-only connection creates nothing: it reads an existing store, or serves an empty
    /// host (no store yet means no domain) from memory.
    ///
    /// With a fleet store (`cfg.store`) the cluster is reached first: unreachable, nothing is
    /// created locally.
    pub fn open(cfg: Config, read_only: bool) -> Result<Self> {
        let db = cfg.lib_dir.join("virtplug-qemu.db");
        let (fleet, watch) = match &cfg.store {
            Some(s) => {
                let events = (!read_only).then(|| db.clone());
                let (f, w) = virtplug_store_etcd::fleet::connect(s, &cfg.lib_dir, "qemu", events)?;
                (Some(f), w)
            }
            None => (None, None),
        };
        let (store, file_backed) = if read_only {
            match Store::open_read_only(&db)? {
                Some(store) => (store, true),
                None => (Store::open(std::path::Path::new(":memory:"), Sync::Normal)?, false),
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
            (Store::open(&db, Sync::Normal)?, true)
        };
        // Beside the store's file (a read-only connection without one serves memory: none).
        let generations = LazyGenerationWatch::new((fleet.is_none() && file_backed).then_some(db.as_path()));
        let inner = Inner { store, fleet, qmp: HashMap::new() };
        let drv = Self { cfg, read_only, inner: Arc::new(Mutex::new(inner)), _watch: FleetWatch(watch), generations };
        {
            let mut g = drv.lock()?;
            if !read_only {
                // an external operation cut short: metadata brought back in line with the images
                // (a record that cannot be settled now, an image locked say, waits for the next
                // open). Before the refresh: a dead qemu's runtime directory, which holds a running
                // create's record, goes once the refresh sees it dead.
                let _ = crate::external::journal::settle(&drv, &mut g);
            }
            for d in g.store.domains()? {
                if is_active(d.state) && !read_only {
                    // an unresponsive monitor stays as it is; the next call reports it
                    let _ = drv.refresh(&mut g, d);
                }
            }
        }
        if !read_only {
            crate::watch::spawn(&drv);
        }
        Ok(drv)
    }

    /// A read-write view of the connection whose state is `inner` (the watcher's, which must
    /// not hold the connection open).
    pub(crate) fn view(cfg: Config, inner: Arc<Mutex<Inner>>) -> Self {
        Self { cfg, read_only: false, inner, _watch: FleetWatch(None), generations: LazyGenerationWatch::default() }
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner.lock().map_err(|_| Error::internal("qemu driver lock poisoned"))
    }

    /// OPERATION_DENIED on a read-only connection. Only the raw import still asks (its text
    /// names the create function, not the rule table's); every other read-only refusal is the
    /// SDK's rule table, which the host's calls always pass through.
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
            // its snapshot metadata goes with it (the local store drops it with the domain)
            let edits = if g.fleet.is_some() { g.drop_all(&d.uuid)? } else { Vec::new() };
            g.commit(&d.uuid, &edits, |w| w.undefine_domain(&d.uuid))
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

    /// [`QemuDriver::domain_for_change`] for a snapshot change: on a fleet store this host
    /// must also own the domain's metadata (or take it, when no host does), before any image is
    /// touched; its commit is still fenced.
    pub(crate) fn snapshot_target(&self, g: &mut Inner, name: &str) -> Result<DomainRecord> {
        let d = self.domain_for_change(g, name)?;
        if let Some(f) = &mut g.fleet {
            f.claim(&d.uuid)?;
        }
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
    pub(crate) fn simple(
        &self,
        name: &str,
        cmd: &str,
        want: impl Fn(u32) -> Result<()>,
        new: (u32, u32),
    ) -> Result<()> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use virtplug_plugin_sdk::Driver;

    use super::*;

    const DOMAIN: &str = "<domain type='kvm'><name>d</name><memory>65536</memory><vcpu>1</vcpu>\
        <os><type>hvm</type></os><devices/></domain>";

    /// A generation read does not wait behind a call holding the connection (a snapshot create
    /// holds it for seconds), and stays exact: a write made while it is held, through another
    /// connection, is seen.
    #[test]
    fn a_generation_read_does_not_wait_for_the_connection() {
        let root = tempfile::tempdir().unwrap();
        let uri = format!("qemu:///embed?root={}", root.path().display());
        let drv = QemuDriver::open(crate::uri::parse(&uri).unwrap(), false).unwrap();
        let uuid = drv.domain_define(DOMAIN).unwrap().uuid;
        let before = drv.snapshot_generation("d").unwrap();
        let held = drv.lock().unwrap();
        let other = QemuDriver::open(crate::uri::parse(&uri).unwrap(), false).unwrap();
        let redefined = DOMAIN.replace("<vcpu>1", &format!("<uuid>{uuid}</uuid><vcpu>2"));
        other.domain_define(&redefined).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| tx.send(drv.snapshot_generation("d")).unwrap());
            let read = rx.recv_timeout(Duration::from_secs(10)).expect("the read waited for the held connection");
            assert!(read.unwrap() > before, "the other connection's write is seen");
            assert_eq!(drv.snapshot_generation("nosuch").unwrap_err().code, codes::NO_DOMAIN);
            drop(held);
        });
    }
}
