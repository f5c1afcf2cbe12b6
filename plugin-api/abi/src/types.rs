//! Plain ABI-stable data: the error, the plugin's self-description and the list records.

use abi_stable::{
    StableAbi,
    std_types::{ROption, RString, RVec},
};

/// An error crossing the boundary: libvirt's `virErrorNumber` and the detail text
/// (without libvirt's per-code prefix, which the host adds when it prints).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct AbiError {
    /// libvirt's error code, see [`crate::codes`].
    pub code: u32,
    /// The detail text, a fixed sentence without trailing period.
    pub message: RString,
}

impl AbiError {
    /// An error with a code and a detail text.
    pub fn new(code: u32, message: impl Into<RString>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Per-operation masks of the flag bits a plugin accepts. Constant for the plugin's lifetime.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// `snapshot_create` flags ([`crate::flags::snapshot_create`]).
    pub snapshot_create: u32,
    /// `snapshot_revert` flags.
    pub snapshot_revert: u32,
    /// `snapshot_delete` flags.
    pub snapshot_delete: u32,
    /// `snapshot_list` flags (domain-level and child-level listings).
    pub snapshot_list: u32,
    /// `snapshot_xml` flags.
    pub snapshot_xml: u32,
    /// `snapshot_import` flags.
    pub snapshot_import: u32,
    /// `domain_undefine` flags.
    pub domain_undefine: u32,
    /// `domain_xml` flags.
    pub domain_xml: u32,
}

/// What a plugin says about itself through the root module's `info()`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Short plugin name, e.g. `mock`.
    pub name: RString,
    /// The plugin's own version.
    pub version: RString,
    /// ABI major version the plugin was built against ([`crate::ABI_MAJOR`]).
    pub abi_major: u16,
    /// ABI minor version the plugin was built against ([`crate::ABI_MINOR`]).
    pub abi_minor: u16,
    /// URI schemes the plugin serves, e.g. `mock`.
    pub schemes: RVec<RString>,
    /// Operations implemented ([`crate::flags::ops`] bits).
    pub ops: u64,
    /// Flags accepted per operation.
    pub caps: Capabilities,
}

/// One domain as listed or looked up.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    /// Domain name.
    pub name: RString,
    /// Domain UUID, lower-case with dashes.
    pub uuid: RString,
    /// Hypervisor id while running, -1 otherwise.
    pub id: i32,
    /// [`crate::flags::domain_state`] value.
    pub state: u32,
    /// State reason (libvirt's per-state reason numbers).
    pub reason: u32,
    /// Maximum memory in KiB.
    pub max_memory_kib: u64,
    /// Current memory in KiB.
    pub memory_kib: u64,
    /// Number of virtual CPUs.
    pub vcpus: u32,
    /// Whether the domain has a persistent definition.
    pub persistent: bool,
}

/// One snapshot as listed: enough for every list filter and tree query without XML.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Snapshot name.
    pub name: RString,
    /// Parent snapshot name, if any.
    pub parent: ROption<RString>,
    /// Creation time, seconds since the epoch.
    pub creation_time: i64,
    /// Snapshot state ([`crate::flags::domain_state`], including `DISK_SNAPSHOT`).
    pub state: u32,
    /// Whether this is the domain's current snapshot.
    pub current: bool,
    /// Whether the driver keeps metadata for it.
    pub has_metadata: bool,
    /// Whether the snapshot is external (memory or any disk outside the image).
    pub external: bool,
    /// Whether it is a disk-only snapshot.
    pub disk_only: bool,
}
