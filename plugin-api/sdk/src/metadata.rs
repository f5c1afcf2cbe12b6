//! Snapshot metadata for any plugin: [`MetadataStore`], the operations a driver needs (plain
//! create with libvirt's defaults, REDEFINE [+ CURRENT], libvirt's listing order, lookup,
//! current, delete with CHILDREN / CHILDREN_ONLY / METADATA_ONLY, all-or-nothing import, a
//! generation), implemented once by [`Metadata`] over a small [`MetadataBackend`] (load the
//! records of a domain; replace some of them atomically). The tree rules are the model's
//! ([`SnapshotTree`], [`redefine`]); a backend only stores records.
//!
//! Backends: [`DirBackend`](crate::metadata_dir::DirBackend) (a directory of files, no SQLite)
//! and, with the `sqlite` feature, [`SqliteMetadata`](crate::metadata_sqlite::SqliteMetadata)
//! (the model's SQLite store, which applies the same tree code in its own transactions).
//!
//! Domains are keyed by UUID: the UUID is also what a redefined snapshot's embedded `<domain>`
//! must carry.
//!
//! Per-operation cost: [`Metadata`] keeps each domain's built state (tree + definitions) with
//! the generation it reflects, and asks the backend whether that generation is still the
//! committed one ([`MetadataBackend::load_since`], [`MetadataBackend::update_since`]). A backend
//! that can confirm it cheaply (etcd: one read of the domain's pointer) makes a read O(1) in the
//! domain's size and a write its delta alone; after a commit, the cached state is the one the
//! operation built, recorded under the generation the backend reports. The defaults load
//! everything every time (the directory backend), so such a backend answers exactly as before.
//! A stale cache never answers or commits: only the backend's confirmation lets it be used, an
//! operation that failed (its changes may be half applied in memory) or a dry run drops it.

use std::collections::HashMap;

use virtplug_model::{
    Error, Result, SnapshotInfo,
    flags::{domain_state as st, snapshot_create as cf, snapshot_xml},
    import_order, redefine,
    tree::{Change, RedefineFlags, SnapshotTree, info_from_def},
    xml::{self, FormatFlags, MemorySpec, ParseFlags, SnapshotDef, SnapshotMode},
};

/// One stored snapshot: its definition (with `parent`) and its insertion sequence number, which
/// gives libvirt's sibling order (see the model's `tree.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The definition, `parent` included; `active` is not stored.
    pub def: SnapshotDef,
    /// Insertion sequence number.
    pub seq: u64,
}

/// A domain's committed metadata as a backend loads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Every snapshot, in any order.
    pub records: Vec<Record>,
    /// The current snapshot.
    pub current: Option<String>,
    /// Changes with every commit (0 for a domain never written).
    pub generation: u64,
}

/// What one operation changes, to be committed atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// Records added or replaced (by name).
    pub put: Vec<Record>,
    /// Names removed.
    pub remove: Vec<String>,
    /// The current snapshot after the commit.
    pub current: Option<String>,
}

/// Where records live. `update` must be atomic (after a crash the domain holds the state before
/// or after it) and exclusive against other writers of the same domain, also in other processes.
pub trait MetadataBackend: Send {
    /// The committed metadata of domain `dom`.
    fn load(&mut self, dom: &str) -> Result<Loaded>;
    /// Loads `dom` under the write lock, calls `f`, and commits what it returns (`None`: nothing
    /// changed, nothing is written and the generation stays). An error from `f` writes nothing.
    fn update(&mut self, dom: &str, f: &mut dyn FnMut(Loaded) -> Result<Option<Commit>>) -> Result<()>;
    /// `None` when `dom`'s committed metadata is still generation `known`, as this backend last
    /// loaded or committed it (confirmed with the store, never assumed); else what [`Self::load`]
    /// returns. The default always loads.
    fn load_since(&mut self, dom: &str, known: Option<u64>) -> Result<Option<Loaded>> {
        let _ = known;
        self.load(dom).map(Some)
    }
    /// [`Self::update`], except that `f` receives `None` when the committed metadata is still
    /// generation `known` (the caller's own copy of it is current; only on `f`'s first call, and
    /// the commit is fenced against any writer in between). Returns the generation the domain
    /// holds afterwards when the backend knows it is exactly `known` or what `f` saw plus its
    /// commit, `None` when the caller must not keep a copy. The default loads and returns `None`.
    fn update_since(
        &mut self,
        dom: &str,
        known: Option<u64>,
        f: &mut dyn FnMut(Option<Loaded>) -> Result<Option<Commit>>,
    ) -> Result<Option<u64>> {
        let _ = known;
        self.update(dom, &mut |loaded| f(Some(loaded)))?;
        Ok(None)
    }
}

/// The domain a plain create snapshots.
#[derive(Debug, Clone, Copy)]
pub struct DomainSnapshotSource<'a> {
    /// Its UUID (the store's key).
    pub uuid: &'a str,
    /// Its state (`flags::domain_state`): the snapshot's state.
    pub state: u32,
    /// Its definition, embedded in the snapshot (what a revert restores), if the plugin has one.
    pub xml: Option<&'a str>,
}

/// One change of a domain's snapshot metadata in [`MetadataStore::apply`], with the rules of
/// the single operation it names; the changes of one `apply` commit together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// [`MetadataStore::create_def`].
    Create(SnapshotDef),
    /// [`MetadataStore::redefine_def`].
    Redefine(SnapshotDef, RedefineFlags),
    /// [`MetadataStore::delete`] of the name with `snapshot_delete` flags.
    Delete(String, u32),
    /// [`MetadataStore::set_current`].
    SetCurrent(String),
}

/// The snapshot metadata operations of a driver, with libvirt's tree rules built in. `dom` is
/// the domain's UUID.
pub trait MetadataStore: Send {
    /// Plain create (`snapshot_create` without REDEFINE): parses `xml_text` (offline when the
    /// domain is inactive or with DISK_ONLY), fills libvirt's defaults (name = creation time =
    /// now, state = the domain's or disk-snapshot, memory internal when active and not disk-only,
    /// else none, the domain's definition embedded), links it under the current snapshot and
    /// makes it current. Returns the stored definition. Duplicate → OPERATION_FAILED.
    fn create(&mut self, dom: &DomainSnapshotSource<'_>, xml_text: &str, flags: u32) -> Result<SnapshotDef> {
        let def = plain_def(dom, xml_text, flags)?;
        self.create_def(dom.uuid, &def)?;
        Ok(def)
    }
    /// Plain create of a definition the driver completed itself (name, state, creation time).
    fn create_def(&mut self, dom: &str, def: &SnapshotDef) -> Result<()>;
    /// REDEFINE [+ CURRENT, DISK_ONLY] from XML: libvirt's parse and checks; returns the name.
    fn redefine(&mut self, dom: &str, xml_text: &str, flags: u32) -> Result<String> {
        let def = xml::parse(
            xml_text,
            ParseFlags { redefine: true, offline: flags & cf::DISK_ONLY != 0, ..Default::default() },
        )?;
        let name = def.name.clone();
        self.redefine_def(dom, def, redefine_flags(flags))?;
        Ok(name)
    }
    /// REDEFINE of a parsed definition.
    fn redefine_def(&mut self, dom: &str, def: SnapshotDef, flags: RedefineFlags) -> Result<()>;
    /// Every snapshot in libvirt's order (topological, newest sibling first).
    fn list(&mut self, dom: &str) -> Result<Vec<SnapshotInfo>>;
    /// One snapshot, or NO_DOMAIN_SNAPSHOT.
    fn lookup(&mut self, dom: &str, name: &str) -> Result<SnapshotInfo>;
    /// One snapshot's definition, `parent` filled in.
    fn definition(&mut self, dom: &str, name: &str) -> Result<SnapshotDef>;
    /// One snapshot's XML as libvirt prints it (`snapshot_xml` flags: SECURE).
    fn xml(&mut self, dom: &str, name: &str, flags: u32) -> Result<String> {
        let def = self.definition(dom, name)?;
        Ok(xml::format(
            &def,
            Some(dom),
            FormatFlags { secure: flags & snapshot_xml::SECURE != 0, ..Default::default() },
        ))
    }
    /// The current snapshot.
    fn current(&mut self, dom: &str) -> Result<Option<SnapshotInfo>>;
    /// Makes `name` current (revert's metadata effect).
    fn set_current(&mut self, dom: &str, name: &str) -> Result<()>;
    /// Delete with `snapshot_delete` flags: reparenting, CHILDREN, CHILDREN_ONLY (METADATA_ONLY
    /// has the same effect on metadata; the hypervisor's data is the driver's business).
    fn delete(&mut self, dom: &str, name: &str, flags: u32) -> Result<()>;
    /// Hierarchy import (`snapshot_import`): every XML redefined parents first, all or nothing,
    /// same-content names left alone, `current` marked only when this import creates it; with
    /// `dry_run` every check runs and nothing is written.
    fn import(&mut self, dom: &str, xmls: &[String], current: Option<&str>, dry_run: bool) -> Result<()>;
    /// Changes with every committed change of `dom`'s metadata.
    fn generation(&mut self, dom: &str) -> Result<u64>;
    /// Several changes in one commit, in order (a plugin whose one operation changes several
    /// snapshots: delete one and rewrite the stored `<domain>` of others). Any failing change
    /// commits none of them.
    fn apply(&mut self, dom: &str, edits: &[Edit]) -> Result<()>;
}

/// `snapshot_create` flags as the tree's redefine options.
pub fn redefine_flags(flags: u32) -> RedefineFlags {
    RedefineFlags { current: flags & cf::CURRENT != 0, disk_only: flags & cf::DISK_ONLY != 0 }
}

/// The definition of a plain create with libvirt's defaults (see [`MetadataStore::create`]).
pub fn plain_def(dom: &DomainSnapshotSource<'_>, xml_text: &str, flags: u32) -> Result<SnapshotDef> {
    let active = dom.state != st::SHUTOFF && dom.state != st::NOSTATE;
    let disk_only = flags & cf::DISK_ONLY != 0;
    let mut def = xml::parse(xml_text, ParseFlags { offline: disk_only || !active, ..Default::default() })?;
    def.fill_defaults(crate::now());
    def.state = if disk_only { st::DISK_SNAPSHOT } else { dom.state };
    if def.memory.is_none() {
        let mode = if disk_only || !active { SnapshotMode::No } else { SnapshotMode::Internal };
        def.memory = Some(MemorySpec { mode, file: None });
    }
    def.domain = dom.xml.map(str::to_owned);
    Ok(def)
}

/// [`MetadataStore`] over any [`MetadataBackend`], with each domain's built state cached under
/// the generation it reflects (see the module documentation).
pub struct Metadata<B> {
    backend: B,
    cache: HashMap<String, (u64, Domain)>,
    rebuilds: u64,
}

impl<B: std::fmt::Debug> std::fmt::Debug for Metadata<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata").field("backend", &self.backend).field("cached", &self.cache.len()).finish()
    }
}

/// A loaded domain: the tree and the definitions.
struct Domain {
    tree: SnapshotTree,
    defs: HashMap<String, SnapshotDef>,
}

impl Domain {
    fn from_loaded(loaded: Loaded) -> Self {
        let mut defs = HashMap::with_capacity(loaded.records.len());
        let mut records = Vec::with_capacity(loaded.records.len());
        for r in loaded.records {
            let mut info = info_from_def(&r.def);
            info.current = loaded.current.as_deref() == Some(r.def.name.as_str());
            records.push((info, r.seq));
            defs.insert(r.def.name.clone(), r.def);
        }
        Self { tree: SnapshotTree::from_records(records), defs }
    }

    fn definition(&self, name: &str) -> Result<SnapshotDef> {
        let parent = self.tree.get(name)?.parent;
        let def = self.defs.get(name).ok_or_else(|| Error::no_snapshot(name))?;
        Ok(SnapshotDef { parent, active: None, ..def.clone() })
    }

    /// Plain create of a completed definition, linked under the current snapshot.
    fn create(&mut self, def: &SnapshotDef) -> Result<Vec<Change>> {
        let changes = self.tree.create(def)?;
        self.defs.insert(def.name.clone(), SnapshotDef { parent: None, active: None, ..def.clone() });
        Ok(changes)
    }

    /// Redefine with the model's checks; an existing snapshot keeps its children and, without a
    /// new `<domain>`, its old one.
    fn redefine(&mut self, dom: &str, mut def: SnapshotDef, flags: RedefineFlags) -> Result<Vec<Change>> {
        let uuid = def.domain.as_deref().and_then(redefine::embedded_uuid);
        self.tree.check_redefine(&def, uuid.as_deref(), dom, flags)?;
        if let Some(old) = self.defs.get(&def.name) {
            redefine::merge_domain(old, &mut def)?;
        }
        let changes = self.tree.apply_redefine(&def, flags);
        self.defs.insert(def.name.clone(), def);
        Ok(changes)
    }

    /// The records `changes` touched, as a commit (`None` when there are none).
    fn commit(&mut self, changes: &[Change]) -> Option<Commit> {
        if changes.is_empty() {
            return None;
        }
        let mut commit = Commit { current: self.tree.current().map(str::to_owned), ..Commit::default() };
        let mut seen = std::collections::HashSet::new();
        for ch in changes {
            let name = match ch {
                Change::Insert(n) | Change::Update(n) | Change::Remove(n) | Change::Reparent { name: n, .. } => n,
                Change::Rename { to, .. } => to,
                Change::Current(_) => continue,
            };
            if !seen.insert(name.clone()) {
                continue;
            }
            match (self.definition(name), self.tree.seq(name)) {
                (Ok(def), Some(seq)) => commit.put.push(Record { def, seq }),
                _ => {
                    self.defs.remove(name);
                    commit.remove.push(name.clone());
                }
            }
        }
        Some(commit)
    }
}

impl<B: MetadataBackend> Metadata<B> {
    /// The store over `backend`.
    pub fn new(backend: B) -> Self {
        Self { backend, cache: HashMap::new(), rebuilds: 0 }
    }

    /// The backend.
    pub fn backend(&mut self) -> &mut B {
        &mut self.backend
    }

    /// How many times a domain's state was built from its whole record set so far (an
    /// inspection for tests and benches: an operation on a confirmed cache builds nothing).
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    fn build(&mut self, loaded: Loaded) -> Domain {
        self.rebuilds += 1;
        Domain::from_loaded(loaded)
    }

    /// The domain's committed state: the cached one when the backend confirms its generation.
    fn read(&mut self, dom: &str) -> Result<&Domain> {
        let known = self.cache.get(dom).map(|(g, _)| *g);
        let fresh = match self.backend.load_since(dom, known) {
            Ok(Some(loaded)) => Some(loaded),
            // Confirmed current; a backend confirming what was never cached is answered by a load.
            Ok(None) if known.is_some() => None,
            Ok(None) => Some(self.backend.load(dom)?),
            Err(e) => {
                self.cache.remove(dom);
                return Err(e);
            }
        };
        if let Some(loaded) = fresh {
            let generation = loaded.generation;
            let d = self.build(loaded);
            self.cache.insert(dom.to_owned(), (generation, d));
        }
        self.cache.get(dom).map(|(_, d)| d).ok_or_else(|| Error::internal("metadata cache lost a domain"))
    }

    /// Runs `op` on the domain under the backend's write lock and commits the records its
    /// changes touched; `op`'s value is returned after the commit. `op` runs on the cached state
    /// when the backend confirms it, else on a fresh build; the state it leaves is kept only
    /// after a commit the backend reports (`keep`: false for a dry run, whose changes are never
    /// committed).
    fn write<T>(
        &mut self,
        dom: &str,
        keep: bool,
        mut op: impl FnMut(&mut Domain) -> Result<(Vec<Change>, T)>,
    ) -> Result<T> {
        let (known, mut slot) = match self.cache.remove(dom) {
            Some((g, d)) => (Some(g), Some(d)),
            None => (None, None),
        };
        let mut out = None;
        let mut rebuilds = 0;
        let r = self.backend.update_since(dom, known, &mut |loaded| {
            if let Some(loaded) = loaded {
                rebuilds += 1;
                slot = Some(Domain::from_loaded(loaded));
            }
            let d = slot.as_mut().ok_or_else(|| Error::internal("metadata backend confirmed a state never cached"))?;
            let (changes, value) = op(d)?;
            out = Some(value);
            Ok(d.commit(&changes))
        });
        self.rebuilds += rebuilds;
        if let (Ok(Some(generation)), Some(d), true) = (&r, slot, keep) {
            self.cache.insert(dom.to_owned(), (*generation, d));
        }
        r?;
        out.ok_or_else(|| Error::internal("metadata backend did not run the update"))
    }
}

impl<B: MetadataBackend> MetadataStore for Metadata<B> {
    fn create_def(&mut self, dom: &str, def: &SnapshotDef) -> Result<()> {
        self.write(dom, true, |d| Ok((d.create(def)?, ())))
    }

    fn redefine_def(&mut self, dom: &str, def: SnapshotDef, flags: RedefineFlags) -> Result<()> {
        self.write(dom, true, |d| Ok((d.redefine(dom, def.clone(), flags)?, ())))
    }

    fn list(&mut self, dom: &str) -> Result<Vec<SnapshotInfo>> {
        Ok(self.read(dom)?.tree.list())
    }

    fn lookup(&mut self, dom: &str, name: &str) -> Result<SnapshotInfo> {
        self.read(dom)?.tree.get(name)
    }

    fn definition(&mut self, dom: &str, name: &str) -> Result<SnapshotDef> {
        self.read(dom)?.definition(name)
    }

    fn current(&mut self, dom: &str) -> Result<Option<SnapshotInfo>> {
        let d = self.read(dom)?;
        d.tree.current().map(|c| d.tree.get(c)).transpose()
    }

    fn set_current(&mut self, dom: &str, name: &str) -> Result<()> {
        self.write(dom, true, |d| Ok((d.tree.revert(name)?, ())))
    }

    fn delete(&mut self, dom: &str, name: &str, flags: u32) -> Result<()> {
        self.write(dom, true, |d| Ok((d.tree.delete(name, flags)?, ())))
    }

    fn import(&mut self, dom: &str, xmls: &[String], current: Option<&str>, dry_run: bool) -> Result<()> {
        let defs = xmls
            .iter()
            .map(|x| xml::parse(x, ParseFlags { redefine: true, ..Default::default() }))
            .collect::<Result<Vec<_>>>()?;
        let defs = import_order::order(defs)?;
        redefine::check_import_current(&defs, current)?;
        self.write(dom, !dry_run, |d| {
            let mut fresh = Vec::with_capacity(defs.len());
            for def in &defs {
                match d.defs.get(&def.name) {
                    None => fresh.push(def),
                    Some(old) => {
                        let parent = d.tree.get(&def.name)?.parent;
                        if !redefine::same_as_stored(def, old, parent.as_deref()) {
                            return Err(Error::new(
                                virtplug_model::codes::OPERATION_FAILED,
                                format!("domain moment {} already exists", def.name),
                            ));
                        }
                    }
                }
            }
            let mut changes = Vec::new();
            for def in fresh {
                let flags = RedefineFlags { current: current == Some(def.name.as_str()), disk_only: false };
                changes.extend(d.redefine(dom, def.clone(), flags)?);
            }
            // A dry run ran every check; it commits nothing.
            Ok((if dry_run { Vec::new() } else { changes }, ()))
        })
    }

    fn generation(&mut self, dom: &str) -> Result<u64> {
        self.read(dom)?;
        Ok(self.cache.get(dom).map_or(0, |(g, _)| *g))
    }

    fn apply(&mut self, dom: &str, edits: &[Edit]) -> Result<()> {
        self.write(dom, true, |d| {
            let mut changes = Vec::new();
            for e in edits {
                changes.extend(match e {
                    Edit::Create(def) => d.create(def)?,
                    Edit::Redefine(def, flags) => d.redefine(dom, def.clone(), *flags)?,
                    Edit::Delete(name, flags) => d.tree.delete(name, *flags)?,
                    Edit::SetCurrent(name) => d.tree.revert(name)?,
                });
            }
            Ok((changes, ()))
        })
    }
}
