//! The SQLite metadata store (rusqlite, bundled SQLite): domains and their snapshot hierarchies.
//!
//! - WAL journal, `synchronous` NORMAL or FULL ([`Sync`]), a 10 s busy timeout so that several
//!   processes can share one store;
//! - schema versioned with `PRAGMA user_version`: an older store is migrated in one
//!   transaction, a newer one is refused;
//! - every operation is ONE transaction (`BEGIN IMMEDIATE`): after a crash the store holds the
//!   state before or after it, never a mix;
//! - "current" lives in exactly one place: the domain's row names it (`current_snapshot`, schema
//!   v7), or for a domain without a row, `snapshot_currents`; before v7 it was an `is_current`
//!   flag on the snapshot rows, which v7 leaves at 0. Moving it rewrites the domain's row, which
//!   every write rewrites anyway for the generation, not two snapshot rows and an index;
//!   a snapshot's parent lives only in the `parent` column — the stored XML is the secure
//!   format without `<parent>`, `<active>` and `<domain>`, all added back when formatting;
//!   embedded `<domain>` texts are stored once each (`snapshot_domains`, keyed by SHA-256);
//! - beside its stored text each snapshot row keeps where the parent and the domain go in it
//!   (schema v6), so that a dump splices them in without parsing (`store_rows.rs`);
//! - snapshot names are data (bound parameters), never paths;
//! - each domain's hierarchy is cached in memory as a [`SnapshotTree`] and re-read when
//!   another connection has committed (`PRAGMA data_version`) or after a failed operation;
//! - each domain has a generation that every committed write to it changes to a value never
//!   seen before ([`Store::generation`], `store_gen.rs`); a [`GenerationWatch`] answers the same
//!   from memory while no transaction has committed (`store_watch.rs`).

use std::{path::Path, time::Duration};

use rusqlite::{Connection, OptionalExtension};

use crate::{
    Error, Result, SnapshotInfo, codes,
    domain::DomainDef,
    tree::SnapshotTree,
    xml::{FormatFlags, SnapshotDef},
};

pub use crate::store_jobs::JobRecord;
pub use crate::store_ops::Writer;
pub use crate::store_rows::DomainRecord;
pub use crate::store_watch::{GenerationWatch, LazyGenerationWatch};
use crate::{
    store_jobs::Jobs,
    store_ops::Cache,
    store_rows::{DomainMemo, Shape, db, domain_row, load_tree, read_def},
    store_tx::WriteTx,
};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 7;

/// Durability of commits (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sync {
    /// WAL + NORMAL: a commit survives a process crash; the last commits may be lost on power loss.
    #[default]
    Normal,
    /// WAL + FULL: every commit is fsynced.
    Full,
}

/// An open metadata store.
#[derive(Debug)]
pub struct Store {
    pub(crate) conn: Connection,
    cache: Cache,
    data_version: i64,
    pub(crate) jobs: Jobs,
    /// The last `<domain>` section a dump formatted (`store_rows.rs`).
    dump_memo: DomainMemo,
    /// What the schema on disk has: a read-only connection reads a v5 or v6 store as it is.
    shape: Shape,
}

/// The oldest schema a read-only connection reads as it is: v6 only added the dump layout
/// columns and v7 the domain's current pointer, so a v5 or v6 store (not yet migrated by a
/// read-write connection) is read without them ([`Shape`]).
const READ_ONLY_OLDEST: u32 = 5;

impl Drop for Store {
    fn drop(&mut self) {
        self.jobs.release(&self.conn);
    }
}

pub(crate) const SCHEMA_V1: &str = "
CREATE TABLE domains (
    uuid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE,
    xml TEXT NOT NULL,
    state INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    dom_id INTEGER NOT NULL
);
CREATE TABLE snapshots (
    dom_uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    parent TEXT,
    xml TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    state INTEGER NOT NULL,
    external INTEGER NOT NULL,
    disk_only INTEGER NOT NULL,
    is_current INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    PRIMARY KEY (dom_uuid, name)
) WITHOUT ROWID;
";

pub(crate) const MIGRATE_V1_V2: &str = "
ALTER TABLE domains ADD COLUMN persistent INTEGER NOT NULL DEFAULT 1;
CREATE INDEX snapshots_parent ON snapshots (dom_uuid, parent);
CREATE UNIQUE INDEX snapshots_one_current ON snapshots (dom_uuid) WHERE is_current = 1;
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
";

/// v3: embedded `<domain>` definitions are stored once per distinct text (a chain of snapshots
/// of one domain shares one row), keyed by SHA-256; the parent index goes (hierarchies are
/// walked in memory, and every index page is written again on each commit).
pub(crate) const MIGRATE_V2_V3: &str = "
CREATE TABLE snapshot_domains (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL UNIQUE,
    xml TEXT NOT NULL
);
ALTER TABLE snapshots ADD COLUMN domain_id INTEGER;
DROP INDEX IF EXISTS snapshots_parent;
";

/// How long a statement waits for another connection's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Switches the database to WAL mode. The switch takes an exclusive lock and SQLite answers
/// SQLITE_BUSY at once, without the busy handler, while another connection holds one (two
/// connections opening a fresh store at the same time: a daemon's first two clients); so it is
/// retried here for as long as any other statement would wait.
fn enter_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r.map_err(db),
        }
    }
}

/// The connection behind [`Store::open_read_only`] (also the one [`GenerationWatch`] reads
/// with), and the schema version it found: read-only, no mutex of SQLite's own (its owner
/// serialises), the store's busy timeout. `Ok(None)` when there is no store at `path` (no file,
/// or a file whose schema was never written); a schema a read-only connection cannot read as it
/// is (older than v5, or newer than this build) is refused, since only a read-write open may
/// migrate it.
pub(crate) fn read_only_connection(path: &Path) -> Result<Option<(Connection, u32)>> {
    use rusqlite::OpenFlags;
    if !path.is_file() {
        return Ok(None);
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        Error::new(codes::OPERATION_FAILED, format!("cannot open metadata store '{}': {e}", path.display()))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.set_prepared_statement_cache_capacity(64);
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)?;
    if version == 0 {
        let tables: i64 =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0)).map_err(db)?;
        if tables == 0 {
            return Ok(None);
        }
    }
    if !(READ_ONLY_OLDEST..=SCHEMA_VERSION).contains(&version) {
        return Err(Error::new(
            codes::OPERATION_FAILED,
            format!(
                "metadata store '{}' has schema version {version}, not {SCHEMA_VERSION}; a read-only connection cannot migrate it",
                path.display()
            ),
        ));
    }
    Ok(Some((conn, version)))
}

impl Store {
    /// A store over an open connection whose schema is `shape`.
    fn over(conn: Connection, shape: Shape) -> Self {
        Self {
            conn,
            cache: Cache::default(),
            data_version: 0,
            jobs: Jobs::default(),
            dump_memo: DomainMemo::default(),
            shape,
        }
    }

    /// Opens (creating if needed) the store at `path`, migrating an older schema and refusing a
    /// newer one.
    pub fn open(path: &Path, sync: Sync) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| {
            Error::new(codes::OPERATION_FAILED, format!("cannot open metadata store '{}': {e}", path.display()))
        })?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        enter_wal(&conn)?;
        let level = match sync {
            Sync::Normal => "NORMAL",
            Sync::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", level).map_err(db)?;
        // A hierarchy of tens of thousands of snapshots outgrows SQLite's default 2 MiB page
        // cache; keep up to 64 MiB of pages so large trees stay as cheap per operation as small
        // ones (the memory is only used as the store grows).
        conn.pragma_update(None, "cache_size", -65536).map_err(db)?;
        conn.set_prepared_statement_cache_capacity(64);
        let mut store = Self::over(conn, Shape::of(SCHEMA_VERSION));
        store.migrate(path)?;
        store.data_version = store.read_data_version()?;
        Ok(store)
    }

    /// Opens the store at `path` for reading only: creates no directory and no database,
    /// migrates nothing, and every write transaction fails. `Ok(None)` when there is no store
    /// there yet (no file, or a file whose schema was never written). A store of another schema
    /// version is refused, since only a read-write open may migrate it. SQLite may still create
    /// the `-wal` and `-shm` files beside an existing database, as any WAL reader does.
    pub fn open_read_only(path: &Path) -> Result<Option<Self>> {
        let Some((conn, version)) = read_only_connection(path)? else { return Ok(None) };
        let mut store = Self::over(conn, Shape::of(version));
        store.data_version = store.read_data_version()?;
        Ok(Some(store))
    }

    fn migrate(&mut self, path: &Path) -> Result<()> {
        // A store of this version (every open but the first after an upgrade) needs no write
        // lock to find that out: no writer ever lowers the version.
        if self.schema_version()? == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = WriteTx::begin(&mut self.conn).map_err(db)?;
        let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)?;
        if version > SCHEMA_VERSION {
            return Err(Error::new(
                codes::OPERATION_FAILED,
                format!(
                    "metadata store '{}' has schema version {version}, newer than the supported version {SCHEMA_VERSION}; upgrade virtplug",
                    path.display()
                ),
            ));
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        if version == 0 {
            let tables: i64 = tx
                .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table'", [], |r| r.get(0))
                .map_err(db)?;
            if tables != 0 {
                return Err(Error::new(
                    codes::OPERATION_FAILED,
                    format!("'{}' is not a virtplug metadata store (unknown schema)", path.display()),
                ));
            }
            tx.execute_batch(SCHEMA_V1).map_err(db)?;
        }
        if version < 2 {
            tx.execute_batch(MIGRATE_V1_V2).map_err(db)?;
        }
        if version < 3 {
            tx.execute_batch(MIGRATE_V2_V3).map_err(db)?;
        }
        if version < 4 {
            tx.execute_batch(crate::store_jobs::MIGRATE_V3_V4).map_err(db)?;
        }
        if version < 5 {
            tx.execute_batch(crate::store_gen::MIGRATE_V4_V5).map_err(db)?;
        }
        if version < 6 {
            tx.execute_batch(crate::store_rows::MIGRATE_V5_V6).map_err(db)?;
            crate::store_rows::fill_layouts(&tx)?;
        }
        tx.execute_batch(crate::store_rows::MIGRATE_V6_V7).map_err(db)?;
        tx.execute_batch(crate::store_gen::MIGRATE_GENERATIONS_V7).map_err(db)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(db)?;
        tx.commit().map_err(db)
    }

    /// A store setting ([`Writer::meta`]) read outside a write transaction.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        crate::store_rows::read_meta(&self.conn, key)
    }

    /// The schema version found on disk.
    pub fn schema_version(&self) -> Result<u32> {
        self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)
    }

    fn read_data_version(&self) -> Result<i64> {
        self.conn.prepare_cached("PRAGMA data_version").map_err(db)?.query_row([], |r| r.get(0)).map_err(db)
    }

    /// Drops cached hierarchies if another connection committed since we last looked.
    fn refresh(&mut self) -> Result<()> {
        let v = self.read_data_version()?;
        if v != self.data_version {
            self.cache.clear();
            self.data_version = v;
        }
        Ok(())
    }

    /// Runs `f` in one write transaction (`BEGIN IMMEDIATE`) and commits; on any error the
    /// transaction is rolled back and the cache dropped.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut Writer<'_, '_>) -> Result<T>) -> Result<T> {
        self.run(f, true)
    }

    /// Runs `f` in one write transaction and always rolls it back (a dry run).
    pub fn dry_run<T>(&mut self, f: impl FnOnce(&mut Writer<'_, '_>) -> Result<T>) -> Result<T> {
        self.run(f, false)
    }

    fn run<T>(&mut self, f: impl FnOnce(&mut Writer<'_, '_>) -> Result<T>, commit: bool) -> Result<T> {
        let tx = WriteTx::begin(&mut self.conn).map_err(db)?;
        let v: i64 = tx.prepare_cached("PRAGMA data_version").map_err(db)?.query_row([], |r| r.get(0)).map_err(db)?;
        if v != self.data_version {
            self.cache.clear();
            self.data_version = v;
        }
        let (result, touched, changed) = {
            let mut w = Writer::new(&tx, &mut self.cache, self.shape);
            let result = f(&mut w);
            let (touched, changed) = w.into_domains();
            (result, touched, changed)
        };
        // Every domain the transaction changed must not be held by someone else's job; checked
        // last, inside the transaction, so that nothing commits past a job (a dry run commits
        // nothing and is not checked). Then the changed domains take a new generation, in the
        // same transaction, so that a refusal or a rollback leaves their generations unchanged.
        let result = match result {
            Ok(value) if commit => {
                self.jobs.check(&tx, &touched).and_then(|()| crate::store_gen::bump(&tx, &changed)).map(|()| value)
            }
            other => other,
        };
        match result {
            Ok(value) if commit => match tx.commit() {
                Ok(()) => Ok(value),
                Err(e) => {
                    self.cache.clear();
                    Err(db(e))
                }
            },
            Ok(value) => {
                drop(tx);
                self.cache.clear();
                Ok(value)
            }
            Err(e) => {
                drop(tx);
                self.cache.clear();
                Err(e)
            }
        }
    }

    // ----- reads -----

    /// Every domain, by name.
    pub fn domains(&mut self) -> Result<Vec<DomainRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, uuid, xml, state, reason, dom_id, persistent FROM domains ORDER BY name")
            .map_err(db)?;
        let rows = stmt.query_map([], domain_row).map_err(db)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)
    }

    /// The domain named `name`, or NO_DOMAIN.
    pub fn domain_by_name(&mut self, name: &str) -> Result<DomainRecord> {
        self.conn
            .prepare_cached("SELECT name, uuid, xml, state, reason, dom_id, persistent FROM domains WHERE name = ?1")
            .map_err(db)?
            .query_row([name], domain_row)
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::no_domain(name))
    }

    /// The domain with `uuid`, or NO_DOMAIN.
    pub fn domain_by_uuid(&mut self, uuid: &str) -> Result<DomainRecord> {
        self.conn
            .prepare_cached("SELECT name, uuid, xml, state, reason, dom_id, persistent FROM domains WHERE uuid = ?1")
            .map_err(db)?
            .query_row([uuid], domain_row)
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{uuid}'")))
    }

    fn tree(&mut self, dom: &str) -> Result<&SnapshotTree> {
        self.refresh()?;
        if !self.cache.trees.contains_key(dom) {
            let t = load_tree(&self.conn, self.shape, dom)?;
            self.cache.trees.insert(dom.to_owned(), t);
        }
        self.cache.trees.get(dom).ok_or_else(|| Error::internal("snapshot cache lost"))
    }

    /// Every snapshot of domain `dom` (uuid), parents first, siblings by name.
    pub fn snapshots(&mut self, dom: &str) -> Result<Vec<SnapshotInfo>> {
        Ok(self.tree(dom)?.list())
    }

    /// Number of snapshots of `dom`.
    pub fn snapshot_count(&mut self, dom: &str) -> Result<usize> {
        Ok(self.tree(dom)?.len())
    }

    /// One snapshot's record, or NO_DOMAIN_SNAPSHOT.
    pub fn snapshot(&mut self, dom: &str, name: &str) -> Result<SnapshotInfo> {
        self.tree(dom)?.get(name)
    }

    /// [`Store::snapshot`] of a domain given by its name (NO_DOMAIN when none has it), in one
    /// statement: no domain lookup first, no tree to load or revalidate.
    pub fn snapshot_of_named(&mut self, dom_name: &str, name: &str) -> Result<SnapshotInfo> {
        crate::store_rows::read_info_of_named(&self.conn, self.shape, dom_name, name)
    }

    /// The current snapshot's record.
    pub fn current(&mut self, dom: &str) -> Result<Option<SnapshotInfo>> {
        let t = self.tree(dom)?;
        t.current().map(|c| t.get(c)).transpose()
    }

    /// One snapshot's full definition (parent filled in).
    pub fn snapshot_def(&mut self, dom: &str, name: &str) -> Result<SnapshotDef> {
        let parent = self.tree(dom)?.get(name)?.parent;
        let mut def = read_def(&self.conn, dom, name)?;
        def.parent = parent;
        Ok(def)
    }

    /// One snapshot's XML as libvirt formats it, with `<domain><uuid>` = `dom` when it has no
    /// full domain; with `flags.internal`, `<active>` reflects the stored current flag (the
    /// caller's `flags.current` is ignored).
    ///
    /// One indexed read of the snapshot's row (its parent and current flag included); the
    /// stored text is spliced, not parsed, whenever that gives the same bytes (`store_rows.rs`).
    pub fn snapshot_xml(&mut self, dom: &str, name: &str, flags: FormatFlags) -> Result<String> {
        crate::store_rows::read_xml(&self.conn, &mut self.dump_memo, (self.shape, false), dom, name, flags)
    }

    /// [`Store::snapshot_xml`] of a domain given by its name (NO_DOMAIN when none has it): the
    /// name is resolved in the same read, so a dump through a driver is one statement.
    pub fn snapshot_xml_of_named(&mut self, dom_name: &str, name: &str, flags: FormatFlags) -> Result<String> {
        crate::store_rows::read_xml(&self.conn, &mut self.dump_memo, (self.shape, true), dom_name, name, flags)
    }

    /// Domain `dom`'s (uuid) generation, or NO_DOMAIN: one primary-key read. It changes with
    /// every committed write to the domain's row or its snapshot rows (create, redefine, edit,
    /// delete, revert, import, a metadata drop, state changes, a redefinition), through any
    /// connection or process, and never takes a value it (or any domain) had before, also
    /// across reopens and after an undefine and a new define. Reads, rolled-back writes, dry
    /// runs and write transactions that changed nothing leave it as it is.
    pub fn generation(&mut self, dom: &str) -> Result<u64> {
        crate::store_gen::read(&self.conn, dom)
    }

    /// [`Store::generation`] of the domain named `name` (NO_DOMAIN when none has it), in one
    /// statement.
    pub fn generation_of_named(&mut self, name: &str) -> Result<u64> {
        crate::store_gen::read_of_named(&self.conn, name)
    }

    // ----- single-operation writes (each one transaction) -----

    /// Defines (or redefines, same uuid) a domain. See [`Writer::define_domain`].
    pub fn define_domain(&mut self, def: &DomainDef, state: u32, reason: u32, id: i32) -> Result<DomainRecord> {
        self.write(|w| w.define_domain(def, state, reason, id))
    }
    /// Sets a domain's state. See [`Writer::set_domain_state`].
    pub fn set_domain_state(&mut self, dom: &str, state: u32, reason: u32, id: i32) -> Result<()> {
        self.write(|w| w.set_domain_state(dom, state, reason, id))
    }
    /// Removes a domain and all its snapshot metadata. See [`Writer::undefine_domain`].
    pub fn undefine_domain(&mut self, dom: &str) -> Result<()> {
        self.write(|w| w.undefine_domain(dom))
    }
    /// Plain create. See [`Writer::create`].
    pub fn create(&mut self, dom: &str, def: &SnapshotDef) -> Result<()> {
        self.write(|w| w.create(dom, def))
    }
    /// Redefine. See [`Writer::redefine`].
    pub fn redefine(&mut self, dom: &str, def: SnapshotDef, flags: crate::tree::RedefineFlags) -> Result<()> {
        self.write(|w| w.redefine(dom, def, flags))
    }
    /// Delete. See [`Writer::delete`].
    pub fn delete(&mut self, dom: &str, name: &str, flags: u32) -> Result<()> {
        self.write(|w| w.delete(dom, name, flags))
    }
    /// Revert's metadata effect: `name` becomes current.
    pub fn set_current(&mut self, dom: &str, name: &str) -> Result<()> {
        self.write(|w| w.set_current(dom, name))
    }
    /// Hierarchy import, all or nothing. See [`Writer::import`].
    pub fn import(&mut self, dom: &str, defs: Vec<SnapshotDef>, current: Option<&str>) -> Result<()> {
        self.write(|w| w.import(dom, defs, current))
    }
    /// Atomic edit/rename. See [`Writer::edit`].
    pub fn edit(&mut self, dom: &str, old: &str, def: SnapshotDef, flags: crate::tree::RedefineFlags) -> Result<()> {
        self.write(|w| w.edit(dom, old, def, flags))
    }

    /// Begins a job on domain `dom` (uuid) described by `description` and returns its id.
    /// Refused with `OPERATION_TIMEOUT` when another live job holds the domain (this
    /// connection's own included: jobs do not nest); a dead holder's job is taken over.
    pub fn job_begin(&mut self, dom: &str, description: &str) -> Result<String> {
        self.jobs.begin(&mut self.conn, dom, description)
    }

    /// Ends job `id` on domain `dom` (uuid). `OPERATION_INVALID` when this connection does not
    /// hold that job (it ended, or a take-over replaced it after this process was judged dead).
    pub fn job_end(&mut self, dom: &str, id: &str) -> Result<()> {
        self.jobs.end(&self.conn, dom, id)
    }

    /// Fails with `OPERATION_TIMEOUT` when another live job holds domain `dom` (uuid). For
    /// plugins whose operation does hypervisor work before its store transaction: check first,
    /// so that a change the transaction would refuse is not half done. (The transaction checks
    /// again; this is no substitute.)
    pub fn job_check(&mut self, dom: &str) -> Result<()> {
        self.jobs.check_free(&self.conn, dom)
    }

    /// The job holding domain `dom` (uuid), if any (a dead holder's job included, until the
    /// next writer takes it over).
    pub fn job(&mut self, dom: &str) -> Result<Option<JobRecord>> {
        Jobs::holding(&self.conn, dom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
#[path = "store_tests.rs"]
mod tests;
