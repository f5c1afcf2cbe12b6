//! Remote URIs taken apart (`driver+transport://…`), the daemon's default sockets, and the
//! system error for socket-level failures: the leaf every other part of the client reads.

use std::path::PathBuf;

use super::http;
use crate::error::{BackendError, SYSTEM_ERROR};

/// The daemon's default unix socket for read-write (`read_only == false`) or read-only access.
pub fn default_socket(read_only: bool) -> PathBuf {
    let base = match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("virtplug"),
        _ => PathBuf::from("/run/virtplug"),
    };
    base.join(if read_only { "virtplugd-sock-ro" } else { "virtplugd-sock" })
}

/// A remote URI taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUri {
    /// The driver URI the daemon opens (`mock:///default`).
    pub driver_uri: String,
    /// How to reach the daemon.
    pub endpoint: http::Endpoint,
    /// Where to read the bearer token from, if the URI says.
    pub token_file: Option<PathBuf>,
}

/// Splits `driver+transport://[user@]host[:port]/path[?query]`. `None` when malformed.
pub fn parse_uri(uri: &str, read_only: bool) -> Option<RemoteUri> {
    let (scheme, rest) = uri.split_once("://")?;
    let (driver, transport) = scheme.split_once('+')?;
    let (authority, path_query) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    let mut socket = None;
    let mut ca = None;
    let mut token_file = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "socket" => socket = Some(PathBuf::from(v)),
            "ca" => ca = Some(PathBuf::from(v)),
            "token_file" => token_file = Some(PathBuf::from(v)),
            _ => kept.push(pair),
        }
    }
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => (h.to_owned(), Some(p.parse::<u16>().ok()?)),
        _ => (host_port.to_owned(), None),
    };
    let endpoint = match transport {
        "unix" => {
            if !host.is_empty() {
                return None;
            }
            let explicit = socket.or_else(|| std::env::var_os("VIRTPLUGD_SOCKET").map(PathBuf::from));
            http::Endpoint::Unix(explicit.unwrap_or_else(|| default_socket(read_only)))
        }
        "https" | "tls" => http::Endpoint::Tls {
            host: if host.is_empty() { "localhost".into() } else { host },
            port: port.unwrap_or(16514),
            ca,
        },
        "tcp" => http::Endpoint::Tcp {
            host: if host.is_empty() { "localhost".into() } else { host },
            port: port.unwrap_or(16509),
        },
        _ => return None,
    };
    let mut driver_uri = format!("{driver}://{path}");
    if !kept.is_empty() {
        driver_uri.push('?');
        driver_uri.push_str(&kept.join("&"));
    }
    Some(RemoteUri { driver_uri, endpoint, token_file })
}

/// Converts an I/O failure talking to the daemon into libvirt's system error, a transport
/// failure (not the remote plugin's refusal).
pub(crate) fn io_error(what: &str, e: &std::io::Error) -> BackendError {
    BackendError::remote(SYSTEM_ERROR, format!("{what}: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::{http::Endpoint, parse_uri};

    #[test]
    fn uri_parsing() {
        let r = parse_uri("mock+unix:///default?socket=/tmp/a.sock", false).unwrap();
        assert_eq!(r.driver_uri, "mock:///default");
        assert_eq!(r.endpoint, Endpoint::Unix("/tmp/a.sock".into()));
        let r = parse_uri("qemu+https://h.example:8443/system?ca=/ca.pem&x=1", false).unwrap();
        assert_eq!(r.driver_uri, "qemu:///system?x=1");
        assert_eq!(r.endpoint, Endpoint::Tls { host: "h.example".into(), port: 8443, ca: Some("/ca.pem".into()) });
        let r = parse_uri("mock+tcp://127.0.0.1:9/tmp/dir", false).unwrap();
        assert_eq!(r.driver_uri, "mock:///tmp/dir");
        assert!(parse_uri("mock+bogus:///x", false).is_none());
        assert!(parse_uri("mock+unix://host/x", false).is_none());
        assert!(parse_uri("mock+https://h:notaport/x", false).is_none());
    }
}
