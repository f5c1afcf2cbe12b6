//! Side-by-side timings on this machine (not a test): bare `qemu-img snapshot -c` against the
//! plugin's shut-off `snapshot_create`, and a bare QMP `snapshot-save` job against the plugin's
//! running `snapshot_create`, each the median of N runs on a 64 MiB qcow2 image.
//! Run: `cargo run -p virtplug-plugin-qemu --release --example snapshot_timings`.

#![allow(clippy::expect_used, clippy::unwrap_used, reason = "a measurement program fails loudly")]

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    process::Command,
    time::Instant,
};

use virtplug_plugin_qemu::QemuPlugin;
use virtplug_plugin_sdk::Plugin;

const N: usize = 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn img(args: &[&str]) {
    let o = Command::new("qemu-img").args(args).output().expect("qemu-img");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn dom(name: &str, uuid: &str, path: &std::path::Path) -> String {
    format!("<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{}'/><target dev='vda'/></disk></devices></domain>", path.display())
}

struct Q(BufReader<UnixStream>, UnixStream);

impl Q {
    fn cmd(&mut self, c: &str) -> serde_json::Value {
        self.1.write_all(format!("{c}\n").as_bytes()).expect("write");
        loop {
            let mut l = String::new();
            self.0.read_line(&mut l).expect("read");
            let v: serde_json::Value = serde_json::from_str(&l).expect("json");
            if v.get("return").is_some() || v.get("error").is_some() {
                return v;
            }
        }
    }
    fn until_concluded(&mut self, id: &str) {
        loop {
            let mut l = String::new();
            self.0.read_line(&mut l).expect("read");
            if l.contains("concluded") && l.contains(id) {
                return;
            }
        }
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // --- shut off ---
    let bare = root.join("bare.qcow2");
    img(&["create", "-q", "-f", "qcow2", bare.to_str().expect("utf8"), "64M"]);
    let mut t_bare = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        img(&["snapshot", "-c", &format!("b{i}"), bare.to_str().expect("utf8")]);
        t_bare.push(t.elapsed().as_secs_f64() * 1e3);
        img(&["snapshot", "-d", &format!("b{i}"), bare.to_str().expect("utf8")]);
    }
    let p = root.join("p.qcow2");
    img(&["create", "-q", "-f", "qcow2", p.to_str().expect("utf8"), "64M"]);
    let uri = format!("qemu:///embed?root={}&accel=tcg", root.display());
    let drv = QemuPlugin::open(&uri, false).expect("open");
    drv.domain_define(&dom("d", "6695eb01-f6a4-8304-79aa-97f2502e193f", &p)).expect("define");
    let mut t_plug = Vec::new();
    for i in 0..N {
        let x = format!("<domainsnapshot><name>p{i}</name></domainsnapshot>");
        let t = Instant::now();
        drv.snapshot_create("d", &x, 0).expect("create");
        t_plug.push(t.elapsed().as_secs_f64() * 1e3);
        drv.snapshot_delete("d", &format!("p{i}"), 0).expect("delete");
    }
    let (b, pl) = (median(t_bare), median(t_plug));
    println!("shut off: qemu-img snapshot -c {b:.2} ms, plugin snapshot_create {pl:.2} ms, ratio {:.2}", pl / b);

    // --- running ---
    let q2 = root.join("q.qcow2");
    img(&["create", "-q", "-f", "qcow2", q2.to_str().expect("utf8"), "64M"]);
    let sock = root.join("bare.sock");
    let st = Command::new("qemu-system-x86_64")
        .args(["-machine", "pc,accel=tcg", "-m", "64", "-nodefaults", "-display", "none", "-S",
               "-blockdev", &format!("driver=file,filename={},node-name=f0", q2.display()),
               "-blockdev", "driver=qcow2,file=f0,node-name=d0", "-device", "virtio-blk-pci,drive=d0",
               "-qmp", &format!("unix:{},server=on,wait=off", sock.display()),
               "-pidfile", &root.join("bare.pid").display().to_string(), "-daemonize"])
        .status()
        .expect("qemu");
    assert!(st.success());
    let s = UnixStream::connect(&sock).expect("connect");
    let mut q = Q(BufReader::new(s.try_clone().expect("clone")), s);
    let mut g = String::new();
    q.0.read_line(&mut g).expect("greeting");
    q.cmd(r#"{"execute":"qmp_capabilities"}"#);
    q.cmd(r#"{"execute":"cont"}"#);
    let mut t_bare = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        q.cmd(&format!(r#"{{"execute":"snapshot-save","arguments":{{"job-id":"j{i}","tag":"b{i}","vmstate":"d0","devices":["d0"]}}}}"#));
        q.until_concluded(&format!("j{i}"));
        q.cmd(r#"{"execute":"query-jobs"}"#);
        q.cmd(&format!(r#"{{"execute":"job-dismiss","arguments":{{"id":"j{i}"}}}}"#));
        t_bare.push(t.elapsed().as_secs_f64() * 1e3);
        q.cmd(&format!(r#"{{"execute":"snapshot-delete","arguments":{{"job-id":"x{i}","tag":"b{i}","devices":["d0"]}}}}"#));
        q.until_concluded(&format!("x{i}"));
        q.cmd(&format!(r#"{{"execute":"job-dismiss","arguments":{{"id":"x{i}"}}}}"#));
    }
    q.cmd(r#"{"execute":"quit"}"#);
    drv.domain_start("d").expect("start");
    let mut t_plug = Vec::new();
    for i in 0..N {
        let x = format!("<domainsnapshot><name>r{i}</name></domainsnapshot>");
        let t = Instant::now();
        drv.snapshot_create("d", &x, 0).expect("create");
        t_plug.push(t.elapsed().as_secs_f64() * 1e3);
        drv.snapshot_delete("d", &format!("r{i}"), 0).expect("delete");
    }
    drv.snapshot_create("d", "<domainsnapshot><name>keep</name></domainsnapshot>", 0).expect("create");
    let mut t_rev = Vec::new();
    for _ in 0..N {
        let t = Instant::now();
        drv.snapshot_revert("d", "keep", 0).expect("revert");
        t_rev.push(t.elapsed().as_secs_f64() * 1e3);
    }
    drv.domain_destroy("d").expect("destroy");
    let (b, pl) = (median(t_bare), median(t_plug));
    println!("running: QMP snapshot-save job {b:.2} ms, plugin snapshot_create {pl:.2} ms, ratio {:.2}", pl / b);
    println!("running: plugin revert (in place, no qemu restart) {:.2} ms", median(t_rev));
}
