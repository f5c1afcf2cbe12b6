//! SIGKILL during a large transaction: a child process (this test binary re-run with an
//! environment switch) imports 10,000 snapshots, or deletes a snapshot whose 5,000 children are
//! reparented, and is killed at a random moment. The reopened store must hold exactly the state
//! before or after the operation.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    io::BufRead,
    path::Path,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

mod store_common;

use store_common::{VM, new_store, snap, start_child};
use virtplug_model::{
    store::{Store, Sync},
    tree::RedefineFlags,
    xml::SnapshotDef,
};

const CHILD_ENV: &str = "VIRTPLUG_STORE_CRASH_CHILD";
const IMPORT_N: usize = 10_000;
const CHILDREN_N: usize = 5_000;

/// The child side: does nothing unless started by the tests below.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (what, path) = spec.split_once(':').unwrap();
    let mut s = Store::open(Path::new(path), Sync::Normal).unwrap();
    println!("ready");
    match what {
        "import" => {
            let defs: Vec<SnapshotDef> = (0..IMPORT_N)
                .map(|i| {
                    let parent = (i > 0).then(|| format!("c{}", i - 1));
                    snap(&format!("c{i}"), parent.as_deref())
                })
                .collect();
            s.import(VM, defs, Some("c9999")).unwrap();
        }
        "delete" => s.delete(VM, "p", 0).unwrap(),
        other => panic!("unknown child task {other}"),
    }
    println!("done");
}

/// A pseudo-random fraction in [0, 1) from the clock and the round number.
fn jitter(round: u64) -> f64 {
    let nanos = u64::from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos());
    let mixed = nanos.wrapping_mul(6364136223846793005).wrapping_add(round.wrapping_mul(1442695040888963407));
    ((mixed >> 11) % 1_000_000) as f64 / 1_000_000.0
}

/// Runs the child task; with `kill_after`, SIGKILLs it that long after it reported "ready".
/// Returns whether it reported "done" and how long it ran after "ready".
fn run_child(task: &str, path: &Path, kill_after: Option<Duration>) -> (bool, Duration) {
    let (mut child, mut out) = start_child("crash_child", CHILD_ENV, &format!("{task}:{}", path.display()));
    let t0 = Instant::now();
    if let Some(delay) = kill_after {
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on unix
    }
    let mut rest = String::new();
    while out.read_line(&mut rest).unwrap_or(0) > 0 {}
    child.wait().unwrap();
    (rest.contains("done"), t0.elapsed())
}

/// Kill delays spread over the operation's measured duration: round k of n lands in the k-th
/// slice of [0, duration].
fn delay(duration: Duration, round: u64, rounds: u64) -> Duration {
    let slice = duration.as_secs_f64() / rounds as f64;
    Duration::from_secs_f64(slice * (round as f64 + jitter(round)))
}

fn assert_consistent(s: &mut Store) {
    let all = s.snapshots(VM).unwrap();
    let names: std::collections::HashSet<&str> = all.iter().map(|i| i.name.as_str()).collect();
    for i in &all {
        if let Some(p) = &i.parent {
            assert!(names.contains(p.as_str()), "{} lost its parent {p}", i.name);
        }
    }
    assert!(all.iter().filter(|i| i.current).count() <= 1);
}

#[test]
fn sigkill_during_import() {
    let calibration = tempfile::tempdir().unwrap();
    let cpath = calibration.path().join("crash.db");
    drop(new_store(&cpath));
    let (done, duration) = run_child("import", &cpath, None);
    assert!(done);
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.db");
        drop(new_store(&path));
        let (finished, _) = run_child("import", &path, Some(delay(duration, round, 4)));
        let mut s = Store::open(&path, Sync::Normal).unwrap();
        let n = s.snapshot_count(VM).unwrap();
        assert!(n == 0 || n == IMPORT_N, "round {round}: {n} snapshots after kill (finished={finished})");
        if n == IMPORT_N {
            assert_eq!(s.current(VM).unwrap().unwrap().name, "c9999");
        } else {
            assert!(!finished);
        }
        assert_consistent(&mut s);
        eprintln!("import round {round} (op took {duration:?} uncut): finished={finished} snapshots={n}");
    }
}

#[test]
fn sigkill_during_reparenting_delete() {
    let prepare = |path: &Path| {
        let mut s = new_store(path);
        let mut defs = vec![snap("r", None), snap("p", Some("r"))];
        defs.extend((0..CHILDREN_N).map(|i| snap(&format!("k{i}"), Some("p"))));
        s.import(VM, defs, Some("p")).unwrap();
        s.redefine(VM, snap("k0", Some("p")), RedefineFlags::default()).unwrap();
    };
    let calibration = tempfile::tempdir().unwrap();
    let cpath = calibration.path().join("crash.db");
    prepare(&cpath);
    let (done, duration) = run_child("delete", &cpath, None);
    assert!(done);
    for round in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crash.db");
        prepare(&path);
        let (finished, _) = run_child("delete", &path, Some(delay(duration, round, 4)));
        let mut s = Store::open(&path, Sync::Normal).unwrap();
        let all = s.snapshots(VM).unwrap();
        let p_exists = all.iter().any(|i| i.name == "p");
        let under_p = all.iter().filter(|i| i.parent.as_deref() == Some("p")).count();
        let under_r = all.iter().filter(|i| i.parent.as_deref() == Some("r")).count();
        let current = s.current(VM).unwrap().map(|c| c.name);
        if p_exists {
            assert!(!finished);
            assert_eq!(
                (under_p, under_r, current.as_deref()),
                (CHILDREN_N, 1, Some("p")),
                "round {round}: before state"
            );
        } else {
            assert_eq!(
                (under_p, under_r, current.as_deref()),
                (0, CHILDREN_N, Some("r")),
                "round {round}: after state"
            );
        }
        assert_eq!(all.len(), CHILDREN_N + 1 + usize::from(p_exists));
        assert_consistent(&mut s);
        eprintln!("delete round {round} (op took {duration:?} uncut): finished={finished} p_exists={p_exists}");
    }
}
