//! What operators see of each request: its id, its log span, one access line and its metrics.
//!
//! Every listener wraps its routes in [`track`], outside everything else (the bearer-token check
//! included, so a refused request is answered with an id and logged too):
//! - the request id: a client's `X-Request-Id` when it is 1 to [`MAX_REQUEST_ID`] visible ASCII
//!   characters, a fresh UUID v4 otherwise; echoed on every response, carried in error bodies
//!   ([`crate::error`]) and in the records of tasks the request starts ([`crate::tasks`]) through
//!   a task-local ([`current_request_id`]), and in every log line of the request (a span);
//! - one access line at info level (target `access`): principal, method, route template, status,
//!   duration in ms and request id — never a header value, a token or a body;
//! - the request counter and latency histogram ([`crate::observe_metrics`]).
//!
//! Who the principal is comes from the access decision the listener made ([`mark`] copies it
//! from the request into the response, since the token check runs inside [`track`]).

use std::{sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use futures_util::StreamExt;
use tracing::Instrument;
use virtplug_host::{Connection, HostError, codes};

use crate::{
    observe_metrics::{PluginErrorLabels, PluginLabels, RequestLabels, metrics},
    state::Access,
};

/// The request id header.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// Longest client-chosen request id kept; a longer one is replaced.
pub const MAX_REQUEST_ID: usize = 128;
/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";
/// The route of the event stream (its followers are counted).
const EVENTS_ROUTE: &str = "/v1/events";

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// The id of the request being answered, when called while answering one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.to_string()).ok()
}

/// `fut` under the id of the request being answered, for work spawned off the request's task
/// (a task-local does not follow `tokio::spawn`).
pub fn in_current_request<F: std::future::Future>(fut: F) -> impl std::future::Future<Output = F::Output> {
    match REQUEST_ID.try_with(Arc::clone) {
        Ok(id) => futures_util::future::Either::Left(REQUEST_ID.scope(id, fut)),
        Err(_) => futures_util::future::Either::Right(fut),
    }
}

/// The client's id when acceptable (1 to [`MAX_REQUEST_ID`] visible ASCII characters).
pub fn accepted_request_id(given: Option<&HeaderValue>) -> Option<&str> {
    let v = given?.to_str().ok()?;
    let ok = !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(v)
}

/// A new request id: a UUID v4 from this thread's generator, seeded once from the system's
/// random source. Request ids must be unique, not secret, and `Uuid::new_v4` asks the kernel for
/// every one: a system call that was a quarter of those a cached answer makes.
fn fresh_request_id() -> String {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
    }
    // SplitMix64: each step of the state gives 64 well-mixed bits.
    let next = || {
        STATE.with(|s| {
            let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
            s.set(x);
            let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        })
    };
    let bytes = (u128::from(next()) << 64 | u128::from(next())).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// Which kind of listener a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A unix socket (its file permissions decide access).
    Unix,
    /// TCP with TLS (a bearer token decides access).
    Token,
}

/// The principal as logged: channel and access, never the token itself.
fn principal(channel: Channel, access: Option<Access>) -> &'static str {
    match (channel, access) {
        (Channel::Unix, Some(Access::ReadWrite)) => "unix-rw",
        (Channel::Unix, _) => "unix-ro",
        (Channel::Token, Some(Access::ReadWrite)) => "token-rw",
        (Channel::Token, Some(Access::ReadOnly)) => "token-ro",
        (Channel::Token, None) => "unauthenticated",
    }
}

/// Copies the request's access decision into the response, for [`track`] outside it.
pub async fn mark(req: Request, next: Next) -> Response {
    let access = req.extensions().get::<Access>().copied();
    let mut resp = next.run(req).await;
    if let Some(access) = access {
        resp.extensions_mut().insert(access);
    }
    resp
}

/// A follower of the event stream, counted while its response body lives.
struct Subscriber;

impl Subscriber {
    fn new() -> Self {
        metrics().event_subscribers.inc();
        Self
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        metrics().event_subscribers.dec();
    }
}

/// The middleware (see the module header).
pub async fn track(State(channel): State<Channel>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id: Arc<str> = match accepted_request_id(req.headers().get(&REQUEST_ID_HEADER)) {
        Some(v) => v.into(),
        None => fresh_request_id().into(),
    };
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map_or(UNMATCHED, |m| m.as_str()).to_owned();
    let request_access = req.extensions().get::<Access>().copied();
    let span = tracing::info_span!("request", request_id = %id);
    let mut resp = REQUEST_ID.scope(Arc::clone(&id), next.run(req)).instrument(span).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    let access = resp.extensions().get::<Access>().copied().or(request_access);
    // An answer replayed for an `Idempotency-Key` already carries its first request's id.
    if !resp.headers().contains_key(&REQUEST_ID_HEADER)
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    let labels = RequestLabels { method: method.as_str().to_owned(), route, status };
    let m = metrics();
    m.requests.get_or_create(&labels).inc();
    m.request_seconds.get_or_create(&labels).observe(elapsed.as_secs_f64());
    tracing::info!(
        target: "access",
        principal = principal(channel, access),
        method = %method,
        route = %labels.route,
        status,
        // Milliseconds with microsecond resolution.
        duration_ms = elapsed.as_micros() as f64 / 1000.0,
        request_id = %id,
        "request"
    );
    if labels.route == EVENTS_ROUTE && resp.status().is_success() {
        let subscriber = Subscriber::new();
        resp = resp.map(|body| {
            Body::from_stream(body.into_data_stream().map(move |frame| {
                let _counted = &subscriber;
                frame
            }))
        });
    }
    resp
}

/// Runs `f` on `conn`, timing it per plugin and counting its failures; `via` says who called
/// (`http` or `libvirt`).
pub fn plugin_call<T>(
    via: &'static str,
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, HostError>,
) -> Result<T, HostError> {
    let start = Instant::now();
    let result = f(conn);
    let plugin = conn.plugin_info().name.to_string();
    let m = metrics();
    m.plugin_seconds
        .get_or_create(&PluginLabels { plugin: plugin.clone(), via })
        .observe(start.elapsed().as_secs_f64());
    if let Err(e) = &result {
        m.plugin_errors.get_or_create(&PluginErrorLabels { plugin, via, code: codes::name(e.code()) }).inc();
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// (header value, kept)
    fn check(given: &[u8], kept: bool) {
        let v = HeaderValue::from_bytes(given).unwrap();
        assert_eq!(accepted_request_id(Some(&v)).is_some(), kept, "{given:?}");
    }

    #[test]
    fn fresh_request_ids_are_distinct_uuid_v4s() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| fresh_request_id()).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let u = uuid::Uuid::parse_str(id).unwrap();
            assert_eq!(u.get_version_num(), 4, "{id}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{id}");
        }
        let other = std::thread::spawn(fresh_request_id).join().unwrap();
        assert!(!ids.contains(&other), "another thread's generator starts elsewhere");
    }

    #[test]
    fn a_request_id_is_kept_only_when_short_and_visible() {
        check(b"abc-123_X.y:z", true);
        check("a".repeat(128).as_bytes(), true);
        check("a".repeat(129).as_bytes(), false);
        check(b"", false);
        check(b"has space", false);
        check(b"tab\there", false);
        check("caf\u{e9}".as_bytes(), false);
        assert_eq!(accepted_request_id(None), None);
    }
}
