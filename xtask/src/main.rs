//! `cargo xtask <task>`: the project's own tasks, so the README's commands stay one line each.
//!
//! - `build-plugins`: build the workspace (binaries and every plugin `.so`, fixtures included);
//! - `demo`: the founding workflow on two mock hosts, shown as a transcript;
//! - `test`: build everything, check formatting (`cargo fmt --check`) and lints (`cargo clippy
//!   -D warnings`), then run every test of the workspace;
//! - `bench [--check] [section]`: release build (and the vSphere simulator), then the
//!   measurements of `tests/bench`, each row beside its floor, its peer and its target; `--check`
//!   fails the task when a target is missed;
//! - `fuzz [target…]`: a long mutation hunt with the fuzz driver of `tests/fuzz` (see `fuzz.rs`);
//! - `new-plugin NAME [--dir DIR]`: scaffold an out-of-tree plugin crate that passes the
//!   conformance suite as generated (see `scaffold.rs`);
//! - `install --prefix DIR`: release build of the CLI, the daemon and the four real plugins,
//!   installed as DIR/bin and DIR/lib/virtplug/plugins (see `install.rs`);
//! - `tidy`: project rules (a `//!` header on every `.rs` file, no ignored tests, no registry host
//!   names; see `tidy.rs`).
//!
//! This crate only orchestrates cargo and the built binaries; it holds no product logic.

mod demo;
mod fuzz;
mod install;
mod scaffold;
mod tidy;

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, Result, bail};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build-plugins") => build(&[]),
        Some("demo") => build(&[]).and_then(|()| demo::run()),
        // The tests load the mock built with the etcd store (the daemon's fleet tests), so the
        // `.so` in the target dir is built with the features the tests are.
        Some("test") => build(&["--features", ETCD]).and_then(|()| test(&args[1..])),
        Some("tidy") => tidy::run(&repo_root()),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("new-plugin") => scaffold::run(&args[1..], &repo_root()),
        Some("install") => install::run(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <build-plugins|demo|test|bench [--check] [section]|fuzz [target…]|new-plugin NAME [--dir DIR]|install --prefix DIR|tidy>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask's manifest lives one level below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_owned).unwrap_or_default()
}

/// `target/debug`, where the binaries and plugins are built.
pub fn build_dir() -> PathBuf {
    target_dir().join("debug")
}

/// The workspace's target dir (`CARGO_TARGET_DIR`, else `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(repo_root());
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn build(features: &[&str]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--workspace", "--quiet"]).args(features);
    run(cmd)
}

/// Release build of everything, then the benchmark binary (`[--check] [section [options…]]`,
/// default all); a missed target under `--check` is the binary's non-zero exit, hence an error.
///
/// The plugins are measured as a plain build makes them (without the etcd client, which makes
/// the mock's file 2.5x larger and its load, so the CLI's cold start, ~0.1-0.2 ms slower); only
/// the bench binary is rebuilt with `etcd` afterwards, for its fleet section (which runs the
/// store in-process, no plugin).
///
/// The vSphere simulator is built too (`tests/vsphere-sim/build.sh`, as `.ci/run` builds it, and
/// where the bench looks for it); without Go or govmomi's sources that build fails and the
/// vSphere section says so, the rest still runs.
fn bench(extra: &[String]) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--workspace", "--exclude", "xtask", "--quiet"]);
    run(cmd)?;
    let mut sim = Command::new("bash");
    sim.arg(repo_root().join("tests/vsphere-sim/build.sh"))
        .env("VSPHERE_SIM_OUT", target_dir().join("vsphere-sim/vsphere-sim"));
    if let Err(e) = run(sim) {
        eprintln!("xtask bench: the vSphere simulator was not built ({e:#}); its section will say so");
    }
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", "virtplug-bench", "--features", "virtplug-bench/etcd", "--quiet"]);
    run(cmd)?;
    let target = build_dir().parent().map(Path::to_owned).unwrap_or_default();
    let mut cmd = Command::new(target.join("release").join("virtplug-bench"));
    cmd.args(extra);
    run(cmd)
}

/// The features `cargo xtask test` adds: the etcd metadata store, the mock on it, their tests.
const ETCD: &str = "virtplug-store-etcd/etcd,virtplug-plugin-mock/etcd,virtplug-plugin-qemu/etcd";

fn test(extra: &[String]) -> Result<()> {
    tidy::run(&repo_root())?;
    // Formatting and lints are part of the test: a warning fails the run as a test would.
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt)?;
    let mut clippy = cargo();
    // The etcd store is compiled (and its tests run) only with its feature: it needs protoc,
    // which `.ci/run` installs.
    clippy.args(["clippy", "--workspace", "--all-targets", "--features", ETCD, "--quiet", "--", "-D", "warnings"]);
    run(clippy)?;
    // xtask's own tests last: its install test builds the plugins into this target dir without
    // the etcd feature, which would replace the mock `.so` the daemon's fleet tests load (a test
    // build leaves the `.so` that `build` put there).
    let mut cmd = cargo();
    cmd.args(["test", "--workspace", "--exclude", "xtask", "--no-fail-fast", "--features", ETCD]).args(extra);
    let workspace = run(cmd);
    let mut cmd = cargo();
    cmd.args(["test", "-p", "xtask", "--no-fail-fast"]).args(extra);
    let xtask = run(cmd);
    workspace.and(xtask)
}
