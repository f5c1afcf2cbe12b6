//! Test helpers: run `virtplugd` as a child process on its own sockets and state directory, with
//! the mock plugin (required under `CI=true`; elsewhere the tests are skipped with one note).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
#![allow(dead_code, reason = "each test file uses a subset")]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use virtplug_host::{Connection, Registry};

pub const BIN: &str = env!("CARGO_BIN_EXE_virtplugd");

/// The folder holding the mock plugin, or `None` (skip) outside CI.
pub fn plugin_dir() -> Option<PathBuf> {
    let dir = Path::new(BIN).parent()?.to_owned();
    if dir.join("libvirtplug_plugin_mock.so").is_file() {
        // Only the mock: other plugins in the build folder are not needed here.
        let only = std::env::temp_dir().join(format!("virtplugd-test-plugins-{}", std::process::id()));
        std::fs::create_dir_all(&only).ok()?;
        let target = only.join("libvirtplug_plugin_mock.so");
        if !target.exists() {
            // Tests run in parallel threads: copy under a unique name, then rename atomically.
            let tmp = only.join(format!(".mock-{:?}.so", std::thread::current().id()));
            std::fs::copy(dir.join("libvirtplug_plugin_mock.so"), &tmp).ok()?;
            std::fs::rename(&tmp, &target).ok()?;
        }
        return Some(only);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("libvirtplug_plugin_mock.so is not beside {BIN}; build it first (cargo build -p virtplug-plugin-mock)");
    }
    eprintln!("note: skipping virtplugd tests: libvirtplug_plugin_mock.so is not built beside {BIN}");
    None
}

/// One daemon: its folder, sockets and host state.
pub struct Daemon {
    pub dir: PathBuf,
    pub child: Child,
    pub plugins: PathBuf,
    pub extra: Vec<String>,
}

impl Daemon {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }
    /// The mock host directory this daemon serves.
    pub fn host(&self) -> PathBuf {
        self.dir.join("host")
    }
    /// The remote URI a client uses.
    pub fn uri(&self) -> String {
        format!("mock+unix://{}?socket={}", self.host().display(), self.socket().display())
    }
    pub fn ro_uri(&self) -> String {
        format!("mock+unix://{}?socket={}-ro", self.host().display(), self.socket().display())
    }
    pub fn start(dir: &Path, plugins: &Path, extra: &[String]) -> Self {
        std::fs::create_dir_all(dir.join("host")).unwrap();
        let mut d = Self {
            dir: dir.to_owned(),
            child: spawn(dir, plugins, extra),
            plugins: plugins.to_owned(),
            extra: extra.to_vec(),
        };
        d.wait_ready();
        d
    }
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "virtplugd exited early: {status}; log: {}",
                    std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("virtplugd did not listen within 20 s");
    }
    /// SIGKILL, then start again on the same sockets and state.
    pub fn kill_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = spawn(&self.dir, &self.plugins, &self.extra);
        self.wait_ready();
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
    pub fn connect(&self) -> Connection {
        Connection::open(&Registry::default(), &self.uri(), false).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, plugins: &Path, extra: &[String]) -> Child {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("log")).unwrap();
    Command::new(BIN)
        .arg("--socket")
        .arg(dir.join("sock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--default-uri")
        .arg(format!("mock://{}", dir.join("host").display()))
        .args(extra)
        .env("VIRTPLUG_PLUGIN_DIR", plugins)
        .env("VIRTPLUGD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
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
