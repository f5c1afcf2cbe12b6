//! REDEFINE's image check for an external snapshot, beyond libvirt (which checks nothing,
//! qemu_snapshot.c:1631-1633): for every external disk, the snapshot's frozen image (the disk's
//! source in the snapshot's `<domain>`) must lie in that disk's current chain *below* the
//! current top; with external memory, the memory file must be a complete libvirt save image.

use std::{io::Read, path::Path};

use virtplug_plugin_sdk::{
    Error, Result,
    model::{
        store::DomainRecord,
        xml::{SnapshotDef, SnapshotMode},
    },
};

use super::backing_chain;
use crate::{domain::QemuDef, driver::is_active, snapdef::snapshot_qdef};

/// The magic of a finished libvirt save image (`LibvirtQemudPart` while it is written).
pub const SAVE_MAGIC: &[u8; 16] = b"LibvirtQemudSave";

/// Checks the images of external snapshot `def` of domain `d` (see the module docs).
pub fn verify(d: &DomainRecord, def: &SnapshotDef) -> Result<()> {
    let then = snapshot_qdef(def, d)?;
    let now = QemuDef::parse(&d.xml)?;
    let shared = is_active(d.state);
    for spec in def.disks.iter().filter(|s| s.snapshot == Some(SnapshotMode::External)) {
        let Some(frozen) = then.disks.iter().find(|q| q.target == spec.name) else {
            return Err(Error::operation_invalid(format!(
                "disk '{}' of snapshot '{}' is not in the snapshot's domain definition",
                spec.name, def.name
            )));
        };
        let Some(cur) = now.disks.iter().find(|q| q.target == spec.name) else {
            return Err(Error::operation_invalid(format!(
                "domain has no disk '{}' for snapshot '{}'",
                spec.name, def.name
            )));
        };
        let chain = backing_chain(&cur.path, cur.format.as_str(), shared)?;
        let below = chain.iter().skip(1).any(|l| same_file(&l.path, &frozen.path));
        if !below {
            return Err(Error::operation_invalid(format!(
                "image chain of disk '{}' (top '{}') does not hold the image '{}' of external snapshot '{}' below its top",
                spec.name,
                cur.path.display(),
                frozen.path.display(),
                def.name
            )));
        }
    }
    if let Some(m) = def.memory.as_ref().filter(|m| m.mode == SnapshotMode::External) {
        let file = m.file.as_deref().unwrap_or_default();
        let mut magic = [0u8; 16];
        let ok = std::fs::File::open(file).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == SAVE_MAGIC;
        if !ok {
            return Err(Error::operation_invalid(format!(
                "memory file '{file}' of snapshot '{}' is not a complete libvirt save image",
                def.name
            )));
        }
    }
    Ok(())
}

/// Same file: same path, or the same inode (a chain may name a file through another path).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    a == b
        || match (std::fs::metadata(a), std::fs::metadata(b)) {
            (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
            _ => false,
        }
}
