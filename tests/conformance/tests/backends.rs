//! The suite against every in-tree plugin with its real or simulated backend: qemu with a real
//! qcow2 image, vSphere against the simulator in its ESX and vCenter models, VirtualBox against
//! the VBoxManage simulator. Each run goes through the CLI with `--format json` and must exit 0,
//! report no failure and pass a non-trivial number of cases.
//!
//! Under `CI=true` a missing backend or plugin fails the test; elsewhere the test says why once
//! and returns. Simulators and any qemu a run leaves behind are killed on drop.
#![allow(clippy::expect_used, reason = "tests: a failed expectation is the test failure")]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::Value;
use virtplug_test_support::{missing, plugin, target_dir, target_root};

/// Fewer passes than this means the behavioural level did not really run.
const MIN_PASSED: u64 = 60;

/// `None` after saying why (outside CI); a failure under `CI=true`.
fn unavailable<T>(why: &str) -> Option<T> {
    missing("a conformance backend test", why)
}

/// The built plugin `lib<name>.so`.
fn built_plugin(name: &str) -> Option<PathBuf> {
    plugin(name).find().map_or_else(|why| unavailable(&why), Some)
}

fn runs(bin: &str) -> bool {
    Command::new(bin).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Runs the CLI with `--format json`; checks exit code 0, no failure, at least
/// [`MIN_PASSED`] passes; prints the counts and timings.
fn passes(label: &str, plugin: &Path, uri: &str, domain: &str, env: &[(&str, &str)], extra: &[&str]) -> Value {
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_virtplug-conformance"))
        .arg("--plugin")
        .arg(plugin)
        .args(["--uri", uri, "--domain", domain, "--format", "json", "--timeout", "60"])
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run virtplug-conformance");
    let text = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{label}: not JSON ({e}): {text}\nstderr: {stderr}"));
    let cases = report["cases"].as_array().cloned().unwrap_or_default();
    let count = |status: &str| cases.iter().filter(|c| c["status"] == status).count() as u64;
    let (passed, failed, skipped) = (count("pass"), count("fail"), count("skip"));
    let describe = |c: &Value| format!("{}: {} (expected {}, got {})", c["id"], c["message"], c["expected"], c["got"]);
    let failures: Vec<String> = cases.iter().filter(|c| c["status"] == "fail").map(describe).collect();
    assert!(failures.is_empty(), "{label}: {} case(s) failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(out.status.code(), Some(0), "{label}: exit code; stderr: {stderr}");
    assert!(
        passed >= MIN_PASSED,
        "{label}: only {passed} cases passed ({skipped} skipped); expected at least {MIN_PASSED}"
    );
    eprintln!(
        "{label}: {passed} passed, {failed} failed, {skipped} skipped; static {} ms, behavioural {} ms, total {} ms (wall {} ms)",
        report["static_millis"],
        report["behaviour_millis"],
        report["total_millis"],
        t.elapsed().as_millis()
    );
    report
}

fn status<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["cases"].as_array().and_then(|cs| cs.iter().find(|c| c["id"] == id)).map_or(&Value::Null, |c| &c["status"])
}

/// Cases that must have run (passed), not been skipped, for the run to mean something.
fn ran(label: &str, report: &Value, ids: &[&str]) {
    for id in ids {
        assert_eq!(status(report, id), "pass", "{label}: {id}");
    }
}

// --- qemu --------------------------------------------------------------------------------------

/// Kills every qemu started under an embed root (the suite stops what it starts; this is for a
/// run that was interrupted).
struct QemuRoot {
    dir: tempfile::TempDir,
}

impl Drop for QemuRoot {
    fn drop(&mut self) {
        let Ok(rd) = std::fs::read_dir(self.dir.path().join("r/run/qemu")) else { return };
        for pid in rd
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("qemu.pid")).ok())
            .filter_map(|s| s.trim().parse::<i32>().ok())
        {
            // SAFETY: signals to a pid the embed root recorded for a qemu it started.
            unsafe {
                libc::kill(pid, libc::SIGCONT);
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

#[test]
fn qemu_with_a_real_qcow2_image() {
    let missing: Vec<&str> = ["qemu-img", "qemu-system-x86_64"].into_iter().filter(|b| !runs(b)).collect();
    if !missing.is_empty() {
        return unavailable(&format!(
            "{} not found on PATH (install qemu-utils and qemu-system-x86)",
            missing.join(" and ")
        ))
        .unwrap_or(());
    }
    let Some(so) = built_plugin("virtplug_plugin_qemu") else { return };
    let root = QemuRoot { dir: tempfile::tempdir().expect("tempdir") };
    let image = root.dir.path().join("test.qcow2");
    let img = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&image)
        .arg("64M")
        .output()
        .expect("qemu-img");
    assert!(img.status.success(), "qemu-img create: {}", String::from_utf8_lossy(&img.stderr));
    let uri = format!(
        "qemu:///embed?root={}&accel=tcg&qmp_timeout_ms=20000&shutdown_timeout_ms=300",
        root.dir.path().join("r").display()
    );
    // Define the domain through the host, as `virtplug define` would.
    let xml = format!(
        "<domain type='qemu'>\n  <name>test</name>\n  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>\n  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type>hvm</type>\n  </os>\n  <devices>\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='{}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n  </devices>\n</domain>",
        image.display()
    );
    {
        let loaded = virtplug_host::load_plugin(&so).expect("load the qemu plugin");
        let mut registry = virtplug_host::Registry::default();
        registry.add(loaded);
        let conn = virtplug_host::Connection::open(&registry, &uri, false).expect("open the embed root");
        conn.domain_define(&xml).expect("define domain test");
    }
    // The --probe hook: is the snapshot's internal tag still in the qcow2 image (-U: the
    // domain's qemu may hold the image open)?
    let probe = root.dir.path().join("probe.sh");
    std::fs::write(
        &probe,
        format!(
            "if qemu-img snapshot -l -U '{}' | awk 'NR > 2 {{ print $2 }}' | grep -qxF \"$3\"; then echo present; else echo absent; fi\n",
            image.display()
        ),
    )
    .expect("write the probe");
    let probe = format!("sh {}", probe.display());
    let report = passes("qemu", &so, &uri, "test", &[], &["--probe", &probe]);
    ran(
        "qemu",
        &report,
        &[
            "behaviour.probe.delete_removes_payload",
            "behaviour.probe.metadata_only_keeps_payload",
            "behaviour.create_hierarchy",
            "behaviour.redefine_roundtrip",
            "behaviour.no_metadata",
            "behaviour.revert_state",
            "behaviour.undefine_guard",
            "behaviour.create_disk_only",
            "external.create",
            "external.list_filters",
            "external.redefine",
            "external.revert",
            "external.delete",
            "external.delete_children",
        ],
    );
    // qemu reverts to external snapshots (beyond libvirt 9.0), it does not refuse as 9.0 does
    let revert = report["cases"].as_array().and_then(|cs| cs.iter().find(|c| c["id"] == "external.revert"));
    assert_eq!(revert.map(|c| c["note"].clone()), Some(Value::Null), "qemu: external.revert");
}

// --- vSphere -----------------------------------------------------------------------------------

/// A running simulator; killed (and reaped) on drop.
struct Sim {
    child: Child,
    _stdin: Option<ChildStdin>,
    port: u16,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sim_path() -> PathBuf {
    if let Some(p) = std::env::var_os("VSPHERE_SIM") {
        return PathBuf::from(p);
    }
    target_root().join("vsphere-sim/vsphere-sim")
}

/// Starts the simulator (`-model esx|vpx`) on a free port; `-stdin` makes it exit with us.
fn start_sim(model: &str) -> Option<Sim> {
    let path = sim_path();
    if !path.is_file() {
        return unavailable(&format!(
            "vSphere simulator not built ({}): run tests/vsphere-sim/build.sh",
            path.display()
        ));
    }
    let mut child = Command::new(&path)
        .args(["-model", model, "-l", "127.0.0.1:0", "-u", "root:pw", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the vSphere simulator");
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("simulator stdout");
    // The guard owns the child from here on: any failure below still kills it.
    let mut sim = Sim { child, _stdin: stdin, port: 0 };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(port) = line
                .strip_prefix("SDK=http://127.0.0.1:")
                .and_then(|r| r.strip_suffix("/sdk"))
                .and_then(|p| p.parse::<u16>().ok())
            {
                let _ = tx.send(port);
            }
        }
    });
    sim.port = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the simulator did not print SDK=http://127.0.0.1:PORT/sdk within 60 s");
    Some(sim)
}

fn vsphere(model: &str, domain: &str) {
    let Some(so) = built_plugin("virtplug_plugin_vsphere") else { return };
    let Some(sim) = start_sim(model) else { return };
    let uri = format!("vsphere://root@127.0.0.1:{}/?transport=http", sim.port);
    let label = format!("vsphere ({model})");
    let report = passes(&label, &so, &uri, domain, &[("VIRTPLUG_VSPHERE_PASSWORD", "pw")], &[]);
    ran(
        &label,
        &report,
        &[
            "behaviour.create_hierarchy",
            "behaviour.no_metadata",
            "behaviour.delete_metadata_only",
            "behaviour.revert_state",
            "behaviour.create_disk_only",
            "behaviour.list.METADATA",
        ],
    );
    drop(sim);
}

#[test]
fn vsphere_esx_against_the_simulator() {
    vsphere("esx", "ha-host_VM0");
}

#[test]
fn vsphere_vcenter_against_the_simulator() {
    vsphere("vpx", "DC0_H0_VM0");
}

// --- VirtualBox --------------------------------------------------------------------------------

#[test]
fn virtualbox_against_the_vboxmanage_simulator() {
    let sim = target_dir().join("VBoxManage");
    if !sim.is_file() {
        return unavailable(&format!(
            "VBoxManage simulator not built ({}): run `cargo build --workspace`",
            sim.display()
        ))
        .unwrap_or(());
    }
    let Some(so) = built_plugin("virtplug_plugin_virtualbox") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("vbox");
    std::fs::create_dir_all(&home).expect("mkdir");
    let created = Command::new(&sim)
        .args(["--sim-control", "create-vm", "test"])
        .env("VBOXSIM_HOME", &home)
        .output()
        .expect("VBoxManage --sim-control");
    assert!(created.status.success(), "create-vm: {}", String::from_utf8_lossy(&created.stderr));
    // The plugin runs VBoxManage with an argv only: a wrapper carries the simulator's home.
    let wrapper = dir.path().join("VBoxManage-wrapper");
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
    std::fs::write(&wrapper, format!("#!/bin/sh\nVBOXSIM_HOME={} exec {} \"$@\"\n", quote(&home), quote(&sim)))
        .expect("write wrapper");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let uri = format!("vbox:///session?vboxmanage={}", wrapper.display());
    let report = passes("virtualbox", &so, &uri, "test", &[], &[]);
    ran(
        "virtualbox",
        &report,
        &[
            "behaviour.create_hierarchy",
            "behaviour.no_metadata",
            "behaviour.delete_metadata_only",
            "behaviour.revert_state",
            "behaviour.list.NO_METADATA",
        ],
    );
}
