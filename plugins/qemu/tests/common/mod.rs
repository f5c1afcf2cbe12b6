//! Shared test helpers: backend detection (fails under CI=true, skips once otherwise), embed
//! roots in temporary directories, real images made with qemu-img, and a guard that kills every
//! qemu a root started.
#![allow(dead_code, reason = "each test binary uses a subset")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use virtplug_plugin_qemu::QemuPlugin;
use virtplug_plugin_sdk::Driver;

/// `domain_xml` flags for the persistent definition (what the tests compare: live XML also
/// names a running domain's id).
pub const DEFINITION: u32 = virtplug_plugin_sdk::flags::domain_xml::INACTIVE;

/// Whether qemu-img and qemu-system-x86_64 run. Under CI=true a missing one is a failure.
pub fn backend() -> bool {
    let ok = |bin: &str| Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = ["qemu-img", "qemu-system-x86_64"].into_iter().filter(|b| !ok(b)).collect();
    if missing.is_empty() {
        return true;
    }
    let what =
        format!("{} missing (install qemu-utils and qemu-system-x86: .ci/run installs them)", missing.join(" and "));
    virtplug_test_support::missing::<()>("qemu plugin tests", what).is_some()
}

/// One `qemu:///embed` root; dropping it kills every qemu it started.
pub struct Root {
    pub dir: tempfile::TempDir,
    pub extra: String,
}

impl Root {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap(), extra: "&qmp_timeout_ms=5000&shutdown_timeout_ms=300".into() }
    }
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    /// The file `name` in the root.
    pub fn at(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
    pub fn uri(&self) -> String {
        format!("qemu:///embed?root={}&accel=tcg{}", self.path().display(), self.extra)
    }
    pub fn open(&self) -> Box<dyn Driver> {
        // Behind the SDK's checks, as the host calls it.
        virtplug_plugin_sdk::open_checked::<QemuPlugin>(&self.uri(), false).unwrap()
    }
    /// A fresh 64 MiB image in the root.
    pub fn image(&self, name: &str, fmt: &str) -> PathBuf {
        let p = self.path().join(name);
        qemu_img(&["create", "-q", "-f", fmt, p.to_str().unwrap(), "64M"]);
        p
    }
    /// Pids of the qemus started under this root.
    pub fn pids(&self) -> Vec<i32> {
        let Ok(rd) = std::fs::read_dir(self.path().join("run/qemu")) else { return Vec::new() };
        rd.flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("qemu.pid")).ok())
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for pid in self.pids() {
            unsafe { libc::kill(pid, libc::SIGCONT) };
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A 1 MiB qcow2 image `name` in `root` whose boot sector runs `code` (16-bit, at 0x7c00), for
/// an OS-less guest that does something observable.
pub fn boot_image(root: &Root, name: &str, code: &[u8]) -> PathBuf {
    let mut sector = vec![0u8; 512];
    sector[..code.len()].copy_from_slice(code);
    sector[510] = 0x55;
    sector[511] = 0xAA;
    sector.resize(1 << 20, 0);
    let raw = root.path().join(format!("{name}.raw"));
    std::fs::write(&raw, &sector).unwrap();
    let img = root.path().join(name);
    qemu_img(&["convert", "-q", "-f", "raw", "-O", "qcow2", raw.to_str().unwrap(), img.to_str().unwrap()]);
    std::fs::remove_file(&raw).unwrap();
    img
}

pub fn qemu_img(args: &[&str]) -> String {
    let o = Command::new("qemu-img").args(args).output().unwrap();
    assert!(o.status.success(), "qemu-img {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Snapshot tags and vm-state sizes per `qemu-img info --output=json -U`.
pub fn tags(img: &Path) -> Vec<(String, u64)> {
    let out = qemu_img(&["info", "-U", "--output=json", img.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["snapshots"]
        .as_array()
        .map(|a| {
            a.iter().map(|s| (s["name"].as_str().unwrap().to_owned(), s["vm-state-size"].as_u64().unwrap())).collect()
        })
        .unwrap_or_default()
}

pub fn names(img: &Path) -> Vec<String> {
    tags(img).into_iter().map(|t| t.0).collect()
}

/// Writes pattern byte `p` over the first 64 KiB with qemu-io.
pub fn write_pattern(img: &Path, p: u8) {
    let o = Command::new("qemu-io")
        .args(["-f", "qcow2", "-c", &format!("write -P {p} 0 64k"), img.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Whether the first 64 KiB hold pattern byte `p`.
pub fn has_pattern(img: &Path, p: u8) -> bool {
    let o = Command::new("qemu-io")
        .args(["-f", "qcow2", "-r", "-U", "-c", &format!("read -P {p} 0 64k"), img.to_str().unwrap()])
        .output()
        .unwrap();
    o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("Pattern verification failed")
}

pub const UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// A domain document with `disks` = (target, path, format, readonly).
pub fn dom_xml(name: &str, disks: &[(&str, &Path, &str, bool)]) -> String {
    let mut d = String::new();
    for (t, p, f, ro) in disks {
        d.push_str(&format!(
            "    <disk type='file' device='disk'>\n      <driver name='qemu' type='{f}'/>\n      <source file='{}'/>\n      <target dev='{t}' bus='virtio'/>{}\n    </disk>\n",
            p.display(),
            if *ro { "\n      <readonly/>" } else { "" }
        ));
    }
    format!(
        "<domain type='qemu'>\n  <name>{name}</name>\n  <uuid>{UUID}</uuid>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type>hvm</type>\n  </os>\n  <devices>\n{d}  </devices>\n</domain>"
    )
}

pub fn snap(name: &str) -> String {
    format!("<domainsnapshot><name>{name}</name></domainsnapshot>")
}

pub fn list(drv: &dyn Driver, dom: &str) -> Vec<String> {
    drv.snapshot_list(dom, 0).unwrap().into_iter().map(|s| s.name).collect()
}

/// A root, its driver and shut-off domain `d` with one disk per file in `files` (vda, vdb, …
/// in order): fresh 64 MiB images, raw for a `.raw` name, qcow2 otherwise.
pub fn setup<const N: usize>(files: [&str; N]) -> (Root, Box<dyn Driver>, [PathBuf; N]) {
    let r = Root::new();
    let fmt = |f: &str| if f.ends_with(".raw") { "raw" } else { "qcow2" };
    let imgs: Vec<PathBuf> = files.iter().map(|f| r.image(f, fmt(f))).collect();
    let targets = ["vda", "vdb", "vdc", "vdd"];
    let disks: Vec<(&str, &Path, &str, bool)> =
        imgs.iter().zip(files).enumerate().map(|(k, (p, f))| (targets[k], p.as_path(), fmt(f), false)).collect();
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &disks)).unwrap();
    (r, drv, imgs.try_into().unwrap())
}

/// [`setup`] with `d` started.
pub fn setup_running<const N: usize>(files: [&str; N]) -> (Root, Box<dyn Driver>, [PathBuf; N]) {
    let (r, drv, imgs) = setup(files);
    drv.domain_start("d").unwrap();
    (r, drv, imgs)
}

/// (state, reason) of `dom`.
pub fn state(drv: &dyn Driver, dom: &str) -> (u32, u32) {
    let i = drv.domain_lookup_by_name(dom).unwrap();
    (i.state, i.reason)
}
