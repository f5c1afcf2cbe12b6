//! The store's row readers, shared by the store and its write transactions: the domain row, a
//! domain's hierarchy, one stored snapshot definition, and the SQLite error conversion. A leaf:
//! it knows the schema, not the [`Store`](crate::store::Store) or its caches.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    DomainInfo, Error, Result, SnapshotInfo, codes,
    domain::DomainDef,
    tree::SnapshotTree,
    xml::{self, SnapshotDef},
};

/// One domain row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// Name.
    pub name: String,
    /// UUID (lower-case, dashed).
    pub uuid: String,
    /// The domain XML as defined.
    pub xml: String,
    /// `flags::domain_state` value.
    pub state: u32,
    /// State reason.
    pub reason: u32,
    /// Hypervisor id while active, -1 otherwise.
    pub id: i32,
    /// Persistent definition.
    pub persistent: bool,
}

impl DomainRecord {
    /// The list record (memory and vcpus from the XML; zero when it cannot be read).
    pub fn info(&self) -> DomainInfo {
        let def = DomainDef::parse(&self.xml).ok();
        DomainInfo {
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            id: self.id,
            state: self.state,
            reason: self.reason,
            max_memory_kib: def.as_ref().map_or(0, |d| d.max_memory_kib),
            memory_kib: def.as_ref().map_or(0, |d| d.memory_kib),
            vcpus: def.as_ref().map_or(0, |d| d.vcpus),
            persistent: self.persistent,
        }
    }
}

/// An SQLite error as a model error (OPERATION_FAILED, one line).
pub(crate) fn db(e: rusqlite::Error) -> Error {
    Error::new(codes::OPERATION_FAILED, format!("metadata store: {}", e.to_string().replace('\n', " ")))
}

pub(crate) fn domain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DomainRecord> {
    Ok(DomainRecord {
        name: r.get(0)?,
        uuid: r.get(1)?,
        xml: r.get(2)?,
        state: r.get(3)?,
        reason: r.get(4)?,
        id: r.get(5)?,
        persistent: r.get(6)?,
    })
}

/// Reads a domain's hierarchy.
pub(crate) fn load_tree(conn: &Connection, dom: &str) -> Result<SnapshotTree> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, parent, creation_time, state, external, disk_only, is_current, seq
             FROM snapshots WHERE dom_uuid = ?1",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![dom], |r| {
            Ok((
                SnapshotInfo {
                    name: r.get(0)?,
                    parent: r.get(1)?,
                    creation_time: r.get(2)?,
                    state: r.get(3)?,
                    current: r.get(6)?,
                    has_metadata: true,
                    external: r.get(4)?,
                    disk_only: r.get(5)?,
                },
                r.get::<_, i64>(7).map(|s| u64::try_from(s).unwrap_or(0))?,
            ))
        })
        .map_err(db)?;
    let records = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?;
    Ok(SnapshotTree::from_records(records))
}

/// Reads and parses one stored snapshot definition (without parent).
pub(crate) fn read_def(conn: &Connection, dom: &str, name: &str) -> Result<SnapshotDef> {
    let (text, domain): (String, Option<String>) = conn
        .prepare_cached(
            "SELECT s.xml, d.xml FROM snapshots s LEFT JOIN snapshot_domains d ON d.id = s.domain_id
             WHERE s.dom_uuid = ?1 AND s.name = ?2",
        )
        .map_err(db)?
        .query_row(params![dom, name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db)?
        .ok_or_else(|| Error::no_snapshot(name))?;
    let mut def = xml::parse_stored(&text)?;
    if domain.is_some() {
        def.domain = domain;
    }
    Ok(def)
}
