//! A blocking HTTP/1.1 client for one SOAP endpoint: POST only, kept-alive connections (plain
//! TCP or rustls) reused from a small pool, one write per request, answers framed by
//! Content-Length, chunked encoding or the end of the connection.
//!
//! Why not a general client: a SOAP call here is one small POST answered on the same thread.
//! The async client this replaced (reqwest on a current-thread runtime) cost about 85 us per
//! request over one raw keep-alive POST on the simulator (a 160 us request: its per-call
//! set-up, hyper, the runtime's reactor wake-ups); blocking reads on the calling thread cost
//! what the raw POST costs (issue 19).
//!
//! A request is never sent twice. An idle connection is checked before reuse (the server may
//! have closed it meanwhile: a closed one is dropped and a new one opened, before anything is
//! written); a connection that fails once the request is written is an error for the caller.

use std::{
    io::{self, BufRead, BufReader, Read, Write},
    net::{TcpStream, ToSocketAddrs},
    os::fd::AsRawFd,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, ServerName, UnixTime},
};

use crate::uri::Target;

/// Idle connections kept.
const POOL: usize = 4;
/// The largest answer accepted (a whole inventory's properties stay far below).
const MAX_BODY: usize = 256 << 20;

/// Why a request failed.
#[derive(Debug)]
pub enum HttpError {
    /// No connection could be made.
    Connect(String),
    /// The server's certificate does not verify.
    Certificate(String),
    /// No answer within the read timeout.
    Timeout,
    /// The connection failed or the answer was malformed.
    Other(String),
}

/// An answer: status, the `Set-Cookie` values, the body.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Every `Set-Cookie` header value.
    pub set_cookies: Vec<String>,
    /// The body.
    pub body: Vec<u8>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// One connection and its request buffer (reused from request to request).
struct Conn {
    io: BufReader<Stream>,
    buf: Vec<u8>,
}

impl Conn {
    /// Whether an idle connection can take a request: nothing buffered, and the server has
    /// neither closed it nor sent anything (a TLS close_notify included) since the last answer.
    fn reusable(&self) -> bool {
        if !self.io.buffer().is_empty() {
            return false;
        }
        // One poll without waiting (issue 19: it was three calls, a non-blocking peek between
        // two mode switches): readable means data or the server's close, and either one ends
        // the connection's reuse; an error reported by poll does too.
        let mut fd = libc::pollfd { fd: self.io.get_ref().tcp().as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd for a socket this connection owns; a zero timeout never blocks.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        ready == 0
    }
}

/// The client for one endpoint.
pub struct Client {
    host: String,
    port: u16,
    /// `POST <path> HTTP/1.1` up to the end of the fixed headers.
    head: String,
    tls: Option<Arc<ClientConfig>>,
    connect_timeout: Duration,
    timeout: Duration,
    pool: Mutex<Vec<Conn>>,
    /// An answer buffer given back ([`Client::recycle`]), reused by the next answer: a fresh
    /// one of a few KiB made the allocator consolidate its free lists on every request (issue 19).
    spare: Mutex<Vec<u8>>,
}

/// Accepts any certificate (the URI's `no_verify=1`). The handshake's signatures are not
/// checked either, as the async client this replaced did not: without a verified certificate
/// they prove nothing, and the simulator's key (too small for ring's checks) would fail them.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS settings: Mozilla's roots plus the system's, or no verification at all.
fn tls_config(no_verify: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if no_verify {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // The system's roots too (a private CA of the site); unreadable ones are skipped.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn io_error(e: io::Error) -> HttpError {
    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
        return HttpError::Timeout;
    }
    if let Some(rustls::Error::InvalidCertificate(c)) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return HttpError::Certificate(format!("{c:?}"));
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return HttpError::Other("connection closed before message completed".to_owned());
    }
    HttpError::Other(e.to_string().replace('\n', " "))
}

fn bad(what: &str) -> HttpError {
    HttpError::Other(format!("malformed HTTP answer: {what}"))
}

impl Client {
    /// A client for `target`'s `path`; connects on the first request.
    pub fn new(
        target: &Target,
        path: &str,
        user_agent: &str,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, String> {
        let (host, port) = (target.host.as_str(), target.port);
        let tls = if target.https { Some(Arc::new(tls_config(target.no_verify)?)) } else { None };
        let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {user_agent}\r\nContent-Type: text/xml; charset=utf-8\r\n"
        );
        Ok(Self {
            host: host.to_owned(),
            port,
            head,
            tls,
            connect_timeout,
            timeout,
            pool: Mutex::new(Vec::new()),
            spare: Mutex::new(Vec::new()),
        })
    }

    fn connect(&self) -> Result<Conn, HttpError> {
        let addrs = (self.host.as_str(), self.port).to_socket_addrs().map_err(|e| HttpError::Connect(e.to_string()))?;
        let mut last = None;
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            HttpError::Connect(last.map_or_else(|| "no address".to_owned(), |e| e.to_string().replace('\n', " ")))
        })?;
        let setup = |t: &TcpStream| {
            t.set_nodelay(true)?;
            t.set_read_timeout(Some(self.timeout))?;
            t.set_write_timeout(Some(self.timeout))
        };
        setup(&tcp).map_err(|e| HttpError::Connect(e.to_string()))?;
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(cfg) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|e| HttpError::Connect(e.to_string()))?;
                let conn =
                    ClientConnection::new(Arc::clone(cfg), name).map_err(|e| HttpError::Connect(e.to_string()))?;
                Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
            }
        };
        Ok(Conn { io: BufReader::with_capacity(16 << 10, stream), buf: Vec::with_capacity(2048) })
    }

    /// An idle connection that can take a request, or a new one.
    fn checkout(&self) -> Result<Conn, HttpError> {
        loop {
            let idle = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
            match idle {
                Some(c) if c.reusable() => return Ok(c),
                Some(_) => {} // closed by the server while idle: dropped
                None => return self.connect(),
            }
        }
    }

    /// Gives an answer's buffer back for the next answer (a small one is kept).
    pub fn recycle(&self, mut body: Vec<u8>) {
        if body.capacity() <= 1 << 20 {
            body.clear();
            *self.spare.lock().unwrap_or_else(PoisonError::into_inner) = body;
        }
    }

    /// POSTs the concatenation of `body` with `SOAPAction: action` and, if any, `Cookie: cookie`.
    pub fn post(&self, action: &str, cookie: Option<&str>, body: &[&str]) -> Result<Response, HttpError> {
        let mut conn = self.checkout()?;
        conn.buf.clear();
        conn.buf.extend_from_slice(self.head.as_bytes());
        for (name, value) in [("SOAPAction", Some(action)), ("Cookie", cookie)] {
            if let Some(v) = value {
                conn.buf.extend_from_slice(name.as_bytes());
                conn.buf.extend_from_slice(b": ");
                conn.buf.extend_from_slice(v.as_bytes());
                conn.buf.extend_from_slice(b"\r\n");
            }
        }
        let length: usize = body.iter().map(|b| b.len()).sum();
        conn.buf.extend_from_slice(format!("Content-Length: {length}\r\n\r\n").as_bytes());
        for part in body {
            conn.buf.extend_from_slice(part.as_bytes());
        }
        let Conn { io, buf } = &mut conn;
        let stream = io.get_mut();
        stream.write_all(buf).and_then(|()| stream.flush()).map_err(io_error)?;
        let spare = std::mem::take(&mut *self.spare.lock().unwrap_or_else(PoisonError::into_inner));
        let (resp, keep) = read_response(io, spare)?;
        if keep {
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < POOL {
                pool.push(conn);
            }
        }
        Ok(resp)
    }
}

fn read_line(r: &mut impl BufRead, line: &mut String) -> Result<(), HttpError> {
    line.clear();
    match r.read_line(line).map_err(io_error)? {
        0 => Err(HttpError::Other("connection closed before message completed".to_owned())),
        _ => Ok(()),
    }
}

/// Reads one answer into `body` (empty); `true` when the connection can carry another request.
fn read_response(r: &mut impl BufRead, mut body: Vec<u8>) -> Result<(Response, bool), HttpError> {
    let mut line = String::new();
    read_line(r, &mut line)?;
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(bad("no status line"));
    }
    let status: u16 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status code"))?;
    let mut keep = version == "HTTP/1.1";
    let (mut length, mut chunked, mut set_cookies) = (None, false, Vec::new());
    loop {
        read_line(r, &mut line)?;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else { return Err(bad("header line")) };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| bad("Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            keep = if v.contains("close") { false } else { keep || v.contains("keep-alive") };
        } else if name.eq_ignore_ascii_case("set-cookie") {
            set_cookies.push(value.to_owned());
        }
    }
    if chunked {
        loop {
            read_line(r, &mut line)?;
            let size = line.trim_end().split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| bad("chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    read_line(r, &mut line)?;
                    if line.trim_end_matches(['\r', '\n']).is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(bad("answer too large"));
            }
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..]).map_err(io_error)?;
            read_line(r, &mut line)?; // the chunk's CRLF
        }
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(bad("answer too large"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(io_error)?;
    } else {
        // Framed by the end of the connection.
        r.take(MAX_BODY as u64 + 1).read_to_end(&mut body).map_err(io_error)?;
        keep = false;
    }
    Ok((Response { status, set_cookies, body }, keep))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn read(raw: &str) -> Result<(Response, bool), HttpError> {
        read_response(&mut io::Cursor::new(raw.as_bytes().to_vec()), Vec::new())
    }

    /// Reads one request (head and Content-Length body) from `s`.
    fn serve_one(s: &mut TcpStream, answer: &str) {
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        let mut len = 0;
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        s.write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}", answer.len()).as_bytes()).unwrap();
    }

    #[test]
    fn a_connection_closed_while_idle_is_not_used_again() {
        // The server answers on a kept-alive connection, then closes it while it is idle (as
        // servers do after their idle timeout). The next request must go on a new connection,
        // not be written into the closed one and fail.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let (closed_tx, closed_rx) = std::sync::mpsc::channel();
        let server = std::thread::spawn(move || {
            let (mut first, _) = l.accept().unwrap();
            serve_one(&mut first, "one");
            drop(first);
            closed_tx.send(()).unwrap();
            let (mut second, _) = l.accept().unwrap();
            serve_one(&mut second, "two");
        });
        let target = crate::uri::parse(&format!("vsphere://127.0.0.1:{port}/?transport=http")).unwrap();
        let c = Client::new(&target, "/sdk", "t", Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        assert_eq!(c.post("\"a\"", None, &["x"]).unwrap().body, b"one");
        closed_rx.recv().unwrap();
        let again = c.post("\"a\"", Some("k=v"), &["y"]).map(|r| r.body);
        assert!(matches!(&again, Ok(b) if b == b"two"), "{again:?}");
        server.join().unwrap();
    }

    #[test]
    fn answers_are_framed_by_length_chunks_or_close() {
        let (r, keep) =
            read("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1; HttpOnly\r\n\r\nhelloEXTRA").unwrap();
        assert_eq!(
            (r.status, keep, r.body.as_slice(), r.set_cookies),
            (200, true, &b"hello"[..], vec!["a=1; HttpOnly".to_owned()])
        );
        let (r, keep) = read(
            "HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, keep, r.body.as_slice()), (500, true, &b"abcde"[..]));
        let (r, keep) = read("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end").unwrap();
        assert_eq!((keep, r.body.as_slice()), (false, &b"to the end"[..]));
        let (_, keep) = read("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert!(!keep);
        assert!(matches!(read(""), Err(HttpError::Other(m)) if m == "connection closed before message completed"));
        assert!(matches!(read("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"), Err(HttpError::Other(_))));
        assert!(matches!(read("<html>"), Err(HttpError::Other(_))));
    }
}
