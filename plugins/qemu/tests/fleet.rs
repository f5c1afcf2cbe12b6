//! The qemu plugin with `store=etcd://…` (feature `etcd`): snapshot metadata on a real 3-member
//! etcd cluster, domains, images and journal local. Two hosts (two embed roots, one set of
//! images) see one hierarchy of real internal and external snapshots; only the owning host
//! writes, and a refused write leaves the images as they were; an external delete that rewrites
//! other snapshots is one commit; the hierarchy is handed over with no copy; a host that stops
//! between the fleet's commit and its own completes (or undoes) the change at its next open; an
//! unreachable cluster creates nothing locally. Needs qemu and etcd (fails under CI=true without
//! them). The tests that commit run one at a time: the fault switch is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;
#[path = "common/ext.rs"]
mod ext;

use common::*;
use ext::*;
use virtplug_plugin_qemu::QemuPlugin;
use virtplug_plugin_sdk::{
    Plugin, codes,
    flags::{domain_undefine, snapshot_create as cf, snapshot_delete as df},
};
use virtplug_test_support::{EtcdCluster, require};

/// A root whose connection keeps its snapshot metadata on `store`, as fleet host `host`.
fn fleet_root(store: &str, host: &str) -> Root {
    let mut r = Root::new();
    r.extra.push_str(&format!("&store={store}"));
    std::fs::create_dir_all(r.at("lib/qemu")).unwrap();
    std::fs::write(r.at("lib/qemu/store.conf"), format!("host = {host}\nlease-ttl = 5\n")).unwrap();
    r
}

fn err<T: std::fmt::Debug>(r: virtplug_plugin_sdk::Result<T>) -> (u32, String) {
    let e = r.expect_err("the operation must be refused");
    (e.code, e.message)
}

/// `VIRTPLUG_QEMU_FAULT` is process-wide: the tests that commit take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn two_hosts_share_one_hierarchy_and_hand_it_over() {
    if !backend() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(EtcdCluster::start("qemu etcd store", &tmp.path().join("etcd"), 3));
    let uri = c.uri("fleet");
    let a = fleet_root(&uri, "host-a");
    let da = a.open();
    // s1 <- s2 <- s3 external (overlays in a's root), then i1 internal on the top overlay
    three_in(&a, &*da, a.path());
    da.snapshot_create("d", &snap("i1"), 0).unwrap();
    let b = fleet_root(&uri, "host-b");
    let db = b.open();
    // the same domain (same UUID, same images) defined on b
    db.domain_define(&da.domain_xml("d", DEFINITION).unwrap()).unwrap();
    assert_eq!(list(&*db, "d"), ["s1", "s2", "s3", "i1"]);
    assert_eq!(db.snapshot_current("d").unwrap().unwrap().name, "i1");
    for s in ["s1", "s2", "s3", "i1"] {
        assert_eq!(db.snapshot_xml("d", s, 0).unwrap(), da.snapshot_xml("d", s, 0).unwrap(), "{s}");
    }
    // nothing of it in a's local store
    assert_eq!(store(&a).snapshot_count(UUID).unwrap(), 0);
    let top_a = top(&*da, "d", "vda");
    assert!(names(&top_a).contains(&"i1".to_owned()));

    // b does not own the domain: its internal create is refused and leaves no tag behind
    let (code, msg) = err(db.snapshot_create("d", &snap("x"), 0));
    assert_eq!(code, codes::OPERATION_INVALID, "{msg}");
    assert!(!names(&top_a).contains(&"x".to_owned()));
    assert_eq!(list(&*da, "d"), ["s1", "s2", "s3", "i1"]);

    // an external delete rewrites s3's stored domain: one commit with the delete
    let g = da.snapshot_generation("d").unwrap();
    da.snapshot_delete("d", "s2", 0).unwrap();
    assert_eq!(db.snapshot_generation("d").unwrap(), g + 1);
    assert_eq!(list(&*db, "d"), ["s1", "s3", "i1"]);
    assert_eq!(db.snapshot_lookup("d", "s3").unwrap().parent.as_deref(), Some("s1"));
    assert_eq!(frozen(&*db, "s3"), a.at("a.s1"));
    assert!(view(&frozen(&*db, "s3"), [0x11, 0x22, 0x33, 0]));

    // handover: b writes, a is refused
    da.snapshot_handover("d", "host-b").unwrap();
    assert_eq!(db.snapshot_store("d").unwrap().lines().nth(1), Some("host-b"));
    db.snapshot_revert("d", "s1", 0).unwrap();
    assert_eq!(da.snapshot_current("d").unwrap().unwrap().name, "s1");
    let (code, _) = err(da.snapshot_delete("d", "i1", 0));
    assert_eq!(code, codes::OPERATION_INVALID);
    assert!(names(&top_a).contains(&"i1".to_owned()), "a refused delete leaves the image's tag");
    assert_eq!(list(&*db, "d"), ["s1", "s3", "i1"]);

    // undefine with the metadata: the fleet's copy goes too
    db.snapshot_delete("d", "i1", df::METADATA_ONLY).unwrap();
    db.domain_undefine("d", domain_undefine::SNAPSHOTS_METADATA).unwrap();
    assert_eq!(list(&*da, "d"), Vec::<String>::new());
}

/// A running external create whose host stops after the fleet's commit and before its own (the
/// switched definition): the other host already sees the snapshot; the next open finishes the
/// local part without a second commit to the fleet. Stopped again and qemu killed before the next
/// open, the switch never happened: that open removes the snapshot from the fleet and the overlay.
#[test]
fn a_host_stopped_between_the_two_commits_settles_at_its_next_open() {
    if !backend() {
        return;
    }
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(EtcdCluster::start("qemu etcd store", &tmp.path().join("etcd"), 3));
    let uri = c.uri("settle");
    let a = fleet_root(&uri, "host-a");
    let da = a.open();
    three_in(&a, &*da, a.path());
    da.domain_start("d").unwrap();
    let b = fleet_root(&uri, "host-b");
    let db = b.open();
    db.domain_define(&da.domain_xml("d", DEFINITION).unwrap()).unwrap();
    let g = da.snapshot_generation("d").unwrap();

    // 1. stopped after the fleet's commit: b sees "live", a's definition is not switched yet
    set_fault(Some("fleet-committed"));
    let e = da.snapshot_create("d", &snap("live"), cf::DISK_ONLY).unwrap_err();
    set_fault(None);
    assert_eq!(e.message, "unable to save metadata for snapshot live: fault injected after the fleet commit");
    assert_eq!(list(&*db, "d"), ["s1", "s2", "s3", "live"]);
    assert_eq!(db.snapshot_generation("d").unwrap(), g + 1);
    assert!(!da.domain_xml("d", DEFINITION).unwrap().contains(&a.at("a.live").display().to_string()));
    drop(da);
    let da = a.open();
    assert_eq!(top(&*da, "d", "vda"), a.at("a.live"), "the definition follows qemu onto the overlay");
    assert_eq!(list(&*da, "d"), ["s1", "s2", "s3", "live"]);
    assert_eq!(da.snapshot_current("d").unwrap().unwrap().name, "live");
    assert_eq!(frozen(&*da, "live"), a.at("a.s3"));
    assert_eq!(db.snapshot_generation("d").unwrap(), g + 1, "settling commits nothing more to the fleet");
    assert_eq!(store(&a).snapshot_count(UUID).unwrap(), 0, "nothing of it in a's local store");

    // 2. stopped again, and qemu killed before the next open: the switch is undone, the fleet
    //    loses the snapshot it recorded, the overlay goes
    set_fault(Some("fleet-committed"));
    let e = da.snapshot_create("d", &snap("gone"), cf::DISK_ONLY).unwrap_err();
    set_fault(None);
    assert!(e.message.ends_with("fault injected after the fleet commit"), "{e}");
    assert_eq!(list(&*db, "d"), ["s1", "s2", "s3", "live", "gone"]);
    let before = da.domain_xml("d", DEFINITION).unwrap();
    let pid = a.pids()[0];
    drop(da);
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let da = a.open();
    assert_eq!(list(&*db, "d"), ["s1", "s2", "s3", "live"]);
    assert_eq!(list(&*da, "d"), ["s1", "s2", "s3", "live"]);
    assert_eq!(da.domain_xml("d", DEFINITION).unwrap(), before);
    assert!(!a.at("a.gone").exists());
    assert_eq!(top(&*da, "d", "vda"), a.at("a.live"));
}

#[test]
fn an_unreachable_cluster_creates_nothing_locally() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("h");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let uri = format!("qemu:///embed?root={}&accel=tcg&store=etcd://127.0.0.1:{port}/x", root.display());
    let e = QemuPlugin::open(&uri, false).err().unwrap();
    assert_eq!(e.code, codes::SYSTEM_ERROR);
    assert!(e.message.starts_with(&format!("unable to reach the metadata store etcd://127.0.0.1:{port}/x: ")));
    assert!(!root.exists(), "nothing may be created locally");
    let e = QemuPlugin::open("qemu:///session?store=etcd://a/x", false).err().unwrap();
    assert_eq!(
        (e.code, e.to_string()),
        (codes::INVALID_ARG, "invalid argument: store URI 'etcd://a/x': every member must be host:port".into())
    );
}
