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

/// Runs the suite for the plugin library `lib_name` (as in `[lib] name`) at `uri`. `test_path`
/// is the test function's path inside the test crate (from `module_path!()` and the name).
/// Panics (fails the test) when a case fails or the suite cannot run, listing every failure.
pub fn run_test(lib_name: &str, uri: &str, module_path: &str, test_fn: &str) {
    let plugin = find_cdylib(lib_name);
    let domain = std::env::var("VIRTPLUG_CONFORMANCE_DOMAIN").unwrap_or_else(|_| "test".to_owned());
    let live = std::env::var_os("VIRTPLUG_CONFORMANCE_LIVE").is_some();
    let opts = Options { plugin, uri: uri.to_owned(), domain, live };
    if let (Ok(case), Ok(result)) = (std::env::var(CASE_VAR), std::env::var(RESULT_VAR)) {
        // The child: one case, verdict to the file, then leave without running anything else.
        let code = runner::run_one(&opts, &case, Path::new(&result));
        std::process::exit(code);
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
        Err(reason) => panic!("virtplug-conformance: cannot run: {reason}"),
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
/// The plugin's `.so` is found beside the test binary (cargo builds the `cdylib` first).
/// `VIRTPLUG_CONFORMANCE_DOMAIN`, `VIRTPLUG_CONFORMANCE_LIVE` and `VIRTPLUG_CONFORMANCE_ONLY`
/// tune the run.
#[macro_export]
macro_rules! test_plugin {
    ($lib:expr, $uri:expr $(,)?) => {
        #[test]
        fn conformance() {
            $crate::harness::run_test($lib, $uri, module_path!(), "conformance");
        }
    };
}
