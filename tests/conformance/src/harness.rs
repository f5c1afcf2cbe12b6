//! What `test_plugin!` expands to: the whole suite as one `#[test]` in a plugin's own crate.
//! The test binary is re-executed once per case (`--exact <test> --nocapture`) with the case
//! named in the environment, so crash containment is the same as with the CLI.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::{
    ctx::Options,
    report,
    runner::{self, Runner},
};

const CASE_VAR: &str = "VIRTPLUG_CONFORMANCE_CASE";
const RESULT_VAR: &str = "VIRTPLUG_CONFORMANCE_RESULT";

/// Finds `lib<name>.so` the way cargo lays it out: beside the test binary's `deps/` folder.
pub fn find_cdylib(lib_name: &str) -> PathBuf {
    let file = format!("lib{}.so", lib_name.replace('-', "_"));
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_owned).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(file)
}

/// The plugin crate `test_plugin!` was expanded in: its package name and manifest directory.
#[derive(Debug, Clone)]
pub struct Crate {
    /// `CARGO_PKG_NAME` of the plugin crate.
    pub package: &'static str,
    /// `CARGO_MANIFEST_DIR` of the plugin crate.
    pub manifest_dir: &'static str,
}

/// The cargo arguments that build the plugin's library into the target dir and profile of the
/// running test binary (`<target>/[<triple>/]<profile>/deps/<test>-<hash>`), so the `.so` the
/// suite loads is the one cargo just built from the current sources.
fn build_args(krate: &Crate, exe: &Path) -> Vec<String> {
    let manifest = Path::new(krate.manifest_dir).join("Cargo.toml");
    let mut args: Vec<String> = vec![
        "build".into(),
        "--lib".into(),
        "--quiet".into(),
        "--manifest-path".into(),
        manifest.display().to_string(),
        "-p".into(),
        krate.package.into(),
    ];
    let deps = exe.parent().unwrap_or(Path::new("."));
    let profile_dir = if deps.ends_with("deps") { deps.parent().unwrap_or(deps) } else { deps };
    let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
    match profile {
        "debug" => {}
        "release" => args.push("--release".into()),
        other => args.extend(["--profile".into(), other.into()]),
    }
    // `<target>/<profile>` or `<target>/<triple>/<profile>`. Cargo marks a target root it
    // created with CACHEDIR.TAG, but not one that existed before its first build (CI creates
    // target/ for the simulators first), so a directory named like a triple (`arch-vendor-os…`)
    // without the tag is taken for `--target`.
    if let Some(up) = profile_dir.parent() {
        let name = up.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let looks_like_triple = name.matches('-').count() >= 2;
        match up.parent() {
            Some(root) if looks_like_triple && !up.join("CACHEDIR.TAG").is_file() => {
                args.extend(["--target-dir".into(), root.display().to_string(), "--target".into(), name.into()]);
            }
            _ => args.extend(["--target-dir".into(), up.display().to_string()]),
        }
    }
    args
}

/// Builds the plugin's `cdylib` (cargo does not build it for an integration test: a `cdylib` is
/// not linked into the test), so `cargo test` never tests a `.so` left by an earlier build.
/// `Err` is what to print: cargo's own errors, or why cargo could not run.
pub fn build_cdylib(krate: &Crate) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the test binary: {e}"))?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = build_args(krate, &exe);
    let out = Command::new(&cargo)
        .args(&args)
        .output()
        .map_err(|e| format!("cannot run {} to build the plugin: {e}", Path::new(&cargo).display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo {}` failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// The newest modification time among the crate's sources (`Cargo.toml`, `build.rs`, `src/**`).
fn newest_source(manifest_dir: &Path) -> Option<(std::time::SystemTime, PathBuf)> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack = vec![manifest_dir.join("src"), manifest_dir.join("Cargo.toml"), manifest_dir.join("build.rs")];
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.filter_map(|e| e.ok().map(|e| e.path())));
            }
        } else if let Ok(modified) = meta.modified()
            && newest.as_ref().is_none_or(|(t, _)| modified > *t)
        {
            newest = Some((modified, path));
        }
    }
    newest
}

/// Refuses a `.so` that is missing or older than one of the crate's sources, with a one-line
/// hint (the last line of defence when the build step was skipped).
pub fn check_fresh(plugin: &Path, manifest_dir: &Path) -> Result<(), String> {
    let built = std::fs::metadata(plugin)
        .and_then(|m| m.modified())
        .map_err(|_| format!("{} does not exist: build the plugin first (`cargo build --lib`)", plugin.display()))?;
    match newest_source(manifest_dir) {
        Some((t, source)) if t > built => Err(format!(
            "{} is older than {}: rebuild it (`cargo build --lib`) so the suite does not test a stale build",
            plugin.display(),
            source.display()
        )),
        _ => Ok(()),
    }
}

/// Runs the suite for the plugin library `lib_name` (as in `[lib] name`) at `uri`. `test_path`
/// is the test function's path inside the test crate (from `module_path!()` and the name).
/// Panics (fails the test) when a case fails or the suite cannot run, listing every failure.
///
/// The parent first builds the plugin's library with cargo ([`build_cdylib`]; set
/// `VIRTPLUG_CONFORMANCE_NO_BUILD` to skip that) and refuses a `.so` older than the sources.
pub fn run_test(krate: &Crate, lib_name: &str, uri: &str, module_path: &str, test_fn: &str) {
    let plugin = find_cdylib(lib_name);
    let domain = std::env::var("VIRTPLUG_CONFORMANCE_DOMAIN").unwrap_or_else(|_| "test".to_owned());
    let live = std::env::var_os("VIRTPLUG_CONFORMANCE_LIVE").is_some();
    let probe = std::env::var("VIRTPLUG_CONFORMANCE_PROBE").ok().filter(|p| !p.is_empty());
    let opts = Options { plugin, uri: uri.to_owned(), domain, live, probe };
    if let (Ok(case), Ok(result)) = (std::env::var(CASE_VAR), std::env::var(RESULT_VAR)) {
        // The child: one case, verdict to the file, then leave without running anything else.
        let code = runner::run_one(&opts, &case, Path::new(&result));
        std::process::exit(code);
    }
    if std::env::var_os("VIRTPLUG_CONFORMANCE_NO_BUILD").is_none()
        && let Err(e) = build_cdylib(krate)
    {
        panic!("virtplug-conformance: cannot build the plugin: {e}");
    }
    if let Err(e) = check_fresh(&opts.plugin, Path::new(krate.manifest_dir)) {
        panic!("virtplug-conformance: {e}");
    }
    let test_name = match module_path.split_once("::") {
        Some((_, rest)) => format!("{rest}::{test_fn}"),
        None => test_fn.to_owned(),
    };
    let exe = std::env::current_exe().unwrap_or_default();
    let only = std::env::var("VIRTPLUG_CONFORMANCE_ONLY").ok();
    let runner = Runner {
        opts: opts.clone(),
        only,
        timeout: Duration::from_secs(20),
        spawn: Box::new(move |case, result| {
            let mut cmd = Command::new(&exe);
            cmd.args([test_name.as_str(), "--exact", "--nocapture", "--test-threads=1"]);
            cmd.env(CASE_VAR, case).env(RESULT_VAR, result);
            cmd
        }),
        progress: None,
    };
    let report = match runner.run() {
        Ok(r) => r,
        Err(e) => panic!("virtplug-conformance: {e}"),
    };
    let text = report::render(&report, report::Format::Text);
    eprintln!("{text}");
    let failed: Vec<&str> =
        report.cases.iter().filter(|c| c.outcome.status() == "fail").map(|c| c.id.as_str()).collect();
    assert!(failed.is_empty(), "{} conformance case(s) failed: {}", failed.len(), failed.join(", "));
}

/// Runs the whole conformance suite as one `#[test]` named `conformance`:
///
/// ```text
/// // tests/conformance.rs of a plugin crate whose `[lib] name` is `hello_plugin`:
/// virtplug_conformance::test_plugin!("hello_plugin", "hello:///");
/// ```
///
/// The test builds the plugin's `cdylib` first (`cargo build --lib` into the test binary's target
/// dir and profile), then finds its `.so` beside the test binary.
/// `VIRTPLUG_CONFORMANCE_DOMAIN`, `VIRTPLUG_CONFORMANCE_LIVE`, `VIRTPLUG_CONFORMANCE_ONLY` and
/// `VIRTPLUG_CONFORMANCE_PROBE` tune the run like the CLI's options.
#[macro_export]
macro_rules! test_plugin {
    ($lib:expr, $uri:expr $(,)?) => {
        #[test]
        fn conformance() {
            let krate =
                $crate::harness::Crate { package: env!("CARGO_PKG_NAME"), manifest_dir: env!("CARGO_MANIFEST_DIR") };
            $crate::harness::run_test(&krate, $lib, $uri, module_path!(), "conformance");
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail(krate: &Crate, exe: &str) -> Vec<String> {
        build_args(krate, Path::new(exe)).split_off(7)
    }

    #[test]
    fn the_plugin_is_built_into_the_test_binarys_target_dir() {
        let k = Crate { package: "p", manifest_dir: "/src/p" };
        // A target root without CACHEDIR.TAG (created before cargo's first build, as in CI).
        assert_eq!(tail(&k, "/nowhere/ci/target/debug/deps/t-1"), ["--target-dir", "/nowhere/ci/target"]);
        assert_eq!(tail(&k, "/nowhere/target/release/deps/t-1"), ["--release", "--target-dir", "/nowhere/target"]);
        assert_eq!(
            tail(&k, "/nowhere/target/x86_64-unknown-linux-gnu/debug/deps/t-1"),
            ["--target-dir", "/nowhere/target", "--target", "x86_64-unknown-linux-gnu"]
        );
    }
}
