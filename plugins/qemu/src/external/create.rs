//! Creating an external snapshot (libvirt's `qemuSnapshotCreateInactiveExternal` and
//! `qemuSnapshotCreateActiveExternal`):
//!
//! - shut off: `qemu-img create -f qcow2 -F <fmt> -b <abs frozen> <overlay>` per disk (unless
//!   REUSE_EXT), then the definition and the metadata in one store transaction; a failure
//!   part-way unlinks the overlays this call created and leaves the definition as it was;
//! - running, disk-only: overlays made with qemu-img (backing recorded in the header, size
//!   given so the in-use backing is not opened), `blockdev-add` each with `"backing": null`,
//!   the [`Pending`] record, then ONE `transaction` of `blockdev-snapshot` over all disks
//!   (all-or-nothing in qemu: ATOMIC holds), then definition and metadata, then the record goes.
//!   A refused transaction removes the nodes and the files it added;
//! - running with external memory: pause unless LIVE, migrate into a save image
//!   (`memory.rs`), the same disk transaction, then HALT or resume (`cont`) if it was running;
//!   a failure removes a memory file this call created and resumes the guest.

use std::process::Command;

use serde_json::{Value, json};
use virtplug_plugin_sdk::{
    Edit, Error, Result, codes,
    flags::{domain_state as st, snapshot_create as cf},
    model::{
        store::DomainRecord,
        xml::{self, FormatFlags, SnapshotDef},
    },
};

use super::{
    ExtDisk, Pending,
    domxml::{Switch, switch_disks},
};
use crate::{
    domain::QemuDef,
    driver::{Inner, QemuDriver, is_active, qmp_error, reason},
    img,
};

/// A fault to inject in tests (`VIRTPLUG_QEMU_FAULT=<name>`).
fn fault(name: &str) -> bool {
    std::env::var("VIRTPLUG_QEMU_FAULT").is_ok_and(|v| v == name)
}

/// `qemu-img create` of one overlay on its frozen image; `size` skips opening the backing,
/// `opts` are qcow2 creation options (`-o`).
fn make_overlay(disk: &ExtDisk, size: Option<u64>, opts: Option<&str>) -> Result<()> {
    let bin = img::qemu_img();
    let frozen = disk.frozen.to_string_lossy();
    let overlay = disk.overlay.to_string_lossy();
    let size = size.map(|s| s.to_string());
    let mut args = vec!["create", "-q", "-f", "qcow2", "-F", &disk.frozen_format, "-b", &frozen];
    if let Some(o) = opts {
        args.extend(["-o", o]);
    }
    if let Some(s) = &size {
        args.extend(["-u", &overlay, s]);
    } else {
        args.push(&overlay);
    }
    let out = Command::new(&bin).args(&args).output().map_err(|e| Error::internal(format!("cannot run {bin}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
    Err(Error::new(
        codes::INTERNAL_ERROR,
        format!(
            "Child process ({bin} {}) unexpected exit status {}: {err}",
            args.join(" "),
            out.status.code().unwrap_or(-1)
        ),
    ))
}

/// Unlinks the overlays this call created (rollback).
fn unlink_created(disks: &[ExtDisk]) {
    for d in disks.iter().filter(|d| d.created) {
        let _ = std::fs::remove_file(&d.overlay);
    }
}

/// The definition with the external disks on their overlays.
fn switched_def(d: &DomainRecord, disks: &[ExtDisk]) -> Result<QemuDef> {
    let sw: Vec<Switch> = disks
        .iter()
        .map(|x| Switch { target: x.target.clone(), source: x.overlay.clone(), format: "qcow2".into() })
        .collect();
    QemuDef::parse(&switch_disks(&d.xml, &sw)?)
}

/// Saves the switched definition and (unless NO_METADATA) the snapshot, in one transaction.
fn save(g: &mut Inner, d: &DomainRecord, def: &SnapshotDef, new: &QemuDef, metadata: bool) -> Result<()> {
    let edits: Vec<Edit> = metadata.then(|| Edit::Create(def.clone())).into_iter().collect();
    g.commit(&d.uuid, &edits, |w| w.define_domain(&new.def, d.state, d.reason, d.id).map(drop))
}

/// What the steps of one running create share: the connection, the domain as it was, the
/// snapshot being made and the create flags.
#[derive(Clone, Copy)]
struct Call<'a> {
    drv: &'a QemuDriver,
    d: &'a DomainRecord,
    def: &'a SnapshotDef,
    flags: u32,
}

/// `snapshot_create` of a snapshot with external parts (or DISK_ONLY); `def` is parsed and
/// named, the name checked.
pub(crate) fn create(
    drv: &QemuDriver,
    g: &mut Inner,
    d: &DomainRecord,
    mut def: SnapshotDef,
    mut flags: u32,
) -> Result<String> {
    let qdef = QemuDef::parse(&d.xml)?;
    let mut disks = super::align::align(&mut def, &qdef, d.state, &mut flags)?;
    if is_active(d.state) {
        let targets: Vec<&str> = disks.iter().map(|x| x.target.as_str()).collect();
        super::refuse_busy_disks(drv.qmp(g, d)?, &targets)?;
    }
    // one more layer on each disk must stay within libvirt's limit
    if let Some(x) = disks.iter().find(|x| super::chain_depth(&x.frozen, &x.frozen_format) >= super::MAX_CHAIN_DEPTH) {
        return Err(Error::new(
            codes::OPERATION_UNSUPPORTED,
            format!(
                "backing chains more than {} layers deep are not supported for disk '{}'",
                super::MAX_CHAIN_DEPTH,
                x.target
            ),
        ));
    }
    let metadata = flags & cf::NO_METADATA == 0;
    if metadata && g.snap(&d.uuid, &def.name).is_ok() {
        return Err(Error::new(codes::OPERATION_FAILED, format!("domain moment {} already exists", def.name)));
    }
    def.domain = Some(d.xml.clone());
    def.parent = None;
    if is_active(d.state) {
        running(Call { drv, d, def: &def, flags }, g, &mut disks)?;
    } else {
        offline(g, d, &def, &disks, flags)?;
    }
    Ok(def.name)
}

/// A running or paused domain, in libvirt's order: pause (external memory without LIVE),
/// memory into the save image, the disk transaction, metadata, then HALT or resume.
fn running(c: Call<'_>, g: &mut Inner, disks: &mut [ExtDisk]) -> Result<()> {
    let Call { drv, d, def, flags } = c;
    let mem = def.memory.as_ref().filter(|m| m.mode == xml::SnapshotMode::External).and_then(|m| m.file.clone());
    let was_running = d.state == st::RUNNING;
    let Some(file) = mem else {
        return running_disks(c, g, disks);
    };
    let file = std::path::PathBuf::from(file);
    let timeout = drv.timeout();
    let created_mem = !file.exists();
    let q = drv.qmp(g, d)?;
    if was_running && flags & cf::LIVE == 0 {
        q.execute("stop", None).map_err(|e| qmp_error(&d.name, "stop", &e))?;
    }
    // from here qemu may be paused by us (or by the migration's end): resume on any failure
    let undo = |drv: &QemuDriver, g: &mut Inner, e: Error| {
        if created_mem {
            let _ = std::fs::remove_file(&file);
        }
        if was_running && let Ok(q) = drv.qmp(g, d) {
            let _ = q.execute("cont", None);
        }
        e
    };
    if let Err(e) = super::memory::save(q, &d.name, &file, &d.xml, was_running, timeout) {
        return Err(undo(drv, g, e));
    }
    let res = if disks.is_empty() {
        QemuDef::parse(&d.xml).and_then(|same| save(g, d, def, &same, flags & cf::NO_METADATA == 0))
    } else {
        running_disks(c, g, disks)
    };
    if let Err(e) = res {
        return Err(undo(drv, g, e));
    }
    if flags & cf::HALT != 0 {
        drv.stop_process(g, d);
        return drv.mark_stopped(g, d, reason::SHUTOFF_FROM_SNAPSHOT);
    }
    if was_running {
        drv.qmp(g, d)?
            .execute("cont", None)
            .map_err(|e| Error::new(codes::OPERATION_FAILED, format!("resuming after snapshot failed: {e}")))?;
    }
    Ok(())
}

fn offline(g: &mut Inner, d: &DomainRecord, def: &SnapshotDef, disks: &[ExtDisk], flags: u32) -> Result<()> {
    if flags & cf::REUSE_EXT == 0 {
        for (k, disk) in disks.iter().enumerate() {
            if let Err(e) = make_overlay(disk, None, None) {
                unlink_created(&disks[..=k]);
                return Err(e);
            }
        }
    }
    let res = switched_def(d, disks).and_then(|new| save(g, d, def, &new, flags & cf::NO_METADATA == 0));
    if res.is_err() {
        unlink_created(disks);
    }
    res
}

/// The live top of one device: qdev id, node name, virtual size, and the qcow2 layout options
/// an overlay copies from it (libvirt copies `cluster-size` and `extended-l2`).
type Top = (String, String, u64, Option<String>);

/// The live top of every device.
fn tops(q: &mut crate::qmp::Qmp, dom: &str) -> Result<Vec<Top>> {
    let v = q.execute("query-block", None).map_err(|e| qmp_error(dom, "query-block", &e))?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|b| {
                    let qdev = b.get("qdev")?.as_str()?;
                    let id = qdev.strip_suffix("/virtio-backend").unwrap_or(qdev).rsplit('/').next()?.to_owned();
                    let node = b.pointer("/inserted/node-name")?.as_str()?.to_owned();
                    let size = b.pointer("/inserted/image/virtual-size").and_then(Value::as_u64).unwrap_or(0);
                    let img = b.pointer("/inserted/image");
                    let opts = img.filter(|i| i.get("format").and_then(Value::as_str) == Some("qcow2")).and_then(|i| {
                        let cluster = i.get("cluster-size")?.as_u64()?;
                        let l2 = i.pointer("/format-specific/data/extended-l2").and_then(Value::as_bool) == Some(true);
                        Some(format!("cluster_size={cluster},extended_l2={}", if l2 { "on" } else { "off" }))
                    });
                    Some((id, node, size, opts))
                })
                .collect()
        })
        .unwrap_or_default())
}

fn running_disks(c: Call<'_>, g: &mut Inner, disks: &mut [ExtDisk]) -> Result<()> {
    let Call { drv, d, def, flags } = c;
    let reuse = flags & cf::REUSE_EXT != 0;
    let qdef = QemuDef::parse(&d.xml)?;
    let q = drv.qmp(g, d)?;
    let live = tops(q, &d.name)?;
    // (old top node, new format node, new storage node) per disk
    let mut plan: Vec<(String, String, String)> = Vec::new();
    let mut added: Vec<String> = Vec::new();
    let fail = |q: &mut crate::qmp::Qmp, added: &[String], disks: &[ExtDisk], e: Error| {
        for node in added.iter().rev() {
            let _ = q.execute("blockdev-del", Some(json!({ "node-name": node })));
        }
        unlink_created(disks);
        e
    };
    for (k, disk) in disks.iter().enumerate() {
        let Some((_, old, size, opts)) = live.iter().find(|t| t.0 == disk.target) else {
            let e = Error::internal(format!("qemu reports no image for disk '{}'", disk.target));
            return Err(fail(q, &added, &disks[..k], e));
        };
        if !reuse && let Err(e) = make_overlay(disk, Some(*size), opts.as_deref()) {
            return Err(fail(q, &added, &disks[..=k], e));
        }
        let (fnode, snode) = super::node_names(&disk.target);
        let ro = qdef.disks.iter().any(|x| x.target == disk.target && x.readonly);
        let file = json!({ "driver": "file", "filename": disk.overlay, "node-name": snode });
        let fmt = json!({ "driver": "qcow2", "file": snode, "node-name": fnode, "backing": null, "read-only": ro });
        for (args, node) in [(file, &snode), (fmt, &fnode)] {
            if let Err(e) = q.execute("blockdev-add", Some(args)) {
                let e = qmp_error(&d.name, "blockdev-add", &e);
                return Err(fail(q, &added, &disks[..=k], e));
            }
            added.push(node.clone());
        }
        plan.push((old.clone(), fnode, snode));
    }
    let new = match switched_def(d, disks) {
        Ok(n) => n,
        Err(e) => return Err(fail(q, &added, disks, e)),
    };
    let pending = Pending {
        snapshot: def.name.clone(),
        metadata: flags & cf::NO_METADATA == 0,
        snapshot_xml: xml::format(def, None, FormatFlags { secure: true, internal: true, current: true }),
        domain_xml: new.def.xml.clone(),
        old_domain_xml: d.xml.clone(),
        disks: disks.iter().cloned().zip(plan.iter().map(|p| p.1.clone())).collect(),
    };
    if let Err(e) = pending.write(&drv.cfg, &d.uuid) {
        return Err(fail(q, &added, disks, e));
    }
    let mut actions: Vec<Value> = plan
        .iter()
        .map(|(old, fnode, _)| json!({ "type": "blockdev-snapshot", "data": { "node": old, "overlay": fnode } }))
        .collect();
    if fault("external-transaction") {
        actions.push(
            json!({ "type": "blockdev-snapshot", "data": { "node": "no-such-node", "overlay": "no-such-node" } }),
        );
    }
    if let Err(e) = q.execute("transaction", Some(json!({ "actions": actions }))) {
        Pending::remove(&drv.cfg, &d.uuid);
        let e = qmp_error(&d.name, "transaction", &e);
        return Err(fail(q, &added, disks, e));
    }
    if fault("external-after-transaction") {
        // the process "stops" between the switch and the metadata: the record stays
        return Err(Error::internal("fault injected after the disk transaction"));
    }
    // From here the disks are switched: a failed save leaves the record for the next open.
    save(g, d, def, &new, pending.metadata)
        .map_err(|e| Error::new(e.code, format!("unable to save metadata for snapshot {}: {}", def.name, e.message)))?;
    Pending::remove(&drv.cfg, &d.uuid);
    Ok(())
}
