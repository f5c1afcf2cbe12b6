//! Supervised migration of one domain's snapshot hierarchy (the founding use case): export from
//! A (SECURE XML, topological, current marker), dry-run import on B, import on B in one
//! transaction, verify that B's tree equals A's (names, parents, current, XML), check that A
//! still holds exactly what was exported, then drop the metadata on A with METADATA_ONLY. A
//! failure before the drop leaves A untouched and rolls B back; a [`Journal`] written at each
//! phase lets a restarted supervisor finish or roll back.
//!
//! The whole run holds the domain on A (and on B when B is local) with a domain job, so no other
//! writer — another client of the same daemon, a CLI process on the same store, a second
//! migration — can change it meanwhile: they are refused at once with `OPERATION_TIMEOUT`. For a
//! plugin that keeps no job record, the drop deletes exactly the exported snapshots one by one
//! (children first), so that a snapshot created meanwhile is never taken with them.
//!
//! The engine talks to two [`Side`]s, each a local or remote [`Connection`]; remote sides move
//! the hierarchy in one request each way.
//!
//! Shared store: when both sides name the same store for the domain
//! ([`Connection::snapshot_store`], e.g. two hosts of one etcd fleet), nothing is copied: the
//! destination must read exactly the exported hierarchy, the source must still hold it, and then
//! the source hands the domain's metadata over to the destination's host in one step
//! ([`Connection::snapshot_handover`]) — the same steps, with `import` skipped and the handover
//! as the release (`drop_source`). Any other pair copies.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use serde::{Deserialize, Serialize};
use virtplug_plugin_api::{
    codes,
    flags::{snapshot_delete, snapshot_import},
};

use virtplug_wire::ImportRequest;

use crate::{
    connection::Connection,
    error::{HostError, Result},
    registry::Registry,
    remote::{self, Client},
    snapshot::SnapshotHierarchy,
};

/// One end of a migration: a connection, plus the daemon client when it is remote.
pub struct Side {
    /// The connection (every call runs the generic checks).
    pub conn: Connection,
    client: Option<Arc<Client>>,
    /// The domain job this side holds: (domain, job id).
    job: std::sync::Mutex<Option<(String, String)>>,
}

impl std::fmt::Debug for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Side").field("uri", &self.conn.uri()).field("remote", &self.client.is_some()).finish()
    }
}

impl Side {
    /// Opens `uri` read-write: a local plugin, or a daemon for URIs with a transport.
    pub fn open(registry: &Registry, uri: &str) -> Result<Self> {
        match remote::parse_uri(uri, false) {
            Some(_) => {
                let backend = remote::open(uri, false)?;
                let client = Arc::clone(backend.client());
                let info = backend.info().clone();
                Ok(Self {
                    conn: Connection::from_backend(uri, false, info, Box::new(backend)),
                    client: Some(client),
                    job: Default::default(),
                })
            }
            None => Ok(Self { conn: Connection::open(registry, uri, false)?, client: None, job: Default::default() }),
        }
    }

    /// A side over an already open connection (local).
    pub fn local(conn: Connection) -> Self {
        Self { conn, client: None, job: Default::default() }
    }

    /// Holds `dom` on this side for `what` (a domain job), unless already held. `Ok(false)` when
    /// the backend keeps no job record (a remote side, or a plugin without `domain_job`);
    /// `OPERATION_TIMEOUT` when another job holds the domain.
    pub fn hold(&self, dom: &str, what: &str) -> Result<bool> {
        let mut job = self.job.lock().map_err(|_| failed("migration job lock poisoned".into()))?;
        if job.as_ref().is_some_and(|(d, _)| d == dom) {
            return Ok(true);
        }
        match self.conn.domain_job_begin(dom, what) {
            Ok(id) => {
                *job = Some((dom.to_owned(), id));
                Ok(true)
            }
            Err(e) if e.code() == codes::NO_SUPPORT => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether this side holds a job on `dom`.
    pub fn holds(&self, dom: &str) -> bool {
        self.job.lock().ok().is_some_and(|j| j.as_ref().is_some_and(|(d, _)| d == dom))
    }

    /// Releases the job this side holds, if any (closing the connection releases it too).
    pub fn release(&self) {
        let held = self.job.lock().ok().and_then(|mut j| j.take());
        if let Some((dom, id)) = held
            && let Err(e) = self.conn.domain_job_end(&dom, &id)
        {
            tracing::warn!(error = %e, domain = %dom, "cannot end the migration's domain job");
        }
    }

    /// The whole hierarchy, in one request when remote.
    pub fn export(&self, dom: &str) -> Result<SnapshotHierarchy> {
        match &self.client {
            Some(client) => {
                // The local checks first, as for every remote call; then the daemon's.
                self.conn
                    .check(&crate::rules::SNAPSHOT_LIST, virtplug_plugin_api::flags::snapshot_list::TOPOLOGICAL)?;
                self.conn.check(&crate::rules::SNAPSHOT_XML, virtplug_plugin_api::flags::snapshot_xml::SECURE)?;
                client.export(dom).map(SnapshotHierarchy::from).map_err(HostError::from)
            }
            None => self.conn.snapshot_export_hierarchy(dom),
        }
    }

    fn import(&self, dom: &str, h: &SnapshotHierarchy, flags: u32) -> Result<()> {
        match &self.client {
            // As for export: the flag and name checks here, the XML checks in the daemon (which
            // parses every XML anyway; parsing 16,000 of them here too cost a third of the run).
            Some(client) => {
                crate::connection::check_name("domain", dom)?;
                self.conn.check(&crate::rules::SNAPSHOT_IMPORT, flags)?;
                let request =
                    ImportRequest { xmls: h.xmls.clone(), current: h.current.clone(), flags, migration: None };
                client.import(dom, &request).map_err(HostError::from)
            }
            None => self.conn.snapshot_import(dom, &h.xmls, h.current.as_deref(), flags),
        }
    }

    /// The real import, tracked on a remote side under migration `id` (the daemon records its
    /// outcome durably, see [`Side::settle`]). A local side imports in this process: when this
    /// process dies, so does the import, and nothing can be left in flight.
    fn import_tracked(&self, dom: &str, h: &SnapshotHierarchy, id: &str) -> Result<()> {
        match &self.client {
            Some(client) if !id.is_empty() => {
                // The local checks first (the daemon runs them all again, XML included).
                crate::connection::check_name("domain", dom)?;
                self.conn.check(&crate::rules::SNAPSHOT_IMPORT, 0)?;
                let request = ImportRequest {
                    xmls: h.xmls.clone(),
                    current: h.current.clone(),
                    flags: 0,
                    migration: Some(id.to_owned()),
                };
                client.import(dom, &request).map_err(HostError::from)
            }
            _ => self.import(dom, h, 0),
        }
    }

    /// Waits until the import of migration `id` on this side is no longer in flight and returns
    /// its settled state: `committed`, `failed`, `interrupted` or `aborted` (it never started and
    /// now never will). `None` for a local side (nothing can be in flight) or a daemon that does
    /// not track imports. Fails when the daemon stays unreachable or the import keeps running
    /// past [`SETTLE_TIMEOUT`] (the caller retries later).
    pub fn settle(&self, id: &str) -> Result<Option<String>> {
        let Some(client) = &self.client else { return Ok(None) };
        if id.is_empty() {
            return Ok(None);
        }
        let deadline = std::time::Instant::now() + SETTLE_TIMEOUT;
        loop {
            match client.settle_import(id) {
                Ok(s) if s.state == "running" => {}
                Ok(s) => return Ok(Some(s.state)),
                Err(e) if e.code() == codes::NO_SUPPORT => return Ok(None),
                Err(e) if std::time::Instant::now() > deadline => return Err(HostError::from(e)),
                Err(_) => {}
            }
            if std::time::Instant::now() > deadline {
                return Err(failed(format!("the import of migration {id} is still running on {}", self.conn.uri())));
            }
            std::thread::sleep(remote::http::POLL_INTERVAL);
        }
    }
}

/// How long [`Side::settle`] waits for an import in flight (or an unreachable daemon).
pub const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A fresh migration id: unique across daemons and restarts (time, process, counter).
pub fn new_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("m{nanos:x}-{:x}-{n}", std::process::id())
}

/// Where a migration stands; written before each irreversible phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The migration id: the destination tracks its import under it.
    #[serde(default)]
    pub id: String,
    /// The domain.
    pub domain: String,
    /// Source URI.
    pub from: String,
    /// Destination URI.
    pub to: String,
    /// `importing` (B may or may not hold the hierarchy), `dropping` (B verified; A's metadata
    /// is being dropped), `done` or `rolled_back`.
    pub phase: String,
    /// Snapshot names that existed on B before the import (kept by a rollback).
    pub preexisting: Vec<String>,
    /// The migrated names, parents first.
    pub names: Vec<String>,
}

/// Receives progress: step changes and unit counts.
pub trait Reporter {
    /// Step `name` entered `state` (`running`, `done`, `failed`, `skipped`) with a note.
    fn step(&mut self, name: &str, state: &str, message: &str);
    /// `done` of `total` units: for `n` snapshots, `2n + 2` in all, counted per snapshot as
    /// the import is checked and as the destination is verified (see `Units`); reported about
    /// [`REPORTS`] times per run.
    fn progress(&mut self, done: u64, total: u64);
    /// The journal changed; persist it before returning.
    fn journal(&mut self, journal: &Journal) -> Result<()>;
}

/// The step names, in order.
pub const STEPS: &[&str] = &["export", "dry_run", "import", "verify", "drop_source"];

/// What a migration did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Number of snapshots moved (or that would move, for a dry run).
    pub snapshots: usize,
    /// The current snapshot carried over.
    pub current: Option<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

fn failed(message: String) -> HostError {
    HostError::MigrationFailed { message }
}

/// Counts a migration's progress units and hands them to the [`Reporter`] at most about
/// [`REPORTS`] times per run (plus the last unit), so that a hierarchy of 16,000 snapshots does
/// not become 32,000 task events.
///
/// Units, for `n` exported snapshots (total `2n + 2`): one per snapshot checked before the
/// import, one for the import's commit (the destination's one transaction, which reports
/// nothing inside it), one per snapshot verified on the destination, one for the source's drop.
struct Units {
    done: u64,
    total: u64,
    every: u64,
    reported: u64,
}

/// About how many progress reports a migration makes.
pub const REPORTS: u64 = 100;

impl Units {
    fn new(snapshots: u64) -> Self {
        let total = 2 * snapshots + 2;
        Self { done: 0, total, every: (total / REPORTS).max(1), reported: 0 }
    }

    /// Reports where the run stands.
    fn report(&mut self, rep: &mut dyn Reporter) {
        self.reported = self.done;
        rep.progress(self.done, self.total);
    }

    /// One more unit done.
    fn tick(&mut self, rep: &mut dyn Reporter) {
        self.done = (self.done + 1).min(self.total);
        if self.done - self.reported >= self.every || self.done == self.total {
            self.report(rep);
        }
    }
}

/// Checks, snapshot by snapshot, what the destination's one-transaction import relies on: every
/// name once, and every parent listed before its child.
fn check_order(a: &SnapshotHierarchy, units: &mut Units, rep: &mut dyn Reporter) -> Result<()> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(a.names.len());
    for (name, parent) in a.names.iter().zip(&a.parents) {
        if let Some(p) = parent
            && !seen.contains(p.as_str())
        {
            return Err(failed(format!("snapshot {name} was exported before its parent {p}")));
        }
        if !seen.insert(name) {
            return Err(failed(format!("snapshot {name} was exported twice")));
        }
        units.tick(rep);
    }
    Ok(())
}

/// Compares B's export with A's on A's names: parents, current, XML.
fn compare(a: &SnapshotHierarchy, b: &SnapshotHierarchy) -> std::result::Result<(), String> {
    compare_each(a, b, &mut || {})
}

/// [`compare`], calling `tick` after each snapshot found equal.
fn compare_each(
    a: &SnapshotHierarchy,
    b: &SnapshotHierarchy,
    tick: &mut dyn FnMut(),
) -> std::result::Result<(), String> {
    let on_b: HashMap<&str, (usize, &Option<String>)> =
        b.names.iter().zip(&b.parents).enumerate().map(|(i, (n, p))| (n.as_str(), (i, p))).collect();
    for (i, name) in a.names.iter().enumerate() {
        let Some(&(j, parent)) = on_b.get(name.as_str()) else {
            return Err(format!("snapshot {name} is missing on the destination"));
        };
        if *parent != a.parents[i] {
            return Err(format!(
                "snapshot {name} has parent {parent:?} on the destination, {:?} on the source",
                a.parents[i]
            ));
        }
        if b.xmls[j] != a.xmls[i] {
            return Err(format!("snapshot {name} has a different XML on the destination"));
        }
        tick();
    }
    if a.current.is_some() && a.current != b.current {
        return Err(format!("current snapshot is {:?} on the destination, {:?} on the source", b.current, a.current));
    }
    Ok(())
}

/// Removes from B the metadata of `names` that were not there before, children first.
fn rollback(to: &Side, dom: &str, names: &[String], preexisting: &HashSet<String>) -> Result<()> {
    let present: HashSet<String> = to.conn.snapshot_list_unfiltered(dom, 0)?.into_iter().map(|s| s.name).collect();
    for name in names.iter().rev() {
        if present.contains(name) && !preexisting.contains(name) {
            to.conn.snapshot_delete(dom, name, snapshot_delete::METADATA_ONLY)?;
        }
    }
    Ok(())
}

/// Whether A still holds exactly what was exported: the same names, parents, XML and current.
fn unchanged(a: &SnapshotHierarchy, now: &SnapshotHierarchy) -> std::result::Result<(), String> {
    if now.names.len() != a.names.len() {
        return Err(format!("the source now has {} snapshots, {} were exported", now.names.len(), a.names.len()));
    }
    compare(a, now).map_err(|e| format!("the source changed during the migration: {e}"))?;
    if now.current != a.current {
        return Err("the source changed during the migration: its current snapshot moved".into());
    }
    Ok(())
}

/// Drops A's metadata of exactly the exported `names` (`names` parents first). Under a job (A
/// verified unchanged and held), each exported root goes with its subtree in one transaction;
/// otherwise every snapshot goes alone, children first, so that a snapshot someone created
/// meanwhile under an exported one is reparented and kept, never taken along.
fn drop_source(from: &Side, dom: &str, names: &[String], held: bool) -> Result<()> {
    let list = from.conn.snapshot_list_unfiltered(dom, 0)?;
    let set: HashSet<&str> = names.iter().map(String::as_str).collect();
    if held {
        for s in list.iter().filter(|s| set.contains(s.name.as_str())) {
            let parent_moved = s.parent.as_deref().is_some_and(|p| set.contains(p));
            if !parent_moved && s.has_metadata {
                from.conn.snapshot_delete(dom, &s.name, snapshot_delete::CHILDREN | snapshot_delete::METADATA_ONLY)?;
            }
        }
        return Ok(());
    }
    let present: HashSet<&str> = list.iter().map(|s| s.name.as_str()).collect();
    for name in names.iter().rev().filter(|n| present.contains(n.as_str())) {
        from.conn.snapshot_delete(dom, name, snapshot_delete::METADATA_ONLY)?;
    }
    Ok(())
}

/// Runs the whole migration of `dom` from `from` to `to` under migration id `id` (see
/// [`new_id`]).
pub fn migrate(from: &Side, to: &Side, id: &str, dom: &str, dry_run: bool, rep: &mut dyn Reporter) -> Result<Outcome> {
    let result = hold_both(from, to, id, dom, dry_run).and_then(|()| run(from, to, id, dom, dry_run, rep));
    from.release();
    to.release();
    result
}

/// Holds `dom` on A (and on B when B keeps job records locally) for migration `id`; a dry run
/// changes nothing and holds nothing.
fn hold_both(from: &Side, to: &Side, id: &str, dom: &str, dry_run: bool) -> Result<()> {
    if dry_run {
        return Ok(());
    }
    from.hold(dom, &format!("migration {id} to {}", to.conn.uri()))?;
    if to.client.is_none() {
        to.hold(dom, &format!("migration {id} from {}", from.conn.uri()))?;
    }
    Ok(())
}

impl Connection {
    /// `snapshot_store`: `(store, host)` when `dom`'s snapshot metadata is on a store several
    /// hosts share: the store's identity (the same on every host of it) and this connection's
    /// host on it. `Ok(None)` when the backend keeps the metadata as its own (a plugin without
    /// the operation or answering `NO_SUPPORT`).
    pub fn snapshot_store(&self, dom: &str) -> Result<Option<(String, String)>> {
        match self.dispatch(&crate::rules::SNAPSHOT_STORE, 0, |d| d.snapshot_store(dom)) {
            Ok(text) => Ok(text.split_once('\n').map(|(s, h)| (s.to_owned(), h.to_owned()))),
            Err(e) if e.code() == codes::NO_SUPPORT => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `snapshot_handover`: hands `dom`'s metadata on the shared store to host `to`, no copy.
    pub fn snapshot_handover(&self, dom: &str, to: &str) -> Result<()> {
        self.dispatch(&crate::rules::SNAPSHOT_HANDOVER, 0, |d| d.snapshot_handover(dom, to))
    }
}

/// The destination's host when both sides keep `dom`'s metadata on one shared store.
fn shared_store(from: &Side, to: &Side, dom: &str) -> Result<Option<(String, String)>> {
    let Some((store_a, host_a)) = from.conn.snapshot_store(dom)? else { return Ok(None) };
    let Some((store_b, host_b)) = to.conn.snapshot_store(dom)? else { return Ok(None) };
    Ok((store_a == store_b).then_some((host_a, host_b)))
}

/// The migration on a shared store (see the module documentation): verify, then hand over.
fn handover(
    from: &Side,
    to: &Side,
    dom: &str,
    (host_a, host_b): (String, String),
    dry_run: bool,
    rep: &mut dyn Reporter,
) -> Result<Outcome> {
    rep.step("export", "running", "");
    let a = from.export(dom)?;
    rep.step("export", "done", &format!("{} snapshots", a.names.len()));
    let outcome = Outcome { snapshots: a.names.len(), current: a.current.clone(), dry_run };
    rep.step("dry_run", "running", "");
    if let Err(e) = to.export(dom).and_then(|b| compare(&a, &b).map_err(failed)) {
        rep.step("dry_run", "failed", &e.to_string());
        return Err(e);
    }
    rep.step("dry_run", "done", "the destination reads the same hierarchy on the shared store");
    if dry_run {
        for step in &STEPS[2..] {
            rep.step(step, "skipped", "dry run");
        }
        return Ok(outcome);
    }
    rep.step("import", "skipped", "shared store: nothing to copy");
    rep.step("verify", "running", "");
    let verified = to
        .export(dom)
        .and_then(|b| compare(&a, &b).map_err(failed))
        .and_then(|()| from.export(dom))
        .and_then(|now| unchanged(&a, &now).map_err(failed));
    if let Err(e) = verified {
        rep.step("verify", "failed", &e.to_string());
        return Err(e);
    }
    rep.step("verify", "done", "names, parents, current and XML match; the source is unchanged");
    rep.step("drop_source", "running", "");
    if host_a == host_b {
        rep.step(
            "drop_source",
            "done",
            &format!("both sides are host {host_b} on the shared store: nothing to hand over"),
        );
        return Ok(outcome);
    }
    if let Err(e) = from.conn.snapshot_handover(dom, &host_b) {
        rep.step("drop_source", "failed", &e.to_string());
        return Err(e);
    }
    rep.step("drop_source", "done", &format!("handed over to host {host_b} on the shared store (no copy)"));
    Ok(outcome)
}

fn run(from: &Side, to: &Side, id: &str, dom: &str, dry_run: bool, rep: &mut dyn Reporter) -> Result<Outcome> {
    if let Some(hosts) = shared_store(from, to, dom)? {
        return handover(from, to, dom, hosts, dry_run, rep);
    }
    rep.step("export", "running", "");
    let a = from.export(dom)?;
    let total = a.names.len() as u64;
    let mut units = Units::new(total);
    units.report(rep);
    rep.step("export", "done", &format!("{total} snapshots"));
    let outcome = Outcome { snapshots: a.names.len(), current: a.current.clone(), dry_run };

    rep.step("dry_run", "running", "");
    let preexisting: HashSet<String> = to.conn.snapshot_list_unfiltered(dom, 0)?.into_iter().map(|s| s.name).collect();
    // Redefine would silently replace (even re-parent) a same-named snapshot on B: only an
    // identical one (a re-run after a crash) may already be there.
    if a.names.iter().any(|n| preexisting.contains(n)) {
        let b = to.export(dom)?;
        let on_b: HashMap<&str, &str> =
            b.names.iter().map(String::as_str).zip(b.xmls.iter().map(String::as_str)).collect();
        for (name, xml) in a.names.iter().zip(&a.xmls) {
            if on_b.get(name.as_str()).is_some_and(|x| *x != xml.as_str()) {
                let e = HostError::MigrationConflict { snapshot: name.clone() };
                rep.step("dry_run", "failed", &e.to_string());
                return Err(e);
            }
        }
    }
    if let Err(e) = to.import(dom, &a, snapshot_import::DRY_RUN) {
        rep.step("dry_run", "failed", &e.to_string());
        return Err(e);
    }
    rep.step("dry_run", "done", "the destination accepts the hierarchy");
    if dry_run {
        for step in &STEPS[2..] {
            rep.step(step, "skipped", "dry run");
        }
        return Ok(outcome);
    }

    let mut journal = Journal {
        id: id.to_owned(),
        domain: dom.to_owned(),
        from: from.conn.uri().to_owned(),
        to: to.conn.uri().to_owned(),
        phase: "importing".into(),
        preexisting: preexisting.iter().cloned().collect(),
        names: a.names.clone(),
    };
    rep.journal(&journal)?;
    rep.step("import", "running", "");
    if let Err(e) = check_order(&a, &mut units, rep).and_then(|()| to.import_tracked(dom, &a, id)) {
        rep.step("import", "failed", &e.to_string());
        // A failed answer is not a failed import: the connection may have broken while the
        // import goes on (or after it committed). Wait until B has settled it; roll B back only
        // when the import may have committed. An import that committed nothing (a local one, or
        // one B reports failed or aborted) leaves nothing to undo — and a rollback by name would
        // take a snapshot of that name someone else created on B meanwhile. When B cannot say,
        // the journal stays at `importing` for the recovery to finish.
        let settled = to.settle(id)?;
        let nothing_committed = to.client.is_none() || matches!(settled.as_deref(), Some("failed" | "aborted"));
        if !nothing_committed {
            rollback(to, dom, &a.names, &preexisting)?;
        }
        journal.phase = "rolled_back".into();
        rep.journal(&journal)?;
        return Err(e);
    }
    units.tick(rep);
    rep.step("import", "done", "one transaction");

    rep.step("verify", "running", "");
    // B holds what was exported, and — since the drop removes exactly that — A still holds
    // exactly that too (a writer that does not honour jobs, or a plugin that keeps none, may
    // have changed it).
    let verified = to
        .export(dom)
        .and_then(|b| compare_each(&a, &b, &mut || units.tick(rep)).map_err(failed))
        .and_then(|()| from.export(dom))
        .and_then(|now| unchanged(&a, &now).map_err(failed));
    if let Err(e) = verified {
        rep.step("verify", "failed", &e.to_string());
        rollback(to, dom, &a.names, &preexisting)?;
        journal.phase = "rolled_back".into();
        rep.journal(&journal)?;
        return Err(e);
    }
    rep.step("verify", "done", "names, parents, current and XML match; the source is unchanged");

    journal.phase = "dropping".into();
    rep.journal(&journal)?;
    rep.step("drop_source", "running", "");
    drop_source(from, dom, &a.names, from.holds(dom))?;
    units.tick(rep);
    rep.step("drop_source", "done", "metadata dropped on the source");
    journal.phase = "done".into();
    rep.journal(&journal)?;
    Ok(outcome)
}

/// Finishes or rolls back a migration found in `journal` after a crash. In phase `importing` it
/// first waits until B has settled the import of this migration ([`Side::settle`]); then, when B
/// holds A's whole hierarchy, A's metadata is dropped; otherwise B is rolled back. Returns the
/// final phase.
pub fn recover(registry: &Registry, journal: &mut Journal, rep: &mut dyn Reporter) -> Result<String> {
    let from = Side::open(registry, &journal.from)?;
    let to = Side::open(registry, &journal.to)?;
    let dom = journal.domain.clone();
    // The crashed run's job died with its process: take the domain over for the recovery.
    hold_both(&from, &to, &journal.id, &dom, false)?;
    let result = settle(&from, &to, &dom, journal, rep);
    from.release();
    to.release();
    result
}

fn settle(from: &Side, to: &Side, dom: &str, journal: &mut Journal, rep: &mut dyn Reporter) -> Result<String> {
    let (from, to, dom) = (from, to, dom.to_owned());
    if journal.phase == "importing" {
        // Never decide while B's import may still commit: wait until B has settled it (an
        // import that never reached B is refused from now on).
        let settled = to.settle(&journal.id)?;
        let imported = !matches!(settled.as_deref(), Some("failed" | "aborted"));
        let a = from.export(&dom)?;
        let b = to.export(&dom)?;
        if imported && compare(&a, &b).is_ok() && a.names.len() == journal.names.len() {
            journal.phase = "dropping".into();
        } else {
            // An import B reports failed or aborted added nothing: no rollback by name, which
            // could take a snapshot someone else created on B since.
            if imported {
                let preexisting: HashSet<String> = journal.preexisting.iter().cloned().collect();
                rollback(to, &dom, &journal.names, &preexisting)?;
            }
            journal.phase = "rolled_back".into();
        }
        rep.journal(journal)?;
    }
    if journal.phase == "dropping" {
        drop_source(from, &dom, &journal.names, from.holds(&dom))?;
        journal.phase = "done".into();
        rep.journal(journal)?;
    }
    Ok(journal.phase.clone())
}
