//! Snapshot create and delete, and the helpers revert and redefine share.
//!
//! - Shut-off domain: `qemu-img snapshot -c/-d` on every writable qcow2 disk; a failed create
//!   on disk k deletes the snapshot again from disks 1..k-1.
//! - Running or paused domain: QMP `snapshot-save` / `snapshot-delete` jobs naming the stable
//!   node names; the VM-state goes to the first qcow2 disk. If qemu dies during a save, the
//!   partial snapshot is removed from every image once qemu is gone.
//! - Metadata in the model's store, one transaction, written after the images succeeded and
//!   undone on the images if that transaction fails. NO_METADATA records nothing.
//! - Before touching an image, the name is checked (all digits, `/`, leading `.`) and every
//!   image's snapshot table is read natively to refuse a tag that already exists.

use serde_json::{Value, json};
use virtplug_plugin_sdk::{
    Edit, Error, Result, codes,
    flags::{domain_state as st, snapshot_create as cf, snapshot_delete as df},
    model::{
        store::DomainRecord,
        xml::{self, DiskSpec, MemorySpec, ParseFlags, SnapshotMode},
    },
};

use crate::{
    domain::{Disk, QemuDef},
    driver::{Inner, QemuDriver, is_active, qmp_error, reason},
    img::{self, Action},
    process,
    qmp::QmpError,
    snapdef::{check_name, snapshot_qdef},
};

/// Job ids must be identifiers; snapshot names need not be.
fn job_id(kind: &str) -> String {
    format!("virtplug-snapshot-{kind}")
}

/// Removes tag `name` from each disk that holds it (best effort, used for rollback).
pub(crate) fn remove_tag(disks: &[&Disk], name: &str) -> Vec<String> {
    let mut cleaned = Vec::new();
    for disk in disks {
        while img::tag_count(disk, name).unwrap_or(0) > 0 {
            if img::snapshot(Action::Delete, name, disk).is_err() {
                break;
            }
            cleaned.push(disk.target.clone());
        }
    }
    cleaned
}

fn offline_create(qdef: &QemuDef, name: &str) -> Result<()> {
    let disks: Vec<&Disk> = qdef.snapshot_disks().collect();
    for (k, disk) in disks.iter().enumerate() {
        if let Err(e) = img::snapshot(Action::Create, name, disk) {
            for done in &disks[..k] {
                let _ = img::snapshot(Action::Delete, name, done);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// A fault to inject in tests (`VIRTPLUG_QEMU_FAULT=kill-during-save`).
fn fault(name: &str) -> bool {
    std::env::var("VIRTPLUG_QEMU_FAULT").is_ok_and(|v| v == name)
}

/// `snapshot-save` on the running qemu of `d`; `blocks`: its `query-block` answer.
fn online_create(
    drv: &QemuDriver,
    g: &mut Inner,
    d: &DomainRecord,
    qdef: &QemuDef,
    name: &str,
    blocks: Result<Value, QmpError>,
) -> Result<()> {
    let disks: Vec<&Disk> = qdef.snapshot_disks().collect();
    if disks.is_empty() {
        return Err(Error::new(
            codes::CONFIG_UNSUPPORTED,
            "internal snapshot of a running VM needs a writable qcow2 disk for the VM state",
        ));
    }
    let id = job_id("save");
    let q = drv.qmp(g, d)?;
    // the live tops (one per disk, so nodes[0] exists): an external snapshot moved them off
    // the stable node names
    let nodes = crate::external::live_nodes_in(blocks, &disks)?;
    let args = json!({ "job-id": id, "tag": name, "vmstate": nodes[0], "devices": nodes });
    let res = if fault("kill-during-save") {
        q.send("snapshot-save", Some(args)).and_then(|()| {
            if let Some(rt) = process::load(&drv.cfg, &d.uuid) {
                process::signal(rt.pid, libc::SIGKILL);
            }
            q.reply().and_then(|_| q.finish_job(&id))
        })
    } else {
        q.run_job("snapshot-save", &id, args)
    };
    match res {
        Ok(out) => match out.error {
            None => Ok(()),
            Some(e) => Err(Error::new(codes::OPERATION_FAILED, format!("snapshot-save job failed: {e}"))),
        },
        Err(QmpError::Command(e)) => Err(Error::new(codes::OPERATION_FAILED, format!("snapshot-save job failed: {e}"))),
        Err(e) => {
            // qemu is gone or silent: make sure it is gone, then undo whatever reached the images
            drv.stop_process(g, d);
            let cleaned = remove_tag(&disks, name);
            drv.mark_stopped(g, d, reason::SHUTOFF_CRASHED)?;
            let mut err = qmp_error(&d.name, "snapshot-save job failed", &e);
            err.message.push_str(&if cleaned.is_empty() {
                "; no image holds a partial snapshot".to_owned()
            } else {
                format!("; partial snapshot removed from disk(s) {}", cleaned.join(", "))
            });
            Err(err)
        }
    }
}

/// `snapshot_create`.
pub fn create(drv: &QemuDriver, dom: &str, text: &str, flags: u32) -> Result<String> {
    if flags & cf::VALIDATE != 0 {
        xml::validate_schema(text)?;
    }
    let mut g = drv.lock()?;
    let d = drv.snapshot_target(&mut g, dom)?;
    if !d.persistent && flags & cf::HALT != 0 {
        // halting would make the transient domain, and the snapshot's running state, vanish
        return Err(Error::operation_invalid("cannot halt after transient domain snapshot"));
    }
    if flags & cf::REDEFINE != 0 {
        return crate::redefine::redefine(drv, &mut g, &d, text, flags);
    }
    let active = is_active(d.state);
    let qdef = QemuDef::parse(&d.xml)?;
    let offline = !active || flags & cf::DISK_ONLY != 0;
    let mut def = xml::parse(text, ParseFlags { offline, ..Default::default() })?;
    if def.name.is_empty() {
        // libvirt names it after the creation time, an all-digit name qemu would read as an ID
        def.creation_time = virtplug_plugin_sdk::now();
        def.name = format!("snapshot-{}", def.creation_time);
    } else {
        def.fill_defaults(virtplug_plugin_sdk::now());
    }
    check_name(&def.name)?;
    let mem_external = def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::External);
    if flags & cf::LIVE != 0 && !(active && mem_external) {
        return Err(Error::new(
            codes::OPERATION_UNSUPPORTED,
            "live snapshot creation is supported only during full system snapshots",
        ));
    }
    if flags & cf::DISK_ONLY != 0 || def.is_external() {
        return crate::external::create::create(drv, &mut g, &d, def, flags);
    }
    if active && def.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::No) {
        return Err(Error::new(
            codes::CONFIG_UNSUPPORTED,
            "internal snapshot of a running VM must include the memory state",
        ));
    }
    if def
        .disks
        .iter()
        .any(|s| s.snapshot == Some(SnapshotMode::No) && qdef.disks.iter().any(|q| q.target == s.name && !q.readonly))
    {
        return Err(Error::new(
            codes::CONFIG_UNSUPPORTED,
            "internal and full system snapshots require all disks to be selected for snapshot",
        ));
    }
    qdef.check_internal_snapshot_possible()?;
    // A running domain's block jobs (a busy disk is refused) and live node names (the save
    // names them), asked in one round trip.
    let blocks = if active {
        let targets: Vec<&str> = qdef.snapshot_disks().map(|x| x.target.as_str()).collect();
        let (jobs, blocks) = drv.qmp(&mut g, &d)?.execute_pair("query-block-jobs", "query-block");
        crate::external::refuse_busy_disks_in(jobs, &targets)?;
        Some(blocks)
    } else {
        None
    };
    let metadata = flags & cf::NO_METADATA == 0;
    if metadata && g.snap(&d.uuid, &def.name).is_ok() {
        return Err(Error::new(codes::OPERATION_FAILED, format!("domain moment {} already exists", def.name)));
    }
    for disk in qdef.snapshot_disks() {
        if img::tag_count(disk, &def.name)? > 0 {
            return Err(Error::operation_invalid(format!(
                "disk {} already holds a snapshot named '{}'",
                disk.target, def.name
            )));
        }
    }
    def.state = match d.state {
        st::RUNNING => st::RUNNING,
        st::PAUSED => st::PAUSED,
        _ => st::SHUTOFF,
    };
    def.memory = Some(MemorySpec { mode: if active { SnapshotMode::Internal } else { SnapshotMode::No }, file: None });
    def.disks = qdef
        .disks
        .iter()
        .map(|q| DiskSpec {
            name: q.target.clone(),
            snapshot: Some(if q.readonly { SnapshotMode::No } else { SnapshotMode::Internal }),
            ..Default::default()
        })
        .collect();
    def.domain = Some(d.xml.clone());
    def.parent = None;
    match blocks {
        Some(blocks) => online_create(drv, &mut g, &d, &qdef, &def.name, blocks)?,
        None => offline_create(&qdef, &def.name)?,
    }
    if metadata && let Err(e) = g.commit_snaps(&d.uuid, &[Edit::Create(def.clone())]) {
        let disks: Vec<&Disk> = qdef.snapshot_disks().collect();
        if active {
            let _ = online_delete(drv, &mut g, &d, &qdef, &def.name);
        } else {
            remove_tag(&disks, &def.name);
        }
        return Err(e);
    }
    if active && flags & cf::HALT != 0 {
        drv.stop_process(&mut g, &d);
        drv.mark_stopped(&mut g, &d, reason::SHUTOFF_FROM_SNAPSHOT)?;
    }
    Ok(def.name)
}

/// `snapshot-delete` of tag `name` on the running qemu of `d`, on the disks that hold it.
pub(crate) fn online_delete(
    drv: &QemuDriver,
    g: &mut Inner,
    d: &DomainRecord,
    qdef: &QemuDef,
    name: &str,
) -> Result<()> {
    let mut holding = Vec::new();
    for disk in qdef.snapshot_disks() {
        if img::tag_count(disk, name)? > 0 {
            holding.push(disk);
        }
    }
    if holding.is_empty() {
        return Ok(());
    }
    let devices = crate::external::live_nodes(drv.qmp(g, d)?, &holding)?;
    let id = job_id("delete");
    let out = drv
        .qmp(g, d)?
        .run_job("snapshot-delete", &id, json!({ "job-id": id, "tag": name, "devices": devices }))
        .map_err(|e| qmp_error(&d.name, "snapshot-delete job failed", &e))?;
    match out.error {
        None => Ok(()),
        Some(e) => Err(Error::new(codes::OPERATION_FAILED, format!("snapshot-delete job failed: {e}"))),
    }
}

fn offline_delete(qdef: &QemuDef, name: &str) -> Result<()> {
    for disk in qdef.snapshot_disks() {
        if img::tag_count(disk, name)? > 0 {
            img::snapshot(Action::Delete, name, disk)?;
        }
    }
    Ok(())
}

/// `snapshot_delete`: images first (children before parents), then the metadata in one
/// transaction. If an image step fails part-way, the metadata of the snapshots already gone
/// from the images is dropped and the rest stays as it was.
pub fn delete(drv: &QemuDriver, dom: &str, snap: &str, flags: u32) -> Result<()> {
    let mut g = drv.lock()?;
    let d = drv.snapshot_target(&mut g, dom)?;
    g.snap(&d.uuid, snap)?;
    if flags & df::METADATA_ONLY != 0 {
        return g.commit_snaps(&d.uuid, &[Edit::Delete(snap.to_owned(), flags)]);
    }
    if crate::external::delete::involved(&mut g, &d, snap, flags)? {
        if is_active(d.state) && !crate::external::block_jobs(drv.qmp(&mut g, &d)?)?.is_empty() {
            return Err(Error::new(
                codes::OPERATION_UNSUPPORTED,
                "cannot delete external snapshots when there is another active block job",
            ));
        }
        drop(g);
        return crate::external::delete::delete(drv, dom, snap, flags);
    }
    let all = g.snaps(&d.uuid)?;
    let mut victims: Vec<String> = Vec::new();
    if flags & (df::CHILDREN | df::CHILDREN_ONLY) != 0 {
        let mut frontier = vec![snap.to_owned()];
        while let Some(p) = frontier.pop() {
            for c in all.iter().filter(|s| s.parent.as_deref() == Some(p.as_str())) {
                victims.push(c.name.clone());
                frontier.push(c.name.clone());
            }
        }
        victims.reverse(); // deepest first
    }
    if flags & df::CHILDREN_ONLY == 0 {
        victims.push(snap.to_owned());
    }
    let active = is_active(d.state);
    let current = QemuDef::parse(&d.xml)?;
    for (k, name) in victims.iter().enumerate() {
        let res = if active {
            online_delete(drv, &mut g, &d, &current, name)
        } else {
            let sdef = g.snap_def(&d.uuid, name)?;
            snapshot_qdef(&sdef, &d).and_then(|q| offline_delete(&q, name))
        };
        if let Err(e) = res {
            let done: Vec<Edit> = victims[..k].iter().map(|n| Edit::Delete(n.clone(), 0)).collect();
            g.commit_snaps(&d.uuid, &done)?;
            return Err(e);
        }
    }
    g.commit_snaps(&d.uuid, &[Edit::Delete(snap.to_owned(), flags)])
}
