//! Revert to external snapshots (beyond libvirt 9.0, which refuses it): new overlays on the
//! snapshot's frozen images, the abandoned branch kept and revertible, shut off and running,
//! RUNNING / PAUSED, data checked with qemu-io patterns at every step.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;
#[path = "common/ext.rs"]
mod ext;

use common::*;
use ext::*;
use virtplug_plugin_sdk::flags::{snapshot_create as cf, snapshot_revert as rf};

const RUNNING: u32 = 1;
const PAUSED: u32 = 3;
const SHUTOFF: u32 = 5;

#[test]
fn revert_keeps_the_abandoned_branch() {
    if !backend() {
        return;
    }
    let (r, drv, [a, b]) = setup(["a.qcow2", "b.qcow2"]);
    write_at(&a, "0", 0x11);
    write_at(&b, "0", 0x11);
    ext_snapshot(&r, &*drv, "d", "s1", "shutoff");
    let s1_top = top(&*drv, "d", "vda");
    assert_eq!(s1_top, r.at("a.s1"));
    write_at(&s1_top, "1M", 0x22);
    write_at(&top(&*drv, "d", "vdb"), "1M", 0x22);
    ext_snapshot(&r, &*drv, "d", "s2", "shutoff");
    write_at(&top(&*drv, "d", "vda"), "2M", 0x33);
    write_at(&top(&*drv, "d", "vdb"), "2M", 0x33);

    // back to s1: a new overlay on the frozen a.qcow2; what came after s1 is not visible
    drv.snapshot_revert("d", "s1", 0).unwrap();
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 7));
    assert_eq!(drv.snapshot_current("d").unwrap().unwrap().name, "s1");
    let t = top(&*drv, "d", "vda");
    assert_eq!(t, r.at("a.s1-revert1"));
    assert_eq!(backing(&t).unwrap(), a.display().to_string());
    assert_eq!(top(&*drv, "d", "vdb"), r.at("b.s1-revert1"));
    for disk in ["vda", "vdb"] {
        let t = top(&*drv, "d", disk);
        assert!(reads(&t, "0", 0x11) && reads(&t, "1M", 0) && reads(&t, "2M", 0), "{disk}");
    }
    // the abandoned branch is intact
    assert!(reads(&r.at("a.s2"), "1M", 0x22) && reads(&r.at("a.s2"), "2M", 0x33));
    write_at(&t, "3M", 0x44);

    // to s2, on the abandoned branch: its data reappears, the s1 branch's does not
    drv.snapshot_revert("d", "s2", 0).unwrap();
    let t2 = top(&*drv, "d", "vda");
    assert_eq!(t2, r.at("a.s2-revert1"));
    assert_eq!(backing(&t2).unwrap(), r.at("a.s1").display().to_string());
    assert!(reads(&t2, "0", 0x11) && reads(&t2, "1M", 0x22) && reads(&t2, "2M", 0) && reads(&t2, "3M", 0));
    assert_eq!(drv.snapshot_current("d").unwrap().unwrap().name, "s2");
    // the branch that ran after the first revert is kept too
    assert!(reads(&t, "3M", 0x44));

    // RUNNING starts qemu on the new overlays; the next free name is taken
    drv.snapshot_revert("d", "s1", rf::RUNNING).unwrap();
    assert_eq!(state(&*drv, "d"), (RUNNING, 4));
    assert_eq!(r.pids().len(), 1);
    let t3 = top(&*drv, "d", "vda");
    assert_eq!(t3, r.at("a.s1-revert2"));
    assert!(reads(&t3, "0", 0x11) && reads(&t3, "1M", 0));
    // from a running domain, PAUSED: the same qemu switched in place to new overlays on s2's
    // frozen images (a.s1 is not in its graph: opened for the occasion)
    let pid = r.pids()[0];
    drv.snapshot_revert("d", "s2", rf::PAUSED).unwrap();
    assert_eq!(state(&*drv, "d"), (PAUSED, 7));
    assert_eq!(r.pids(), vec![pid]);
    assert!(reads(&top(&*drv, "d", "vda"), "1M", 0x22));
    // ... and again to s1, whose frozen image is in the graph now (a.qcow2 under a.s1)
    drv.snapshot_revert("d", "s1", rf::RUNNING).unwrap();
    assert_eq!((state(&*drv, "d"), r.pids()), ((RUNNING, 4), vec![pid]));
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s1-revert3"));
    drv.snapshot_revert("d", "s2", rf::PAUSED).unwrap();
    assert_eq!(r.pids(), vec![pid]);
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s2-revert3"));
    // qemu really runs on the new overlay: a live delete of the next snapshot taken on it
    // merges through qemu's graph
    drv.domain_resume("d").unwrap();
    drv.snapshot_create("d", &snap("t"), cf::DISK_ONLY).unwrap();
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.t"));
    assert_eq!(backing(&r.at("a.t")).unwrap(), r.at("a.s2-revert3").display().to_string());
    drv.snapshot_delete("d", "t", 0).unwrap();
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.s2-revert3"));
    assert_eq!(r.pids(), vec![pid]);
    // a shut-off snapshot without flags stops the domain
    drv.snapshot_revert("d", "s1", 0).unwrap();
    assert_eq!(state(&*drv, "d"), (SHUTOFF, 7));
    assert!(r.pids().is_empty());
}

#[test]
fn disk_only_snapshot_of_a_running_domain_reverts_running() {
    if !backend() {
        return;
    }
    let (r, drv, [a]) = setup(["a.qcow2"]);
    write_at(&a, "0", 0x11);
    ext_snapshot(&r, &*drv, "d", "live", "disk-snapshot");
    write_at(&top(&*drv, "d", "vda"), "0", 0x22);
    drv.snapshot_revert("d", "live", 0).unwrap();
    assert_eq!(state(&*drv, "d"), (RUNNING, 4));
    assert!(reads(&top(&*drv, "d", "vda"), "0", 0x11));
    drv.snapshot_revert("d", "live", rf::PAUSED).unwrap();
    assert_eq!(state(&*drv, "d"), (PAUSED, 7));
    // a snapshot taken after the revert has the reverted-to snapshot as parent
    drv.domain_destroy("d").unwrap();
    ext_snapshot(&r, &*drv, "d", "after", "shutoff");
    assert_eq!(drv.snapshot_lookup("d", "after").unwrap().parent.as_deref(), Some("live"));
}

#[test]
fn missing_frozen_image_changes_nothing() {
    if !backend() {
        return;
    }
    let (r, drv, [_]) = setup(["a.qcow2"]);
    // recorded by hand (as a REDEFINE from elsewhere would), not by this plugin's create
    ext_snapshot_by_hand(&r, &*drv, "d", "s1", "shutoff");
    ext_snapshot_by_hand(&r, &*drv, "d", "s2", "shutoff");
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    std::fs::rename(r.at("a.s1"), r.at("gone")).unwrap();
    let e = drv.snapshot_revert("d", "s2", 0).unwrap_err();
    assert_eq!(e.code, 55);
    assert_eq!(
        e.message,
        format!("Cannot access storage file '{}': No such file or directory (os error 2)", r.at("a.s1").display())
    );
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert_eq!(drv.snapshot_current("d").unwrap().unwrap().name, "s2");
    assert!(!r.at("a.s2-revert1").exists());
}

#[test]
fn memory_snapshot_reverts_through_incoming_migration() {
    if !backend() {
        return;
    }
    let (r, drv, [a]) = setup(["a.qcow2"]);
    write_at(&a, "0", 0x11);
    drv.domain_start("d").unwrap();
    let mem = r.at("m1.mem");
    let x = mem_snap("m1", &mem);
    drv.snapshot_create("d", &x, 0).unwrap();
    assert_eq!(drv.snapshot_lookup("d", "m1").unwrap().state, RUNNING);
    drv.domain_destroy("d").unwrap();
    write_at(&top(&*drv, "d", "vda"), "0", 0x22);
    let cmdline =
        |pid: i32| String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap()).replace('\0', " ");
    // shut off -> the snapshot's state (running): qemu loads the memory file, then runs
    drv.snapshot_revert("d", "m1", 0).unwrap();
    assert_eq!(state(&*drv, "d"), (RUNNING, 4));
    let pid = r.pids()[0];
    assert!(cmdline(pid).contains("-incoming defer"), "{}", cmdline(pid));
    assert_eq!(top(&*drv, "d", "vda"), r.at("a.m1-revert1"));
    assert!(reads(&top(&*drv, "d", "vda"), "0", 0x11));
    // running -> PAUSED: a new qemu (memory cannot be loaded into a running one), left paused
    drv.snapshot_revert("d", "m1", rf::PAUSED).unwrap();
    assert_eq!(state(&*drv, "d"), (PAUSED, 7));
    assert_ne!(r.pids(), vec![pid]);
    assert!(cmdline(r.pids()[0]).contains("-incoming defer"));
    drv.domain_resume("d").unwrap();
    assert_eq!(state(&*drv, "d").0, RUNNING);
    // a memory file that is not a complete save image is refused before anything changes
    std::fs::write(&mem, b"LibvirtQemudPart").unwrap();
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    let e = drv.snapshot_revert("d", "m1", 0).unwrap_err();
    assert_eq!(e.code, 55);
    assert!(
        e.message.contains("is not a complete libvirt save image") || e.message.contains("cannot read memory file"),
        "{e}"
    );
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    // delete removes the memory file with the snapshot (libvirt 9.1; 9.0 leaked it)
    drv.domain_destroy("d").unwrap();
    drv.snapshot_delete("d", "m1", 0).unwrap();
    assert!(!mem.exists());
    assert!(list(&*drv, "d").is_empty());
}

/// `xor ax, ax; mov ds, ax; l: inc dword [0x7e00]; jmp l`: the guest counts in RAM at 0x7e00.
const COUNTER: [u8; 11] = [0x31, 0xC0, 0x8E, 0xD8, 0x66, 0xFF, 0x06, 0x00, 0x7E, 0xEB, 0xF9];

/// Guest RAM 0x7000..0x8000 (the counting code at 0x7c00 and its counter) through QMP
/// `pmemsave`, with the driver's connection closed (qemu serves one client).
fn ram(r: &Root) -> Vec<u8> {
    let file = r.at("ram.dump");
    let args = serde_json::json!({ "val": 0x7000, "size": 4096, "filename": file });
    qmp(r, common::UUID, "pmemsave", args).unwrap();
    std::fs::read(&file).unwrap()
}

fn counter(ram: &[u8]) -> u32 {
    u32::from_le_bytes(ram[0xe00..0xe04].try_into().unwrap())
}

/// Asserts that two dumps are the same bytes, naming their counters when they are not.
fn same_ram(got: &[u8], want: &[u8], what: &str) {
    assert!(got == want, "{what}: RAM differs (counter {} where {} was dumped)", counter(got), counter(want));
}

/// Lets the guest run until its counter differs from `from` (bounded by tries, not by time),
/// then pauses it: its RAM then.
fn run_past(r: &Root, from: u32) -> Vec<u8> {
    let drv = r.open();
    drv.domain_resume("d").unwrap();
    drop(drv);
    let moved = (0..500).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(10));
        counter(&ram(r)) != from
    });
    assert!(moved, "the guest's counter stays at {from}");
    r.open().domain_suspend("d").unwrap();
    ram(r)
}

#[test]
fn memory_revert_restores_the_guests_ram() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let boot = boot_image(&r, "count.qcow2", &COUNTER);
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &boot, "qcow2", false)])).unwrap();
    drv.domain_start("d").unwrap();
    drv.domain_suspend("d").unwrap();
    drop(drv);
    // m1: the guest paused after it counted a while; its RAM then
    let at_m1 = run_past(&r, 0);
    let drv = r.open();
    drv.snapshot_create("d", &mem_snap("m1", &r.at("m1.mem")), 0).unwrap();
    assert_eq!(state(&*drv, "d").0, PAUSED);
    drop(drv);
    same_ram(&ram(&r), &at_m1, "after taking m1");
    // the other branch counts on: m2 holds different RAM
    let at_m2 = run_past(&r, counter(&at_m1));
    assert!(at_m2 != at_m1 && counter(&at_m2) != counter(&at_m1));
    r.open().snapshot_create("d", &mem_snap("m2", &r.at("m2.mem")), 0).unwrap();
    // back to m1: a new qemu loads m1's RAM, left paused as m1 was; byte for byte m1's
    let pid = r.pids()[0];
    let drv = r.open();
    drv.snapshot_revert("d", "m1", 0).unwrap();
    assert_eq!(state(&*drv, "d"), (PAUSED, 7));
    assert_ne!(r.pids(), vec![pid]);
    drop(drv);
    same_ram(&ram(&r), &at_m1, "reverted to m1");
    // and to m2 on the other branch: its RAM, not m1's
    r.open().snapshot_revert("d", "m2", 0).unwrap();
    same_ram(&ram(&r), &at_m2, "reverted to m2");
    // the restored guest runs on from there
    let on = run_past(&r, counter(&at_m2));
    assert!(counter(&on) != counter(&at_m2) && on[..0xe00] == at_m2[..0xe00]);
}
