//! Load and faults: concurrent clients creating and deleting snapshots on one domain (the tree
//! stays consistent), and a daemon killed with SIGKILL during a migration (after restart: A
//! untouched and B without the hierarchy, or B complete and A without metadata; never both
//! partial). Loopback only, bounded in count and time.

mod common;

use std::{
    collections::BTreeSet,
    sync::{Arc, atomic::{AtomicBool, Ordering}},
    time::{Duration, Instant},
};

use common::{Daemon, check_tree, create, plugin_dir};
use virtplug_host::{
    flags::snapshot_list,
    remote::{Client, wire::MigrationRequest},
};

const CLIENTS: usize = 16;
const STRESS_TIME: Duration = Duration::from_secs(6);

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
    eprintln!("stress: {CLIENTS} clients, {total_ops} create rounds in {STRESS_TIME:?}, {} snapshots left", names.len());
}

fn chain(conn: &virtplug_host::Connection, n: usize) {
    for i in 0..n {
        create(conn, &format!("c{i}"));
    }
}

#[test]
fn sigkill_during_migration_leaves_one_whole_side() {
    let Some(plugins) = plugin_dir() else { return };
    const N: usize = 300;
    let mut outcomes = Vec::new();
    for (round, delay_ms) in [0u64, 10, 40, 150, 600, 3000].into_iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let mut a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
        let b = Daemon::start(&tmp.path().join("b"), &plugins, &[]);
        chain(&a.connect(), N);
        let before = check_tree(&a.connect());
        let client = Client::from_uri(&a.uri(), false).unwrap();
        client.start_migration(&MigrationRequest { domain: "test".into(), to: b.uri(), dry_run: false }).unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        a.kill_and_restart();
        // The restarted daemon settles the journal (finish or roll back).
        let journals = a.dir.join("state/migrations");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::fs::read_dir(&journals).map(|mut d| d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json")))).unwrap_or(false) {
            assert!(Instant::now() < deadline, "journal not settled; log: {}", a.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        let (ca, cb) = (a.connect(), b.connect());
        let on_a = ca.snapshot_list("test", snapshot_list::METADATA).unwrap().len();
        let tree_b = check_tree(&cb);
        let outcome = if on_a == N && tree_b.is_empty() {
            assert_eq!(check_tree(&ca), before, "A untouched");
            "rolled back"
        } else if on_a == 0 && tree_b.len() == N {
            assert_eq!(tree_b, before, "B complete");
            "completed"
        } else {
            panic!("round {round}: half done: A has {on_a} with metadata, B has {}", tree_b.len());
        };
        outcomes.push(outcome);
    }
    eprintln!("sigkill outcomes: {outcomes:?}");
}
