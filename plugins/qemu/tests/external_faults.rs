//! Nothing half done with external snapshots: a revert or delete cut short (as by a crash) and
//! a running create stopped between its disk switch and its metadata are settled at the next
//! open; qemu killed during a block-commit; a full filesystem (a size-limited tmpfs), a locked
//! and a missing image. Each leaves a consistent chain with metadata that matches it, and every
//! surviving snapshot's data reads back. Faults go through the process-wide
//! `VIRTPLUG_QEMU_FAULT`, so the cases that set it share one test function and the tests
//! of this binary run one at a time.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;
#[path = "common/ext.rs"]
mod ext;

use std::process::{Command, Stdio};

use common::*;
use ext::*;
use virtplug_plugin_sdk::{
    codes,
    flags::{snapshot_create as cf, snapshot_revert as rf},
};

/// The fault variable is process-wide: the tests of this binary run one at a time, so an
/// injected fault never hits another test's operation.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn cut_short_operations_are_settled_at_open() {
    if !backend() {
        return;
    }
    let _serial = serial();
    // 1. revert stopped after its overlays: undone at open (nothing points at them)
    let (r, drv) = three();
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    set_fault(Some("revert-crash"));
    let e = drv.snapshot_revert("d", "s1", 0).unwrap_err();
    set_fault(None);
    assert_eq!(e.message, "fault injected after the revert overlays were made");
    assert!(r.at("a.s1-revert1").exists());
    drop(drv);
    let drv = r.open();
    assert!(!r.at("a.s1-revert1").exists());
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert_eq!(drv.snapshot_current("d").unwrap().unwrap().name, "s3");
    assert!(r.at("lib/qemu/external").read_dir().unwrap().next().is_none());

    // 1b. a running qemu switched in place, then the process stopped: the definition follows
    drv.domain_start("d").unwrap();
    set_fault(Some("revert-crash-switched"));
    let e = drv.snapshot_revert("d", "s1", rf::RUNNING).unwrap_err();
    set_fault(None);
    assert_eq!(e.message, "fault injected after the in-place switch");
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    drop(drv);
    let drv = r.open();
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s1-revert1"));
    assert_eq!(drv.snapshot_current("d").unwrap().unwrap().name, "s1");
    assert!(view(&r.at("a.s1-revert1"), [0x11, 0, 0, 0]));
    // back to s3's branch for what follows (shut off)
    drv.snapshot_revert("d", "s3", 0).unwrap();
    write_at(&top(&*drv, "d", "vda"), "3M", 0x44);

    // 2. delete stopped after the merge, before the metadata: rolled forward at open
    set_fault(Some("delete-crash"));
    let e = drv.snapshot_delete("d", "s2", 0).unwrap_err();
    set_fault(None);
    assert_eq!(e.message, "fault injected after the merge");
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2", "s3"]);
    // meanwhile a revert to the half-deleted snapshot is refused
    let e = drv.snapshot_revert("d", "s2", 0).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (codes::OPERATION_INVALID, "snapshot disk 'vda' was target of not completed snapshot delete")
    );
    drop(drv);
    let drv = r.open();
    assert_eq!(list(&*drv, "d"), vec!["s1", "s3"]);
    assert!(!r.at("a.s2").exists());
    assert_eq!(frozen(&*drv, "s3"), r.at("a.s1"));
    assert!(view(&frozen(&*drv, "s1"), [0x11, 0, 0, 0]));
    assert!(view(&frozen(&*drv, "s3"), [0x11, 0x22, 0x33, 0]));
    assert!(view(&top(&*drv, "d", "vda"), [0x11, 0x22, 0x33, 0x44]));

    // 3. qemu killed during a block-commit: the merge is finished offline, the domain crashed
    let (r, drv) = three();
    drv.domain_start("d").unwrap();
    set_fault(Some("kill-during-commit"));
    let e = drv.snapshot_delete("d", "s3", 0).unwrap_err();
    set_fault(None);
    assert_eq!(e.code, codes::OPERATION_FAILED, "{e}");
    assert!(e.message.starts_with("block commit failed while deleting disk 'vda' snapshot: '"), "{e}");
    assert_eq!(state(&*drv, "d"), (5, 3));
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2"]);
    assert!(!r.at("a.s3").exists());
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s2"));
    assert!(view(&r.at("a.s2"), [0x11, 0x22, 0x33, 0x44]));
    assert!(view(&frozen(&*drv, "s2"), [0x11, 0x22, 0, 0]));
    drv.domain_start("d").unwrap();

    // 4. a running create stopped between the disk transaction and the metadata (part A's
    //    fault point): qemu runs on the overlay, so the next open saves metadata + definition
    set_fault(Some("external-after-transaction"));
    let e = drv.snapshot_create("d", &snap("live"), cf::DISK_ONLY).unwrap_err();
    set_fault(None);
    assert_eq!(e.message, "fault injected after the disk transaction");
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2"]);
    drop(drv);
    let drv = r.open();
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2", "live"]);
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.live"));
    assert_eq!(frozen(&*drv, "live"), r.at("a.s2"));

    // 5. the same stop, and qemu killed before the next open: the switch is undone (the old
    //    chain was never written after it), the overlay the create made is removed
    set_fault(Some("external-after-transaction"));
    let e = drv.snapshot_create("d", &snap("gone"), cf::DISK_ONLY).unwrap_err();
    set_fault(None);
    assert_eq!(e.message, "fault injected after the disk transaction");
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    let pid = r.pids()[0];
    drop(drv);
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    let drv = r.open();
    assert_eq!(state(&*drv, "d"), (5, 3));
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2", "live"]);
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert!(!r.at("a.gone").exists());
    assert!(view(&top(&*drv, "d", "vda"), [0x11, 0x22, 0x33, 0x44]));
}

#[test]
fn missing_and_locked_images_change_nothing() {
    if !backend() {
        return;
    }
    let _serial = serial();
    let (r, drv) = three();
    // missing frozen image
    std::fs::rename(r.at("a.s1"), r.at("away")).unwrap();
    let e = drv.snapshot_delete("d", "s2", 0).unwrap_err();
    assert_eq!(
        (e.code, e.message),
        (
            codes::OPERATION_INVALID,
            format!("Cannot access storage file '{}': No such file or directory (os error 2)", r.at("a.s1").display())
        )
    );
    std::fs::rename(r.at("away"), r.at("a.s1")).unwrap();
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2", "s3"]);
    // the frozen image held for writing by another process
    let mut holder = Command::new("qemu-io")
        .args(["-f", "qcow2", r.at("a.s1").to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let e = drv.snapshot_delete("d", "s2", 0).unwrap_err();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(e.code, codes::OPERATION_INVALID, "{e}");
    assert!(e.message.contains("\"write\" lock"), "{e}");
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2", "s3"]);
    assert_eq!(backing(&r.at("a.s3")).unwrap(), r.at("a.s2").display().to_string());
    assert!(r.at("lib/qemu/external").read_dir().unwrap().next().is_none());
    // a reopen does not complete the refused delete
    drop(drv);
    let drv = r.open();
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2", "s3"]);
    drv.snapshot_delete("d", "s2", 0).unwrap();
    assert!(view(&frozen(&*drv, "s3"), [0x11, 0x22, 0x33, 0]));
}

/// Unmounts on drop.
struct Mount(tempfile::TempDir);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn full_disk_during_a_merge() {
    if !backend() {
        return;
    }
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs", dir.path().to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    if !ok && virtplug_test_support::missing::<()>("full-disk test", "cannot mount a tmpfs (needs root)").is_none() {
        return;
    }
    let m = Mount(dir);
    let r = Root::new();
    let drv = r.open();
    three_in(&r, &*drv, m.0.path());
    let p = |n: &str| m.0.path().join(n);
    // 6 MiB after s2 in a.s3, then fill the filesystem so the merge cannot fit
    Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", "write -P 0x66 8M 6M", p("a.s3").to_str().unwrap()])
        .output()
        .unwrap();
    let free =
        Command::new("dd").args(["if=/dev/zero", &format!("of={}", p("filler").display()), "bs=64k"]).output().unwrap();
    assert!(!free.status.success(), "the filesystem should be full");
    // free 1 MiB: enough for metadata, not for the merge
    let f = std::fs::OpenOptions::new().write(true).open(p("filler")).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - (1 << 20)).unwrap();
    drop(f);
    let e = drv.snapshot_delete("d", "s3", 0).unwrap_err();
    assert_eq!(e.code, codes::OPERATION_FAILED, "{e}");
    assert!(e.message.starts_with("block commit failed while deleting disk 'vda' snapshot: '"), "{e}");
    assert!(e.message.contains("No space left on device"), "{e}");
    // the chain and metadata are as before; the top still reads everything
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2", "s3"]);
    assert_eq!(top(&*drv, "d", "vda"), p("a.s3"));
    assert_eq!(backing(&p("a.s3")).unwrap(), p("a.s2").display().to_string());
    assert!(view(&p("a.s3"), [0x11, 0x22, 0x33, 0x44]) && reads(&p("a.s3"), "8M", 0x66));
    // space back: the next open finishes the delete
    std::fs::remove_file(p("filler")).unwrap();
    drop(drv);
    let drv = r.open();
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2"]);
    assert_eq!(top(&*drv, "d", "vda"), p("a.s2"));
    assert!(!p("a.s3").exists());
    assert!(view(&p("a.s2"), [0x11, 0x22, 0x33, 0x44]) && reads(&p("a.s2"), "8M", 0x66));
    assert!(view(&frozen(&*drv, "s2"), [0x11, 0x22, 0, 0]));
}
