//! SIGKILL at random points of supervised migrations between two daemons: the hierarchy moves
//! back and forth between A and B, and in each round the supervising daemon (the source) or the
//! destination is killed at a random moment and restarted. Once the restarted daemon has settled
//! the journal, the whole hierarchy is on exactly one side — the source (rolled back) or the
//! destination (done) — with the same parents, current snapshot and XML, and nothing on the
//! other side.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use crate::common::{Connect, Daemon, check_tree, plugin_dir};
use virtplug_host::{
    Connection,
    flags::{snapshot_list, snapshot_xml},
    remote::{Client, wire::MigrationRequest},
};

const N: usize = 200;
const ROUNDS: u64 = 60;

type Hierarchy = Vec<(String, Option<String>, bool, String)>;

/// The hierarchy, or `None` when it changed while being read (a recovery at work).
fn try_hierarchy(conn: &Connection) -> Option<Hierarchy> {
    let list = conn.snapshot_list("test", snapshot_list::TOPOLOGICAL).ok()?;
    list.into_iter()
        .map(|s| {
            let xml = conn.snapshot_xml("test", &s.name, snapshot_xml::SECURE).ok()?;
            Some((s.name, s.parent, s.current, xml))
        })
        .collect()
}

fn hierarchy(conn: &Connection) -> Hierarchy {
    try_hierarchy(conn).unwrap()
}

fn seed(conn: &Connection) {
    let domain = virtplug_host::model::domain::TEST_DOMAIN_XML;
    let xmls: Vec<String> = (0..N)
        .map(|i| {
            // A tree: every snapshot under the one half its number.
            let parent = if i > 0 { format!("<parent><name>k{}</name></parent>", (i - 1) / 2) } else { String::new() };
            format!(
                "<domainsnapshot><name>k{i}</name>{parent}<state>running</state>\
                 <creationTime>{}</creationTime>{domain}</domainsnapshot>",
                1_700_000_000 + i
            )
        })
        .collect();
    conn.snapshot_import("test", &xmls, Some("k77"), 0).unwrap();
}

fn pending_journals(d: &Daemon) -> usize {
    std::fs::read_dir(d.dir.join("state/migrations"))
        .map(|r| r.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
        .unwrap_or(0)
}

/// A pseudo-random fraction in [0, 1) from the clock and the round.
fn jitter(round: u64) -> f64 {
    let nanos = u64::from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos());
    let mixed = nanos.wrapping_mul(6364136223846793005).wrapping_add(round.wrapping_mul(1442695040888963407));
    ((mixed >> 11) % 1_000_000) as f64 / 1_000_000.0
}

fn migrate_and_wait(from: &Daemon, to: &Daemon) -> Duration {
    let t0 = Instant::now();
    let client = Client::from_uri(&from.uri(), false).unwrap();
    let task =
        client.start_migration(&MigrationRequest { domain: "test".into(), to: to.uri(), dry_run: false }).unwrap();
    client.wait_task(task.id, |_| {}).unwrap();
    t0.elapsed()
}

/// Waits until `d` has no journal left and the hierarchy sits wholly on one side; returns
/// whether it is on `a`.
fn settled(a: &Daemon, b: &Daemon, expected: &[(String, Option<String>, bool, String)], round: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ha, hb) =
            (try_hierarchy(&a.connect()).unwrap_or_default(), try_hierarchy(&b.connect()).unwrap_or_default());
        if pending_journals(a) == 0 && pending_journals(b) == 0 {
            if ha == expected && hb.is_empty() {
                return true;
            }
            if hb == expected && ha.is_empty() {
                return false;
            }
        }
        assert!(
            Instant::now() < deadline,
            "round {round}: not settled: A has {} snapshots, B has {}; journals A {} B {}",
            ha.len(),
            hb.len(),
            pending_journals(a),
            pending_journals(b)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(dir: &Path, plugins: &Path) -> Daemon {
    Daemon::start(dir, plugins, &[])
}

#[test]
fn killed_migrations_settle_whole_on_one_side() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut a = start(&tmp.path().join("a"), &plugins);
    let mut b = start(&tmp.path().join("b"), &plugins);
    seed(&a.connect());
    let expected = hierarchy(&a.connect());
    assert_eq!(expected.len(), N);
    check_tree(&a.connect());

    // One undisturbed round trip measures how long a migration takes here.
    let took = migrate_and_wait(&a, &b).max(migrate_and_wait(&b, &a));
    assert!(settled(&a, &b, &expected, 0));

    let (mut on_a, mut rolled_back, mut done) = (true, 0, 0);
    for round in 1..=ROUNDS {
        let (src, dst) = if on_a { (&mut a, &mut b) } else { (&mut b, &mut a) };
        let client = Client::from_uri(&src.uri(), false).unwrap();
        client.start_migration(&MigrationRequest { domain: "test".into(), to: dst.uri(), dry_run: false }).unwrap();
        std::thread::sleep(took.mul_f64(jitter(round)));
        // Mostly the supervisor; every fourth round the destination.
        if round % 4 == 0 {
            dst.kill_and_restart()
        } else {
            src.kill_and_restart()
        }
        let now_on_a = settled(&a, &b, &expected, round);
        if now_on_a == on_a {
            rolled_back += 1
        } else {
            done += 1
        }
        on_a = now_on_a;
        check_tree(&a.connect());
        check_tree(&b.connect());
    }
    assert!(rolled_back + done == ROUNDS);
    eprintln!("{ROUNDS} killed migrations: {done} finished, {rolled_back} rolled back or never started");
}
