//! End-to-end: `virtplug migrate-snapshots` between two `virtplugd` daemons on this machine
//! (different sockets, state and mock host directories). The dry run changes nothing; the real
//! migration prints its result line, moves the whole tree (names, parents, current) to B and
//! leaves A without metadata.
//!
//! `virtplugd` and the mock plugin are found in target/<profile> (the shared test support).
//! Without them this test fails under `CI=true` and is skipped with a note otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected value")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use virtplug_test_support::{Daemon, MOCK, VIRTPLUGD, private_plugin_dir};

const BIN: &str = env!("CARGO_BIN_EXE_virtplug");

/// A private folder holding only the mock plugin, or `None` (skip) outside CI when `virtplugd`
/// or the mock is not built.
fn prerequisites(tmp: &Path) -> Option<PathBuf> {
    const AREA: &str = "the migrate-snapshots session test";
    VIRTPLUGD.require(AREA)?;
    MOCK.require(AREA)?;
    Some(private_plugin_dir(&tmp.join("plugins"), &[&MOCK]))
}

/// Runs `virtplug ARGS` (stderr not a terminal: plain step lines); (status, stdout, stderr).
fn virtplug(plugins: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).env("VIRTPLUG_PLUGIN_DIR", plugins).stdin(Stdio::null()).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn ok(plugins: &Path, args: &[&str]) -> String {
    let (code, stdout, stderr) = virtplug(plugins, args);
    assert_eq!(code, 0, "virtplug {args:?} failed: {stderr}");
    stdout
}

/// The tree and the current snapshot, as the CLI prints them.
fn state(plugins: &Path, uri: &str) -> (String, String) {
    let tree = ok(plugins, &["-c", uri, "snapshot-list", "test", "--tree"]);
    let (_, current, _) = virtplug(plugins, &["-c", uri, "snapshot-current", "test", "--name"]);
    (tree, current)
}

#[test]
fn migrate_snapshots_between_two_daemons() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(plugins) = prerequisites(tmp.path()) else { return };
    let a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
    let b = Daemon::start(&tmp.path().join("b"), &plugins, &[]);
    let (ua, ub) = (a.uri(), b.uri());

    // s1 ─┬─ s1a ── s1a1
    //     └─ s2 (current)
    for (name, revert_to) in [("s1", None), ("s1a", None), ("s1a1", None), ("s2", Some("s1"))] {
        if let Some(r) = revert_to {
            ok(&plugins, &["-c", &ua, "snapshot-revert", "test", r]);
        }
        ok(&plugins, &["-c", &ua, "snapshot-create-as", "test", name]);
    }
    let before = state(&plugins, &ua);
    assert_eq!(before.1, "s2\n");
    let empty = state(&plugins, &ub);

    // Dry run with --json: the finished task, nothing changed anywhere.
    let dry = ok(&plugins, &["migrate-snapshots", "test", "--from", &ua, "--to", &ub, "--dry-run", "--json"]);
    let task: serde_json::Value = serde_json::from_str(&dry).unwrap();
    assert_eq!(task["state"], "succeeded", "{dry}");
    assert_eq!(task["result"], serde_json::json!({ "snapshots": 4, "current": "s2", "dry_run": true }));
    let steps: Vec<&str> = task["steps"].as_array().unwrap().iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(steps, ["done", "done", "skipped", "skipped", "skipped"]);
    assert_eq!(state(&plugins, &ua), before);
    assert_eq!(state(&plugins, &ub), empty);

    // The migration: the exact result line; step lines on stderr.
    let (code, stdout, stderr) = virtplug(&plugins, &["migrate-snapshots", "test", "--from", &ua, "--to", &ub]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, format!("Migrated 4 snapshots of domain test from {ua} to {ub}, current s2\n"));
    assert!(stderr.lines().any(|l| l == "drop_source: done: metadata dropped on the source"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "no terminal escapes when stderr is not a terminal: {stderr:?}");

    // Both trees after: B holds A's former tree and current; A holds no snapshot metadata.
    assert_eq!(state(&plugins, &ub), before, "B's tree and current equal A's before");
    assert_eq!(state(&plugins, &ua), empty, "A has no snapshot left");

    // A second run finds nothing to move on A and changes nothing on B.
    let again = ok(&plugins, &["migrate-snapshots", "test", "--from", &ua, "--to", &ub]);
    assert_eq!(again, format!("Migrated 0 snapshots of domain test from {ua} to {ub}\n"));
    assert_eq!(state(&plugins, &ub), before);
}
