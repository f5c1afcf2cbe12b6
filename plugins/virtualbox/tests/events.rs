//! What VirtualBox does without virtplug reaches an SSE client of virtplugd as events (ABI 1.1
//! host services; the connection's watcher, `src/watch.rs`, polling VBoxManage): a machine
//! powered off, paused and aborted through the VBoxManage simulator's `--sim-control` (as
//! VirtualBox's own window or a crash would) shows on `/v1/events` as `domain.stopped`,
//! `domain.suspended`, `domain.stopped`; a start through virtplugd in between is reported once
//! (by the daemon), not again by the watcher.
//!
//! Needs the simulator, the built plugin and the built daemon (`cargo build -p vboxmanage-sim
//! -p virtplug-plugin-virtualbox -p virtplug-daemon`); under CI=true a missing simulator fails.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use virtplug_test_support::{Daemon, EventStream, VIRTUALBOX, request, target_dir};

/// How long an event may take before the test fails (a bound on a failure, not a measurement).
const GIVE_UP: Duration = Duration::from_secs(60);

/// A wrapper script that runs the simulator on its own home (the plugin runs VBoxManage with an
/// argv only).
fn wrapper(dir: &Path) -> Option<PathBuf> {
    let sim = target_dir().join("VBoxManage");
    if !sim.is_file() {
        return virtplug_test_support::missing(
            "VirtualBox event tests",
            format!("the VBoxManage simulator is not built at {}: run `cargo build -p vboxmanage-sim`", sim.display()),
        );
    }
    let home = dir.join("vbox");
    std::fs::create_dir_all(&home).unwrap();
    let wrapper = dir.join("VBoxManage-wrapper");
    std::fs::write(&wrapper, format!("#!/bin/sh\nVBOXSIM_HOME='{}' exec '{}' \"$@\"\n", home.display(), sim.display()))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    Some(wrapper)
}

/// `VBoxManage --sim-control …`: a change VirtualBox makes without virtplug.
fn sim_control(wrapper: &Path, args: &[&str]) {
    let out = Command::new(wrapper).arg("--sim-control").args(args).output().unwrap();
    assert!(out.status.success(), "--sim-control {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn state_changes_outside_virtplug_reach_an_sse_client() {
    let root = tempfile::tempdir().unwrap();
    let Some(vbm) = wrapper(root.path()) else { return };
    sim_control(&vbm, &["create-vm", "vm1"]);
    sim_control(&vbm, &["set-state", "vm1", "running"]);
    let plugins = root.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(VIRTUALBOX.built(), plugins.join("libvirtplug_plugin_virtualbox.so")).unwrap();
    let uri = format!("vbox:///session?vboxmanage={}", vbm.display());
    let daemon = Daemon::start(&root.path().join("daemon"), &plugins, &["--allow-uri".into(), uri.clone()]);
    let socket = daemon.socket();

    // Opens the daemon's read-write connection (and with it the watcher).
    let (status, body) = request(&socket, "GET", "/v1/domains", &uri);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("vm1"), "{body}");
    let mut events = EventStream::open(&socket);

    sim_control(&vbm, &["set-state", "vm1", "poweroff"]);
    assert_eq!(events.until("domain.stopped", "vm1", &daemon, GIVE_UP), ["domain.stopped"], "{}", daemon.log());
    assert!(daemon.log().contains("detail=poweroff"), "the plugin's detail is logged: {}", daemon.log());

    // virtplugd's own start is told by virtplugd alone; the watcher does not repeat it.
    let (status, body) = request(&socket, "POST", "/v1/domains/vm1/start", &uri);
    assert!((200..300).contains(&status), "{status} {body}");
    sim_control(&vbm, &["set-state", "vm1", "paused"]);
    assert_eq!(
        events.until("domain.suspended", "vm1", &daemon, GIVE_UP),
        ["domain.started", "domain.suspended"],
        "{}",
        daemon.log()
    );
    sim_control(&vbm, &["set-state", "vm1", "aborted"]);
    assert_eq!(events.until("domain.stopped", "vm1", &daemon, GIVE_UP), ["domain.stopped"], "{}", daemon.log());
    assert!(daemon.log().contains("detail=aborted"), "{}", daemon.log());
    let (status, body) = request(&socket, "GET", "/v1/domains/vm1", &uri);
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    // libvirt's VIR_DOMAIN_CRASHED.
    assert_eq!((status, d["state"].as_u64()), (200, Some(6)), "{body}");
}
