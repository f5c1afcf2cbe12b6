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

use crate::common::{DEFINITION, Root, qemu_img};

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
    let old = drv.domain_xml(dom, DEFINITION).unwrap();
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
    sources(&drv.domain_xml(dom, DEFINITION).unwrap()).into_iter().find(|(t, _)| t == target).unwrap().1
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

/// base(0x11) <- a.s1(0x22) <- a.s2(0x33) <- a.s3 (top, 0x44) in `dir`: shut-off snapshots s1,
/// s2, s3 of domain `d` (defined here on `dir`/a.qcow2), each pattern written 1 MiB further.
pub fn three_in(r: &Root, drv: &dyn Driver, dir: &Path) {
    let a = dir.join("a.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", a.to_str().unwrap(), "64M"]);
    drv.domain_define(&crate::common::dom_xml("d", &[("vda", &a, "qcow2", false)])).unwrap();
    write_at(&a, "0", 0x11);
    for (k, s) in ["s1", "s2", "s3"].iter().enumerate() {
        ext_snapshot(r, drv, "d", s, "shutoff");
        write_at(&top(drv, "d", "vda"), &format!("{}M", k + 1), 0x22 + 0x11 * k as u8);
    }
}

/// A new root and its driver with [`three_in`] in the root's own directory.
pub fn three() -> (Root, Box<dyn Driver>) {
    let r = Root::new();
    let drv = r.open();
    three_in(&r, &*drv, r.path());
    (r, drv)
}

/// The data view frozen by snapshot `s` of `d` (its `<domain>`'s first disk source).
pub fn frozen(drv: &dyn Driver, s: &str) -> PathBuf {
    let x = drv.snapshot_xml("d", s, 0).unwrap();
    sources(&x[x.find("<domain type").unwrap()..])[0].1.clone()
}

/// Whether `img` reads patterns `pats` at 0, 1M, 2M and 3M (0 = never written).
pub fn view(img: &Path, pats: [u8; 4]) -> bool {
    ["0", "1M", "2M", "3M"].iter().zip(pats).all(|(off, p)| reads(img, off, p))
}

/// A snapshot document with external memory in `file`.
pub fn mem_snap(name: &str, file: &Path) -> String {
    format!(
        "<domainsnapshot><name>{name}</name><memory snapshot='external' file='{}'/></domainsnapshot>",
        file.display()
    )
}

/// Sets (or with `None` clears) `VIRTPLUG_QEMU_FAULT`, which is process-wide: callers hold
/// their binary's lock so no other test's operation meets the fault.
pub fn set_fault(v: Option<&str>) {
    // SAFETY: callers serialise the tests that read or write the variable (their binary's lock);
    // libtest's own threads do not read the environment.
    unsafe {
        match v {
            Some(v) => std::env::set_var("VIRTPLUG_QEMU_FAULT", v),
            None => std::env::remove_var("VIRTPLUG_QEMU_FAULT"),
        }
    }
}

/// One QMP command on domain `uuid`'s monitor, with the driver's connection closed (qemu
/// serves one client): the `return` value, or the error's `desc` as Err.
pub fn qmp(r: &Root, uuid: &str, cmd: &str, args: serde_json::Value) -> Result<serde_json::Value, String> {
    use std::io::{BufRead, BufReader, Write};
    let sock = r.path().join("run/qemu").join(uuid).join("monitor.sock");
    let s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut rd = BufReader::new(s);
    let mut line = String::new();
    rd.read_line(&mut line).unwrap(); // greeting
    let mut call = |msg: serde_json::Value| -> Result<serde_json::Value, String> {
        w.write_all(format!("{msg}\n").as_bytes()).unwrap();
        loop {
            line.clear();
            rd.read_line(&mut line).unwrap();
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if let Some(r) = v.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = v.get("error") {
                return Err(e["desc"].as_str().unwrap_or("").to_owned());
            }
        }
    };
    call(serde_json::json!({"execute": "qmp_capabilities"})).unwrap();
    call(serde_json::json!({"execute": cmd, "arguments": args}))
}

/// An HMP command line through [`qmp`]'s `human-monitor-command`: its output.
pub fn hmp(r: &Root, line: &str) -> String {
    let out = qmp(r, crate::common::UUID, "human-monitor-command", serde_json::json!({ "command-line": line }));
    out.unwrap().as_str().unwrap_or("").to_owned()
}

/// (top node name, top file, backing file) of device `target` per `query-block`.
pub fn live_top(r: &Root, target: &str) -> (String, String, Option<String>) {
    let v = qmp(r, crate::common::UUID, "query-block", serde_json::json!({})).unwrap();
    let b =
        v.as_array().unwrap().iter().find(|b| b["qdev"].as_str().unwrap().contains(&format!("/{target}/"))).unwrap();
    let i = &b["inserted"];
    (
        i["node-name"].as_str().unwrap().to_owned(),
        i["image"]["filename"].as_str().unwrap().to_owned(),
        i["image"]["backing-image"]["filename"].as_str().map(str::to_owned),
    )
}

/// A guest write of pattern `p` over the first 64 KiB of disk `target`, through HMP qemu-io.
pub fn guest_write(r: &Root, target: &str, p: u8) {
    let out = hmp(r, &format!("qemu-io -d /machine/peripheral/{target}/virtio-backend \"write -P {p} 0 64k\""));
    assert!(!out.contains("error"), "{out}");
}
