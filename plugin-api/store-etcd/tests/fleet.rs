//! The etcd backend against a real 3-member cluster started on free loopback ports: the SDK's
//! tree rules give the same answers as on the directory backend, large changes switch whole
//! generations, ownership is fenced by leases and moves by handover, and the failures of issue
//! 18 (leader killed mid-import, a member lost, all members restarted, a host paused past its
//! lease, hosts racing, cluster unreachable). Needs `etcd` (fails under CI=true without it).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

#[path = "../../sdk/tests/metadata_common/mod.rs"]
mod metadata_common;

use std::{
    path::Path,
    sync::{Arc, Barrier},
};

use metadata_common::{VM, apply, digest, redefine_xml, snap};
use virtplug_plugin_sdk::{DirBackend, Metadata, MetadataStore, codes, flags::snapshot_delete};
use virtplug_store_etcd::{EtcdBackend, RemoteChange, StoreConfig, lease_lost, owned_by};
use virtplug_test_support::{EtcdCluster, require};

const AREA: &str = "etcd store tests";

fn cluster(dir: &Path) -> Option<EtcdCluster> {
    EtcdCluster::start(AREA, &dir.join("etcd"), 3)
}

fn config(host: &str) -> StoreConfig {
    // 10 s: every test here starts a 3-member cluster, all at once on a small machine, and some
    // kill the leader; a shorter lease can lapse between its grant and the first write (seen at
    // 2 s under CI load), or while a loaded cluster elects a new leader (seen at 5 s).
    StoreConfig { host: host.into(), user: None, lease_ttl: 10, tls: None }
}

fn host(c: &EtcdCluster, name: &str) -> Metadata<EtcdBackend> {
    Metadata::new(EtcdBackend::connect(&c.uri("fleet"), &config(name)).unwrap())
}

fn chain(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let parent = (i > 0).then(|| format!("{prefix}{}", i - 1));
            redefine_xml(&format!("{prefix}{i}"), parent.as_deref())
        })
        .collect()
}

fn count(s: &mut dyn MetadataStore) -> usize {
    s.list(VM).unwrap().len()
}

/// `(code, message)` of an operation's error.
fn err<T: std::fmt::Debug>(r: virtplug_plugin_sdk::Result<T>) -> (u32, String) {
    let e = r.expect_err("the operation must fail");
    (e.code, e.message)
}

#[test]
fn the_tree_rules_answer_as_on_the_directory_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let mut etcd = host(&c, "h1");
    let mut dir = Metadata::new(DirBackend::new(tmp.path().join("dir")));
    // The shared 600-step sequence's first 300 steps: creates, redefines, deletes (CHILDREN
    // past 120 snapshots switches a whole generation), imports, reverts, refused redefines.
    for k in 0..300 {
        assert_eq!(apply(&mut etcd, k), apply(&mut dir, k), "step {k}");
        if k % 50 == 49 {
            assert_eq!(digest(&mut etcd), digest(&mut dir), "after step {k}");
            assert_eq!(etcd.generation(VM).unwrap() > 0, dir.generation(VM).unwrap() > 0);
        }
    }
    // A second host reads the same tree.
    let mut other = host(&c, "h2");
    assert_eq!(digest(&mut other), digest(&mut dir));
}

#[test]
fn a_large_import_and_a_subtree_delete_switch_whole_generations() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let mut s = host(&c, "h1");
    s.create_def(VM, &snap("root", None)).unwrap();
    let g1 = s.generation(VM).unwrap();
    // 1,000 snapshots: ten chunks, then one switch; the old generation is gone after it.
    let xmls = chain("s", 1000);
    let mut with_root: Vec<String> = xmls.clone();
    with_root[0] = redefine_xml("s0", Some("root"));
    s.import(VM, &with_root, Some("s999"), false).unwrap();
    assert_eq!(count(&mut s), 1001);
    assert_eq!(s.current(VM).unwrap().unwrap().name, "s999");
    assert_eq!(s.generation(VM).unwrap(), g1 + 1);
    // 1,001 snapshots + current, and nothing else (no second generation left behind).
    assert_eq!(s.backend().stored_keys(VM).unwrap(), 1002);
    // A subtree delete of 1,000 is one switch too.
    s.delete(VM, "s0", snapshot_delete::CHILDREN).unwrap();
    assert_eq!(s.list(VM).unwrap().iter().map(|i| i.name.clone()).collect::<Vec<_>>(), ["root"]);
    assert_eq!(s.backend().stored_keys(VM).unwrap(), 2);
    // A refused import (a name already there with other content) writes nothing.
    let mut bad = chain("t", 300);
    bad.push(redefine_xml("root", Some("t299")));
    let before = s.generation(VM).unwrap();
    assert_eq!(
        err(s.import(VM, &bad, None, false)),
        (codes::OPERATION_FAILED, "domain moment root already exists".into())
    );
    assert_eq!((count(&mut s), s.generation(VM).unwrap()), (1, before));
}

#[test]
fn an_operation_on_a_cached_generation_is_one_request() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let mut s = host(&c, "h1");
    s.import(VM, &chain("s", 1000), Some("s999"), false).unwrap();
    // A create on an owned, cached domain is its one write transaction (no read of the tree).
    let before = s.backend().requests();
    s.create_def(VM, &snap("c", Some("s999"))).unwrap();
    assert_eq!(s.backend().requests() - before, 1);
    // A read whose pointer did not move is the pointer's read alone.
    let before = s.backend().requests();
    assert_eq!(count(&mut s), 1001);
    assert_eq!(s.backend().requests() - before, 1);
    // A revert and a delete of a leaf: one transaction each.
    let before = s.backend().requests();
    s.set_current(VM, "s5").unwrap();
    s.delete(VM, "c", 0).unwrap();
    assert_eq!(s.backend().requests() - before, 2);
}

#[test]
fn an_operation_on_a_confirmed_generation_builds_no_tree_and_copies_no_records() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let mut s = host(&c, "h1");
    s.import(VM, &chain("s", 2000), Some("s1999"), false).unwrap();
    let (requests, rebuilds) = (s.backend().requests(), s.rebuilds());
    // Each write is its one transaction, each read the pointer's read, and no operation builds
    // the domain's tree again (before, every call rebuilt it from a full copy of the records).
    s.create_def(VM, &snap("c", Some("s1999"))).unwrap();
    let xml = s.xml(VM, "c", 0).unwrap();
    assert_eq!(s.lookup(VM, "c").unwrap().parent.as_deref(), Some("s1999"));
    s.delete(VM, "c", snapshot_delete::METADATA_ONLY).unwrap();
    s.redefine_def(VM, snap("c", Some("s1999")), Default::default()).unwrap();
    assert_eq!(s.xml(VM, "c", 0).unwrap(), xml);
    assert_eq!(s.generation(VM).unwrap(), 4);
    assert_eq!((s.backend().requests() - requests, s.rebuilds() - rebuilds), (7, 0));
}

#[test]
fn another_hosts_write_between_two_operations_is_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let (mut a, mut b) = (host(&c, "h1"), host(&c, "h2"));
    a.import(VM, &chain("s", 300), Some("s299"), false).unwrap();
    assert_eq!(count(&mut a), 300);
    a.backend().handover(VM, "h2").unwrap();
    // h2 writes on top of what h1 has cached: h1's next read and its next write see it.
    b.create_def(VM, &snap("b1", Some("s299"))).unwrap();
    b.delete(VM, "s0", snapshot_delete::CHILDREN_ONLY).unwrap();
    let current = b.current(VM).unwrap().map(|i| i.name);
    b.backend().handover(VM, "h1").unwrap();
    assert_eq!(a.list(VM).unwrap(), b.list(VM).unwrap());
    assert_eq!(count(&mut a), 1);
    assert_eq!(a.current(VM).unwrap().map(|i| i.name), current);
    a.create_def(VM, &snap("a1", None)).unwrap();
    assert_eq!(a.lookup(VM, "a1").unwrap().parent, current);
    assert_eq!((count(&mut a), count(&mut b)), (2, 2));
    assert_eq!(digest(&mut a), digest(&mut b));
}

#[test]
fn a_stale_cache_is_read_again_before_it_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    // Two connections of one host: both pass the ownership guards, each keeps its own cache.
    let (mut a, mut b) = (host(&c, "h1"), host(&c, "h1"));
    a.create_def(VM, &snap("x", None)).unwrap();
    assert_eq!(count(&mut b), 1);
    b.create_def(VM, &snap("y", None)).unwrap();
    // a's copy is stale: its write's compare fails, it reads again and creates on top of y.
    a.create_def(VM, &snap("z", None)).unwrap();
    assert_eq!(b.lookup(VM, "z").unwrap().parent.as_deref(), Some("y"));
    // An answer from a stale copy ("already exists") is checked before it is given.
    b.delete(VM, "x", 0).unwrap();
    a.create_def(VM, &snap("x", None)).unwrap();
    assert_eq!(b.current(VM).unwrap().unwrap().name, "x");
    assert_eq!(digest(&mut a), digest(&mut b));
}

#[test]
fn a_watch_reports_the_commits_of_other_hosts_only() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let (mut a, mut b) = (host(&c, "h1"), host(&c, "h2"));
    a.create_def(VM, &snap("before", None)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let w = virtplug_store_etcd::watch(&c.uri("fleet"), &config("h2"), move |ch| tx.send(ch).unwrap()).unwrap();
    let next = || rx.recv_timeout(std::time::Duration::from_secs(20)).expect("a change within 20 s");
    let change = |created: &[&str], deleted: &[&str], current: Option<Option<&str>>| RemoteChange {
        dom: VM.into(),
        host: "h1".into(),
        created: created.iter().map(|s| s.to_string()).collect(),
        deleted: deleted.iter().map(|s| s.to_string()).collect(),
        current: current.map(|c| c.map(str::to_owned)),
    };
    a.create_def(VM, &snap("s1", None)).unwrap();
    assert_eq!(next(), change(&["s1"], &[], Some(Some("s1"))));
    // h2's own commit is not reported; h1's next one is, against the state h2 left.
    a.backend().handover(VM, "h2").unwrap();
    b.create_def(VM, &snap("mine", None)).unwrap();
    b.backend().handover(VM, "h1").unwrap();
    a.set_current(VM, "before").unwrap();
    assert_eq!(next(), change(&[], &[], Some(Some("before"))));
    // A generation switch (an import of 300) and a subtree delete.
    a.import(VM, &chain("i", 300), None, false).unwrap();
    let created = next().created;
    assert_eq!((created.len(), created.contains(&"i299".to_string())), (300, true));
    a.delete(VM, "s1", snapshot_delete::CHILDREN).unwrap();
    assert_eq!(next(), change(&[], &["mine", "s1"], None));
    drop(w);
}

#[test]
fn a_write_committed_after_its_reply_was_lost_is_known_as_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let (mut a, mut b) = (host(&c, "h1"), host(&c, "h2"));
    a.create_def(VM, &snap("x", None)).unwrap();
    // Each write below commits on its first attempt, loses that reply (as a request the
    // cluster commits after the client's timeout) and is retried; the retry's guards then fail
    // on the write's own commit, which must be taken as the write's success.
    let lossy = |skip: u64, what: &str, m: &mut Metadata<EtcdBackend>, f: &dyn Fn(&mut Metadata<EtcdBackend>)| {
        m.backend().lose_reply_after(skip);
        f(m);
        assert!(!m.backend().reply_loss_pending(), "{what}: no reply was lost");
    };
    lossy(0, "a delta", &mut a, &|m| m.create_def(VM, &snap("y", None)).unwrap());
    lossy(0, "a current", &mut a, &|m| m.set_current(VM, "x").unwrap());
    lossy(0, "a delete", &mut a, &|m| m.delete(VM, "y", 0).unwrap());
    // Generations: x, 300 records and the current make four chunks, then the switch, whose
    // reply is lost; then a first chunk's.
    lossy(4, "a switch", &mut a, &|m| m.import(VM, &chain("i", 300), None, false).unwrap());
    lossy(0, "a chunk", &mut a, &|m| m.import(VM, &chain("j", 300), Some("j299"), false).unwrap());
    assert_eq!(count(&mut a), 601);
    assert_eq!(a.current(VM).unwrap().unwrap().name, "j299");
    assert_eq!(a.lookup(VM, "x").unwrap().parent, None);
    a.backend().collect_orphans(VM).unwrap();
    assert_eq!(a.backend().stored_keys(VM).unwrap(), 602);
    lossy(0, "a handover", &mut a, &|m| m.backend().handover(VM, "h2").unwrap());
    assert_eq!(b.backend().owner(VM).unwrap().as_deref(), Some("h2"));
    b.create_def(VM, &snap("z", None)).unwrap();
    assert_eq!(b.lookup(VM, "z").unwrap().parent.as_deref(), Some("j299"));
    assert_eq!((count(&mut a), count(&mut b)), (602, 602));
    assert_eq!(digest(&mut a), digest(&mut b));
}

#[test]
fn the_leader_killed_during_a_10000_snapshot_import_leaves_it_complete_or_absent() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = require!(cluster(tmp.path()));
    let uri = c.uri("fleet");
    let importer = std::thread::spawn(move || {
        let mut s = Metadata::new(EtcdBackend::connect(&uri, &config("h1")).unwrap());
        let r = s.import(VM, &chain("s", 10_000), Some("s9999"), false);
        (r, s)
    });
    // Wait until the import's chunks are landing, then kill the leader under it.
    let mut watcher = host(&c, "observer");
    while watcher.backend().stored_keys(VM).unwrap() < 2000 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let leader = c.leader().unwrap();
    c.kill(leader);
    let (result, mut s) = importer.join().unwrap();
    let n = count(&mut watcher);
    match result {
        Ok(()) => assert_eq!(n, 10_000),
        Err(e) => {
            assert_eq!(n, 0, "a failed import left {n} snapshots ({e})");
            // Nothing partial is visible; the import can simply be run again.
            s.import(VM, &chain("s", 10_000), Some("s9999"), false).unwrap();
            assert_eq!(count(&mut watcher), 10_000);
        }
    }
    assert_eq!(watcher.current(VM).unwrap().unwrap().name, "s9999");
    // The orphan of the interrupted attempt (if any) is collected by the owner.
    s.backend().collect_orphans(VM).unwrap();
    assert_eq!(s.backend().stored_keys(VM).unwrap(), 10_001);
}

#[test]
fn one_member_killed_for_good_and_writes_continue() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = require!(cluster(tmp.path()));
    let mut s = host(&c, "h1");
    s.create_def(VM, &snap("a", None)).unwrap();
    let leader = c.leader().unwrap();
    c.kill(leader);
    for i in 0..20 {
        s.create_def(VM, &snap(&format!("b{i}"), None)).unwrap();
    }
    s.import(VM, &chain("i", 250), None, false).unwrap();
    assert_eq!(count(&mut s), 271);
    assert_eq!(count(&mut host(&c, "h2")), 271);
}

#[test]
fn all_members_restarted_and_nothing_acknowledged_is_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = require!(cluster(tmp.path()));
    let mut s = host(&c, "h1");
    for i in 0..30 {
        s.create_def(VM, &snap(&format!("a{i}"), None)).unwrap();
    }
    s.import(VM, &chain("i", 500), Some("i499"), false).unwrap();
    s.delete(VM, "a7", 0).unwrap();
    let before = digest(&mut s);
    drop(s);
    for i in 0..c.len() {
        c.kill(i);
    }
    for i in 0..c.len() {
        c.restart(i);
    }
    c.wait_healthy();
    let mut after = host(&c, "h2");
    assert_eq!(count(&mut after), 529);
    assert_eq!(digest(&mut after), before);
}

#[test]
fn a_host_paused_past_its_lease_is_refused_and_another_host_takes_over() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let mut a = host(&c, "h1");
    a.create_def(VM, &snap("a", None)).unwrap();
    assert_eq!(a.backend().owner(VM).unwrap().as_deref(), Some("h1"));
    // h1 stops renewing (as a paused or partitioned host does); its 10 s lease runs out.
    a.backend().stop_keepalive();
    while a.backend().lease_alive().unwrap() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let lost = lease_lost("h1");
    assert_eq!(err(a.create_def(VM, &snap("late", None))), (lost.code, lost.message.clone()));
    let mut b = host(&c, "h2");
    assert_eq!(b.backend().owner(VM).unwrap(), None);
    b.create_def(VM, &snap("b", None)).unwrap();
    assert_eq!(b.backend().owner(VM).unwrap().as_deref(), Some("h2"));
    // h1 stays fenced: neither a write nor a claim nor a handover goes through.
    assert_eq!(err(a.create_def(VM, &snap("later", None))), (lost.code, lost.message.clone()));
    assert_eq!(err(a.backend().claim(VM)), (lost.code, lost.message.clone()));
    assert_eq!(err(a.backend().handover(VM, "h1")), (lost.code, lost.message));
    assert_eq!(b.list(VM).unwrap().iter().map(|i| i.name.clone()).collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn two_hosts_racing_to_take_a_domain_exactly_one_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    for round in 0..5 {
        let dom = format!("{VM}-{round}");
        let start = Arc::new(Barrier::new(4));
        let racers: Vec<_> = (0..4)
            .map(|i| {
                let (uri, start, dom) = (c.uri("fleet"), start.clone(), dom.clone());
                std::thread::spawn(move || {
                    let mut b = EtcdBackend::connect(&uri, &config(&format!("r{i}"))).unwrap();
                    start.wait();
                    let r = b.claim(&dom);
                    (format!("r{i}"), r)
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let winners: Vec<&String> = results.iter().filter(|(_, r)| r.is_ok()).map(|(h, _)| h).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let refused = owned_by(&dom, winners[0]);
        for (_, r) in results.iter().filter(|(_, r)| r.is_err()) {
            assert_eq!(r.as_ref().unwrap_err(), &refused);
        }
    }
}

#[test]
fn handover_moves_a_domain_between_hosts_without_a_copy() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(cluster(tmp.path()));
    let (mut a, mut b) = (host(&c, "h1"), host(&c, "h2"));
    a.import(VM, &chain("s", 300), Some("s299"), false).unwrap();
    let g = a.generation(VM).unwrap();
    a.backend().handover(VM, "h2").unwrap();
    assert_eq!(b.backend().owner(VM).unwrap().as_deref(), Some("h2"));
    // No copy: the generation did not move; the old owner is refused, the new one writes.
    assert_eq!(b.generation(VM).unwrap(), g);
    let refused = owned_by(VM, "h2");
    assert_eq!(err(a.create_def(VM, &snap("a", None))), (refused.code, refused.message));
    b.create_def(VM, &snap("b", None)).unwrap();
    // And back; a handover to a host that is not in the fleet is refused.
    b.backend().handover(VM, "h1").unwrap();
    a.create_def(VM, &snap("a", None)).unwrap();
    assert_eq!(count(&mut b), 302);
    assert_eq!(
        err(a.backend().handover(VM, "nobody")),
        (codes::OPERATION_INVALID, "host 'nobody' is not in the fleet (it holds no live lease)".into())
    );
    assert_eq!(a.backend().owner(VM).unwrap().as_deref(), Some("h1"));
}

#[test]
fn an_unreachable_cluster_is_a_clear_error() {
    // A loopback port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("etcd://127.0.0.1:{port}/fleet");
    let e = EtcdBackend::connect(&uri, &config("h1")).unwrap_err();
    assert_eq!(e.code, codes::SYSTEM_ERROR);
    let expected = format!("unable to reach the metadata store {uri}: ");
    assert!(e.message.starts_with(&expected), "{}", e.message);
    assert!(!e.message.contains('\n'));
}
