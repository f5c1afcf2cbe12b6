//! The REDEFINE and import helpers every metadata store shares, public so that a plugin can
//! validate and apply a redefine without any store: the UUID inside an embedded `<domain>`,
//! libvirt's ABI-stability check between an old and a new embedded domain, the stored form of a
//! definition (what "the same content" means for an import) and an import's check of its current
//! snapshot; an import's redefine order is [`crate::import_order::order`].
//! The tree checks themselves are [`SnapshotTree::check_redefine`](crate::tree::SnapshotTree::check_redefine).

use crate::{
    Error, Result, codes,
    domain::{self, DomainDef},
    xml::{self, FormatFlags, SnapshotDef},
};

/// The stored form of a definition: secure XML without `<parent>`, `<active>` and `<domain>`.
/// Two definitions with equal stored forms (and equal parents and domains) are the same
/// snapshot for an import.
pub fn stored_xml(def: &SnapshotDef) -> String {
    xml::format(&stored_def(def), None, STORED_FORMAT)
}

/// `def` as the store keeps it: no `<parent>`, `<active>` or `<domain>` (those live beside it).
pub(crate) fn stored_def(def: &SnapshotDef) -> SnapshotDef {
    SnapshotDef { parent: None, active: None, domain: None, ..def.clone() }
}

/// How the stored form is formatted: secure, without `<active>`.
pub(crate) const STORED_FORMAT: FormatFlags = FormatFlags { secure: true, internal: false, current: false };

/// The UUID inside a full `<domain>` element, if readable (lower-case, dashed when valid).
pub fn embedded_uuid(dom_xml: &str) -> Option<String> {
    let root = crate::xmltree::parse_document_with(dom_xml, "domain_definition", |e| e.name != "uuid").ok()?;
    root.child_text("uuid").map(|u| domain::normalize_uuid(&u).unwrap_or(u))
}

/// libvirt's ABI-stability subset for redefine: vCPU count and maximum memory must match
/// (CONFIG_UNSUPPORTED otherwise). Unreadable definitions are not compared.
pub fn check_abi(old: &str, new: &str) -> Result<()> {
    let (Ok(old), Ok(new)) = (DomainDef::parse(old), DomainDef::parse(new)) else {
        return Ok(());
    };
    if old.vcpus != new.vcpus {
        return Err(Error::new(
            codes::CONFIG_UNSUPPORTED,
            format!("Target domain vCPU max {} does not match source {}", new.vcpus, old.vcpus),
        ));
    }
    if old.max_memory_kib != new.max_memory_kib {
        return Err(Error::new(
            codes::CONFIG_UNSUPPORTED,
            format!("Target domain max memory {} does not match source {}", new.max_memory_kib, old.max_memory_kib),
        ));
    }
    Ok(())
}

/// What a redefine of an existing snapshot keeps: with a new `<domain>` both must be
/// ABI-compatible ([`check_abi`]); without one, `new` takes the old snapshot's domain.
pub fn merge_domain(old: &SnapshotDef, new: &mut SnapshotDef) -> Result<()> {
    match (&old.domain, &new.domain) {
        (Some(o), Some(n)) => check_abi(o, n),
        (Some(o), None) => {
            new.domain = Some(o.clone());
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether redefining `def` over `old` (the stored snapshot of the same name, whose parent is
/// `old_parent`) would leave what a store keeps unchanged: the same parent and the same stored
/// definition (the old `<domain>` counts when `def` has none, because a redefine keeps it).
pub fn same_as_stored(def: &SnapshotDef, old: &SnapshotDef, old_parent: Option<&str>) -> bool {
    if old_parent != def.parent.as_deref() {
        return false;
    }
    let domain = def.domain.as_ref().or(old.domain.as_ref());
    domain == old.domain.as_ref() && stored_xml(def) == stored_xml(old)
}

/// The import's check of `current`: it must name one of `defs` (INVALID_ARG otherwise).
pub fn check_import_current(defs: &[SnapshotDef], current: Option<&str>) -> Result<()> {
    match current.filter(|c| !defs.iter().any(|d| d.name == *c)) {
        Some(c) => Err(Error::invalid_arg(format!("current snapshot {c} is not in the bundle"))),
        None => Ok(()),
    }
}
