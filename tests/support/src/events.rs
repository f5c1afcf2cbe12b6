//! A client of virtplugd's HTTP API as the plugins' end-to-end event tests use it: one request
//! on the daemon's unix socket, and the server-sent event stream of `/v1/events` read until a
//! given event arrives. Std only, like the rest of this crate.

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::{Duration, Instant},
};

use crate::Daemon;

/// One HTTP/1.1 request without a body on the daemon's socket for driver `uri`: (status, body).
pub fn request(socket: &Path, method: &str, path: &str, uri: &str) -> (u16, String) {
    let mut s = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nVirtplug-Uri: {uri}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap_or_else(|e| panic!("sending {method} {path}: {e}"));
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap_or_else(|e| panic!("reading the answer to {method} {path}: {e}"));
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// The SSE stream of `/v1/events` from its start.
pub struct EventStream {
    reader: BufReader<UnixStream>,
    kind: String,
}

impl EventStream {
    /// Follows the daemon's events from the first one.
    pub fn open(socket: &Path) -> Self {
        let mut s = UnixStream::connect(socket).unwrap_or_else(|e| panic!("connecting to {}: {e}", socket.display()));
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap_or_else(|e| panic!("read timeout: {e}"));
        s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n")
            .unwrap_or_else(|e| panic!("asking for the event stream: {e}"));
        Self { reader: BufReader::new(s), kind: String::new() }
    }

    /// The kinds of the events for `domain` read until (and with) the next `kind` for it; fails
    /// after `give_up` (the stream's keep-alives would otherwise never end it), showing the
    /// daemon's log.
    pub fn until(&mut self, kind: &str, domain: &str, daemon: &Daemon, give_up: Duration) -> Vec<String> {
        let deadline = Instant::now() + give_up;
        let mut seen = Vec::new();
        let mut line = String::new();
        loop {
            assert!(
                Instant::now() < deadline,
                "no event {kind} for {domain} within {give_up:?}; saw {seen:?}; daemon log: {}",
                daemon.log()
            );
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("the event stream ended; saw {seen:?}"),
                Ok(_) if line.ends_with('\n') => {}
                // A timeout: keep what was read of the line and look again.
                Ok(_) | Err(_) => continue,
            }
            let text = std::mem::take(&mut line);
            if let Some(k) = text.strip_prefix("event: ") {
                self.kind = k.trim().to_owned();
            } else if let Some(data) = text.strip_prefix("data: ")
                && names_domain(data, domain)
            {
                seen.push(self.kind.clone());
                if self.kind == kind {
                    return seen;
                }
            }
        }
    }
}

/// Whether an event's JSON names `domain`: the daemon writes compact JSON, so the field reads
/// `"domain":"<name>"` with the name JSON-escaped.
fn names_domain(data: &str, domain: &str) -> bool {
    let escaped = domain.replace('\\', "\\\\").replace('"', "\\\"");
    data.contains(&format!("\"domain\":\"{escaped}\""))
}

#[cfg(test)]
mod tests {
    use super::names_domain;

    #[test]
    fn events_are_matched_by_their_domain_field() {
        let data = r#"{"seq":3,"kind":"domain.stopped","uri":"x","domain":"vm \"1\"","snapshot":null}"#;
        assert!(names_domain(data, "vm \"1\""));
        assert!(!names_domain(data, "vm"));
        assert!(!names_domain(r#"{"domain":null,"uri":"vm"}"#, "vm"));
    }
}
