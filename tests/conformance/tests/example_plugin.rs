//! The out-of-tree example plugin (`examples/hello-plugin`, its own `[workspace]`) is built the
//! way a third party builds a plugin — `cargo build` / `cargo test` in its directory with its own
//! target dir — and must pass the suite both through the CLI and through its own
//! `test_plugin!` test.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example_target_dir() -> PathBuf {
    // The workspace target dir (target/<profile>/deps/<test> → target), then a folder of its own.
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe.ancestors().nth(3).expect("target dir").to_owned();
    target.join("hello-plugin")
}

fn cargo(args: &[&str]) -> std::process::Output {
    let example = repo_root().join("examples/hello-plugin");
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .current_dir(&example)
        .env("CARGO_TARGET_DIR", example_target_dir())
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo")
}

#[test]
fn the_example_plugin_builds_out_of_tree_and_passes() {
    let build = cargo(&["build", "--quiet"]);
    assert!(build.status.success(), "cargo build of examples/hello-plugin failed:\n{}", String::from_utf8_lossy(&build.stderr));
    let so = example_target_dir().join("debug/libhello_plugin.so");
    assert!(so.is_file(), "{} not built", so.display());

    let out = Command::new(env!("CARGO_BIN_EXE_virtplug-conformance"))
        .arg("--plugin")
        .arg(&so)
        .args(["--uri", "hello:///"])
        .output()
        .expect("run virtplug-conformance");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("\nFAIL "), "{text}");
    assert!(text.contains("PASS behaviour.delete_reparent") && text.contains("PASS behaviour.list.LEAVES_NO_LEAVES_full_group"), "{text}");
    assert!(text.contains("SKIP behaviour.redefine_roundtrip: flag not declared: snapshot_create REDEFINE"), "{text}");

    // Its own tests/conformance.rs (one line: test_plugin!) under `cargo test`.
    let test = cargo(&["test", "--quiet"]);
    assert!(
        test.status.success(),
        "cargo test of examples/hello-plugin failed:\n{}\n{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}
