//! Snapshot operations. Reads (list, lookup, current, XML) read the VM's whole tree
//! (`snapshot`: rootSnapshotList and currentSnapshot) in one call. Every change runs one task
//! whose outcome is read together with the VM's name and new tree in one more call, and that
//! tree is kept. A create starts from the kept tree (2 round trips on a connection that has read
//! the VM before, 3 on the first); a revert or a delete always reads the tree first (3).
//!
//! Why revert and delete do not act on the kept tree: vSphere names a snapshot by its moref and
//! lets any client rename it, so the kept name-to-moref map may be behind — another client may
//! have renamed the snapshot and given its name to another one. A revert (which discards the
//! VM's present state) or a delete reached through that map would act on a snapshot the caller
//! did not name, and neither can be undone. A fresh read narrows that race to the one round trip
//! between the read and the task call, which is the least the API allows (it has no
//! act-on-name call).
//!
//! What the kept tree can do to a create, and how each case is answered:
//! - a stale VM moref (the VM was removed elsewhere): the task call faults with
//!   ManagedObjectNotFound, the server did nothing; the tree is read again and the operation
//!   runs exactly as it does from a fresh read;
//! - a name the kept tree already has: read again before refusing, so a refusal always comes
//!   from a fresh tree;
//! - a name created elsewhere since: create does not see it and makes a duplicate. vSphere has
//!   no atomic create-if-absent, so a fresh read has the same race (between the read and the
//!   task); the kept tree only widens its window to the time since this connection last
//!   spoke to the VM, and a duplicate is visible and deletable by id (nothing is lost).

use std::sync::Arc;

use virtplug_plugin_sdk::{
    Error, Result, SnapshotInfo, codes,
    flags::{snapshot_create as cf, snapshot_delete as df, snapshot_revert as rf},
    model::xml::{self, ParseFlags, SnapshotMode},
};

use crate::{
    conn::{Connection, VmRef, lock, unescape_vm_name},
    fault::Subject,
    soap::CallError,
    tree::Tree,
    vim::{self, MoRef, ObjectContent},
    xmldom::escape,
};

/// Read with a task's outcome: the VM's name (a VM renamed meanwhile is not kept) and tree.
const DONE_PATHS: &[&str] = &["name", "snapshot"];
/// The same, with the power state (revert with RUNNING or PAUSED).
const DONE_PATHS_POWER: &[&str] = &["name", "snapshot", "runtime.powerState"];

/// Where a change starts: the VM's moref and tree, kept (`cached`) or read now.
struct Start {
    vm: MoRef,
    tree: Arc<Tree>,
    cached: bool,
}

/// A failed attempt. `Stale`: a kept moref was not found on the server (nothing was done
/// there); `Refused`: refused from the tree alone. From a kept tree, both run again from a
/// fresh read.
enum Fail {
    Stale(Error),
    Refused(Error),
    Done(Error),
}

impl Fail {
    fn error(self) -> Error {
        match self {
            Self::Stale(e) | Self::Refused(e) | Self::Done(e) => e,
        }
    }
}

fn exists(name: &str) -> Error {
    Error::operation_invalid(format!("Snapshot '{name}' already exists"))
}

/// A task call's failure: only a ManagedObjectNotFound answer to the call itself is `Stale`
/// (the server did nothing). A failure while reading its outcome is never run again: the task
/// may have done its work.
fn call_fail(e: CallError, method: &str, subject: Subject<'_>) -> Fail {
    let stale = matches!(&e, CallError::Fault(f) if f.is("ManagedObjectNotFound"));
    let e = e.into_error(method, subject);
    if stale { Fail::Stale(e) } else { Fail::Done(e) }
}

/// Starts a `*_Task` method; `Stale` as in [`call_fail`].
fn start_task(conn: &Connection, method: &str, body: &str, subject: Subject<'_>) -> std::result::Result<MoRef, Fail> {
    vim::call_moref(&conn.soap, method, body)
        .and_then(|t| t.ok_or_else(|| CallError::Error(Error::internal(format!("{method} returned no task")))))
        .map_err(|e| call_fail(e, method, subject))
}

/// Whether node `idx` is `root` or below it.
fn in_subtree(tree: &Tree, root: usize, idx: usize) -> bool {
    let mut cur = Some(idx);
    while let Some(i) = cur {
        if i == root {
            return true;
        }
        cur = tree.nodes[i].parent;
    }
    false
}

impl Connection {
    /// The VM's moid and snapshot tree, in one call (kept for the next change).
    pub(crate) fn tree(&self, dom: &str) -> Result<(MoRef, Arc<Tree>)> {
        let (vm, _, tree) = self.read_tree(dom, &["snapshot"])?;
        Ok((vm.moref, tree))
    }

    /// The VM's moid, BIOS uuid and snapshot tree, in one call (for a snapshot's XML; the
    /// others do not ask for the uuid, which is one property fewer to answer and read).
    fn tree_and_uuid(&self, dom: &str) -> Result<(MoRef, String, Arc<Tree>)> {
        let (vm, o, tree) = self.read_tree(dom, &["config.uuid", "snapshot"])?;
        let uuid = o.text("config.uuid").map(|u| u.trim().to_lowercase()).unwrap_or(vm.uuid);
        Ok((vm.moref, uuid, tree))
    }

    fn read_tree(&self, dom: &str, paths: &[&str]) -> Result<(VmRef, ObjectContent, Arc<Tree>)> {
        let (vm, mut o) = self.read_vm(dom, paths)?;
        let tree = Arc::new(o.snapshot.take().unwrap_or_default());
        self.keep(dom, &vm.moref, &tree);
        Ok((vm, o, tree))
    }

    /// Keeps `tree` as the VM's last read tree.
    fn keep(&self, dom: &str, vm: &MoRef, tree: &Arc<Tree>) {
        let mut trees = lock(&self.trees);
        match trees.get_mut(dom) {
            Some(kept) => *kept = (vm.clone(), Arc::clone(tree)),
            None => {
                trees.insert(dom.to_owned(), (vm.clone(), Arc::clone(tree)));
            }
        }
    }

    /// The kept moref and tree of `dom` when `kept` allows it, else a fresh read.
    fn start(&self, dom: &str, kept: bool) -> Result<Start> {
        if let Some((vm, tree)) = lock(&self.trees).get(dom).filter(|_| kept).cloned() {
            return Ok(Start { vm, tree, cached: true });
        }
        let (vm, tree) = self.tree(dom)?;
        Ok(Start { vm, tree, cached: false })
    }

    /// Runs `attempt` from the kept tree (when `kept`, else from a fresh read); when the kept
    /// tree turns out stale (a refusal it would answer, or a moref the server no longer knows),
    /// once more from a fresh read.
    fn change<T>(&self, dom: &str, kept: bool, attempt: impl Fn(&Start) -> std::result::Result<T, Fail>) -> Result<T> {
        let start = self.start(dom, kept)?;
        match attempt(&start) {
            Ok(v) => Ok(v),
            Err(f @ Fail::Done(_)) => Err(f.error()),
            Err(f) if !start.cached => Err(f.error()),
            Err(_) => {
                lock(&self.trees).remove(dom);
                let (vm, tree) = self.tree(dom)?;
                attempt(&Start { vm, tree, cached: false }).map_err(Fail::error)
            }
        }
    }

    /// Keeps the tree read with a task's outcome (or forgets the VM's when it was renamed).
    fn finish(&self, dom: &str, vm: &MoRef, done: Option<&ObjectContent>) -> Option<Arc<Tree>> {
        match done {
            Some(o) if o.text("name").map(unescape_vm_name).as_deref() == Some(dom) => {
                let tree = Arc::new(o.snapshot.clone().unwrap_or_default());
                self.keep(dom, vm, &tree);
                Some(tree)
            }
            _ => {
                lock(&self.trees).remove(dom);
                None
            }
        }
    }

    /// `snapshot_create`: `CreateSnapshot_Task(name, description, memory = !DISK_ONLY,
    /// quiesce = QUIESCE)`. A name already used anywhere in the tree is refused, like libvirt's
    /// esx driver. NO_METADATA is trivially true (virtplug keeps no metadata for vSphere).
    pub fn snapshot_create(&self, dom: &str, xml_text: &str, flags: u32) -> Result<String> {
        let mut def =
            xml::parse(xml_text, ParseFlags { offline: flags & cf::DISK_ONLY != 0, ..ParseFlags::default() })?;
        if !def.disks.is_empty() {
            return Err(Error::new(codes::CONFIG_UNSUPPORTED, "disk snapshots not supported yet"));
        }
        if def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::External) {
            return Err(Error::new(
                codes::CONFIG_UNSUPPORTED,
                "external memory snapshots are not supported by vSphere",
            ));
        }
        def.fill_defaults(virtplug_plugin_sdk::now());
        let memory = flags & cf::DISK_ONLY == 0 && def.memory.as_ref().is_none_or(|m| m.mode != SnapshotMode::No);
        let description =
            def.description.as_deref().map(|d| format!("<description>{}</description>", escape(d))).unwrap_or_default();
        self.change(dom, true, |s| {
            if s.tree.has_name(&def.name) {
                return Err(Fail::Refused(exists(&def.name)));
            }
            if let Some(moid) = &s.tree.dangling_current {
                // Simulator quirk F.6 #3: its CreateSnapshot_Task dereferences the missing
                // current snapshot and the server closes the connection mid-call.
                return Err(Fail::Refused(Error::operation_invalid(format!(
                    "the current snapshot '{moid}' is no longer in the snapshot tree; revert to a snapshot first"
                ))));
            }
            let body = format!(
                r#"<CreateSnapshot_Task xmlns="urn:vim25">{}<name>{}</name>{description}<memory>{memory}</memory><quiesce>{}</quiesce></CreateSnapshot_Task>"#,
                s.vm.xml("_this"),
                escape(&def.name),
                flags & cf::QUIESCE != 0
            );
            let task = start_task(self, "CreateSnapshot_Task", &body, Subject::Domain(dom))?;
            let done = vim::wait_tasks(&self.soap, self.pc(), &[task], Some((&s.vm, DONE_PATHS)))
                .map_err(|e| Fail::Done(e.into_error("CreateSnapshot_Task", Subject::Domain(dom))))?;
            self.finish(dom, &s.vm, done.first().and_then(|d| d.extra.as_ref()));
            Ok(())
        })?;
        Ok(def.name)
    }

    /// `snapshot_list`: the whole tree in pre-order, one call; the host filters.
    pub fn snapshot_list(&self, dom: &str) -> Result<Vec<SnapshotInfo>> {
        Ok(self.tree(dom)?.1.list())
    }

    /// `snapshot_lookup`.
    pub fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        let (_, tree) = self.tree(dom)?;
        Ok(tree.info(tree.resolve(snap)?))
    }

    /// `snapshot_current`: `None` when there is none (or when vSphere names one that is no
    /// longer in the tree).
    pub fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        let (_, tree) = self.tree(dom)?;
        Ok(tree.current.map(|i| tree.info(i)))
    }

    /// `snapshot_xml`.
    pub fn snapshot_xml(&self, dom: &str, snap: &str) -> Result<String> {
        let (_, uuid, tree) = self.tree_and_uuid(dom)?;
        Ok(tree.xml(tree.resolve(snap)?, &uuid))
    }

    /// `snapshot_revert`: `RevertToSnapshot_Task`; with RUNNING or PAUSED the VM is then
    /// powered on or suspended as needed (the power state is read in the same call that reads
    /// the task's outcome). libvirt's esx driver accepts no revert flags.
    pub fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        let want_state = flags & (rf::RUNNING | rf::PAUSED) != 0;
        let paths = if want_state { DONE_PATHS_POWER } else { DONE_PATHS };
        // A fresh read: see the module header (a kept name may now be another snapshot's).
        let (vm, power) = self.change(dom, false, |s| {
            let idx = s.tree.resolve(snap).map_err(Fail::Refused)?;
            let power = self.revert_to(dom, &s.vm, &s.tree.nodes[idx].moid, paths, Subject::Snapshot(snap))?;
            Ok((s.vm.clone(), power))
        })?;
        if !want_state {
            return Ok(());
        }
        if flags & rf::RUNNING != 0 && power != "poweredOn" {
            self.power_moref(dom, &vm, "PowerOnVM_Task")?;
        } else if flags & rf::PAUSED != 0 && power != "suspended" {
            if power == "poweredOff" {
                self.power_moref(dom, &vm, "PowerOnVM_Task")?;
            }
            self.power_moref(dom, &vm, "SuspendVM_Task")?;
        }
        Ok(())
    }

    /// One `RevertToSnapshot_Task` to `moid` and its outcome with `paths` of the VM (the tree
    /// is kept); returns the VM's power state if read.
    fn revert_to(
        &self,
        dom: &str,
        vm: &MoRef,
        moid: &str,
        paths: &[&str],
        subject: Subject<'_>,
    ) -> std::result::Result<String, Fail> {
        const METHOD: &str = "RevertToSnapshot_Task";
        let body = format!(
            r#"<RevertToSnapshot_Task xmlns="urn:vim25">{}<suppressPowerOn>false</suppressPowerOn></RevertToSnapshot_Task>"#,
            MoRef::new("VirtualMachineSnapshot", moid).xml("_this")
        );
        let task = start_task(self, METHOD, &body, subject)?;
        let done = vim::wait_tasks(&self.soap, self.pc(), &[task], Some((vm, paths)))
            .map_err(|e| Fail::Done(e.into_error(METHOD, subject)))?;
        let extra = done.first().and_then(|d| d.extra.as_ref());
        self.finish(dom, vm, extra);
        Ok(extra.and_then(|o| o.text("runtime.powerState")).unwrap_or("").to_owned())
    }

    /// `snapshot_delete`: `RemoveSnapshot_Task` (CHILDREN → `removeChildren`); CHILDREN_ONLY
    /// removes each child's subtree (all tasks started, then their outcomes read in one call);
    /// METADATA_ONLY only checks (from a fresh read) that the snapshot exists: vSphere keeps
    /// the metadata itself.
    pub fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        if flags & df::METADATA_ONLY != 0 {
            let (_, tree) = self.tree(dom)?;
            return tree.resolve(snap).map(drop);
        }
        // A fresh read: see the module header (a kept name may now be another snapshot's).
        self.change(dom, false, |s| {
            let idx = s.tree.resolve(snap).map_err(Fail::Refused)?;
            let remove = |moid: &str, children: bool| {
                let body = format!(
                    r#"<RemoveSnapshot_Task xmlns="urn:vim25">{}<removeChildren>{children}</removeChildren></RemoveSnapshot_Task>"#,
                    MoRef::new("VirtualMachineSnapshot", moid).xml("_this")
                );
                start_task(self, "RemoveSnapshot_Task", &body, Subject::Snapshot(snap))
            };
            // The subtrees removed whole, and where vSphere puts current when it was in one
            // of them: the removed root's parent.
            let (roots, heir): (Vec<usize>, Option<usize>) = if flags & df::CHILDREN_ONLY != 0 {
                (s.tree.nodes[idx].children.clone(), Some(idx))
            } else if flags & df::CHILDREN != 0 {
                (vec![idx], s.tree.nodes[idx].parent)
            } else {
                (Vec::new(), None)
            };
            let tasks = if flags & df::CHILDREN_ONLY != 0 {
                let mut tasks = Vec::new();
                for c in &roots {
                    // Once one removal started, a later failure is not run again.
                    let started = !tasks.is_empty();
                    tasks.push(remove(&s.tree.nodes[*c].moid, true).map_err(|f| match f {
                        Fail::Stale(e) if started => Fail::Done(e),
                        f => f,
                    })?);
                }
                tasks
            } else {
                vec![remove(&s.tree.nodes[idx].moid, flags & df::CHILDREN != 0)?]
            };
            if tasks.is_empty() {
                return Ok(());
            }
            let done = vim::wait_tasks(&self.soap, self.pc(), &tasks, Some((&s.vm, DONE_PATHS)))
                .map_err(|e| Fail::Done(e.into_error("RemoveSnapshot_Task", Subject::Snapshot(snap))))?;
            let after = self.finish(dom, &s.vm, done.first().and_then(|d| d.extra.as_ref()));
            // Simulator quirk F.6 #3: removing a subtree that holds the current snapshot leaves
            // `currentSnapshot` naming a removed one (real vSphere moves it to the removed
            // root's parent), and its next CreateSnapshot_Task crashes the server's handler.
            // Current is moved where vSphere would have put it, with a revert, which on the
            // simulator changes nothing else (quirk F.6 #2). Never reached on real vSphere.
            let held_current = s.tree.current.is_some_and(|c| roots.iter().any(|r| in_subtree(&s.tree, *r, c)));
            let heir = heir.map(|h| s.tree.nodes[h].moid.as_str());
            if let (true, Some(after), Some(heir)) = (held_current, after, heir)
                && after.dangling_current.is_some()
                && after.by_moid(heir).is_some()
            {
                // Not a stale tree: the removal is done and must not run again.
                self.revert_to(dom, &s.vm, heir, DONE_PATHS, Subject::Snapshot(snap)).map_err(|f| Fail::Done(f.error()))?;
            }
            Ok(())
        })
    }
}
