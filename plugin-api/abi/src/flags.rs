//! Flag constants with libvirt's names and bit values, one module per operation, plus the
//! operation bits a plugin declares in [`crate::PluginInfo::ops`].
//!
//! Each module also has `ALL` (every bit libvirt defines for that operation) and `NAMES`
//! (bit → public C name), which the host's rule tables and error messages use.

/// `virDomainSnapshotCreateFlags`.
pub mod snapshot_create {
    /// Restore or alter metadata only.
    pub const REDEFINE: u32 = 1 << 0;
    /// With REDEFINE, make the snapshot current.
    pub const CURRENT: u32 = 1 << 1;
    /// Take the snapshot but keep no metadata.
    pub const NO_METADATA: u32 = 1 << 2;
    /// Stop the guest after the snapshot.
    pub const HALT: u32 = 1 << 3;
    /// Disk state only.
    pub const DISK_ONLY: u32 = 1 << 4;
    /// Reuse existing external files.
    pub const REUSE_EXT: u32 = 1 << 5;
    /// Quiesce guest file systems.
    pub const QUIESCE: u32 = 1 << 6;
    /// All or nothing.
    pub const ATOMIC: u32 = 1 << 7;
    /// Do not pause the guest while saving memory.
    pub const LIVE: u32 = 1 << 8;
    /// Validate the XML against the schema.
    pub const VALIDATE: u32 = 1 << 9;
    /// Every defined bit.
    pub const ALL: u32 = 0x3ff;
    /// Public names of the bits.
    pub const NAMES: &[(u32, &str)] = &[
        (REDEFINE, "VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE"),
        (CURRENT, "VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT"),
        (NO_METADATA, "VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA"),
        (HALT, "VIR_DOMAIN_SNAPSHOT_CREATE_HALT"),
        (DISK_ONLY, "VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY"),
        (REUSE_EXT, "VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT"),
        (QUIESCE, "VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE"),
        (ATOMIC, "VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC"),
        (LIVE, "VIR_DOMAIN_SNAPSHOT_CREATE_LIVE"),
        (VALIDATE, "VIR_DOMAIN_SNAPSHOT_CREATE_VALIDATE"),
    ];
}

/// `virDomainSnapshotListFlags`.
pub mod snapshot_list {
    /// Domain-level listing: only roots.
    pub const ROOTS: u32 = 1 << 0;
    /// Snapshot-level listing: all descendants, not just children (same bit as ROOTS).
    pub const DESCENDANTS: u32 = 1 << 0;
    /// Only snapshots with metadata.
    pub const METADATA: u32 = 1 << 1;
    /// Only leaves.
    pub const LEAVES: u32 = 1 << 2;
    /// Only snapshots with children.
    pub const NO_LEAVES: u32 = 1 << 3;
    /// Only snapshots without metadata.
    pub const NO_METADATA: u32 = 1 << 4;
    /// Only snapshots taken while shut off.
    pub const INACTIVE: u32 = 1 << 5;
    /// Only snapshots taken while active, with memory.
    pub const ACTIVE: u32 = 1 << 6;
    /// Only disk-only snapshots.
    pub const DISK_ONLY: u32 = 1 << 7;
    /// Only internal snapshots.
    pub const INTERNAL: u32 = 1 << 8;
    /// Only external snapshots.
    pub const EXTERNAL: u32 = 1 << 9;
    /// Parents before children.
    pub const TOPOLOGICAL: u32 = 1 << 10;
    /// Every defined bit.
    pub const ALL: u32 = 0x7ff;
    /// Public names of the bits (bit 0 under its domain-level name).
    pub const NAMES: &[(u32, &str)] = &[
        (ROOTS, "VIR_DOMAIN_SNAPSHOT_LIST_ROOTS"),
        (METADATA, "VIR_DOMAIN_SNAPSHOT_LIST_METADATA"),
        (LEAVES, "VIR_DOMAIN_SNAPSHOT_LIST_LEAVES"),
        (NO_LEAVES, "VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES"),
        (NO_METADATA, "VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA"),
        (INACTIVE, "VIR_DOMAIN_SNAPSHOT_LIST_INACTIVE"),
        (ACTIVE, "VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE"),
        (DISK_ONLY, "VIR_DOMAIN_SNAPSHOT_LIST_DISK_ONLY"),
        (INTERNAL, "VIR_DOMAIN_SNAPSHOT_LIST_INTERNAL"),
        (EXTERNAL, "VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL"),
        (TOPOLOGICAL, "VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL"),
    ];
}

/// `virDomainSnapshotRevertFlags`.
pub mod snapshot_revert {
    /// Run after reverting.
    pub const RUNNING: u32 = 1 << 0;
    /// Pause after reverting.
    pub const PAUSED: u32 = 1 << 1;
    /// Allow risky reverts.
    pub const FORCE: u32 = 1 << 2;
    /// Re-initialise NVRAM.
    pub const RESET_NVRAM: u32 = 1 << 3;
    /// Every defined bit.
    pub const ALL: u32 = 0xf;
    /// Public names of the bits.
    pub const NAMES: &[(u32, &str)] = &[
        (RUNNING, "VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING"),
        (PAUSED, "VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED"),
        (FORCE, "VIR_DOMAIN_SNAPSHOT_REVERT_FORCE"),
        (RESET_NVRAM, "VIR_DOMAIN_SNAPSHOT_REVERT_RESET_NVRAM"),
    ];
}

/// `virDomainSnapshotDeleteFlags`.
pub mod snapshot_delete {
    /// Delete the snapshot and all its descendants.
    pub const CHILDREN: u32 = 1 << 0;
    /// Delete only the metadata, leave the snapshot contents.
    pub const METADATA_ONLY: u32 = 1 << 1;
    /// Delete only the descendants.
    pub const CHILDREN_ONLY: u32 = 1 << 2;
    /// Every defined bit.
    pub const ALL: u32 = 0x7;
    /// Public names of the bits.
    pub const NAMES: &[(u32, &str)] = &[
        (CHILDREN, "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN"),
        (METADATA_ONLY, "VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY"),
        (CHILDREN_ONLY, "VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY"),
    ];
}

/// `virDomainSnapshotXMLFlags` (and `virDomainXMLFlags` SECURE for domains).
pub mod snapshot_xml {
    /// Include security-sensitive information.
    pub const SECURE: u32 = 1 << 0;
    /// Every defined bit.
    pub const ALL: u32 = 0x1;
    /// Public names of the bits.
    pub const NAMES: &[(u32, &str)] = &[(SECURE, "VIR_DOMAIN_SNAPSHOT_XML_SECURE")];
}

/// `virDomainUndefineFlagsValues`.
pub mod domain_undefine {
    /// Remove a managed-save image too.
    pub const MANAGED_SAVE: u32 = 1 << 0;
    /// Remove all snapshot metadata (the domain must be inactive).
    pub const SNAPSHOTS_METADATA: u32 = 1 << 1;
    /// Remove NVRAM.
    pub const NVRAM: u32 = 1 << 2;
    /// Keep NVRAM.
    pub const KEEP_NVRAM: u32 = 1 << 3;
    /// Remove checkpoint metadata.
    pub const CHECKPOINTS_METADATA: u32 = 1 << 4;
    /// Remove TPM state.
    pub const TPM: u32 = 1 << 5;
    /// Keep TPM state.
    pub const KEEP_TPM: u32 = 1 << 6;
    /// Every defined bit.
    pub const ALL: u32 = 0x7f;
    /// Public names of the bits.
    pub const NAMES: &[(u32, &str)] = &[
        (MANAGED_SAVE, "VIR_DOMAIN_UNDEFINE_MANAGED_SAVE"),
        (SNAPSHOTS_METADATA, "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA"),
        (NVRAM, "VIR_DOMAIN_UNDEFINE_NVRAM"),
        (KEEP_NVRAM, "VIR_DOMAIN_UNDEFINE_KEEP_NVRAM"),
        (CHECKPOINTS_METADATA, "VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA"),
        (TPM, "VIR_DOMAIN_UNDEFINE_TPM"),
        (KEEP_TPM, "VIR_DOMAIN_UNDEFINE_KEEP_TPM"),
    ];
}

/// `virDomainXMLFlags` for domain XML.
pub mod domain_xml {
    /// Include security-sensitive information.
    pub const SECURE: u32 = 1 << 0;
    /// The persistent (inactive) definition.
    pub const INACTIVE: u32 = 1 << 1;
    /// XML suitable for a migration (libvirt's `VIR_DOMAIN_XML_MIGRATABLE`, 0x8; its 0x4,
    /// `UPDATE_CPU`, is not defined here, so it is refused as an unknown bit).
    pub const MIGRATABLE: u32 = 1 << 3;
    /// Every bit virtplug accepts.
    pub const ALL: u32 = SECURE | INACTIVE | MIGRATABLE;
    /// Public names of the bits.
    pub const NAMES: &[(u32, &str)] = &[
        (SECURE, "VIR_DOMAIN_XML_SECURE"),
        (INACTIVE, "VIR_DOMAIN_XML_INACTIVE"),
        (MIGRATABLE, "VIR_DOMAIN_XML_MIGRATABLE"),
    ];
}

/// `virDomainState` values; snapshot states add [`domain_state::DISK_SNAPSHOT`].
pub mod domain_state {
    /// No state.
    pub const NOSTATE: u32 = 0;
    /// Running.
    pub const RUNNING: u32 = 1;
    /// Blocked on a resource.
    pub const BLOCKED: u32 = 2;
    /// Paused by the user.
    pub const PAUSED: u32 = 3;
    /// Being shut down.
    pub const SHUTDOWN: u32 = 4;
    /// Shut off.
    pub const SHUTOFF: u32 = 5;
    /// Crashed.
    pub const CRASHED: u32 = 6;
    /// Suspended by guest power management.
    pub const PMSUSPENDED: u32 = 7;
    /// Snapshot-only state: a disk-only snapshot.
    pub const DISK_SNAPSHOT: u32 = 8;
}

/// libvirt's state reasons (`virDomainRunningReason`, `virDomainPausedReason`,
/// `virDomainShutoffReason`) that drivers report with a state; named by state.
pub mod domain_state_reason {
    /// `VIR_DOMAIN_RUNNING_BOOTED`.
    pub const RUNNING_BOOTED: u32 = 1;
    /// `VIR_DOMAIN_RUNNING_FROM_SNAPSHOT`.
    pub const RUNNING_FROM_SNAPSHOT: u32 = 4;
    /// `VIR_DOMAIN_RUNNING_UNPAUSED`.
    pub const RUNNING_UNPAUSED: u32 = 5;
    /// `VIR_DOMAIN_PAUSED_USER`.
    pub const PAUSED_USER: u32 = 1;
    /// `VIR_DOMAIN_PAUSED_FROM_SNAPSHOT`.
    pub const PAUSED_FROM_SNAPSHOT: u32 = 7;
    /// `VIR_DOMAIN_SHUTOFF_SHUTDOWN`.
    pub const SHUTOFF_SHUTDOWN: u32 = 1;
    /// `VIR_DOMAIN_SHUTOFF_DESTROYED`.
    pub const SHUTOFF_DESTROYED: u32 = 2;
    /// `VIR_DOMAIN_SHUTOFF_CRASHED`.
    pub const SHUTOFF_CRASHED: u32 = 3;
    /// `VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT`.
    pub const SHUTOFF_FROM_SNAPSHOT: u32 = 7;
}

/// Operation bits for [`crate::PluginInfo::ops`]: which operations a plugin implements at all.
/// Append only; a bit is never reused.
pub mod ops {
    /// `domain_list`.
    pub const DOMAIN_LIST: u64 = 1 << 0;
    /// `domain_lookup_by_name` and `domain_lookup_by_uuid`.
    pub const DOMAIN_LOOKUP: u64 = 1 << 1;
    /// `domain_define`.
    pub const DOMAIN_DEFINE: u64 = 1 << 2;
    /// `domain_undefine`.
    pub const DOMAIN_UNDEFINE: u64 = 1 << 3;
    /// `domain_start`.
    pub const DOMAIN_START: u64 = 1 << 4;
    /// `domain_shutdown`.
    pub const DOMAIN_SHUTDOWN: u64 = 1 << 5;
    /// `domain_destroy`.
    pub const DOMAIN_DESTROY: u64 = 1 << 6;
    /// `domain_suspend`.
    pub const DOMAIN_SUSPEND: u64 = 1 << 7;
    /// `domain_resume`.
    pub const DOMAIN_RESUME: u64 = 1 << 8;
    /// `domain_xml`.
    pub const DOMAIN_XML: u64 = 1 << 9;
    /// `snapshot_create`.
    pub const SNAPSHOT_CREATE: u64 = 1 << 10;
    /// `snapshot_xml`.
    pub const SNAPSHOT_XML: u64 = 1 << 11;
    /// `snapshot_list`.
    pub const SNAPSHOT_LIST: u64 = 1 << 12;
    /// `snapshot_lookup`.
    pub const SNAPSHOT_LOOKUP: u64 = 1 << 13;
    /// `snapshot_current`.
    pub const SNAPSHOT_CURRENT: u64 = 1 << 14;
    /// `snapshot_revert`.
    pub const SNAPSHOT_REVERT: u64 = 1 << 15;
    /// `snapshot_delete`.
    pub const SNAPSHOT_DELETE: u64 = 1 << 16;
    /// `snapshot_import`: redefine a whole hierarchy in one transaction.
    pub const SNAPSHOT_IMPORT: u64 = 1 << 17;
    /// `snapshot_edit`: redefine under a possibly new name, atomically.
    pub const SNAPSHOT_EDIT: u64 = 1 << 18;
    /// `domain_job_begin` and `domain_job_end`: hold a domain for a multi-step job (see the
    /// `Driver` methods); appended to 1.0, a plugin built before them answers `NO_SUPPORT`.
    pub const DOMAIN_JOB: u64 = 1 << 19;
    /// `snapshot_generation`: the domain's snapshot tree generation (see the `Driver` method);
    /// appended to 1.0, a plugin built before it answers `NO_SUPPORT`.
    pub const SNAPSHOT_GENERATION: u64 = 1 << 20;
    /// `snapshot_store`: where the domain's snapshot metadata lives when hosts share it (see the
    /// `Driver` method); appended to 1.0, a plugin built before it answers `NO_SUPPORT`.
    pub const SNAPSHOT_STORE: u64 = 1 << 21;
    /// `snapshot_handover`: hands the metadata on a shared store to another host (see the
    /// `Driver` method); appended to 1.0, a plugin built before it answers `NO_SUPPORT`.
    pub const SNAPSHOT_HANDOVER: u64 = 1 << 22;
    /// Every operation bit of ABI 1.0.
    pub const ALL: u64 = (1 << 23) - 1;
    /// Operation names, as used everywhere (ABI, host, CLI, conformance).
    pub const NAMES: &[(u64, &str)] = &[
        (DOMAIN_LIST, "domain_list"),
        (DOMAIN_LOOKUP, "domain_lookup"),
        (DOMAIN_DEFINE, "domain_define"),
        (DOMAIN_UNDEFINE, "domain_undefine"),
        (DOMAIN_START, "domain_start"),
        (DOMAIN_SHUTDOWN, "domain_shutdown"),
        (DOMAIN_DESTROY, "domain_destroy"),
        (DOMAIN_SUSPEND, "domain_suspend"),
        (DOMAIN_RESUME, "domain_resume"),
        (DOMAIN_XML, "domain_xml"),
        (SNAPSHOT_CREATE, "snapshot_create"),
        (SNAPSHOT_XML, "snapshot_xml"),
        (SNAPSHOT_LIST, "snapshot_list"),
        (SNAPSHOT_LOOKUP, "snapshot_lookup"),
        (SNAPSHOT_CURRENT, "snapshot_current"),
        (SNAPSHOT_REVERT, "snapshot_revert"),
        (SNAPSHOT_DELETE, "snapshot_delete"),
        (SNAPSHOT_IMPORT, "snapshot_import"),
        (SNAPSHOT_EDIT, "snapshot_edit"),
        (DOMAIN_JOB, "domain_job"),
        (SNAPSHOT_GENERATION, "snapshot_generation"),
        (SNAPSHOT_STORE, "snapshot_store"),
        (SNAPSHOT_HANDOVER, "snapshot_handover"),
    ];

    /// The name of operation `bit` in [`NAMES`], the one place operation names are written
    /// (`rules::OpRules::operation` is built with it); `None` for a bit that has no name.
    pub const fn name(bit: u64) -> Option<&'static str> {
        let mut i = 0;
        while i < NAMES.len() {
            if NAMES[i].0 == bit {
                return Some(NAMES[i].1);
            }
            i += 1;
        }
        None
    }
}

/// virtplug's `snapshot_import` flags (no libvirt equivalent: libvirt has no hierarchy import).
pub mod snapshot_import {
    /// Check the whole bundle against the current state and write nothing.
    pub const DRY_RUN: u32 = 1 << 0;
    /// Every defined bit.
    pub const ALL: u32 = 0x1;
    /// Public names of the bits.
    pub const NAMES: &[(u32, &str)] = &[(DRY_RUN, "VIRTPLUG_SNAPSHOT_IMPORT_DRY_RUN")];
}
