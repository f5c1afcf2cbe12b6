//! The founding workflow at N = 1,000, 4,000 and 16,000 snapshots, as a chain and as a tree
//! (after every 4th create, revert to snapshot i/2), through the host library API on the mock
//! with its durable store, and the same steps on libvirt's test driver through python3-libvirt
//! (`peer_libvirt.py`), in the same run. Phases: create all, dump every XML (secure), drop all
//! metadata, redefine all parents first (the current one with CURRENT), walk every parent,
//! delete from the roots with CHILDREN. Ours also times the one-call hierarchy import.
//!
//! Every phase is printed per operation beside its floor, measured in the same run
//! (`workflow_floor.rs`: one single-row SQLite write transaction, one indexed read).
//!
//! Targets: issue 3, at 16,000 the total at least 20x faster than libvirt at the default sync
//! level, and 16,000 costing at most 20x what 1,000 costs (per op, at most 1.25x); issue 19, at
//! 16,000 create, redefine and delete at most 1.5x the write floor, dump and walk at most 2x the
//! read floor.

use std::{
    collections::BTreeMap,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use virtplug_host::{Connection, Registry, flags::*};

use crate::{
    proc,
    report::{self, Row, Target, Unit},
};

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

/// Each key's median over `runs` (the upper one of an even count).
fn medians(runs: &[BTreeMap<String, f64>]) -> BTreeMap<String, f64> {
    let keys: std::collections::BTreeSet<&String> = runs.iter().flat_map(BTreeMap::keys).collect();
    keys.into_iter()
        .map(|k| {
            let mut v: Vec<f64> = runs.iter().filter_map(|r| r.get(k).copied()).collect();
            v.sort_by(f64::total_cmp);
            (k.clone(), v[v.len() / 2])
        })
        .collect()
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

/// Which floor a phase's per-operation cost is judged against, and the multiple (issue 19).
fn phase_floor(phase: &str) -> (&'static str, f64) {
    match phase {
        "dump" | "walk" => ("read", 2.0),
        _ => ("write", 1.5),
    }
}

/// A phase's per-operation floor from the floor `key` of one of its operations: the tree's
/// create phase also reverts to an older snapshot after every fourth create (as libvirt's side
/// of the workflow does), and each of those N/4 reverts costs at least one write floor, which
/// the phase's per-create figure carries.
fn phase_floor_of(floor: &BTreeMap<String, f64>, key: &str, phase: &str, n: usize, tree: bool) -> Option<f64> {
    let one = floor.get(key).copied()?;
    match phase {
        "create" if tree => Some(one + floor.get("write")? * reverts(n, tree) as f64 / n.max(1) as f64),
        _ => Some(one),
    }
}

/// The reverts the create phase makes (workflow-one: one after every fourth create of a tree).
fn reverts(n: usize, tree: bool) -> usize {
    if tree { n / 4 } else { 0 }
}

/// The least the whole workflow can cost on this store, from the bare floors of this run: every
/// operation the workflow makes at its floor (a create, a revert of the tree or a redefine at
/// the write floor; a dump or a walk at the read floor; the drop and the delete, one call each
/// on the single root, at one write). None when a floor was not measured.
fn workflow_floor(floor: &BTreeMap<String, f64>, n: usize, tree: bool) -> Option<f64> {
    let (write, read) = (floor.get("write")?, floor.get("read")?);
    let writes = (2 * n + reverts(n, tree) + 2) as f64;
    Some(writes * write + (2 * n) as f64 * read)
}

/// The size the targets are set at.
const TARGET_N: usize = 16000;

/// Runs of ours and of the floor per size and sync level (libvirt's, minutes long at 16,000 for
/// the chain, runs once).
const REPEATS: usize = 3;

/// Parent side: the rows. `args` may restrict sizes, e.g. `1000 4000`.
pub fn run(args: &[String]) -> Result<()> {
    let sizes: Vec<usize> =
        if args.is_empty() { vec![1000, 4000, 16000] } else { args.iter().filter_map(|a| a.parse().ok()).collect() };
    let exe = std::env::current_exe()?;
    let peer = peer_available();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("peer_libvirt.py");
    report::header(
        "Founding workflow, per operation: virtplug (host API, mock, durable SQLite store) vs its floor and libvirt 9.0's test driver (in memory)",
    );
    let mut floor_notes = Vec::new();
    for shape in ["chain", "tree"] {
        // (n, per-op seconds by phase) at the default sync level, for the growth rows.
        let mut per_op: Vec<(usize, BTreeMap<String, f64>)> = Vec::new();
        for &n in &sizes {
            for sync in ["normal", "full"] {
                // Ours and the floor, each in a fresh process, taking turns REPEATS times: each
                // figure is the median of its runs, so that one run slowed by this machine's
                // neighbours moves neither side of a ratio.
                let (mut ours, mut floor) = (Vec::new(), Vec::new());
                for _ in 0..REPEATS {
                    let one = ["workflow-one", &n.to_string(), shape];
                    ours.push(parse(&proc::run(Command::new(&exe).args(one).env("VIRTPLUG_MOCK_SYNC", sync))?.stdout));
                    let one = ["workflow-floor", &n.to_string()];
                    floor.push(parse(&proc::run(Command::new(&exe).args(one).env("VIRTPLUG_MOCK_SYNC", sync))?.stdout));
                }
                let (ours, floor) = (medians(&ours), medians(&floor));
                let theirs = if peer && sync == "normal" {
                    let out = proc::run(
                        Command::new("/usr/bin/python3").arg(&script).args([n.to_string(), shape.to_owned()]),
                    )?;
                    Some(parse(&out.stdout))
                } else {
                    None
                };
                let per = |m: &BTreeMap<String, f64>, p: &str| m.get(p).copied().unwrap_or(0.0) / n.max(1) as f64;
                let at_target = n == TARGET_N;
                for phase in PHASES.iter().chain(["import"].iter()) {
                    let (which, k) = phase_floor(phase);
                    // drop and import are not in the targets: shown against the floor only
                    let target =
                        if at_target && !matches!(*phase, "drop" | "import") { Target::Floor(k) } else { Target::None };
                    Row::new("workflow", format!("{shape} {n} {sync} {phase} per op"), Unit::Time, per(&ours, phase))
                        .floor_opt(phase_floor_of(&floor, which, phase, n, shape == "tree"))
                        .peer_opt(theirs.as_ref().filter(|_| *phase != "import").map(|t| per(t, phase)))
                        .target(target)
                        .emit();
                }
                // A dump is a walk's round trip (host, plugin, the domain's lookup) plus the
                // snapshot's own read: what it costs above a walk, beside the read floor, is the
                // store's share of it.
                Row::new(
                    "workflow",
                    format!("{shape} {n} {sync} dump above walk per op"),
                    Unit::Time,
                    per(&ours, "dump") - per(&ours, "walk"),
                )
                .floor_opt(floor.get("read").copied())
                .emit();
                // The same phases beside the floors of the store's own schema: above the
                // store-schema write floor is host, plugin and XML work (the gap between it and the
                // write floor is the schema's); the two-row floor is what any store pays that
                // records a snapshot and its domain's change (current, generation) in one commit;
                // the store-schema read floor is what a dump must read and hand back with this
                // schema (the domain text joined in), without host or plugin.
                for (phase, label, key) in [
                    ("create", "schema floor", "schema_write"),
                    ("create", "two-row floor", "pair_write"),
                    ("dump", "schema floor", "schema_read"),
                    ("create", "work floor", "work_create"),
                    ("redefine", "work floor", "work_redefine"),
                    ("create", "validated work floor", "work_create_validated"),
                    ("redefine", "validated work floor", "work_redefine_validated"),
                ] {
                    Row::new(
                        "workflow",
                        format!("{shape} {n} {sync} {phase} vs {label}"),
                        Unit::Time,
                        per(&ours, phase),
                    )
                    .floor_opt(phase_floor_of(&floor, key, phase, n, shape == "tree"))
                    .emit();
                }
                // The work floors themselves beside the write floor: above 1.5x, no implementation
                // that validates its input and stores libvirt's XML meets the 1.5x target.
                for (phase, key, label) in [
                    ("create", "work_create", "work floor"),
                    ("redefine", "work_redefine", "work floor"),
                    ("create", "work_create_validated", "validated work floor"),
                    ("redefine", "work_redefine_validated", "validated work floor"),
                ] {
                    Row::new(
                        "workflow",
                        format!("{shape} {n} {sync} {phase} {label}"),
                        Unit::Time,
                        floor.get(key).copied().unwrap_or(0.0),
                    )
                    .floor_opt(floor.get("write").copied())
                    .emit();
                }
                let total: f64 = PHASES.iter().map(|p| ours.get(*p).copied().unwrap_or(0.0)).sum();
                let theirs_total =
                    theirs.as_ref().map(|t| PHASES.iter().map(|p| t.get(*p).copied().unwrap_or(0.0)).sum());
                // issue 3: at 16,000, the whole workflow at least 20x faster than libvirt
                let target = if at_target && sync == "normal" { Target::Peer(0.05) } else { Target::None };
                let total_floor = workflow_floor(&floor, n, shape == "tree");
                if let (Target::Peer(k), Some(f), Some(t)) = (target, total_floor, theirs_total)
                    && f > k * t
                {
                    floor_notes.push(format!(
                        "{shape} {n} {sync} total: its floor alone ({f:.3} s) is {:.2}x libvirt's {t:.3} s, above the {k}x target",
                        f / t
                    ));
                }
                Row::new("workflow", format!("{shape} {n} {sync} total"), Unit::Time, total)
                    .floor_opt(total_floor)
                    .peer_opt(theirs_total)
                    .target(target)
                    .emit();
                if sync == "normal" {
                    let mut m: BTreeMap<String, f64> = PHASES.iter().map(|p| (p.to_string(), per(&ours, p))).collect();
                    m.insert("total".to_owned(), total / n.max(1) as f64);
                    per_op.push((n, m));
                }
            }
        }
        // Linear growth: the per-operation cost at the largest size against the smallest.
        if let (Some((first_n, first)), Some((last_n, last))) = (per_op.first(), per_op.last())
            && last_n > first_n
        {
            for phase in PHASES.iter().chain(["total"].iter()) {
                let ratio =
                    last.get(*phase).copied().unwrap_or(0.0) / first.get(*phase).copied().unwrap_or(0.0).max(1e-12);
                let target = if *phase == "total" { Target::AtMost(1.25) } else { Target::None };
                Row::new("workflow", format!("{shape} growth {phase} per op {last_n}/{first_n}"), Unit::Ratio, ratio)
                    .target(target)
                    .emit();
            }
        }
    }
    report::note("floor: write = one single-row SQLite transaction with the store's pragmas (at full sync with its");
    report::note("fsync), read = one indexed SELECT of a row; both in a fresh process, table grown to N rows;");
    report::note(&format!("ours and the floors: the median of {REPEATS} runs each, taking turns; libvirt: one run."));
    report::note("schema floor = that write on the store's own schema (snapshot row, its indexes, the generation);");
    report::note("for a dump, the read on that schema (by domain name, domain text joined, bytes copied out);");
    report::note(
        "two-row floor = the write floor's transaction plus an update of a domain-sized row of a second table.",
    );
    report::note(
        "work floor = the two-row floor's transaction plus one parse of the operation's input document and one",
    );
    report::note(
        "formatting of what it stores (model's parser and formatter; no host, ABI, plugin or tree); its row beside",
    );
    report::note("the write floor: above 1.5x, the 1.5x target is out of reach of any implementation doing that work.");
    report::note(
        "validated work floor = the work floor with the document parsed twice: the host's validation before it",
    );
    report::note(
        "dispatches, and the plugin's own parse of the text the ABI carries (the least this architecture costs).",
    );
    report::note("dump above walk = dump - walk per op: the snapshot's own read and XML, without the round trip.");
    report::note(
        "per op = phase time / N (delete and drop are one call per root, CHILDREN); peer = libvirt's same phase.",
    );
    report::note(
        "tree create: the phase also reverts after every fourth create (N/4 reverts, libvirt's side too): each of",
    );
    report::note(
        "its floors (write, schema, two-row, work, validated) is one create's plus a quarter of the write floor.",
    );
    report::note(
        "total floor = each phase's operations at their bare floor: N creates (and, for the tree, its N/4 reverts)",
    );
    report::note(
        "and N redefines at the write floor, N dumps and N walks at the read floor, one write per drop and delete.",
    );
    for note in floor_notes {
        report::note(&note);
    }
    if !peer {
        report::note("libvirt peer: absent (install python3-libvirt to measure it in the same run)");
    }
    println!();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_create_floor_counts_its_reverts() {
        let floor: BTreeMap<String, f64> =
            [("write", 40.0), ("read", 4.0), ("work_create", 50.0)].map(|(k, v)| (k.to_owned(), v)).into();
        // 16,000 creates and 4,000 reverts: a create's floor plus a quarter of a write
        assert_eq!(phase_floor_of(&floor, "write", "create", 16000, true), Some(50.0));
        assert_eq!(phase_floor_of(&floor, "work_create", "create", 16000, true), Some(60.0));
        // the chain reverts nothing; no other phase reverts
        assert_eq!(phase_floor_of(&floor, "write", "create", 16000, false), Some(40.0));
        assert_eq!(phase_floor_of(&floor, "write", "redefine", 16000, true), Some(40.0));
        assert_eq!(phase_floor_of(&floor, "read", "dump", 16000, true), Some(4.0));
        assert_eq!(phase_floor_of(&floor, "pair_write", "create", 16000, true), None);
        // the whole workflow's floor counts the same reverts
        assert_eq!(workflow_floor(&floor, 16000, true), Some((2.0 * 16000.0 + 4000.0 + 2.0) * 40.0 + 32000.0 * 4.0));
    }
}
