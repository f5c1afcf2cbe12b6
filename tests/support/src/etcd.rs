//! A real etcd cluster for tests and benches: `n` members of Debian's `etcd` on free loopback
//! ports in a directory of the caller's, with members that can be killed and restarted, and the
//! leader found through etcd's JSON gateway. Missing `etcd`: the skip policy ([`crate::need`]).

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// One member: its ports, its data, its process while it runs.
#[derive(Debug)]
struct Member {
    name: String,
    client: u16,
    peer: u16,
    child: Option<Child>,
}

/// A running cluster; every member is killed on drop.
#[derive(Debug)]
pub struct EtcdCluster {
    program: PathBuf,
    dir: PathBuf,
    members: Vec<Member>,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding a loopback port: {e}"));
    l.local_addr().unwrap_or_else(|e| panic!("local address: {e}")).port()
}

/// One HTTP/1.0 request to a member's client port; the body of the answer, if it answered.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

/// The string value of `"key":"value"` in a flat JSON text.
fn json_str<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let at = text.find(&format!("\"{key}\":\""))? + key.len() + 4;
    text[at..].split('"').next()
}

impl EtcdCluster {
    /// Starts `n` members in `dir` (created if missing) and waits until every one is healthy;
    /// `None` under the skip policy ([`crate::need`], area `area`) when `etcd` is not installed.
    ///
    /// A member that exits while the cluster forms (most often: another process took one of its
    /// ports between [`free_port`] and etcd's bind) makes a fresh start on new ports, up to three
    /// times in all.
    pub fn start(area: &str, dir: &Path, n: usize) -> Option<Self> {
        let program = crate::need(area, crate::find_program("etcd"))?;
        let mut failures = Vec::new();
        for attempt in 0..3 {
            let dir = dir.join(format!("attempt-{attempt}"));
            std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            let members =
                (0..n).map(|i| Member { name: format!("m{i}"), client: free_port(), peer: free_port(), child: None });
            let mut c = Self { program: program.clone(), dir, members: members.collect() };
            for i in 0..n {
                c.spawn(i);
            }
            match c.healthy_within(Duration::from_secs(60)) {
                Ok(()) => return Some(c),
                Err(why) => failures.push(why),
            }
        }
        panic!("etcd cluster not healthy after 3 starts: {}", failures.join("; "))
    }

    fn spawn(&mut self, i: usize) {
        let cluster: Vec<String> =
            self.members.iter().map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer)).collect();
        let m = &self.members[i];
        let log = std::fs::File::create(self.dir.join(format!("{}.log", m.name)))
            .unwrap_or_else(|e| panic!("creating {}'s log: {e}", m.name));
        let client = format!("http://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let child = Command::new(&self.program)
            .arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(self.dir.join(&m.name))
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &cluster.join(","), "--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "virtplug-test"])
            // Fast elections on loopback, so a killed leader is replaced within about a second.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(["--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting etcd {}: {e}", m.name));
        self.members[i].child = Some(child);
    }

    /// Waits (up to 60 s, then panics with the members' logs) until every running member answers
    /// its health check and a leader exists.
    pub fn wait_healthy(&mut self) {
        if let Err(why) = self.healthy_within(Duration::from_secs(60)) {
            panic!("{why}");
        }
    }

    /// Waits until every running member is healthy and a leader exists; the reason, with the
    /// members' logs, when `limit` passes first or a running member exits.
    fn healthy_within(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            let exited = self.members.iter_mut().find_map(|m| {
                let status = m.child.as_mut()?.try_wait().ok()??;
                m.child = None;
                Some(format!("etcd member {} exited ({status})", m.name))
            });
            if let Some(exited) = exited {
                return Err(format!("{exited}: {}", self.logs()));
            }
            let healthy = self
                .members
                .iter()
                .filter(|m| m.child.is_some())
                .all(|m| http(m.client, "GET", "/health", "").is_some_and(|b| b.contains("\"health\":\"true\"")));
            if healthy && self.leader().is_some() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("etcd cluster not healthy within {limit:?}: {}", self.logs()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of every member's log, for a failure's message (the directory is usually
    /// a temporary one, gone once the test ends).
    fn logs(&self) -> String {
        let tail = |m: &Member| {
            let text = std::fs::read_to_string(self.dir.join(format!("{}.log", m.name))).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(5)..].join(" | ")
        };
        self.members.iter().map(|m| format!("[{}] {}", m.name, tail(m))).collect::<Vec<_>>().join(" ")
    }

    /// `127.0.0.1:port` of every member.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| format!("127.0.0.1:{}", m.client)).collect()
    }

    /// `etcd://<every member>/<prefix>`.
    pub fn uri(&self, prefix: &str) -> String {
        format!("etcd://{}/{prefix}", self.endpoints().join(","))
    }

    /// The index of the leader, as a running member reports it.
    pub fn leader(&self) -> Option<usize> {
        for m in self.members.iter().filter(|m| m.child.is_some()) {
            let Some(body) = http(m.client, "POST", "/v3/maintenance/status", "{}") else { continue };
            let (Some(leader), Some(me)) = (json_str(&body, "leader"), json_str(&body, "member_id")) else { continue };
            if leader == me {
                return self.members.iter().position(|x| x.client == m.client);
            }
            // Ask the others who they are, to map the leader's id to an index.
            for (j, o) in self.members.iter().enumerate().filter(|(_, o)| o.child.is_some()) {
                if let Some(b) = http(o.client, "POST", "/v3/maintenance/status", "{}")
                    && json_str(&b, "member_id") == Some(leader)
                {
                    return Some(j);
                }
            }
        }
        None
    }

    /// Kills member `i` (SIGKILL) and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts member `i` again on its data directory.
    pub fn restart(&mut self, i: usize) {
        if self.members[i].child.is_none() {
            self.spawn(i);
        }
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
