//! `snapshot-export DOM > file` and `snapshot-export DOM --file file` write the same bytes, and
//! `snapshot-import` reads either (issue 11.5: stdout once carried an extra newline that import
//! refused). Runs the built `virtplug` against the mock plugin (`mock:///<tempdir>`); without
//! the plugin it fails under `CI=true` and is skipped with a note otherwise.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::{path::Path, process::Command};

use virtplug_test_support::{MOCK, require};

const BIN: &str = env!("CARGO_BIN_EXE_virtplug");

/// Runs `virtplug -c mock://<dir> args…` and returns stdout; fails on a non-zero exit.
fn virtplug(dir: &Path, config: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(BIN)
        .arg("-c")
        .arg(format!("mock://{}", dir.display()))
        .args(args)
        .env_remove("VIRTPLUG_PLUGIN_DIR")
        .env_remove("VIRTPLUG_CONFIG")
        .env_remove("VIRTPLUG_DEFAULT_URI")
        .env("XDG_CONFIG_HOME", config)
        .env("HOME", config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn stdout_and_file_exports_are_the_same_bytes_and_both_import() {
    require!(MOCK.require("the bundle byte test"));
    let (source, target, config) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let src = source.path();
    virtplug(src, config.path(), &["snapshot-create-as", "test", "s1", "--description", "first"]);
    virtplug(src, config.path(), &["snapshot-create-as", "test", "s2"]);
    let stdout = virtplug(src, config.path(), &["snapshot-export", "test"]);
    let file = src.join("file.bundle");
    virtplug(src, config.path(), &["snapshot-export", "test", "--file", file.to_str().unwrap()]);
    let written = std::fs::read(&file).unwrap();
    assert_eq!(String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&written));
    assert!(written.ends_with(b"</virtplugSnapshotBundle>\n"));

    let redirected = src.join("stdout.bundle");
    std::fs::write(&redirected, &stdout).unwrap();
    let tgt = target.path();
    for bundle in [&redirected, &file] {
        let out = virtplug(tgt, config.path(), &["snapshot-import", "test", bundle.to_str().unwrap(), "--dry-run"]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Domain 'test': 2 snapshots can be imported (dry run, nothing changed)\n\n"
        );
    }
    virtplug(tgt, config.path(), &["snapshot-import", "test", redirected.to_str().unwrap()]);
    assert_eq!(virtplug(tgt, config.path(), &["snapshot-export", "test"]), stdout);
}
