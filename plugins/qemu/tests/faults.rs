//! Faults on running domains: a QMP monitor that never answers (qemu stopped with SIGSTOP) and
//! a qemu that dies during `snapshot-save`. One test function, because the second fault is
//! injected through a process-wide environment variable.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use common::*;
use virtplug_plugin_sdk::codes;

#[test]
fn silent_monitor_and_qemu_dying_during_save() {
    if !backend() {
        return;
    }
    let mut r = Root::new();
    r.extra = "&qmp_timeout_ms=1000&shutdown_timeout_ms=300".into();
    let (a, b) = (r.image("a.qcow2", "qcow2"), r.image("b.qcow2", "qcow2"));
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false), ("vdb", &b, "qcow2", false)])).unwrap();
    drv.snapshot_create("d", &snap("base"), 0).unwrap();
    drv.domain_start("d").unwrap();

    // 1. the monitor never answers
    let pid = r.pids()[0];
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let t = std::time::Instant::now();
    let e = drv.snapshot_create("d", &snap("s1"), 0).unwrap_err();
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(e.code, codes::OPERATION_FAILED, "{e}");
    assert!(e.message.contains("did not answer in time"), "{e}");
    assert_eq!(list(&*drv, "d"), vec!["base".to_owned()]);
    // a fresh connection (host restart) does not hang either
    let e = r.open().snapshot_create("d", &snap("s1"), 0).unwrap_err();
    assert!(e.message.contains("did not answer in time"), "{e}");
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(state(&*drv, "d").0, 1);
    assert_eq!((names(&a), names(&b)), (vec!["base".to_owned()], vec!["base".to_owned()]));

    // 2. qemu dies during snapshot-save
    unsafe { std::env::set_var("VIRTPLUG_QEMU_FAULT", "kill-during-save") };
    let e = drv.snapshot_create("d", &snap("k1"), 0).unwrap_err();
    unsafe { std::env::remove_var("VIRTPLUG_QEMU_FAULT") };
    assert_eq!(e.code, codes::OPERATION_FAILED, "{e}");
    assert!(e.message.starts_with("snapshot-save job failed: QMP monitor of domain 'd' is gone"), "{e}");
    assert_eq!(state(&*drv, "d"), (5, 3));
    assert_eq!((names(&a), names(&b)), (vec!["base".to_owned()], vec!["base".to_owned()]));
    assert_eq!(list(&*drv, "d"), vec!["base".to_owned()]);
    assert!(drv.snapshot_lookup("d", "base").unwrap().current);
    // and the domain still works
    drv.domain_start("d").unwrap();
    drv.snapshot_create("d", &snap("k1"), 0).unwrap();
    drv.domain_destroy("d").unwrap();
}
