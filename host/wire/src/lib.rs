//! virtplug-wire: the JSON shapes of virtplugd's HTTP API, shared by the daemon (which serves them
//! and derives their OpenAPI schemas with the `openapi` feature) and the host's remote client
//! (which sends and reads them). One definition, so the two sides cannot drift apart.
//!
//! The OpenAPI document generated from the daemon's routes over these types is checked in beside
//! them, as `openapi.json` in this crate's folder (the daemon's `openapi` test compares the two).

use serde::{Deserialize, Serialize};
use virtplug_plugin_api::{
    self as abi,
    abi_stable::std_types::{RString, RVec},
};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Header naming the driver URI a request is for (`mock:///default`); the daemon's default when
/// absent.
pub const URI_HEADER: &str = "virtplug-uri";
/// Header by which a client asks for a read-only connection on a read-write channel.
pub const READ_ONLY_HEADER: &str = "virtplug-read-only";

/// An error: libvirt's code number, its symbolic name and libvirt's exact message text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ErrorBody {
    /// libvirt's `virErrorNumber`.
    pub code: u32,
    /// libvirt's symbolic name, e.g. `VIR_ERR_INVALID_ARG`.
    pub name: String,
    /// The full message as libvirt prints it (with its per-code prefix).
    pub message: String,
    /// The detail text without the prefix (what the plugin reported).
    pub detail: String,
    /// The id of the request answered with this error (its `X-Request-Id`), when it came from
    /// a request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub request_id: Option<String>,
}

/// Flag masks per operation a plugin accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[allow(missing_docs, reason = "one field per operation, named as the operation")]
pub struct CapsJson {
    pub snapshot_create: u32,
    pub snapshot_revert: u32,
    pub snapshot_delete: u32,
    pub snapshot_list: u32,
    pub snapshot_xml: u32,
    pub snapshot_import: u32,
    pub domain_undefine: u32,
    pub domain_xml: u32,
}

/// The serving plugin's self-description (the remote side's masks drive the local checks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PluginInfoJson {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// ABI major version.
    pub abi_major: u16,
    /// ABI minor version.
    pub abi_minor: u16,
    /// URI schemes served.
    pub schemes: Vec<String>,
    /// Operation bits (`flags::ops`).
    pub ops: u64,
    /// Accepted flags per operation.
    pub caps: CapsJson,
}

impl From<&abi::PluginInfo> for PluginInfoJson {
    fn from(i: &abi::PluginInfo) -> Self {
        let c = &i.caps;
        Self {
            name: i.name.to_string(),
            version: i.version.to_string(),
            abi_major: i.abi_major,
            abi_minor: i.abi_minor,
            schemes: i.schemes.iter().map(ToString::to_string).collect(),
            ops: i.ops,
            caps: CapsJson {
                snapshot_create: c.snapshot_create,
                snapshot_revert: c.snapshot_revert,
                snapshot_delete: c.snapshot_delete,
                snapshot_list: c.snapshot_list,
                snapshot_xml: c.snapshot_xml,
                snapshot_import: c.snapshot_import,
                domain_undefine: c.domain_undefine,
                domain_xml: c.domain_xml,
            },
        }
    }
}

impl From<&PluginInfoJson> for abi::PluginInfo {
    fn from(i: &PluginInfoJson) -> Self {
        let c = &i.caps;
        Self {
            name: RString::from(i.name.as_str()),
            version: RString::from(i.version.as_str()),
            abi_major: i.abi_major,
            abi_minor: i.abi_minor,
            schemes: i.schemes.iter().map(|s| RString::from(s.as_str())).collect::<RVec<_>>(),
            ops: i.ops,
            caps: abi::Capabilities {
                snapshot_create: c.snapshot_create,
                snapshot_revert: c.snapshot_revert,
                snapshot_delete: c.snapshot_delete,
                snapshot_list: c.snapshot_list,
                snapshot_xml: c.snapshot_xml,
                snapshot_import: c.snapshot_import,
                domain_undefine: c.domain_undefine,
                domain_xml: c.domain_xml,
            },
        }
    }
}

/// The domain and snapshot records travel as the model defines them.
pub use virtplug_model::{DomainInfo, SnapshotInfo};

/// A domain definition to define.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DefineRequest {
    /// Domain XML.
    pub xml: String,
}

/// A snapshot to create (or redefine) from XML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreateRequest {
    /// `<domainsnapshot>` XML.
    pub xml: String,
    /// `flags::snapshot_create` bits.
    #[serde(default)]
    pub flags: u32,
}

/// A flags-only request body (revert).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct FlagsRequest {
    /// The operation's flag bits.
    #[serde(default)]
    pub flags: u32,
}

/// Where a domain's snapshot metadata lives when several hosts share its store (`snapshot_store`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct StoreJson {
    /// The shared store's identity: the same on every host of it.
    pub store: String,
    /// This connection's host on the store.
    pub host: String,
}

/// A handover of a domain's snapshot metadata to another host of its shared store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HandoverRequest {
    /// The receiving host, as its `snapshot_store` names it.
    pub to: String,
}

/// A name result (create, edit).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NameResponse {
    /// The resulting snapshot name.
    pub name: String,
}

/// An XML result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct XmlResponse {
    /// The XML text.
    pub xml: String,
}

/// The current snapshot, if any.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CurrentResponse {
    /// The current snapshot, or null.
    pub current: Option<SnapshotInfo>,
}

/// A whole hierarchy: every snapshot's SECURE XML, parents before children, and the current
/// marker. What export returns and import takes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HierarchyJson {
    /// Snapshot XMLs in topological order.
    pub xmls: Vec<String>,
    /// Names in the same order.
    pub names: Vec<String>,
    /// Parent of each entry (same order), null for roots.
    pub parents: Vec<Option<String>>,
    /// The current snapshot's name.
    pub current: Option<String>,
}

/// An import of a whole hierarchy, all or nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportRequest {
    /// Snapshot XMLs, parents first.
    pub xmls: Vec<String>,
    /// The snapshot to mark current.
    #[serde(default)]
    pub current: Option<String>,
    /// `flags::snapshot_import` bits (DRY_RUN = 1).
    #[serde(default)]
    pub flags: u32,
    /// The migration this import belongs to. The daemon records the import's outcome under this
    /// id durably (see `/v1/imports/{id}`), so that a restarted supervisor can wait for an import
    /// still in flight before it finishes or rolls back; an id that was settled as `aborted` is
    /// refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
}

/// What a daemon knows of a tracked import (one per migration id): `running` (in flight: wait),
/// `committed`, `failed` (nothing written), `interrupted` (the daemon died while it ran: the
/// plugin transaction either committed whole or not at all; compare the trees), `aborted` (never
/// started here, and now refused) or `unknown` (only from `GET`: no such import yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct ImportStatusJson {
    /// The migration id.
    pub migration: String,
    /// `running`, `committed`, `failed`, `interrupted`, `aborted` or `unknown`.
    pub state: String,
}

/// A supervised migration of one domain's snapshot hierarchy from this daemon to `to`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct MigrationRequest {
    /// The domain.
    pub domain: String,
    /// The destination URI (e.g. `mock+unix:///default?socket=/run/b.sock`).
    pub to: String,
    /// Check everything on the destination, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// State of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Still running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error; every change was rolled back.
    Failed,
}

/// One step of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TaskStep {
    /// Step name, e.g. `export`.
    pub name: String,
    /// `pending`, `running`, `done`, `failed` or `skipped`.
    pub state: String,
    /// A short human-readable note.
    #[serde(default)]
    pub message: String,
}

/// A long operation: pollable at `/v1/tasks/{id}`, and followed on the event stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TaskJson {
    /// Task id.
    pub id: u64,
    /// What it does, e.g. `migrate_snapshots`.
    pub kind: String,
    /// Running, succeeded or failed.
    pub state: TaskState,
    /// Units done.
    pub done: u64,
    /// Units in total (0 while unknown).
    pub total: u64,
    /// The steps, in order.
    pub steps: Vec<TaskStep>,
    /// The result when succeeded (null before).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<serde_json::Value>,
    /// The error when failed.
    #[serde(default)]
    pub error: Option<ErrorBody>,
    /// The id of the request that started the task (its `X-Request-Id`); none for a task the
    /// daemon started itself (a recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub request_id: Option<String>,
}

/// One event on `/v1/events`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct EventJson {
    /// Sequence number, strictly increasing; the SSE `id`.
    pub seq: u64,
    /// `snapshot.created`, `snapshot.redefined`, `snapshot.reverted`, `snapshot.deleted`,
    /// `snapshot.metadata_dropped`, `snapshot.current_changed`, `snapshot.imported`,
    /// `domain.defined`, `domain.undefined`, `domain.started`, `domain.stopped`,
    /// `domain.suspended`, `domain.resumed`, `task.progress`, `task.finished`, or `reset`
    /// (events were missed: re-read the state).
    pub kind: String,
    /// The driver URI the event happened on.
    #[serde(default)]
    pub uri: String,
    /// The domain, if any.
    #[serde(default)]
    pub domain: Option<String>,
    /// The snapshot, if any.
    #[serde(default)]
    pub snapshot: Option<String>,
    /// The task, for task events.
    #[serde(default)]
    pub task: Option<TaskJson>,
    /// Seconds since the epoch.
    pub time: u64,
}
