//! Per-domain generations: a number that changes with every committed write to a domain's row
//! or its snapshot rows, by any connection or process, and never takes a value that domain (or
//! any domain) had before, so that a reader can cache answers about a domain's snapshot tree
//! keyed by it (the daemon's `ETag`).
//!
//! A store-wide counter (the one-row `generation` table, schema v5) is incremented once per
//! committing write transaction that changed at least one domain, and every domain the
//! transaction changed takes its value (`domains.generation`), inside that transaction: a
//! rollback (an error, a job's refusal, a dry run) leaves both unchanged. Since the counter
//! only grows and survives in the store, values never repeat: not across reopens or processes,
//! and not when a domain is undefined and defined again (its new row takes a new value).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{Error, Result, codes, store_rows::db};

/// Schema v5: the counter row and each domain's generation. Domains that exist when the store
/// is migrated start at the counter's first value, 1; every later write takes a larger one.
pub(crate) const MIGRATE_V4_V5: &str = "
CREATE TABLE generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO generation (id, value) VALUES (1, 1);
ALTER TABLE domains ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
";

/// Gives every domain of `changed` (uuids) a new generation, inside `tx`; nothing when empty
/// (a write transaction that only read changes no generation). An undefined domain has no row
/// left, so it is skipped.
pub(crate) fn bump(tx: &Transaction<'_>, changed: &[String]) -> Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    tx.prepare_cached("UPDATE generation SET value = value + 1 WHERE id = 1").map_err(db)?.execute([]).map_err(db)?;
    // the new value read inside each update: one statement per domain, no separate read
    let mut stmt = tx
        .prepare_cached("UPDATE domains SET generation = (SELECT value FROM generation WHERE id = 1) WHERE uuid = ?1")
        .map_err(db)?;
    for uuid in changed {
        stmt.execute(params![uuid]).map_err(db)?;
    }
    Ok(())
}

/// The generation of domain `uuid` (one primary-key lookup), or NO_DOMAIN.
pub(crate) fn read(conn: &Connection, uuid: &str) -> Result<u64> {
    let value: i64 = conn
        .prepare_cached("SELECT generation FROM domains WHERE uuid = ?1")
        .map_err(db)?
        .query_row([uuid], |r| r.get(0))
        .optional()
        .map_err(db)?
        .ok_or_else(|| Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{uuid}'")))?;
    // The counter starts at 1 and only grows, so a stored value is never negative.
    Ok(u64::try_from(value).unwrap_or(0))
}

/// [`read`] of the domain named `name` (NO_DOMAIN naming it when there is none): one statement
/// for a driver that is given names, as the daemon's revalidation probe is.
pub(crate) fn read_of_named(conn: &Connection, name: &str) -> Result<u64> {
    let value: Option<i64> = conn
        .prepare_cached("SELECT generation FROM domains WHERE name = ?1")
        .map_err(db)?
        .query_row([name], |r| r.get(0))
        .optional()
        .map_err(db)?;
    Ok(u64::try_from(value.ok_or_else(|| Error::no_domain(name))?).unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
#[path = "store_gen_tests.rs"]
mod tests;
