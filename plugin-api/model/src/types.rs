//! Native records for domains and snapshots, as the SDK, the host and the filters use them, and
//! as the daemon's API sends them (serde; OpenAPI schemas with the `openapi` feature).

use serde::{Deserialize, Serialize};

/// One domain as listed or looked up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DomainInfo {
    /// Domain name.
    pub name: String,
    /// UUID, lower-case with dashes.
    pub uuid: String,
    /// Hypervisor id while running, -1 otherwise.
    pub id: i32,
    /// `flags::domain_state` value.
    pub state: u32,
    /// State reason.
    pub reason: u32,
    /// Maximum memory in KiB.
    pub max_memory_kib: u64,
    /// Current memory in KiB.
    pub memory_kib: u64,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Whether the domain is persistent.
    pub persistent: bool,
}

/// One snapshot as listed: what list filters and tree queries need, without XML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SnapshotInfo {
    /// Snapshot name.
    pub name: String,
    /// Parent name, if any.
    pub parent: Option<String>,
    /// Creation time, seconds since the epoch.
    pub creation_time: i64,
    /// Snapshot state (`flags::domain_state`, including `DISK_SNAPSHOT`).
    pub state: u32,
    /// Whether it is the current snapshot.
    pub current: bool,
    /// Whether the driver keeps metadata for it.
    pub has_metadata: bool,
    /// Whether it is external.
    pub external: bool,
    /// Whether it is disk-only.
    pub disk_only: bool,
}
