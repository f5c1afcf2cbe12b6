//! The whole-hierarchy export the daemon and the migration use beyond the per-call API; it runs
//! the same generic checks as every other entry point.

use virtplug_plugin_api::flags::{snapshot_list, snapshot_xml};

use super::wire::HierarchyJson;
use crate::{
    connection::{Connection, check_name},
    error::Result,
    rules,
};

impl Connection {
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
