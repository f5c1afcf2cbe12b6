//! Running domains: real OS-less guests (TCG, 64 MiB, paused start), life cycle, QMP snapshot
//! jobs, reverts with and without restarting qemu, reconnect after a host restart.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use common::*;
use virtplug_plugin_sdk::flags::snapshot_revert as rf;

const RUNNING: u32 = 1;
const PAUSED: u32 = 3;
const SHUTOFF: u32 = 5;

#[test]
fn life_cycle_and_reconnect() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let a = r.image("a.qcow2", "qcow2");
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false)])).unwrap();
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 0));
    drv.domain_start("d").unwrap();
    assert_eq!(state(&*drv, "d"), (RUNNING, 1));
    assert!(drv.domain_start("d").is_err());
    drv.domain_suspend("d").unwrap();
    assert_eq!(state(&*drv, "d"), (PAUSED, 1));
    drv.domain_resume("d").unwrap();
    assert_eq!(state(&*drv, "d"), (RUNNING, 5));
    // host restart: a new connection finds the guest still running
    let pid = r.pids()[0];
    drop(drv);
    let drv = r.open();
    assert_eq!(state(&*drv, "d"), (RUNNING, 5));
    assert_eq!(r.pids(), vec![pid]);
    // OS-less guest ignores the power button: quit after the timeout
    drv.domain_shutdown("d").unwrap();
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 1));
    assert!(r.pids().is_empty());
    // crash while no connection is open: marked shut off / crashed
    drv.domain_start("d").unwrap();
    let pid = r.pids()[0];
    drop(drv);
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let drv = r.open();
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 3));
    // crash under an open connection
    drv.domain_start("d").unwrap();
    unsafe { libc::kill(r.pids()[0], libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 3));
    drv.domain_start("d").unwrap();
    drv.domain_destroy("d").unwrap();
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 2));
}

#[test]
fn running_snapshots_and_reverts() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let (a, b) = (r.image("a.qcow2", "qcow2"), r.image("b.qcow2", "qcow2"));
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false), ("vdb", &b, "qcow2", false)])).unwrap();
    drv.snapshot_create("d", &snap("off"), 0).unwrap();
    drv.domain_start("d").unwrap();
    let pid = r.pids()[0];
    drv.snapshot_create("d", &snap("on1"), 0).unwrap();
    assert_eq!(state(&*drv, "d").0, RUNNING);
    let ta = tags(&a);
    assert_eq!(ta[1].0, "on1");
    assert!(ta[1].1 > 0, "vmstate in the first disk: {ta:?}");
    assert_eq!(tags(&b)[1], ("on1".to_owned(), 0));
    let x = drv.snapshot_xml("d", "on1", 0).unwrap();
    assert!(x.contains("<state>running</state>") && x.contains("<memory snapshot='internal'/>"), "{x}");
    drv.snapshot_create("d", &snap("on2"), 0).unwrap();
    // running -> running snapshot: loaded in place, same qemu
    drv.snapshot_revert("d", "on1", 0).unwrap();
    assert_eq!(r.pids(), vec![pid]);
    assert_eq!(state(&*drv, "d"), (RUNNING, 4));
    assert_eq!(drv.snapshot_current("d").unwrap().unwrap().name, "on1");
    drv.snapshot_revert("d", "on2", rf::PAUSED).unwrap();
    assert_eq!(state(&*drv, "d"), (PAUSED, 7));
    // a paused snapshot reverts paused, RUNNING overrides
    drv.snapshot_create("d", &snap("p1"), 0).unwrap();
    assert!(drv.snapshot_xml("d", "p1", 0).unwrap().contains("<state>paused</state>"));
    drv.domain_resume("d").unwrap();
    drv.snapshot_revert("d", "p1", 0).unwrap();
    assert_eq!(state(&*drv, "d"), (PAUSED, 7));
    drv.snapshot_revert("d", "p1", rf::RUNNING).unwrap();
    assert_eq!(state(&*drv, "d"), (RUNNING, 4));
    // delete while running (QMP snapshot-delete job)
    drv.snapshot_delete("d", "on2", 0).unwrap();
    assert!(!names(&a).contains(&"on2".to_owned()) && !names(&b).contains(&"on2".to_owned()));
    // revert to the shut-off snapshot stops qemu; RUNNING starts a new one
    drv.snapshot_revert("d", "off", 0).unwrap();
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 7));
    assert!(r.pids().is_empty());
    drv.snapshot_revert("d", "off", rf::RUNNING).unwrap();
    assert_eq!(state(&*drv, "d"), (RUNNING, 4));
    // from shut off to a running snapshot: fresh qemu, loaded, running
    drv.domain_destroy("d").unwrap();
    drv.snapshot_revert("d", "on1", 0).unwrap();
    assert_eq!(state(&*drv, "d"), (RUNNING, 4));
    // HALT stops the guest after the snapshot
    drv.snapshot_create("d", &snap("h"), virtplug_plugin_sdk::flags::snapshot_create::HALT).unwrap();
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 7));
    assert_eq!(names(&a), vec!["off", "on1", "p1", "h"]);
    assert_eq!(names(&b), vec!["off", "on1", "p1", "h"]);
}
