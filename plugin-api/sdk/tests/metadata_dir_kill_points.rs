//! 300 random SIGKILL points over the directory backend: a child process (this test binary
//! re-run with an environment switch) applies a deterministic sequence of metadata operations —
//! plain creates, redefines, deletes with reparenting, CHILDREN and CHILDREN_ONLY deletes,
//! 12-snapshot imports, current changes, refused redefines — printing `begin K` / `end K` around
//! each, and is killed at a random moment. The parent replays the same sequence on a reference
//! directory and checks that the killed directory holds exactly the state (and generation)
//! before or after the operation in flight; the next child continues from there.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod metadata_common;

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use metadata_common::{VM, apply, digest, rng};
use virtplug_plugin_sdk::{DirBackend, Metadata, MetadataStore};

const CHILD_ENV: &str = "VIRTPLUG_DIR_KILL_POINT_CHILD";
const ROUNDS: u64 = 300;
/// How long after it is ready a child is killed, at most.
const KILL_WINDOW_MICROS: u64 = 50_000;

fn open(path: &Path) -> Metadata<DirBackend> {
    Metadata::new(DirBackend::new(path))
}

fn state(s: &mut Metadata<DirBackend>) -> String {
    format!("generation {}\n{}", s.generation(VM).unwrap(), digest(s))
}

/// The child side: applies steps from `start` on until killed (or 10,000 steps).
#[test]
fn dir_kill_point_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (start, path) = spec.split_once(':').unwrap();
    let start: u64 = start.parse().unwrap();
    let mut s = open(Path::new(path));
    println!("ready");
    for k in start + 1..start + 10_000 {
        println!("begin {k}");
        apply(&mut s, k);
        println!("end {k}");
    }
}

#[test]
fn kill_points_leave_the_state_before_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed");
    let mut reference = open(&dir.path().join("reference"));
    let (mut at, mut before, mut after) = (0u64, 0u64, 0u64);
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "dir_kill_point_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{at}:{}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && !line.contains("ready") {}
        // A step of this backend syncs a file and the index (about 11 ms each on a slow virtual
        // disk, where a 20 ms window gave fewer steps than rounds): the window spans a few.
        std::thread::sleep(Duration::from_micros(rng(round, 99) % KILL_WINDOW_MICROS));
        child.kill().unwrap();
        let mut rest = String::new();
        while out.read_line(&mut rest).unwrap_or(0) > 0 {}
        child.wait().unwrap();
        let last_end =
            rest.lines().filter_map(|l| l.split("end ").nth(1)).filter_map(|n| n.trim().parse().ok()).next_back();
        let last_end: u64 = last_end.unwrap_or(at);
        for k in at + 1..=last_end {
            apply(&mut reference, k);
        }
        let killed = state(&mut open(&path));
        if killed == state(&mut reference) {
            at = last_end;
            before += 1;
        } else {
            apply(&mut reference, last_end + 1);
            assert_eq!(killed, state(&mut reference), "round {round}: neither before nor after step {}", last_end + 1);
            at = last_end + 1;
            after += 1;
        }
    }
    // Both outcomes occur: kills landed inside commits, not only between them.
    assert!(at > ROUNDS, "the children made progress: {at} steps");
    assert!(before > 0 && after > 0, "before {before}, after {after}");
}
