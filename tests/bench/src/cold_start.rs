//! CLI cold start: `virtplug -c mock:///<dir> snapshot-list test` against
//! `virsh -c test:///default snapshot-list test`, with the floor measured in the same run:
//! spawning and reaping `/bin/true` (a process that does no work).
//! Targets: issue 2, no slower than virsh; issue 19, at most 3 ms and at most 0.25x virsh, with
//! the four real plugins installed.
//!
//! - virtplug runs as installed (`cargo xtask install`'s layout in a temporary prefix:
//!   `bin/virtplug` and the four real plugins in `lib/virtplug/plugins`, hard links to the
//!   release build), not from `target/release`, whose 70-odd build products it would list.
//! - Each program runs in blocks, as a cold-start tool such as hyperfine does: three warm-up
//!   runs, then [`RUNS`] timed runs one after the other; the blocks of the three programs take
//!   turns over [`ROUNDS`] rounds, and each figure is the median of all its timed runs. One run
//!   of each after the other instead (an earlier version of this section) charged each program
//!   for the caches the one before left cold: virsh's 20 MiB process before each virtplug run
//!   added about 0.6 ms to virtplug's median and 0.1 ms to /bin/true's.
//! - Peak RSS comes from GNU time (`/usr/bin/time -f %M`) when installed: `wait4`'s figure for
//!   a child spawned from this process includes this process's own peak (the child shares its
//!   memory until it execs), so it cannot tell the programs apart.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result};

use crate::{
    proc,
    report::{self, Row, Target, Unit},
};

/// Timed runs of each program per round.
const RUNS: usize = 20;
/// Rounds; each runs every program's block once.
const ROUNDS: usize = 3;
/// The real plugins an installed virtplug has.
const PLUGINS: [&str; 4] = ["mock", "qemu", "virtualbox", "vsphere"];

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

/// `from` at `to`: a hard link, or a copy where the two are on different file systems.
fn place(from: &Path, to: &Path) -> Result<()> {
    std::fs::hard_link(from, to)
        .or_else(|_| std::fs::copy(from, to).map(|_| ()))
        .with_context(|| format!("placing {} at {}", from.display(), to.display()))
}

/// `cargo xtask install`'s layout under `prefix`, from the release build in `built`; the path
/// of the installed `virtplug`.
fn install(built: &Path, prefix: &Path) -> Result<PathBuf> {
    let bin = prefix.join("bin");
    let plugins = prefix.join("lib/virtplug/plugins");
    std::fs::create_dir_all(&bin)?;
    std::fs::create_dir_all(&plugins)?;
    let virtplug = bin.join("virtplug");
    place(&built.join("virtplug"), &virtplug)?;
    for name in PLUGINS {
        let file = format!("libvirtplug_plugin_{name}.so");
        place(&built.join(&file), &plugins.join(&file))?;
    }
    Ok(virtplug)
}

/// A program's command line, run with no plugin directory of the caller's environment.
fn command(argv: &[String]) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).env_remove("VIRTPLUG_PLUGIN_DIR").env_remove("VIRTPLUG_CONFIG");
    cmd
}

/// The median wall time of each program over [`ROUNDS`] rounds of blocks.
fn medians(programs: &[Vec<String>]) -> Result<Vec<f64>> {
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); programs.len()];
    for _ in 0..ROUNDS {
        for (argv, samples) in programs.iter().zip(&mut samples) {
            for _ in 0..3 {
                proc::run(&mut command(argv))?;
            }
            for _ in 0..RUNS {
                samples.push(proc::run(&mut command(argv))?.wall);
            }
        }
    }
    Ok(samples.iter_mut().map(|s| proc::median(s).as_secs_f64()).collect())
}

/// Peak RSS in KiB through GNU time; `None` without it.
fn peak_rss(time: &Path, argv: &[String]) -> Result<Option<f64>> {
    let mut cmd = command(&[time.display().to_string(), "-f".to_owned(), "%M".to_owned()]);
    cmd.args(argv);
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    Ok(text.lines().last().and_then(|l| l.trim().parse::<f64>().ok()))
}

/// Prints the comparison.
pub fn run() -> Result<()> {
    report::header(&format!(
        "CLI cold start: snapshot-list of an empty domain, installed (median wall of {} runs in blocks, peak RSS)",
        RUNS * ROUNDS
    ));
    let built = std::env::current_exe()?.parent().context("exe dir")?.to_owned();
    let prefix = std::env::temp_dir().join(format!("virtplug-bench-cold-{}", std::process::id()));
    let result = measure(&built, &prefix);
    let _ = std::fs::remove_dir_all(&prefix);
    result
}

fn measure(built: &Path, prefix: &Path) -> Result<()> {
    let virtplug = install(built, prefix)?;
    let uri = format!("mock://{}", prefix.join("state").display());
    let ours: Vec<String> =
        [virtplug.display().to_string(), "-c".into(), uri, "snapshot-list".into(), "test".into()].into();
    let truth = which("true").unwrap_or_else(|| PathBuf::from("/bin/true"));
    let floor: Vec<String> = vec![truth.display().to_string()];
    let virsh = which("virsh").map(|v| {
        [v.display().to_string(), "-c".into(), "test:///default".into(), "snapshot-list".into(), "test".into()]
    });
    // The first run creates the store; not measured.
    proc::run(&mut command(&ours))?;
    let mut programs = vec![floor.clone(), ours.clone()];
    programs.extend(virsh.iter().map(|v| v.to_vec()));
    let wall = medians(&programs)?;
    let (floor_wall, ours_wall, theirs_wall) = (wall[0], wall[1], wall.get(2).copied());
    let name = "virtplug snapshot-list (wall)";
    let row = || Row::new("cold-start", name, Unit::Time, ours_wall).floor(floor_wall).peer_opt(theirs_wall);
    row().target(Target::AtMost(3e-3)).emit();
    row().target(Target::Peer(0.25)).emit();
    let time = Path::new("/usr/bin/time");
    match time.is_file() {
        true => {
            let ours_rss = peak_rss(time, &ours)?.context("GNU time printed no peak RSS for virtplug")?;
            let floor_rss = peak_rss(time, &floor)?;
            let theirs_rss = match &virsh {
                Some(v) => peak_rss(time, v)?,
                None => None,
            };
            Row::new("cold-start", "virtplug snapshot-list (peak RSS)", Unit::Kib, ours_rss)
                .floor_opt(floor_rss)
                .peer_opt(theirs_rss)
                .emit();
        }
        false => report::note("peak RSS: not measured (install GNU time, /usr/bin/time)"),
    }
    report::note(&format!(
        "floor: spawn and reap /bin/true; peer: virsh -c test:///default snapshot-list test; \
         virtplug installed with the plugins {}",
        PLUGINS.join(", ")
    ));
    if virsh.is_none() {
        report::note("virsh: absent (install libvirt-clients to measure the peer in the same run)");
    }
    println!();
    Ok(())
}
