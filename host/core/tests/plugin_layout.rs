//! Which files of a plugin directory the host loads, and what a command says when the plugin it
//! needed exists but was refused: test fixtures (`libvirtplug_fixture_*.so`) are never loaded
//! from a directory (so `VIRTPLUG_PLUGIN_DIR=target/release` shows only real plugins), any other
//! `.so` is (refused with its reason when it is not a plugin); a refused plugin is named in the
//! connection error; a plugin's NO_CONNECT detail is not run into libvirt's prefix.
//!
//! Needs the built mock plugin, the panicky fixture and the CLI (`cargo build --workspace`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed expectation is the failure")]

use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};

use virtplug_host::{Connection, PluginDirs, Registry, codes};
use virtplug_test_support::{MOCK, VIRTPLUG, fixture};

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    chmod(to, 0o644);
}

#[test]
fn fixtures_are_never_loaded_from_a_directory_other_names_are() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    copy(&MOCK.built(), &dir.join("libvirtplug_plugin_mock.so"));
    copy(&fixture("panicky").built(), &dir.join("libvirtplug_fixture_panicky.so"));
    copy(&fixture("panicky").built(), &dir.join("libsomething-else.so"));
    std::fs::write(dir.join("libnotes.so"), b"not a library").unwrap();
    chmod(&dir.join("libnotes.so"), 0o644);
    let registry = Registry::discover(&PluginDirs { dirs: vec![dir.to_owned()], beside_executable: vec![] });
    let mut loaded: Vec<String> = registry.plugins().iter().map(|p| p.info.name.to_string()).collect();
    loaded.sort();
    assert_eq!(loaded, ["mock", "panicky"]);
    let refused: Vec<String> = registry.refused().iter().map(ToString::to_string).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].starts_with(&format!("cannot load plugin {}: ", dir.join("libnotes.so").display())));
}

#[test]
fn a_refused_plugin_is_named_in_the_connection_error() {
    let tmp = tempfile::tempdir().unwrap();
    let so = tmp.path().join("libvirtplug_plugin_toyvmm.so");
    copy(&MOCK.built(), &so);
    chmod(&so, 0o666);
    let out = Command::new(VIRTPLUG.built())
        .args(["-c", "toyvmm:///x", "list"])
        .env("VIRTPLUG_PLUGIN_DIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: failed to connect to the hypervisor\nerror: no connection driver available for toyvmm:///x (plugin {} was refused: group- and world-writable (mode 0666); a plugin must not be writable by group or others)\n",
            so.display()
        )
    );
    // A scheme no file claims stays the plain libvirt text.
    let out = Command::new(VIRTPLUG.built())
        .args(["-c", "nosuch:///x", "list"])
        .env("VIRTPLUG_PLUGIN_DIR", tmp.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: failed to connect to the hypervisor\nerror: no connection driver available for nosuch:///x\n"
    );
}

#[test]
fn a_plugins_no_connect_detail_follows_the_uri() {
    let tmp = tempfile::tempdir().unwrap();
    let mut registry = Registry::default();
    registry.add(virtplug_host::load_plugin(&MOCK.built()).unwrap());
    let uri = format!("mock://{}", tmp.path().display());
    // SAFETY: this test binary changes the environment in this test only; the other tests here
    // do not read VIRTPLUG_MOCK_SYNC (the mock reads it at open).
    unsafe { std::env::set_var("VIRTPLUG_MOCK_SYNC", "sometimes") };
    let Err(e) = Connection::open(&registry, &uri, false) else { panic!("opened {uri}") };
    unsafe { std::env::remove_var("VIRTPLUG_MOCK_SYNC") };
    assert_eq!(
        (e.code(), e.to_string()),
        (
            codes::NO_CONNECT,
            format!(
                "no connection driver available for {uri} (VIRTPLUG_MOCK_SYNC must be 'normal' or 'full', not 'sometimes')"
            )
        )
    );
    // A detail that starts with the URI (the in-tree plugins' form) is left alone.
    let Err(e) = Connection::open(&registry, "mock://host/x", false) else { panic!("opened mock://host/x") };
    assert_eq!(
        e.to_string(),
        "no connection driver available for mock://host/x (the mock driver accepts mock:///default or mock:///<absolute directory>)"
    );
}
