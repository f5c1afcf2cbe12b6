//! The founding workflow with real images: a hierarchy made on one `qemu:///embed` root (shut-off
//! and running snapshots) is exported, redefined parents-first on a second root holding copies
//! of the images (disk paths rewritten to the copies, as a management stack does when storage
//! moves), and its metadata dropped on the first root; the images stay as they were and the
//! second root reverts with them.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use common::*;
use virtplug_plugin_sdk::flags::{snapshot_create as cf, snapshot_delete as df, snapshot_xml};

#[test]
fn export_redefine_elsewhere_then_drop_metadata() {
    if !backend() {
        return;
    }
    let src = Root::new();
    let a = src.image("a.qcow2", "qcow2");
    let one = src.open();
    one.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false)])).unwrap();
    write_pattern(&a, 1);
    one.snapshot_create("d", &snap("s1"), 0).unwrap();
    one.domain_start("d").unwrap();
    one.snapshot_create("d", &snap("s2"), 0).unwrap();
    one.snapshot_create("d", &snap("s3"), 0).unwrap();
    one.domain_destroy("d").unwrap();
    one.snapshot_revert("d", "s1", 0).unwrap();
    one.snapshot_create("d", &snap("s1b"), 0).unwrap();
    write_pattern(&a, 2);
    one.snapshot_revert("d", "s2", rf_none()).unwrap();
    one.domain_destroy("d").unwrap();

    // export, parents first, with the current one
    let mut all = one.snapshot_list("d", 0).unwrap();
    all.sort_by_key(|s| s.parent.is_some()); // roots first; list is parents-first already
    let current = one.snapshot_current("d").unwrap().unwrap().name;
    let xmls: Vec<(String, String)> =
        all.iter().map(|s| (s.name.clone(), one.snapshot_xml("d", &s.name, snapshot_xml::SECURE).unwrap())).collect();

    // the destination holds a copy of the image
    let dst = Root::new();
    let b = dst.path().join("a.qcow2");
    std::fs::copy(&a, &b).unwrap();
    let two = dst.open();
    two.domain_define(&dom_xml("d", &[("vda", &b, "qcow2", false)])).unwrap();
    let from = src.path().display().to_string();
    let to = dst.path().display().to_string();
    for (name, x) in &xmls {
        let flags = if *name == current { cf::REDEFINE | cf::CURRENT } else { cf::REDEFINE };
        assert_eq!(two.snapshot_create("d", &x.replace(&from, &to), flags).unwrap(), *name);
    }
    let tree = |drv: &dyn virtplug_plugin_sdk::Driver| {
        let mut v: Vec<(String, Option<String>, bool)> =
            drv.snapshot_list("d", 0).unwrap().into_iter().map(|s| (s.name, s.parent, s.current)).collect();
        v.sort();
        v
    };
    assert_eq!(tree(&*one), tree(&*two));
    assert_eq!(two.snapshot_current("d").unwrap().unwrap().name, "s2");

    // drop the metadata on the source: images untouched
    let before = names(&a);
    one.snapshot_delete("d", "s1", df::METADATA_ONLY | df::CHILDREN).unwrap();
    assert!(one.snapshot_list("d", 0).unwrap().is_empty());
    assert_eq!(names(&a), before);
    one.domain_undefine("d", 0).unwrap();

    // the destination reverts with its copy
    two.snapshot_revert("d", "s1", 0).unwrap();
    assert!(has_pattern(&b, 1));
    two.snapshot_revert("d", "s3", 0).unwrap();
    assert_eq!(state(&*two, "d"), (1, 4));
    two.domain_destroy("d").unwrap();
}

fn rf_none() -> u32 {
    0
}
