//! The daemon client: JSON requests for one driver URI over [`HttpClient`], errors turned back
//! into libvirt's codes and texts: what the daemon reports is [`BackendError::Driver`], a failure
//! of the socket, the HTTP exchange or the answer's JSON is [`BackendError::Remote`].

use std::{
    any::Any,
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde::{Serialize, de::DeserializeOwned};
use virtplug_model as model;
use virtplug_plugin_api as abi;
use virtplug_wire::{
    self as wire, ErrorBody, HierarchyJson, ImportRequest, ImportStatusJson, MigrationRequest, PluginInfoJson,
    TaskJson, TaskState,
};

use super::{
    http::{HttpClient, Response, encode_segment},
    uri::{io_error, parse_uri},
};
use crate::error::{BackendError, BackendResult, HostError, Result};

/// The most answers a client keeps for revalidation (all are dropped when a new one would pass it).
const MAX_REVALIDATED: usize = 32;

/// Kept answers by request path: (ETag, decoded value).
type Revalidated = HashMap<String, (String, Arc<dyn Any + Send + Sync>)>;

/// A client of one daemon for one driver URI.
pub struct Client {
    http: HttpClient,
    driver_uri: String,
    read_only: bool,
    revalidated: Mutex<Revalidated>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("http", &self.http)
            .field("driver_uri", &self.driver_uri)
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// `path` segments encoded: `seg(dom)`.
pub(crate) fn seg(s: &str) -> String {
    encode_segment(s)
}

impl Client {
    /// A client for a remote `uri` (`mock+unix:///default?socket=…`). Does not connect yet.
    pub fn from_uri(uri: &str, read_only: bool) -> Result<Self> {
        let parsed = parse_uri(uri, read_only).ok_or_else(|| HostError::NoConnect { uri: uri.to_owned() })?;
        let token = match &parsed.token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| HostError::ClientSetup {
                        what: format!("cannot read token file {}", path.display()),
                        reason: e.to_string(),
                    })?
                    .trim()
                    .to_owned(),
            ),
            None => std::env::var("VIRTPLUG_TOKEN").ok().filter(|t| !t.is_empty()),
        };
        let http = HttpClient::new(parsed.endpoint, token)
            .map_err(|e| HostError::ClientSetup { what: "cannot set up TLS".into(), reason: e.to_string() })?;
        Ok(Self { http, driver_uri: parsed.driver_uri, read_only, revalidated: Mutex::default() })
    }

    /// The driver URI the daemon opens for this client.
    pub fn driver_uri(&self) -> &str {
        &self.driver_uri
    }

    /// One exchange for this client's driver URI (and `If-None-Match: etag` when given).
    fn exchange(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        if_none_match: Option<&str>,
    ) -> BackendResult<Response> {
        let ro = if self.read_only { "1" } else { "0" };
        let mut headers = vec![(wire::URI_HEADER, self.driver_uri.as_str()), (wire::READ_ONLY_HEADER, ro)];
        if let Some(tag) = if_none_match {
            headers.push(("If-None-Match", tag));
        }
        self.http.request(method, path, &headers, body).map_err(|e| io_error("cannot talk to virtplugd", &e))
    }

    /// The value of a 2xx answer, or the daemon's error.
    fn decode<T: DeserializeOwned>(resp: &Response) -> BackendResult<T> {
        if (200..300).contains(&resp.status) {
            let body = if resp.body.is_empty() { b"null".as_slice() } else { &resp.body };
            return serde_json::from_slice(body).map_err(|e| {
                BackendError::remote(abi::codes::INTERNAL_ERROR, format!("malformed daemon response: {e}"))
            });
        }
        match serde_json::from_slice::<ErrorBody>(&resp.body) {
            Ok(err) => Err(BackendError::Driver(model::Error::new(err.code, err.detail))),
            Err(_) => Err(BackendError::remote(
                abi::codes::INTERNAL_ERROR,
                format!("daemon answered HTTP {} without an error body", resp.status),
            )),
        }
    }

    fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> BackendResult<T> {
        Self::decode(&self.exchange(method, path, body.as_deref(), None)?)
    }

    /// `GET path`, revalidated: the daemon's last answer for `path` (its ETag and the value
    /// `keep` made of it) is kept, and asked for again with `If-None-Match`; a 304 returns the
    /// kept value, so an unchanged snapshot tree costs one small exchange instead of re-reading
    /// and re-parsing the whole list. The daemon's ETag holds the tree's generation, which changes
    /// with every write by anyone, so a kept value is never served for a changed tree.
    ///
    /// `V` is what a 304 clones: a shared list (`Arc<[SnapshotInfo]>`) costs a reference count,
    /// where a `Vec` would cost every element's strings again on every call.
    pub(crate) fn get_revalidated<T, V>(&self, path: &str, keep: impl FnOnce(T) -> V) -> BackendResult<V>
    where
        T: DeserializeOwned,
        V: Clone + Send + Sync + 'static,
    {
        let kept = self.revalidated.lock().ok().and_then(|m| m.get(path).cloned());
        let resp = self.exchange("GET", path, None, kept.as_ref().map(|(tag, _)| tag.as_str()))?;
        if resp.status == 304 {
            return kept.and_then(|(_, v)| v.downcast_ref::<V>().cloned()).ok_or_else(|| {
                BackendError::remote(abi::codes::INTERNAL_ERROR, "daemon answered 304 to an unconditional request")
            });
        }
        let value = keep(Self::decode::<T>(&resp)?);
        if let (200, Some(tag), Ok(mut m)) = (resp.status, resp.etag, self.revalidated.lock()) {
            if m.len() >= MAX_REVALIDATED && !m.contains_key(path) {
                m.clear();
            }
            m.insert(path.to_owned(), (tag, Arc::new(value.clone())));
        }
        Ok(value)
    }

    /// `GET path`.
    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str) -> BackendResult<T> {
        self.call("GET", path, None)
    }

    /// `method path` with a JSON body.
    pub(crate) fn send<T: DeserializeOwned, B: Serialize>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> BackendResult<T> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BackendError::remote(abi::codes::INTERNAL_ERROR, format!("cannot encode request: {e}")))?;
        self.call(method, path, Some(bytes))
    }

    /// `DELETE path`.
    pub(crate) fn delete<T: DeserializeOwned>(&self, path: &str) -> BackendResult<T> {
        self.call("DELETE", path, None)
    }

    /// The remote plugin's self-description.
    pub fn plugin_info(&self) -> BackendResult<abi::PluginInfo> {
        let info: PluginInfoJson = self.get("/v1/info")?;
        Ok(abi::PluginInfo::from(&info))
    }

    /// The whole hierarchy of `dom` (SECURE XML, topological, current marker) in one request.
    pub fn export(&self, dom: &str) -> BackendResult<HierarchyJson> {
        self.get(&format!("/v1/domains/{}/snapshot-export", seg(dom)))
    }

    /// Imports a whole hierarchy (all or nothing) in one request, tracked under `request.migration`
    /// when set.
    pub fn import(&self, dom: &str, request: &ImportRequest) -> BackendResult<()> {
        let _: serde_json::Value = self.send("POST", &format!("/v1/domains/{}/snapshot-import", seg(dom)), request)?;
        Ok(())
    }

    /// What the daemon knows of the import of migration `id` (`unknown` when nothing).
    pub fn import_status(&self, id: &str) -> BackendResult<ImportStatusJson> {
        self.get(&format!("/v1/imports/{}", seg(id)))
    }

    /// Settles the import of migration `id`: one that never reached the daemon is refused from
    /// now on (`aborted`); otherwise its recorded state (`running` while still in flight).
    pub fn settle_import(&self, id: &str) -> BackendResult<ImportStatusJson> {
        self.send("POST", &format!("/v1/imports/{}/settle", seg(id)), &serde_json::json!({}))
    }

    /// Asks the daemon to migrate `dom`'s hierarchy to `to`; returns the task.
    pub fn start_migration(&self, request: &MigrationRequest) -> BackendResult<TaskJson> {
        self.send("POST", "/v1/migrations", request)
    }

    /// One task's state.
    pub fn task(&self, id: u64) -> BackendResult<TaskJson> {
        self.get(&format!("/v1/tasks/{id}"))
    }

    /// Polls task `id` until it finishes, calling `progress` on every change.
    pub fn wait_task(&self, id: u64, mut progress: impl FnMut(&TaskJson)) -> BackendResult<TaskJson> {
        let mut last: Option<TaskJson> = None;
        loop {
            let task = self.task(id)?;
            if last.as_ref() != Some(&task) {
                progress(&task);
            }
            if task.state != TaskState::Running {
                return Ok(task);
            }
            last = Some(task);
            std::thread::sleep(super::http::POLL_INTERVAL);
        }
    }
}
