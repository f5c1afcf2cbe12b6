//! The mock connection: domain operations here, snapshot semantics in [`crate::snapshot`]
//! helpers; every mutating call is one store transaction, logged at debug level through the
//! host's log sink when it committed (ABI 1.1 host services; nothing in a 1.0 host).

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use virtplug_plugin_sdk::{
    DomainInfo, Driver, Edit, Error, Result, SnapshotInfo, codes,
    flags::{domain_state as st, domain_undefine, domain_xml, snapshot_delete, snapshot_import, snapshot_xml},
    model::{
        domain::{self, DomainDef, TEST_DOMAIN_XML},
        store::{DomainRecord, LazyGenerationWatch, Store, Writer},
        xml::{self, FormatFlags},
    },
};

use crate::{
    snapshot,
    state::{Conn, Fleet, is_active, next_id, pending_key, reason, stop},
};

/// One open `mock:` connection.
#[derive(Debug)]
pub struct MockDriver {
    store: Mutex<Store>,
    read_only: bool,
    /// A read-only connection opened before its state existed: the database it serves as soon
    /// as one appears there (a fresh in-memory store until then).
    awaiting: Mutex<Option<PathBuf>>,
    /// The fleet store keeping the snapshot metadata (`store=etcd://…`); domains stay local.
    fleet: Option<FleetSlot>,
    /// The fleet store's watch, when one runs.
    _watch: Option<virtplug_store_etcd::FleetWatch>,
    /// Generations read without `store`'s lock, from memory while nothing commits: the daemon
    /// asks for one on every conditional request. Opened when first asked for, and only for a
    /// store file without a fleet store (never for the in-memory store of a connection
    /// awaiting its database).
    generations: LazyGenerationWatch,
}

/// The fleet store behind its lock (the store itself prints nothing in `Debug`).
struct FleetSlot(Mutex<Fleet>);

impl std::fmt::Debug for FleetSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetSlot")
    }
}

/// Gives a store that was never initialised the domain `test` (running, id 1), in one transaction.
fn fresh(mut store: Store) -> Result<Store> {
    // every open but the first: a read says so, without the write lock
    if store.meta("initialised")?.is_some() {
        return Ok(store);
    }
    store.write(|w| {
        if w.meta("initialised")?.is_none() {
            let def = DomainDef::parse(TEST_DOMAIN_XML)?;
            // Reason 0 (VIR_DOMAIN_RUNNING_UNKNOWN), as libvirt's test driver reports its default domain.
            w.define_domain(&def, st::RUNNING, 0, 1)?;
            w.set_meta("initialised", "1")?;
            w.set_meta("next_id", "2")?;
        }
        Ok(())
    })?;
    Ok(store)
}

impl MockDriver {
    /// Opens (creating if needed) the state in `dir`; a fresh store gets the domain `test`.
    ///
    /// A read-only connection creates nothing: it opens an existing store read-only, and where
    /// there is none yet it serves what a fresh one would hold (the domain `test`) from memory,
    /// switching to the database once a read-write connection has created it.
    pub fn open(dir: &Path, read_only: bool) -> Result<Self> {
        Self::open_with_store(dir, read_only, None)
    }

    /// [`MockDriver::open`] with the snapshot metadata on the fleet store `store` (domains stay
    /// in `dir`). The cluster is reached first: unreachable, nothing is created locally.
    pub fn open_with_store(dir: &Path, read_only: bool, store: Option<virtplug_store_etcd::StoreUri>) -> Result<Self> {
        let (fleet, _watch) = match store
            .map(|s| virtplug_store_etcd::fleet::connect(&s, dir, "mock", (!read_only).then(|| dir.join("mock.db"))))
            .transpose()?
        {
            Some((f, w)) => (Some(FleetSlot(Mutex::new(f))), w),
            None => (None, None),
        };
        let sync = crate::uri::sync_mode()?;
        let path = dir.join("mock.db");
        if read_only {
            let (store, awaiting, generations) = match Store::open_read_only(&path)? {
                Some(store) => {
                    let generations = LazyGenerationWatch::new(fleet.is_none().then_some(path.as_path()));
                    (store, None, generations)
                }
                None => (fresh(Store::open(Path::new(":memory:"), sync)?)?, Some(path), LazyGenerationWatch::default()),
            };
            let awaiting = Mutex::new(awaiting);
            return Ok(Self { store: Mutex::new(store), read_only, awaiting, fleet, _watch, generations });
        }
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::new(codes::NO_CONNECT, format!("mock state directory '{}' cannot be created: {e}", dir.display()))
        })?;
        let store = fresh(Store::open(&path, sync)?)?;
        let generations = LazyGenerationWatch::new(fleet.is_none().then_some(path.as_path()));
        Ok(Self { store: Mutex::new(store), read_only, awaiting: Mutex::new(None), fleet, _watch, generations })
    }

    pub(crate) fn fleet(&self) -> Result<Option<MutexGuard<'_, Fleet>>> {
        self.fleet
            .as_ref()
            .map(|f| f.0.lock().map_err(|_| Error::internal("mock fleet store lock poisoned")))
            .transpose()
    }

    pub(crate) fn store(&self) -> Result<MutexGuard<'_, Store>> {
        let mut store = self.store.lock().map_err(|_| Error::internal("mock store lock poisoned"))?;
        let mut awaiting = self.awaiting.lock().map_err(|_| Error::internal("mock store lock poisoned"))?;
        if let Some(path) = awaiting.as_deref()
            && let Some(opened) = Store::open_read_only(path)?
        {
            *store = opened;
            *awaiting = None;
        }
        Ok(store)
    }

    /// OPERATION_DENIED on a read-only connection, naming libvirt's public function. Only the
    /// raw import still asks (its text names the create function, not the rule table's); every
    /// other read-only refusal is the SDK's rule table (`rules::check`), which the host's calls
    /// always pass through (the exported guard, or `open_checked` in tests).
    pub(crate) fn deny_read_only(&self, function: &str) -> Result<()> {
        if self.read_only {
            return Err(Error::new(codes::OPERATION_DENIED, format!("read only access prevents {function}")));
        }
        Ok(())
    }

    fn domain_change(&self, dom: &str, f: impl FnOnce(&mut Writer<'_, '_>, DomainRecord) -> Result<()>) -> Result<()> {
        self.store()?.write(|w| {
            let d = w.domain_by_name(dom)?;
            f(w, d)
        })
    }
}

impl Conn for MockDriver {
    fn store(&self) -> Result<MutexGuard<'_, Store>> {
        MockDriver::store(self)
    }
    fn deny_read_only(&self, function: &str) -> Result<()> {
        MockDriver::deny_read_only(self, function)
    }
    fn fleet(&self) -> Result<Option<MutexGuard<'_, Fleet>>> {
        MockDriver::fleet(self)
    }
}

/// Logs a committed change (`create snapshot s1 of test`) through the host; passes `result` on.
fn logged<T>(result: Result<T>, change: impl FnOnce(&T) -> String) -> Result<T> {
    if let Ok(value) = &result {
        virtplug_plugin_sdk::plugin_log!(Debug, "{}", change(value));
    }
    result
}

/// A lookup of a domain that does not exist, as the test driver reports it: NO_DOMAIN with no
/// detail, so clients read libvirt's bare "Domain not found" (`virReportError(VIR_ERR_NO_DOMAIN,
/// NULL)`); an operation on a named domain keeps the detail.
fn lookup_failed(e: Error) -> Error {
    if e.code == codes::NO_DOMAIN { Error::new(codes::NO_DOMAIN, "") } else { e }
}

fn not_running() -> Error {
    Error::operation_invalid("domain is not running")
}

/// The test driver's own refusals of shutdown (a shut-off domain), suspend (anything but
/// running) and resume (anything but paused): INTERNAL_ERROR naming the domain, as libvirt
/// reports them (reference libvirt-rpc.md §3.5), where destroy refuses with OPERATION_INVALID.
fn not_in_state(d: &DomainRecord, what: &str) -> Error {
    Error::internal(format!("domain '{}' not {what}", d.name))
}

impl Driver for MockDriver {
    fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        Ok(self.store()?.domains()?.iter().map(DomainRecord::info).collect())
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        Ok(self.store()?.domain_by_name(name).map_err(lookup_failed)?.info())
    }

    fn domain_lookup_by_uuid(&self, uuid: &str) -> Result<DomainInfo> {
        let norm = virtplug_plugin_sdk::model::domain::normalize_uuid(uuid).unwrap_or_else(|| uuid.to_owned());
        Ok(self.store()?.domain_by_uuid(&norm).map_err(lookup_failed)?.info())
    }

    fn domain_define(&self, xml_text: &str) -> Result<DomainInfo> {
        logged(
            {
                let def = DomainDef::parse_definition(&virtplug_plugin_sdk::model::domain::with_uuid(xml_text))?;
                self.store()?.write(|w| {
                    w.check_define(&def)?;
                    let existing = w.domain(&def.uuid).ok();
                    if let Some(d) = existing.as_ref().filter(|d| is_active(d.state)) {
                        // A running domain goes on with what it runs; this is what it takes when
                        // it stops (libvirt's newDef).
                        w.set_meta(&pending_key(&d.uuid), &def.xml)?;
                        w.set_domain_persistent(&d.uuid, true)?;
                        return Ok(DomainRecord { persistent: true, ..d.clone() }.info());
                    }
                    let (state, why, id) =
                        existing.as_ref().map_or((st::SHUTOFF, 0, -1), |d| (d.state, d.reason, d.id));
                    let rec = w.define_domain(&def, state, why, id)?;
                    w.set_domain_persistent(&rec.uuid, true)?;
                    Ok(DomainRecord { persistent: true, ..rec }.info())
                })
            },
            |d| format!("define domain {}", d.name),
        )
    }

    fn domain_undefine(&self, dom: &str, flags: u32) -> Result<()> {
        logged(
            self.domain_change(dom, |w, d| {
                if is_active(d.state) {
                    // libvirt: an active domain becomes transient and keeps its metadata until it stops
                    return w.set_domain_persistent(&d.uuid, false);
                }
                let mut fleet = self.fleet()?;
                let snaps = match fleet.as_mut() {
                    Some(f) => f.list(&d.uuid)?,
                    None => Vec::new(),
                };
                let n = if fleet.is_some() { snaps.len() } else { w.snapshot_count(&d.uuid)? };
                if n > 0 && flags & domain_undefine::SNAPSHOTS_METADATA == 0 {
                    return Err(Error::operation_invalid(format!("cannot delete inactive domain with {n} snapshots")));
                }
                if let Some(f) = fleet.as_mut().filter(|_| n > 0) {
                    // the local store drops its rows with the domain; the fleet's copy goes first
                    // (a host that may not write it changes nothing)
                    let roots = snaps.into_iter().filter(|s| s.parent.is_none());
                    let edits: Vec<Edit> = roots.map(|s| Edit::Delete(s.name, snapshot_delete::CHILDREN)).collect();
                    f.apply(&d.uuid, &edits)?;
                }
                w.remove_meta(&pending_key(&d.uuid))?;
                w.undefine_domain(&d.uuid)
            }),
            |_| format!("undefine domain {dom}"),
        )
    }

    fn domain_start(&self, dom: &str) -> Result<()> {
        logged(
            self.domain_change(dom, |w, d| {
                if is_active(d.state) {
                    // libvirt's test driver (testDomainCreateWithFlags): an internal error.
                    return Err(Error::internal(format!("Domain '{}' is already running", d.name)));
                }
                let id = next_id(w)?;
                w.set_domain_state(&d.uuid, st::RUNNING, reason::RUNNING_BOOTED, id)
            }),
            |_| format!("start domain {dom}"),
        )
    }

    fn domain_shutdown(&self, dom: &str) -> Result<()> {
        logged(
            self.domain_change(dom, |w, d| {
                if !is_active(d.state) {
                    return Err(not_in_state(&d, "running"));
                }
                stop(w, &d, reason::SHUTOFF_SHUTDOWN)
            }),
            |_| format!("shutdown domain {dom}"),
        )
    }

    fn domain_destroy(&self, dom: &str) -> Result<()> {
        logged(
            self.domain_change(dom, |w, d| {
                if !is_active(d.state) {
                    return Err(not_running());
                }
                stop(w, &d, reason::SHUTOFF_DESTROYED)
            }),
            |_| format!("destroy domain {dom}"),
        )
    }

    fn domain_suspend(&self, dom: &str) -> Result<()> {
        logged(
            self.domain_change(dom, |w, d| {
                if d.state != st::RUNNING {
                    return Err(not_in_state(&d, "running"));
                }
                w.set_domain_state(&d.uuid, st::PAUSED, reason::PAUSED_USER, d.id)
            }),
            |_| format!("suspend domain {dom}"),
        )
    }

    fn domain_resume(&self, dom: &str) -> Result<()> {
        logged(
            self.domain_change(dom, |w, d| {
                if d.state != st::PAUSED {
                    return Err(not_in_state(&d, "paused"));
                }
                w.set_domain_state(&d.uuid, st::RUNNING, reason::RUNNING_UNPAUSED, d.id)
            }),
            |_| format!("resume domain {dom}"),
        )
    }

    /// MIGRATABLE changes nothing here: the mock's definitions hold nothing a migration would
    /// leave out (the test driver's output for it is the same as without it).
    fn domain_xml(&self, dom: &str, flags: u32) -> Result<String> {
        let mut store = self.store()?;
        let mut d = store.domain_by_name(dom)?;
        if flags & domain_xml::INACTIVE != 0 {
            if let Some(next) = store.meta(&pending_key(&d.uuid))? {
                d.xml = next;
            }
        }
        drop(store);
        let text = if flags & domain_xml::SECURE != 0 { d.xml } else { xml::strip_secrets(&d.xml) };
        let text = if flags & domain_xml::INACTIVE != 0 { text } else { domain::live_xml(&text, d.id) };
        Ok(format!("{}\n", text.trim_end()))
    }

    fn snapshot_create(&self, dom: &str, xml_text: &str, flags: u32) -> Result<String> {
        logged(snapshot::create(self, dom, xml_text, flags), |name| {
            format!("create snapshot {name} of {dom} (flags 0x{flags:x})")
        })
    }

    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> Result<String> {
        let mut store = self.store()?;
        if let Some(mut f) = self.fleet()? {
            let d = store.domain_by_name(dom)?;
            return f.xml(&d.uuid, snap, flags);
        }
        let secure = flags & snapshot_xml::SECURE != 0;
        // one read: the domain's name resolved with the snapshot's row
        store.snapshot_xml_of_named(dom, snap, FormatFlags { secure, ..Default::default() })
    }

    fn snapshot_list(&self, dom: &str, _flags: u32) -> Result<Vec<SnapshotInfo>> {
        let mut store = self.store()?;
        let d = store.domain_by_name(dom)?;
        if let Some(mut f) = self.fleet()? {
            return f.list(&d.uuid);
        }
        store.snapshots(&d.uuid)
    }

    fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        let mut store = self.store()?;
        if let Some(mut f) = self.fleet()? {
            let d = store.domain_by_name(dom)?;
            return f.lookup(&d.uuid, snap);
        }
        // one read: the domain's name resolved with the snapshot's row
        store.snapshot_of_named(dom, snap)
    }

    fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        let mut store = self.store()?;
        let d = store.domain_by_name(dom)?;
        if let Some(mut f) = self.fleet()? {
            return f.current(&d.uuid);
        }
        store.current(&d.uuid)
    }

    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        logged(snapshot::revert(self, dom, snap, flags), |_| {
            format!("revert {dom} to snapshot {snap} (flags 0x{flags:x})")
        })
    }

    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        logged(snapshot::delete(self, dom, snap, flags), |_| {
            format!("delete snapshot {snap} of {dom} (flags 0x{flags:x})")
        })
    }

    fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> Result<()> {
        logged(snapshot::import(self, dom, xmls, current, flags & snapshot_import::DRY_RUN != 0), |_| {
            format!("import {} snapshots of {dom} (flags 0x{flags:x})", xmls.len())
        })
    }

    fn snapshot_edit(&self, dom: &str, snap: &str, xml_text: &str, flags: u32) -> Result<String> {
        logged(snapshot::edit(self, dom, snap, xml_text, flags), |name| {
            format!("edit snapshot {snap} of {dom} as {name}")
        })
    }

    fn domain_job_begin(&self, dom: &str, job: &str) -> Result<String> {
        let mut store = self.store()?;
        let d = store.domain_by_name(dom)?;
        store.job_begin(&d.uuid, job)
    }

    fn domain_job_end(&self, dom: &str, job: &str) -> Result<()> {
        let mut store = self.store()?;
        let d = store.domain_by_name(dom)?;
        store.job_end(&d.uuid, job)
    }

    fn snapshot_generation(&self, dom: &str) -> Result<u64> {
        // The same read as below (value and NO_DOMAIN alike), without `store`'s lock while no
        // transaction has committed since it was last made (never on a fleet store: no path).
        if let Some(watch) = self.generations.get() {
            return watch.generation_of_named(dom);
        }
        let mut store = self.store()?;
        if let Some(mut f) = self.fleet()? {
            let d = store.domain_by_name(dom)?;
            return f.generation(&d.uuid);
        }
        // one read (the daemon's revalidation probe asks for it on every conditional request)
        store.generation_of_named(dom)
    }
    /// On a fleet store: its identity and this host; the local store is this host's own.
    fn snapshot_store(&self, dom: &str) -> Result<String> {
        self.store()?.domain_by_name(dom)?;
        match self.fleet()? {
            Some(mut f) => Ok(f.identity()),
            None => Err(Error::no_support("snapshot_store")),
        }
    }
    fn snapshot_handover(&self, dom: &str, to: &str) -> Result<()> {
        let d = self.store()?.domain_by_name(dom)?;
        match self.fleet()? {
            Some(mut f) => f.handover(&d.uuid, to),
            None => Err(Error::no_support("snapshot_handover")),
        }
    }
}
