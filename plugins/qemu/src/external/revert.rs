//! Revert to an external snapshot (libvirt 9.0 refuses it; this follows the reference's §8.3).
//!
//! The snapshot's frozen images are never written: each external disk gets a **new** overlay
//! on the frozen image named in the snapshot's `<domain>` (`<frozen minus .suffix>.<snapshot>-
//! revert<k>`, the first k not taken), and the domain is defined from the snapshot's `<domain>`
//! with those overlays as sources. The branch that ran after the snapshot keeps its files: its
//! snapshots' frozen images are untouched, so a later revert to one of them works the same way.
//!
//! Order: journal record ([`super::journal`]), stop qemu if it runs, create the overlays (a
//! failure removes the ones made), start qemu on them when the result should run (RUNNING or
//! PAUSED asked, or the snapshot was taken of a running domain: state `disk-snapshot`, i.e. a
//! disk-only snapshot has no memory, so the guest boots afresh on the snapshot's disks), then one
//! store transaction (definition, state, current snapshot) and the record is removed.
//! With external memory (state running/paused) a new qemu always starts, with `-incoming defer`,
//! and loads the save image's migration stream (after libvirt's header and XML) before it runs.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::{Value, json};
use virtplug_plugin_sdk::{
    Error, Result, codes,
    flags::{domain_state as st, snapshot_revert as rf},
    model::{
        store::DomainRecord,
        xml::{SnapshotDef, SnapshotMode},
    },
};

use super::{
    domxml::{Switch, switch_disks},
    journal::Step,
};
use crate::{
    domain::QemuDef,
    driver::{Inner, QemuDriver, is_active, qmp_error, reason},
    img,
    qmp::Qmp,
};

/// Runs qemu-img with `args`; libvirt's text for a failed helper.
pub(crate) fn qemu_img(args: &[&str]) -> Result<String> {
    let bin = img::qemu_img();
    let out = Command::new(&bin).args(args).output().map_err(|e| Error::internal(format!("cannot run {bin}: {e}")))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
    // a lock held by another process ("Failed to get [shared] \"write\" lock"); not "Block job"
    let code = if err.contains("\" lock") { codes::OPERATION_INVALID } else { codes::INTERNAL_ERROR };
    Err(Error::new(
        code,
        format!(
            "Child process ({bin} {}) unexpected exit status {}: {err}",
            args.join(" "),
            out.status.code().unwrap_or(-1)
        ),
    ))
}

/// The virtual size of image `path` in format `format` (qcow2 header, or a raw file's length).
fn virtual_size(path: &Path, format: &str) -> Result<u64> {
    use std::io::Read;
    let mut f = fs::File::open(path).map_err(|e| img::missing(path, &e))?;
    if format != "qcow2" {
        return f.metadata().map(|m| m.len()).map_err(|e| img::missing(path, &e));
    }
    let mut hdr = [0u8; 32];
    f.read_exact(&mut hdr).map_err(|e| img::missing(path, &e))?;
    if &hdr[0..4] != b"QFI\xfb" {
        return Err(Error::new(
            codes::CONFIG_UNSUPPORTED,
            format!("'{}' is declared qcow2 but the image is not in qcow2 format", path.display()),
        ));
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&hdr[24..32]);
    Ok(u64::from_be_bytes(size))
}

/// `qemu-img create -f qcow2 -u -b FROZEN -F FMT NEW SIZE`: explicit backing format (never
/// probed) and size, so qemu-img does not open the frozen image's whole chain (a deep chain
/// costs milliseconds per layer).
pub(crate) fn create_overlay(frozen: &Path, format: &str, new: &Path) -> Result<()> {
    let size = virtual_size(frozen, format)?.to_string();
    let (b, n) = (frozen.to_string_lossy(), new.to_string_lossy());
    qemu_img(&["create", "-q", "-f", "qcow2", "-u", "-b", &b, "-F", format, &n, &size]).map(|_| ())
}

/// A free name for the k-th revert overlay of `snap` on `frozen`.
fn revert_overlay(frozen: &Path, snap: &str) -> PathBuf {
    (1u32..)
        .map(|k| super::overlay_name(frozen, &format!("{snap}-revert{k}")))
        .find(|p| fs::symlink_metadata(p).is_err())
        .unwrap_or_else(|| super::overlay_name(frozen, &format!("{snap}-revert")))
}

/// The external disks of `sdef`: (target, frozen image, its format) from its `<domain>`.
pub(crate) fn frozen_disks(sdef: &SnapshotDef, target: &QemuDef) -> Result<Vec<(String, PathBuf, String)>> {
    let mut out = Vec::new();
    for ds in sdef.disks.iter().filter(|d| d.snapshot == Some(SnapshotMode::External)) {
        let Some(disk) = target.disks.iter().find(|d| d.target == ds.name) else {
            return Err(Error::operation_invalid(format!("failed to find disk '{}' in snapshot VM XML", ds.name)));
        };
        out.push((ds.name.clone(), disk.path.clone(), disk.format.as_str().to_owned()));
    }
    Ok(out)
}

/// Whether a running qemu can take the revert in place: no memory to load, and the snapshot's
/// machine (memory, vcpus, disk targets and formats) is the running one.
fn in_place_possible(cur: &QemuDef, new: &QemuDef) -> bool {
    cur.def.max_memory_kib == new.def.max_memory_kib
        && cur.def.vcpus == new.def.vcpus
        && cur.disks.len() == new.disks.len()
        && cur.disks.iter().zip(&new.disks).all(|(a, b)| a.target == b.target && a.readonly == b.readonly)
}

/// Reverts a running qemu in place, without restarting it (a disk-only snapshot has no memory,
/// so the guest is reset, as a fresh start would do): per disk, the new overlay (already made,
/// its header naming the frozen image) is opened with `backing: null`, installed above the
/// current top by one `transaction` of `blockdev-snapshot` (vCPUs stopped), then reopened with the
/// frozen image's node as its backing (`blockdev-reopen`; the overlay is empty, so this is the
/// live form of an unsafe rebase); the old top's nodes are deleted; `system_reset`. The caller
/// resumes or leaves it paused. An error before the transaction changes nothing in qemu.
fn revert_in_place(q: &mut Qmp, plan: &[(String, PathBuf, String, PathBuf)]) -> Result<()> {
    let err = |what: &str, e: crate::qmp::QmpError| Error::new(codes::OPERATION_FAILED, format!("{what}: {e}"));
    let mut steps = Vec::new();
    for (target, frozen, fmt, new) in plan {
        let old_top = super::top_node(q, target)?;
        let base = match super::delete::node_of(q, frozen) {
            Ok(n) => n,
            Err(_) => {
                // the frozen image is not in qemu's graph (another branch): open it read-only
                let (f, s) = super::node_names(target);
                let (f, s) = (f.replace("-f", "-bf"), s.replace("-s", "-bs"));
                q.execute(
                    "blockdev-add",
                    Some(json!({"driver": "file", "filename": frozen, "node-name": s, "read-only": true})),
                )
                .map_err(|e| err("blockdev-add", e))?;
                q.execute("blockdev-add", Some(json!({"driver": fmt, "file": s, "node-name": f, "read-only": true})))
                    .map_err(|e| err("blockdev-add", e))?;
                f
            }
        };
        let (fnode, snode) = super::node_names(target);
        q.execute("blockdev-add", Some(json!({"driver": "file", "filename": new, "node-name": snode})))
            .map_err(|e| err("blockdev-add", e))?;
        q.execute("blockdev-add", Some(json!({"driver": "qcow2", "file": snode, "node-name": fnode, "backing": null})))
            .map_err(|e| err("blockdev-add", e))?;
        steps.push((old_top, base, fnode, snode));
    }
    q.execute("stop", None).map_err(|e| err("stop", e))?;
    let actions: Vec<Value> = steps
        .iter()
        .map(|(old, _, f, _)| json!({"type": "blockdev-snapshot", "data": {"node": old, "overlay": f}}))
        .collect();
    q.execute("transaction", Some(json!({"actions": actions}))).map_err(|e| err("transaction", e))?;
    let opts: Vec<Value> = steps
        .iter()
        .map(|(_, base, f, s)| json!({"driver": "qcow2", "node-name": f, "file": s, "backing": base}))
        .collect();
    q.execute("blockdev-reopen", Some(json!({"options": opts}))).map_err(|e| err("blockdev-reopen", e))?;
    for (old, _, _, _) in &steps {
        // the old top leaves the graph; nodes qemu made implicitly go by themselves
        let _ = q.execute("blockdev-del", Some(json!({"node-name": old})));
        if let Some(stem) = old.strip_suffix("-format") {
            let _ = q.execute("blockdev-del", Some(json!({"node-name": format!("{stem}-storage")})));
        } else if let Some(stem) = old.strip_suffix("-f") {
            let _ = q.execute("blockdev-del", Some(json!({"node-name": format!("{stem}-s")})));
        }
    }
    q.execute("system_reset", None).map_err(|e| err("system_reset", e))?;
    Ok(())
}

/// Starts qemu for `def` with `-incoming defer` and loads the memory of save image `file`
/// (libvirt's layout: the migration stream starts after the header and XML) through
/// `migrate-incoming` from `exec:tail -c +N`; returns once the migration completed (qemu paused).
fn launch_incoming(drv: &QemuDriver, g: &mut Inner, def: &QemuDef, file: &Path) -> Result<()> {
    let offset = super::memory::stream_offset(file)?;
    let rt = crate::process::spawn_with(&drv.cfg, def, &["-incoming", "defer"])?;
    let q = match Qmp::connect(&rt.socket, drv.timeout()) {
        Ok(q) => g.qmp.entry(def.def.uuid.clone()).insert_entry(q).into_mut(),
        Err(e) => {
            crate::process::kill(&rt);
            crate::process::clear(&drv.cfg, &def.def.uuid);
            return Err(qmp_error(&def.def.name, "cannot connect to monitor", &e));
        }
    };
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        Error::new(codes::OPERATION_FAILED, format!("cannot restore memory from '{}': {what}: {e}", file.display()))
    };
    let quoted = file.to_string_lossy().replace('\'', "'\\''");
    let uri = format!("exec:tail -c +{} '{quoted}'", offset + 1);
    q.execute("migrate-incoming", Some(json!({ "uri": uri }))).map_err(|e| failed("migrate-incoming", &e))?;
    let end = std::time::Instant::now() + drv.timeout().saturating_mul(60);
    loop {
        let v = q.execute("query-migrate", None).map_err(|e| failed("query-migrate", &e))?;
        match v.get("status").and_then(Value::as_str) {
            Some("completed") => return Ok(()),
            Some("failed") => {
                let why = v.get("error-desc").and_then(Value::as_str).unwrap_or("migration failed").to_owned();
                return Err(failed("migration", &why));
            }
            _ if std::time::Instant::now() > end => return Err(failed("migration", &"did not finish in time")),
            _ => std::thread::sleep(std::time::Duration::from_millis(2)),
        }
    }
}

/// `snapshot_revert` to an external snapshot; the caller checked that `sdef` has a `<domain>`.
pub(crate) fn revert(drv: &QemuDriver, g: &mut Inner, d: &DomainRecord, sdef: &SnapshotDef, flags: u32) -> Result<()> {
    let snap = sdef.name.as_str();
    let dom_xml = sdef.domain.as_deref().ok_or_else(|| Error::internal("snapshot without domain"))?;
    let run_or_pause = flags & (rf::RUNNING | rf::PAUSED) != 0;
    let taken_running = matches!(sdef.state, st::RUNNING | st::PAUSED | st::DISK_SNAPSHOT);
    if sdef.state == st::PMSUSPENDED {
        return Err(Error::operation_invalid("qemu doesn't support reversion of snapshot taken in PMSUSPENDED state"));
    }
    if !d.persistent && !taken_running && !run_or_pause {
        return Err(Error::operation_invalid(
            "transient domain needs to request run or pause to revert to inactive snapshot",
        ));
    }
    let memory = sdef.memory.as_ref().filter(|m| m.mode == SnapshotMode::External).and_then(|m| m.file.clone());
    let target = QemuDef::parse(dom_xml)?;
    let disks = frozen_disks(sdef, &target)?;
    // a delete of this snapshot that failed part-way may have merged into its frozen images
    if let Some(step) = Step::read(&drv.cfg, &d.uuid)?
        && step.op == "delete"
        && step.snapshot == snap
        && let Some((t, _, _)) = disks.first()
    {
        return Err(Error::operation_invalid(format!(
            "snapshot disk '{t}' was target of not completed snapshot delete"
        )));
    }
    for (_, frozen, _) in &disks {
        fs::metadata(frozen).map_err(|e| img::missing(frozen, &e))?;
    }
    if let Some(m) = &memory {
        super::memory::stream_offset(Path::new(m))?;
    }
    let plan: Vec<(String, PathBuf, String, PathBuf)> =
        disks.into_iter().map(|(t, f, fmt)| (t, f.clone(), fmt, revert_overlay(&f, snap))).collect();
    let switches: Vec<Switch> = plan
        .iter()
        .map(|(t, _, _, n)| Switch { target: t.clone(), source: n.clone(), format: "qcow2".into() })
        .collect();
    let new_xml = switch_disks(dom_xml, &switches)?;
    let new_def = QemuDef::parse(&new_xml)?;
    let step = Step {
        op: "revert".into(),
        snapshot: snap.to_owned(),
        old_domain_xml: d.xml.clone(),
        new_domain_xml: new_xml.clone(),
        created: plan.iter().map(|p| p.3.clone()).collect(),
        merges: Vec::new(),
        remove: Vec::new(),
    };
    step.write(&drv.cfg, &d.uuid)?;
    let undo = |created: &[PathBuf]| {
        for c in created {
            let _ = fs::remove_file(c);
        }
        Step::remove(&drv.cfg, &d.uuid);
    };
    for (k, (_, frozen, fmt, new)) in plan.iter().enumerate() {
        if let Err(e) = create_overlay(frozen, fmt, new) {
            undo(&step.created[..k]);
            return Err(e);
        }
    }
    if super::journal::fault("revert-crash") {
        return Err(Error::internal("fault injected after the revert overlays were made"));
    }
    let start = run_or_pause || taken_running;
    let want_running = flags & rf::RUNNING != 0 || (flags & rf::PAUSED == 0 && sdef.state != st::PAUSED);
    let mut id = -1;
    let mut in_place = false;
    if is_active(d.state) {
        let cur = QemuDef::parse(&d.xml)?;
        if start && memory.is_none() && in_place_possible(&cur, &new_def) {
            in_place = drv.qmp(g, d).and_then(|q| revert_in_place(q, &plan)).is_ok();
            id = d.id;
        }
        if !in_place {
            drv.stop_process(g, d);
            drv.mark_stopped(g, d, reason::SHUTOFF_FROM_SNAPSHOT)?;
        }
    }
    if in_place && super::journal::fault("revert-crash-switched") {
        return Err(Error::internal("fault injected after the in-place switch"));
    }
    if in_place {
        let cmd = if want_running { "cont" } else { "stop" };
        if let Err(e) = drv.qmp(g, d)?.execute(cmd, None) {
            return Err(qmp_error(&d.name, cmd, &e));
        }
    } else if start {
        let launched = match &memory {
            Some(m) => launch_incoming(drv, g, &new_def, Path::new(m)),
            None => drv.launch(g, &new_def).map(drop),
        };
        let res = launched.and_then(|()| {
            id = QemuDriver::next_id(g)?;
            let cmd = if want_running { "cont" } else { "stop" };
            drv.qmp(g, d)?.execute(cmd, None).map(|_| ()).map_err(|e| qmp_error(&d.name, cmd, &e))
        });
        if let Err(e) = res {
            drv.stop_process(g, d);
            let _ = drv.mark_stopped(g, d, reason::SHUTOFF_FROM_SNAPSHOT);
            undo(&step.created);
            return Err(e);
        }
    }
    let (state, why) = match (start, want_running) {
        (false, _) => (st::SHUTOFF, reason::SHUTOFF_FROM_SNAPSHOT),
        (true, true) => (st::RUNNING, reason::RUNNING_FROM_SNAPSHOT),
        (true, false) => (st::PAUSED, reason::PAUSED_FROM_SNAPSHOT),
    };
    let gone = state == st::SHUTOFF && !d.persistent;
    let edits = g.revert_edits(&d.uuid, snap, gone)?;
    g.commit(&d.uuid, &edits, |w| {
        w.define_domain(&new_def.def, state, why, id)?;
        if gone {
            return w.undefine_domain(&d.uuid);
        }
        w.set_domain_state(&d.uuid, state, why, id)
    })?;
    Step::remove(&drv.cfg, &d.uuid);
    Ok(())
}
