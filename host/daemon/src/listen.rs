//! Listeners: unix sockets (access decided by their file permissions; one read-write, one
//! read-only) and TCP with TLS (rustls), whose handshakes run concurrently off the accept loop.
//! Bearer tokens for TCP are checked by [`auth`]; a token never reaches a log line.

use std::{
    io,
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    extract::{Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::{
    net::{TcpListener, UnixListener},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};

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

/// A TLS listener for `axum::serve`: TCP accepts and TLS handshakes run in a background task;
/// finished streams arrive here.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<tokio::net::TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Binds `addr` with the PEM certificate chain and key.
    pub async fn bind(addr: SocketAddr, cert: &Path, key: &Path) -> io::Result<Self> {
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
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let tcp = TcpListener::bind(addr).await?;
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                let (acceptor, conn_tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls)) => {
                            let _ = conn_tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(Self { rx, local })
    }

    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(conn) = self.rx.recv().await {
                return conn;
            }
            // The accept task ended (listener error): wait instead of spinning.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
