//! 1,000 random SIGKILL points over every kind of metadata operation: a child process (this
//! test binary re-run with an environment switch) applies a deterministic sequence of
//! operations — plain creates, redefines, deletes with reparenting, subtree deletes, hierarchy
//! imports, renames, current changes, domain state changes — printing `begin K` / `end K`
//! around each, and is killed at a random moment. The parent replays the same sequence on a
//! reference store and checks that the killed store holds exactly the state before or after the
//! operation in flight; the next child continues from there.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{io::BufRead, path::Path, time::Duration};

mod store_common;

use store_common::{VM, new_store, snap, start_child};
use virtplug_model::{
    flags::{domain_state as st, snapshot_delete},
    store::{Store, Sync},
    tree::RedefineFlags,
    xml::{FormatFlags, SnapshotDef},
};

const CHILD_ENV: &str = "VIRTPLUG_KILL_POINT_CHILD";
const ROUNDS: u64 = 1_000;
/// Above this many snapshots the sequence prunes instead of growing.
const PRUNE_ABOVE: usize = 300;

/// [`snap`] with a description.
fn described(name: &str, parent: Option<&str>, description: Option<String>) -> SnapshotDef {
    SnapshotDef { description, ..snap(name, parent) }
}

/// A small deterministic generator (SplitMix64) keyed by the step number.
fn rng(step: u64, salt: u64) -> u64 {
    let mut z = step.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Applies step `k` to `s`: the operation depends only on `k` and the store's state, so the
/// child and the parent's reference store take the same one. Errors are part of the sequence.
fn apply(s: &mut Store, k: u64) {
    let list = s.snapshots(VM).unwrap();
    let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
    let pick = |salt| names.get((rng(k, salt) as usize) % names.len().max(1)).copied();
    let current = list.iter().find(|i| i.current).map(|i| i.name.clone());
    let mut kind = rng(k, 0) % 10;
    if names.len() > PRUNE_ABOVE {
        kind = 5;
    }
    let _ = match kind {
        0..=2 => s.create(VM, &snap(&format!("c{k}"), current.as_deref())),
        3 => match pick(1) {
            Some(n) => {
                let parent = list.iter().find(|i| i.name == n).and_then(|i| i.parent.clone());
                s.redefine(VM, described(n, parent.as_deref(), Some(format!("d{k}"))), RedefineFlags::default())
            }
            None => Ok(()),
        },
        4 => pick(2).map_or(Ok(()), |n| s.delete(VM, n, 0)),
        5 => pick(3).map_or(Ok(()), |n| s.delete(VM, n, snapshot_delete::CHILDREN)),
        6 => {
            let base = pick(4).map(str::to_owned);
            let defs = (0..80)
                .map(|j| {
                    let parent = if j == 0 { base.clone() } else { Some(format!("i{k}-{}", j - 1)) };
                    snap(&format!("i{k}-{j}"), parent.as_deref())
                })
                .collect();
            s.import(VM, defs, Some(&format!("i{k}-79")))
        }
        7 => pick(5).map_or(Ok(()), |n| s.set_current(VM, n)),
        8 => match pick(6) {
            Some(n) => {
                let parent = list.iter().find(|i| i.name == n).and_then(|i| i.parent.clone());
                s.edit(VM, n, snap(&format!("e{k}"), parent.as_deref()), RedefineFlags::default())
            }
            None => Ok(()),
        },
        _ => {
            let state = if rng(k, 7) % 2 == 0 { st::SHUTOFF } else { st::RUNNING };
            s.set_domain_state(VM, state, 1, -1)
        }
    };
}

/// Everything an operation may change: the domain row and every snapshot (name, parent,
/// current, its full XML).
fn digest(s: &mut Store) -> String {
    let d = s.domain_by_uuid(VM).unwrap();
    let mut out = format!("{} {} {} {}\n", d.name, d.state, d.reason, d.id);
    let mut list = s.snapshots(VM).unwrap();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    for i in list {
        let xml = s.snapshot_xml(VM, &i.name, FormatFlags { secure: true, internal: true, current: false }).unwrap();
        out.push_str(&format!("{} {:?} {}\n{xml}", i.name, i.parent, i.current));
    }
    out
}

/// The child side: applies steps from `start` on until killed (or 10,000 steps).
#[test]
fn kill_point_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (start, path) = spec.split_once(':').unwrap();
    let start: u64 = start.parse().unwrap();
    let mut s = Store::open(Path::new(path), Sync::Normal).unwrap();
    println!("ready");
    for k in start + 1..start + 10_000 {
        println!("begin {k}");
        apply(&mut s, k);
        println!("end {k}");
    }
}

#[test]
fn a_thousand_kill_points_leave_the_state_before_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.db");
    let mut reference = new_store(&dir.path().join("reference.db"));
    drop(new_store(&path));
    let (mut at, mut before, mut after) = (0u64, 0u64, 0u64);
    for round in 0..ROUNDS {
        let (mut child, mut out) = start_child("kill_point_child", CHILD_ENV, &format!("{at}:{}", path.display()));
        std::thread::sleep(Duration::from_micros(rng(round, 99) % 20_000));
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
        let killed = digest(&mut Store::open(&path, Sync::Normal).unwrap());
        if killed == digest(&mut reference) {
            at = last_end;
            before += 1;
        } else {
            apply(&mut reference, last_end + 1);
            assert_eq!(killed, digest(&mut reference), "round {round}: neither before nor after step {}", last_end + 1);
            at = last_end + 1;
            after += 1;
        }
    }
    // Both outcomes occur: kills landed inside transactions, not only between them.
    assert!(at > ROUNDS, "the children made progress: {at} steps");
    assert!(before > 0 && after > 0, "before {before}, after {after}");
}
