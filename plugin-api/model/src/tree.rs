//! The snapshot hierarchy of one domain, in memory, with libvirt's rules: create (parent =
//! current, becomes current), redefine (cycle checks, uuid and state-change checks, subtree
//! moves, current only on request), delete (reparent children, move current; CHILDREN,
//! CHILDREN_ONLY), revert (sets current) and topological order.
//!
//! Every mutating operation validates first and mutates only on success, and returns the list
//! of [`Change`]s it made so that a store can persist exactly those rows.
//!
//! Order (libvirt's `virdomainmomentobjlist.c`): each snapshot's children are kept NEWEST
//! FIRST, because `virDomainMomentSetParent` prepends to `first_child`, and every walk is depth
//! first (a node, then its whole subtree, then its next sibling); the roots are the children of
//! a hidden metaroot and follow the same rule. "Newest" means most recently linked to its
//! parent, which the insertion sequence number `seq` records:
//! - create, and a redefine of a new name: a new seq (`virDomainSnapshotAssignDef` + link);
//! - a redefine of an existing name gets a new seq even when its parent does not change
//!   (`virDomainSnapshotReplaceDef` drops the parent link, `virDomainSnapshotLinkParent`
//!   prepends it again), and it keeps its children in their order;
//! - a delete that reparents moves the children as one block, in their order, in front of the
//!   new parent's (or the metaroot's) existing children (`virDomainMomentMoveChildren`): they
//!   get new seqs, oldest first;
//! - revert, rename and the removal of other snapshots leave every seq alone.
//!
//! Complexity: lookups are O(1); the cycle check walks from the proposed parent to its root only
//! when the redefined snapshot already exists, has children *and* changes parent (a new
//! snapshot or a leaf cannot be an ancestor of anything, and an unchanged link cannot add a
//! cycle), so redefining or re-redefining a chain in topological order is O(1) per snapshot,
//! unlike libvirt's O(depth) walk.

use std::collections::{BTreeSet, HashMap};

use crate::{
    Error, Result, SnapshotInfo, codes,
    flags::{domain_state as st, snapshot_delete},
    xml::SnapshotDef,
};

/// One row-level effect of a tree operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A snapshot was added.
    Insert(String),
    /// A snapshot's own fields (not its parent) were replaced.
    Update(String),
    /// A snapshot was removed.
    Remove(String),
    /// A snapshot got a new parent.
    Reparent {
        /// The snapshot.
        name: String,
        /// Its new parent.
        parent: Option<String>,
    },
    /// A snapshot was renamed (its children were re-pointed separately by `Reparent`).
    Rename {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// The current snapshot changed.
    Current(Option<String>),
}

/// Options of a redefine (`VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RedefineFlags {
    /// `CREATE_CURRENT`: make the snapshot current.
    pub current: bool,
    /// `CREATE_DISK_ONLY` was given.
    pub disk_only: bool,
}

#[derive(Debug, Clone)]
struct Node {
    info: SnapshotInfo,
    /// `(seq, name)` of the children: iterated in reverse, newest first (libvirt's order).
    children: BTreeSet<(u64, String)>,
    seq: u64,
}

/// The snapshot hierarchy of one domain.
#[derive(Debug, Clone, Default)]
pub struct SnapshotTree {
    nodes: HashMap<String, Node>,
    current: Option<String>,
    next_seq: u64,
}

/// The list record of a definition (not current, with metadata).
pub fn info_from_def(def: &SnapshotDef) -> SnapshotInfo {
    SnapshotInfo {
        name: def.name.clone(),
        parent: def.parent.clone(),
        creation_time: def.creation_time,
        state: def.state,
        current: false,
        has_metadata: true,
        external: def.is_external(),
        disk_only: def.is_disk_only(),
    }
}

fn is_online(state: u32) -> bool {
    state == st::RUNNING || state == st::PAUSED
}

impl SnapshotTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a tree from stored records given with their insertion sequence numbers. Records
    /// whose parent is missing are kept as roots of their own (their `parent` is preserved).
    pub fn from_records(records: Vec<(SnapshotInfo, u64)>) -> Self {
        let mut t = Self::new();
        for (mut info, seq) in records {
            if info.current {
                t.current = Some(info.name.clone());
            }
            info.current = false;
            t.next_seq = t.next_seq.max(seq + 1);
            t.nodes.insert(info.name.clone(), Node { info, children: BTreeSet::new(), seq });
        }
        let links: Vec<(String, u64, String)> =
            t.nodes.values().filter_map(|n| n.info.parent.clone().map(|p| (p, n.seq, n.info.name.clone()))).collect();
        for (parent, seq, child) in links {
            if let Some(p) = t.nodes.get_mut(&parent) {
                p.children.insert((seq, child));
            }
        }
        t
    }

    /// Number of snapshots.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }
    /// Whether there are no snapshots.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
    /// Whether `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }
    /// The current snapshot's name.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }
    /// The insertion sequence number of `name`.
    pub fn seq(&self, name: &str) -> Option<u64> {
        self.nodes.get(name).map(|n| n.seq)
    }

    /// The record of `name` (with `current` filled in), or NO_DOMAIN_SNAPSHOT.
    pub fn get(&self, name: &str) -> Result<SnapshotInfo> {
        let n = self.nodes.get(name).ok_or_else(|| Error::no_snapshot(name))?;
        let mut info = n.info.clone();
        info.current = self.current.as_deref() == Some(name);
        Ok(info)
    }

    /// Direct children of `name`, newest first (libvirt's `first_child` list).
    pub fn children(&self, name: &str) -> Result<Vec<String>> {
        let n = self.nodes.get(name).ok_or_else(|| Error::no_snapshot(name))?;
        Ok(n.children.iter().rev().map(|(_, c)| c.clone()).collect())
    }

    /// Every descendant of `name` in libvirt's walk: depth first, pre-order, newest child first.
    pub fn descendants(&self, name: &str) -> Result<Vec<String>> {
        let n = self.nodes.get(name).ok_or_else(|| Error::no_snapshot(name))?;
        let mut out = Vec::new();
        self.walk(n.children.iter().map(|(_, c)| c), &mut out);
        Ok(out)
    }

    /// Pre-order from `oldest_first` (a sibling list, oldest first): the newest sibling and its
    /// subtree come first. Iterative, so a 16,000-deep chain needs no deep stack.
    fn walk<'t>(&'t self, oldest_first: impl Iterator<Item = &'t String>, out: &mut Vec<String>) {
        self.visit(oldest_first, |name, _| out.push(name.clone()));
    }

    /// Depth first, pre-order from `oldest_first` (iterated newest first), children newest
    /// first: `f(name, node)` for each (`node` is `None` for a name the tree does not hold).
    fn visit<'t>(
        &'t self,
        oldest_first: impl Iterator<Item = &'t String>,
        mut f: impl FnMut(&'t String, Option<&'t Node>),
    ) {
        let mut stack: Vec<&String> = oldest_first.collect();
        while let Some(name) = stack.pop() {
            let node = self.nodes.get(name);
            f(name, node);
            if let Some(n) = node {
                stack.extend(n.children.iter().map(|(_, c)| c));
            }
        }
    }

    /// The roots (a snapshot whose parent is missing counts as one), oldest first.
    fn roots(&self) -> Vec<&String> {
        fn key(n: &Node) -> (u64, &String) {
            (n.seq, &n.info.name)
        }
        let mut roots: Vec<(u64, &String)> = self.nodes.values().filter(|n| n.info.parent.is_none()).map(key).collect();
        // A snapshot whose parent exists hangs in that parent's children, so when those and the
        // parentless ones are all there is, no parent is missing and none needs looking up (a
        // lookup per snapshot was a quarter of a 16,000-snapshot listing).
        let linked: usize = self.nodes.values().map(|n| n.children.len()).sum();
        if roots.len() + linked != self.nodes.len() {
            roots = self
                .nodes
                .values()
                .filter(|n| n.info.parent.as_ref().is_none_or(|p| !self.nodes.contains_key(p)))
                .map(key)
                .collect();
        }
        roots.sort();
        roots.into_iter().map(|(_, n)| n).collect()
    }

    /// Every record, in libvirt's topological order (see [`SnapshotTree::topological_names`]):
    /// one walk, each record copied once.
    pub fn list(&self) -> Vec<SnapshotInfo> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let current = self.current.as_deref();
        self.visit(self.roots().into_iter(), |name, node| {
            if let Some(n) = node {
                let mut info = n.info.clone();
                info.current = current == Some(name.as_str());
                out.push(info);
            }
        });
        out
    }

    /// Names in libvirt's `LIST_TOPOLOGICAL` order: the walk from the metaroot, depth first,
    /// pre-order, siblings (roots too) newest first. A snapshot whose parent is missing counts
    /// as a root. O(n log n).
    pub fn topological_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.nodes.len());
        self.walk(self.roots().into_iter(), &mut out);
        out
    }

    /// Gives `name` the next seq and links it as the newest child of its recorded parent.
    fn relink(&mut self, name: &str) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let Some(node) = self.nodes.get_mut(name) else { return };
        let old = std::mem::replace(&mut node.seq, seq);
        let parent = node.info.parent.clone();
        if let Some(p) = parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
            p.children.remove(&(old, name.to_owned()));
            p.children.insert((seq, name.to_owned()));
        }
    }

    fn set_current(&mut self, name: Option<String>, changes: &mut Vec<Change>) {
        if self.current != name {
            self.current = name.clone();
            changes.push(Change::Current(name));
        }
    }

    /// A new snapshot from a plain create: its parent is the current snapshot and it becomes
    /// current. `def.parent` is ignored. Duplicate → OPERATION_FAILED.
    pub fn create(&mut self, def: &SnapshotDef) -> Result<Vec<Change>> {
        if self.nodes.contains_key(&def.name) {
            return Err(Error::new(codes::OPERATION_FAILED, format!("domain moment {} already exists", def.name)));
        }
        let mut info = info_from_def(def);
        info.parent = self.current.clone();
        let name = info.name.clone();
        self.insert(info);
        let mut changes = vec![Change::Insert(name.clone())];
        self.set_current(Some(name), &mut changes);
        Ok(changes)
    }

    fn insert(&mut self, info: SnapshotInfo) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(p) = info.parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
            p.children.insert((seq, info.name.clone()));
        }
        self.nodes.insert(info.name.clone(), Node { info, children: BTreeSet::new(), seq });
    }

    /// The checks of a redefine, in libvirt's order (cycle checks, then
    /// `virDomainSnapshotRedefineValidate`, then "missing domain"). `def_domain_uuid` is the
    /// UUID inside `def`'s full `<domain>`, `vm_uuid` the domain's.
    pub fn check_redefine(
        &self,
        def: &SnapshotDef,
        def_domain_uuid: Option<&str>,
        vm_uuid: &str,
        flags: RedefineFlags,
    ) -> Result<()> {
        let name = &def.name;
        if let Some(parent) = &def.parent {
            if parent == name {
                return Err(Error::invalid_arg(format!("cannot set moment {name} as its own parent")));
            }
            if !self.nodes.contains_key(parent) {
                return Err(Error::invalid_arg(format!("parent {parent} for moment {name} not found")));
            }
            // Only an existing snapshot with children that changes parent can create a cycle.
            let may_cycle = self
                .nodes
                .get(name)
                .is_some_and(|n| !n.children.is_empty() && n.info.parent.as_deref() != Some(parent.as_str()));
            if may_cycle {
                let mut cur = self.nodes.get(parent).and_then(|n| n.info.parent.as_ref());
                let mut steps = 0usize;
                while let Some(p) = cur {
                    if p == name {
                        return Err(Error::invalid_arg(format!("parent {parent} would create cycle to {name}")));
                    }
                    steps += 1;
                    if steps > self.nodes.len() {
                        break;
                    }
                    cur = self.nodes.get(p).and_then(|n| n.info.parent.as_ref());
                }
            }
        }
        if flags.disk_only && def.state != st::DISK_SNAPSHOT {
            return Err(Error::invalid_arg(format!("disk-only flag for snapshot {name} requires disk-snapshot state")));
        }
        if let Some(u) = def_domain_uuid {
            if !u.eq_ignore_ascii_case(vm_uuid) {
                return Err(Error::invalid_arg(format!("definition for snapshot {name} must use uuid {vm_uuid}")));
            }
        }
        match self.nodes.get(name) {
            Some(other) => {
                if is_online(other.info.state) != is_online(def.state) {
                    return Err(Error::invalid_arg(format!(
                        "cannot change between online and offline snapshot state in snapshot {name}"
                    )));
                }
                if (other.info.state == st::DISK_SNAPSHOT) != (def.state == st::DISK_SNAPSHOT) {
                    return Err(Error::invalid_arg(format!(
                        "cannot change between disk only and full system in snapshot {name}"
                    )));
                }
            }
            None => {
                if def.domain.is_none() && def.legacy_uuid.is_some() {
                    return Err(Error::internal("missing domain in snapshot"));
                }
            }
        }
        Ok(())
    }

    /// Redefines `def` (see [`SnapshotTree::check_redefine`]): an existing snapshot keeps its
    /// children (a new parent moves the whole subtree) and becomes its parent's newest child,
    /// as in libvirt even when the parent is unchanged; the current snapshot changes only with
    /// `flags.current`.
    pub fn redefine(
        &mut self,
        def: &SnapshotDef,
        def_domain_uuid: Option<&str>,
        vm_uuid: &str,
        flags: RedefineFlags,
    ) -> Result<Vec<Change>> {
        self.check_redefine(def, def_domain_uuid, vm_uuid, flags)?;
        Ok(self.apply_redefine(def, flags))
    }

    /// Applies a redefine that [`SnapshotTree::check_redefine`] accepted.
    pub fn apply_redefine(&mut self, def: &SnapshotDef, flags: RedefineFlags) -> Vec<Change> {
        let mut changes = Vec::new();
        let info = info_from_def(def);
        let name = info.name.clone();
        if let Some(node) = self.nodes.get_mut(&name) {
            let old_parent = node.info.parent.clone();
            let seq = node.seq;
            node.info = info;
            if old_parent != def.parent {
                if let Some(p) = old_parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
                    p.children.remove(&(seq, name.clone()));
                }
                if let Some(p) = def.parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
                    p.children.insert((seq, name.clone()));
                }
            }
            // ReplaceDef drops the parent link and LinkParent prepends it again: newest child
            self.relink(&name);
            changes.push(Change::Update(name.clone()));
            if old_parent != def.parent {
                changes.push(Change::Reparent { name: name.clone(), parent: def.parent.clone() });
            }
        } else {
            self.insert(info);
            changes.push(Change::Insert(name.clone()));
        }
        if flags.current {
            self.set_current(Some(name), &mut changes);
        }
        changes
    }

    /// Reverting to `name` makes it current.
    pub fn revert(&mut self, name: &str) -> Result<Vec<Change>> {
        if !self.nodes.contains_key(name) {
            return Err(Error::no_snapshot(name));
        }
        let mut changes = Vec::new();
        self.set_current(Some(name.to_owned()), &mut changes);
        Ok(changes)
    }

    /// Deletes `name` with `flags` (`snapshot_delete` bits):
    /// - none: its children move to its parent; a current `name` passes current to its parent;
    /// - CHILDREN: `name` and all descendants go; current (if among them) moves to the parent;
    /// - CHILDREN_ONLY: only the descendants go; current (if among them) moves to `name`.
    ///
    /// METADATA_ONLY has the same effect on the tree.
    pub fn delete(&mut self, name: &str, flags: u32) -> Result<Vec<Change>> {
        let node = self.nodes.get(name).ok_or_else(|| Error::no_snapshot(name))?;
        let parent = node.info.parent.clone();
        let mut changes = Vec::new();
        if flags & (snapshot_delete::CHILDREN | snapshot_delete::CHILDREN_ONLY) != 0 {
            let doomed = self.descendants(name)?;
            let current_doomed = self.current.as_ref().is_some_and(|c| doomed.contains(c));
            for d in &doomed {
                self.nodes.remove(d);
                changes.push(Change::Remove(d.clone()));
            }
            if let Some(n) = self.nodes.get_mut(name) {
                n.children.clear();
            }
            if flags & snapshot_delete::CHILDREN != 0 {
                let was_current = current_doomed || self.current.as_deref() == Some(name);
                self.unlink(name, &parent);
                changes.push(Change::Remove(name.to_owned()));
                if was_current {
                    self.set_current(parent, &mut changes);
                }
            } else if current_doomed {
                self.set_current(Some(name.to_owned()), &mut changes);
            }
            return Ok(changes);
        }
        // virDomainMomentMoveChildren: the children move as one block, in their order, in front
        // of the new parent's children; linking them oldest first with new seqs does exactly that.
        let children = self.nodes.get_mut(name).map(|n| std::mem::take(&mut n.children)).unwrap_or_default();
        for (_, c) in &children {
            if let Some(cn) = self.nodes.get_mut(c) {
                cn.info.parent = parent.clone();
            }
            self.relink(c);
            changes.push(Change::Reparent { name: c.clone(), parent: parent.clone() });
        }
        let was_current = self.current.as_deref() == Some(name);
        self.unlink(name, &parent);
        changes.push(Change::Remove(name.to_owned()));
        if was_current {
            self.set_current(parent, &mut changes);
        }
        Ok(changes)
    }

    fn unlink(&mut self, name: &str, parent: &Option<String>) {
        let Some(node) = self.nodes.remove(name) else { return };
        if let Some(p) = parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
            p.children.remove(&(node.seq, name.to_owned()));
        }
    }

    /// Renames `from` to `to`, keeping its parent, children (re-pointed) and current status.
    /// `to` existing → OPERATION_FAILED "domain moment %s already exists".
    pub fn rename(&mut self, from: &str, to: &str) -> Result<Vec<Change>> {
        if from == to {
            return Ok(Vec::new());
        }
        if self.nodes.contains_key(to) {
            return Err(Error::new(codes::OPERATION_FAILED, format!("domain moment {to} already exists")));
        }
        let mut node = self.nodes.remove(from).ok_or_else(|| Error::no_snapshot(from))?;
        node.info.name = to.to_owned();
        let mut changes = vec![Change::Rename { from: from.to_owned(), to: to.to_owned() }];
        if let Some(p) = node.info.parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
            p.children.remove(&(node.seq, from.to_owned()));
            p.children.insert((node.seq, to.to_owned()));
        }
        for (_, c) in &node.children {
            if let Some(cn) = self.nodes.get_mut(c) {
                cn.info.parent = Some(to.to_owned());
            }
            changes.push(Change::Reparent { name: c.clone(), parent: Some(to.to_owned()) });
        }
        self.nodes.insert(to.to_owned(), node);
        if self.current.as_deref() == Some(from) {
            self.current = Some(to.to_owned());
            changes.push(Change::Current(Some(to.to_owned())));
        }
        Ok(changes)
    }

    /// Removes every snapshot without reparenting (undefine with SNAPSHOTS_METADATA). O(n).
    pub fn clear(&mut self) -> Vec<Change> {
        let mut changes: Vec<Change> = self.nodes.drain().map(|(k, _)| Change::Remove(k)).collect();
        if self.current.take().is_some() {
            changes.push(Change::Current(None));
        }
        changes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
#[path = "tree_tests.rs"]
mod tests;
