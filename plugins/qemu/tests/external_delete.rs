//! Delete of external snapshots: merges (qemu-img shut off, block-commit running), children's
//! stored domains rewritten, CHILDREN / CHILDREN_ONLY (beyond libvirt 9.0), METADATA_ONLY,
//! branches left by a revert, trees mixing internal and external snapshots. Every surviving
//! snapshot's view of the data is read back with qemu-io.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;
#[path = "common/ext.rs"]
mod ext;

use common::*;
use ext::*;
use virtplug_plugin_sdk::flags::snapshot_delete as df;

#[test]
fn shut_off_middle_and_top() {
    if !backend() {
        return;
    }
    let (r, drv) = three();
    // middle: a.s2 committed into a.s1, a.s3 rebased onto a.s1, s3's domain rewritten
    drv.snapshot_delete("d", "s2", 0).unwrap();
    assert_eq!(list(&*drv, "d"), vec!["s1", "s3"]);
    assert!(!r.at("a.s2").exists());
    assert_eq!(backing(&r.at("a.s3")).unwrap(), r.at("a.s1").display().to_string());
    assert_eq!(frozen(&*drv, "s3"), r.at("a.s1"));
    assert_eq!(drv.snapshot_lookup("d", "s3").unwrap().parent.as_deref(), Some("s1"));
    assert!(view(&frozen(&*drv, "s1"), [0x11, 0, 0, 0]));
    assert!(view(&frozen(&*drv, "s3"), [0x11, 0x22, 0x33, 0]));
    assert!(view(&top(&*drv, "d", "vda"), [0x11, 0x22, 0x33, 0x44]));
    // top: a.s3 committed into a.s1, the definition points at a.s1
    drv.snapshot_delete("d", "s3", 0).unwrap();
    assert!(!r.at("a.s3").exists());
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s1"));
    assert!(view(&r.at("a.s1"), [0x11, 0x22, 0x33, 0x44]));
    assert!(view(&frozen(&*drv, "s1"), [0x11, 0, 0, 0]));
    assert_eq!(drv.snapshot_current("d").unwrap().unwrap().name, "s1");
}

#[test]
fn running_block_commit() {
    if !backend() {
        return;
    }
    let (r, drv) = three();
    drv.domain_start("d").unwrap();
    let pid = r.pids()[0];
    // non-active commit: pending -> finalize
    drv.snapshot_delete("d", "s2", 0).unwrap();
    assert!(!r.at("a.s2").exists());
    assert_eq!(backing(&r.at("a.s3")).unwrap(), r.at("a.s1").display().to_string());
    assert_eq!(frozen(&*drv, "s3"), r.at("a.s1"));
    assert!(view(&frozen(&*drv, "s3"), [0x11, 0x22, 0x33, 0]));
    // active commit: ready -> complete; qemu runs on a.s1 now
    drv.snapshot_delete("d", "s3", 0).unwrap();
    assert!(!r.at("a.s3").exists());
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s1"));
    assert_eq!(r.pids(), vec![pid]);
    assert!(view(&r.at("a.s1"), [0x11, 0x22, 0x33, 0x44]));
    assert!(view(&r.at("a.qcow2"), [0x11, 0, 0, 0]));
    // qemu still writes where the definition says: destroy, restart, read through the chain
    drv.domain_destroy("d").unwrap();
    drv.domain_start("d").unwrap();
    drv.domain_destroy("d").unwrap();
    assert!(view(&r.at("a.s1"), [0x11, 0x22, 0x33, 0x44]));
}

#[test]
fn children_and_children_only() {
    if !backend() {
        return;
    }
    let (r, drv) = three();
    drv.snapshot_delete("d", "s1", df::CHILDREN_ONLY).unwrap();
    assert_eq!(list(&*drv, "d"), vec!["s1"]);
    assert!(!r.at("a.s2").exists() && !r.at("a.s3").exists());
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s1"));
    assert!(view(&r.at("a.s1"), [0x11, 0x22, 0x33, 0x44]));
    assert!(view(&frozen(&*drv, "s1"), [0x11, 0, 0, 0]));
    ext_snapshot(&r, &*drv, "d", "t", "shutoff");
    drv.snapshot_delete("d", "s1", df::CHILDREN).unwrap();
    assert!(list(&*drv, "d").is_empty());
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.qcow2"));
    assert!(view(&r.at("a.qcow2"), [0x11, 0x22, 0x33, 0x44]));
}

#[test]
fn metadata_only_keeps_the_files() {
    if !backend() {
        return;
    }
    let (r, drv) = three();
    drv.snapshot_delete("d", "s2", df::METADATA_ONLY).unwrap();
    assert_eq!(list(&*drv, "d"), vec!["s1", "s3"]);
    assert!(r.at("a.s2").exists());
    assert_eq!(backing(&r.at("a.s3")).unwrap(), r.at("a.s2").display().to_string());
}

#[test]
fn a_reverted_branch_keeps_its_view() {
    if !backend() {
        return;
    }
    let (r, drv) = three();
    // revert to s2: a.s2-revert1 stands on a.s1 beside a.s2
    drv.snapshot_revert("d", "s2", 0).unwrap();
    write_at(&top(&*drv, "d", "vda"), "3M", 0x55);
    // deleting s2 must not merge a.s2 into a.s1 (the revert overlay reads a.s1): files kept
    drv.snapshot_delete("d", "s2", 0).unwrap();
    assert_eq!(list(&*drv, "d"), vec!["s1", "s3"]);
    assert!(r.at("a.s2").exists());
    assert!(view(&top(&*drv, "d", "vda"), [0x11, 0x22, 0, 0x55]));
    assert!(view(&frozen(&*drv, "s3"), [0x11, 0x22, 0x33, 0]));
    // s3 on the abandoned branch: merged offline, its frozen view intact
    drv.snapshot_delete("d", "s3", 0).unwrap();
    assert!(!r.at("a.s3").exists());
    assert!(view(&r.at("a.s2"), [0x11, 0x22, 0x33, 0x44]));
    assert!(view(&top(&*drv, "d", "vda"), [0x11, 0x22, 0, 0x55]));
}

#[test]
fn mixed_internal_and_external() {
    if !backend() {
        return;
    }
    let (r, drv, [a]) = setup(["a.qcow2"]);
    write_at(&a, "0", 0x11);
    drv.snapshot_create("d", &snap("int"), 0).unwrap();
    ext_snapshot(&r, &*drv, "d", "ext", "shutoff");
    write_at(&top(&*drv, "d", "vda"), "1M", 0x22);
    drv.snapshot_delete("d", "int", df::CHILDREN).unwrap();
    assert!(list(&*drv, "d").is_empty());
    assert!(names(&a).is_empty());
    assert_eq!(top(&*drv, "d", "vda"), a);
    assert!(view(&a, [0x11, 0x22, 0, 0]));
}

#[test]
fn running_children_only_then_children() {
    if !backend() {
        return;
    }
    let (r, drv) = three();
    drv.domain_start("d").unwrap();
    let pid = r.pids()[0];
    // deepest first: two active commits in a row on the running chain
    drv.snapshot_delete("d", "s1", df::CHILDREN_ONLY).unwrap();
    assert_eq!(list(&*drv, "d"), vec!["s1"]);
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s1"));
    assert!(!r.at("a.s2").exists() && !r.at("a.s3").exists());
    assert_eq!(r.pids(), vec![pid]);
    assert!(view(&r.at("a.s1"), [0x11, 0x22, 0x33, 0x44]));
    // a snapshot taken on the merged chain, then the whole tree
    drv.snapshot_create("d", &snap("t"), virtplug_plugin_sdk::flags::snapshot_create::DISK_ONLY).unwrap();
    drv.snapshot_delete("d", "s1", df::CHILDREN).unwrap();
    assert!(list(&*drv, "d").is_empty());
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.qcow2"));
    assert_eq!(r.pids(), vec![pid]);
    drv.domain_destroy("d").unwrap();
    assert!(view(&r.at("a.qcow2"), [0x11, 0x22, 0x33, 0x44]));
    let left: Vec<String> = r
        .path()
        .read_dir()
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("a.") && n != "a.qcow2")
        .collect();
    assert!(left.is_empty(), "overlays left: {left:?}");
}
