//! Listeners and the connection loop. Unix sockets (access decided by their file permissions;
//! one read-write, one read-only) and TCP with TLS (rustls, handshakes off the accept loop).
//! Bearer tokens for TCP are checked by [`auth`]; a token never reaches a log line.
//!
//! Every listener runs [`serve`]: at most [`ConnLimits::max_connections`] connections at once
//! (further ones wait in the kernel's backlog, as libvirtd's `max_clients` does), an accept loop
//! that backs off when accepting fails (file descriptors exhausted: EMFILE/ENFILE) instead of
//! spinning, and per connection a watchdog for the header and idle timeouts. axum's own `serve`
//! offers none of these, so connections are driven by hyper directly.
//!
//! Each connection is served on a thread of its own, by a single-threaded runtime that drives
//! only it ([`crate::runtime`]). Why: a request then costs one wake-up of the thread that waits
//! on its socket, and its plugin call runs where it stands. On the shared multi-threaded
//! runtime every request also crossed threads (the worker that saw the socket ready, the one
//! that ran the task, the blocking pool for the plugin call and back), and with 16 busy clients
//! on two cores those hand-offs cost more than the answer: `/healthz` took 18 µs of daemon CPU
//! there and 11 µs here, and its p99 under 16 clients fell from 0.69 ms to 0.3 ms (`cargo
//! xtask bench daemon`). The connection limit bounds the threads.

use std::{
    future::Future,
    io,
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::{IntoResponse, Response},
};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, UnixListener},
    sync::{Semaphore, watch},
};
use tokio_rustls::TlsAcceptor;

use crate::{error::ApiError, state::Access};

/// Binds a unix socket at `path` with `mode`, replacing a stale socket file (one nobody answers).
pub fn bind_unix(path: &Path, mode: u32) -> io::Result<UnixListener> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by a running daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Tokens accepted on TCP: `rw TOKEN` or `ro TOKEN` lines; `#` starts a comment.
#[derive(Clone, Default)]
pub struct Tokens(Arc<Vec<(Access, Vec<u8>)>>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.0.len())
    }
}

impl Tokens {
    /// Reads a tokens file.
    pub fn load(path: &Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let access = match line.split_once(char::is_whitespace) {
                Some(("rw", t)) if !t.trim().is_empty() => (Access::ReadWrite, t.trim()),
                Some(("ro", t)) if !t.trim().is_empty() => (Access::ReadOnly, t.trim()),
                // The line number only: the line holds a secret.
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}:{}: expected `rw TOKEN` or `ro TOKEN`", path.display(), n + 1),
                    ));
                }
            };
            out.push((access.0, access.1.as_bytes().to_vec()));
        }
        Ok(Self(Arc::new(out)))
    }

    fn check(&self, given: &[u8]) -> Option<Access> {
        // Compare every token in full so that timing says nothing about which prefix matched.
        let mut found = None;
        for (access, token) in self.0.iter() {
            let mut diff = u8::from(token.len() != given.len());
            for (i, b) in token.iter().enumerate() {
                diff |= b ^ given.get(i).copied().unwrap_or(0);
            }
            if diff == 0 && found.is_none() {
                found = Some(*access);
            }
        }
        found
    }
}

/// Middleware for TCP: a valid bearer token decides the access; otherwise 401.
pub async fn auth(State(tokens): State<Tokens>, mut req: Request, next: Next) -> Response {
    let given =
        req.headers().get(AUTHORIZATION).and_then(|v| v.as_bytes().strip_prefix(b"Bearer ").map(<[u8]>::to_vec));
    match given.and_then(|t| tokens.check(&t)) {
        Some(access) => {
            req.extensions_mut().insert(access);
            next.run(req).await
        }
        None => {
            tracing::info!("request refused: missing or invalid bearer token");
            ApiError::unauthorized().into_response()
        }
    }
}

/// Binds TCP at `addr` and loads the PEM certificate chain and key for TLS.
pub async fn bind_tls(addr: SocketAddr, cert: &Path, key: &Path) -> io::Result<(TcpListener, TlsAcceptor)> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let pem_err = |p: &PathBuf, e: rustls::pki_types::pem::Error| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))
    };
    let cert_path = cert.to_owned();
    let key_path = key.to_owned();
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| pem_err(&cert_path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(&cert_path, e))?;
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| pem_err(&key_path, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(io::Error::other)?;
    Ok((TcpListener::bind(addr).await?, TlsAcceptor::from(Arc::new(config))))
}

/// Connection limits and timeouts of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// A request head (request line and headers) must be complete within this time of its first
    /// byte; a TLS handshake within this time of the accept.
    pub header_timeout: Duration,
    /// A connection with no request in progress (no handler running, no response streaming)
    /// that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    /// 30 s for a request head, 60 s idle, 256 connections per listener.
    fn default() -> Self {
        Self { header_timeout: Duration::from_secs(30), idle_timeout: Duration::from_secs(60), max_connections: 256 }
    }
}

/// A listening socket [`serve`] accepts from.
pub trait Accept: Send + 'static {
    /// An accepted connection.
    type Stream: Send + 'static;
    /// The connection between two runtimes (a std socket, non-blocking).
    type Detached: Send + 'static;
    /// The next connection.
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// Takes an accepted connection off the accepting runtime.
    fn detach(stream: Self::Stream) -> io::Result<Self::Detached>;
    /// Registers a detached connection with the calling thread's runtime.
    fn attach(detached: Self::Detached) -> io::Result<Self::Stream>;
}

impl Accept for UnixListener {
    type Stream = tokio::net::UnixStream;
    type Detached = std::os::unix::net::UnixStream;
    async fn accept_one(&self) -> io::Result<Self::Stream> {
        self.accept().await.map(|(s, _)| s)
    }
    fn detach(stream: Self::Stream) -> io::Result<Self::Detached> {
        stream.into_std()
    }
    fn attach(detached: Self::Detached) -> io::Result<Self::Stream> {
        tokio::net::UnixStream::from_std(detached)
    }
}

impl Accept for TcpListener {
    type Stream = tokio::net::TcpStream;
    type Detached = std::net::TcpStream;
    async fn accept_one(&self) -> io::Result<Self::Stream> {
        let (s, _) = self.accept().await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
    fn detach(stream: Self::Stream) -> io::Result<Self::Detached> {
        stream.into_std()
    }
    fn attach(detached: Self::Detached) -> io::Result<Self::Stream> {
        tokio::net::TcpStream::from_std(detached)
    }
}

/// The stream as accepted (unix sockets).
pub async fn plain<S>(stream: S) -> Option<S> {
    Some(stream)
}

/// The TLS handshake, bounded by `timeout`; a failed handshake drops the connection.
pub fn tls_handshake(
    acceptor: TlsAcceptor,
    timeout: Duration,
) -> impl Fn(
    tokio::net::TcpStream,
) -> Pin<Box<dyn Future<Output = Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>> + Send>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |stream| {
        let acceptor = acceptor.clone();
        Box::pin(async move {
            let peer = stream.peer_addr().ok();
            match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Some(tls),
                Ok(Err(e)) => {
                    tracing::debug!(?peer, "TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!(?peer, "TLS handshake timed out");
                    None
                }
            }
        })
    }
}

/// Resolves once `stop` says true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Back-off of the accept loop after a failed accept.
#[derive(Debug, Default)]
struct Backoff {
    delay: Duration,
    last_logged: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MOST: Duration = Duration::from_secs(1);
    /// The failure repeats on every retry (and again whenever a freed descriptor lets one
    /// accept through): log it at most this often.
    const LOG_EVERY: Duration = Duration::from_secs(60);

    /// After a failed accept: how long to wait before the next one. A connection that died in
    /// the backlog is no reason to wait; anything else (EMFILE, ENFILE, ENOBUFS, ENOMEM, …)
    /// persists while the listener stays readable, so retrying at once would spin a core.
    fn failed(&mut self, listener: &str, e: &io::Error) -> Option<Duration> {
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
        ) {
            return None;
        }
        if self.last_logged.is_none_or(|t| t.elapsed() >= Self::LOG_EVERY) {
            tracing::error!(
                listener,
                "accepting a connection failed: {e}; backing off (up to 1 s between attempts; logged once a minute)"
            );
            self.last_logged = Some(Instant::now());
        }
        self.delay = (self.delay * 2).clamp(Self::FIRST, Self::MOST);
        Some(self.delay)
    }

    fn succeeded(&mut self) {
        self.delay = Duration::ZERO;
    }
}

/// Serves `app` on `listener` until `stop` says true, then waits for the open connections to
/// finish (they are asked to close after their current request). `prepare` turns an accepted
/// stream into the connection (a TLS handshake) or drops it.
pub async fn serve<L, P, F, Io>(
    name: String,
    listener: L,
    prepare: P,
    app: Router,
    limits: ConnLimits,
    stop: watch::Receiver<bool>,
) -> io::Result<()>
where
    L: Accept,
    P: Fn(L::Stream) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Option<Io>> + Send + 'static,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let mut backoff = Backoff::default();
    let mut full = false;
    loop {
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(permit) => {
                full = false;
                permit
            }
            Err(_) => {
                // Once while the listener stays at its limit.
                if !full {
                    tracing::warn!(listener = name, max, "connection limit reached; new connections wait");
                    full = true;
                }
                tokio::select! {
                    permit = Arc::clone(&slots).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = stopped(stop.clone()) => break,
                }
            }
        };
        // The connection's runtime before the connection: while none can be made (it needs four
        // descriptors, see `Unstarted::build`), the next connection waits in the backlog, as when
        // accepting fails.
        let started = match Unstarted::build() {
            Ok(runtime) => tokio::select! {
                accepted = listener.accept_one() => accepted.and_then(|stream| {
                    let (prepare, app, stop, main) =
                        (prepare.clone(), app.clone(), stop.clone(), tokio::runtime::Handle::current());
                    let detached = L::detach(stream)?;
                    // No thread (EAGAIN: the process's thread limit): the connection is closed,
                    // and the loop backs off as for a failed accept.
                    std::thread::Builder::new().name("virtplugd-conn".into()).spawn(move || {
                        let _permit = permit;
                        connection_thread::<L, P, F, Io>(runtime, detached, prepare, app, limits, stop, main);
                    })
                }),
                () = stopped(stop.clone()) => break,
            },
            Err(e) => Err(e),
        };
        match started {
            Ok(_) => {
                tracing::debug!(listener = name, "connection accepted");
                backoff.succeeded();
            }
            Err(e) => {
                tracing::debug!(listener = name, "accepting or starting a connection failed: {e}");
                if let Some(delay) = backoff.failed(&name, &e) {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = stopped(stop.clone()) => break,
                    }
                }
            }
        }
    }
    // Every permit back: every connection has ended (the caller bounds this wait).
    let _ = slots.acquire_many(u32::try_from(max).unwrap_or(u32::MAX)).await;
    Ok(())
}

/// A connection's runtime not yet running on its thread. Made on the accept loop, which is async:
/// dropped there (the connection failed before its thread started) it must not wait for anything.
struct Unstarted(Option<tokio::runtime::Runtime>);

impl Unstarted {
    /// I/O and timers. It holds four descriptors: tokio's I/O driver keeps its epoll instance
    /// twice (the poller and a registry clone) and its waker's eventfd, and, with tokio's signal
    /// feature on (the main runtime needs it), every I/O driver also keeps a copy of the signal
    /// pipe. So a connection costs five with its socket.
    fn build() -> io::Result<Self> {
        tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build().map(|rt| Self(Some(rt)))
    }
}

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// Serves one connection on the calling thread with `runtime`, which drives only it (see the
/// module header); `main` is the daemon's runtime, where work that outlives the request goes.
fn connection_thread<L, P, F, Io>(
    mut runtime: Unstarted,
    detached: L::Detached,
    prepare: P,
    app: Router,
    limits: ConnLimits,
    stop: watch::Receiver<bool>,
    main: tokio::runtime::Handle,
) where
    L: Accept,
    P: Fn(L::Stream) -> F,
    F: Future<Output = Option<Io>>,
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    crate::runtime::enter_connection_thread(main);
    let Some(runtime) = runtime.0.take() else { return };
    runtime.block_on(async move {
        let stream = match L::attach(detached) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!("connection dropped: {e}");
                return;
            }
        };
        if let Some(io) = prepare(stream).await {
            serve_connection(io, app, limits, stop).await;
        }
    });
}

/// What a connection's watchdog looks at: when bytes last arrived, when the current request
/// head started, and how many requests are in progress (handler running or response
/// streaming). Times are milliseconds since the connection began, plus one (0 = never).
#[derive(Debug)]
struct Activity {
    origin: Instant,
    last_read: AtomicU64,
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    /// Wakes the watchdog when a request head starts (its deadline moves closer).
    changed: tokio::sync::Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_read: AtomicU64::new(1),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            changed: tokio::sync::Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Bytes arrived: outside a request they start (or continue) a request head.
    fn read(&self) {
        let now = self.now();
        self.last_read.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.changed.notify_one();
        }
    }

    /// A request head is complete and its handler starts.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        self.last_read.store(self.now(), Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Resolves with the reason when the connection is to be closed.
    async fn watchdog(&self, limits: ConnLimits) -> &'static str {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4);
        let (header, idle) = (ms(limits.header_timeout), ms(limits.idle_timeout));
        loop {
            let now = self.now();
            let wait = if self.in_flight.load(Ordering::Acquire) > 0 {
                header.min(idle)
            } else {
                let head = self.head_started.load(Ordering::Acquire);
                let (due, why) = if head != 0 {
                    (head.saturating_add(header), "request head not complete within the header timeout")
                } else {
                    (self.last_read.load(Ordering::Relaxed).saturating_add(idle), "idle timeout")
                };
                if now >= due {
                    return why;
                }
                due - now
            };
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(wait.max(1))) => {}
                () = self.changed.notified() => {}
            }
        }
    }
}

/// One request in progress; dropped when its response has been sent (or abandoned).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_read.store(self.0.now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in progress until it is finished (an
/// event stream is not an idle connection).
struct Tracked {
    body: axum::body::Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The connection's stream, telling [`Activity`] when bytes arrive.
struct Watched<Io> {
    io: Io,
    activity: Arc<Activity>,
}

impl<Io: AsyncRead + Unpin> AsyncRead for Watched<Io> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Watched<Io> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves HTTP/1.1 on one connection until the client closes it, a timeout closes it, or the
/// daemon stops (then after the request in progress).
async fn serve_connection<Io>(io: Io, app: Router, limits: ConnLimits, stop: watch::Receiver<bool>)
where
    Io: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = hyper_util::rt::TokioIo::new(Watched { io, activity: Arc::clone(&activity) });
    let app = hyper_util::service::TowerToHyperService::new(app);
    let counter = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = counter.begin();
        let response = hyper::service::Service::call(&app, req);
        async move {
            let response = response.await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| Tracked { body, _in_flight: in_flight }))
        }
    });
    // The header timeout is the watchdog's (hyper's own would also cover idle keep-alive).
    let conn =
        hyper::server::conn::http1::Builder::new().header_read_timeout(None::<Duration>).serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("connection ended: {e}");
            }
        }
        why = activity.watchdog(limits) => tracing::debug!("connection closed: {why}"),
        () = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}
