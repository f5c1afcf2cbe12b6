//! [`Writer`]: the operations available inside one store transaction. Each method validates
//! with the [`SnapshotTree`] rules and then writes exactly the rows the tree reports changed.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use crate::{
    Error, Result, SnapshotInfo, codes,
    domain::DomainDef,
    redefine,
    store_rows::{DomainRecord, Shape, db, domain_row, layout_columns, load_tree, read_def, stored_text},
    store_tx::WriteTx,
    tree::{Change, RedefineFlags, SnapshotTree, info_from_def},
    xml::SnapshotDef,
};

/// In-memory caches of a store connection, dropped after a rollback or a foreign commit.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// Domain uuid → its hierarchy.
    pub trees: HashMap<String, SnapshotTree>,
    /// Embedded domain text → its `snapshot_domains` row id.
    domain_ids: Vec<(String, i64)>,
    /// Domain rows read by name (every create reads its domain's), dropped with any write to a
    /// domain row's columns they hold (definition, state, persistence, undefine).
    domains: Vec<DomainRecord>,
    /// Embedded domain text → the UUID inside it (pure; kept across rollbacks).
    domain_uuids: Vec<(String, Option<String>)>,
    /// Stored texts whose layout was checked by parsing, by template (pure; kept across
    /// rollbacks): see `store_rows::stored_text`.
    pub checked: crate::store_rows::CheckedTemplates,
}

/// Bound on the memo lists: a few distinct domain definitions are the common case. Lists, not
/// hash maps: hashing a domain text of a few KiB on every write cost more than comparing it
/// with the one or two texts a domain's snapshots share (a length check, then memcmp).
const MEMO_LIMIT: usize = 64;

impl Cache {
    /// Drops everything that mirrors database state.
    pub fn clear(&mut self) {
        self.trees.clear();
        self.domain_ids.clear();
        self.domains.clear();
    }
}

/// Operations inside one write transaction (see [`crate::store::Store::write`]).
#[derive(Debug)]
pub struct Writer<'a, 'c> {
    tx: &'a WriteTx<'c>,
    cache: &'a mut Cache,
    /// The schema on disk (its hierarchy reads differ by version).
    shape: Shape,
    /// Domains (uuids) this transaction reads or changes: the job check runs on them.
    touched: Vec<String>,
    /// Domains (uuids) whose rows this transaction wrote: they take a new generation.
    changed: Vec<String>,
    /// Changed domains whose row already took its new generation in this transaction, with a
    /// write of the row it made anyway (`point_current`); the commit leaves them alone.
    advanced: Vec<String>,
}

impl<'a, 'c> Writer<'a, 'c> {
    pub(crate) fn new(tx: &'a WriteTx<'c>, cache: &'a mut Cache, shape: Shape) -> Self {
        Self { tx, cache, shape, touched: Vec::new(), changed: Vec::new(), advanced: Vec::new() }
    }

    /// The domains this transaction touched, and those it changed whose generation the commit
    /// must still advance (see [`crate::store::Store::write`]).
    pub(crate) fn into_domains(self) -> (Vec<String>, Vec<String>) {
        let advanced = self.advanced;
        let pending = self.changed.into_iter().filter(|d| !advanced.contains(d)).collect();
        (self.touched, pending)
    }

    /// Records that `dom`'s rows were written (and so that it was touched).
    fn mark_changed(&mut self, dom: &str) {
        self.touch(dom);
        if !self.changed.iter().any(|d| d == dom) {
            self.changed.push(dom.to_owned());
        }
    }

    fn touch(&mut self, dom: &str) {
        if !self.touched.iter().any(|d| d == dom) {
            self.touched.push(dom.to_owned());
        }
    }

    fn tree(&mut self, dom: &str) -> Result<&mut SnapshotTree> {
        self.touch(dom);
        if !self.cache.trees.contains_key(dom) {
            let t = load_tree(self.tx, self.shape, dom)?;
            self.cache.trees.insert(dom.to_owned(), t);
        }
        self.cache.trees.get_mut(dom).ok_or_else(|| Error::internal("snapshot cache lost"))
    }

    /// Makes `name` the domain's current snapshot (none: no current snapshot): in the domain's
    /// row, or for a domain without one, in `snapshot_currents` (`store_rows::MIGRATE_V6_V7`).
    fn point_current(&mut self, dom: &str, name: Option<&str>) -> Result<()> {
        // The row takes the transaction's new generation in the same statement, which the
        // commit would otherwise write in one more (`store_gen::bump`): once per transaction,
        // and only while the row's epoch lasts (a used-up one is renewed by the commit).
        if self.changed.iter().any(|d| d == dom) && !self.advanced.iter().any(|d| d == dom) {
            let advanced = self
                .tx
                .prepare_cached(concat!(
                    "UPDATE domains SET current_snapshot = ?2, generation = generation + 1 WHERE uuid = ?1 AND ",
                    crate::store_gen::epoch_lasts!()
                ))
                .map_err(db)?
                .execute(params![dom, name])
                .map_err(db)?;
            if advanced != 0 {
                self.advanced.push(dom.to_owned());
                return Ok(());
            }
        }
        let in_row = self
            .tx
            .prepare_cached("UPDATE domains SET current_snapshot = ?2 WHERE uuid = ?1")
            .map_err(db)?
            .execute(params![dom, name])
            .map_err(db)?;
        if in_row != 0 {
            return Ok(());
        }
        match name {
            Some(name) => self
                .tx
                .prepare_cached(
                    "INSERT INTO snapshot_currents (dom_uuid, name) VALUES (?1, ?2)
                     ON CONFLICT(dom_uuid) DO UPDATE SET name = excluded.name",
                )
                .map_err(db)?
                .execute(params![dom, name]),
            None => {
                self.tx.prepare_cached("DELETE FROM snapshot_currents WHERE dom_uuid = ?1").map_err(db)?.execute([dom])
            }
        }
        .map_err(db)?;
        Ok(())
    }

    /// The id of the shared row holding domain text `xml`, inserting it if new.
    fn domain_text_id(&mut self, xml: &str) -> Result<i64> {
        if let Some((_, id)) = self.cache.domain_ids.iter().find(|(k, _)| k == xml) {
            return Ok(*id);
        }
        let digest = crate::sha256::hex_digest(xml.as_bytes());
        self.tx
            .prepare_cached("INSERT OR IGNORE INTO snapshot_domains (digest, xml) VALUES (?1, ?2)")
            .map_err(db)?
            .execute(params![digest, xml])
            .map_err(db)?;
        let id: i64 = self
            .tx
            .prepare_cached("SELECT id FROM snapshot_domains WHERE digest = ?1")
            .map_err(db)?
            .query_row([digest], |r| r.get(0))
            .map_err(db)?;
        if self.cache.domain_ids.len() >= MEMO_LIMIT {
            self.cache.domain_ids.clear();
        }
        self.cache.domain_ids.push((xml.to_owned(), id));
        Ok(id)
    }

    /// The UUID inside an embedded domain text (memoised).
    fn domain_text_uuid(&mut self, xml: &str) -> Option<String> {
        if let Some((_, u)) = self.cache.domain_uuids.iter().find(|(k, _)| k == xml) {
            return u.clone();
        }
        let u = redefine::embedded_uuid(xml);
        if self.cache.domain_uuids.len() >= MEMO_LIMIT {
            self.cache.domain_uuids.clear();
        }
        self.cache.domain_uuids.push((xml.to_owned(), u.clone()));
        u
    }

    /// Writes the rows for `changes`; `defs` supplies the definition of inserted/updated names.
    fn apply(&mut self, dom: &str, changes: &[Change], defs: &HashMap<&str, &SnapshotDef>) -> Result<()> {
        if !changes.is_empty() {
            self.mark_changed(dom);
        }
        // The tree reports every move of "current" (a removed or renamed current snapshot
        // included); the pointer is written once, with the last one.
        let mut current = None;
        let mut removed = false;
        for ch in changes {
            match ch {
                Change::Insert(name) | Change::Update(name) => {
                    let def = defs
                        .get(name.as_str())
                        .ok_or_else(|| Error::internal(format!("no definition for snapshot {name}")))?;
                    let info = info_from_def(def);
                    // the layout is written with the text, in the same statement: a dump splices by it
                    let (xml, layout) = stored_text(def, &mut self.cache.checked);
                    let [fmt_parent, fmt_domain, fmt_domain_end] = layout_columns(layout);
                    let domain_id = match &def.domain {
                        Some(d) => Some(self.domain_text_id(d)?),
                        None => None,
                    };
                    if matches!(ch, Change::Insert(_)) {
                        let seq = self.tree(dom)?.seq(name).unwrap_or(0);
                        let parent = self.tree(dom)?.get(name)?.parent;
                        self.tx
                            .prepare_cached(
                                "INSERT INTO snapshots (dom_uuid, name, parent, xml, creation_time, state,
                                 external, disk_only, seq, domain_id, fmt_parent, fmt_domain, fmt_domain_end)
                                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                            )
                            .map_err(db)?
                            .execute(params![
                                dom,
                                name,
                                parent,
                                xml,
                                info.creation_time,
                                info.state,
                                info.external,
                                info.disk_only,
                                i64::try_from(seq).unwrap_or(i64::MAX),
                                domain_id,
                                fmt_parent,
                                fmt_domain,
                                fmt_domain_end
                            ])
                            .map_err(db)?;
                    } else {
                        // a redefine re-links the snapshot as its parent's newest child (tree.rs)
                        let seq = self.tree(dom)?.seq(name).unwrap_or(0);
                        self.tx
                            .prepare_cached(
                                "UPDATE snapshots SET xml = ?3, creation_time = ?4, state = ?5, external = ?6,
                                 disk_only = ?7, domain_id = ?8, seq = ?9, fmt_parent = ?10, fmt_domain = ?11,
                                 fmt_domain_end = ?12 WHERE dom_uuid = ?1 AND name = ?2",
                            )
                            .map_err(db)?
                            .execute(params![
                                dom,
                                name,
                                xml,
                                info.creation_time,
                                info.state,
                                info.external,
                                info.disk_only,
                                domain_id,
                                i64::try_from(seq).unwrap_or(i64::MAX),
                                fmt_parent,
                                fmt_domain,
                                fmt_domain_end
                            ])
                            .map_err(db)?;
                    }
                }
                Change::Remove(name) => {
                    removed = true;
                    self.tx
                        .prepare_cached("DELETE FROM snapshots WHERE dom_uuid = ?1 AND name = ?2")
                        .map_err(db)?
                        .execute(params![dom, name])
                        .map_err(db)?;
                }
                Change::Reparent { name, parent } => {
                    // moved children take new seqs (libvirt's order, tree.rs)
                    let seq = self.tree(dom)?.seq(name).unwrap_or(0);
                    self.tx
                        .prepare_cached("UPDATE snapshots SET parent = ?3, seq = ?4 WHERE dom_uuid = ?1 AND name = ?2")
                        .map_err(db)?
                        .execute(params![dom, name, parent, i64::try_from(seq).unwrap_or(i64::MAX)])
                        .map_err(db)?;
                }
                Change::Rename { from, to } => {
                    self.tx
                        .prepare_cached("UPDATE snapshots SET name = ?3 WHERE dom_uuid = ?1 AND name = ?2")
                        .map_err(db)?
                        .execute(params![dom, from, to])
                        .map_err(db)?;
                }
                Change::Current(name) => current = Some(name.as_deref()),
            }
        }
        match current {
            Some(name) => self.point_current(dom, name)?,
            // Never left naming a snapshot that is gone (as a deleted row took its flag with it).
            None if removed => {
                self.tx
                    .prepare_cached(
                        "UPDATE domains SET current_snapshot = NULL WHERE uuid = ?1 AND NOT EXISTS
                         (SELECT 1 FROM snapshots s WHERE s.dom_uuid = ?1 AND s.name = domains.current_snapshot)",
                    )
                    .map_err(db)?
                    .execute(params![dom])
                    .map_err(db)?;
                self.tx
                    .prepare_cached(
                        "DELETE FROM snapshot_currents WHERE dom_uuid = ?1 AND NOT EXISTS
                         (SELECT 1 FROM snapshots s WHERE s.dom_uuid = ?1 AND s.name = snapshot_currents.name)",
                    )
                    .map_err(db)?
                    .execute(params![dom])
                    .map_err(db)?;
            }
            None => {}
        }
        Ok(())
    }

    // ----- domains -----

    /// libvirt's refusal of a definition whose UUID belongs to a domain of another name (a
    /// `define` never renames: `virDomainObjListAdd`'s "is already defined with uuid").
    /// `define_domain` itself allows it, for the plugins' own rewrites of a definition.
    pub fn check_define(&mut self, def: &DomainDef) -> Result<()> {
        match self.domain(&def.uuid) {
            Ok(d) if d.name != def.name => Err(Error::new(
                codes::OPERATION_FAILED,
                format!("domain '{}' is already defined with uuid {}", d.name, def.uuid),
            )),
            _ => Ok(()),
        }
    }

    /// Defines a domain, or updates the definition of the domain with the same UUID (its name
    /// may not be taken by another domain: OPERATION_FAILED).
    pub fn define_domain(&mut self, def: &DomainDef, state: u32, reason: u32, id: i32) -> Result<DomainRecord> {
        self.mark_changed(&def.uuid);
        let clash: Option<String> = self
            .tx
            .prepare_cached("SELECT uuid FROM domains WHERE name = ?1")
            .map_err(db)?
            .query_row([&def.name], |r| r.get(0))
            .optional()
            .map_err(db)?;
        if let Some(u) = clash.filter(|u| *u != def.uuid) {
            return Err(Error::new(
                codes::OPERATION_FAILED,
                format!("domain '{}' already exists with uuid {u}", def.name),
            ));
        }
        self.cache.domains.clear();
        // A new row takes a new epoch for its generations (`store_gen.rs`).
        if !crate::store_rows::domain_exists(self.tx, &def.uuid)? {
            crate::store_gen::new_epoch(self.tx)?;
        }
        self.tx
            .prepare_cached(
                "INSERT INTO domains (uuid, name, xml, state, reason, dom_id, persistent, current_snapshot, generation)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, (SELECT name FROM snapshot_currents WHERE dom_uuid = ?1),
                         (SELECT value FROM generation WHERE id = 1) << 32)
                 ON CONFLICT(uuid) DO UPDATE SET name = excluded.name, xml = excluded.xml",
            )
            .map_err(db)?
            .execute(params![def.uuid, def.name, def.xml, state, reason, id])
            .map_err(db)?;
        // A domain defined after its snapshots were kept: its current one moved into its row.
        self.tx
            .prepare_cached("DELETE FROM snapshot_currents WHERE dom_uuid = ?1")
            .map_err(db)?
            .execute([&def.uuid])
            .map_err(db)?;
        self.domain(&def.uuid)
    }

    /// The domain with `uuid`, or NO_DOMAIN.
    pub fn domain(&mut self, uuid: &str) -> Result<DomainRecord> {
        self.tx
            .prepare_cached("SELECT name, uuid, xml, state, reason, dom_id, persistent FROM domains WHERE uuid = ?1")
            .map_err(db)?
            .query_row([uuid], domain_row)
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{uuid}'")))
    }

    /// The domain named `name`, or NO_DOMAIN.
    pub fn domain_by_name(&mut self, name: &str) -> Result<DomainRecord> {
        if let Some(d) = self.cache.domains.iter().find(|d| d.name == name) {
            return Ok(d.clone());
        }
        let d = self
            .tx
            .prepare_cached("SELECT name, uuid, xml, state, reason, dom_id, persistent FROM domains WHERE name = ?1")
            .map_err(db)?
            .query_row([name], domain_row)
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::no_domain(name))?;
        if self.cache.domains.len() >= MEMO_LIMIT {
            self.cache.domains.clear();
        }
        self.cache.domains.push(d.clone());
        Ok(d)
    }

    /// Marks a domain persistent or transient.
    pub fn set_domain_persistent(&mut self, dom: &str, persistent: bool) -> Result<()> {
        self.mark_changed(dom);
        self.cache.domains.clear();
        self.tx
            .prepare_cached("UPDATE domains SET persistent = ?2 WHERE uuid = ?1")
            .map_err(db)?
            .execute(params![dom, persistent])
            .map_err(db)?;
        Ok(())
    }

    /// A free-form store setting (driver-private bookkeeping such as "initialised").
    pub fn meta(&mut self, key: &str) -> Result<Option<String>> {
        crate::store_rows::read_meta(self.tx, key)
    }

    /// Removes a store setting (nothing when it is not set).
    pub fn remove_meta(&mut self, key: &str) -> Result<()> {
        self.tx.prepare_cached("DELETE FROM meta WHERE key = ?1").map_err(db)?.execute([key]).map_err(db)?;
        Ok(())
    }

    /// Sets a store setting.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )
            .map_err(db)?
            .execute(params![key, value])
            .map_err(db)?;
        Ok(())
    }

    /// Sets a domain's state, reason and id.
    pub fn set_domain_state(&mut self, dom: &str, state: u32, reason: u32, id: i32) -> Result<()> {
        self.mark_changed(dom);
        self.cache.domains.clear();
        let n = self
            .tx
            .prepare_cached("UPDATE domains SET state = ?2, reason = ?3, dom_id = ?4 WHERE uuid = ?1")
            .map_err(db)?
            .execute(params![dom, state, reason, id])
            .map_err(db)?;
        if n == 0 {
            return Err(Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{dom}'")));
        }
        Ok(())
    }

    /// Removes a domain and every snapshot row of it (no reparenting: O(n)).
    pub fn undefine_domain(&mut self, dom: &str) -> Result<()> {
        self.remove_all_snapshots(dom)?;
        self.cache.domains.clear();
        self.tx.prepare_cached("DELETE FROM domains WHERE uuid = ?1").map_err(db)?.execute([dom]).map_err(db)?;
        self.tx
            .prepare_cached(
                "DELETE FROM snapshot_domains WHERE id NOT IN
                 (SELECT domain_id FROM snapshots WHERE domain_id IS NOT NULL)",
            )
            .map_err(db)?
            .execute([])
            .map_err(db)?;
        self.cache.domain_ids.clear();
        Ok(())
    }

    /// Removes every snapshot of `dom` (undefine with SNAPSHOTS_METADATA).
    pub fn remove_all_snapshots(&mut self, dom: &str) -> Result<()> {
        self.mark_changed(dom);
        self.tx.prepare_cached("DELETE FROM snapshots WHERE dom_uuid = ?1").map_err(db)?.execute([dom]).map_err(db)?;
        self.point_current(dom, None)?;
        self.tree(dom)?.clear();
        Ok(())
    }

    // ----- snapshots -----

    /// Number of snapshots of `dom`.
    pub fn snapshot_count(&mut self, dom: &str) -> Result<usize> {
        Ok(self.tree(dom)?.len())
    }

    /// One snapshot's record.
    pub fn snapshot(&mut self, dom: &str, name: &str) -> Result<SnapshotInfo> {
        self.tree(dom)?.get(name)
    }

    /// One snapshot's stored definition with its parent.
    pub fn snapshot_def(&mut self, dom: &str, name: &str) -> Result<SnapshotDef> {
        let parent = self.tree(dom)?.get(name)?.parent;
        let mut def = read_def(self.tx, dom, name)?;
        def.parent = parent;
        Ok(def)
    }

    /// Plain create: parent = current, becomes current; `def` must be complete (name, state,
    /// creation time, domain filled in by the driver).
    pub fn create(&mut self, dom: &str, def: &SnapshotDef) -> Result<()> {
        let changes = self.tree(dom)?.create(def)?;
        self.apply(dom, &changes, &HashMap::from([(def.name.as_str(), def)]))
    }

    /// Redefine with libvirt's checks; an existing snapshot keeps its children and, when the
    /// new XML has no `<domain>`, its old domain; both domains must be ABI-compatible.
    pub fn redefine(&mut self, dom: &str, mut def: SnapshotDef, flags: RedefineFlags) -> Result<()> {
        let uuid = match def.domain.as_deref() {
            Some(d) => self.domain_text_uuid(d),
            None => None,
        };
        self.tree(dom)?.check_redefine(&def, uuid.as_deref(), dom, flags)?;
        if self.tree(dom)?.contains(&def.name) {
            let old = read_def(self.tx, dom, &def.name)?;
            redefine::merge_domain(&old, &mut def)?;
        }
        let changes = self.tree(dom)?.apply_redefine(&def, flags);
        self.apply(dom, &changes, &HashMap::from([(def.name.as_str(), &def)]))
    }

    /// Delete with `snapshot_delete` flags (reparenting, current moves; see
    /// [`SnapshotTree::delete`]).
    pub fn delete(&mut self, dom: &str, name: &str, flags: u32) -> Result<()> {
        let changes = self.tree(dom)?.delete(name, flags)?;
        self.apply(dom, &changes, &HashMap::new())
    }

    /// Makes `name` current (revert).
    pub fn set_current(&mut self, dom: &str, name: &str) -> Result<()> {
        let changes = self.tree(dom)?.revert(name)?;
        self.apply(dom, &changes, &HashMap::new())
    }

    /// Imports a hierarchy (libvirt's replication workflow, in this one transaction): every
    /// definition is redefined parents first (whatever the input order), all or nothing. An
    /// import never replaces anything:
    /// - a name that already exists with other content — another parent, or another stored
    ///   definition (description, state, creation time, memory, disks, `<domain>` …) — refuses
    ///   the whole import with libvirt's duplicate-name error, OPERATION_FAILED `domain moment
    ///   NAME already exists`; every name is checked before anything is written, so a dry run
    ///   reports the same refusal;
    /// - a name that already exists with the same content is left exactly as it is (not
    ///   redefined, not re-linked, its current status kept), so replaying an import changes
    ///   nothing;
    /// - `current` must name one of `defs` (INVALID_ARG otherwise); it becomes current only when
    ///   this import creates it: a retried import leaves the current snapshot where it is;
    /// - order: each sibling list (the roots' too) ends up listed in the order `defs` gives it,
    ///   as an export lists it (newest first), so export → import keeps the listing identical.
    pub fn import(&mut self, dom: &str, defs: Vec<SnapshotDef>, current: Option<&str>) -> Result<()> {
        let defs = crate::import_order::order(defs)?;
        redefine::check_import_current(&defs, current)?;
        let mut fresh = Vec::with_capacity(defs.len());
        for def in defs {
            if !self.tree(dom)?.contains(&def.name) {
                fresh.push(def);
            } else if !self.same_as_stored(dom, &def)? {
                return Err(Error::new(codes::OPERATION_FAILED, format!("domain moment {} already exists", def.name)));
            }
        }
        for def in fresh {
            let flags = RedefineFlags { current: current == Some(def.name.as_str()), disk_only: false };
            self.redefine(dom, def, flags)?;
        }
        Ok(())
    }

    /// Whether redefining `def` over the existing snapshot of its name would leave what the
    /// store keeps unchanged: the same parent and the same stored definition (the old
    /// `<domain>` counts when `def` has none, because a redefine keeps it).
    fn same_as_stored(&mut self, dom: &str, def: &SnapshotDef) -> Result<bool> {
        let parent = self.tree(dom)?.get(&def.name)?.parent;
        let old = read_def(self.tx, dom, &def.name)?;
        Ok(redefine::same_as_stored(def, &old, parent.as_deref()))
    }

    /// Atomic edit: redefines `old` from `def`, renaming it when `def.name` differs (children
    /// and current status follow the rename; the new name must be free).
    pub fn edit(&mut self, dom: &str, old: &str, def: SnapshotDef, flags: RedefineFlags) -> Result<()> {
        if !self.tree(dom)?.contains(old) {
            return Err(Error::no_snapshot(old));
        }
        if def.name != old {
            let changes = self.tree(dom)?.rename(old, &def.name)?;
            self.apply(dom, &changes, &HashMap::new())?;
        }
        self.redefine(dom, def, flags)
    }
}
