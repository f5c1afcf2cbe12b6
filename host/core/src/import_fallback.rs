//! `snapshot_import` for plugins that do not declare it but redefine snapshots: the host
//! replays libvirt's own workflow — each definition redefined parents first (the model's
//! import order), the current one with CURRENT — with the import's rules (a name that exists
//! with the same definition is left as it is; with another one the import is refused with
//! libvirt's duplicate-name error before anything is written), and on a failure it removes
//! the metadata it redefined, children first.
//!
//! Unlike a plugin's own import this is not one transaction: another client of the same plugin
//! may see the snapshots appear one by one, and a crash mid-way leaves those redefined so far
//! (a retry then skips them as identical and finishes). So that no other writer can create or
//! change a snapshot between the checks and the redefines (a REDEFINE would replace it) or
//! between a failure and the rollback (which would delete it), the import holds the domain's
//! job when the plugin keeps jobs; a plugin without jobs gets the import unguarded.

use virtplug_model::{
    import_order,
    xml::{self, FormatFlags, ParseFlags, SnapshotDef},
};
use virtplug_plugin_api::flags::{ops, snapshot_create, snapshot_delete, snapshot_import};

use crate::{
    connection::Connection,
    error::{HostError, Result},
    rules,
};

/// Whether `conn`'s plugin gets the fallback: no import of its own, but REDEFINE (and CURRENT
/// when a current snapshot is named) on create.
pub(crate) fn applies(conn: &Connection, current: Option<&str>) -> bool {
    let info = conn.plugin_info();
    let create_mask = (rules::SNAPSHOT_CREATE.mask)(&info.caps);
    let needs = snapshot_create::REDEFINE | if current.is_some() { snapshot_create::CURRENT } else { 0 };
    info.ops & ops::SNAPSHOT_IMPORT == 0 && info.ops & ops::SNAPSHOT_CREATE != 0 && create_mask & needs == needs
}

fn canonical(def: &SnapshotDef) -> String {
    xml::format(def, None, FormatFlags { secure: true, internal: false, current: false })
}

/// Imports `xmls` into `dom` through REDEFINE (see the module header). `flags` are
/// `snapshot_import` flags (DRY_RUN checks everything and writes nothing).
pub(crate) fn import(conn: &Connection, dom: &str, xmls: &[String], current: Option<&str>, flags: u32) -> Result<()> {
    if conn.is_read_only() {
        return Err(HostError::ReadOnly { function: rules::SNAPSHOT_IMPORT.function });
    }
    let unknown = flags & !snapshot_import::DRY_RUN;
    if unknown != 0 {
        return Err(HostError::UnsupportedFlags { flags: unknown, operation: rules::SNAPSHOT_IMPORT.operation });
    }
    let parse = ParseFlags { redefine: true, internal: false, offline: false };
    let mut texts = std::collections::HashMap::with_capacity(xmls.len());
    let mut defs = Vec::with_capacity(xmls.len());
    for text in xmls {
        let def = xml::parse(text, parse)?;
        texts.insert(def.name.clone(), text.as_str());
        defs.push(def);
    }
    let defs = import_order::order(defs).map_err(HostError::Invalid)?;
    if let Some(c) = current.filter(|c| !defs.iter().any(|d| d.name == *c)) {
        return Err(HostError::Invalid(virtplug_model::Error::invalid_arg(format!(
            "current snapshot {c} is not in the bundle"
        ))));
    }
    // The job (when the plugin keeps jobs) covers the checks too: nothing may change between
    // them and the redefines. A dry run writes nothing and takes none.
    let dry_run = flags & snapshot_import::DRY_RUN != 0;
    let job = if dry_run {
        None
    } else {
        match conn.domain_job_begin(dom, "snapshot import through REDEFINE") {
            Ok(id) => Some(id),
            Err(e) if e.code() == virtplug_plugin_api::codes::NO_SUPPORT => None,
            Err(e) => return Err(e),
        }
    };
    let result = fresh_names(conn, dom, defs)
        .and_then(|fresh| if dry_run { Ok(()) } else { redefine_all(conn, dom, &fresh, &texts, current) });
    if let Some(id) = job
        && let Err(e) = conn.domain_job_end(dom, &id)
    {
        tracing::warn!(domain = dom, error = %e, "import: the domain's job could not be ended");
    }
    result
}

/// The definitions to redefine: every name is checked before anything is written; one that
/// exists with the same parent and definition is left alone, one that differs refuses all.
fn fresh_names(conn: &Connection, dom: &str, defs: Vec<SnapshotDef>) -> Result<Vec<SnapshotDef>> {
    let parse = ParseFlags { redefine: true, internal: false, offline: false };
    let mut fresh = Vec::with_capacity(defs.len());
    for def in defs {
        match conn.snapshot_lookup(dom, &def.name) {
            Ok(existing) => {
                let stored = conn.snapshot_xml(dom, &def.name, virtplug_plugin_api::flags::snapshot_xml::SECURE)?;
                let stored = xml::parse(&stored, parse)?;
                if existing.parent != def.parent || canonical(&stored) != canonical(&def) {
                    return Err(HostError::Invalid(virtplug_model::Error::new(
                        virtplug_plugin_api::codes::OPERATION_FAILED,
                        format!("domain moment {} already exists", def.name),
                    )));
                }
            }
            Err(e) if e.code() == virtplug_plugin_api::codes::NO_DOMAIN_SNAPSHOT => fresh.push(def),
            Err(e) => return Err(e),
        }
    }
    Ok(fresh)
}

/// The redefines of an import whose checks passed; on a failure, what was redefined is removed.
fn redefine_all(
    conn: &Connection,
    dom: &str,
    fresh: &[SnapshotDef],
    texts: &std::collections::HashMap<String, &str>,
    current: Option<&str>,
) -> Result<()> {
    let mut redefined: Vec<String> = Vec::with_capacity(fresh.len());
    for def in fresh {
        let mut create = snapshot_create::REDEFINE;
        if current == Some(def.name.as_str()) {
            create |= snapshot_create::CURRENT;
        }
        let text = texts.get(&def.name).copied().unwrap_or_default();
        if let Err(e) = conn.snapshot_create(dom, text, create) {
            roll_back(conn, dom, &redefined);
            return Err(e);
        }
        redefined.push(def.name.clone());
    }
    Ok(())
}

/// Removes the metadata this import redefined, children first, with METADATA_ONLY: a plain
/// delete could remove what the hypervisor held before the import, so a plugin without
/// METADATA_ONLY keeps them (logged; the import's error is what the caller gets).
fn roll_back(conn: &Connection, dom: &str, redefined: &[String]) {
    let delete_mask = (rules::SNAPSHOT_DELETE.mask)(&conn.plugin_info().caps);
    if delete_mask & snapshot_delete::METADATA_ONLY == 0 {
        tracing::warn!(domain = dom, kept = redefined.len(), "import rollback: the plugin cannot delete metadata only");
        return;
    }
    for name in redefined.iter().rev() {
        if let Err(e) = conn.snapshot_delete(dom, name, snapshot_delete::METADATA_ONLY) {
            tracing::warn!(domain = dom, snapshot = %name, error = %e, "import rollback could not remove a redefined snapshot");
        }
    }
}
