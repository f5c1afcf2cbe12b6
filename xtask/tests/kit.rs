//! `cargo xtask new-plugin` and `cargo xtask install`, run as a user runs them.
//!
//! The scaffolded plugin is generated into a temporary directory and its own `cargo test` (the
//! whole conformance suite through `test_plugin!`) must pass as generated. Its target dir is
//! shared between runs (`target/scaffold`) so that only the plugin itself is rebuilt.
//! The install test uses the debug build (`--debug`) so it does not rebuild everything in release.
#![allow(clippy::expect_used, reason = "tests: a failed expectation is the test failure")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is one level below the root").to_owned()
}

fn target_root() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask")).args(args).output().expect("run xtask")
}

fn cargo(dir: &Path, target: &Path, args: &[&str]) -> Output {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn a_scaffolded_plugin_passes_the_suite_as_generated() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("demo-vmm");
    let out = xtask(&["new-plugin", "demo-vmm", "--dir", dir.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("created plugin crate {d} (scheme demo-vmm:///)\nnext: cd {d} && cargo test\n", d = dir.display())
    );
    for f in ["Cargo.toml", "src/lib.rs", "tests/conformance.rs"] {
        assert!(dir.join(f).is_file(), "{f} not generated");
    }
    // Generating again into the same directory is refused; nothing is overwritten.
    let again = xtask(&["new-plugin", "demo-vmm", "--dir", dir.to_str().expect("utf-8 path")]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&again.stderr), format!("xtask: {} exists and is not empty\n", dir.display()));

    let target = target_root().join("scaffold");
    let _ = std::fs::remove_file(target.join("debug/libvirtplug_plugin_demo_vmm.so"));
    let test = cargo(&dir, &target, &["test", "--quiet"]);
    assert!(test.status.success(), "cargo test of the scaffolded plugin failed:\n{}", text(&test));
    assert!(target.join("debug/libvirtplug_plugin_demo_vmm.so").is_file());

    let tree = cargo(&dir, &target, &["tree", "--quiet", "-e", "normal,dev,build"]);
    assert!(tree.status.success(), "{}", text(&tree));
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains("virtplug-plugin-sdk") && !tree.contains("rusqlite"), "{tree}");
}

#[test]
fn a_bad_plugin_name_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("x");
    let out = xtask(&["new-plugin", "Toy_VMM", "--dir", dir.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "xtask: invalid plugin name 'Toy_VMM': use 1-32 lowercase letters, digits or '-', starting with a letter\n"
    );
    assert!(!dir.exists());
}

#[test]
fn install_puts_programs_and_the_four_plugins_where_the_host_finds_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prefix = tmp.path().join("prefix");
    let out = xtask(&["install", "--debug", "--prefix", prefix.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{}", text(&out));
    let mut files: Vec<String> = ["bin", "lib/virtplug/plugins"]
        .iter()
        .flat_map(|d| std::fs::read_dir(prefix.join(d)).expect("installed dir"))
        .map(|e| e.expect("entry").path().strip_prefix(&prefix).expect("under prefix").display().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "bin/virtplug",
            "bin/virtplugd",
            "lib/virtplug/plugins/libvirtplug_plugin_mock.so",
            "lib/virtplug/plugins/libvirtplug_plugin_qemu.so",
            "lib/virtplug/plugins/libvirtplug_plugin_virtualbox.so",
            "lib/virtplug/plugins/libvirtplug_plugin_vsphere.so",
        ]
    );
    // The installed CLI finds them with no configuration (an empty config file, no plugin dir).
    let config = tmp.path().join("empty.conf");
    std::fs::write(&config, "").expect("write config");
    let out = Command::new(prefix.join("bin/virtplug"))
        .args(["plugins", "--json"])
        .env_remove("VIRTPLUG_PLUGIN_DIR")
        .env("VIRTPLUG_CONFIG", &config)
        .output()
        .expect("run the installed virtplug");
    assert!(out.status.success(), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut names: Vec<&str> =
        listed["plugins"].as_array().expect("plugins").iter().filter_map(|p| p["name"].as_str()).collect();
    names.sort();
    assert_eq!(names, ["mock", "qemu", "virtualbox", "vsphere"]);
    assert_eq!(listed["refused"], serde_json::json!([]));
}
