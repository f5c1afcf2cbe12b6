//! Revert, as libvirt's qemu driver defines it, without restarting qemu when it need not:
//!
//! - to a shut-off snapshot: qemu (if running) is stopped, `qemu-img snapshot -a` runs on every
//!   writable qcow2 disk, and with RUNNING or PAUSED qemu starts again;
//! - to a running or paused snapshot: a running qemu whose configuration matches the
//!   snapshot's loads it in place (`snapshot-load`); otherwise (shut off, or a different
//!   configuration, which needs FORCE) a fresh qemu starts paused and loads it; then the vCPUs
//!   run unless the snapshot was paused or PAUSED was asked (RUNNING wins).
//!
//! Before any image is touched every disk must hold the tag exactly once (the vm-state disk with
//! a VM state for online snapshots); the snapshot becomes current in the same store
//! transaction that records the new domain state.

use serde_json::json;
use virtplug_plugin_sdk::{
    Error, Result, codes,
    flags::{domain_state as st, snapshot_revert as rf},
    model::{store::DomainRecord, xml::state_name},
};

use crate::{
    domain::QemuDef,
    driver::{Inner, QemuDriver, is_active, qmp_error, reason},
    img::{self, Action},
    snapdef::snapshot_qdef,
};

/// Checks that every internal disk of `qdef` holds `name` once; with `vmstate`, that the first
/// one carries the VM state.
fn check_images(qdef: &QemuDef, name: &str, vmstate: bool) -> Result<()> {
    for (k, disk) in qdef.snapshot_disks().enumerate() {
        let snaps = img::snapshots(disk)?;
        let found: Vec<_> = snaps.iter().filter(|s| s.name == name).collect();
        match found.len() {
            0 => {
                return Err(Error::operation_invalid(format!(
                    "image of disk '{}' does not have internal snapshot '{name}'",
                    disk.target
                )));
            }
            1 => {}
            n => {
                return Err(Error::operation_invalid(format!(
                    "image of disk '{}' holds {n} snapshots named '{name}'; refusing an ambiguous revert",
                    disk.target
                )));
            }
        }
        if vmstate && k == 0 && found[0].vm_state_size == 0 {
            return Err(Error::operation_invalid(format!(
                "missing vmstate section when reverting active internal snapshot '{name}'"
            )));
        }
    }
    Ok(())
}

/// Whether a running qemu for `cur` can load a snapshot taken with `target`.
fn same_machine(cur: &QemuDef, target: &QemuDef) -> bool {
    cur.def.max_memory_kib == target.def.max_memory_kib
        && cur.def.vcpus == target.def.vcpus
        && cur.disks == target.disks
}

fn load(drv: &QemuDriver, g: &mut Inner, d: &DomainRecord, qdef: &QemuDef, name: &str) -> Result<()> {
    let disks: Vec<_> = qdef.snapshot_disks().collect();
    let Some(first) = disks.first() else {
        return Err(Error::internal("online snapshot without a qcow2 disk"));
    };
    let id = "virtplug-snapshot-load";
    let args = json!({ "job-id": id, "tag": name, "vmstate": first.node(),
                       "devices": disks.iter().map(|d| d.node()).collect::<Vec<_>>() });
    let out = drv
        .qmp(g, d)?
        .run_job("snapshot-load", id, args)
        .map_err(|e| qmp_error(&d.name, "snapshot-load job failed", &e))?;
    match out.error {
        None => Ok(()),
        Some(e) => Err(Error::new(codes::OPERATION_FAILED, format!("snapshot-load job failed: {e}"))),
    }
}

/// `snapshot_revert`.
pub fn revert(drv: &QemuDriver, dom: &str, snap: &str, flags: u32) -> Result<()> {
    let mut g = drv.lock()?;
    let d = drv.snapshot_target(&mut g, dom)?;
    let sdef = g.snap_def(&d.uuid, snap)?;
    // libvirt's first check (qemuSnapshotRevert), internal or external alike
    if is_active(d.state) && !crate::external::block_jobs(drv.qmp(&mut g, &d)?)?.is_empty() {
        return Err(Error::new(codes::OPERATION_INVALID, "domain has active block job"));
    }
    if sdef.domain.is_none() {
        return Err(Error::new(
            codes::SNAPSHOT_REVERT_RISKY,
            format!("snapshot '{snap}' lacks domain '{dom}' rollback info"),
        ));
    }
    if sdef.is_external() {
        return crate::external::revert::revert(drv, &mut g, &d, &sdef, flags);
    }
    let target = snapshot_qdef(&sdef, &d)?;
    let run_or_pause = flags & (rf::RUNNING | rf::PAUSED) != 0;
    let online = matches!(sdef.state, st::RUNNING | st::PAUSED);
    let offline = matches!(sdef.state, st::SHUTOFF | st::SHUTDOWN | st::CRASHED);
    if !online && !offline {
        return Err(Error::internal(format!(
            "Invalid target domain state '{}'. Refusing snapshot reversion",
            state_name(sdef.state).unwrap_or("?")
        )));
    }
    if !d.persistent && offline && !run_or_pause {
        return Err(Error::operation_invalid(
            "transient domain needs to request run or pause to revert to inactive snapshot",
        ));
    }
    target.check_internal_snapshot_possible()?;
    check_images(&target, snap, online)?;
    let active = is_active(d.state);
    let cur = QemuDef::parse(&d.xml)?;
    let mut id = d.id;
    let want_running = flags & rf::RUNNING != 0 || (flags & rf::PAUSED == 0 && sdef.state == st::RUNNING);
    if online {
        let in_place = active && same_machine(&cur, &target);
        if active && !in_place && flags & rf::FORCE == 0 {
            return Err(Error::new(
                codes::SNAPSHOT_REVERT_RISKY,
                "must respawn qemu to start inactive snapshot; snapshot configuration differs from the running domain"
                    .to_owned(),
            ));
        }
        if !in_place {
            if active {
                drv.stop_process(&mut g, &d);
                drv.mark_stopped(&mut g, &d, reason::SHUTOFF_FROM_SNAPSHOT)?;
            }
            drv.launch(&mut g, &target)?;
            id = QemuDriver::next_id(&mut g)?;
        }
        if let Err(e) = load(drv, &mut g, &d, &target, snap) {
            if !in_place {
                drv.stop_process(&mut g, &d);
                drv.mark_stopped(&mut g, &d, reason::SHUTOFF_FROM_SNAPSHOT)?;
            }
            return Err(e);
        }
    } else {
        if active {
            drv.stop_process(&mut g, &d);
            drv.mark_stopped(&mut g, &d, reason::SHUTOFF_FROM_SNAPSHOT)?;
        }
        let mut first_err = None;
        for disk in target.snapshot_disks() {
            if let Err(e) = img::snapshot(Action::Apply, snap, disk) {
                first_err.get_or_insert(e);
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        if run_or_pause {
            drv.launch(&mut g, &target)?;
            id = QemuDriver::next_id(&mut g)?;
        }
    }
    let running_now = online || run_or_pause;
    let (state, why) = if !running_now {
        (st::SHUTOFF, reason::SHUTOFF_FROM_SNAPSHOT)
    } else {
        let cmd = if want_running { "cont" } else { "stop" };
        drv.qmp(&mut g, &d)?.execute(cmd, None).map_err(|e| qmp_error(dom, cmd, &e))?;
        if want_running {
            (st::RUNNING, reason::RUNNING_FROM_SNAPSHOT)
        } else {
            (st::PAUSED, reason::PAUSED_FROM_SNAPSHOT)
        }
    };
    let new_xml = sdef.domain.clone().filter(|x| *x != d.xml);
    let gone = state == st::SHUTOFF && !d.persistent;
    let edits = g.revert_edits(&d.uuid, snap, gone)?;
    g.commit(&d.uuid, &edits, |w| {
        if new_xml.is_some() {
            w.define_domain(&target.def, state, why, id)?;
        }
        if gone {
            return w.undefine_domain(&d.uuid);
        }
        w.set_domain_state(&d.uuid, state, why, if state == st::SHUTOFF { -1 } else { id })
    })
}
