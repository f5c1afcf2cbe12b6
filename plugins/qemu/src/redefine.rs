//! REDEFINE, hierarchy import and edit: libvirt's metadata rules (from the model's store) plus
//! what libvirt does not check: every writable qcow2 disk of the snapshot's `<domain>` must
//! really hold a snapshot of that name (`qemu-img info --output=json`), and the error names
//! the disk that lacks it. External snapshots: see `external::chain`.

use virtplug_plugin_sdk::{
    Edit, Error, Result, codes,
    flags::{domain_state as st, snapshot_create as cf},
    model::{
        store::DomainRecord,
        tree::RedefineFlags,
        xml::{self, ParseFlags, SnapshotDef},
    },
};

use crate::{
    driver::{Inner, QemuDriver, is_active},
    img,
    snapdef::{check_name, snapshot_qdef},
};

/// Parses a redefinition and checks it against the images.
fn prepare(d: &DomainRecord, text: &str, flags: u32) -> Result<SnapshotDef> {
    let def = parse_redefinition(d, text, flags)?;
    verify_images(d, &def)?;
    Ok(def)
}

/// Parses a redefinition: names and internal-only rules, no image access.
fn parse_redefinition(d: &DomainRecord, text: &str, flags: u32) -> Result<SnapshotDef> {
    let offline = flags & cf::DISK_ONLY != 0 || !is_active(d.state);
    let def = xml::parse(text, ParseFlags { redefine: true, offline, ..Default::default() })?;
    check_name(&def.name)?;
    Ok(def)
}

/// Every writable qcow2 disk of the snapshot's domain holds tag `def.name`; an external
/// snapshot's frozen images lie in the disks' current chains instead.
fn verify_images(d: &DomainRecord, def: &SnapshotDef) -> Result<()> {
    if def.is_external() || def.state == st::DISK_SNAPSHOT {
        return crate::external::chain::verify(d, def);
    }
    let qdef = snapshot_qdef(def, d)?;
    let shared = is_active(d.state);
    for disk in qdef.snapshot_disks() {
        let tags = img::info_tags(disk, shared)?;
        if !tags.iter().any(|t| t == &def.name) {
            return Err(Error::operation_invalid(format!(
                "image of disk '{}' ('{}') does not have internal snapshot '{}'",
                disk.target,
                disk.path.display(),
                def.name
            )));
        }
    }
    Ok(())
}

/// `snapshot_create` with REDEFINE (and CURRENT).
pub(crate) fn redefine(_drv: &QemuDriver, g: &mut Inner, d: &DomainRecord, text: &str, flags: u32) -> Result<String> {
    let def = prepare(d, text, flags)?;
    let name = def.name.clone();
    let rf = RedefineFlags { current: flags & cf::CURRENT != 0, disk_only: flags & cf::DISK_ONLY != 0 };
    g.commit_snaps(&d.uuid, &[Edit::Redefine(def, rf)])?;
    Ok(name)
}

/// `snapshot_import`: every definition checked against the images, then one transaction.
pub fn import(drv: &QemuDriver, dom: &str, xmls: &[String], current: Option<&str>, dry_run: bool) -> Result<()> {
    if !dry_run {
        drv.deny_read_only("virDomainSnapshotCreateXML")?;
    }
    let mut g = drv.lock()?;
    let d = drv.domain_for_change(&mut g, dom)?;
    if !dry_run && let Some(f) = &mut g.fleet {
        f.claim(&d.uuid)?;
    }
    let defs = xmls.iter().map(|x| prepare(&d, x, 0)).collect::<Result<Vec<_>>>()?;
    g.snap_import(&d.uuid, xmls, defs, current, dry_run)
}

/// `snapshot_edit`: redefine `snap` from `text`. A rename is refused: qcow2 internal snapshot
/// tags cannot be renamed (neither qemu-img nor QMP can), and metadata under a name the images
/// do not hold would make the snapshot impossible to revert.
pub fn edit(drv: &QemuDriver, dom: &str, snap: &str, text: &str, flags: u32) -> Result<String> {
    let mut g = drv.lock()?;
    let d = drv.snapshot_target(&mut g, dom)?;
    let def = parse_redefinition(&d, text, flags)?;
    if def.name != snap && !def.is_external() {
        return Err(Error::new(
            codes::OPERATION_UNSUPPORTED,
            format!("cannot rename snapshot '{snap}' to '{}': qcow2 internal snapshots cannot be renamed", def.name),
        ));
    }
    verify_images(&d, &def)?;
    let name = def.name.clone();
    let rf = RedefineFlags { current: flags & cf::CURRENT != 0, disk_only: flags & cf::DISK_ONLY != 0 };
    g.snap_edit(&d.uuid, snap, def, rf)?;
    Ok(name)
}
