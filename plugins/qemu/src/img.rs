//! Disk images: a native reader of the qcow2 snapshot table (microseconds, no lock needed, used
//! for pre-checks) and the `qemu-img` calls (`snapshot -c/-a/-d` with the format pinned to
//! qcow2 through `--image-opts`, `info --output=json` for REDEFINE's check).

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
    process::Command,
};

use virtplug_plugin_sdk::{Error, Result, codes};

use crate::domain::Disk;

/// One entry of a qcow2 snapshot table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSnapshot {
    /// Numeric ID (as qemu prints it).
    pub id: String,
    /// Tag (the snapshot's name).
    pub name: String,
    /// Bytes of VM state stored with it (0 for disk-only snapshots).
    pub vm_state_size: u64,
}

fn be32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> u64 {
    (u64::from(be32(b, at)) << 32) | u64::from(be32(b, at + 4))
}

fn be16(b: &[u8], at: usize) -> usize {
    b.get(at..at + 2).map_or(0, |s| usize::from(u16::from_be_bytes([s[0], s[1]])))
}

/// A missing image, as libvirt reports it.
pub fn missing(path: &Path, e: &std::io::Error) -> Error {
    Error::new(codes::OPERATION_INVALID, format!("Cannot access storage file '{}': {e}", path.display()))
}

/// Reads the snapshot table of the qcow2 image at `path` (no locking, read-only). Not qcow2 →
/// CONFIG_UNSUPPORTED naming the disk.
pub fn snapshots(disk: &Disk) -> Result<Vec<ImageSnapshot>> {
    let path = &disk.path;
    let mut f = File::open(path).map_err(|e| missing(path, &e))?;
    let mut hdr = [0u8; 72];
    let n = f.read(&mut hdr).map_err(|e| missing(path, &e))?;
    if n < 72 || &hdr[0..4] != b"QFI\xfb" {
        return Err(Error::new(
            codes::CONFIG_UNSUPPORTED,
            format!(
                "disk {} ('{}') is declared qcow2 but the image is not in qcow2 format",
                disk.target,
                path.display()
            ),
        ));
    }
    let count = be32(&hdr, 60) as usize;
    let offset = be64(&hdr, 64);
    let mut out = Vec::with_capacity(count);
    if count == 0 {
        return Ok(out);
    }
    let corrupt = || Error::internal(format!("qcow2 snapshot table of '{}' is unreadable", path.display()));
    // qcow2 caps snapshot entries well below 64 KiB each; read generously in one go.
    let mut table = Vec::new();
    f.seek(SeekFrom::Start(offset)).map_err(|_| corrupt())?;
    f.take((count as u64).saturating_mul(65_536).min(64 << 20)).read_to_end(&mut table).map_err(|_| corrupt())?;
    let mut at = 0usize;
    for _ in 0..count {
        if at + 40 > table.len() {
            return Err(corrupt());
        }
        let id_len = be16(&table, at + 12);
        let name_len = be16(&table, at + 14);
        let vm_state_size = u64::from(be32(&table, at + 32));
        let extra = be32(&table, at + 36) as usize;
        // extra data: vm_state_size_large (u64) at extra offset 0 when present
        let large = if extra >= 8 { be64(&table, at + 40) } else { 0 };
        let id_at = at + 40 + extra;
        let name_at = id_at + id_len;
        let end = name_at + name_len;
        let (Some(id), Some(name)) = (table.get(id_at..name_at), table.get(name_at..end)) else {
            return Err(corrupt());
        };
        out.push(ImageSnapshot {
            id: String::from_utf8_lossy(id).into_owned(),
            name: String::from_utf8_lossy(name).into_owned(),
            vm_state_size: if large > 0 { large } else { vm_state_size },
        });
        at = (end + 7) & !7;
    }
    Ok(out)
}

/// How many snapshots of `disk` carry the tag `name`.
pub fn tag_count(disk: &Disk, name: &str) -> Result<usize> {
    Ok(snapshots(disk)?.iter().filter(|s| s.name == name).count())
}

fn image_opts(path: &Path) -> String {
    format!("driver=qcow2,file.filename={}", path.display().to_string().replace(',', ",,"))
}

/// Which `qemu-img snapshot` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `-c`.
    Create,
    /// `-a`.
    Apply,
    /// `-d`.
    Delete,
}

impl Action {
    fn flag(self) -> &'static str {
        match self {
            Self::Create => "-c",
            Self::Apply => "-a",
            Self::Delete => "-d",
        }
    }
}

/// The qemu-img binary (`$VIRTPLUG_QEMU_IMG`, else `qemu-img` on PATH).
pub fn qemu_img() -> String {
    std::env::var("VIRTPLUG_QEMU_IMG").unwrap_or_else(|_| "qemu-img".into())
}

fn run(args: &[&str]) -> Result<String> {
    let bin = qemu_img();
    let out = Command::new(&bin).args(args).output().map_err(|e| Error::internal(format!("cannot run {bin}: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
    let code = out.status.code().unwrap_or(-1);
    let cmd = format!("{bin} {}", args.join(" "));
    // libvirt's form for a failed helper: "Child process (...) unexpected exit status N: stderr"
    let c = if err.contains("lock") { codes::OPERATION_INVALID } else { codes::INTERNAL_ERROR };
    Err(Error::new(c, format!("Child process ({cmd}) unexpected exit status {code}: {err}")))
}

/// `qemu-img snapshot <action> NAME --image-opts driver=qcow2,file.filename=PATH`: one
/// process, the format pinned (a non-qcow2 image fails instead of being probed).
pub fn snapshot(action: Action, name: &str, disk: &Disk) -> Result<()> {
    let opts = image_opts(&disk.path);
    run(&["snapshot", "-q", action.flag(), name, "--image-opts", &opts]).map(|_| ())
}

/// Snapshot tags of `disk` per `qemu-img info --output=json` (`-U` when a running qemu holds
/// the image), the authoritative check REDEFINE uses.
pub fn info_tags(disk: &Disk, shared: bool) -> Result<Vec<String>> {
    let opts = image_opts(&disk.path);
    let mut args = vec!["info", "--output=json", "--image-opts", &opts];
    if shared {
        args.insert(1, "-U");
    }
    let text = run(&args)?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::internal(format!("qemu-img info output unreadable: {e}")))?;
    Ok(v.get("snapshots")
        .and_then(|s| s.as_array())
        .map(|a| a.iter().filter_map(|s| s.get("name")?.as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}
