//! VirtualBox snapshot operations through the host library API (virtualbox plugin) against the
//! VBoxManage simulator (tests/vboxmanage-sim), driven through a wrapper script that pins
//! `VBOXSIM_HOME` and logs every invocation, so each operation's VBoxManage invocations are
//! counted and named. No peer: libvirt's vbox driver talks to VirtualBox's API, not VBoxManage.
//!
//! Per iteration (n = 30, machine powered off, setup tree `base → p1 → p2 → p3 → p4` with
//! `base` current): create `b<i>`, list, current, revert to `base`, delete `b<i>`. A bare
//! `showvminfo --machinereadable` through the same wrapper is timed too: the floor one
//! invocation costs.
//!
//! Targets: issue 7, at most two invocations per snapshot operation; issue 19, `delete
//! --children` of n snapshots at VBoxManage's floor of n+1 invocations (one snapshot per
//! `snapshot delete`; no subtree delete exists). Rows through `report.rs`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use virtplug_host::{Connection, Registry, flags::snapshot_delete};

use crate::{
    proc,
    report::{self, Row, Target, Unit},
};

const VM: &str = "benchvm";
const N: usize = 30;
const OPS: [&str; 5] = ["create", "list", "current", "revert", "delete"];

/// The simulator: beside this executable (release), else the debug build.
fn sim_binary() -> Option<PathBuf> {
    let exe_dir = std::env::current_exe().ok()?.parent()?.to_owned();
    [exe_dir.join("VBoxManage"), exe_dir.join("../debug/VBoxManage")].into_iter().find(|p| p.is_file())
}

/// The wrapper's invocation log: one line per VBoxManage run.
fn logged(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).map(|t| t.lines().map(str::to_owned).collect()).unwrap_or_default()
}

/// An invocation without its UUIDs and names, e.g. `snapshot <uuid> take`.
fn shape(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    let is_uuid = |w: &str| w.len() == 36 && w.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let keep = match words.first() {
        Some(&"snapshot") => 3,
        _ => 1,
    };
    words.iter().take(keep).map(|w| if is_uuid(w) { "<uuid>" } else { w }).collect::<Vec<_>>().join(" ")
}

/// Prints the table.
pub fn run() -> Result<()> {
    report::header(&format!(
        "VirtualBox snapshots: virtplug (host API, virtualbox plugin) on the VBoxManage simulator (n = {N}, median; target <= 2 invocations)"
    ));
    let Some(sim) = sim_binary() else {
        println!("VBoxManage simulator not built (cargo build -p vboxmanage-sim)");
        println!();
        return Ok(());
    };
    let dir = std::env::temp_dir().join(format!("virtplug-bench-vbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = measure(&sim, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!();
    Ok(())
}

fn measure(sim: &Path, dir: &Path) -> Result<()> {
    let log = dir.join("invocations.log");
    let wrapper = dir.join("VBoxManage");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nVBOXSIM_HOME='{}' exec '{}' \"$@\"\n",
        log.display(),
        dir.join("home").display(),
        sim.display()
    );
    std::fs::write(&wrapper, script)?;
    let mut perm = std::fs::metadata(&wrapper)?.permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&wrapper, perm)?;
    proc::run(Command::new(&wrapper).args(["--sim-control", "create-vm", VM]))?;
    proc::run(Command::new(&wrapper).args(["--sim-control", "set-state", VM, "poweroff"]))?;

    let mut raw = Vec::new();
    for _ in 0..N {
        raw.push(
            proc::run(Command::new(&wrapper).args(["showvminfo", VM, "--machinereadable"]).env("LC_ALL", "C"))?.wall,
        );
    }

    let registry = Registry::from_env()?;
    let conn = Connection::open(&registry, &format!("vbox:///session?vboxmanage={}", wrapper.display()), false)?;
    let create =
        |name: &str| conn.snapshot_create(VM, &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 0);
    for name in ["base", "p1", "p2", "p3", "p4"] {
        create(name)?;
    }
    conn.snapshot_revert(VM, "base", 0)?;

    let mut times: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut counts: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut which: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut timed = |op: &'static str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        let before = logged(&log).len();
        let start = Instant::now();
        f()?;
        times.entry(op).or_default().push(start.elapsed());
        let lines = logged(&log);
        counts.entry(op).or_default().push(lines.len() - before);
        which.insert(op, lines[before..].iter().map(|l| shape(l)).collect());
        Ok(())
    };
    for i in 0..N {
        let name = format!("b{i}");
        timed("create", &mut || create(&name).map(drop).map_err(Into::into))?;
        timed("list", &mut || {
            let n = conn.snapshot_list(VM, 0)?.len();
            if n != 6 {
                bail!("expected 6 snapshots, listed {n}");
            }
            Ok(())
        })?;
        timed("current", &mut || {
            if conn.snapshot_current(VM)?.map(|c| c.name) != Some(name.clone()) {
                bail!("current is not {name}");
            }
            Ok(())
        })?;
        timed("revert", &mut || Ok(conn.snapshot_revert(VM, "base", 0)?))?;
        timed("delete", &mut || Ok(conn.snapshot_delete(VM, &name, 0)?))?;
    }
    // The whole setup tree (base -> p1 -> p2 -> p3 -> p4): 5 snapshots with CHILDREN.
    let before = logged(&log).len();
    let start = Instant::now();
    conn.snapshot_delete(VM, "base", snapshot_delete::CHILDREN)?;
    let children_time = start.elapsed().as_secs_f64();
    let children_count = logged(&log).len() - before;

    let bare = proc::median(&mut raw).as_secs_f64();
    let mut shapes = Vec::new();
    for op in OPS {
        let c = counts.get(op).context("no samples")?;
        let max = c.iter().max().copied().unwrap_or(0);
        let median = proc::median(times.get_mut(op).context("no samples")?).as_secs_f64();
        let calls = which.get(op).map(|w| w.join(", ")).unwrap_or_default();
        // issue 7: at most two invocations per snapshot operation
        Row::new("vbox", format!("{op} invocations"), Unit::Count, max as f64).target(Target::AtMost(2.0)).emit();
        shapes.push(format!("{op}: {calls}"));
        // floor: that many bare invocations
        Row::new("vbox", format!("{op} time"), Unit::Time, median).floor(bare * max as f64).emit();
    }
    // VBoxManage deletes one snapshot per invocation and the Main API's deleteSnapshotAndAllChildren
    // and deleteSnapshotRange return E_NOTIMPL (reference virtualbox-backend.md §2): n deletes and
    // one read of the tree is the floor.
    Row::new("vbox", "delete --children of 5 invocations", Unit::Count, children_count as f64)
        .floor(6.0)
        .target(Target::Floor(1.0))
        .emit();
    Row::new("vbox", "delete --children of 5 time", Unit::Time, children_time).floor(bare * 6.0).emit();
    report::note(&format!("invocations: {}", shapes.join("; ")));
    report::note(
        "floor: one bare invocation (showvminfo --machinereadable via the same wrapper) per invocation the operation needs;",
    );
    report::note(
        "delete --children: n+1 (one read, one delete per snapshot) is VBoxManage's floor: no command deletes a subtree.",
    );
    Ok(())
}
