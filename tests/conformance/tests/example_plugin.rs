//! The out-of-tree example plugin (`examples/hello-plugin`, its own `[workspace]`) is built the
//! way a third party builds a plugin — `cargo build` / `cargo test` in its directory with its own
//! target dir — and must pass the suite both through the CLI and through its own
//! `test_plugin!` test.
#![allow(clippy::expect_used, reason = "tests: a failed expectation is the test failure")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example_target_dir() -> PathBuf {
    // The workspace target dir, then a folder of its own.
    virtplug_test_support::target_root().join("hello-plugin")
}

/// A copy of the example in a directory of its own, its SDK paths made absolute: a third party's
/// checkout. (Building in place would leave a Cargo.lock inside the repository.)
fn third_party_copy(dir: &Path) -> PathBuf {
    let src = repo_root().join("examples/hello-plugin");
    let root = std::fs::canonicalize(repo_root()).expect("repository root");
    let dst = dir.join("hello-plugin");
    for sub in ["src", "tests"] {
        std::fs::create_dir_all(dst.join(sub)).expect("mkdir");
        for entry in std::fs::read_dir(src.join(sub)).expect("read example") {
            let path = entry.expect("entry").path();
            std::fs::copy(&path, dst.join(sub).join(path.file_name().expect("file name"))).expect("copy");
        }
    }
    let manifest = std::fs::read_to_string(src.join("Cargo.toml")).expect("example manifest");
    let manifest = manifest.replace("\"../../", &format!("\"{}/", root.display()));
    std::fs::write(dst.join("Cargo.toml"), manifest).expect("write manifest");
    dst
}

fn cargo(example: &Path, args: &[&str]) -> std::process::Output {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .current_dir(example)
        .env("CARGO_TARGET_DIR", example_target_dir())
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo")
}

/// `cargo test` alone, on a target dir without the plugin's `.so`: `test_plugin!` builds the
/// `cdylib` itself. The target dir is shared between runs to keep this fast (a fresh one would
/// rebuild every dependency); deleting the `.so` gives the same starting point for the plugin.
#[test]
fn the_example_plugin_builds_out_of_tree_and_passes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = third_party_copy(dir.path());
    let so = example_target_dir().join("debug/libhello_plugin.so");
    match std::fs::remove_file(&so) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot remove {}: {e}", so.display()),
    }

    // Its own tests/conformance.rs (one line: test_plugin!) under `cargo test`, no `cargo build` first.
    let test = cargo(&example, &["test", "--quiet"]);
    assert!(
        test.status.success(),
        "cargo test of examples/hello-plugin failed:\n{}\n{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(so.is_file(), "{} not built by cargo test", so.display());

    let out = Command::new(env!("CARGO_BIN_EXE_virtplug-conformance"))
        .arg("--plugin")
        .arg(&so)
        .args(["--uri", "hello:///"])
        .output()
        .expect("run virtplug-conformance");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("\nFAIL "), "{text}");
    assert!(
        text.contains("PASS behaviour.delete_reparent")
            && text.contains("PASS behaviour.list.LEAVES_NO_LEAVES_full_group"),
        "{text}"
    );
    assert!(text.contains("SKIP behaviour.redefine_roundtrip: flag not declared: snapshot_create REDEFINE"), "{text}");

    // A plugin that keeps no metadata in SQLite does not compile it (nor do the suite's crates).
    let tree = cargo(&example, &["tree", "--quiet", "-e", "normal,dev,build"]);
    let tree_text = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.status.success(), "cargo tree: {}", String::from_utf8_lossy(&tree.stderr));
    assert!(tree_text.contains("virtplug-plugin-sdk"), "{tree_text}");
    assert!(!tree_text.contains("rusqlite"), "the example compiles SQLite:\n{tree_text}");
}
