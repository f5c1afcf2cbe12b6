//! Test helpers: `virtplugd` runs through the shared support crate's [`Daemon`] with a private
//! folder holding the mock plugin (required under `CI=true`; elsewhere the tests are skipped with
//! one note); the tree checks and raw HTTP below are the daemon's own.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
#![allow(dead_code, reason = "each test file uses a subset")]

use std::path::{Path, PathBuf};

use virtplug_host::{Connection, Registry};
pub use virtplug_test_support::Daemon;
use virtplug_test_support::{MOCK, private_plugin_dir};

pub const BIN: &str = env!("CARGO_BIN_EXE_virtplugd");

/// A folder (0700) holding only the mock plugin, shared by this process's tests, or `None`
/// (skip) outside CI when the mock is not built.
pub fn plugin_dir() -> Option<PathBuf> {
    MOCK.require("virtplugd tests")?;
    let only = std::env::temp_dir().join(format!("virtplugd-test-plugins-{}", std::process::id()));
    Some(private_plugin_dir(&only, &[&MOCK]))
}

/// A client connection to a test daemon (the support crate knows no host types).
pub trait Connect {
    fn connect(&self) -> Connection;
}

impl Connect for Daemon {
    fn connect(&self) -> Connection {
        Connection::open(&Registry::default(), &self.uri(), false).unwrap()
    }
}

/// A snapshot XML to redefine: `name` under `parent`, with the mock's `test` domain.
pub fn create(conn: &Connection, name: &str) -> String {
    conn.snapshot_create("test", &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 0).unwrap()
}

/// Checks the tree invariants of `test` on `conn`: unique names, every parent exists, no cycle,
/// at most one current, topological order puts parents first. Returns (name, parent) pairs.
pub fn check_tree(conn: &Connection) -> Vec<(String, Option<String>)> {
    use std::collections::{HashMap, HashSet};
    let list = conn.snapshot_list("test", virtplug_host::flags::snapshot_list::TOPOLOGICAL).unwrap();
    let mut seen = HashSet::new();
    let names: HashSet<&str> = list.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.len(), list.len(), "duplicate names");
    let parents: HashMap<&str, Option<&str>> = list.iter().map(|s| (s.name.as_str(), s.parent.as_deref())).collect();
    for s in &list {
        if let Some(p) = &s.parent {
            assert!(names.contains(p.as_str()), "{} has missing parent {p}", s.name);
            assert!(seen.contains(p.as_str()), "{} listed before its parent {p}", s.name);
        }
        seen.insert(s.name.as_str());
        let mut cur = s.parent.as_deref();
        let mut steps = 0;
        while let Some(p) = cur {
            steps += 1;
            assert!(steps <= list.len(), "cycle through {}", s.name);
            cur = parents.get(p).copied().flatten();
        }
    }
    assert!(list.iter().filter(|s| s.current).count() <= 1, "more than one current snapshot");
    list.into_iter().map(|s| (s.name, s.parent)).collect()
}

/// Raw HTTP over the unix socket (status, body).
pub fn raw(socket: &Path, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
