//! The CLI against the mock (everything passes) and against each broken plugin (the exact
//! diagnosis is reported). Plugins are built by `cargo build --workspace` into target/<profile>;
//! under `CI=true` a missing one fails the test, elsewhere the test says so once and returns.
#![allow(clippy::expect_used, reason = "tests: a failed expectation is the test failure")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;

/// The built plugin `lib<name>.so`, or `None` (outside CI) when it is not built.
fn plugin(name: &str) -> Option<PathBuf> {
    virtplug_test_support::plugin(name).require("a conformance CLI test")
}

fn run(plugin: &Path, uri: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtplug-conformance"))
        .arg("--plugin")
        .arg(plugin)
        .args(["--uri", uri])
        .args(extra)
        .output()
        .expect("run virtplug-conformance")
}

fn json_report(plugin: &Path, uri: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let out = run(plugin, uri, &args);
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\nstderr: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}

fn case<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["cases"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no case {id} in the report"))
}

/// Checks one case's status, and for failures the message (and optionally a fragment of `got`).
fn check(report: &Value, id: &str, status: &str, message: Option<&str>, got_contains: Option<&str>) {
    let c = case(report, id);
    assert_eq!(c["status"], status, "{id}: {c}");
    if let Some(m) = message {
        assert_eq!(c["message"], m, "{id}");
    }
    if let Some(g) = got_contains {
        let got = c["got"].as_str().unwrap_or_default();
        assert!(got.contains(g), "{id}: got {got:?} lacks {g:?}");
    }
}

fn failed_ids(report: &Value) -> Vec<String> {
    report["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn one_line_exit_2(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty());
    err.trim_end().to_owned()
}

#[test]
fn the_mock_passes_everything_it_declares() {
    let Some(mock) = plugin("virtplug_plugin_mock") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("mock://{}", dir.path().display());
    let probe = format!("sh {}/probes/mock.sh", env!("CARGO_MANIFEST_DIR"));
    let (code, report) = json_report(&mock, &uri, &["--probe", &probe]);
    assert_eq!(failed_ids(&report), Vec::<String>::new());
    assert_eq!(code, 0);
    // The mock declares every operation and flag: nothing is skipped but the two payload cases
    // (its probe says `absent`: the mock keeps no payload), and the semantic cases ran.
    let skipped: Vec<(&str, &str)> = report["cases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "skip")
        .map(|c| (c["id"].as_str().unwrap_or_default(), c["reason"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(
        skipped,
        vec![
            ("behaviour.probe.delete_removes_payload", virtplug_conformance::cases::probe::NO_PAYLOAD),
            ("behaviour.probe.metadata_only_keeps_payload", virtplug_conformance::cases::probe::NO_PAYLOAD),
        ]
    );
    for id in [
        "static.panic_probe",
        "static.poison_after_panic",
        "static.concurrency",
        "static.no_stdout",
        "behaviour.create_hierarchy",
        "behaviour.redefine_roundtrip",
        "behaviour.redefine_current",
        "behaviour.no_metadata",
        "behaviour.delete_reparent",
        "behaviour.delete_children",
        "behaviour.delete_children_only",
        "behaviour.delete_metadata_only",
        "behaviour.list.LEAVES_NO_LEAVES_full_group",
        "behaviour.list.TOPOLOGICAL",
        "behaviour.revert_state",
        "behaviour.undefine_guard",
        "behaviour.error_unknown_domain",
        "behaviour.error_unknown_snapshot",
    ] {
        check(&report, id, "pass", None, None);
    }
    // Only vpconf- resources were created, and they are all gone.
    eprintln!(
        "mock timings: static {} ms, behavioural {} ms, total {} ms",
        report["static_millis"], report["behaviour_millis"], report["total_millis"]
    );
}

#[test]
fn the_lying_plugin_is_caught_accepting_undeclared_flags() {
    let Some(lying) = plugin("virtplug_fixture_lying") else { return };
    let (code, report) = json_report(&lying, "lying:///", &[]);
    assert_eq!(code, 1);
    // The host refuses the undeclared flag itself…
    check(&report, "matrix.snapshot_create.NO_METADATA.host_refuses", "pass", None, None);
    check(&report, "matrix.snapshot_delete.METADATA_ONLY.host_refuses", "pass", None, None);
    // …but called directly, the plugin silently accepts it.
    check(
        &report,
        "matrix.snapshot_create.NO_METADATA.direct_refuses",
        "fail",
        Some("called directly with the undeclared flag NO_METADATA (0x4), the plugin silently accepted it"),
        Some("success"),
    );
    check(
        &report,
        "matrix.snapshot_delete.METADATA_ONLY.direct_refuses",
        "fail",
        Some("called directly with the undeclared flag METADATA_ONLY (0x2), the plugin silently accepted it"),
        None,
    );
    check(
        &report,
        "static.panic_probe",
        "fail",
        Some("selftest_panic returned success: the plugin's entry points do not panic inside a guard"),
        None,
    );
    check(&report, "static.read_only_direct", "fail", Some("a read-only connection created a snapshot"), None);
    check(&report, "behaviour.create_hierarchy", "fail", None, None);
}

#[test]
fn the_panicking_plugin_is_reported_with_the_panic() {
    let Some(panicky) = plugin("virtplug_fixture_panicky") else { return };
    let (code, report) = json_report(&panicky, "panicky:///", &[]);
    assert_eq!(code, 1);
    // The SDK's guard works: the probe's panic is an error and the connection is poisoned.
    check(&report, "static.panic_probe", "pass", None, None);
    check(&report, "static.poison_after_panic", "pass", None, None);
    // The driver's own panic is the reported diagnosis.
    // The snapshot name carries the case process's id (vpconf-plain-<pid>).
    check(
        &report,
        "behaviour.create_plain",
        "fail",
        None,
        Some("internal error: plugin 'panicky' panicked in snapshot_create: driver bug in snapshot_create"),
    );
    let message = case(&report, "behaviour.create_plain")["message"].as_str().unwrap_or_default().to_owned();
    let pid = message.strip_prefix("the plugin panicked during snapshot_create vpconf-plain-").unwrap_or_default();
    assert!(!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()), "{message}");
    // Undeclared operations: refused by the host, and by the plugin when called directly.
    check(&report, "matrix.snapshot_list.undeclared.host_refuses", "pass", None, None);
    check(&report, "matrix.snapshot_list.undeclared.direct_refuses", "pass", None, None);
    let skip = case(&report, "behaviour.delete_reparent");
    assert_eq!(skip["status"], "skip");
    assert!(skip["reason"].as_str().unwrap_or_default().starts_with("operation not declared: "), "{skip}");
}

#[test]
fn a_panic_that_kills_the_process_is_reported_as_panic_abort() {
    let Some(p) = plugin("virtplug_fixture_misbehaving") else { return };
    let (code, report) = json_report(&p, "misbehaving:///abort", &["--only", "static.*"]);
    assert_eq!(code, 1);
    check(
        &report,
        "static.panic_probe",
        "fail",
        Some(
            "the process died when the plugin panicked: the plugin was built with panic = \"abort\" (or lets a panic cross the ABI), so any bug in it kills the host",
        ),
        Some("killed by SIGABRT"),
    );
    // The suite itself survived and ran the rest.
    check(&report, "static.concurrency", "pass", None, None);
}

#[test]
fn plugins_that_cannot_run_give_one_line_and_exit_2() {
    // ABI mismatch.
    if let Some(v2) = plugin("virtplug_fixture_abi_v2") {
        let line = one_line_exit_2(&run(&v2, "abiv2:///", &[]));
        assert_eq!(
            line,
            format!(
                "virtplug-conformance: cannot run: cannot load plugin {}: ABI version mismatch: host implements virtplug-plugin-api 1.1.0, plugin was built against 2.0.0",
                v2.display()
            )
        );
    }
    // A plugin whose open() never returns.
    if let Some(p) = plugin("virtplug_fixture_misbehaving") {
        let line = one_line_exit_2(&run(&p, "misbehaving:///hang", &["--timeout", "2"]));
        assert_eq!(
            line,
            format!(
                "virtplug-conformance: cannot run: plugin {} did not finish loading and opening misbehaving:///hang within 2 s (it hangs in open())",
                p.display()
            )
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Not a shared library.
    let garbage = dir.path().join("libgarbage.so");
    std::fs::write(&garbage, b"this is not an ELF file").expect("write");
    let line = one_line_exit_2(&run(&garbage, "x:///", &[]));
    assert!(
        line.starts_with(&format!(
            "virtplug-conformance: cannot run: cannot load plugin {}: not a loadable shared library (",
            garbage.display()
        )),
        "{line}"
    );
    // A shared library without the root module.
    let libm = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("libm present");
    let copy = dir.path().join("libnotaplugin.so");
    std::fs::copy(libm, &copy).expect("copy");
    let line = one_line_exit_2(&run(&copy, "x:///", &[]));
    assert_eq!(
        line,
        format!(
            "virtplug-conformance: cannot run: cannot load plugin {}: not a virtplug plugin (no root module symbol _1as_0lib_1header_0root_bmodule_bloader)",
            copy.display()
        )
    );
    // Bad usage.
    let out = Command::new(env!("CARGO_BIN_EXE_virtplug-conformance")).arg("--plugin").output().expect("run");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_format_renders() {
    let Some(mock) = plugin("virtplug_plugin_mock") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("mock://{}", dir.path().display());
    let only = ["--only", "static.load,static.abi_version"];
    let tap = run(&mock, &uri, &[&["--format", "tap"][..], &only[..]].concat());
    let tap = String::from_utf8_lossy(&tap.stdout);
    assert!(tap.starts_with("TAP version 13\n1..2\nok 1 - static.load\nok 2 - static.abi_version\n"), "{tap}");
    let junit = run(&mock, &uri, &[&["--format", "junit"][..], &only[..]].concat());
    let junit = String::from_utf8_lossy(&junit.stdout);
    assert!(
        junit.contains(r#"<testsuite name="virtplug-conformance mock" tests="2" failures="0" skipped="0""#),
        "{junit}"
    );
    let text = run(&mock, &uri, &only);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("PASS static.load ("), "{text}");
    assert!(
        text.contains("mock 0.1.0 at mock://")
            && text.contains("2 passed, 0 failed, 0 skipped\ntimings: static level "),
        "{text}"
    );
}

/// Today's mock (ABI 1.1, the host's own version) passes the static level; the 1.0 baseline is
/// the checked-in fixture tests/fixtures/abi-v1_0-* (its own tests load it into this host).
#[test]
fn the_current_mock_passes_the_static_level() {
    let Some(mock) = plugin("virtplug_plugin_mock") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("mock://{}", dir.path().display());
    let (code, report) = json_report(&mock, &uri, &["--only", "static.*"]);
    assert_eq!(failed_ids(&report), Vec::<String>::new());
    assert_eq!(code, 0);
    let abi = case(&report, "static.abi_version");
    assert_eq!(abi["note"], "plugin ABI 1.1 (same as the host, host 1.1)");
    eprintln!("static level of the mock: {} ms", report["static_millis"]);
}
