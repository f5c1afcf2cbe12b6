//! Per-domain jobs in the store: a job held by one connection refuses every change of that
//! domain through any other connection or process (OPERATION_TIMEOUT naming the job, nothing
//! written), the holder's own changes go through, a dropped connection releases its jobs, and a
//! job whose process died (SIGKILL) or whose pid now names another process is taken over.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
};

mod store_common;

use store_common::{VM, snap};
use virtplug_model::{
    codes,
    flags::domain_state as st,
    store::{Store, Sync},
    tree::RedefineFlags,
};

const CHILD_ENV: &str = "VIRTPLUG_STORE_JOB_CHILD";

/// The test domain with one snapshot, `s0`.
fn new_store(path: &Path) -> Store {
    let mut s = store_common::new_store(path);
    s.create(VM, &snap("s0", None)).unwrap();
    s
}

fn names(s: &mut Store) -> Vec<String> {
    s.snapshots(VM).unwrap().into_iter().map(|i| i.name).collect()
}

/// The refusal every conflicting change gets while `id` holds the domain.
fn busy(id: &str, description: &str) -> String {
    format!("cannot acquire state change lock (held by job '{id}': {description}, process {}", std::process::id())
}

fn assert_busy(r: virtplug_model::Result<()>, id: &str, description: &str) {
    let e = r.expect_err("a change of a held domain must be refused");
    assert_eq!(e.code, codes::OPERATION_TIMEOUT, "{e}");
    assert!(e.message.starts_with(&busy(id, description)), "{}", e.message);
    assert!(e.to_string().starts_with("Timed out during operation: cannot acquire state change lock"), "{e}");
}

#[test]
fn a_held_domain_refuses_every_other_writer_and_accepts_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut holder = new_store(&path);
    let mut other = Store::open(&path, Sync::Normal).unwrap();
    let id = holder.job_begin(VM, "migration m1 to mock:///b").unwrap();
    let rec = other.job(VM).unwrap().unwrap();
    assert_eq!(
        (rec.id.as_str(), rec.description.as_str(), rec.pid),
        (id.as_str(), "migration m1 to mock:///b", std::process::id())
    );

    let desc = "migration m1 to mock:///b";
    assert_busy(other.create(VM, &snap("x", Some("s0"))), &id, desc);
    assert_busy(other.delete(VM, "s0", 0), &id, desc);
    assert_busy(other.redefine(VM, snap("s0", None), RedefineFlags::default()), &id, desc);
    assert_busy(other.import(VM, vec![snap("y", Some("s0"))], None), &id, desc);
    assert_busy(other.set_current(VM, "s0"), &id, desc);
    assert_busy(other.set_domain_state(VM, st::SHUTOFF, 1, -1), &id, desc);
    assert_busy(other.undefine_domain(VM), &id, desc);
    assert_busy(other.job_begin(VM, "second migration").map(drop), &id, desc);
    // A dry run writes nothing and is not refused; reads never are.
    other.dry_run(|w| w.create(VM, &snap("z", Some("s0")))).unwrap();
    assert_eq!(names(&mut other), ["s0"]);

    // The holder's own changes go through, and jobs do not nest.
    holder.create(VM, &snap("s1", Some("s0"))).unwrap();
    assert_busy(holder.job_begin(VM, "again").map(drop), &id, desc);
    assert_eq!(names(&mut other), ["s0", "s1"]);

    // Ending it is reserved to the holder; then everyone may write again.
    assert_eq!(other.job_end(VM, &id).unwrap_err().code, codes::OPERATION_INVALID);
    holder.job_end(VM, &id).unwrap();
    assert!(other.job(VM).unwrap().is_none());
    other.create(VM, &snap("s2", Some("s1"))).unwrap();
    assert_eq!(names(&mut holder), ["s0", "s1", "s2"]);
}

#[test]
fn a_dropped_connection_releases_its_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut other = new_store(&path);
    {
        let mut holder = Store::open(&path, Sync::Normal).unwrap();
        holder.job_begin(VM, "edit").unwrap();
        assert!(other.create(VM, &snap("x", Some("s0"))).is_err());
    }
    assert!(other.job(VM).unwrap().is_none());
    other.create(VM, &snap("x", Some("s0"))).unwrap();
}

#[test]
fn an_unknown_domain_cannot_be_held() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(&dir.path().join("s.db"));
    let e = s.job_begin("00000000-0000-4000-8000-000000000000", "x").unwrap_err();
    assert_eq!(e.code, codes::NO_DOMAIN);
}

/// The child side: holds a job, says so, and waits to be killed.
#[test]
fn job_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else { return };
    let mut s = Store::open(Path::new(&path), Sync::Normal).unwrap();
    let id = s.job_begin(VM, "migration held by a child").unwrap();
    println!("held {id}");
    std::thread::sleep(std::time::Duration::from_secs(120));
}

#[test]
fn the_job_of_a_killed_process_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = new_store(&path);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["job_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // libtest prints `test job_child ... ` before the child's own line, on the same line.
    while !line.contains("held ") {
        line.clear();
        assert_ne!(out.read_line(&mut line).unwrap(), 0, "the child ended without holding the job");
    }
    let id = line.split("held ").nth(1).unwrap().trim().to_owned();
    // While it lives, its job holds.
    let e = s.create(VM, &snap("x", Some("s0"))).unwrap_err();
    assert_eq!(e.code, codes::OPERATION_TIMEOUT);
    assert!(e.message.contains(&format!("held by job '{id}': migration held by a child, process {}", child.id())));
    child.kill().unwrap();
    child.wait().unwrap();
    // Dead: still recorded until someone writes, then taken over with that write.
    assert_eq!(s.job(VM).unwrap().unwrap().id, id);
    s.create(VM, &snap("x", Some("s0"))).unwrap();
    assert!(s.job(VM).unwrap().is_none());
    // ... or by the next job.
    let mut t = Store::open(&path, Sync::Normal).unwrap();
    let mine = t.job_begin(VM, "after the crash").unwrap();
    assert_eq!(s.job(VM).unwrap().unwrap().id, mine);
}

/// A row naming this process but another start time is a recycled pid: dead. A row of another
/// host cannot be judged and holds.
#[test]
fn pid_reuse_and_other_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = new_store(&path);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim().to_owned();
    let insert = |host: &str, start: i64| {
        raw.execute(
            "INSERT OR REPLACE INTO jobs (dom_uuid, id, description, host, boot_id, pid, pid_start, since)
             VALUES (?1, 'forged', 'old job', ?2, ?3, ?4, ?5, 0)",
            rusqlite::params![VM, host, boot, std::process::id(), start],
        )
        .unwrap();
    };
    insert(&host, -1);
    s.create(VM, &snap("a", Some("s0"))).unwrap();
    assert!(s.job(VM).unwrap().is_none());
    insert("another-host.example", -1);
    let e = s.create(VM, &snap("b", Some("s0"))).unwrap_err();
    assert_eq!(e.code, codes::OPERATION_TIMEOUT);
    assert!(e.message.contains("held by job 'forged': old job"), "{}", e.message);
    assert_eq!(names(&mut s), ["s0", "a"]);
}
