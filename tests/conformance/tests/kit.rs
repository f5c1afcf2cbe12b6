//! The kit around the suite: `--list`, a mistyped `--only` id, a hang that names its operation,
//! the `--probe` hook and its cases, and `test_plugin!`'s refusal of a stale `.so`.
#![allow(clippy::expect_used, reason = "tests: a failed expectation is the test failure")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
    time::{Duration, SystemTime},
};

use serde_json::Value;
use virtplug_conformance::{
    cases::{check_only, probe::NO_PAYLOAD},
    harness::check_fresh,
    runner::NO_PROBE,
};

fn plugin(name: &str) -> Option<PathBuf> {
    virtplug_test_support::plugin(name).require("a conformance kit test")
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtplug-conformance")).args(args).output().expect("run virtplug-conformance")
}

fn report(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn case<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["cases"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no case {id} in {report}"))
}

#[test]
fn list_prints_every_case_id_one_per_line() {
    let Some(p) = plugin("virtplug_fixture_misbehaving") else { return };
    let out = run(&["--plugin", p.to_str().expect("utf-8 path"), "--list"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let ids: Vec<&str> = text.lines().collect();
    assert_eq!(&ids[..3], ["static.load", "static.abi_version", "static.info_stable"]);
    for id in [
        "static.concurrency",
        "matrix.snapshot_create.undeclared.host_refuses",
        "behaviour.delete_reparent",
        "behaviour.probe.delete_removes_payload",
        "behaviour.probe.metadata_only_keeps_payload",
    ] {
        assert!(ids.contains(&id), "{id} not listed:\n{text}");
    }
    assert!(ids.iter().all(|id| !id.is_empty() && !id.contains(' ')), "{text}");
}

#[test]
fn an_unknown_only_id_exits_2_with_a_suggestion() {
    let Some(p) = plugin("virtplug_fixture_misbehaving") else { return };
    let p = p.to_str().expect("utf-8 path");
    let out = run(&["--plugin", p, "--uri", "misbehaving:///x", "--only", "static.load,static.concurency"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "virtplug-conformance: unknown case id: static.concurency (did you mean static.concurrency?)\n"
    );
    let out = run(&["--plugin", p, "--uri", "misbehaving:///x", "--only", "nothing-like-it"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "virtplug-conformance: unknown case id: nothing-like-it\n");
}

#[test]
fn only_patterns_are_checked_part_by_part() {
    let ids = ["static.load", "static.concurrency", "behaviour.list.ROOTS"];
    assert_eq!(check_only("static.*", &ids), Ok(()));
    assert_eq!(check_only("ROOTS, static.load", &ids), Ok(()));
    assert_eq!(check_only("static.lod", &ids), Err("unknown case id: static.lod (did you mean static.load?)".into()));
    assert_eq!(check_only("stat.*", &ids), Err("unknown case id: stat.* (did you mean static.*?)".into()));
    assert_eq!(
        check_only("behaviour.lst.*", &ids),
        Err("unknown case id: behaviour.lst.* (did you mean behaviour.list.*?)".into())
    );
    assert_eq!(check_only("behaviour.*", &ids), Ok(()));
    assert_eq!(check_only("xyz", &ids), Err("unknown case id: xyz".into()));
}

#[test]
fn a_hang_names_the_operation_it_was_in() {
    let Some(p) = plugin("virtplug_fixture_misbehaving") else { return };
    let p = p.to_str().expect("utf-8 path");
    let out = run(&[
        "--plugin",
        p,
        "--uri",
        "misbehaving:///hang-list",
        "--timeout",
        "1",
        "--only",
        "static.no_stdout",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let c = case(&report(&out), "static.no_stdout").clone();
    assert_eq!(
        c["message"],
        "the case did not finish within 1 s: the plugin hangs in domain_list (flags 0x0) through the host"
    );
    assert_eq!(c["got"], "no answer (child killed)");
}

/// The payload cases against the mock with three hooks: one that says what the mock really
/// holds (nothing), one that claims every payload stays (so a plain delete is caught leaving
/// it behind), one that answers nonsense; and without a hook.
#[test]
fn the_probe_hook_drives_the_payload_cases() {
    let Some(mock) = plugin("virtplug_plugin_mock") else { return };
    let mock = mock.to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let uri = format!("mock://{}", dir.path().display());
    let only = "behaviour.probe.*";
    let with = |probe: Option<&str>| {
        let mut args = vec!["--plugin", mock, "--uri", &uri, "--only", only, "--format", "json"];
        if let Some(p) = probe {
            args.extend(["--probe", p]);
        }
        let out = run(&args);
        (out.status.code(), report(&out))
    };
    let delete = "behaviour.probe.delete_removes_payload";
    let keep = "behaviour.probe.metadata_only_keeps_payload";

    let (code, r) = with(None);
    assert_eq!(code, Some(0));
    for id in [delete, keep] {
        assert_eq!((case(&r, id)["status"].clone(), case(&r, id)["reason"].clone()), ("skip".into(), NO_PROBE.into()));
    }

    let mock_probe = format!("sh {}/probes/mock.sh", env!("CARGO_MANIFEST_DIR"));
    let (code, r) = with(Some(&mock_probe));
    assert_eq!(code, Some(0));
    for id in [delete, keep] {
        assert_eq!(case(&r, id)["reason"], NO_PAYLOAD);
    }

    let (code, r) = with(Some("echo present #"));
    assert_eq!(code, Some(1));
    assert_eq!(case(&r, keep)["status"], "pass");
    let c = case(&r, delete);
    assert_eq!(c["status"], "fail");
    let message = c["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("a plain delete of vpconf-payload-")
            && message.ends_with(" left its payload in the hypervisor"),
        "{message}"
    );
    assert_eq!((c["expected"].clone(), c["got"].clone()), ("absent".into(), "present".into()));

    let (code, r) = with(Some("echo maybe #"));
    assert_eq!(code, Some(1));
    let got = case(&r, delete)["got"].as_str().unwrap_or_default().to_owned();
    assert_eq!(got, "\"maybe\", exit status: 0; stderr: ");
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options().write(true).open(path).expect("open").set_modified(t).expect("set mtime");
}

#[test]
fn a_missing_or_stale_so_is_refused_with_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let krate = dir.path().join("crate");
    std::fs::create_dir_all(krate.join("src/nested")).expect("mkdir");
    std::fs::write(krate.join("Cargo.toml"), "[package]\n").expect("write");
    std::fs::write(krate.join("src/lib.rs"), "").expect("write");
    std::fs::write(krate.join("src/nested/deep.rs"), "").expect("write");
    let so = dir.path().join("libx.so");
    assert_eq!(
        check_fresh(&so, &krate),
        Err(format!("{} does not exist: build the plugin first (`cargo build --lib`)", so.display()))
    );
    let now = SystemTime::now();
    std::fs::write(&so, b"").expect("write");
    for f in ["Cargo.toml", "src/lib.rs", "src/nested/deep.rs"] {
        set_mtime(&krate.join(f), now - Duration::from_secs(60));
    }
    set_mtime(&so, now - Duration::from_secs(30));
    assert_eq!(check_fresh(&so, &krate), Ok(()));
    set_mtime(&krate.join("src/nested/deep.rs"), now);
    assert_eq!(
        check_fresh(&so, &krate),
        Err(format!(
            "{} is older than {}: rebuild it (`cargo build --lib`) so the suite does not test a stale build",
            so.display(),
            krate.join("src/nested/deep.rs").display()
        ))
    );
}

/// `domain_list` panics once; the case's later calls are refused as poisoned. The report names
/// the panic (message and location), not the poisoning it caused.
#[test]
fn a_poisoned_failure_is_reported_as_the_panic_that_caused_it() {
    let Some(p) = plugin("virtplug_fixture_misbehaving") else { return };
    let p = p.to_str().expect("utf-8 path");
    let out =
        run(&["--plugin", p, "--uri", "misbehaving:///panic-list", "--only", "static.concurrency", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let c = case(&report(&out), "static.concurrency").clone();
    assert_eq!(
        c["message"],
        "plugin 'misbehaving' panicked in domain_list at tests/conformance/fixtures/misbehaving/src/lib.rs:60:9: domain table corrupted (later calls were refused: the connection is poisoned)"
    );
    assert_eq!(c["expected"], "no panic");
    assert!(c["got"].as_str().unwrap_or_default().contains("is poisoned by an earlier panic"), "{c}");
}
