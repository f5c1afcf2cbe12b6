//! External-snapshot helpers for the revert/delete/faults tests: snapshots made by hand
//! (overlays with qemu-img, metadata straight into the store, as a REDEFINE would record it),
//! so these tests do not depend on the create path; and qemu-io pattern checks at an offset.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use virtplug_plugin_sdk::{
    Driver,
    model::{
        store::{Store, Sync},
        xml::{self, ParseFlags},
    },
};

use crate::common::{Root, qemu_img};

/// The store of a root (the plugin's SQLite file).
pub fn store(r: &Root) -> Store {
    Store::open(&r.path().join("lib/qemu/virtplug-qemu.db"), Sync::Normal).unwrap()
}

/// Source paths of the disks of a domain document, by target.
pub fn sources(dom_xml: &str) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for disk in dom_xml.split("<disk ").skip(1) {
        let src = disk.split("<source file='").nth(1).and_then(|s| s.split('\'').next()).unwrap();
        let tgt = disk.split("<target dev='").nth(1).and_then(|s| s.split('\'').next()).unwrap();
        out.push((tgt.to_owned(), PathBuf::from(src)));
    }
    out
}

/// libvirt's generated overlay name.
pub fn overlay_of(src: &Path, snap: &str) -> PathBuf {
    let s = src.to_string_lossy();
    let stem = s.rsplit_once('.').filter(|(a, _)| a.len() >= s.rfind('/').unwrap_or(0)).map_or(&*s, |(a, _)| a);
    PathBuf::from(format!("{stem}.{snap}"))
}

/// A disk-only external snapshot of shut-off domain `dom` through the plugin's own create
/// (DISK_ONLY): state `shutoff`, or `disk-snapshot` taken while the domain runs (started for it
/// and stopped again).
pub fn ext_snapshot(r: &Root, drv: &dyn Driver, dom: &str, name: &str, state: &str) {
    let _ = r;
    let running = state == "disk-snapshot";
    if running {
        drv.domain_start(dom).unwrap();
    }
    let x = format!("<domainsnapshot><name>{name}</name></domainsnapshot>");
    drv.snapshot_create(dom, &x, virtplug_plugin_sdk::flags::snapshot_create::DISK_ONLY).unwrap();
    if running {
        drv.domain_destroy(dom).unwrap();
    }
}

/// The same snapshot made by hand, without the create path: a qcow2 overlay per disk on its
/// current source, the definition switched, the metadata stored with `state`.
pub fn ext_snapshot_by_hand(r: &Root, drv: &dyn Driver, dom: &str, name: &str, state: &str) {
    let old = drv.domain_xml(dom, 0).unwrap();
    let mut new = old.clone();
    let mut disks = String::new();
    for (t, src) in sources(&old) {
        let ov = overlay_of(&src, name);
        qemu_img(&["create", "-q", "-f", "qcow2", "-b", src.to_str().unwrap(), "-F", "qcow2", ov.to_str().unwrap()]);
        new = new.replace(&format!("file='{}'", src.display()), &format!("file='{}'", ov.display()));
        disks.push_str(&format!(
            "<disk name='{t}' snapshot='external' type='file'><driver type='qcow2'/><source file='{}'/></disk>",
            ov.display()
        ));
    }
    let text = format!(
        "<domainsnapshot><name>{name}</name><state>{state}</state><creationTime>1700000000</creationTime>\
         <memory snapshot='no'/><disks>{disks}</disks>{old}</domainsnapshot>"
    );
    let def = xml::parse(&text, ParseFlags { redefine: true, ..Default::default() }).unwrap();
    let mut st = store(r);
    let uuid = st.domain_by_name(dom).unwrap().uuid;
    st.create(&uuid, &def).unwrap();
    drop(st);
    drv.domain_define(&new).unwrap();
}

/// The current source of disk `target` of `dom`.
pub fn top(drv: &dyn Driver, dom: &str, target: &str) -> PathBuf {
    sources(&drv.domain_xml(dom, 0).unwrap()).into_iter().find(|(t, _)| t == target).unwrap().1
}

/// Writes pattern `p` at `off` (64 KiB) into the image `img` (qcow2).
pub fn write_at(img: &Path, off: &str, p: u8) {
    let o = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", &format!("write -P {p} {off} 64k"), img.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Whether 64 KiB at `off` read as pattern `p` through the chain of `img`.
pub fn reads(img: &Path, off: &str, p: u8) -> bool {
    let o = Command::new("qemu-io")
        .args(["-f", "qcow2", "-r", "-U", "-c", &format!("read -P {p} {off} 64k"), img.to_str().unwrap()])
        .output()
        .unwrap();
    o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("Pattern verification failed")
}

/// The backing file of `img` as its header names it.
pub fn backing(img: &Path) -> Option<String> {
    let out = qemu_img(&["info", "-U", "--output=json", img.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["backing-filename"].as_str().map(str::to_owned)
}
