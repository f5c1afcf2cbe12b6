//! Plugin load time: each plugin beside this executable, loaded in 25 fresh processes.
//! Target (issue 2): at most 1 ms per plugin.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};

use crate::{
    proc,
    report::{self, Row, Target, Unit},
};

fn plugins() -> Result<Vec<PathBuf>> {
    let dir = std::env::current_exe()?.parent().context("exe dir")?.to_owned();
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libvirtplug_plugin_") && n.ends_with(".so"))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Child side: load one plugin and print the microseconds it took.
pub fn once(path: &str) -> Result<()> {
    let start = Instant::now();
    virtplug_host::load_plugin(std::path::Path::new(path))?;
    println!("{}", start.elapsed().as_micros());
    Ok(())
}

/// Parent side: the table.
pub fn run() -> Result<()> {
    report::header("Plugin load time (fresh process each, n = 25, median; target <= 1 ms per plugin)");
    let exe = std::env::current_exe()?;
    for plugin in plugins()? {
        let mut samples = Vec::new();
        for _ in 0..25 {
            let out = proc::run(Command::new(&exe).arg("load-once").arg(&plugin))?;
            let micros: u64 = out.stdout.trim().parse().context("load-once output")?;
            samples.push(Duration::from_micros(micros));
        }
        let median = proc::median(&mut samples);
        let name = plugin.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Row::new("load", name, Unit::Time, median.as_secs_f64()).target(Target::AtMost(1e-3)).emit();
    }
    println!();
    Ok(())
}
