//! Where a qemu connection keeps its snapshot metadata: beside the domains in the local SQLite
//! store (the default), or on the fleet store a `store=etcd://…` URI names (the domains, their
//! state and the external journal stay local). Every snapshot read and write of this crate goes
//! through here.
//!
//! A change that touches both (an external create saves the switched definition and the
//! snapshot; a revert records the new state and the current snapshot) is one transaction on the
//! local store. On a fleet store it is two commits, the fleet's first: the fleet's guards refuse
//! a host that lost the domain (lease expired, handed over) or cannot reach the cluster before
//! anything local changes. If the local commit then fails, the operation reports it, and an
//! external operation's journal record, which stays, completes the local part at the next open
//! (settling repeats only what is missing).

use virtplug_plugin_sdk::{
    Edit, Error, Result, SnapshotInfo, codes,
    flags::snapshot_delete as df,
    metadata_sqlite::apply_edits,
    model::{
        store::Writer,
        tree::RedefineFlags,
        xml::{FormatFlags, SnapshotDef},
    },
};

use crate::driver::Inner;

impl Inner {
    /// Snapshot `name` of domain `dom` (UUID), `parent` filled in.
    pub(crate) fn snap_def(&mut self, dom: &str, name: &str) -> Result<SnapshotDef> {
        match &mut self.fleet {
            Some(f) => f.definition(dom, name),
            None => self.store.snapshot_def(dom, name),
        }
    }

    /// Snapshot `name`'s summary, or NO_DOMAIN_SNAPSHOT.
    pub(crate) fn snap(&mut self, dom: &str, name: &str) -> Result<SnapshotInfo> {
        match &mut self.fleet {
            Some(f) => f.lookup(dom, name),
            None => self.store.snapshot(dom, name),
        }
    }

    /// Every snapshot of `dom`, in libvirt's order.
    pub(crate) fn snaps(&mut self, dom: &str) -> Result<Vec<SnapshotInfo>> {
        match &mut self.fleet {
            Some(f) => f.list(dom),
            None => self.store.snapshots(dom),
        }
    }

    /// The current snapshot of `dom`.
    pub(crate) fn snap_current(&mut self, dom: &str) -> Result<Option<SnapshotInfo>> {
        match &mut self.fleet {
            Some(f) => f.current(dom),
            None => self.store.current(dom),
        }
    }

    /// Snapshot `name`'s XML as libvirt prints it (`snapshot_xml` flags).
    pub(crate) fn snap_xml(&mut self, dom: &str, name: &str, flags: u32) -> Result<String> {
        let secure = flags & virtplug_plugin_sdk::flags::snapshot_xml::SECURE != 0;
        match &mut self.fleet {
            Some(f) => f.xml(dom, name, flags),
            None => self.store.snapshot_xml(dom, name, FormatFlags { secure, ..Default::default() }),
        }
    }

    /// The generation of `dom`'s snapshot metadata.
    pub(crate) fn snap_generation(&mut self, dom: &str) -> Result<u64> {
        match &mut self.fleet {
            Some(f) => f.generation(dom),
            None => self.store.generation(dom),
        }
    }

    /// `edits` to `dom`'s snapshots and `local` (the domain's rows) as one change; see the
    /// module documentation for the fleet store's order.
    pub(crate) fn commit(
        &mut self,
        dom: &str,
        edits: &[Edit],
        local: impl FnOnce(&mut Writer<'_, '_>) -> Result<()>,
    ) -> Result<()> {
        match &mut self.fleet {
            None => self.store.write(|w| {
                local(w)?;
                apply_edits(w, dom, edits)
            }),
            Some(f) => {
                if !edits.is_empty() {
                    f.apply(dom, edits)?;
                    if crate::external::journal::fault("fleet-committed") {
                        // the process "stops" between the two commits (tests)
                        return Err(Error::internal("fault injected after the fleet commit"));
                    }
                }
                self.store.write(local)
            }
        }
    }

    /// [`Inner::commit`] of snapshot edits alone.
    pub(crate) fn commit_snaps(&mut self, dom: &str, edits: &[Edit]) -> Result<()> {
        self.commit(dom, edits, |_| Ok(()))
    }

    /// The edits that drop every snapshot of `dom` (undefine with SNAPSHOTS_METADATA): each
    /// root with its descendants.
    pub(crate) fn drop_all(&mut self, dom: &str) -> Result<Vec<Edit>> {
        Ok(self
            .snaps(dom)?
            .into_iter()
            .filter(|s| s.parent.is_none())
            .map(|s| Edit::Delete(s.name, df::CHILDREN))
            .collect())
    }

    /// A revert's metadata edits: `snap` becomes current; a transient domain that stops
    /// (`gone`) loses its snapshots instead (the local store drops them with the domain).
    pub(crate) fn revert_edits(&mut self, dom: &str, snap: &str, gone: bool) -> Result<Vec<Edit>> {
        match (gone, self.fleet.is_some()) {
            (false, _) => Ok(vec![Edit::SetCurrent(snap.to_owned())]),
            (true, true) => self.drop_all(dom),
            (true, false) => Ok(Vec::new()),
        }
    }

    /// Hierarchy import: `defs` are `xmls` parsed and checked against the images; the fleet
    /// store parses `xmls` again with the same rules.
    pub(crate) fn snap_import(
        &mut self,
        dom: &str,
        xmls: &[String],
        defs: Vec<SnapshotDef>,
        current: Option<&str>,
        dry_run: bool,
    ) -> Result<()> {
        match &mut self.fleet {
            Some(f) => f.import(dom, xmls, current, dry_run),
            None if dry_run => self.store.dry_run(|w| w.import(dom, defs, current)),
            None => self.store.import(dom, defs, current),
        }
    }

    /// Edit of snapshot `old` into `def`. The fleet store has no rename: an edit that keeps
    /// the name is a redefine, a rename is refused.
    pub(crate) fn snap_edit(&mut self, dom: &str, old: &str, def: SnapshotDef, flags: RedefineFlags) -> Result<()> {
        match &mut self.fleet {
            Some(f) if def.name == old => f.redefine_def(dom, def, flags),
            Some(_) => Err(Error::new(
                codes::OPERATION_UNSUPPORTED,
                "renaming a snapshot is not supported on the etcd metadata store",
            )),
            None => self.store.edit(dom, old, def, flags),
        }
    }
}
