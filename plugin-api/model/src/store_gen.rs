//! Per-domain generations: a number that changes with every committed write to a domain's row
//! or its snapshot rows, by any connection or process, and never takes a value that domain (or
//! any domain) had before, so that a reader can cache answers about a domain's snapshot tree
//! keyed by it (the daemon's `ETag`).
//!
//! A domain row's generation is `epoch << 32 | writes` (schema v7). Its epoch comes from the
//! store-wide counter (the one-row `generation` table) when the row is created, so no two rows,
//! of the same domain or of different ones, ever share an epoch; every committing write
//! transaction that changed the domain adds 1, inside that transaction: a rollback (an error, a
//! job's refusal, a dry run) leaves it unchanged. A write counts only on the domain's own row,
//! which the write rewrites anyway (its current snapshot lives there too), so the store-wide
//! counter's page is written only when a domain is defined, not on every snapshot change. Values
//! never repeat: not across reopens or processes, not when a domain is undefined and defined
//! again (a new row, a new epoch), and not between domains, so a name that moves from one domain
//! to another never meets an old value. (v5 and v6 gave every write the store-wide counter's next
//! value; v7 starts every existing domain on an epoch above it.) A domain that used up its 2^32
//! values of one epoch takes a new epoch.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{Error, Result, codes, store_rows::db};

/// Schema v5: the counter row and each domain's generation. Domains that exist when the store
/// is migrated start at the counter's first value, 1; every later write takes a larger one.
pub(crate) const MIGRATE_V4_V5: &str = "
CREATE TABLE generation (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO generation (id, value) VALUES (1, 1);
ALTER TABLE domains ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
";

/// v7: every existing domain starts on an epoch of its own above the counter's last value (every
/// value given out so far is at most that value, below any value of the new form); the counter
/// then holds the last epoch given out.
pub(crate) const MIGRATE_GENERATIONS_V7: &str = "
UPDATE domains SET generation = ((SELECT value FROM generation WHERE id = 1) + 1
    + (SELECT count(*) FROM domains d WHERE d.uuid < domains.uuid)) << 32;
UPDATE generation SET value = value + (SELECT count(*) FROM domains) WHERE id = 1;
";

/// The SQL condition that a domain row's epoch has values left (its write count below 2^32 - 1):
/// a row advances its generation by 1 only while it holds.
macro_rules! epoch_lasts {
    () => {
        "(generation & 4294967295) != 4294967295"
    };
}
pub(crate) use epoch_lasts;

/// Gives every domain of `changed` (uuids) a new generation, inside `tx`; nothing when empty
/// (a write transaction that only read changes no generation). An undefined domain has no row
/// left, so it is skipped.
pub(crate) fn bump(tx: &Connection, changed: &[String]) -> Result<()> {
    for uuid in changed {
        let counted = tx
            .prepare_cached(concat!(
                "UPDATE domains SET generation = generation + 1 WHERE uuid = ?1 AND ",
                epoch_lasts!()
            ))
            .map_err(db)?
            .execute(params![uuid])
            .map_err(db)?;
        if counted == 0 && crate::store_rows::domain_exists(tx, uuid)? {
            // this epoch's values are used up: the domain takes a new one
            new_epoch(tx)?;
            tx.prepare_cached(
                "UPDATE domains SET generation = (SELECT value FROM generation WHERE id = 1) << 32 WHERE uuid = ?1",
            )
            .map_err(db)?
            .execute(params![uuid])
            .map_err(db)?;
        }
    }
    Ok(())
}

/// Takes the store-wide counter's next value as a new epoch (a new domain row's, in `tx`); the
/// row's first generation is then `(SELECT value FROM generation WHERE id = 1) << 32`.
pub(crate) fn new_epoch(tx: &Connection) -> Result<()> {
    tx.prepare_cached("UPDATE generation SET value = value + 1 WHERE id = 1").map_err(db)?.execute([]).map_err(db)?;
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
    // Epochs start at 1 and only grow, far below 2^31, so a stored value is never negative.
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
