//! virtplugd, virtplug's management daemon: the host API over HTTP/JSON on a read-write and a
//! read-only unix socket (file permissions decide access) and, when configured, TCP with TLS and
//! bearer tokens (read-write or read-only). Every route is one operation of the host API and runs
//! the same generic checks as an in-process call; errors carry libvirt's code and text with one
//! status mapping ([`error::status_for`]). Also: the OpenAPI document, a resumable SSE event
//! stream, tasks with progress, and supervised migration of snapshot hierarchies.
//!
//! For operators ([`observe`]): `/healthz`, `/readyz` and `/metrics` on every listener, a
//! request id on every response, error body, task record and log line, and one access line per
//! request.
//!
//! Retries are safe: a POST or PUT with an `Idempotency-Key` runs once and its retries get the
//! first answer ([`idempotency`]).
//!
//! Hostile clients: only the default URI and the `--allow-uri` ones are ever opened; a
//! read-only principal's write is refused, and every body capped by its route, before a byte of
//! the body is read ([`extract::guard`]); header, body and idle timeouts, a connection limit per
//! listener and an accept loop that backs off when descriptors run out ([`listen::serve`]).
//!
//! With `--libvirt-socket`, it also speaks libvirt's own RPC protocol ([`libvirt`]), so libvirt's
//! clients drive it unchanged.
//!
//! It owns socket I/O only; host semantics stay in `virtplug-host`.

pub mod cache;
pub mod catch;
pub mod error;
pub mod events;
pub mod extract;
pub mod faults;
pub mod idempotency;
pub mod imports;
pub mod libvirt;
pub mod listen;
pub mod migrations;
pub mod observe;
pub mod observe_metrics;
pub mod observe_probes;
pub mod openapi;
pub mod paging;
pub mod plugin_events;
pub mod routes_domain;
pub mod routes_snapshot;
pub mod routes_store;
pub mod routes_tasks;
pub mod runtime;
pub mod state;
pub mod tasks;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    Extension, Router,
    extract::DefaultBodyLimit,
    http::{StatusCode, Uri},
    routing::{get, post},
};
use virtplug_host::{Registry, codes};

use crate::{
    error::ApiError,
    state::{Access, AppState, Shared},
};

/// TCP+TLS listener settings.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Address to bind.
    pub addr: SocketAddr,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Tokens file (`rw TOKEN` / `ro TOKEN` lines).
    pub tokens: PathBuf,
}

/// Daemon configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Read-write unix socket.
    pub socket: Option<PathBuf>,
    /// Read-only unix socket.
    pub ro_socket: Option<PathBuf>,
    /// Mode of the read-write socket (0o600: the owner only).
    pub socket_mode: u32,
    /// Mode of the read-only socket (0o666: any local user may monitor).
    pub ro_socket_mode: u32,
    /// TCP with TLS.
    pub tls: Option<TlsSettings>,
    /// libvirt's RPC protocol on this unix socket (read-write, 0600) and `<path>-ro`.
    pub libvirt_socket: Option<PathBuf>,
    /// State directory (migration journals).
    pub state_dir: PathBuf,
    /// Driver URI for requests that name none; always served.
    pub default_uri: Option<String>,
    /// Further driver URIs served (`--allow-uri`). A request naming any other URI in the
    /// `virtplug-uri` header is refused before anything is opened.
    pub allowed_uris: Vec<String>,
    /// Largest request body on small JSON routes (flags, migrations).
    pub max_body: usize,
    /// Largest request body on routes carrying one XML document (define, snapshot create and
    /// edit).
    pub max_xml_body: usize,
    /// Largest request body on hierarchy import.
    pub max_import_body: usize,
    /// Connection limits and timeouts, per listener.
    pub conn: listen::ConnLimits,
    /// A request body that sends nothing for this long is answered 408.
    pub body_timeout: Duration,
    /// Fault injection for tests (`--fault-import-delay-ms`): imports tracked by a migration id
    /// wait this long after recording `running` and before the plugin transaction, which widens
    /// the window in which a supervisor can be killed mid-import.
    pub fault_import_delay: Duration,
}

/// Default largest body on small JSON routes: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;
/// Default largest body on one-document routes: twice the model's largest XML document (JSON
/// escaping doubles a text made of quotes or backslashes, so every document the parser would
/// take reaches it and is judged by its own limit) plus 64 KiB for the JSON around it.
pub const DEFAULT_MAX_XML_BODY: usize = 2 * virtplug_host::model::limits::MAX_XML_BYTES + (64 << 10);
/// Default largest hierarchy import body: the model's largest bundle (512 MiB).
pub const DEFAULT_MAX_IMPORT_BODY: usize = virtplug_host::model::limits::MAX_BUNDLE_BYTES;
/// Default request-body inactivity timeout.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

impl Config {
    /// Defaults: the standard sockets, the body limits and timeouts above and in
    /// [`listen::ConnLimits::default`].
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            socket: Some(virtplug_host::remote::default_socket(false)),
            ro_socket: Some(virtplug_host::remote::default_socket(true)),
            socket_mode: 0o600,
            ro_socket_mode: 0o666,
            tls: None,
            libvirt_socket: None,
            state_dir,
            default_uri: None,
            allowed_uris: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            max_xml_body: DEFAULT_MAX_XML_BODY,
            max_import_body: DEFAULT_MAX_IMPORT_BODY,
            conn: listen::ConnLimits::default(),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            fault_import_delay: Duration::ZERO,
        }
    }

    /// Every driver URI this daemon serves: the default one, then the allow-list.
    pub fn served_uris(&self) -> Vec<String> {
        let mut out: Vec<String> = self.default_uri.iter().cloned().collect();
        for uri in &self.allowed_uris {
            if !out.contains(uri) {
                out.push(uri.clone());
            }
        }
        out
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::http(StatusCode::NOT_FOUND, codes::NO_SUPPORT, format!("no such route: {}", uri.path()))
}

async fn openapi_json() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi::document())
}

/// The routes, without access decision (each listener adds its own). Every matched request
/// passes [`extract::guard`] first: a read-only principal's write is refused and the body is
/// capped by its route before a byte of it is read.
pub fn router(state: AppState, config: &Config) -> Router {
    use routes_domain as d;
    use routes_snapshot as s;
    use routes_tasks as t;
    let limits = extract::BodyLimits {
        small: config.max_body,
        xml: config.max_xml_body,
        import: config.max_import_body,
        timeout: config.body_timeout,
    };
    let idempotent = Arc::new(idempotency::Store::load(&config.state_dir, idempotency::Limits::default()));
    let routes = Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/healthz", get(observe_probes::healthz))
        .route("/readyz", get(observe_probes::readyz))
        .route("/metrics", get(observe_metrics::handler))
        .route("/v1/info", get(d::info))
        .route("/v1/domains", get(d::list).post(d::define))
        .route("/v1/domains/{dom}", get(d::lookup).delete(d::undefine))
        .route("/v1/domains/{dom}/{action}", post(d::action))
        .route("/v1/domains/{dom}/xml", get(d::xml))
        .route("/v1/domains/{dom}/snapshots", get(s::list).post(s::create))
        .route("/v1/domains/{dom}/snapshots/{snap}", get(s::lookup).put(s::edit).delete(s::delete))
        .route("/v1/domains/{dom}/snapshots/{snap}/xml", get(s::xml))
        .route("/v1/domains/{dom}/snapshots/{snap}/children", get(s::children))
        .route("/v1/domains/{dom}/snapshots/{snap}/revert", post(s::revert))
        .route("/v1/domains/{dom}/current-snapshot", get(s::current))
        .route("/v1/domains/{dom}/snapshot-export", get(s::export))
        .route("/v1/domains/{dom}/snapshot-import", post(s::import))
        .route("/v1/domains/{dom}/snapshot-store", get(routes_store::store))
        .route("/v1/domains/{dom}/snapshot-handover", post(routes_store::handover))
        .route("/v1/imports/{id}", get(t::import_status))
        .route("/v1/imports/{id}/settle", post(t::settle_import))
        .route("/v1/tasks", get(t::list))
        .route("/v1/tasks/{id}", get(t::get))
        .route("/v1/migrations", post(t::migrate))
        .route("/v1/events", get(t::events));
    // Where a handler runs, and only when a test asks for it (`VIRTPLUGD_FAULT`): a panic there.
    let routes =
        if faults::panics_on_routes() { routes.route_layer(axum::middleware::from_fn(faults::http)) } else { routes };
    routes
        // Inside the guard: a keyed request's body is bounded before it is buffered.
        .route_layer(axum::middleware::from_fn_with_state(idempotent, idempotency::layer))
        .route_layer(axum::middleware::from_fn_with_state(limits, extract::guard))
        .fallback(not_found)
        .method_not_allowed_fallback(|| async {
            ApiError::http(StatusCode::METHOD_NOT_ALLOWED, codes::NO_SUPPORT, "method not allowed on this route")
        })
        // The guard enforces each route's own limit while the body streams in.
        .layer(DefaultBodyLimit::disable())
        // Everything inside: a panic is answered, not the connection dropped.
        .layer(axum::middleware::from_fn(catch::answer_panics))
        // Outside every listener's access decision: tells [`observe::track`] what it was.
        .layer(axum::middleware::from_fn(observe::mark))
        .with_state(state)
}

/// Runs the daemon until `shutdown` resolves.
pub async fn serve(
    config: Config,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let served = config.served_uris();
    if served.is_empty() {
        anyhow::bail!("no driver URI to serve: give --default-uri URI (and --allow-uri URI for more)");
    }
    let mut shared = Shared::new(registry, config.default_uri.clone(), served, config.state_dir.clone());
    shared.fault_import_delay = config.fault_import_delay;
    let state: AppState = Arc::new(shared);
    plugin_events::install(&state);
    std::fs::create_dir_all(&config.state_dir)?;
    spawn_recovery(Arc::clone(&state));
    let app = router(Arc::clone(&state), &config);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    let mut sockets = Vec::new();
    // Before the HTTP sockets: a supervisor that waits for those finds these listening too.
    if let Some(path) = &config.libvirt_socket {
        let bound = libvirt::spawn(path, &state, &stop_rx)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
        sockets.extend(bound);
    }
    for (path, mode, access) in [
        (&config.socket, config.socket_mode, Access::ReadWrite),
        (&config.ro_socket, config.ro_socket_mode, Access::ReadOnly),
    ] {
        let Some(path) = path else { continue };
        let listener =
            listen::bind_unix(path, mode).map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", path.display()))?;
        sockets.push(path.clone());
        tracing::info!(socket = %path.display(), ?access, "listening");
        let app = observed(app.clone().layer(Extension(access)), observe::Channel::Unix);
        let name = path.display().to_string();
        servers.spawn(listen::serve(name, listener, listen::plain, app, config.conn, stop_rx.clone()));
    }
    if let Some(tls) = &config.tls {
        let tokens = listen::Tokens::load(&tls.tokens).map_err(|e| anyhow::anyhow!("cannot read tokens: {e}"))?;
        let (listener, acceptor) = listen::bind_tls(tls.addr, &tls.cert, &tls.key).await?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "listening (TLS)");
        let app = observed(
            app.clone().layer(axum::middleware::from_fn_with_state(tokens, listen::auth)),
            observe::Channel::Token,
        );
        let handshake = listen::tls_handshake(acceptor, config.conn.header_timeout);
        servers.spawn(listen::serve(addr.to_string(), listener, handshake, app, config.conn, stop_rx.clone()));
    }
    tokio::select! {
        () = shutdown => {}
        Some(res) = servers.join_next() => { tracing::error!("a listener stopped: {res:?}"); }
    }
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), async { while servers.join_next().await.is_some() {} }).await;
    for path in sockets {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// `app` with request ids, the access log and request metrics around everything a listener adds
/// (the token check included, so that a refused request is logged and answered with an id too).
pub fn observed(app: Router, channel: observe::Channel) -> Router {
    app.layer(axum::middleware::from_fn_with_state(channel, observe::track))
}

/// Settles migrations a killed daemon left behind, retrying while a destination is unreachable.
/// Only the journals present at start: later ones belong to migrations of this run.
fn spawn_recovery(state: AppState) {
    let dir = tasks::journal_dir(&state.state_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let journals: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    if !journals.is_empty() {
        migrations::spawn_recovery_of(state, journals);
    }
}
