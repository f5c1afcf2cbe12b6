//! Shut-off domains against real qcow2 images: create/revert/delete with qemu-img, rollback,
//! refusals, NO_METADATA / METADATA_ONLY, REDEFINE's image check, undefine guard.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use common::*;
use virtplug_plugin_sdk::{
    codes,
    flags::{domain_undefine, snapshot_create as cf, snapshot_delete as df},
};

#[test]
fn create_revert_delete_two_disks() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let (a, b) = (r.image("a.qcow2", "qcow2"), r.image("b.qcow2", "qcow2"));
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false), ("vdb", &b, "qcow2", false)])).unwrap();
    write_pattern(&a, 1);
    assert_eq!(drv.snapshot_create("d", &snap("s1"), 0).unwrap(), "s1");
    assert_eq!((names(&a), names(&b)), (vec!["s1".to_owned()], vec!["s1".to_owned()]));
    write_pattern(&a, 2);
    assert_eq!(drv.snapshot_create("d", &snap("s2"), 0).unwrap(), "s2");
    let s2 = drv.snapshot_lookup("d", "s2").unwrap();
    assert_eq!((s2.parent.as_deref(), s2.current), (Some("s1"), true));
    let x = drv.snapshot_xml("d", "s2", 0).unwrap();
    assert!(x.contains("<state>shutoff</state>") && x.contains("<memory snapshot='no'/>"), "{x}");
    assert!(x.contains("<disk name='vda' snapshot='internal'/>"), "{x}");
    drv.snapshot_revert("d", "s1", 0).unwrap();
    assert!(has_pattern(&a, 1));
    assert_eq!(drv.snapshot_current("d").unwrap().unwrap().name, "s1");
    assert_eq!(state(&*drv, "d"), (5, 7)); // shutoff, from snapshot
    drv.snapshot_delete("d", "s1", 0).unwrap();
    assert_eq!((names(&a), names(&b)), (vec!["s2".to_owned()], vec!["s2".to_owned()]));
    assert_eq!(drv.snapshot_lookup("d", "s2").unwrap().parent, None);
    // undefine guard, then with SNAPSHOTS_METADATA
    let e = drv.domain_undefine("d", 0).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (codes::OPERATION_INVALID, "cannot delete inactive domain with 1 snapshots")
    );
    drv.domain_undefine("d", domain_undefine::SNAPSHOTS_METADATA).unwrap();
    assert_eq!(names(&a), vec!["s2".to_owned()]);
}

#[test]
fn refusals_leave_images_and_metadata_alone() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let a = r.image("a.qcow2", "qcow2");
    let raw = r.image("r.raw", "raw");
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false), ("vdb", &raw, "raw", false)])).unwrap();
    let check = |xml: &str, flags: u32, code: u32, msg: &str| {
        let e = drv.snapshot_create("d", xml, flags).unwrap_err();
        assert_eq!((e.code, e.to_string().as_str()), (code, msg), "{xml}");
    };
    check(
        &snap("s1"),
        0,
        codes::CONFIG_UNSUPPORTED,
        "unsupported configuration: internal snapshot for disk vdb unsupported for storage type raw",
    );
    assert!(names(&a).is_empty());
    // read-only raw disks are exempt
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false), ("vdb", &raw, "raw", true)])).unwrap();
    check(
        &snap("123"),
        0,
        codes::XML_DETAIL,
        "invalid snapshot name '123': all-digit names are refused because qemu resolves them as snapshot IDs",
    );
    check(&snap("a/b"), 0, codes::XML_DETAIL, "invalid snapshot name 'a/b': name can't contain '/'");
    check(&snap(".x"), 0, codes::XML_DETAIL, "invalid snapshot name '.x': name can't start with '.'");
    qemu_img(&["snapshot", "-c", "stray", a.to_str().unwrap()]);
    check(
        &snap("stray"),
        cf::NO_METADATA,
        codes::OPERATION_INVALID,
        "Requested operation is not valid: disk vda already holds a snapshot named 'stray'",
    );
    assert_eq!(names(&a), vec!["stray".to_owned()]);
    drv.snapshot_create("d", &snap("ok"), 0).unwrap();
    check(&snap("ok"), 0, codes::OPERATION_FAILED, "operation failed: domain moment ok already exists");
    assert_eq!(list(&*drv, "d"), vec!["ok".to_owned()]);
    // unknown disk format at define
    let e = drv
        .domain_define(
            &dom_xml("e", &[("vda", &a, "vmdk", false)]).replace(UUID, "6695eb01-f6a4-8304-79aa-97f2502e1930"),
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "unsupported configuration: unknown driver format value 'vmdk' for disk 'vda'");
}

#[test]
fn faults_missing_locked_and_not_qcow2() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let (a, b) = (r.image("a.qcow2", "qcow2"), r.image("b.qcow2", "qcow2"));
    let drv = r.open();
    // locked second disk: the first disk's snapshot is rolled back
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false), ("vdb", &b, "qcow2", false)])).unwrap();
    let mut holder = std::process::Command::new("qemu-io")
        .args(["-f", "qcow2", b.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let e = drv.snapshot_create("d", &snap("s1"), 0).unwrap_err();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(e.code, codes::OPERATION_INVALID, "{e}");
    assert!(e.message.contains("Failed to get \"write\" lock"), "{e}");
    assert!(names(&a).is_empty() && names(&b).is_empty());
    assert!(list(&*drv, "d").is_empty());
    // missing image
    std::fs::rename(&b, r.path().join("gone")).unwrap();
    let e = drv.snapshot_create("d", &snap("s1"), 0).unwrap_err();
    assert_eq!(e.code, codes::OPERATION_INVALID);
    assert!(e.message.starts_with(&format!("Cannot access storage file '{}'", b.display())), "{e}");
    assert!(names(&a).is_empty() && list(&*drv, "d").is_empty());
    // a raw image declared qcow2
    let raw = r.image("b.qcow2", "raw");
    let e = drv.snapshot_create("d", &snap("s1"), 0).unwrap_err();
    assert_eq!(e.code, codes::CONFIG_UNSUPPORTED);
    assert!(e.message.contains("is declared qcow2 but the image is not in qcow2 format"), "{e}");
    assert!(names(&a).is_empty() && list(&*drv, "d").is_empty());
    let _ = raw;
}

#[test]
fn metadata_flags_and_redefine_checks_images() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let (a, b) = (r.image("a.qcow2", "qcow2"), r.image("b.qcow2", "qcow2"));
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false), ("vdb", &b, "qcow2", false)])).unwrap();
    drv.snapshot_create("d", &snap("nm"), cf::NO_METADATA).unwrap();
    assert_eq!(names(&a), vec!["nm".to_owned()]);
    assert!(list(&*drv, "d").is_empty());
    drv.snapshot_create("d", &snap("s1"), 0).unwrap();
    let xml = drv.snapshot_xml("d", "s1", 0).unwrap();
    drv.snapshot_delete("d", "s1", df::METADATA_ONLY).unwrap();
    assert!(list(&*drv, "d").is_empty());
    assert_eq!(names(&b), vec!["nm".to_owned(), "s1".to_owned()]);
    // redefine: s1 is in both images; ghost in none; half only in vda
    assert_eq!(drv.snapshot_create("d", &xml, cf::REDEFINE | cf::CURRENT).unwrap(), "s1");
    assert!(drv.snapshot_lookup("d", "s1").unwrap().current);
    let ghost = xml.replace("<name>s1</name>", "<name>ghost</name>");
    let e = drv.snapshot_create("d", &ghost, cf::REDEFINE).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "Requested operation is not valid: image of disk 'vda' ('{}') does not have internal snapshot 'ghost'",
            a.display()
        )
    );
    qemu_img(&["snapshot", "-c", "half", a.to_str().unwrap()]);
    let half = xml.replace("<name>s1</name>", "<name>half</name>");
    let e = drv.snapshot_create("d", &half, cf::REDEFINE).unwrap_err();
    assert!(e.message.contains("disk 'vdb'"), "{e}");
    assert_eq!(list(&*drv, "d"), vec!["s1".to_owned()]);
}

/// A domain held by a job on one connection: another connection's create, delete and revert are
/// refused before qemu-img runs, so the images keep exactly the holder's snapshots.
#[test]
fn a_held_domain_refuses_image_work_from_other_connections() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let a = r.image("a.qcow2", "qcow2");
    let holder = r.open();
    holder.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false)])).unwrap();
    holder.snapshot_create("d", &snap("s1"), 0).unwrap();
    let job = holder.domain_job_begin("d", "migration m1 to qemu:///elsewhere").unwrap();
    let other = r.open();
    for e in [
        other.snapshot_create("d", &snap("s2"), 0).map(drop).unwrap_err(),
        other.snapshot_delete("d", "s1", 0).unwrap_err(),
        other.snapshot_revert("d", "s1", 0).unwrap_err(),
        other.domain_start("d").unwrap_err(),
    ] {
        assert_eq!(e.code, codes::OPERATION_TIMEOUT, "{e}");
        assert!(e.message.contains(&format!("held by job '{job}': migration m1 to qemu:///elsewhere")), "{e}");
    }
    assert_eq!(names(&a), vec!["s1".to_owned()]);
    holder.snapshot_create("d", &snap("s2"), 0).unwrap();
    holder.domain_job_end("d", &job).unwrap();
    other.snapshot_delete("d", "s2", 0).unwrap();
    assert_eq!(names(&a), vec!["s1".to_owned()]);
}

/// A read-only connection creates no state: on a fresh root it sees an empty host and leaves the
/// root empty; once a read-write connection has defined a domain, a new read-only one sees it.
#[test]
fn read_only_opens_create_nothing() {
    if !backend() {
        return;
    }
    use virtplug_plugin_sdk::open_checked;
    let r = Root::new();
    let ro = open_checked::<virtplug_plugin_qemu::QemuPlugin>(&r.uri(), true).unwrap();
    assert!(ro.domain_list().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(r.path()).unwrap().count(), 0, "a read-only open created files");
    let a = r.image("a.qcow2", "qcow2");
    r.open().domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false)])).unwrap();
    let ro = open_checked::<virtplug_plugin_qemu::QemuPlugin>(&r.uri(), true).unwrap();
    assert_eq!(ro.domain_list().unwrap().len(), 1);
    assert_eq!(ro.snapshot_create("d", &snap("s1"), 0).unwrap_err().code, codes::OPERATION_DENIED);
}

/// The snapshot tree generation comes from the store: a new value after each create, revert
/// and delete (through any connection), the same across reads and after a refused create, and
/// NO_DOMAIN once the domain is undefined.
#[test]
fn the_snapshot_generation_follows_the_store() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let a = r.image("a.qcow2", "qcow2");
    let drv = r.open();
    let other = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false)])).unwrap();
    let mut seen = vec![drv.snapshot_generation("d").unwrap()];
    let mut step = |moved: bool, what: &str| {
        let g = drv.snapshot_generation("d").unwrap();
        assert_eq!(other.snapshot_generation("d").unwrap(), g, "{what}: the same for another connection");
        let last = *seen.last().unwrap();
        if moved {
            assert!(g > last && !seen.contains(&g), "{what}: {g} after {seen:?}");
            seen.push(g);
        } else {
            assert_eq!(g, last, "{what}");
        }
    };
    drv.snapshot_create("d", &snap("s1"), 0).unwrap();
    step(true, "create");
    drv.snapshot_list("d", 0).unwrap();
    step(false, "a read");
    assert_eq!(drv.snapshot_create("d", &snap("s1"), 0).unwrap_err().code, codes::OPERATION_FAILED);
    step(false, "a refused create");
    other.snapshot_create("d", &snap("s2"), 0).unwrap();
    step(true, "another connection's create");
    drv.snapshot_revert("d", "s1", 0).unwrap();
    step(true, "revert");
    drv.snapshot_delete("d", "s2", 0).unwrap();
    step(true, "delete");
    drv.domain_undefine("d", domain_undefine::SNAPSHOTS_METADATA).unwrap();
    let e = drv.snapshot_generation("d").unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::NO_DOMAIN, "no domain with matching name 'd'"));
}
