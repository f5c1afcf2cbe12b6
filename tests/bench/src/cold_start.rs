//! CLI cold start: `virtplug -c mock:///<dir> snapshot-list test` against
//! `virsh -c test:///default snapshot-list test`, 30 runs each, interleaved.
//! Target (issue 2): no slower than virsh.

use std::{path::PathBuf, process::Command, time::Duration};

use anyhow::{Context, Result};

use crate::proc;

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

/// Prints the comparison.
pub fn run() -> Result<()> {
    println!("## CLI cold start: snapshot-list of an empty domain (n = 30, median wall, peak RSS)");
    let exe_dir = std::env::current_exe()?.parent().context("exe dir")?.to_owned();
    let virtplug = exe_dir.join("virtplug");
    let state = std::env::temp_dir().join(format!("virtplug-bench-cold-{}", std::process::id()));
    let uri = format!("mock://{}", state.display());
    let virsh = which("virsh");
    // First run creates the store; not measured.
    proc::run(Command::new(&virtplug).args(["-c", &uri, "snapshot-list", "test"]))?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut ours_rss, mut theirs_rss) = (0, 0);
    for _ in 0..30 {
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
    let ours_median = proc::median(&mut ours);
    println!("virtplug -c mock:///… snapshot-list test   {:>10}   {:>6} KiB", proc::ms(ours_median), ours_rss);
    if virsh.is_some() {
        let theirs_median = proc::median(&mut theirs);
        println!("virsh -c test:///default snapshot-list test {:>10}   {:>6} KiB", proc::ms(theirs_median), theirs_rss);
        let ratio = ours_median.as_secs_f64() / theirs_median.max(Duration::from_nanos(1)).as_secs_f64();
        println!("ratio virtplug/virsh: {ratio:.2} (target <= 1.00)");
    } else {
        println!("virsh: absent (install libvirt-clients to measure the peer in the same run)");
    }
    println!();
    Ok(())
}
