//! [`RemoteBackend`]: the host's backend interface implemented by HTTP calls to virtplugd.
//! One method, one route (see the OpenAPI document in the wire crate).

use std::sync::Arc;

use virtplug_model::{DomainInfo, SnapshotInfo};
use virtplug_plugin_api as abi;
use virtplug_wire::{
    CreateRequest, CurrentResponse, DefineRequest, FlagsRequest, ImportRequest, NameResponse, XmlResponse,
};

use super::client::{Client, seg};
use crate::{backend::Backend, error::BackendResult};

/// A daemon seen as a backend, with the remote plugin's self-description (whose masks drive the
/// local checks).
pub struct RemoteBackend {
    client: Arc<Client>,
    info: abi::PluginInfo,
}

impl std::fmt::Debug for RemoteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteBackend").field("client", &self.client).field("plugin", &self.info.name).finish()
    }
}

impl RemoteBackend {
    pub(crate) fn new(client: Arc<Client>, info: abi::PluginInfo) -> Self {
        Self { client, info }
    }

    /// The daemon client (for the whole-hierarchy requests beyond the per-call API).
    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// The remote plugin's self-description.
    pub fn info(&self) -> &abi::PluginInfo {
        &self.info
    }
}

fn dom_path(dom: &str) -> String {
    format!("/v1/domains/{}", seg(dom))
}

fn snap_path(dom: &str, snap: &str) -> String {
    format!("/v1/domains/{}/snapshots/{}", seg(dom), seg(snap))
}

/// A decoded list as the client keeps it: shared, so a 304 hands it out without a copy.
fn shared(list: Vec<SnapshotInfo>) -> Arc<[SnapshotInfo]> {
    Arc::from(list)
}

impl RemoteBackend {
    fn action(&self, dom: &str, action: &str) -> BackendResult<()> {
        let _: serde_json::Value =
            self.client.send("POST", &format!("{}/{action}", dom_path(dom)), &FlagsRequest::default())?;
        Ok(())
    }
}

impl Backend for RemoteBackend {
    fn domain_list(&self) -> BackendResult<Vec<DomainInfo>> {
        self.client.get("/v1/domains")
    }
    fn domain_lookup_by_name(&self, name: &str) -> BackendResult<DomainInfo> {
        self.client.get::<DomainInfo>(&dom_path(name))
    }
    fn domain_lookup_by_uuid(&self, uuid: &str) -> BackendResult<DomainInfo> {
        self.client.get::<DomainInfo>(&dom_path(uuid))
    }
    fn domain_define(&self, xml: &str) -> BackendResult<DomainInfo> {
        self.client.send::<DomainInfo, _>("POST", "/v1/domains", &DefineRequest { xml: xml.to_owned() })
    }
    fn domain_undefine(&self, dom: &str, flags: u32) -> BackendResult<()> {
        let _: serde_json::Value = self.client.delete(&format!("{}?flags={flags}", dom_path(dom)))?;
        Ok(())
    }
    fn domain_start(&self, dom: &str) -> BackendResult<()> {
        self.action(dom, "start")
    }
    fn domain_shutdown(&self, dom: &str) -> BackendResult<()> {
        self.action(dom, "shutdown")
    }
    fn domain_destroy(&self, dom: &str) -> BackendResult<()> {
        self.action(dom, "destroy")
    }
    fn domain_suspend(&self, dom: &str) -> BackendResult<()> {
        self.action(dom, "suspend")
    }
    fn domain_resume(&self, dom: &str) -> BackendResult<()> {
        self.action(dom, "resume")
    }
    fn domain_xml(&self, dom: &str, flags: u32) -> BackendResult<String> {
        self.client.get::<XmlResponse>(&format!("{}/xml?flags={flags}", dom_path(dom))).map(|r| r.xml)
    }
    fn snapshot_create(&self, dom: &str, xml: &str, flags: u32) -> BackendResult<String> {
        let body = CreateRequest { xml: xml.to_owned(), flags };
        self.client.send::<NameResponse, _>("POST", &format!("{}/snapshots", dom_path(dom)), &body).map(|r| r.name)
    }
    fn snapshot_xml(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<String> {
        self.client.get::<XmlResponse>(&format!("{}/xml?flags={flags}", snap_path(dom, snap))).map(|r| r.xml)
    }
    fn snapshot_list(&self, dom: &str, flags: u32) -> BackendResult<Vec<SnapshotInfo>> {
        // Unfiltered: the local Connection filters, as it does for a local plugin. The kept list
        // is shared; the caller gets its own copy.
        let path = format!("{}/snapshots?flags={flags}&raw=true", dom_path(dom));
        self.client.get_revalidated(&path, shared).map(|v| v.to_vec())
    }
    fn snapshot_store(&self, dom: &str) -> BackendResult<String> {
        let s: virtplug_wire::StoreJson = self.client.get(&format!("{}/snapshot-store", dom_path(dom)))?;
        Ok(format!("{}\n{}", s.store, s.host))
    }
    fn snapshot_handover(&self, dom: &str, to: &str) -> BackendResult<()> {
        let body = virtplug_wire::HandoverRequest { to: to.to_owned() };
        let _: serde_json::Value = self.client.send("POST", &format!("{}/snapshot-handover", dom_path(dom)), &body)?;
        Ok(())
    }
    fn snapshot_list_filtered(&self, dom: &str, flags: u32) -> Option<BackendResult<Arc<[SnapshotInfo]>>> {
        // The daemon filters with the connection's own code and keeps the answer: an unchanged
        // tree costs a 304 here instead of a whole list to filter again, and the kept list is
        // handed out shared, not copied.
        let path = format!("{}/snapshots?flags={flags}", dom_path(dom));
        Some(self.client.get_revalidated(&path, shared))
    }
    fn snapshot_lookup(&self, dom: &str, snap: &str) -> BackendResult<SnapshotInfo> {
        self.client.get::<SnapshotInfo>(&snap_path(dom, snap))
    }
    fn snapshot_current(&self, dom: &str) -> BackendResult<Option<SnapshotInfo>> {
        self.client.get::<CurrentResponse>(&format!("{}/current-snapshot", dom_path(dom))).map(|r| r.current)
    }
    fn snapshot_revert(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<()> {
        let _: serde_json::Value =
            self.client.send("POST", &format!("{}/revert", snap_path(dom, snap)), &FlagsRequest { flags })?;
        Ok(())
    }
    fn snapshot_delete(&self, dom: &str, snap: &str, flags: u32) -> BackendResult<()> {
        let _: serde_json::Value = self.client.delete(&format!("{}?flags={flags}", snap_path(dom, snap)))?;
        Ok(())
    }
    fn snapshot_import(&self, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> BackendResult<()> {
        let body = ImportRequest { xmls: xmls.to_vec(), current: current.map(str::to_owned), flags, migration: None };
        let _: serde_json::Value = self.client.send("POST", &format!("{}/snapshot-import", dom_path(dom)), &body)?;
        Ok(())
    }
    fn snapshot_edit(&self, dom: &str, snap: &str, xml: &str, flags: u32) -> BackendResult<String> {
        let body = CreateRequest { xml: xml.to_owned(), flags };
        self.client.send::<NameResponse, _>("PUT", &snap_path(dom, snap), &body).map(|r| r.name)
    }
}
