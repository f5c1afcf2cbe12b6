//! Snapshot operations of the mock driver: qemu's driver-side checks (name rules, QUIESCE needs
//! DISK_ONLY, LIVE excludes REDEFINE, memory and disk alignment), then the model's tree rules
//! inside one store transaction together with the domain state change.

use virtplug_plugin_sdk::{
    Error, Result, codes,
    flags::{domain_state as st, snapshot_create as cf, snapshot_revert as rf},
    model::{
        domain::DomainDef,
        store::{DomainRecord, Writer},
        tree::RedefineFlags,
        xml::{self, DiskSpec, MemorySpec, ParseFlags, SnapshotDef, SnapshotMode},
    },
};

use crate::state::{Conn, is_active, next_id, pending_key, reason, stop};

fn require(flags: u32, flag: u32, required: u32, flag_name: &str, required_name: &str) -> Result<()> {
    if flags & flag != 0 && flags & required == 0 {
        return Err(Error::new(
            codes::INVALID_ARG,
            format!("Flag '{required_name}' is required by flag '{flag_name}'"),
        ));
    }
    Ok(())
}

fn exclusive(flags: u32, a: u32, b: u32, a_name: &str, b_name: &str) -> Result<()> {
    if flags & a != 0 && flags & b != 0 {
        return Err(Error::new(codes::INVALID_ARG, format!("Flags '{a_name}' and '{b_name}' are mutually exclusive")));
    }
    Ok(())
}

/// qemu's driver rules for create flags. The library's rules (CURRENT requires REDEFINE,
/// REDEFINE excludes NO_METADATA and HALT) come first, from the SDK's rule table, which every
/// call from the host passes through.
fn check_create_flags(flags: u32) -> Result<()> {
    require(
        flags,
        cf::QUIESCE,
        cf::DISK_ONLY,
        "VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE",
        "VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY",
    )?;
    exclusive(flags, cf::LIVE, cf::REDEFINE, "VIR_DOMAIN_SNAPSHOT_CREATE_LIVE", "VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE")
}

/// qemu's name rules (the name becomes a file name there); skipped with NO_METADATA.
fn check_name(name: &str, flags: u32) -> Result<()> {
    if flags & cf::NO_METADATA != 0 {
        return Ok(());
    }
    if name.contains('/') {
        return Err(Error::new(codes::XML_DETAIL, format!("invalid snapshot name '{name}': name can't contain '/'")));
    }
    if name.starts_with('.') {
        return Err(Error::new(
            codes::XML_DETAIL,
            format!("invalid snapshot name '{name}': name can't start with '.'"),
        ));
    }
    Ok(())
}

fn unsupported(msg: String) -> Error {
    Error::new(codes::CONFIG_UNSUPPORTED, msg)
}

/// libvirt's disk alignment against the domain's disk targets (`virDomainSnapshotAlignDisks`):
/// each disk asked for is checked in turn (known, not repeated, its mode, a file only with
/// external mode), disks left out get the default mode, and internal/external may not be mixed.
/// As the test driver's alignment (libvirt's uniform mode), every disk of an internal snapshot
/// must be internal: one asked for with another mode is refused, and so is one left out by
/// `snapshot='no'` (qemu refuses that too for any writable disk). The domain's own `<disk
/// snapshot=…>` attributes are not modelled: every disk takes the default.
fn align_disks(def: &mut SnapshotDef, targets: &[String], default_mode: SnapshotMode) -> Result<()> {
    if def.disks.len() > targets.len() {
        return Err(unsupported("too many disk snapshot requests for domain".into()));
    }
    let require_match = default_mode == SnapshotMode::Internal;
    let mut given: Vec<DiskSpec> = std::mem::take(&mut def.disks);
    for i in 0..given.len() {
        let (before, rest) = given.split_at_mut(i);
        let d = &mut rest[0];
        if !targets.contains(&d.name) {
            return Err(unsupported(format!("no disk named '{}'", d.name)));
        }
        if before.iter().any(|e| e.name == d.name) {
            return Err(unsupported(format!("disk '{}' specified twice", d.name)));
        }
        let mode = *d.snapshot.get_or_insert(default_mode);
        if require_match && mode != default_mode {
            return Err(unsupported(format!("disk '{}' must use snapshot mode 'internal'", d.name)));
        }
        if let Some(src) = &d.source {
            if mode != SnapshotMode::External {
                return Err(unsupported(format!(
                    "file '{src}' for disk '{}' requires use of external snapshot mode",
                    d.name
                )));
            }
        }
    }
    for t in targets {
        let d = match given.iter().position(|d| d.name == *t) {
            Some(p) => given.remove(p),
            None => DiskSpec { name: t.clone(), snapshot: Some(default_mode), ..Default::default() },
        };
        def.disks.push(d);
    }
    let memory_external = def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::External);
    let internal = def.disks.iter().any(|d| d.snapshot == Some(SnapshotMode::Internal))
        || def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::Internal);
    let external = memory_external || def.disks.iter().any(|d| d.snapshot == Some(SnapshotMode::External));
    if internal && external {
        return Err(unsupported("mixing internal and external targets for a snapshot is not yet supported".into()));
    }
    Ok(())
}

/// Builds the complete definition of a plain (non-redefine) create from the domain's state.
/// The disk targets of a domain definition. The definition changes rarely and every plain
/// create needs its targets, so the last one parsed is remembered (per thread).
fn disk_targets(domain_xml: &str) -> Vec<String> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, Vec<String>)>> = const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((xml, targets)) if xml == domain_xml => targets.clone(),
            _ => {
                let targets = DomainDef::parse(domain_xml).map(|x| x.disk_targets).unwrap_or_default();
                *last = Some((domain_xml.to_owned(), targets.clone()));
                targets
            }
        }
    })
}

fn plain_def(d: &DomainRecord, xml_text: &str, flags: u32) -> Result<SnapshotDef> {
    let active = is_active(d.state);
    let disk_only = flags & cf::DISK_ONLY != 0;
    let mut def = xml::parse(xml_text, ParseFlags { offline: disk_only || !active, ..Default::default() })?;
    def.fill_defaults(virtplug_plugin_sdk::now());
    check_name(&def.name, flags)?;
    if flags & cf::LIVE != 0 && (!active || def.memory.as_ref().is_none_or(|m| m.mode != SnapshotMode::External)) {
        return Err(Error::new(
            codes::OPERATION_UNSUPPORTED,
            "live snapshot creation is supported only during full system snapshots",
        ));
    }
    def.state = if disk_only { st::DISK_SNAPSHOT } else { d.state };
    let external_disk = def.disks.iter().any(|x| x.snapshot == Some(SnapshotMode::External));
    let memory_no = def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::No);
    if def.memory.is_none() || (memory_no && active && !disk_only && !external_disk) {
        // An internal snapshot of a running domain saves its memory: the test driver records
        // `<memory snapshot='internal'/>` also when `no` was asked (qemu refuses that instead).
        let mode = if disk_only || !active { SnapshotMode::No } else { SnapshotMode::Internal };
        def.memory = Some(MemorySpec { mode, file: None });
    }
    let memory_external = def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::External);
    let default_mode = if disk_only || memory_external { SnapshotMode::External } else { SnapshotMode::Internal };
    if def.disks.iter().any(|x| x.snapshot == Some(SnapshotMode::Manual)) {
        // The test driver's own check before its alignment, with its text.
        return Err(Error::new(
            codes::OPERATION_UNSUPPORTED,
            "'manual' snapshot mode is not supported by the test driver",
        ));
    }
    let targets = disk_targets(&d.xml);
    align_disks(&mut def, &targets, default_mode)?;
    if disk_only && !def.disks.iter().any(|x| x.snapshot == Some(SnapshotMode::External)) {
        return Err(unsupported("disk-only snapshots require at least one disk to be selected for snapshot".into()));
    }
    def.domain = Some(d.xml.clone());
    Ok(def)
}

/// `snapshot_create`: plain create, NO_METADATA, HALT, DISK_ONLY, or REDEFINE [+ CURRENT].
pub(crate) fn create(drv: &impl Conn, dom: &str, xml_text: &str, flags: u32) -> Result<String> {
    check_create_flags(flags)?;
    if flags & cf::VALIDATE != 0 {
        xml::validate_schema(xml_text)?;
    }
    drv.store()?.write(|w| {
        let d = w.domain_by_name(dom)?;
        if flags & cf::REDEFINE != 0 {
            let def = xml::parse(
                xml_text,
                ParseFlags { redefine: true, offline: flags & cf::DISK_ONLY != 0, ..Default::default() },
            )?;
            check_name(&def.name, flags)?;
            let name = def.name.clone();
            let rflags = RedefineFlags { current: flags & cf::CURRENT != 0, disk_only: flags & cf::DISK_ONLY != 0 };
            match drv.fleet()? {
                Some(mut f) => f.redefine_def(&d.uuid, def, rflags)?,
                None => w.redefine(&d.uuid, def, rflags)?,
            }
            return Ok(name);
        }
        if flags & cf::HALT != 0 && !d.persistent {
            return Err(Error::operation_invalid("cannot halt after transient domain snapshot"));
        }
        let def = plain_def(&d, xml_text, flags)?;
        let mut fleet = drv.fleet()?;
        if flags & cf::NO_METADATA != 0 {
            let exists = match fleet.as_mut() {
                Some(f) => f.lookup(&d.uuid, &def.name).is_ok(),
                None => w.snapshot(&d.uuid, &def.name).is_ok(),
            };
            if exists {
                return Err(Error::new(codes::OPERATION_FAILED, format!("domain moment {} already exists", def.name)));
            }
        } else {
            match fleet.as_mut() {
                Some(f) => f.create_def(&d.uuid, &def)?,
                None => w.create(&d.uuid, &def)?,
            }
        }
        if flags & cf::HALT != 0 && is_active(d.state) {
            stop(w, &d, reason::SHUTOFF_FROM_SNAPSHOT)?;
        }
        Ok(def.name)
    })
}

/// `snapshot_revert`: the snapshot becomes current and the domain takes its state (RUNNING or
/// PAUSED override it) and its definition.
pub(crate) fn revert(drv: &impl Conn, dom: &str, snap: &str, flags: u32) -> Result<()> {
    drv.store()?.write(|w| {
        let d = w.domain_by_name(dom)?;
        let mut fleet = drv.fleet()?;
        let def = match fleet.as_mut() {
            Some(f) => f.definition(&d.uuid, snap)?,
            None => w.snapshot_def(&d.uuid, snap)?,
        };
        // A transient domain would vanish when it stops: reverting it to a state that is not
        // running or paused needs RUNNING or PAUSED (libvirt's check, before any other).
        if !d.persistent
            && def.state != st::RUNNING
            && def.state != st::PAUSED
            && flags & (rf::RUNNING | rf::PAUSED) == 0
        {
            return Err(Error::operation_invalid(
                "transient domain needs to request run or pause to revert to inactive snapshot",
            ));
        }
        let Some(dom_xml) = def.domain.clone() else {
            return Err(Error::new(
                codes::SNAPSHOT_REVERT_RISKY,
                format!("snapshot '{snap}' lacks domain '{}' rollback info", d.name),
            ));
        };
        if def.is_external() {
            return Err(unsupported("revert to external snapshot not supported yet".into()));
        }
        let target = match def.state {
            st::RUNNING | st::SHUTDOWN | st::CRASHED | st::PAUSED | st::SHUTOFF => def.state,
            other => {
                return Err(Error::internal(format!(
                    "Invalid target domain state '{}'. Refusing snapshot reversion",
                    xml::state_name(other).unwrap_or("nostate")
                )));
            }
        };
        let target = if flags & rf::RUNNING != 0 {
            st::RUNNING
        } else if flags & rf::PAUSED != 0 {
            st::PAUSED
        } else if target == st::SHUTOFF {
            st::SHUTOFF
        } else if target == st::PAUSED {
            st::PAUSED
        } else {
            st::RUNNING
        };
        // A revert restarts the domain from the snapshot: a definition pending for the next
        // start goes (libvirt's test driver keeps none after a revert).
        w.remove_meta(&pending_key(&d.uuid))?;
        // The definition the snapshot holds, unless the domain has it already (the usual case:
        // the definition did not change since the snapshot was taken), when restoring it would
        // rewrite the same row.
        let unchanged = dom_xml.trim() == d.xml;
        if let Some(mut restored) = (!unchanged).then(|| DomainDef::parse(&dom_xml).ok()).flatten() {
            if restored.uuid == d.uuid {
                restored.name = d.name.clone();
                w.define_domain(&restored, d.state, d.reason, d.id)?;
            }
        }
        match fleet.as_mut() {
            Some(f) => f.set_current(&d.uuid, snap)?,
            None => w.set_current(&d.uuid, snap)?,
        }
        match target {
            st::SHUTOFF => {
                if is_active(d.state) {
                    stop(w, &d, reason::SHUTOFF_FROM_SNAPSHOT)?;
                }
            }
            state => {
                // As libvirt's test driver: an active domain is stopped and started again from
                // the snapshot, so every revert to a running or paused state gives a new id.
                let id = next_id(w)?;
                let why =
                    if state == st::PAUSED { reason::PAUSED_FROM_SNAPSHOT } else { reason::RUNNING_FROM_SNAPSHOT };
                w.set_domain_state(&d.uuid, state, why, id)?;
            }
        }
        Ok(())
    })
}

/// `snapshot_delete`: reparenting, CHILDREN, CHILDREN_ONLY, METADATA_ONLY (the mock has no
/// disk contents, so a full delete and a metadata-only delete have the same effect).
pub(crate) fn delete(drv: &impl Conn, dom: &str, snap: &str, flags: u32) -> Result<()> {
    drv.store()?.write(|w| {
        let d = w.domain_by_name(dom)?;
        match drv.fleet()? {
            Some(mut f) => f.delete(&d.uuid, snap, flags),
            None => w.delete(&d.uuid, snap, flags),
        }
    })
}

fn parse_redefine(xml_text: &str) -> Result<SnapshotDef> {
    let def = xml::parse(xml_text, ParseFlags { redefine: true, ..Default::default() })?;
    check_name(&def.name, 0)?;
    Ok(def)
}

/// `snapshot_import`: redefines a whole hierarchy and marks `current`, in one transaction
/// (rolled back afterwards with `dry_run`).
pub(crate) fn import(drv: &impl Conn, dom: &str, xmls: &[String], current: Option<&str>, dry_run: bool) -> Result<()> {
    if !dry_run {
        drv.deny_read_only("virDomainSnapshotCreateXML")?;
    }
    let defs = xmls.iter().map(|x| parse_redefine(x)).collect::<Result<Vec<_>>>()?;
    if let Some(mut f) = drv.fleet()? {
        let uuid = drv.store()?.domain_by_name(dom)?.uuid;
        return f.import(&uuid, xmls, current, dry_run);
    }
    let work = |w: &mut Writer<'_, '_>| {
        let d = w.domain_by_name(dom)?;
        w.import(&d.uuid, defs, current)
    };
    let mut store = drv.store()?;
    if dry_run { store.dry_run(work) } else { store.write(work) }
}

/// `snapshot_edit`: redefines `snap` from `xml_text`, renaming it atomically when the name
/// changed; create flags CURRENT and DISK_ONLY apply as in a redefine.
pub(crate) fn edit(drv: &impl Conn, dom: &str, snap: &str, xml_text: &str, flags: u32) -> Result<String> {
    let def =
        xml::parse(xml_text, ParseFlags { redefine: true, offline: flags & cf::DISK_ONLY != 0, ..Default::default() })?;
    check_name(&def.name, 0)?;
    let name = def.name.clone();
    let rflags = RedefineFlags { current: flags & cf::CURRENT != 0, disk_only: flags & cf::DISK_ONLY != 0 };
    drv.store()?.write(|w| {
        let d = w.domain_by_name(dom)?;
        match drv.fleet()? {
            // The fleet store's interface has no rename: an edit keeping the name is a redefine.
            Some(mut f) if def.name == snap => f.redefine_def(&d.uuid, def.clone(), rflags),
            Some(_) => Err(Error::new(
                codes::OPERATION_UNSUPPORTED,
                "renaming a snapshot is not supported on the etcd metadata store",
            )),
            None => w.edit(&d.uuid, snap, def.clone(), rflags),
        }
    })?;
    Ok(name)
}
