//! Shared by the store's process-level tests (crashes, kill points, jobs): the test domain and
//! snapshot definitions on it.
#![allow(dead_code, reason = "each test file uses a subset")]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
};

use virtplug_model::{
    domain::{DomainDef, TEST_DOMAIN_XML},
    flags::domain_state as st,
    store::{Store, Sync},
    xml::SnapshotDef,
};

/// The UUID of the test domain.
pub const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// A running snapshot `name` under `parent`, with the test domain embedded.
pub fn snap(name: &str, parent: Option<&str>) -> SnapshotDef {
    SnapshotDef {
        name: name.into(),
        parent: parent.map(Into::into),
        state: st::RUNNING,
        creation_time: 1_700_000_000,
        domain: Some(TEST_DOMAIN_XML.into()),
        ..Default::default()
    }
}

/// A store at `path` holding the test domain.
pub fn new_store(path: &Path) -> Store {
    let mut s = Store::open(path, Sync::Normal).unwrap();
    s.define_domain(&DomainDef::parse(TEST_DOMAIN_XML).unwrap(), st::RUNNING, 1, 1).unwrap();
    s
}

/// Starts this test binary again running only the test `child_test`, with `env` set to `value`,
/// and returns once the child has printed `ready` (libtest may print its own words before it on
/// the same line): the child and the rest of its output.
pub fn start_child(child_test: &str, env: &str, value: &str) -> (Child, BufReader<ChildStdout>) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
        .env(env, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while out.read_line(&mut line).unwrap() > 0 && !line.contains("ready") {
        line.clear();
    }
    (child, out)
}
