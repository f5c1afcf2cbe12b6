//! Delete of external snapshots (libvirt 9.0's merge, §9, plus CHILDREN / CHILDREN_ONLY and
//! snapshots on branches a revert left).
//!
//! Deleting snapshot S merges, per external disk, S's overlay O into S's frozen image B (the
//! disk's source in S's `<domain>`), so B holds the newer data and O goes:
//!
//! - O in the chain of a running qemu: `block-commit` (§9.3): non-active (`auto-finalize`
//!   false, `backing-file` B) → `pending` → `job-finalize`; O the active layer → `ready` →
//!   `job-complete`; then `job-dismiss` and `blockdev-del` of O's nodes;
//! - otherwise (shut off, or a branch no qemu runs): `qemu-img commit -d O` and `qemu-img rebase
//!   -u -b B` of every image backed by O (unsafe rebase is right: B now holds O's data).
//!
//! B must back nothing but O: after a revert to S, the revert overlays also stand on B and a
//! merge would change what they read. Such a disk keeps its files (every view stays intact) and
//! only the metadata goes. Stored `<domain>`s of other snapshots that name O are rewritten to B,
//! the definition too when O was the top; the files are removed only after the metadata is
//! written. A journal record ([`super::journal`]) precedes the first image change: a crash is
//! settled by [`roll_forward`] at the next open (commit is idempotent).

use std::{
    fs::{self, File},
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use virtplug_plugin_sdk::{
    Edit, Error, Result, codes,
    flags::{domain_state as st, snapshot_delete as df},
    model::{
        store::DomainRecord,
        tree::RedefineFlags,
        xml::{SnapshotDef, SnapshotMode},
    },
};

use super::{
    domxml::{Switch, switch_disks},
    journal::{Merge, Step},
    revert::{frozen_disks, qemu_img},
};
use crate::{
    domain::QemuDef,
    driver::{Inner, QemuDriver, is_active, reason},
    img, process,
    qmp::Qmp,
};

/// The backing file named in the qcow2 header of `path` (resolved against its directory).
pub(crate) fn backing_file(path: &Path) -> Option<PathBuf> {
    let mut f = File::open(path).ok()?;
    let mut hdr = [0u8; 20];
    f.read_exact(&mut hdr).ok()?;
    if &hdr[0..4] != b"QFI\xfb" {
        return None;
    }
    let off = u64::from_be_bytes(hdr[8..16].try_into().ok()?);
    let len = u32::from_be_bytes(hdr[16..20].try_into().ok()?) as usize;
    if off == 0 || len == 0 || len > 4096 {
        return None;
    }
    let mut name = vec![0u8; len];
    f.seek(SeekFrom::Start(off)).ok()?;
    f.read_exact(&mut name).ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&name).into_owned());
    Some(if p.is_absolute() { p } else { path.parent().unwrap_or(Path::new("/")).join(p) })
}

/// Images backed by `img`: the qcow2 files of every directory in `dirs` and of `img`'s own.
fn dependants(img: &Path, dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = dirs.to_vec();
    if let Some(d) = img.parent() {
        all.push(d.to_path_buf());
    }
    all.sort();
    all.dedup();
    let mut out: Vec<PathBuf> = all
        .iter()
        .filter_map(|d| fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten().map(|e| e.path()))
        .filter(|p| p.is_file() && backing_file(p).as_deref() == Some(img))
        .collect();
    out.sort();
    out
}

/// The chain of `top` (top first), by the images' headers.
fn chain(top: &Path) -> Vec<PathBuf> {
    let mut out = vec![top.to_path_buf()];
    while let Some(b) = out.last().and_then(|p| backing_file(p)) {
        if out.contains(&b) || out.len() > 256 {
            break;
        }
        out.push(b);
    }
    out
}

/// Whether deleting `snap` with `flags` touches an external snapshot (then this module does it).
pub(crate) fn involved(g: &mut Inner, d: &DomainRecord, snap: &str, flags: u32) -> Result<bool> {
    for v in victims(g, d, snap, flags)? {
        if g.snap_def(&d.uuid, &v)?.is_external() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What a delete removes, deepest first.
fn victims(g: &mut Inner, d: &DomainRecord, snap: &str, flags: u32) -> Result<Vec<String>> {
    let all = g.snaps(&d.uuid)?;
    let mut out: Vec<String> = Vec::new();
    if flags & (df::CHILDREN | df::CHILDREN_ONLY) != 0 {
        let mut frontier = vec![snap.to_owned()];
        while let Some(p) = frontier.pop() {
            for c in all.iter().filter(|s| s.parent.as_deref() == Some(p.as_str())) {
                out.push(c.name.clone());
                frontier.push(c.name.clone());
            }
        }
        out.reverse();
    }
    if flags & df::CHILDREN_ONLY == 0 {
        out.push(snap.to_owned());
    }
    Ok(out)
}

/// `snapshot_delete` of a tree that holds external snapshots: one snapshot at a time, deepest
/// first; internal ones through the internal path. METADATA_ONLY never reaches here. Each
/// snapshot's delete claims the domain on a fleet store itself; the reads here need not.
pub fn delete(drv: &QemuDriver, dom: &str, snap: &str, flags: u32) -> Result<()> {
    let list = {
        let mut g = drv.lock()?;
        let d = drv.domain_for_change(&mut g, dom)?;
        g.snap(&d.uuid, snap)?;
        victims(&mut g, &d, snap, flags)?
    };
    for v in list {
        let external = {
            let mut g = drv.lock()?;
            let d = drv.domain_for_change(&mut g, dom)?;
            g.snap_def(&d.uuid, &v)?.is_external()
        };
        if external {
            delete_one(drv, dom, &v)?;
        } else {
            crate::snapshot::delete(drv, dom, &v, 0)?;
        }
    }
    Ok(())
}

/// The plan of one external snapshot's delete.
struct Plan {
    step: Step,
    /// Per merge: the disk target and whether qemu runs it (O in its chain).
    live: Vec<(String, bool)>,
    /// Other snapshots whose stored `<domain>` changes.
    rewrites: Vec<(String, String)>,
}

/// `xml` with every disk whose source is a merged overlay pointed at its frozen image; `None`
/// when no disk names one.
fn repoint(xml: &str, merges: &[Merge]) -> Result<Option<String>> {
    let Ok(q) = QemuDef::parse(xml) else { return Ok(None) };
    let sw: Vec<Switch> = merges
        .iter()
        .flat_map(|m| {
            q.disks.iter().filter(|k| k.path == m.overlay).map(|k| Switch {
                target: k.target.clone(),
                source: m.frozen.clone(),
                format: m.frozen_format.clone(),
            })
        })
        .collect();
    if sw.is_empty() { Ok(None) } else { switch_disks(xml, &sw).map(Some) }
}

/// The other snapshots whose stored `<domain>` names a merged overlay, with their new domain.
fn rewrites(g: &mut Inner, d: &DomainRecord, snap: &str, merges: &[Merge]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for other in g.snaps(&d.uuid)? {
        if other.name == snap {
            continue;
        }
        let odef = g.snap_def(&d.uuid, &other.name)?;
        if let Some(x) = odef.domain.as_deref().map(|x| repoint(x, merges)).transpose()?.flatten() {
            out.push((other.name.clone(), x));
        }
    }
    Ok(out)
}

fn plan(g: &mut Inner, d: &DomainRecord, sdef: &SnapshotDef) -> Result<Plan> {
    let dom_xml = sdef.domain.as_deref().ok_or_else(|| {
        Error::new(
            codes::SNAPSHOT_REVERT_RISKY,
            format!("snapshot '{}' lacks domain '{}' rollback info", sdef.name, d.name),
        )
    })?;
    let target = QemuDef::parse(dom_xml)?;
    let cur = QemuDef::parse(&d.xml)?;
    let active = is_active(d.state);
    let dirs: Vec<PathBuf> = cur.disks.iter().filter_map(|k| k.path.parent().map(Path::to_path_buf)).collect();
    let mut merges = Vec::new();
    let mut live = Vec::new();
    let mut switches = Vec::new();
    for (t, frozen, fmt) in frozen_disks(sdef, &target)? {
        let overlay = sdef
            .disks
            .iter()
            .find(|s| s.name == t)
            .and_then(|s| s.source.clone())
            .map(PathBuf::from)
            .ok_or_else(|| Error::internal(format!("snapshot disk '{t}' has no overlay")))?;
        fs::metadata(&overlay).map_err(|e| img::missing(&overlay, &e))?;
        fs::metadata(&frozen).map_err(|e| img::missing(&frozen, &e))?;
        if backing_file(&overlay).as_deref() != Some(frozen.as_path()) {
            return Err(Error::operation_invalid("snapshot VM disk source and parent disk source are not the same"));
        }
        let mut deps = dependants(&overlay, &dirs);
        let others: Vec<PathBuf> = dependants(&frozen, &dirs).into_iter().filter(|p| *p != overlay).collect();
        if !others.is_empty() {
            continue; // a revert branched off at this snapshot: merging would change its view
        }
        let top = cur.disks.iter().find(|k| k.target == t).map(|k| k.path.clone());
        let in_chain = active && top.as_ref().is_some_and(|p| chain(p).contains(&overlay));
        if top.as_deref() == Some(overlay.as_path()) {
            switches.push(Switch { target: t.clone(), source: frozen.clone(), format: fmt.clone() });
        }
        deps.retain(|p| p != &overlay);
        live.push((t, in_chain));
        merges.push(Merge { overlay, frozen, frozen_format: fmt, dependants: deps });
    }
    let new_xml = if switches.is_empty() { d.xml.clone() } else { switch_disks(&d.xml, &switches)? };
    let rewrites = rewrites(g, d, &sdef.name, &merges)?;
    let step = Step {
        op: "delete".into(),
        snapshot: sdef.name.clone(),
        old_domain_xml: d.xml.clone(),
        new_domain_xml: new_xml,
        created: Vec::new(),
        merges,
        remove: sdef
            .memory
            .as_ref()
            .filter(|m| m.mode == SnapshotMode::External)
            .and_then(|m| m.file.clone())
            .map(PathBuf::from)
            .into_iter()
            .collect(),
    };
    Ok(Plan { step, live, rewrites })
}

fn delete_one(drv: &QemuDriver, dom: &str, snap: &str) -> Result<()> {
    let mut g = drv.lock()?;
    let d = drv.snapshot_target(&mut g, dom)?;
    let sdef = g.snap_def(&d.uuid, snap)?;
    let p = plan(&mut g, &d, &sdef)?;
    p.step.write(&drv.cfg, &d.uuid)?;
    for (k, (m, (target, live))) in p.step.merges.iter().zip(&p.live).enumerate() {
        let res = if *live { commit_live(drv, &mut g, &d, target, m) } else { commit_offline(m) };
        if let Err(e) = res {
            if k == 0 && e.code == codes::OPERATION_INVALID {
                // a locked image refused before anything was written: nothing to settle
                Step::remove(&drv.cfg, &d.uuid);
                return Err(e);
            }
            let e = Error::new(
                codes::OPERATION_FAILED,
                format!("block commit failed while deleting disk '{target}' snapshot: '{}'", e.message),
            );
            // qemu gone: nothing holds the images, so the merge is finished offline now
            if *live && !process::load(&drv.cfg, &d.uuid).is_some_and(|rt| process::alive(rt.pid, &rt.uuid)) {
                drv.mark_stopped(&mut g, &d, reason::SHUTOFF_CRASHED)?;
                let d = g.store.domain_by_uuid(&d.uuid)?;
                roll_forward(drv, &mut g, &d, &p.step)?;
                Step::remove(&drv.cfg, &d.uuid);
            }
            return Err(e);
        }
    }
    if super::journal::fault("delete-crash") {
        return Err(Error::internal("fault injected after the merge"));
    }
    finish(drv, &mut g, &d, &p.step, &p.rewrites)
}

/// Metadata (snapshot gone, other snapshots' domains and the definition rewritten) in one
/// transaction, then the merged files, then the record.
fn finish(drv: &QemuDriver, g: &mut Inner, d: &DomainRecord, step: &Step, rewrites: &[(String, String)]) -> Result<()> {
    let new_def = (step.new_domain_xml != d.xml).then(|| QemuDef::parse(&step.new_domain_xml)).transpose()?;
    // a settled record repeats only what is missing: the snapshot may be gone already
    let gone = g.snap(&d.uuid, &step.snapshot).ok();
    let mut edits: Vec<Edit> = gone.iter().map(|s| Edit::Delete(s.name.clone(), 0)).collect();
    for (name, xml) in rewrites {
        let mut def = g.snap_def(&d.uuid, name)?;
        def.domain = Some(xml.clone());
        if let Some(s) = gone.as_ref().filter(|s| def.parent.as_deref() == Some(s.name.as_str())) {
            // the delete before it reparents the children of the deleted snapshot
            def.parent.clone_from(&s.parent);
        }
        let rf = RedefineFlags { current: false, disk_only: def.state == st::DISK_SNAPSHOT };
        edits.push(Edit::Redefine(def, rf));
    }
    g.commit(&d.uuid, &edits, |w| match &new_def {
        Some(n) => w.define_domain(&n.def, d.state, d.reason, d.id).map(drop),
        None => Ok(()),
    })?;
    for m in &step.merges {
        let _ = fs::remove_file(&m.overlay);
    }
    for f in &step.remove {
        let _ = fs::remove_file(f);
    }
    Step::remove(&drv.cfg, &d.uuid);
    Ok(())
}

/// `qemu-img commit -d O` into its backing B, then every dependant repointed at B.
fn commit_offline(m: &Merge) -> Result<()> {
    let o = m.overlay.to_string_lossy();
    if m.overlay.exists() {
        qemu_img(&["commit", "-q", "-f", "qcow2", "-d", &o])?;
    }
    rebase_dependants(m)
}

fn rebase_dependants(m: &Merge) -> Result<()> {
    let b = m.frozen.to_string_lossy();
    for c in &m.dependants {
        if backing_file(c).as_deref() == Some(m.frozen.as_path()) {
            continue;
        }
        qemu_img(&["rebase", "-q", "-u", "-f", "qcow2", "-F", &m.frozen_format, "-b", &b, &c.to_string_lossy()])?;
    }
    Ok(())
}

/// The format node qemu opened for `path`.
pub(crate) fn node_of(q: &mut Qmp, path: &Path) -> Result<String> {
    let v = q
        .execute("query-named-block-nodes", Some(json!({"flat": true})))
        .map_err(|e| Error::new(codes::OPERATION_FAILED, format!("query-named-block-nodes: {e}")))?;
    let want = path.to_string_lossy();
    v.as_array()
        .and_then(|a| a.iter().find(|n| n["file"].as_str() == Some(&*want) && n["drv"].as_str() != Some("file")))
        .and_then(|n| n["node-name"].as_str().map(str::to_owned))
        .ok_or_else(|| Error::operation_invalid("could not find base disk source in disk source chain"))
}

/// Polls `query-jobs` until job `id` reaches one of `want` (or fails / vanishes).
fn wait_job(q: &mut Qmp, id: &str, want: &[&str], limit: Duration) -> Result<String> {
    let end = Instant::now() + limit;
    loop {
        let jobs = q.execute("query-jobs", None).map_err(|e| Error::new(codes::OPERATION_FAILED, e.to_string()))?;
        let job: Option<Value> = jobs.as_array().and_then(|a| a.iter().find(|j| j["id"].as_str() == Some(id))).cloned();
        let Some(job) = job else { return Err(Error::new(codes::OPERATION_FAILED, format!("job {id} vanished"))) };
        let status = job["status"].as_str().unwrap_or_default().to_owned();
        if let Some(err) = job["error"].as_str() {
            let _ = q.execute("job-dismiss", Some(json!({"id": id})));
            return Err(Error::new(codes::OPERATION_FAILED, err.to_owned()));
        }
        if want.contains(&status.as_str()) {
            return Ok(status);
        }
        if status == "concluded" {
            return Ok(status);
        }
        if Instant::now() > end {
            let _ = q.execute("job-cancel", Some(json!({"id": id})));
            return Err(Error::new(codes::OPERATION_FAILED, format!("job {id} did not finish in time")));
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// The §9.3 sequence for one disk.
fn commit_live(drv: &QemuDriver, g: &mut Inner, d: &DomainRecord, target: &str, m: &Merge) -> Result<()> {
    let limit = drv.timeout().saturating_mul(120);
    let q = drv.qmp(g, d)?;
    let device = super::top_node(q, target)?;
    let top = node_of(q, &m.overlay)?;
    let base = node_of(q, &m.frozen)?;
    // job ids must be identifiers; implicit node names start with '#'
    let id = format!("commit-{target}-{}", top.trim_start_matches('#'));
    let active = device == top;
    let mut args = json!({"device": device, "job-id": id, "top-node": top, "base-node": base,
                          "auto-finalize": active, "auto-dismiss": false});
    if !active {
        args["backing-file"] = json!(m.frozen.to_string_lossy());
    }
    let err = |e: crate::qmp::QmpError| Error::new(codes::OPERATION_FAILED, e.to_string());
    q.execute("block-commit", Some(args)).map_err(err)?;
    if super::journal::fault("kill-during-commit")
        && let Some(rt) = process::load(&drv.cfg, &d.uuid)
    {
        process::signal(rt.pid, libc::SIGKILL);
        process::wait_gone(rt.pid, &rt.uuid, Duration::from_secs(5));
    }
    if active {
        if wait_job(q, &id, &["ready"], limit)? == "ready" {
            q.execute("job-complete", Some(json!({"id": id}))).map_err(err)?;
        }
    } else if wait_job(q, &id, &["pending"], limit)? == "pending" {
        q.execute("job-finalize", Some(json!({"id": id}))).map_err(err)?;
    }
    wait_job(q, &id, &["concluded"], limit)?;
    q.execute("job-dismiss", Some(json!({"id": id}))).map_err(err)?;
    if active {
        // the overlay's nodes left the graph; those qemu made implicitly are gone already
        let storage = q
            .execute("query-named-block-nodes", Some(json!({"flat": true})))
            .ok()
            .and_then(|v| {
                v.as_array()?
                    .iter()
                    .find(|n| n["node-name"].as_str() == Some(&top))
                    .and_then(|n| n.pointer("/image/filename").and_then(Value::as_str).map(str::to_owned))
            })
            .is_some();
        let _ = q.execute("blockdev-del", Some(json!({"node-name": top})));
        if storage && top.ends_with("-format") {
            let _ = q.execute("blockdev-del", Some(json!({"node-name": top.replace("-format", "-storage")})));
        } else if let Some(s) = top.strip_suffix("-f") {
            let _ = q.execute("blockdev-del", Some(json!({"node-name": format!("{s}-s")})));
        }
    }
    // images outside qemu's chain that stood on the overlay
    rebase_dependants(&Merge {
        dependants: m.dependants.iter().filter(|c| !in_qemu(q, c)).cloned().collect(),
        ..m.clone()
    })
}

fn in_qemu(q: &mut Qmp, path: &Path) -> bool {
    node_of(q, path).is_ok()
}

/// Settles a leftover delete record: the merge is run again offline (the domain is shut off,
/// or the record would not have outlived its qemu), then the metadata and files.
pub(crate) fn roll_forward(drv: &QemuDriver, g: &mut Inner, d: &DomainRecord, step: &Step) -> Result<()> {
    // a live qemu still holding a merged overlay keeps the record for a later open (its job
    // died with the process that ran it); a dead one (no monitor) holds nothing
    if is_active(d.state)
        && let Ok(q) = drv.qmp(g, d)
        && step.merges.iter().any(|m| m.overlay.exists() && node_of(q, &m.overlay).is_ok())
    {
        return Err(Error::operation_invalid("a running qemu still holds an overlay being merged"));
    }
    let live = is_active(d.state) && drv.qmp(g, d).is_ok();
    for m in &step.merges {
        if live {
            // qemu finished this merge (the overlay left its graph): only the images outside
            // its graph that stood on the overlay are left to repoint
            let q = drv.qmp(g, d)?;
            let off: Vec<PathBuf> = m.dependants.iter().filter(|c| !in_qemu(q, c)).cloned().collect();
            rebase_dependants(&Merge { dependants: off, ..m.clone() })?;
        } else {
            commit_offline(m)?;
        }
    }
    let rewrites = rewrites(g, d, &step.snapshot, &step.merges)?;
    let mut step = step.clone();
    if d.xml == step.old_domain_xml || d.state == st::SHUTOFF {
        step.new_domain_xml = repoint(&d.xml, &step.merges)?.unwrap_or_else(|| d.xml.clone());
    }
    finish(drv, g, d, &step, &rewrites)
}
