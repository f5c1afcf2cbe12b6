//! Test harness: starts the project's vSphere simulator (tests/vsphere-sim, govmomi 0.24.2) on
//! 127.0.0.1 with a free port, one process per test, and connects the plugin to it.
//!
//! When the simulator binary is missing the tests FAIL under `CI=true`; elsewhere they skip,
//! saying why.

#![allow(dead_code, reason = "each test binary uses a different part of the harness")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "the harness fails loudly")]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::PathBuf,
    process::{Child, ChildStdin, Command, Stdio},
};

use virtplug_plugin_vsphere::{
    Connection,
    uri::{self, Credentials},
};

pub const USER: &str = "root";
pub const PASSWORD: &str = "s3cret-pw";

/// The two simulator models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Standalone ESXi.
    Esx,
    /// vCenter.
    Vpx,
}

impl Model {
    pub fn arg(self) -> &'static str {
        match self {
            Model::Esx => "esx",
            Model::Vpx => "vpx",
        }
    }
    /// A VM of this model and its BIOS uuid (reference §F.4).
    pub fn vm(self) -> (&'static str, &'static str) {
        match self {
            Model::Esx => ("ha-host_VM0", "b03b24de-847f-5b0d-85f4-221b300038a8"),
            Model::Vpx => ("DC0_H0_VM0", "265104de-1472-547c-b873-6dc7883fb6cb"),
        }
    }
}

pub const MODELS: [Model; 2] = [Model::Esx, Model::Vpx];

fn sim_path() -> PathBuf {
    if let Some(p) = std::env::var_os("VSPHERE_SIM") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    target.join("vsphere-sim/vsphere-sim")
}

/// The simulator binary, or `None` (outside CI) when it is not built.
pub fn sim_binary() -> Option<PathBuf> {
    let p = sim_path();
    if p.exists() {
        return Some(p);
    }
    virtplug_test_support::missing(
        "vSphere plugin tests",
        format!("the vSphere simulator is not built at {}: run tests/vsphere-sim/build.sh", p.display()),
    )
}

/// A running simulator; killed on drop.
pub struct Sim {
    child: Child,
    _stdin: ChildStdin,
    pub host: String,
    pub port: u16,
    pub https: bool,
}

impl Sim {
    pub fn start(model: Model) -> Option<Self> {
        Self::start_with(model, false)
    }

    pub fn start_with(model: Model, tls: bool) -> Option<Self> {
        let bin = sim_binary()?;
        let mut cmd = Command::new(bin);
        cmd.args(["-model", model.arg(), "-l", "127.0.0.1:0", "-u", &format!("{USER}:{PASSWORD}"), "-stdin"]);
        if tls {
            cmd.arg("-tls");
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start simulator");
        let stdin = child.stdin.take().expect("stdin");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut sdk = String::new();
        for _ in 0..5 {
            let mut line = String::new();
            out.read_line(&mut line).expect("read simulator output");
            if let Some(u) = line.trim().strip_prefix("SDK=") {
                sdk = u.to_owned();
                break;
            }
        }
        let https = sdk.starts_with("https://");
        let hostport = sdk.split("://").nth(1).and_then(|r| r.split('/').next()).expect("SDK url");
        let (host, port) = hostport.rsplit_once(':').expect("host:port");
        Some(Self { child, _stdin: stdin, host: host.to_owned(), port: port.parse().expect("port"), https })
    }

    /// The URI for this simulator (`path` is the vCenter inventory path, may be empty).
    pub fn uri(&self, path: &str, extra: &str) -> String {
        let transport = if self.https { "https" } else { "http" };
        format!("vsphere://{USER}@{}:{}/{path}?transport={transport}{extra}", self.host, self.port)
    }

    pub fn target(&self, path: &str, extra: &str) -> uri::Target {
        uri::parse(&self.uri(path, extra)).expect("uri")
    }

    pub fn connect(&self) -> Connection {
        Connection::open_with(&self.target("", ""), &Credentials::new(USER, PASSWORD), false).expect("connect")
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `f` against a fresh simulator of each model.
pub fn each_model(f: impl Fn(Model, &Sim, &Connection)) {
    for m in MODELS {
        let Some(sim) = Sim::start(m) else { return };
        let conn = sim.connect();
        f(m, &sim, &conn);
    }
}

/// Round trips `f` makes on `conn`.
pub fn trips<T>(conn: &Connection, f: impl FnOnce() -> T) -> (T, u64) {
    let before = conn.round_trips();
    let r = f();
    (r, conn.round_trips() - before)
}

/// A one-shot HTTP server on 127.0.0.1 answering every request with `status` and `body`
/// (content type `ctype`), for non-SOAP answers. Returns its port.
pub fn fake_http(status: &'static str, ctype: &'static str, body: &'static str, requests: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().take(requests) {
            let Ok(mut s) = s else { continue };
            read_request(&mut s);
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    port
}

/// Reads one HTTP request (headers + Content-Length body); returns it as text.
pub fn read_request(s: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return String::from_utf8_lossy(&buf).into_owned(),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    head + &String::from_utf8_lossy(&body)
}
