//! Two `virtplugd` on one machine sharing one etcd cluster: the mock with `store=etcd://…` keeps
//! each daemon's snapshot metadata on the cluster (each daemon a host of its own, named by the
//! `store.conf` in its mock folder). A change made through one daemon reaches the other's
//! `/v1/events` stream; `virtplug migrate-snapshots` between the two hosts' URIs hands the domain
//! over (no copy) and back while a third client reads through both daemons; a daemon paused past
//! its lease can neither write nor get the domain back. Needs `etcd` and the mock built with its
//! `etcd` feature (`cargo xtask test`); under CI=true either missing fails, elsewhere the test is
//! skipped with a note.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use virtplug_test_support::{Daemon, EtcdCluster, EventStream, VIRTPLUG, missing, request, require};

use super::common::{plugin_dir, raw};

const AREA: &str = "virtplugd fleet tests";

/// A daemon in `root/name` whose mock host `name` keeps its snapshot metadata on `store`; the
/// driver URI its clients name.
fn fleet_daemon(root: &Path, name: &str, plugins: &Path, store: &str) -> (Daemon, String) {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("host")).unwrap();
    // 5 s: a shorter lease can lapse under CI load before the first write (seen at 2 s).
    std::fs::write(dir.join("host/store.conf"), format!("host = {name}\nlease-ttl = 5\n")).unwrap();
    let uri = format!("mock://{}?store={store}", dir.join("host").display());
    (Daemon::start(&dir, plugins, &["--allow-uri".into(), uri.clone()]), uri)
}

fn post(d: &Daemon, uri: &str, path: &str, body: &str) -> (u16, String) {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nVirtplug-Uri: {uri}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw(&d.socket(), &req)
}

/// Creates snapshot `name` of `test` through daemon `d`: (status, body).
fn create(d: &Daemon, uri: &str, name: &str) -> (u16, String) {
    post(
        d,
        uri,
        "/v1/domains/test/snapshots",
        &format!(r#"{{"xml":"<domainsnapshot><name>{name}</name></domainsnapshot>"}}"#),
    )
}

/// The body of `GET /v1/domains/test/snapshots` through `d`.
fn list(d: &Daemon, uri: &str) -> String {
    let (status, body) = request(&d.socket(), "GET", "/v1/domains/test/snapshots", uri);
    assert_eq!(status, 200, "{body}");
    body
}

/// `virtplug migrate-snapshots` of `test` between two local URIs: (success, stdout + stderr).
fn migrate(cli: &Path, plugins: &Path, from: &str, to: &str) -> (bool, String) {
    let out = Command::new(cli)
        .args(["migrate-snapshots", "--domain", "test", "--from", from, "--to", to])
        .env("VIRTPLUG_PLUGIN_DIR", plugins)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn migrate_snapshots_hands_a_domain_back_and_forth_and_a_paused_host_is_fenced() {
    let Some(plugins) = plugin_dir() else { return };
    let cli = require!(VIRTPLUG.require(AREA));
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(EtcdCluster::start(AREA, &tmp.path().join("etcd"), 3));
    let store = c.uri("fleet");
    let (a, uri_a) = fleet_daemon(tmp.path(), "ha", &plugins, &store);
    let (b, uri_b) = fleet_daemon(tmp.path(), "hb", &plugins, &store);
    let (status, body) = create(&a, &uri_a, "s1");
    if body.contains("has no etcd store") {
        require!(missing::<()>(AREA, "the mock plugin was built without its etcd feature"));
    }
    assert_eq!(status, 201, "{body}");
    assert_eq!(create(&a, &uri_a, "s2").0, 201);
    let before = list(&a, &uri_a);
    assert!(before.contains("\"s2\""), "{before}");
    // ha owns the domain: hb's writes are refused.
    let (status, body) = create(&b, &uri_b, "early");
    assert!(status >= 400 && body.contains("is owned by host 'ha'"), "{status} {body}");
    // Over to hb (the CLI opens both hosts' local URIs; nothing is copied) and back.
    let (ok, out) = migrate(&cli, &plugins, &uri_a, &uri_b);
    assert!(ok, "{out}");
    assert_eq!((list(&a, &uri_a), list(&b, &uri_b)), (before.clone(), before.clone()));
    assert_eq!(create(&b, &uri_b, "s3").0, 201);
    let (status, body) = create(&a, &uri_a, "late");
    assert!(status >= 400 && body.contains("is owned by host 'hb'"), "{status} {body}");
    let (ok, out) = migrate(&cli, &plugins, &uri_b, &uri_a);
    assert!(ok, "{out}");
    assert_eq!(create(&a, &uri_a, "s4").0, 201);
    let both = list(&a, &uri_a);
    assert_eq!(list(&b, &uri_b), both);
    assert!(["s1", "s2", "s3", "s4"].iter().all(|n| both.contains(&format!("\"{n}\""))), "{both}");
    // The same through the daemons (supervised by ha's daemon, which asks hb's daemon for its
    // store: `GET …/snapshot-store`): a handover again, nothing copied, and back by the API.
    let remote = |d: &Daemon, uri: &str| {
        uri.replacen("mock://", "mock+unix://", 1) + &format!("&socket={}", d.socket().display())
    };
    let (ok, out) = migrate(&cli, &plugins, &remote(&a, &uri_a), &remote(&b, &uri_b));
    assert!(ok && out.contains("handed over to host hb on the shared store (no copy)"), "{out}");
    assert_eq!(list(&b, &uri_b), both);
    assert_eq!(create(&b, &uri_b, "s5").0, 201);
    let (status, body) = post(&b, &uri_b, "/v1/domains/test/snapshot-handover", r#"{"to":"ha"}"#);
    assert_eq!((status, body.as_str()), (200, "{}"));
    let store_of = |d: &Daemon, uri: &str| {
        let (status, body) = request(&d.socket(), "GET", "/v1/domains/test/snapshot-store", uri);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        (v["store"].as_str().unwrap().to_owned(), v["host"].as_str().unwrap().to_owned())
    };
    let ((store_a, host_a), (store_b, host_b)) = (store_of(&a, &uri_a), store_of(&b, &uri_b));
    assert_eq!((store_a.as_str(), host_a.as_str(), host_b.as_str()), (store_b.as_str(), "ha", "hb"));
    assert!(store_a.starts_with("etcd://") && store_a.ends_with("/fleet"), "{store_a}");
    let both = list(&a, &uri_a);
    assert!(both.contains("\"s5\""), "{both}");
    // ha pauses past its 5 s lease: hb takes the domain by writing.
    let pid = a.child.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = create(&b, &uri_b, "taken");
        if status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "hb never took the domain: {status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    // ha's daemon is fenced, and ha cannot hand the domain (now hb's) anywhere.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = create(&a, &uri_a, "after-pause");
        if body.contains("host 'ha' lost its lease on the metadata store") {
            break;
        }
        assert!(status != 201, "the paused host wrote after losing its lease");
        assert!(Instant::now() < deadline, "{status} {body}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, out) = migrate(&cli, &plugins, &uri_a, &uri_b);
    assert!(!ok && out.contains("is owned by host 'hb'"), "{out}");
    let after = list(&b, &uri_b);
    assert!(after.contains("\"taken\"") && !after.contains("after-pause"), "{after}");
}

#[test]
fn a_create_through_one_daemon_reaches_the_other_daemons_event_stream() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(EtcdCluster::start(AREA, &tmp.path().join("etcd"), 3));
    let store = c.uri("fleet");
    let (a, uri_a) = fleet_daemon(tmp.path(), "ha", &plugins, &store);
    let (b, uri_b) = fleet_daemon(tmp.path(), "hb", &plugins, &store);
    // B's read-write connection (and with it the watch) opens with its first call.
    let (status, body) = request(&b.socket(), "GET", "/v1/domains/test/snapshots", &uri_b);
    if body.contains("has no etcd store") {
        require!(missing::<()>(AREA, "the mock plugin was built without its etcd feature"));
    }
    assert_eq!(status, 200, "{body}");
    let mut events = EventStream::open(&b.socket());
    let (status, body) =
        post(&a, &uri_a, "/v1/domains/test/snapshots", r#"{"xml":"<domainsnapshot><name>s1</name></domainsnapshot>"}"#);
    assert_eq!(status, 201, "{body}");
    let seen = events.until("snapshot.created", "test", &b, Duration::from_secs(30));
    assert_eq!(seen.last().map(String::as_str), Some("snapshot.created"));
    // And what B reads is what A wrote.
    let (status, body) = request(&b.socket(), "GET", "/v1/domains/test/snapshots/s1", &uri_b);
    assert_eq!(status, 200, "{body}");
}
