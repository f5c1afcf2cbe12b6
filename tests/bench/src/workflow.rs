//! The founding workflow at N = 1,000, 4,000 and 16,000 snapshots, as a chain and as a tree
//! (after every 4th create, revert to snapshot i/2), through the host library API on the mock
//! with its durable store, and the same steps on libvirt's test driver through python3-libvirt
//! (`peer_libvirt.py`), in the same run. Phases: create all, dump every XML (secure), drop all
//! metadata, redefine all parents first (the current one with CURRENT), walk every parent,
//! delete from the roots with CHILDREN. Ours also times the one-call hierarchy import.
//!
//! Targets (issue 3): at 16,000, total at least 20x faster than libvirt at the default sync
//! level; 16,000 costs at most 20x what 1,000 costs.

use std::{
    collections::BTreeMap,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use virtplug_host::{Connection, Registry, flags::*};

use crate::proc;

const PHASES: [&str; 6] = ["create", "dump", "drop", "redefine", "walk", "delete"];

fn timed<T>(timings: &mut Vec<(String, Duration)>, phase: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let value = f()?;
    timings.push((phase.to_owned(), start.elapsed()));
    Ok(value)
}

/// Child side: one (n, shape, sync) run in a fresh state directory; prints `phase seconds`.
pub fn one(args: &[String]) -> Result<()> {
    let n: usize = args.first().context("n")?.parse()?;
    let tree = args.get(1).is_some_and(|s| s == "tree");
    let dir = std::env::temp_dir().join(format!("virtplug-bench-wf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let registry = Registry::from_env()?;
    let conn = Connection::open(&registry, &format!("mock://{}", dir.display()), false)?;
    let dom = "test";
    let mut t = Vec::new();
    timed(&mut t, "create", || {
        for i in 0..n {
            conn.snapshot_create(dom, &format!("<domainsnapshot><name>s{i}</name></domainsnapshot>"), 0)?;
            if tree && i % 4 == 3 {
                conn.snapshot_revert(dom, &format!("s{}", i / 2), 0)?;
            }
        }
        Ok(())
    })?;
    let (dumped, current) = timed(&mut t, "dump", || {
        let order = conn.snapshot_list(dom, snapshot_list::TOPOLOGICAL)?;
        let current = order.iter().find(|s| s.current).map(|s| s.name.clone());
        let xmls = order
            .iter()
            .map(|s| conn.snapshot_xml(dom, &s.name, snapshot_xml::SECURE).map(|x| (s.name.clone(), x)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((xmls, current))
    })?;
    let drop_all = |conn: &Connection| -> Result<()> {
        for root in conn.snapshot_list(dom, snapshot_list::ROOTS)? {
            conn.snapshot_delete(dom, &root.name, snapshot_delete::CHILDREN | snapshot_delete::METADATA_ONLY)?;
        }
        Ok(())
    };
    timed(&mut t, "drop", || drop_all(&conn))?;
    timed(&mut t, "redefine", || {
        for (name, xml) in &dumped {
            let mut flags = snapshot_create::REDEFINE;
            if Some(name) == current.as_ref() {
                flags |= snapshot_create::CURRENT;
            }
            conn.snapshot_create(dom, xml, flags)?;
        }
        Ok(())
    })?;
    timed(&mut t, "walk", || {
        for (name, _) in &dumped {
            let _ = conn.snapshot_lookup(dom, name)?.parent;
        }
        Ok(())
    })?;
    timed(&mut t, "delete", || {
        for root in conn.snapshot_list(dom, snapshot_list::ROOTS)? {
            conn.snapshot_delete(dom, &root.name, snapshot_delete::CHILDREN)?;
        }
        Ok(())
    })?;
    // Not part of the libvirt comparison: the whole hierarchy in one transaction.
    let xmls: Vec<String> = dumped.iter().map(|(_, x)| x.clone()).collect();
    timed(&mut t, "import", || Ok(conn.snapshot_import(dom, &xmls, current.as_deref(), 0)?))?;
    for (phase, d) in t {
        println!("{phase} {}", d.as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn parse(stdout: &str) -> BTreeMap<String, f64> {
    stdout
        .lines()
        .filter_map(|l| l.split_once(' ').and_then(|(k, v)| v.trim().parse().ok().map(|v| (k.to_owned(), v))))
        .collect()
}

fn peer_available() -> bool {
    Command::new("/usr/bin/python3").args(["-c", "import libvirt"]).output().is_ok_and(|o| o.status.success())
}

/// Parent side: the table. `args` may restrict sizes, e.g. `1000 4000`.
pub fn run(args: &[String]) -> Result<()> {
    let sizes: Vec<usize> =
        if args.is_empty() { vec![1000, 4000, 16000] } else { args.iter().filter_map(|a| a.parse().ok()).collect() };
    let exe = std::env::current_exe()?;
    let peer = peer_available();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peer_libvirt.py");
    println!(
        "## Founding workflow: virtplug (host API, mock, durable SQLite store) vs libvirt 9.0 test driver (in memory)"
    );
    if !peer {
        println!("libvirt peer: absent (install python3-libvirt to measure it in the same run)");
    }
    println!(
        "{:<6} {:>6} {:<8} {}  {:>9} | {:>8} | {:>9} {:>7}",
        "shape",
        "N",
        "sync",
        PHASES.map(|p| format!("{p:>8}")).join(" "),
        "total s",
        "import s",
        "libvirt s",
        "ratio"
    );
    for shape in ["chain", "tree"] {
        let mut totals: Vec<(usize, f64)> = Vec::new();
        for &n in &sizes {
            for sync in ["normal", "full"] {
                let ours = proc::run(
                    Command::new(&exe).args(["workflow-one", &n.to_string(), shape]).env("VIRTPLUG_MOCK_SYNC", sync),
                )?;
                let ours = parse(&ours.stdout);
                let total: f64 = PHASES.iter().map(|p| ours.get(*p).copied().unwrap_or(0.0)).sum();
                let theirs = if peer && sync == "normal" {
                    let out = proc::run(
                        Command::new("/usr/bin/python3").arg(&script).args([n.to_string(), shape.to_owned()]),
                    )?;
                    Some(PHASES.iter().map(|p| parse(&out.stdout).get(*p).copied().unwrap_or(0.0)).sum::<f64>())
                } else {
                    None
                };
                if sync == "normal" {
                    totals.push((n, total));
                }
                println!(
                    "{:<6} {:>6} {:<8} {}  {:>9.3} | {:>8.3} | {:>9} {:>7}",
                    shape,
                    n,
                    sync,
                    PHASES.map(|p| format!("{:>8.3}", ours.get(p).copied().unwrap_or(0.0))).join(" "),
                    total,
                    ours.get("import").copied().unwrap_or(0.0),
                    theirs.map_or("-".to_owned(), |v| format!("{v:.3}")),
                    theirs.map_or("-".to_owned(), |v| format!("{:.1}x", v / total.max(1e-9))),
                );
            }
        }
        if let (Some(first), Some(last)) = (totals.first(), totals.last())
            && last.0 > first.0
        {
            println!(
                "{shape}: growth {} -> {}: {:.1}x the time for {:.0}x the snapshots (linear target: <= {:.0}x)",
                first.0,
                last.0,
                last.1 / first.1.max(1e-9),
                last.0 as f64 / first.0 as f64,
                1.25 * last.0 as f64 / first.0 as f64
            );
        }
    }
    println!();
    Ok(())
}
