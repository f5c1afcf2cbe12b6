//! Connection entry points the daemon and the migration need beyond the per-call API: the
//! unfiltered snapshot list (what a remote client filters itself) and a whole-hierarchy export.
//! Both run the same generic checks as every other entry point.

use virtplug_model::SnapshotInfo;
use virtplug_plugin_api::flags::{snapshot_list, snapshot_xml};

use super::wire::HierarchyJson;
use crate::{
    connection::{Connection, check_name},
    error::Result,
    rules,
};

impl Connection {
    /// `snapshot_list` as the plugin reports it, unfiltered (the checks for `flags` run). A
    /// remote client filters the result itself, as a local connection does.
    pub fn snapshot_list_unfiltered(&self, dom: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
        check_name("domain", dom)?;
        self.dispatch(&rules::SNAPSHOT_LIST, flags, |d| d.snapshot_list(dom, flags))
    }

    /// Every snapshot of `dom` with its SECURE XML, parents before children, and the current
    /// marker. Needs what `snapshot_list(TOPOLOGICAL)` and `snapshot_xml(SECURE)` need (a
    /// read-write connection).
    pub fn snapshot_export_hierarchy(&self, dom: &str) -> Result<HierarchyJson> {
        check_name("domain", dom)?;
        self.check(&rules::SNAPSHOT_XML, snapshot_xml::SECURE)?;
        let list = self.snapshot_list(dom, snapshot_list::TOPOLOGICAL)?;
        let mut out = HierarchyJson::default();
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
