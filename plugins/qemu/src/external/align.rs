//! libvirt's alignment and checks for a snapshot that has external parts
//! (`qemuSnapshotCreateAlignDisks`, `virDomainSnapshotAlignDisks`,
//! `virDomainSnapshotDefAssignExternalNames`, `qemuSnapshotPrepare`), with libvirt's texts.
//! The result is the snapshot definition as it is stored (every domain disk listed, external
//! ones with type, driver and source) and the external disks to switch.

use std::{fs, path::PathBuf};

use virtplug_plugin_sdk::{
    Error, Result, codes,
    flags::{domain_state as st, snapshot_create as cf},
    model::xml::{DiskSpec, DiskType, MemorySpec, SnapshotDef, SnapshotMode},
};

use super::{ExtDisk, overlay_name};
use crate::domain::QemuDef;

fn unsupported(msg: String) -> Error {
    Error::new(codes::CONFIG_UNSUPPORTED, msg)
}

/// Aligns `def` for domain `qdef` in state `state`; returns the external disks in domain
/// order, and `flags` gains DISK_ONLY on a shut-off domain (as `qemuSnapshotPrepare` does).
pub fn align(def: &mut SnapshotDef, qdef: &QemuDef, state: u32, flags: &mut u32) -> Result<Vec<ExtDisk>> {
    let active = crate::driver::is_active(state);
    let mem_external = def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::External);
    let run_state = if state == st::PAUSED { st::PAUSED } else { st::RUNNING };
    let default = if *flags & cf::DISK_ONLY != 0 {
        def.state = if active { st::DISK_SNAPSHOT } else { st::SHUTOFF };
        def.memory = Some(MemorySpec { mode: SnapshotMode::No, file: None });
        SnapshotMode::External
    } else if mem_external {
        def.state = run_state;
        SnapshotMode::External
    } else {
        def.state = if active { run_state } else { st::SHUTOFF };
        let mode = if active { SnapshotMode::Internal } else { SnapshotMode::No };
        def.memory = Some(MemorySpec { mode, file: None });
        SnapshotMode::Internal
    };
    align_disks(def, qdef, default)?;
    assign_names(def, qdef)?;
    if !active && def.disks.iter().any(|d| d.snapshot == Some(SnapshotMode::External)) {
        *flags |= cf::DISK_ONLY;
    }
    prepare(def, qdef, active, *flags)
}

/// `virDomainSnapshotAlignDisks`: every domain disk once, in domain order, named by target.
fn align_disks(def: &mut SnapshotDef, qdef: &QemuDef, default: SnapshotMode) -> Result<()> {
    if def.disks.len() > qdef.disks.len() {
        return Err(unsupported("too many disk snapshot requests for domain".into()));
    }
    let mut by_disk: Vec<Option<DiskSpec>> = vec![None; qdef.disks.len()];
    for spec in std::mem::take(&mut def.disks) {
        let idx = qdef
            .disks
            .iter()
            .position(|q| q.target == spec.name)
            .or_else(|| qdef.disks.iter().position(|q| q.path.as_os_str() == spec.name.as_str()))
            .ok_or_else(|| unsupported(format!("no disk named '{}'", spec.name)))?;
        if by_disk[idx].is_some() {
            return Err(unsupported(format!("disk '{}' specified twice", spec.name)));
        }
        let mut spec = spec;
        let target = qdef.disks[idx].target.clone();
        let mode = *spec.snapshot.get_or_insert(default);
        if mode != SnapshotMode::External
            && let Some(src) = &spec.source
        {
            return Err(unsupported(format!(
                "file '{src}' for disk '{target}' requires use of external snapshot mode"
            )));
        }
        spec.name = target;
        by_disk[idx] = Some(spec);
    }
    def.disks = by_disk
        .into_iter()
        .zip(&qdef.disks)
        .map(|(spec, q)| {
            spec.unwrap_or_else(|| DiskSpec { name: q.target.clone(), snapshot: Some(default), ..Default::default() })
        })
        .collect();
    for d in &mut def.disks {
        if d.snapshot == Some(SnapshotMode::External) {
            d.disk_type.get_or_insert(DiskType::File);
        }
    }
    Ok(())
}

/// `virDomainSnapshotDefAssignExternalNames`: `<source minus .suffix>.<snapshot name>`.
fn assign_names(def: &mut SnapshotDef, qdef: &QemuDef) -> Result<()> {
    let snap = def.name.clone();
    for i in 0..def.disks.len() {
        let d = &def.disks[i];
        if d.snapshot != Some(SnapshotMode::External) || d.source.is_some() {
            continue;
        }
        let ty = d.disk_type.unwrap_or(DiskType::File);
        if ty != DiskType::File {
            return Err(unsupported(format!(
                "cannot generate external snapshot name for disk '{}' on a '{}' device",
                d.name,
                ty.as_str()
            )));
        }
        let src = &qdef.disks[i].path;
        if !fs::metadata(src).is_ok_and(|m| m.is_file()) {
            return Err(unsupported(format!(
                "source for disk '{}' is not a regular file; refusing to generate external snapshot name",
                d.name
            )));
        }
        let name = overlay_name(src, &snap).to_string_lossy().into_owned();
        if let Some(other) = def.disks[..i].iter().find(|o| o.source.as_deref() == Some(name.as_str())) {
            return Err(unsupported(format!(
                "cannot generate external snapshot name for disk '{}': collision with disk '{}'",
                def.disks[i].name, other.name
            )));
        }
        def.disks[i].source = Some(name);
    }
    Ok(())
}

/// `qemuSnapshotPrepare`: per-disk checks (format, the overlay file), then the mixing rules.
fn prepare(def: &mut SnapshotDef, qdef: &QemuDef, active: bool, flags: u32) -> Result<Vec<ExtDisk>> {
    let reuse = flags & cf::REUSE_EXT != 0;
    let disk_only = flags & cf::DISK_ONLY != 0;
    let (mut internal, mut external) = (0usize, 0usize);
    let mut out = Vec::new();
    for (spec, q) in def.disks.iter_mut().zip(&qdef.disks) {
        match spec.snapshot {
            Some(SnapshotMode::Internal) => {
                if active && disk_only {
                    return Err(unsupported(format!(
                        "active qemu domains require external disk snapshots; disk {} requested internal",
                        spec.name
                    )));
                }
                internal += 1;
            }
            Some(SnapshotMode::External) => {
                // qemuSnapshotPrepareDiskShared: a writable shared disk needs an overlay format
                // that allows concurrent access (raw); external overlays here are qcow2
                if q.shareable && !q.readonly {
                    return Err(unsupported(format!(
                        "shared access for disk '{}' requires use of supported storage format",
                        q.target
                    )));
                }
                let fmt = spec.driver_type.get_or_insert_with(|| "qcow2".into()).clone();
                // qed is libvirt's other overlay format; this driver's disks are qcow2 or raw
                if fmt != "qcow2" {
                    return Err(unsupported(format!(
                        "external snapshot format for disk {} is unsupported: {fmt}",
                        spec.name
                    )));
                }
                match spec.disk_type.unwrap_or(DiskType::File) {
                    DiskType::File => {}
                    DiskType::Network if !active => {
                        return Err(unsupported(format!(
                            "external inactive snapshots are not supported on 'network' disks using '{}' protocol",
                            spec.protocol.as_deref().unwrap_or("none")
                        )));
                    }
                    other => {
                        return Err(unsupported(format!(
                            "external {} snapshots are not supported on '{}' disks",
                            if active { "active" } else { "inactive" },
                            other.as_str()
                        )));
                    }
                }
                let overlay = PathBuf::from(spec.source.clone().unwrap_or_default());
                if !overlay.is_absolute() {
                    return Err(unsupported(format!(
                        "disk snapshot image path '{}' must be absolute",
                        overlay.display()
                    )));
                }
                let created = check_file(&spec.name, &overlay, reuse)?;
                out.push(ExtDisk {
                    target: spec.name.clone(),
                    overlay,
                    frozen: q.path.clone(),
                    frozen_format: q.format.as_str().to_owned(),
                    created,
                });
                external += 1;
            }
            _ => {}
        }
    }
    let mem = def.memory.as_ref().map_or(SnapshotMode::No, |m| m.mode);
    if internal == 0 && external == 0 && mem == SnapshotMode::No {
        return Err(unsupported("nothing selected for snapshot".into()));
    }
    if disk_only && external == 0 {
        return Err(unsupported("disk-only snapshots require at least one disk to be selected for snapshot".into()));
    }
    let internal_any = internal > 0 || mem == SnapshotMode::Internal;
    let external_any = external > 0 || mem == SnapshotMode::External;
    if internal_any && external_any {
        return Err(unsupported("mixing internal and external targets for a snapshot is not yet supported".into()));
    }
    Ok(out)
}

/// libvirt's checks of an overlay path (`qemuSnapshotPrepareDiskExternal`); returns whether
/// the create will make a new file (so a rollback removes it).
fn check_file(disk: &str, path: &std::path::Path, reuse: bool) -> Result<bool> {
    match fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if reuse {
                return Err(Error::new(
                    codes::SYSTEM_ERROR,
                    format!("missing existing file for disk {disk}: {}: No such file or directory", path.display()),
                ));
            }
            Ok(true)
        }
        Err(e) => Err(Error::new(
            codes::SYSTEM_ERROR,
            format!("unable to stat for disk {disk}: {}: {}", path.display(), crate::external::strerror(&e)),
        )),
        Ok(m) => {
            if !m.is_file() {
                return Err(Error::new(
                    codes::OPERATION_UNSUPPORTED,
                    format!(
                        "mismatch between configured type for snapshot disk '{disk}' and the type of existing file '{}'",
                        path.display()
                    ),
                ));
            }
            if !reuse && m.len() > 0 {
                return Err(Error::new(
                    codes::OPERATION_UNSUPPORTED,
                    format!(
                        "external snapshot file for disk {disk} already exists and is not a block device: {}",
                        path.display()
                    ),
                ));
            }
            Ok(false)
        }
    }
}
