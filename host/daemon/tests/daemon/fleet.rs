//! Two `virtplugd` on one machine sharing one etcd cluster: the mock with `store=etcd://…` keeps
//! each daemon's snapshot metadata on the cluster (each daemon a host of its own, named by the
//! `store.conf` in its mock folder). A change made through one daemon reaches the other's
//! `/v1/events` stream. Needs `etcd` and the mock built with its `etcd` feature
//! (`cargo xtask test`); under CI=true either missing fails, elsewhere the test is skipped with
//! a note.

use std::{path::Path, time::Duration};

use virtplug_test_support::{Daemon, EtcdCluster, EventStream, missing, request, require};

use super::common::{plugin_dir, raw};

const AREA: &str = "virtplugd fleet tests";

/// A daemon in `root/name` whose mock host `name` keeps its snapshot metadata on `store`; the
/// driver URI its clients name.
fn fleet_daemon(root: &Path, name: &str, plugins: &Path, store: &str) -> (Daemon, String) {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("host")).unwrap();
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
