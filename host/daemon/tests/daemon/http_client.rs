//! The OpenAPI contract as an integrator meets it: the checked-in document validates with
//! `openapi-spec-validator`, `openapi-python-client` generates a client from it without skipping
//! anything, and that client calls every operation once against a real daemon
//! (`tests/http-client/smoke.py`). The tools come from the virtual environment `.ci/run` creates
//! and names in `VIRTPLUG_CI_VENV`; without it the tests fail under `CI=true` and are skipped elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crate::common::{Daemon, plugin_dir};

const AREA: &str = "generated HTTP client";

/// The virtual environment holding both tools, or `None` (skip) outside CI.
fn venv() -> Option<PathBuf> {
    let Some(dir) = std::env::var_os("VIRTPLUG_CI_VENV") else {
        return virtplug_test_support::missing(AREA, "VIRTPLUG_CI_VENV is not set (.ci/run creates the venv)");
    };
    let dir = PathBuf::from(dir);
    for tool in ["python", "openapi-spec-validator", "openapi-python-client"] {
        if !dir.join("bin").join(tool).exists() {
            return virtplug_test_support::missing(AREA, format!("{} has no bin/{tool}", dir.display()));
        }
    }
    Some(dir)
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn document() -> PathBuf {
    workspace().join("host/wire/openapi.json")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Every operationId of the document with its first tag (the generated module's folder).
fn operations() -> Vec<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(document()).unwrap()).unwrap();
    let mut ops = Vec::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            ops.push((op["tags"][0].as_str().unwrap().to_owned(), op["operationId"].as_str().unwrap().to_owned()));
        }
    }
    ops
}

#[test]
fn the_checked_in_document_validates() {
    let Some(venv) = venv() else { return };
    let out = Command::new(venv.join("bin/openapi-spec-validator"))
        .args(["--validation-errors", "all"])
        .arg(document())
        .output()
        .unwrap();
    assert_eq!(text(&out), format!("{}: OK\n", document().display()));
    assert!(out.status.success());
}

#[test]
fn a_generated_client_calls_every_operation() {
    let Some(venv) = venv() else { return };
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let client = tmp.path().join("client");
    std::fs::create_dir_all(&client).unwrap();
    let config = workspace().join("tests/http-client/client.yaml");
    let out = Command::new(venv.join("bin/openapi-python-client"))
        .args(["generate", "--meta", "none", "--path"])
        .arg(document())
        .args(["--output-path", "virtplugd_client", "--config"])
        .arg(&config)
        .current_dir(&client)
        .output()
        .unwrap();
    // The generator says what it skips (an operation or a part it cannot read) as warnings and
    // still succeeds: its whole output must be the one line of a clean run.
    assert_eq!(text(&out), "Generating virtplugd_client\n");
    assert!(out.status.success());
    let ops = operations();
    assert!(ops.len() >= 27, "{ops:?}");
    for (tag, id) in &ops {
        let module = client.join(format!("virtplugd_client/api/{tag}/{id}.py"));
        assert!(module.exists(), "{id}: {} not generated", module.display());
    }

    let dir = tmp.path().join("d");
    let peer = format!("mock://{}", dir.join("peer").display());
    std::fs::create_dir_all(dir.join("peer")).unwrap();
    let d = Daemon::start(&dir, &plugins, &["--allow-uri".into(), peer.clone()]);
    let out = Command::new(venv.join("bin/python"))
        .arg(workspace().join("tests/http-client/smoke.py"))
        .arg("--socket")
        .arg(d.socket())
        .arg("--document")
        .arg(document())
        .args(["--default-uri", &format!("mock://{}", d.host().display())])
        .args(["--peer-uri", &peer])
        .env("PYTHONPATH", &client)
        .output()
        .unwrap();
    let all = text(&out);
    assert!(out.status.success(), "{all}\ndaemon log:\n{}", d.log());
    for (_, id) in &ops {
        assert!(all.lines().any(|l| l.starts_with(&format!("ok {id} "))), "{id} not called:\n{all}");
    }
    assert!(all.ends_with(&format!("smoke: all {} operations called\n", ops.len())), "{all}");
}
