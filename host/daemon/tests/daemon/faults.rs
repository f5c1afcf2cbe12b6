//! Load and faults: concurrent clients creating and deleting snapshots on one domain (the tree
//! stays consistent), and a daemon killed with SIGKILL during a migration (after restart: A
//! untouched and B without the hierarchy, or B complete and A without metadata; never both
//! partial). Loopback only, bounded in count and time.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    collections::BTreeSet,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::common::{Connect, Daemon, check_tree, create, plugin_dir};
use virtplug_host::{
    flags::snapshot_list,
    remote::{
        Client,
        wire::{MigrationRequest, TaskState},
    },
};

/// The load: 64 clients creating, deleting and reverting on one domain for a minute.
const CLIENTS: usize = 64;
const STRESS_TIME: Duration = Duration::from_secs(60);

#[test]
fn concurrent_clients_keep_the_tree_consistent() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Arc::new(Daemon::start(&tmp.path().join("d"), &plugins, &[]));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + STRESS_TIME;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (d, stop) = (Arc::clone(&d), Arc::clone(&stop));
            std::thread::spawn(move || {
                let conn = d.connect();
                let mut mine = Vec::new();
                let mut ops = 0u32;
                for n in 0..2000u32 {
                    if Instant::now() > deadline || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("t{t}-{n}");
                    create(&conn, &name);
                    mine.push(name);
                    if n % 3 == 2 {
                        let victim = mine.remove((n as usize * 7) % mine.len());
                        conn.snapshot_delete("test", &victim, 0).unwrap();
                    }
                    if n % 11 == 5 {
                        conn.snapshot_revert("test", &mine[mine.len() / 2], 0).unwrap();
                    }
                    ops += 1;
                }
                (mine, ops)
            })
        })
        .collect();
    let mut expected = BTreeSet::new();
    let mut total_ops = 0;
    for w in workers {
        let (mine, ops) = w.join().unwrap_or_else(|_| {
            stop.store(true, Ordering::Relaxed);
            panic!("a client failed")
        });
        expected.extend(mine);
        total_ops += ops;
    }
    let conn = d.connect();
    let tree = check_tree(&conn);
    let names: BTreeSet<String> = tree.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, expected, "exactly the snapshots not deleted remain");
    assert!(conn.snapshot_current("test").unwrap().is_some());
    eprintln!(
        "stress: {CLIENTS} clients, {total_ops} create rounds in {STRESS_TIME:?}, {} snapshots left",
        names.len()
    );
}

fn chain(conn: &virtplug_host::Connection, n: usize) {
    for i in 0..n {
        create(conn, &format!("c{i}"));
    }
}

fn has_json(dir: &Path, state: Option<&str>) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let p = e.path();
        p.extension().is_some_and(|x| x == "json")
            && state
                .is_none_or(|s| std::fs::read_to_string(&p).is_ok_and(|t| t.contains(&format!("\"state\":\"{s}\""))))
    })
}

/// Waits (bounded) until `cond` is false.
fn wait_while(what: &str, d: &Daemon, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cond() {
        assert!(Instant::now() < deadline, "{what} not settled within 30 s; log: {}", d.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A's task has reached its import step (B is importing, or about to).
pub(crate) fn wait_import_step(client: &Client, task: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = client.task(task).unwrap();
        if t.steps.iter().any(|s| s.name == "import" && s.state != "pending") {
            return;
        }
        assert!(Instant::now() < deadline && t.state == TaskState::Running, "the import step never started: {t:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Where a round kills a daemon.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// A, this long after the migration started (B imports at full speed).
    AAfter(u64),
    /// A, this long after its import step started, while B's import is held open.
    AInImport(u64),
    /// B, while its import is held open (A keeps running and must settle it).
    BInImport,
}

/// Whether the mock and daemon states after settling are one whole side.
fn outcome(
    round: usize,
    kill: Kill,
    a: &Daemon,
    b: &Daemon,
    n: usize,
    before: &[(String, Option<String>)],
) -> &'static str {
    let (ca, cb) = (a.connect(), b.connect());
    let on_a = ca.snapshot_list("test", snapshot_list::METADATA).unwrap().len();
    let tree_b = check_tree(&cb);
    if on_a == n && tree_b.is_empty() {
        assert_eq!(check_tree(&ca), before, "A untouched");
        "rolled back"
    } else if on_a == 0 && tree_b.len() == n {
        assert_eq!(tree_b, before, "B complete");
        "completed"
    } else {
        panic!("round {round} ({kill:?}): half done: A has {on_a} with metadata, B has {}", tree_b.len());
    }
}

#[test]
fn sigkill_during_migration_leaves_one_whole_side() {
    let Some(plugins) = plugin_dir() else { return };
    const N: usize = 300;
    /// How long B holds a tracked import open in the in-import rounds.
    const HOLD_MS: u64 = 1200;
    let rounds = [
        Kill::AAfter(0),
        Kill::AAfter(10),
        Kill::AAfter(40),
        Kill::AAfter(150),
        Kill::AAfter(600),
        Kill::AAfter(3000),
        // The race: A dies while B's import is in flight; restarted A must wait for B's outcome.
        Kill::AInImport(0),
        Kill::AInImport(300),
        Kill::AInImport(HOLD_MS - 100),
        Kill::BInImport,
    ];
    let mut outcomes = Vec::new();
    let started = Instant::now();
    for (round, kill) in rounds.into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let hold = match kill {
            Kill::AAfter(_) => vec![],
            _ => vec!["--fault-import-delay-ms".to_owned(), HOLD_MS.to_string()],
        };
        let mut a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
        let mut b = Daemon::start(&tmp.path().join("b"), &plugins, &hold);
        chain(&a.connect(), N);
        let before = check_tree(&a.connect());
        let client = Client::from_uri(&a.uri(), false).unwrap();
        let task =
            client.start_migration(&MigrationRequest { domain: "test".into(), to: b.uri(), dry_run: false }).unwrap();
        match kill {
            Kill::AAfter(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                a.kill_and_restart();
            }
            Kill::AInImport(ms) => {
                wait_import_step(&client, task.id);
                std::thread::sleep(Duration::from_millis(ms));
                a.kill_and_restart();
            }
            Kill::BInImport => {
                wait_import_step(&client, task.id);
                std::thread::sleep(Duration::from_millis(200));
                b.kill_and_restart();
                // A's task settles B's import with the restarted B, then fails.
                let done = client.wait_task(task.id, |_| {}).unwrap();
                assert_eq!(done.state, TaskState::Failed, "{done:?}");
            }
        }
        // The journal is settled (finished or rolled back) …
        wait_while("A's journal", &a, || has_json(&a.dir.join("state/migrations"), None));
        // … and no import is still in flight on B that could commit after the decision.
        wait_while("B's import", &b, || has_json(&b.dir.join("state/imports"), Some("running")));
        outcomes.push(outcome(round, kill, &a, &b, N, &before));
    }
    eprintln!("sigkill outcomes: {outcomes:?} in {:?}", started.elapsed());
}
