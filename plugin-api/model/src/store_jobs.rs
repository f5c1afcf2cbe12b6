//! Per-domain jobs in the metadata store: who holds a domain for a multi-step operation (a
//! migration, an edit), recorded in the store itself so that every writer sees it — another
//! connection of this process, another CLI process, a daemon — and honoured inside each write
//! transaction: a commit that changed a domain held by someone else's live job is rolled back
//! with `OPERATION_TIMEOUT` naming that job (refused at once, never queued).
//!
//! A holder is a process: host name, boot id, pid and the pid's start time (so a recycled pid
//! is not mistaken for the holder). A job whose process is gone (SIGKILL, reboot) is taken over
//! by the next writer or job; a job of another host cannot be judged and is kept. A store
//! connection releases its own jobs when it is dropped.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, Result, codes, store_rows::db};

/// The `jobs` table (schema v4): at most one job per domain.
pub(crate) const MIGRATE_V3_V4: &str = "
CREATE TABLE jobs (
    dom_uuid TEXT PRIMARY KEY NOT NULL,
    id TEXT NOT NULL,
    description TEXT NOT NULL,
    host TEXT NOT NULL,
    boot_id TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_start INTEGER NOT NULL,
    since INTEGER NOT NULL
);
";

/// One held job, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The job id (unique).
    pub id: String,
    /// What the job does, e.g. `migration m1 to mock+unix:///b`.
    pub description: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// When the job began (seconds since the epoch).
    pub since: i64,
}

impl JobRecord {
    /// The refusal a conflicting change gets: libvirt's busy-domain class and wording.
    pub fn busy_error(&self) -> Error {
        Error::new(
            codes::OPERATION_TIMEOUT,
            format!(
                "cannot acquire state change lock (held by job '{}': {}, process {} on {})",
                self.id, self.description, self.pid, self.host
            ),
        )
    }
}

/// A process identity that survives pid reuse and reboots.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    host: String,
    boot_id: String,
    pid: u32,
    pid_start: i64,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path).map(|s| s.trim().to_owned()).unwrap_or_default()
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot), or `None` when the
/// process does not exist. The command name (field 2) may contain spaces and parentheses, so
/// the fields are counted after its last `)`.
fn pid_start_time(pid: u32) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Holder {
    fn this_process() -> Self {
        let pid = std::process::id();
        Self {
            host: read_trimmed("/proc/sys/kernel/hostname"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            pid,
            pid_start: pid_start_time(pid).unwrap_or(0),
        }
    }

    /// Whether the holder may still be running. Only a holder of this host can be judged: after
    /// a reboot (other boot id), or when its pid is gone or now names a younger process, it is
    /// dead.
    fn may_be_alive(&self, me: &Holder) -> bool {
        if self.host != me.host {
            return true;
        }
        if self.boot_id != me.boot_id {
            return false;
        }
        pid_start_time(self.pid) == Some(self.pid_start)
    }
}

/// This store connection's side of the job table: who we are and which jobs we hold.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    me: Option<Holder>,
    /// Domain uuid → id of the job this connection holds on it.
    held: HashMap<String, String>,
}

impl Jobs {
    fn me(&mut self) -> &Holder {
        self.me.get_or_insert_with(Holder::this_process)
    }

    /// Fails when any of `touched` (domain uuids) is held by another live job; a dead holder's
    /// job is removed on the way (within `tx`, so the take-over commits with the change).
    pub(crate) fn check(&mut self, tx: &Connection, touched: &[String]) -> Result<()> {
        for uuid in touched {
            if let Some((record, holder)) = read_job(tx, uuid)? {
                if self.held.get(uuid) == Some(&record.id) {
                    continue;
                }
                if holder.may_be_alive(self.me()) {
                    return Err(record.busy_error());
                }
                tx.prepare_cached("DELETE FROM jobs WHERE dom_uuid = ?1 AND id = ?2")
                    .map_err(db)?
                    .execute(params![uuid, record.id])
                    .map_err(db)?;
            }
        }
        Ok(())
    }
}

fn read_job(tx: &rusqlite::Connection, uuid: &str) -> Result<Option<(JobRecord, Holder)>> {
    tx.prepare_cached("SELECT id, description, host, boot_id, pid, pid_start, since FROM jobs WHERE dom_uuid = ?1")
        .map_err(db)?
        .query_row([uuid], |r| {
            let host: String = r.get(2)?;
            let pid: u32 = r.get(4)?;
            Ok((
                JobRecord { id: r.get(0)?, description: r.get(1)?, host: host.clone(), pid, since: r.get(6)? },
                Holder { host, boot_id: r.get(3)?, pid, pid_start: r.get(5)? },
            ))
        })
        .optional()
        .map_err(db)
}

/// A fresh job id: unique across processes and restarts (time, pid, counter).
fn new_job_id() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("j{nanos:x}-{:x}-{n}", std::process::id())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// The job operations of a [`Store`](crate::store::Store), which delegates to them with its
/// SQLite connection (see the public `job_*` methods there for what each guarantees).
impl Jobs {
    /// Begins a job on `dom` (uuid); see `Store::job_begin`.
    pub(crate) fn begin(&mut self, conn: &mut Connection, dom: &str, description: &str) -> Result<String> {
        let me = self.me().clone();
        let tx = crate::store_tx::WriteTx::begin(conn).map_err(db)?;
        if !crate::store_rows::domain_exists(&tx, dom)? {
            return Err(Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{dom}'")));
        }
        if let Some((record, holder)) = read_job(&tx, dom)? {
            if self.held.get(dom) == Some(&record.id) || holder.may_be_alive(&me) {
                return Err(record.busy_error());
            }
            // A dead holder's job: replaced below, in this transaction.
        }
        let id = new_job_id();
        tx.prepare_cached(
            "INSERT OR REPLACE INTO jobs (dom_uuid, id, description, host, boot_id, pid, pid_start, since)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(db)?
        .execute(params![dom, id, description, me.host, me.boot_id, me.pid, me.pid_start, now()])
        .map_err(db)?;
        tx.commit().map_err(db)?;
        self.held.insert(dom.to_owned(), id.clone());
        Ok(id)
    }

    /// Ends job `id` on `dom` (uuid); see `Store::job_end`.
    pub(crate) fn end(&mut self, conn: &Connection, dom: &str, id: &str) -> Result<()> {
        if self.held.get(dom).map(String::as_str) != Some(id) {
            return Err(Error::operation_invalid(format!("job '{id}' is not held by this connection")));
        }
        self.held.remove(dom);
        conn.prepare_cached("DELETE FROM jobs WHERE dom_uuid = ?1 AND id = ?2")
            .map_err(db)?
            .execute(params![dom, id])
            .map_err(db)?;
        Ok(())
    }

    /// Fails when another live job holds `dom` (uuid); see `Store::job_check`.
    pub(crate) fn check_free(&mut self, conn: &Connection, dom: &str) -> Result<()> {
        let me = self.me().clone();
        match read_job(conn, dom)? {
            Some((record, holder)) if self.held.get(dom) != Some(&record.id) && holder.may_be_alive(&me) => {
                Err(record.busy_error())
            }
            _ => Ok(()),
        }
    }

    /// The job holding `dom` (uuid), if any; see `Store::job`.
    pub(crate) fn holding(conn: &Connection, dom: &str) -> Result<Option<JobRecord>> {
        Ok(read_job(conn, dom)?.map(|(r, _)| r))
    }

    /// Releases every job this connection holds (best effort; called on drop).
    pub(crate) fn release(&mut self, conn: &Connection) {
        for (dom, id) in std::mem::take(&mut self.held) {
            if let Ok(mut stmt) = conn.prepare_cached("DELETE FROM jobs WHERE dom_uuid = ?1 AND id = ?2") {
                let _ = stmt.execute(params![dom, id]);
            }
        }
    }
}
