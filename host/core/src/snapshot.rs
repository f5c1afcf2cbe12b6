//! Public snapshot entry points. Each reads the same way: validate names, run the operation's
//! rule table (read-only, flag rules, plugin mask), validate input, dispatch.

use std::sync::Arc;

use virtplug_model::{self as model, SnapshotInfo, bundle::Bundle, filter, xml};
use virtplug_plugin_api::flags::{snapshot_create, snapshot_import, snapshot_list, snapshot_xml};

use crate::{
    connection::{Connection, check_name},
    error::{HostError, Result},
    rules,
};

/// A domain's whole snapshot hierarchy as the daemon's export and the migration move it: every
/// snapshot's SECURE XML, parents before children, with its name, its parent and the current
/// marker. The host's own type: the HTTP form (`virtplug_wire::HierarchyJson`) is converted to
/// and from it at the remote boundary (`remote/`), so callers of the host see no wire type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotHierarchy {
    /// Snapshot XMLs (SECURE) in topological order.
    pub xmls: Vec<String>,
    /// The snapshots' names, in the same order.
    pub names: Vec<String>,
    /// Each snapshot's parent (same order), `None` for roots.
    pub parents: Vec<Option<String>>,
    /// The current snapshot's name.
    pub current: Option<String>,
}

/// Step 4 of every create: the XML must parse under the mode the flags ask for (REDEFINE needs
/// name, state and creationTime; cross-field rules), before the plugin sees it.
fn validate_snapshot_xml(xml_text: &str, flags: u32) -> Result<xml::SnapshotDef> {
    let parse = xml::ParseFlags {
        redefine: flags & snapshot_create::REDEFINE != 0,
        internal: false,
        offline: flags & snapshot_create::DISK_ONLY != 0,
    };
    Ok(xml::parse(xml_text, parse)?)
}

impl Connection {
    /// `snapshot_create`: creates (or with REDEFINE, redefines) a snapshot from XML; returns
    /// its name.
    pub fn snapshot_create(&self, dom: &str, xml: &str, flags: u32) -> Result<String> {
        check_name("domain", dom)?;
        self.check(&rules::SNAPSHOT_CREATE, flags)?;
        let def = validate_snapshot_xml(xml, flags)?;
        if !def.name.is_empty() {
            check_name("snapshot", &def.name)?;
        }
        self.call(|d| d.snapshot_create(dom, xml, flags))
    }

    /// `snapshot_xml` with `flags::snapshot_xml` bits.
    pub fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> Result<String> {
        check_name("domain", dom)?;
        check_name("snapshot", snap)?;
        self.dispatch(&rules::SNAPSHOT_XML, flags, |d| d.snapshot_xml(dom, snap, flags))
    }

    /// `snapshot_list` as the plugin reports it, unfiltered (the checks for `flags` run). A
    /// remote client filters the result itself, as a local connection does.
    pub fn snapshot_list_unfiltered(&self, dom: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
        check_name("domain", dom)?;
        self.dispatch(&rules::SNAPSHOT_LIST, flags, |d| d.snapshot_list(dom, flags))
    }

    /// `snapshot_list` at domain level (bit 0 = ROOTS), filtered by the documented group rule.
    pub fn snapshot_list(&self, dom: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
        match self.snapshot_list_prefiltered(dom, flags)? {
            Some(shared) => Ok(shared.to_vec()),
            None => self.snapshot_list_here(dom, flags),
        }
    }

    /// [`Connection::snapshot_list`] as a shared list: through a daemon, an unchanged tree's list
    /// is the client's kept answer itself (a reference count), where `snapshot_list` copies its
    /// every name. For callers that list often and only read.
    pub fn snapshot_list_shared(&self, dom: &str, flags: u32) -> Result<Arc<[SnapshotInfo]>> {
        match self.snapshot_list_prefiltered(dom, flags)? {
            Some(shared) => Ok(shared),
            None => self.snapshot_list_here(dom, flags).map(Arc::from),
        }
    }

    /// The checks of a domain-level list, then the backend's own filtered list if it has one.
    fn snapshot_list_prefiltered(&self, dom: &str, flags: u32) -> Result<Option<Arc<[SnapshotInfo]>>> {
        check_name("domain", dom)?;
        self.check(&rules::SNAPSHOT_LIST, flags)?;
        self.call(|d| d.snapshot_list_filtered(dom, flags).transpose())
    }

    /// The backend's whole list filtered here (after [`Self::snapshot_list_prefiltered`]).
    fn snapshot_list_here(&self, dom: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
        let all = self.call(|d| d.snapshot_list(dom, flags))?;
        Ok(filter::list_domain(all, flags))
    }

    /// `snapshot_list` of `snap`'s children (bit 0 = DESCENDANTS).
    pub fn snapshot_list_children(&self, dom: &str, snap: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
        check_name("snapshot", snap)?;
        let all = self.snapshot_list_unfiltered(dom, flags)?;
        Ok(filter::list_children(&all, snap, flags)?)
    }

    /// `snapshot_lookup` by name.
    pub fn snapshot_lookup(&self, dom: &str, snap: &str) -> Result<SnapshotInfo> {
        check_name("domain", dom)?;
        check_name("snapshot", snap)?;
        self.dispatch(&rules::SNAPSHOT_LOOKUP, 0, |d| d.snapshot_lookup(dom, snap))
    }

    /// `snapshot_current`: the current snapshot, or `None`.
    pub fn snapshot_current(&self, dom: &str) -> Result<Option<SnapshotInfo>> {
        check_name("domain", dom)?;
        self.dispatch(&rules::SNAPSHOT_CURRENT, 0, |d| d.snapshot_current(dom))
    }

    /// `snapshot_generation`: `dom`'s snapshot tree generation, a number that changes with
    /// every committed change to its snapshot metadata (by any connection or process) and never
    /// repeats a value the domain had before, so answers about the tree can be cached keyed by
    /// it. `Ok(None)` when the backend keeps none: a plugin that does not declare the operation
    /// or answers `NO_SUPPORT`, and for now every remote connection; callers then read the tree
    /// itself. Other errors are the plugin's (e.g. `NO_DOMAIN`).
    pub fn snapshot_generation(&self, dom: &str) -> Result<Option<u64>> {
        check_name("domain", dom)?;
        match self.dispatch(&rules::SNAPSHOT_GENERATION, 0, |d| d.snapshot_generation(dom)) {
            Ok(generation) => Ok(Some(generation)),
            Err(e) if e.code() == crate::codes::NO_SUPPORT => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The parent's name; a root is `NO_DOMAIN_SNAPSHOT`, as libvirt's GetParent.
    pub fn snapshot_parent(&self, dom: &str, snap: &str) -> Result<String> {
        let info = self.snapshot_lookup(dom, snap)?;
        info.parent.ok_or_else(|| HostError::NoParent { snapshot: snap.to_owned() })
    }

    /// `snapshot_revert` with `flags::snapshot_revert` bits.
    pub fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        check_name("domain", dom)?;
        check_name("snapshot", snap)?;
        self.dispatch(&rules::SNAPSHOT_REVERT, flags, |d| d.snapshot_revert(dom, snap, flags))
    }

    /// `snapshot_delete` with `flags::snapshot_delete` bits.
    pub fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> Result<()> {
        check_name("domain", dom)?;
        check_name("snapshot", snap)?;
        self.dispatch(&rules::SNAPSHOT_DELETE, flags, |d| d.snapshot_delete(dom, snap, flags))
    }

    /// `snapshot_edit`: redefines `snap` from `xml` (which may rename it) in one plugin
    /// transaction, instead of virsh's redefine-then-delete. Returns the resulting name.
    pub fn snapshot_edit(&self, dom: &str, snap: &str, xml: &str, flags: u32) -> Result<String> {
        check_name("domain", dom)?;
        check_name("snapshot", snap)?;
        self.check(&rules::SNAPSHOT_EDIT, flags)?;
        let def = validate_snapshot_xml(xml, flags | snapshot_create::REDEFINE)?;
        check_name("snapshot", &def.name)?;
        self.call(|d| d.snapshot_edit(dom, snap, xml, flags))
    }

    /// `snapshot_import`: redefines every XML (parents first) and marks `current`, all or
    /// nothing, in the plugin's one transaction.
    pub fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> Result<()> {
        check_name("domain", dom)?;
        if let Some(current) = current {
            check_name("snapshot", current)?;
        }
        if crate::import_fallback::applies(self, current) {
            return crate::import_fallback::import(self, dom, xmls, current, flags);
        }
        self.check(&rules::SNAPSHOT_IMPORT, flags)?;
        for text in xmls {
            let def = validate_snapshot_xml(text, snapshot_create::REDEFINE)?;
            check_name("snapshot", &def.name)?;
        }
        self.call(|d| d.snapshot_import(dom, xmls, current, flags))
    }

    /// `snapshot_export`: every snapshot's secure XML, parents first, with the current marker
    /// and the domain's UUID, as a checksummed [`Bundle`]. Needs a read-write connection
    /// (secure XML), like libvirt's replication workflow.
    pub fn snapshot_export(&self, dom: &str) -> Result<Bundle> {
        let domain = self.domain_lookup(dom)?;
        let hierarchy = self.snapshot_export_hierarchy(&domain.name)?;
        let redefine = xml::ParseFlags { redefine: true, ..Default::default() };
        let defs = hierarchy.xmls.iter().map(|text| xml::parse(text, redefine)).collect::<model::Result<Vec<_>>>()?;
        Ok(Bundle::new(&domain.uuid, hierarchy.current.as_deref(), defs)?)
    }

    /// `snapshot_import` of a whole bundle: the bundle must be for this domain's UUID; then every
    /// snapshot is redefined and the current one marked in one plugin transaction (all or
    /// nothing). `dry_run` checks everything against the destination and writes nothing.
    /// Replaying the same bundle is accepted (identical redefines).
    pub fn snapshot_import_bundle(&self, dom: &str, bundle: &Bundle, dry_run: bool) -> Result<()> {
        let flags = if dry_run { snapshot_import::DRY_RUN } else { 0 };
        if !crate::import_fallback::applies(self, bundle.current.as_deref()) {
            self.check(&rules::SNAPSHOT_IMPORT, flags)?;
        }
        let domain = self.domain_lookup(dom)?;
        if domain.uuid != bundle.domain_uuid {
            return Err(HostError::BundleDomainMismatch {
                bundle_uuid: bundle.domain_uuid.clone(),
                domain: domain.name,
                domain_uuid: domain.uuid,
            });
        }
        self.snapshot_import(&domain.name, &bundle.snapshot_xmls(), bundle.current.as_deref(), flags)
    }

    /// The whole-hierarchy export the daemon and the migration use beyond the per-call API:
    /// every snapshot of `dom` with its SECURE XML, parents before children, and the current
    /// marker. Needs what `snapshot_list(TOPOLOGICAL)` and `snapshot_xml(SECURE)` need (a
    /// read-write connection).
    pub fn snapshot_export_hierarchy(&self, dom: &str) -> Result<SnapshotHierarchy> {
        check_name("domain", dom)?;
        self.check(&rules::SNAPSHOT_XML, snapshot_xml::SECURE)?;
        let list = self.snapshot_list(dom, snapshot_list::TOPOLOGICAL)?;
        let mut out = SnapshotHierarchy::default();
        for info in list {
            let xml = self.call(|d| d.snapshot_xml(dom, &info.name, snapshot_xml::SECURE))?;
            if info.current {
                out.current = Some(info.name.clone());
            }
            out.xmls.push(xml);
            out.names.push(info.name);
            out.parents.push(info.parent);
        }
        Ok(out)
    }
}
