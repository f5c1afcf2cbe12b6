//! CLI cold start: `virtplug -c mock:///<dir> snapshot-list test` against
//! `virsh -c test:///default snapshot-list test`, 30 runs each, interleaved, with the floor
//! measured in the same run: spawning and reaping `/bin/true` (a process that does no work).
//! Targets: issue 2, no slower than virsh; issue 19, at most 3 ms and at most 0.25x virsh.

use std::{path::PathBuf, process::Command};

use anyhow::{Context, Result};

use crate::{
    proc,
    report::{self, Row, Target, Unit},
};

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

/// Prints the comparison.
pub fn run() -> Result<()> {
    report::header("CLI cold start: snapshot-list of an empty domain (n = 30, median wall, peak RSS)");
    let exe_dir = std::env::current_exe()?.parent().context("exe dir")?.to_owned();
    let virtplug = exe_dir.join("virtplug");
    let state = std::env::temp_dir().join(format!("virtplug-bench-cold-{}", std::process::id()));
    let uri = format!("mock://{}", state.display());
    let virsh = which("virsh");
    let truth = which("true").unwrap_or_else(|| PathBuf::from("/bin/true"));
    // First run creates the store; not measured.
    proc::run(Command::new(&virtplug).args(["-c", &uri, "snapshot-list", "test"]))?;
    let (mut ours, mut theirs, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ours_rss, mut theirs_rss, mut floor_rss) = (0, 0, 0);
    for _ in 0..30 {
        let run = proc::run(&mut Command::new(&truth))?;
        floor.push(run.wall);
        floor_rss = floor_rss.max(run.max_rss_kib);
        let run = proc::run(Command::new(&virtplug).args(["-c", &uri, "snapshot-list", "test"]))?;
        ours.push(run.wall);
        ours_rss = ours_rss.max(run.max_rss_kib);
        if let Some(virsh) = &virsh {
            let run = proc::run(Command::new(virsh).args(["-c", "test:///default", "snapshot-list", "test"]))?;
            theirs.push(run.wall);
            theirs_rss = theirs_rss.max(run.max_rss_kib);
        }
    }
    let _ = std::fs::remove_dir_all(&state);
    let ours = proc::median(&mut ours).as_secs_f64();
    let floor = proc::median(&mut floor).as_secs_f64();
    let theirs = virsh.as_ref().map(|_| proc::median(&mut theirs).as_secs_f64());
    let name = "virtplug snapshot-list (wall)";
    let row = || Row::new("cold-start", name, Unit::Time, ours).floor(floor).peer_opt(theirs);
    row().target(Target::AtMost(3e-3)).emit();
    row().target(Target::Peer(0.25)).emit();
    Row::new("cold-start", "virtplug snapshot-list (peak RSS)", Unit::Kib, ours_rss as f64)
        .floor(floor_rss as f64)
        .peer_opt(virsh.as_ref().map(|_| theirs_rss as f64))
        .emit();
    report::note("floor: spawn and reap /bin/true; peer: virsh -c test:///default snapshot-list test");
    if virsh.is_none() {
        report::note("virsh: absent (install libvirt-clients to measure the peer in the same run)");
    }
    println!();
    Ok(())
}
