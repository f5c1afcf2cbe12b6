//! Leaf helpers shared by the snapshot operations (`snapshot.rs`, `redefine.rs`, `revert.rs`):
//! qemu's snapshot name rules and the domain definition a snapshot was taken of.

use virtplug_plugin_sdk::{
    Error, Result, codes,
    model::{store::DomainRecord, xml::SnapshotDef},
};

use crate::domain::QemuDef;

/// libvirt's name rules for qemu plus the all-digit rule (qemu resolves digits as IDs).
pub fn check_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::new(codes::XML_DETAIL, format!("invalid snapshot name '{name}': {why}")));
    if name.contains('/') {
        return bad("name can't contain '/'");
    }
    if name.starts_with('.') {
        return bad("name can't start with '.'");
    }
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return bad("all-digit names are refused because qemu resolves them as snapshot IDs");
    }
    Ok(())
}

/// The disks a snapshot's own `<domain>` names (else the domain's current ones).
pub(crate) fn snapshot_qdef(sdef: &SnapshotDef, d: &DomainRecord) -> Result<QemuDef> {
    QemuDef::parse(sdef.domain.as_deref().unwrap_or(&d.xml))
}
