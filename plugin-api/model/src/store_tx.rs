//! The store's write transaction: `BEGIN IMMEDIATE` … `COMMIT`, or `ROLLBACK` when dropped
//! uncommitted; every write transaction of the store (operations, jobs, schema migration) is
//! one. Owns only beginning and ending a transaction; what runs inside is the caller's.
//!
//! rusqlite's `Transaction` prepares its `BEGIN` and its `COMMIT` anew on every transaction
//! (through `execute_batch`); these statements come from the connection's statement cache, which
//! saves a tenth of a snapshot create's SQLite CPU. The rules are rusqlite's: a failed `COMMIT`
//! leaves the transaction open and dropping the guard rolls it back; nothing is rolled back when
//! SQLite already ended the transaction itself (an I/O error, a full disk).

use std::ops::Deref;

use rusqlite::Connection;

/// One open write transaction on a connection (see the module header).
#[derive(Debug)]
pub(crate) struct WriteTx<'c> {
    conn: &'c Connection,
    committed: bool,
}

impl<'c> WriteTx<'c> {
    /// Begins a write transaction, taking the database's write lock now (waiting for it up to
    /// the connection's busy timeout), so that what the transaction reads stays as read.
    pub(crate) fn begin(conn: &'c mut Connection) -> rusqlite::Result<Self> {
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Self { conn, committed: false })
    }

    /// Commits; on an error the transaction is still open and is rolled back when `self` drops.
    pub(crate) fn commit(mut self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        self.committed = true;
        Ok(())
    }
}

impl Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.committed && !self.conn.is_autocommit() {
            // As rusqlite's own guard: a rollback that fails leaves nothing to report to.
            let _ = self.conn.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([]));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    fn db() -> (tempfile::TempDir, Connection, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let a = Connection::open(&path).unwrap();
        a.pragma_update(None, "journal_mode", "WAL").unwrap();
        a.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let b = Connection::open(&path).unwrap();
        b.busy_timeout(std::time::Duration::from_millis(50)).unwrap();
        (dir, a, b)
    }

    #[test]
    fn commit_keeps_and_drop_rolls_back() {
        let (_dir, mut a, b) = db();
        let tx = WriteTx::begin(&mut a).unwrap();
        tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert_eq!(count(&b), 0, "not visible before the commit");
        tx.commit().unwrap();
        assert_eq!(count(&b), 1);
        assert!(a.is_autocommit());
        {
            let tx = WriteTx::begin(&mut a).unwrap();
            tx.execute("INSERT INTO t VALUES (2)", []).unwrap();
        }
        assert!(a.is_autocommit(), "the dropped guard ended its transaction");
        assert_eq!(count(&a), 1);
        assert_eq!(count(&b), 1);
        // the cached statements serve the next transactions as the first
        for i in 0..3 {
            let tx = WriteTx::begin(&mut a).unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(count(&b), 4);
    }

    #[test]
    fn begin_takes_the_write_lock_at_once() {
        let (_dir, mut a, mut b) = db();
        let tx = WriteTx::begin(&mut a).unwrap();
        let err = WriteTx::begin(&mut b).unwrap_err();
        assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy));
        assert!(b.is_autocommit(), "the refused BEGIN left no transaction open");
        drop(tx);
        let tx = WriteTx::begin(&mut b).unwrap();
        tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
        tx.commit().unwrap();
        assert_eq!(count(&a), 1);
    }
}
