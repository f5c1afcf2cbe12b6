//! External snapshots (overlay files on top of frozen images): the pieces shared by create
//! (`create.rs`, `align.rs`) and by revert/delete/settling (part B's modules):
//!
//! - [`ExtDisk`]: one disk of an external snapshot — its new overlay and the frozen image below;
//! - [`overlay_name`]: libvirt's generated overlay name (`<source minus .suffix>.<snapshot>`);
//! - [`backing_chain`]: a disk's chain as `qemu-img info --backing-chain --output=json` reads it;
//! - [`top_node`] / [`node_names`]: the QMP node names of a running disk's top layer and of a new
//!   overlay (the domain's stable `<target>-format` names only hold until the first switch);
//! - [`Pending`]: the journal record written before a running domain's disk transaction and
//!   removed once the metadata is saved; whoever opens the driver next settles a leftover one.

pub mod align;
pub mod chain;
pub mod create;
pub mod delete;
pub mod domxml;
pub mod journal;
pub mod memory;
pub mod revert;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::{Value, json};
use virtplug_plugin_sdk::{Error, Result, codes};

use crate::{
    img,
    qmp::{Qmp, QmpError},
    uri::Config,
};

/// One disk of an external snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtDisk {
    /// Target name (`vda`).
    pub target: String,
    /// The new overlay (the snapshot's `<disks><disk><source file>`): changes made after it.
    pub overlay: PathBuf,
    /// The frozen image (the disk's source in the snapshot's `<domain>`): the point in time.
    pub frozen: PathBuf,
    /// Format of the frozen image (`qcow2`, `raw`), as the domain states it.
    pub frozen_format: String,
    /// Whether this operation created the overlay file (and so removes it on rollback);
    /// false for REUSE_EXT and for files that existed (empty) before.
    pub created: bool,
}

/// libvirt's generated overlay name (`virDomainSnapshotDefAssignExternalNames`): the source
/// path minus its last `.suffix` (only when the dot is in the last component), plus
/// `.<snapshot name>`.
pub fn overlay_name(source: &Path, snap: &str) -> PathBuf {
    let s = source.to_string_lossy();
    let last_slash = s.rfind('/').map_or(0, |i| i + 1);
    let stem = match s.rfind('.') {
        Some(dot) if dot >= last_slash => &s[..dot],
        _ => &s[..],
    };
    PathBuf::from(format!("{stem}.{snap}"))
}

/// One image of a backing chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// Image path as qemu-img resolved it (absolute when the chain names absolute paths).
    pub path: PathBuf,
    /// Format qemu-img reports.
    pub format: String,
    /// The backing file name as written in this image's header, if any.
    pub backing: Option<String>,
}

/// The chain of `path` (top first), with the top's format pinned (never probed); backing
/// formats come from the image headers. `shared` adds `-U` (a running qemu holds the images).
pub fn backing_chain(path: &Path, format: &str, shared: bool) -> Result<Vec<ChainLink>> {
    let bin = img::qemu_img();
    let mut cmd = Command::new(&bin);
    cmd.args(["info", "--backing-chain", "--output=json", "-f", format]);
    if shared {
        cmd.arg("-U");
    }
    let out = cmd.arg(path).output().map_err(|e| Error::internal(format!("cannot run {bin}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
        return Err(Error::new(
            codes::OPERATION_INVALID,
            format!("cannot read the backing chain of '{}': {err}", path.display()),
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::internal(format!("qemu-img info output unreadable: {e}")))?;
    // a chain of one image is printed as an array of one element too
    let items = v.as_array().cloned().unwrap_or_else(|| vec![v]);
    Ok(items
        .iter()
        .map(|i| ChainLink {
            path: PathBuf::from(i.get("filename").and_then(Value::as_str).unwrap_or_default()),
            format: i.get("format").and_then(Value::as_str).unwrap_or_default().to_owned(),
            backing: i.get("backing-filename").and_then(Value::as_str).map(str::to_owned),
        })
        .collect())
}

/// libvirt's limit on a disk's backing chain (`qemuDomainStorageSourceValidateDepth`).
pub const MAX_CHAIN_DEPTH: usize = 200;

/// How many images the chain of `path` (of format `format`) holds, read from the qcow2 headers
/// in-process (no qemu-img run on a create's path): each qcow2 image's backing file name and
/// its backing-format extension; a backing without that extension counts as qcow2 when it has
/// qcow2's magic, as qemu probes it. Stops at the first image that cannot be read (whoever
/// opens the chain reports that) and after one layer past the limit (a looping chain).
pub fn chain_depth(path: &Path, format: &str) -> usize {
    let mut depth = 1;
    let (mut cur, mut fmt) = (path.to_path_buf(), Some(format.to_owned()));
    while depth <= MAX_CHAIN_DEPTH {
        let Ok(head) = read_head(&cur) else { break };
        let is_qcow2 = head.starts_with(b"QFI\xfb");
        if fmt.as_deref().is_some_and(|f| f != "qcow2") || !is_qcow2 {
            break;
        }
        let Some((backing, backing_fmt)) = qcow2_backing(&head) else { break };
        let next = PathBuf::from(&backing);
        cur = if next.is_absolute() { next } else { cur.parent().unwrap_or(Path::new("/")).join(next) };
        fmt = backing_fmt;
        depth += 1;
    }
    depth
}

/// The first 64 KiB of an image (a qcow2 header, its extensions and backing name fit).
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::with_capacity(65536);
    fs::File::open(path)?.take(65536).read_to_end(&mut head)?;
    Ok(head)
}

/// (backing file name, backing format if the header says) of a qcow2 header.
fn qcow2_backing(head: &[u8]) -> Option<(String, Option<String>)> {
    let be32 = |at: usize| Some(u32::from_be_bytes(head.get(at..at + 4)?.try_into().ok()?));
    let be64 = |at: usize| Some(u64::from_be_bytes(head.get(at..at + 8)?.try_into().ok()?));
    let (off, len) = (usize::try_from(be64(8)?).ok()?, be32(16)? as usize);
    if off == 0 || len == 0 {
        return None;
    }
    let name = String::from_utf8_lossy(head.get(off..off + len)?).into_owned();
    // header extensions follow the header (72 bytes in version 2, header_length in 3)
    let mut at = if be32(4)? >= 3 { be32(100)? as usize } else { 72 };
    let mut fmt = None;
    while let (Some(kind), Some(n)) = (be32(at), be32(at + 4)) {
        if kind == 0 {
            break;
        }
        let n = n as usize;
        if kind == 0xE279_2ACA {
            fmt = head.get(at + 8..at + 8 + n).map(|b| String::from_utf8_lossy(b).into_owned());
        }
        at += 8 + n.div_ceil(8) * 8;
    }
    Some((name, fmt))
}

/// The node name of the top (format) layer behind the device of disk `target`, from
/// `query-block` (the device's qdev path ends in `/<target>/virtio-backend`).
pub fn top_node(q: &mut Qmp, target: &str) -> Result<String> {
    let v =
        q.execute("query-block", None).map_err(|e| Error::new(codes::OPERATION_FAILED, format!("query-block: {e}")))?;
    let want = format!("/{target}/virtio-backend");
    v.as_array()
        .and_then(|a| {
            a.iter().find(|b| b.get("qdev").and_then(Value::as_str).is_some_and(|d| d.ends_with(&want) || d == target))
        })
        .and_then(|b| b.pointer("/inserted/node-name")?.as_str().map(str::to_owned))
        .ok_or_else(|| Error::internal(format!("qemu reports no image for disk '{target}'")))
}

/// The live top node of each of `disks` (one `query-block`): after an external snapshot the
/// stable `<target>-format` name belongs to a backing image, so QMP jobs that must act on the
/// top (`snapshot-save`/`-load`/`-delete`) name these instead.
pub fn live_nodes(q: &mut Qmp, disks: &[&crate::domain::Disk]) -> Result<Vec<String>> {
    live_nodes_in(q.execute("query-block", None), disks)
}

/// [`live_nodes`] from a `query-block` answer asked for already.
pub fn live_nodes_in(answer: Result<Value, QmpError>, disks: &[&crate::domain::Disk]) -> Result<Vec<String>> {
    let v = answer.map_err(|e| Error::new(codes::OPERATION_FAILED, format!("query-block: {e}")))?;
    let blocks = v.as_array().cloned().unwrap_or_default();
    disks
        .iter()
        .map(|d| {
            let want = format!("/{}/virtio-backend", d.target);
            blocks
                .iter()
                .find(|b| b.get("qdev").and_then(Value::as_str).is_some_and(|q| q.ends_with(&want)))
                .and_then(|b| b.pointer("/inserted/node-name")?.as_str().map(str::to_owned))
                .ok_or_else(|| Error::internal(format!("qemu reports no image for disk '{}'", d.target)))
        })
        .collect()
}

/// The ids of qemu's block jobs (`query-block-jobs`: a job's `device` is its id, by default the
/// node or device it was started on). The plugin's own jobs (commit during a delete) end inside
/// the call that starts them, so any job seen here was started by someone else on the monitor.
pub fn block_jobs(q: &mut Qmp) -> Result<Vec<String>> {
    block_jobs_in(q.execute("query-block-jobs", None))
}

/// [`block_jobs`] from a `query-block-jobs` answer asked for already.
fn block_jobs_in(answer: Result<Value, QmpError>) -> Result<Vec<String>> {
    let v = answer.map_err(|e| Error::new(codes::OPERATION_FAILED, format!("query-block-jobs: {e}")))?;
    Ok(v.as_array()
        .map(|a| a.iter().filter_map(|j| j.get("device").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default())
}

/// Whether block job `job` acts on disk `target`: its id is the target or one of the node
/// names this plugin gives the disk's layers (`<target>-format`, `<target>-x…`).
pub fn job_on(job: &str, target: &str) -> bool {
    job == target || job.strip_prefix(target).is_some_and(|rest| rest.starts_with('-'))
}

/// libvirt's `qemuSnapshotPrepare` check: no disk taking part in a snapshot (`targets`, in
/// domain order) may be in a block job; `disk '<t>' already in active block job`
/// (OPERATION_INVALID). A job whose id names no disk is counted against the first one.
pub fn refuse_busy_disks(q: &mut Qmp, targets: &[&str]) -> Result<()> {
    refuse_busy_disks_in(q.execute("query-block-jobs", None), targets)
}

/// [`refuse_busy_disks`] from a `query-block-jobs` answer asked for already.
pub fn refuse_busy_disks_in(answer: Result<Value, QmpError>, targets: &[&str]) -> Result<()> {
    let jobs = block_jobs_in(answer)?;
    if jobs.is_empty() {
        return Ok(());
    }
    let busy = targets.iter().find(|t| jobs.iter().any(|j| job_on(j, t))).or(targets.first());
    match busy {
        Some(t) => Err(Error::new(codes::OPERATION_INVALID, format!("disk '{t}' already in active block job"))),
        None => Ok(()),
    }
}

/// Fresh (format, storage) node names for a new overlay of disk `target`: unique within a
/// qemu process (a clock tick in the name), at most 31 characters as qemu requires.
pub fn node_names(target: &str) -> (String, String) {
    let tick = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let tag = format!("{target}-x{:x}", tick & 0xffff_ffff_ffff);
    (format!("{tag}-f"), format!("{tag}-s"))
}

/// The journal record of a running domain's external create: written before the disk
/// transaction, removed after the metadata and definition are saved. A leftover record means
/// the process stopped in between; settling compares each disk's live top with `overlay`.
///
/// File: `<run_dir>/<uuid>/external-pending.json` (see [`Pending::path`]), JSON:
/// `{"snapshot": name, "metadata": bool, "snapshot_xml": text, "domain_xml": text,
///   "old_domain_xml": text, "disks": [{"target","overlay","frozen","frozen_format","node","created"}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Snapshot name.
    pub snapshot: String,
    /// False under NO_METADATA (then only the definition is to be saved).
    pub metadata: bool,
    /// The snapshot's metadata XML to store (internal format, as `store.create` takes it).
    pub snapshot_xml: String,
    /// The definition once the disks point at the overlays.
    pub domain_xml: String,
    /// The definition before the snapshot (what to keep when the switch did not happen).
    pub old_domain_xml: String,
    /// The disks switched, with the QMP node name of each new overlay's format layer.
    pub disks: Vec<(ExtDisk, String)>,
}

impl Pending {
    /// Where the record of domain `uuid` lives.
    pub fn path(cfg: &Config, uuid: &str) -> PathBuf {
        crate::process::dir(cfg, uuid).join("external-pending.json")
    }

    fn to_json(&self) -> Value {
        let disks: Vec<Value> = self
            .disks
            .iter()
            .map(|(d, node)| {
                json!({"target": d.target, "overlay": d.overlay, "frozen": d.frozen,
                       "frozen_format": d.frozen_format, "node": node, "created": d.created})
            })
            .collect();
        json!({"snapshot": self.snapshot, "metadata": self.metadata, "snapshot_xml": self.snapshot_xml,
               "domain_xml": self.domain_xml, "old_domain_xml": self.old_domain_xml, "disks": disks})
    }

    /// Writes the record durably (temp file, fsync, rename).
    pub fn write(&self, cfg: &Config, uuid: &str) -> Result<()> {
        let path = Self::path(cfg, uuid);
        let tmp = path.with_extension("tmp");
        let fail =
            |e: std::io::Error| Error::new(codes::OPERATION_FAILED, format!("cannot write '{}': {e}", path.display()));
        let text = self.to_json().to_string();
        {
            use std::io::Write;
            let mut f = fs::File::create(&tmp).map_err(fail)?;
            f.write_all(text.as_bytes()).map_err(fail)?;
            f.sync_all().map_err(fail)?;
        }
        fs::rename(&tmp, &path).map_err(fail)
    }

    /// Reads the record of `uuid`, if any (an unreadable record is an error, not absence).
    pub fn read(cfg: &Config, uuid: &str) -> Result<Option<Self>> {
        let path = Self::path(cfg, uuid);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::internal(format!("cannot read '{}': {e}", path.display()))),
        };
        let bad = || Error::internal(format!("journal '{}' is unreadable", path.display()));
        let v: Value = serde_json::from_str(&text).map_err(|_| bad())?;
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned).ok_or_else(bad);
        let disks = v
            .get("disks")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .map(|d| {
                Ok((
                    ExtDisk {
                        target: s(d, "target")?,
                        overlay: PathBuf::from(s(d, "overlay")?),
                        frozen: PathBuf::from(s(d, "frozen")?),
                        frozen_format: s(d, "frozen_format")?,
                        created: d.get("created").and_then(Value::as_bool).unwrap_or(false),
                    },
                    s(d, "node")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(Self {
            snapshot: s(&v, "snapshot")?,
            metadata: v.get("metadata").and_then(Value::as_bool).unwrap_or(true),
            snapshot_xml: s(&v, "snapshot_xml")?,
            domain_xml: s(&v, "domain_xml")?,
            old_domain_xml: s(&v, "old_domain_xml")?,
            disks,
        }))
    }

    /// Removes the record of `uuid` (absent is fine).
    pub fn remove(cfg: &Config, uuid: &str) {
        let _ = fs::remove_file(Self::path(cfg, uuid));
    }
}

/// libvirt's `virReportSystemError` suffix: the C library's text without Rust's " (os error N)".
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn generated_names() {
        assert_eq!(overlay_name(Path::new("/img/vm.qcow2"), "s1"), PathBuf::from("/img/vm.s1"));
        assert_eq!(overlay_name(Path::new("/img/vm"), "s1"), PathBuf::from("/img/vm.s1"));
        assert_eq!(overlay_name(Path::new("/img.d/vm"), "s1"), PathBuf::from("/img.d/vm.s1"));
        assert_eq!(overlay_name(Path::new("/img/vm.a.qcow2"), "s1"), PathBuf::from("/img/vm.a.s1"));
    }

    #[test]
    fn node_names_fit_qemu() {
        let (f, s) = node_names("vdaa");
        assert!(f.len() <= 31 && s.len() <= 31, "{f} {s}");
    }
}
