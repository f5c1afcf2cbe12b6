//! Unit tests of the generation watch on real store files: it answers what the store answers
//! after every kind of write, through this connection, another one, another process (this test
//! binary started again, or the `sqlite3` shell when installed) and across WAL checkpoints and
//! restarts; repeated reads are served from memory without its connection; and it declines
//! stores it cannot watch.
use std::{
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    time::Duration,
};

use super::{GenerationWatch, Key, LazyGenerationWatch};
use crate::{
    Result, codes,
    domain::{DomainDef, TEST_DOMAIN_XML},
    flags::domain_state as st,
    store::{Store, Sync},
    xml::SnapshotDef,
};

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";
const OTHER_XML: &str = "<domain type='test'><name>other</name><uuid>11111111-2222-4333-8444-555555555555</uuid>\
<memory>1024</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>";
const OTHER: &str = "11111111-2222-4333-8444-555555555555";
/// Set (to a store path) in the child process of the cross-process test.
const CHILD_ENV: &str = "VIRTPLUG_WATCH_CHILD_STORE";

fn snap(name: &str) -> SnapshotDef {
    SnapshotDef {
        name: name.into(),
        state: st::RUNNING,
        creation_time: 1_700_000_000,
        domain: Some(TEST_DOMAIN_XML.into()),
        ..Default::default()
    }
}

/// A store at `path` holding the domain `test`, and a watch over it.
fn store_and_watch(path: &Path) -> (Store, GenerationWatch) {
    let mut s = Store::open(path, Sync::Normal).unwrap();
    s.define_domain(&DomainDef::parse(TEST_DOMAIN_XML).unwrap(), st::RUNNING, 1, 1).unwrap();
    let w = GenerationWatch::open(path).unwrap().expect("a file-backed WAL store has a watch");
    (s, w)
}

/// The watch answers exactly what `s` answers now, for `name` and for `uuid` (values or
/// errors), and says so twice (the second answer from its cache when the first recorded one).
fn same(w: &GenerationWatch, s: &mut Store, name: &str, uuid: &str, what: &str) -> Result<u64> {
    let by_name = s.generation_of_named(name);
    assert_eq!(w.generation_of_named(name), by_name, "{what}: by name");
    assert_eq!(w.generation_of_named(name), by_name, "{what}: by name, again");
    let by_uuid = s.generation(uuid);
    assert_eq!(w.generation(uuid), by_uuid, "{what}: by uuid");
    assert_eq!(w.generation(uuid), by_uuid, "{what}: by uuid, again");
    by_name
}

/// The answer the watch's cache holds for `key` under the header now in shared memory.
fn cached(w: &GenerationWatch, key: Key<'_>) -> Option<u64> {
    w.shm.header().and_then(|now| w.cached(&now, key))
}

/// The first WAL salt in the header now: it changes every time the WAL restarts.
fn salt(w: &GenerationWatch) -> u32 {
    w.shm.header().expect("a quiet store's header is readable")[8]
}

#[test]
fn answers_what_the_store_answers_after_every_kind_of_write() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, w) = store_and_watch(&dir.path().join("m.db"));
    let mut seen = vec![same(&w, &mut s, "test", VM, "defined").unwrap()];
    let mut moved = |s: &mut Store, what: &str| {
        let g = same(&w, s, "test", VM, what).unwrap();
        assert!(!seen.contains(&g), "{what}: {g} after {seen:?}");
        seen.push(g);
    };
    s.create(VM, &snap("a")).unwrap();
    moved(&mut s, "create");
    s.create(VM, &snap("b")).unwrap();
    moved(&mut s, "another create");
    s.set_current(VM, "a").unwrap();
    moved(&mut s, "revert");
    s.delete(VM, "b", 0).unwrap();
    moved(&mut s, "delete");
    s.set_domain_state(VM, st::PAUSED, 1, 1).unwrap();
    moved(&mut s, "state change");

    s.define_domain(&DomainDef::parse(OTHER_XML).unwrap(), st::SHUTOFF, 0, -1).unwrap();
    let other = same(&w, &mut s, "other", OTHER, "another domain defined").unwrap();
    assert_eq!(w.generation_of_named("test"), s.generation_of_named("test"), "test after another define");
    s.create(OTHER, &snap("o")).unwrap();
    assert_ne!(same(&w, &mut s, "other", OTHER, "the other domain's create").unwrap(), other);

    s.undefine_domain(VM).unwrap();
    let e = same(&w, &mut s, "test", VM, "undefined").unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::NO_DOMAIN, "no domain with matching name 'test'"));
    let e = w.generation(VM).unwrap_err();
    assert_eq!((e.code, e.message), (codes::NO_DOMAIN, format!("no domain with matching uuid '{VM}'")));
    assert_eq!(cached(&w, Key::Name("test")), None, "errors are not cached");
    same(&w, &mut s, "nosuch", "00000000-0000-4000-8000-000000000000", "never defined").unwrap_err();
    s.define_domain(&DomainDef::parse(TEST_DOMAIN_XML).unwrap(), st::SHUTOFF, 0, -1).unwrap();
    moved(&mut s, "defined again");
    same(&w, &mut s, "other", OTHER, "the other domain at the end").unwrap();
}

/// The essential case: a write committed through another connection (another process's, as
/// far as the watch can tell: it shares nothing with it but the file) is seen by the very next
/// read, every time.
#[test]
fn a_write_through_another_connection_is_seen_by_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let (mut s, w) = store_and_watch(&path);
    let mut t = Store::open(&path, Sync::Normal).unwrap();
    for i in 0..100 {
        let before = w.generation_of_named("test").unwrap();
        assert_eq!(cached(&w, Key::Name("test")), Some(before), "{i}: read once, then cached");
        t.create(VM, &snap(&format!("s{i}"))).unwrap();
        let after = w.generation_of_named("test").unwrap();
        assert_eq!(after, t.generation_of_named("test").unwrap(), "{i}: the other connection's write");
        assert!(after > before, "{i}");
    }
    same(&w, &mut s, "test", VM, "at the end").unwrap();
}

#[test]
fn repeated_reads_are_served_without_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, w) = store_and_watch(&dir.path().join("m.db"));
    s.create(VM, &snap("a")).unwrap();
    let g = w.generation_of_named("test").unwrap();
    let w = Arc::new(w);
    // Hold the watch's connection: a read that needed it would wait for as long as this lasts.
    let held = w.conn.lock().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn({
        let w = Arc::clone(&w);
        move || {
            for _ in 0..1000 {
                tx.send(w.generation_of_named("test")).unwrap();
            }
        }
    });
    for _ in 0..1000 {
        let answer = rx.recv_timeout(Duration::from_secs(10)).expect("a cached answer takes no lock of the connection");
        assert_eq!(answer, Ok(g));
    }
    drop(held);
    reader.join().unwrap();
    // A commit anywhere ends every cached answer.
    s.create(VM, &snap("b")).unwrap();
    assert_eq!(cached(&w, Key::Name("test")), None);
    assert_eq!(w.generation_of_named("test"), s.generation_of_named("test"));
}

/// 3,000 commits by another connection run the WAL through automatic checkpoints and
/// restarts (the salts change); an explicit RESTART and TRUNCATE checkpoint too. The watch
/// stays exact throughout.
#[test]
fn stays_exact_across_checkpoints_and_wal_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let (_s, w) = store_and_watch(&path);
    let mut t = Store::open(&path, Sync::Normal).unwrap();
    let mut salts = vec![salt(&w)];
    for i in 0..3000 {
        t.create(VM, &snap(&format!("s{i}"))).unwrap();
        assert_eq!(w.generation_of_named("test"), t.generation_of_named("test"), "create {i}");
        if salts.last() != Some(&salt(&w)) {
            salts.push(salt(&w));
        }
    }
    assert!(salts.len() > 1, "the WAL never restarted: {salts:?}");
    let raw = rusqlite::Connection::open(&path).unwrap();
    for mode in ["RESTART", "TRUNCATE", "PASSIVE", "FULL"] {
        w.generation_of_named("test").unwrap();
        let (busy, _, _): (i64, i64, i64) = raw
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        assert_eq!(busy, 0, "{mode}: the watch holds no read transaction between reads");
        assert_eq!(w.generation_of_named("test"), t.generation_of_named("test"), "after {mode}");
        t.create(VM, &snap(mode)).unwrap();
        assert_eq!(w.generation_of_named("test"), t.generation_of_named("test"), "a write after {mode}");
    }
}

/// Readers on many threads while another connection writes: no read that starts after a write
/// returned sees the generation from before it.
#[test]
fn concurrent_readers_never_see_an_acknowledged_write_undone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let (_s, w) = store_and_watch(&path);
    let w = Arc::new(w);
    let acknowledged = Arc::new(AtomicU64::new(w.generation_of_named("test").unwrap()));
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let (w, acknowledged, done) = (Arc::clone(&w), Arc::clone(&acknowledged), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !done.load(Ordering::Acquire) {
                    let floor = acknowledged.load(Ordering::Acquire);
                    let g = w.generation_of_named("test").unwrap();
                    assert!(g >= floor, "read {g} after the write that gave {floor} returned");
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut t = Store::open(&path, Sync::Normal).unwrap();
    for i in 0..300 {
        t.create(VM, &snap(&format!("s{i}"))).unwrap();
        acknowledged.store(t.generation_of_named("test").unwrap(), Ordering::Release);
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    assert_eq!(w.generation_of_named("test").unwrap(), acknowledged.load(Ordering::Acquire));
}

/// The child side of the cross-process test: one snapshot create on the store named by
/// `CHILD_ENV`, then exit. Does nothing unless started by it.
#[test]
fn watch_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (name, path) = spec.split_once(':').unwrap();
    let mut s = Store::open(Path::new(path), Sync::Normal).unwrap();
    s.create(VM, &snap(name)).unwrap();
}

#[test]
fn a_write_by_another_process_is_seen_by_the_next_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let (mut s, w) = store_and_watch(&path);
    for i in 0..3 {
        let before = w.generation_of_named("test").unwrap();
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["store_watch::tests::watch_child", "--exact", "--test-threads=1", "--quiet"])
            .env(CHILD_ENV, format!("c{i}:{}", path.display()))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let after = w.generation_of_named("test").unwrap();
        assert!(after > before, "child {i}: {after} after {before}");
        assert_eq!(after, s.generation_of_named("test").unwrap());
        assert!(s.snapshot(VM, &format!("c{i}")).is_ok(), "the child wrote");
    }
    // The sqlite3 shell (another SQLite build, another process), when there is one.
    let shell = |sql: &str| Command::new("sqlite3").arg(&path).arg(sql).output();
    match shell("UPDATE domains SET generation = generation + 1 WHERE name = 'test'") {
        Ok(out) => {
            assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(w.generation_of_named("test"), s.generation_of_named("test"), "the shell's write");
        }
        Err(e) => eprintln!("sqlite3 shell not run ({e}); the child process wrote instead"),
    }
}

#[test]
fn stores_it_cannot_watch() {
    let dir = tempfile::tempdir().unwrap();
    assert!(GenerationWatch::open(Path::new(":memory:")).unwrap().is_none());
    assert!(GenerationWatch::open(&dir.path().join("nosuch.db")).unwrap().is_none());
    assert!(!dir.path().join("nosuch.db").exists(), "nothing is created");
    // an empty database file: no store yet
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert!(GenerationWatch::open(&empty).unwrap().is_none());
    // a store switched out of WAL mode (with no connection open on it)
    let rollback = dir.path().join("rollback.db");
    drop(store_and_watch(&rollback));
    rusqlite::Connection::open(&rollback).unwrap().pragma_update(None, "journal_mode", "DELETE").unwrap();
    assert!(GenerationWatch::open(&rollback).unwrap().is_none());
    // a schema this build does not know is refused, as a read-only store refuses it
    let newer = dir.path().join("newer.db");
    drop(store_and_watch(&newer));
    rusqlite::Connection::open(&newer).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let e = GenerationWatch::open(&newer).unwrap_err();
    assert_eq!(Some(e), Store::open_read_only(&newer).err());
}

/// While the watch's connection is open, nobody can switch the store out of WAL mode (the one
/// change it would not see).
#[test]
fn the_store_cannot_leave_wal_mode_under_a_watch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let (s, w) = store_and_watch(&path);
    drop(s);
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.busy_timeout(Duration::from_millis(50)).unwrap();
    let r: rusqlite::Result<String> = raw.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0));
    assert!(r.as_ref().is_err_and(|e| e.to_string().contains("locked")), "{r:?}");
    drop(w);
}

/// A lazy watch opens nothing until asked, then keeps the one it opened; without a path, or
/// where no watch can be opened, it stays absent.
#[test]
fn a_lazy_watch_opens_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lazy.db");
    let (mut s, _) = store_and_watch(&path);
    let lazy = LazyGenerationWatch::new(Some(&path));
    assert!(lazy.watch.get().is_none(), "nothing opened before the first use");
    let first = lazy.get().expect("a watch once asked for") as *const GenerationWatch;
    assert!(std::ptr::eq(first, lazy.get().unwrap()), "the same watch every time");
    assert_eq!(lazy.get().unwrap().generation_of_named("test"), s.generation_of_named("test"));
    assert!(LazyGenerationWatch::new(None).get().is_none());
    assert!(LazyGenerationWatch::default().get().is_none());
    assert!(LazyGenerationWatch::new(Some(&dir.path().join("nosuch.db"))).get().is_none());
}
