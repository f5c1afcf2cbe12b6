//! A small blocking HTTP/1.1 client for the daemon's API: one keep-alive connection over a unix
//! socket, plain TCP (loopback tests) or TCP with TLS (rustls, ring provider). Requests carry
//! `Content-Length` bodies; responses are read by `Content-Length` or chunked encoding.
//!
//! Why not a crate: the maintained blocking clients do not speak HTTP over unix sockets, and an
//! async client would start a runtime on every CLI invocation (cold start matters).

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::TcpStream,
    os::unix::net::UnixStream,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// `host:port` over TLS, verifying the server against `ca` (PEM) or the system store.
    Tls { host: String, port: u16, ca: Option<PathBuf> },
    /// `host:port` without TLS (the daemon only offers it on loopback, for tests).
    Tcp { host: String, port: u16 },
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// A response: status, entity tag and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// A connection to a daemon, reused across calls.
pub struct HttpClient {
    endpoint: Endpoint,
    token: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Mutex<Option<BufReader<Box<dyn Stream>>>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("HttpClient").field("endpoint", &self.endpoint).finish()
    }
}

fn tls_config(ca: Option<&PathBuf>) -> io::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    let path = ca.cloned().or_else(|| std::env::var_os("VIRTPLUG_CA_FILE").map(PathBuf::from));
    let path = path.unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
    for cert in
        CertificateDer::pem_file_iter(&path).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?
    {
        let cert = cert.map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        roots.add(cert).map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Percent-encodes one path segment (names are data: `/`, `?`, `%`, spaces and non-ASCII).
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl HttpClient {
    /// A client for `endpoint`; `token` is sent as a bearer token.
    pub fn new(endpoint: Endpoint, token: Option<String>) -> io::Result<Self> {
        let tls = match &endpoint {
            Endpoint::Tls { ca, .. } => Some(tls_config(ca.as_ref())?),
            _ => None,
        };
        Ok(Self { endpoint, token, tls, conn: Mutex::new(None) })
    }

    fn connect(&self) -> io::Result<BufReader<Box<dyn Stream>>> {
        let stream: Box<dyn Stream> = match &self.endpoint {
            Endpoint::Unix(path) => Box::new(
                UnixStream::connect(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot connect to {}: {e}", path.display())))?,
            ),
            Endpoint::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port))?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            Endpoint::Tls { host, port, .. } => {
                let s = TcpStream::connect((host.as_str(), *port))?;
                s.set_nodelay(true)?;
                let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(io::Error::other)?;
                let config = self.tls.clone().ok_or_else(|| io::Error::other("TLS not configured"))?;
                let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
                Box::new(rustls::StreamOwned::new(conn, s))
            }
        };
        Ok(BufReader::with_capacity(64 * 1024, stream))
    }

    /// Sends one request and reads the response. A reused connection that turns out to be
    /// closed before any response byte arrived is replaced once.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> io::Result<Response> {
        let mut guard = self.conn.lock().map_err(|_| io::Error::other("connection lock poisoned"))?;
        for attempt in 0..2 {
            let reused = guard.is_some();
            let mut conn = match guard.take() {
                Some(c) => c,
                None => self.connect()?,
            };
            match self.exchange(&mut conn, method, path, headers, body) {
                Ok((resp, keep)) => {
                    if keep {
                        *guard = Some(conn);
                    }
                    return Ok(resp);
                }
                Err(Failure::BeforeResponse(e)) if reused && attempt == 0 => {
                    tracing::debug!("stale connection, reconnecting: {e}");
                }
                Err(Failure::BeforeResponse(e) | Failure::During(e)) => return Err(e),
            }
        }
        Err(io::Error::other("unreachable retry loop"))
    }

    fn exchange(
        &self,
        conn: &mut BufReader<Box<dyn Stream>>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<(Response, bool), Failure> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n");
        if let Some(token) = &self.token {
            head.push_str("Authorization: Bearer ");
            head.push_str(token);
            head.push_str("\r\n");
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let body = body.unwrap_or(&[]);
        if !body.is_empty() || matches!(method, "POST" | "PUT") {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let stream = conn.get_mut();
        let write =
            stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).and_then(|()| stream.flush());
        if let Err(e) = write {
            // The daemon may refuse a request before reading its body (read-only socket, body
            // over the route's limit) and close: its answer is still waiting to be read.
            let mut line = String::new();
            if matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset)
                && conn.read_line(&mut line).is_ok_and(|n| n > 0)
                && line.starts_with("HTTP/")
            {
                return read_rest(conn, &line).map(|(resp, _)| (resp, false)).map_err(Failure::During);
            }
            return Err(Failure::BeforeResponse(e));
        }
        let mut line = String::new();
        match conn.read_line(&mut line) {
            Ok(0) => {
                return Err(Failure::BeforeResponse(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "daemon closed the connection",
                )));
            }
            Ok(_) => {}
            Err(e) => return Err(Failure::BeforeResponse(e)),
        }
        read_rest(conn, &line).map_err(Failure::During)
    }
}

enum Failure {
    BeforeResponse(io::Error),
    During(io::Error),
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn read_rest(conn: &mut BufReader<Box<dyn Stream>>, status_line: &str) -> io::Result<(Response, bool)> {
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or("");
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| bad("malformed HTTP status line"))?;
    let mut keep = version == "HTTP/1.1";
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut etag = None;
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            return Err(bad("connection closed inside the response headers"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = Some(v.parse().map_err(|_| bad("bad content-length"))?),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "connection" => keep = !v.eq_ignore_ascii_case("close"),
            "etag" => etag = Some(v.to_owned()),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if status == 304 || status == 204 {
        // No body, whatever the headers say (RFC 9112 §6.3).
    } else if chunked {
        loop {
            let mut size = String::new();
            conn.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                let mut end = String::new();
                conn.read_line(&mut end)?;
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            conn.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            conn.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        conn.read_exact(&mut body)?;
    } else {
        conn.read_to_end(&mut body)?;
        keep = false;
    }
    Ok((Response { status, etag, body }, keep))
}

/// Connect timeout used by callers that poll.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
