//! [`SqliteMetadata`]: [`MetadataStore`] over the model's SQLite store (feature `sqlite`), the
//! store the mock and QEMU plugins use. Each operation is one store transaction; the store
//! applies the same tree code ([`virtplug_model::tree`], [`virtplug_model::redefine`]) as
//! [`Metadata`](crate::metadata::Metadata), so both backends answer alike (tested side by side).

use std::path::Path;

use virtplug_model::{
    Result, SnapshotInfo,
    store::{Store, Sync, Writer},
    tree::RedefineFlags,
    xml::{self, ParseFlags, SnapshotDef},
};

use crate::metadata::{Edit, MetadataStore};

/// The model's SQLite store as a [`MetadataStore`]. Domains need no row of their own for the
/// snapshot operations; [`MetadataStore::generation`] reads the domain's row, so define the
/// domain first ([`Store::define_domain`] through [`SqliteMetadata::store`]) to use it.
#[derive(Debug)]
pub struct SqliteMetadata {
    store: Store,
}

impl SqliteMetadata {
    /// Opens (creating or migrating) the store at `path`.
    pub fn open(path: &Path, sync: Sync) -> Result<Self> {
        Ok(Self { store: Store::open(path, sync)? })
    }

    /// The underlying store (domains, jobs, one transaction spanning several operations).
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }
}

impl MetadataStore for SqliteMetadata {
    fn create_def(&mut self, dom: &str, def: &SnapshotDef) -> Result<()> {
        self.store.create(dom, def)
    }

    fn redefine_def(&mut self, dom: &str, def: SnapshotDef, flags: RedefineFlags) -> Result<()> {
        self.store.redefine(dom, def, flags)
    }

    fn list(&mut self, dom: &str) -> Result<Vec<SnapshotInfo>> {
        self.store.snapshots(dom)
    }

    fn lookup(&mut self, dom: &str, name: &str) -> Result<SnapshotInfo> {
        self.store.snapshot(dom, name)
    }

    fn definition(&mut self, dom: &str, name: &str) -> Result<SnapshotDef> {
        self.store.snapshot_def(dom, name)
    }

    fn current(&mut self, dom: &str) -> Result<Option<SnapshotInfo>> {
        self.store.current(dom)
    }

    fn set_current(&mut self, dom: &str, name: &str) -> Result<()> {
        self.store.set_current(dom, name)
    }

    fn delete(&mut self, dom: &str, name: &str, flags: u32) -> Result<()> {
        self.store.delete(dom, name, flags)
    }

    fn import(&mut self, dom: &str, xmls: &[String], current: Option<&str>, dry_run: bool) -> Result<()> {
        let defs = xmls
            .iter()
            .map(|x| xml::parse(x, ParseFlags { redefine: true, ..Default::default() }))
            .collect::<Result<Vec<_>>>()?;
        if dry_run {
            self.store.dry_run(|w| w.import(dom, defs, current))
        } else {
            self.store.import(dom, defs, current)
        }
    }

    fn generation(&mut self, dom: &str) -> Result<u64> {
        self.store.generation(dom)
    }

    fn apply(&mut self, dom: &str, edits: &[Edit]) -> Result<()> {
        self.store.write(|w| apply_edits(w, dom, edits))
    }
}

/// `edits` applied inside a store transaction the caller holds (so that a plugin can commit
/// them with its own rows: the domain's definition, say).
pub fn apply_edits(w: &mut Writer<'_, '_>, dom: &str, edits: &[Edit]) -> Result<()> {
    for e in edits {
        match e {
            Edit::Create(def) => w.create(dom, def)?,
            Edit::Redefine(def, flags) => w.redefine(dom, def.clone(), *flags)?,
            Edit::Delete(name, flags) => w.delete(dom, name, *flags)?,
            Edit::SetCurrent(name) => w.set_current(dom, name)?,
        }
    }
    Ok(())
}
