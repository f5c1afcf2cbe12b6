//! A minimal synchronous QMP client: greeting and capability negotiation, commands with their
//! replies (two commands can share one round trip: [`Qmp::execute_pair`]), events buffered as
//! they arrive, and job-style commands (`snapshot-save`/`-load`/`-delete`) run to conclusion
//! with their error and progress taken from `query-jobs` (and reported to the host's progress
//! handle). Between commands, [`Qmp::pending_events`] reads
//! the events qemu sent meanwhile without waiting (the connection's watcher, `watch.rs`).
//! Every read is bounded by the connection's timeout; a silent peer is an error, never a hang.

use std::{
    io::{BufRead, BufReader, ErrorKind, Write},
    os::{fd::AsRawFd, unix::net::UnixStream},
    path::Path,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// What went wrong talking QMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QmpError {
    /// The socket is gone or closed (qemu exited or crashed).
    Gone(String),
    /// No answer within the timeout.
    Timeout,
    /// qemu answered with an error (`desc`).
    Command(String),
}

impl std::fmt::Display for QmpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gone(why) => write!(f, "monitor connection closed: {why}"),
            Self::Timeout => write!(f, "monitor did not answer in time"),
            Self::Command(d) => write!(f, "{d}"),
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutcome {
    /// `query-jobs` `current-progress` / `total-progress` at conclusion.
    pub progress: (u64, u64),
    /// The job's error, if it failed.
    pub error: Option<String>,
}

/// One QMP connection.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    timeout: Duration,
    /// The `id` of the command last sent (see [`next_id`]).
    last_id: String,
    /// Events received and not yet consumed, oldest first.
    pub events: Vec<Value>,
}

/// A command id no other command of any connection, of this process or another, has had while
/// this process runs: the process id and a count. A stale reply (see [`Qmp::reply`]) can come from
/// an earlier connection of another process (a CLI before the daemon), so per-connection counts
/// would meet again.
fn next_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn io(e: &std::io::Error) -> QmpError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => QmpError::Timeout,
        _ => QmpError::Gone(e.to_string()),
    }
}

impl Qmp {
    /// Connects to `path`, reads the greeting and negotiates capabilities.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let s = UnixStream::connect(path).map_err(|e| QmpError::Gone(e.to_string()))?;
        s.set_read_timeout(Some(timeout)).map_err(|e| io(&e))?;
        s.set_write_timeout(Some(timeout)).map_err(|e| io(&e))?;
        let writer = s.try_clone().map_err(|e| io(&e))?;
        let mut q = Self { reader: BufReader::new(s), writer, timeout, last_id: String::new(), events: Vec::new() };
        let greeting = q.read_msg()?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Gone("no QMP greeting".into()));
        }
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    fn read_msg(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.reader.read_line(&mut line).map_err(|e| io(&e))?;
            if n == 0 {
                return Err(QmpError::Gone("end of file".into()));
            }
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&line).map_err(|e| QmpError::Gone(format!("bad QMP message: {e}")));
        }
    }

    /// Runs `cmd` and returns its `return` value; events seen meanwhile are buffered.
    pub fn execute(&mut self, cmd: &str, args: Option<Value>) -> Result<Value, QmpError> {
        self.send(cmd, args)?;
        self.reply()
    }

    /// Sends `cmd` without waiting for its reply (fault injection and `quit` races). It carries
    /// a fresh `id`, which qemu echoes in its reply.
    pub fn send(&mut self, cmd: &str, args: Option<Value>) -> Result<(), QmpError> {
        self.last_id = next_id();
        let mut msg = json!({ "execute": cmd, "id": self.last_id });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer.write_all(text.as_bytes()).map_err(|e| io(&e))
    }

    /// Reads until the reply of the command last sent. A reply that is not its own (no `id`, or
    /// another one) is dropped: qemu's monitor is one object for all its clients, and a command
    /// an earlier, closed connection left queued (sent while qemu was stopped, say) can be
    /// answered on the next connection; taken for ours, it would answer the wrong question.
    pub fn reply(&mut self) -> Result<Value, QmpError> {
        loop {
            let v = self.read_msg()?;
            if v.get("event").is_some() {
                self.events.push(v);
            } else if v.get("id").and_then(Value::as_str) != Some(self.last_id.as_str()) {
                continue;
            } else if let Some(r) = v.get("return") {
                return Ok(r.clone());
            } else if let Some(e) = v.get("error") {
                let desc = e.get("desc").and_then(Value::as_str).unwrap_or("unknown QMP error");
                return Err(QmpError::Command(desc.to_owned()));
            }
        }
    }

    /// Runs two commands without arguments in one round trip: both are sent, then their replies
    /// are read in the order sent (qemu runs a monitor's in-band commands in order). An error
    /// reply to the first still reads the second's, so the connection stays in step; when the
    /// connection fails or times out, both fail.
    pub fn execute_pair(&mut self, first: &str, second: &str) -> (Result<Value, QmpError>, Result<Value, QmpError>) {
        if let Err(e) = self.send(first, None) {
            return (Err(e.clone()), Err(e));
        }
        let first_id = std::mem::take(&mut self.last_id);
        if let Err(e) = self.send(second, None) {
            return (Err(e.clone()), Err(e));
        }
        let second_id = std::mem::replace(&mut self.last_id, first_id);
        let answer = self.reply();
        if let Err(e @ (QmpError::Gone(_) | QmpError::Timeout)) = &answer {
            let e = e.clone();
            return (answer, Err(e));
        }
        self.last_id = second_id;
        (answer, self.reply())
    }

    /// `query-status` → the run state string (`running`, `paused`, `prelaunch`, `shutdown`…).
    pub fn status(&mut self) -> Result<String, QmpError> {
        let r = self.execute("query-status", None)?;
        Ok(r.get("status").and_then(Value::as_str).unwrap_or("unknown").to_owned())
    }

    fn job_concluded(&self, id: &str) -> bool {
        self.events.iter().any(|e| {
            e.get("event").and_then(Value::as_str) == Some("JOB_STATUS_CHANGE")
                && e["data"]["id"].as_str() == Some(id)
                && e["data"]["status"].as_str() == Some("concluded")
        })
    }

    /// Starts job command `cmd` with `args` (which must carry `job-id` = `id`), waits for it to
    /// conclude, reads its error and progress from `query-jobs`, and dismisses it.
    pub fn run_job(&mut self, cmd: &str, id: &str, args: Value) -> Result<JobOutcome, QmpError> {
        self.execute(cmd, Some(args))?;
        self.finish_job(id)
    }

    /// The part of [`Qmp::run_job`] after the command was accepted.
    pub fn finish_job(&mut self, id: &str) -> Result<JobOutcome, QmpError> {
        let deadline = Instant::now() + self.timeout;
        while !self.job_concluded(id) {
            if Instant::now() > deadline {
                return Err(QmpError::Timeout);
            }
            let v = self.read_msg()?;
            if v.get("event").is_some() {
                self.events.push(v);
            }
        }
        let jobs = self.execute("query-jobs", None)?;
        let job = jobs.as_array().and_then(|a| a.iter().find(|j| j["id"].as_str() == Some(id))).cloned();
        let outcome = JobOutcome {
            progress: job.as_ref().map_or((0, 0), |j| {
                (j["current-progress"].as_u64().unwrap_or(0), j["total-progress"].as_u64().unwrap_or(0))
            }),
            error: job.as_ref().and_then(|j| j["error"].as_str().map(str::to_owned)),
        };
        virtplug_plugin_sdk::host::progress(outcome.progress.0, outcome.progress.1);
        self.execute("job-dismiss", Some(json!({ "id": id })))?;
        self.events.retain(|e| e["data"]["id"].as_str() != Some(id));
        Ok(outcome)
    }

    /// Whether qemu has sent something not yet read (buffered here or waiting in the socket).
    fn readable(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let mut fd = libc::pollfd { fd: self.reader.get_ref().as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for a socket this connection owns; a zero timeout never blocks.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        ready > 0 && fd.revents != 0
    }

    /// The events qemu sent since the last exchange, read without waiting for more (none is in
    /// flight: only called between commands); a `SHUTDOWN` is also kept in [`Qmp::events`] (for
    /// [`Qmp::saw_shutdown`]), the others are not, so a watched connection does not grow. qemu writes each
    /// message as one line, so a readable socket holds whole messages. `Gone` when qemu closed
    /// the monitor (it exited).
    pub fn pending_events(&mut self) -> Result<Vec<Value>, QmpError> {
        let mut out = Vec::new();
        while self.readable() {
            let v = self.read_msg()?;
            if v.get("event").and_then(Value::as_str) == Some("SHUTDOWN") {
                self.events.push(v.clone());
            }
            if v.get("event").is_some() {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Whether a `SHUTDOWN` event has been seen on this connection.
    pub fn saw_shutdown(&self) -> bool {
        self.events.iter().any(|e| e.get("event").and_then(Value::as_str) == Some("SHUTDOWN"))
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{BufRead, BufReader, Write},
        os::unix::net::{UnixListener, UnixStream},
        time::Duration,
    };

    use serde_json::Value;

    use super::Qmp;

    /// A scripted monitor on a fresh socket: `script` gets the accepted connection's two ends
    /// (reads time out after 5 s, so a client that never sends fails the script) after the
    /// greeting was written; the test connects to the returned path.
    fn monitor<T: Send + 'static>(
        script: impl FnOnce(UnixStream, BufReader<UnixStream>) -> T + Send + 'static,
    ) -> (tempfile::TempDir, std::path::PathBuf, std::thread::JoinHandle<T>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let handle = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut w = s.try_clone().unwrap();
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}\r\n").unwrap();
            script(w, BufReader::new(s))
        });
        (dir, path, handle)
    }

    /// A monitor that answers each command with the replies a closed connection left queued
    /// first (one without an `id`, one with another), then with the command's own.
    #[test]
    fn a_reply_left_by_an_earlier_connection_is_not_taken_for_ours() {
        let (_dir, path, monitor) = monitor(|mut w, mut r| {
            let mut seen = Vec::new();
            for own in [serde_json::json!({}), serde_json::json!({"status": "running", "running": true})] {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                let cmd: Value = serde_json::from_str(&line).unwrap();
                let stale = [
                    serde_json::json!({"return": {}}),
                    serde_json::json!({"return": {"status": "paused"}, "id": format!("{}-1", std::process::id() + 1)}),
                    serde_json::json!({"return": own, "id": cmd["id"]}),
                ];
                for reply in stale {
                    w.write_all(format!("{reply}\r\n").as_bytes()).unwrap();
                }
                seen.push((cmd["execute"].as_str().unwrap().to_owned(), cmd["id"].as_str().unwrap().to_owned()));
            }
            seen
        });
        let mut q = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(q.status().unwrap(), "running");
        let seen = monitor.join().unwrap();
        assert_eq!(seen.iter().map(|(cmd, _)| cmd.as_str()).collect::<Vec<_>>(), ["qmp_capabilities", "query-status"]);
        let prefix = format!("{}-", std::process::id());
        assert!(seen.iter().all(|(_, id)| id.starts_with(&prefix)), "{seen:?}");
        assert_ne!(seen[0].1, seen[1].1);
    }

    /// A monitor that reads both commands of a pair before it answers either (it would wait
    /// for ever if the second were sent only after the first's reply): a stale reply, the
    /// first's error, an event, the second's return.
    #[test]
    fn a_pair_is_sent_before_either_reply_is_read_and_an_error_keeps_it_in_step() {
        let (_dir, path, monitor) = monitor(|mut w, mut r| {
            let mut read = || -> Value {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                serde_json::from_str(&line).unwrap()
            };
            let caps = read();
            w.write_all(format!("{}\r\n", serde_json::json!({"return": {}, "id": caps["id"]})).as_bytes()).unwrap();
            let (first, second) = (read(), read());
            for reply in [
                serde_json::json!({"return": {}, "id": "stale-1"}),
                serde_json::json!({"error": {"class": "GenericError", "desc": "boom"}, "id": first["id"]}),
                serde_json::json!({"event": "RESUME", "timestamp": {}}),
                serde_json::json!({"return": [{"device": "vda"}], "id": second["id"]}),
            ] {
                w.write_all(format!("{reply}\r\n").as_bytes()).unwrap();
            }
            (first["execute"].as_str().unwrap().to_owned(), second["execute"].as_str().unwrap().to_owned())
        });
        let mut q = Qmp::connect(&path, Duration::from_secs(5)).unwrap();
        let (a, b) = q.execute_pair("query-block-jobs", "query-block");
        assert_eq!(a, Err(super::QmpError::Command("boom".into())));
        assert_eq!(b, Ok(serde_json::json!([{"device": "vda"}])));
        assert_eq!(q.events.len(), 1);
        assert_eq!(monitor.join().unwrap(), ("query-block-jobs".to_owned(), "query-block".to_owned()));
    }
}
