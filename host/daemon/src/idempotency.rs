//! `Idempotency-Key` on every POST and PUT: a retry with the same key answers the first outcome
//! (status, `Content-Type`, `Location`, `ETag`, the first request's `X-Request-Id`, body, and
//! `Idempotent-Replayed: true`) and never runs the operation again.
//!
//! - A key belongs to its scope: the principal (the socket's access, or a digest of the bearer
//!   token — never the token itself), the method, the route template and the key. Within a scope
//!   the request must be the same: method, path and query, the `virtplug-uri` and
//!   `virtplug-read-only` headers and the body, compared by SHA-256; another request with a used
//!   key is refused (422, `VIR_ERR_INVALID_ARG`) and runs nothing.
//! - A key is 1 to [`MAX_KEY`] visible ASCII characters; anything else is 400 (`INVALID_ARG`).
//! - While the first request runs, a retry is answered 409 (`VIR_ERR_OPERATION_INVALID`, "a
//!   request with this Idempotency-Key is in progress") at once: no waiting. The first runs to its
//!   end in its own task even when its client goes away, so its outcome is kept for the retry.
//! - Kept: every answer but those that say the operation did not happen and may be retried as it
//!   is — 408 (body stalled, read before the key is taken, so never kept), 409 with
//!   `VIR_ERR_OPERATION_TIMEOUT` (another job held the domain) and every 5xx; the key is then free
//!   again. An answer body over [`Limits::max_body`] is not kept either (no POST or PUT answer comes
//!   near it).
//! - Bounded: a kept answer expires [`TTL`] after the first request; at most
//!   [`Limits::max_entries`] answers and [`Limits::max_bytes`] of bodies are kept, the oldest
//!   evicted first.
//! - Durable: each kept answer is a file under `<state dir>/idempotency/` (named by the scope's
//!   digest), written and synced before the answer leaves, and read back at start, so a migration
//!   POST retried after a daemon restart gets its first answer instead of a second task. A request
//!   still running when the daemon stopped left no answer: its retry runs.
//!
//! Requests without the header are untouched (not even buffered).

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::Instrument;
use virtplug_host::codes;

use crate::{
    error::{ApiError, BodyError},
    observe::{self, REQUEST_ID_HEADER},
    state::Access,
};

/// The request header.
pub const IDEMPOTENCY_KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// Set (`true`) on an answer replayed from a kept outcome.
pub const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Longest key accepted.
pub const MAX_KEY: usize = 255;
/// How long an answer is kept after the first request: 24 hours.
pub const TTL: Duration = Duration::from_secs(24 * 3600);
/// The one-line refusal of a malformed key.
pub const BAD_KEY: &str = "the Idempotency-Key header must be 1 to 255 visible ASCII characters";
/// The one-line refusal of a key reused for another request.
pub const MISMATCH: &str = "this Idempotency-Key was already used with a different request";
/// The one-line answer to a retry while the first request runs.
pub const IN_PROGRESS: &str = "a request with this Idempotency-Key is in progress";

/// The answer headers kept and replayed (the request id is the first request's).
const KEPT_HEADERS: [HeaderName; 4] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG, REQUEST_ID_HEADER];

/// The bounds of the kept answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Expiry after the first request.
    pub ttl: Duration,
    /// Most answers kept.
    pub max_entries: usize,
    /// Most body bytes kept in all.
    pub max_bytes: usize,
    /// Largest single body kept.
    pub max_body: usize,
}

impl Default for Limits {
    /// 24 h, 10,000 answers, 64 MiB of bodies, 64 KiB per body.
    fn default() -> Self {
        Self { ttl: TTL, max_entries: 10_000, max_bytes: 64 << 20, max_body: 64 << 10 }
    }
}

/// A kept answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// The kept headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body (UTF-8: every answer of these routes is JSON).
    pub body: String,
}

/// A kept answer as stored in its file.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    scope: String,
    fingerprint: String,
    /// Seconds since the Unix epoch of the first request.
    created: u64,
    outcome: Outcome,
}

#[derive(Debug)]
struct Entry {
    fingerprint: String,
    created: u64,
    seq: u64,
    /// `None` while the first request runs.
    outcome: Option<Outcome>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Insertion order (oldest first): eviction and expiry walk it.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    bytes: usize,
}

/// What a keyed request does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First of its key: run it (the key is now taken).
    Run,
    /// Answer this kept outcome.
    Replay(Outcome),
    /// The first request still runs.
    InProgress,
    /// The key was used with another request.
    Mismatch,
}

/// The kept answers.
#[derive(Debug)]
pub struct Store {
    dir: Option<PathBuf>,
    limits: Limits,
    inner: Mutex<Inner>,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefixed, so that no two different part lists hash the same bytes.
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex(&h.finalize())
}

/// The key when acceptable (1 to [`MAX_KEY`] visible ASCII characters).
pub fn accepted_key(given: &HeaderValue) -> Option<&str> {
    let v = given.to_str().ok()?;
    (!v.is_empty() && v.len() <= MAX_KEY && v.bytes().all(|b| b.is_ascii_graphic())).then_some(v)
}

impl Store {
    /// An empty store kept in memory only (tests).
    pub fn in_memory(limits: Limits) -> Self {
        Self { dir: None, limits, inner: Mutex::default() }
    }

    /// The store of `state_dir`, with the answers kept there by an earlier run (expired ones are
    /// removed; unreadable files are left alone and ignored).
    pub fn load(state_dir: &Path, limits: Limits) -> Self {
        let dir = state_dir.join("idempotency");
        let store = Self { dir: Some(dir.clone()), limits, inner: Mutex::default() };
        let now = unix_now();
        let mut records: Vec<Record> = Vec::new();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Some(record) = std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Record>(&b).ok()) else {
                tracing::warn!(path = %path.display(), "unreadable idempotency record ignored");
                continue;
            };
            if record.created.saturating_add(limits.ttl.as_secs()) <= now {
                let _ = std::fs::remove_file(&path);
            } else {
                records.push(record);
            }
        }
        records.sort_by_key(|r| r.created);
        let evicted = match store.inner.lock() {
            Ok(mut inner) => {
                for r in records {
                    let seq = inner.next_seq;
                    inner.next_seq += 1;
                    inner.bytes += r.outcome.body.len();
                    inner.order.insert(seq, r.scope.clone());
                    let entry = Entry { fingerprint: r.fingerprint, created: r.created, seq, outcome: Some(r.outcome) };
                    inner.entries.insert(r.scope, entry);
                }
                store.evict(&mut inner)
            }
            Err(_) => Vec::new(),
        };
        store.remove_files(&evicted);
        store
    }

    fn path(&self, scope: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{scope}.json")))
    }

    fn remove_files(&self, scopes: &[String]) {
        for scope in scopes {
            if let Some(path) = self.path(scope) {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// Removes expired answers and, past the bounds, the oldest kept ones (never one still
    /// running); returns the removed scopes.
    fn evict(&self, inner: &mut Inner) -> Vec<String> {
        let mut removed = Vec::new();
        let now = unix_now();
        loop {
            let over = inner.entries.len() > self.limits.max_entries || inner.bytes > self.limits.max_bytes;
            let mut victim = None;
            for (seq, scope) in &inner.order {
                let Some(e) = inner.entries.get(scope) else { continue };
                if e.outcome.is_none() {
                    continue;
                }
                // Insertion order is time order: once the oldest kept answer is neither expired
                // nor over the bounds, none after it is.
                if over || e.created.saturating_add(self.limits.ttl.as_secs()) <= now {
                    victim = Some(*seq);
                }
                break;
            }
            let Some(seq) = victim else { break };
            let Some(scope) = inner.order.remove(&seq) else { break };
            if let Some(e) = inner.entries.remove(&scope) {
                inner.bytes -= e.outcome.map_or(0, |o| o.body.len());
            }
            removed.push(scope);
        }
        removed
    }

    /// Takes `scope` for a request with `fingerprint`, or says why not.
    pub fn begin(&self, scope: &str, fingerprint: &str) -> Begin {
        let Ok(mut inner) = self.inner.lock() else { return Begin::InProgress };
        let expired = self.evict(&mut inner);
        let answer = match inner.entries.get(scope) {
            Some(e) if e.fingerprint != fingerprint => Begin::Mismatch,
            Some(Entry { outcome: Some(o), .. }) => Begin::Replay(o.clone()),
            Some(_) => Begin::InProgress,
            None => {
                let seq = inner.next_seq;
                inner.next_seq += 1;
                inner.order.insert(seq, scope.to_owned());
                let entry = Entry { fingerprint: fingerprint.to_owned(), created: unix_now(), seq, outcome: None };
                inner.entries.insert(scope.to_owned(), entry);
                Begin::Run
            }
        };
        drop(inner);
        self.remove_files(&expired);
        answer
    }

    /// The first request of `scope` ended: keep `outcome` (written to disk and synced before
    /// this returns), or with `None` free the key.
    pub fn finish(&self, scope: &str, outcome: Option<Outcome>) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let Some(entry) = inner.entries.get_mut(scope) else { return };
        let Some(outcome) = outcome else {
            let seq = entry.seq;
            inner.entries.remove(scope);
            inner.order.remove(&seq);
            return;
        };
        let record = Record {
            scope: scope.to_owned(),
            fingerprint: entry.fingerprint.clone(),
            created: entry.created,
            outcome: outcome.clone(),
        };
        entry.outcome = Some(outcome);
        inner.bytes += record.outcome.body.len();
        let evicted = self.evict(&mut inner);
        drop(inner);
        self.remove_files(&evicted);
        if let Err(e) = self.persist(&record) {
            tracing::warn!(error = %e, "idempotency record not written: a retry after a restart runs again");
        }
    }

    fn persist(&self, record: &Record) -> std::io::Result<()> {
        use std::io::Write;
        let (Some(dir), Some(path)) = (&self.dir, self.path(&record.scope)) else { return Ok(()) };
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".{}.tmp", record.scope));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(record).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Number of answers kept or running (tests).
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |i| i.entries.len())
    }

    /// Whether nothing is kept or running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who asked: the access the listener decided, and over TCP a digest of the bearer token.
fn principal(req: &Request) -> String {
    let access = match req.extensions().get::<Access>() {
        Some(Access::ReadWrite) => "rw",
        _ => "ro",
    };
    match req.headers().get(header::AUTHORIZATION) {
        Some(token) => format!("token-{access}:{}", digest(&[token.as_bytes()])),
        None => format!("unix-{access}"),
    }
}

/// Whether an answer is kept (see the module header).
fn keep(outcome: &Outcome, limits: &Limits) -> bool {
    if outcome.status >= 500 || outcome.status == 408 || outcome.body.len() > limits.max_body {
        return false;
    }
    if outcome.status == 409 {
        let code = serde_json::from_str::<serde_json::Value>(&outcome.body)
            .ok()
            .and_then(|v| v.get("code").and_then(serde_json::Value::as_u64));
        return code != Some(u64::from(codes::OPERATION_TIMEOUT));
    }
    true
}

fn replay(o: Outcome) -> Response {
    let status = StatusCode::from_u16(o.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = (status, o.body).into_response();
    let headers = resp.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in o.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(n, v);
        }
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    resp
}

/// The answer to a body that could not be read (the guard's verdict when it stopped it).
fn unreadable(e: axum::Error) -> Response {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(body) = c.downcast_ref::<BodyError>() {
            return ApiError::from(*body).into_response();
        }
        cause = c.source();
    }
    ApiError::http(StatusCode::BAD_REQUEST, codes::INVALID_ARG, format!("cannot read the request body: {e}"))
        .into_response()
}

/// The middleware (see the module header); runs inside the body guard, so the body it reads is
/// already bounded by its route.
pub async fn layer(State(store): State<Arc<Store>>, req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::POST | Method::PUT) {
        return next.run(req).await;
    }
    let Some(given) = req.headers().get(&IDEMPOTENCY_KEY_HEADER) else { return next.run(req).await };
    let Some(key) = accepted_key(given) else {
        return ApiError::new(codes::INVALID_ARG, BAD_KEY).into_response();
    };
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let method = req.method().as_str().to_owned();
    let scope = digest(&[principal(&req).as_bytes(), method.as_bytes(), route.as_bytes(), key.as_bytes()]);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return unreadable(e),
    };
    let header = |name: &str| parts.headers.get(name).map_or(&b""[..], HeaderValue::as_bytes);
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let fingerprint = digest(&[
        method.as_bytes(),
        target.as_bytes(),
        header(virtplug_wire::URI_HEADER),
        header(virtplug_wire::READ_ONLY_HEADER),
        &bytes,
    ]);
    match store.begin(&scope, &fingerprint) {
        Begin::Replay(o) => return replay(o),
        Begin::Mismatch => {
            return ApiError::http(StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_ARG, MISMATCH).into_response();
        }
        Begin::InProgress => return ApiError::new(codes::OPERATION_INVALID, IN_PROGRESS).into_response(),
        Begin::Run => {}
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    let request_id = observe::current_request_id();
    // Its own task: a client that goes away does not stop the operation, and its outcome is kept.
    let run = observe::in_current_request(next.run(req)).instrument(tracing::Span::current());
    let task_store = Arc::clone(&store);
    let task_scope = scope.clone();
    let handle = crate::runtime::spawn(async move {
        let resp = run.await;
        let (mut parts, body) = resp.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
            task_store.finish(&task_scope, None);
            return ApiError::new(codes::INTERNAL_ERROR, "cannot read the answer").into_response();
        };
        if let Some(id) = request_id.as_deref().and_then(|id| HeaderValue::from_str(id).ok()) {
            parts.headers.insert(REQUEST_ID_HEADER, id);
        }
        let outcome = std::str::from_utf8(&bytes).ok().map(|text| Outcome {
            status: parts.status.as_u16(),
            headers: KEPT_HEADERS
                .iter()
                .filter_map(|n| {
                    let v = parts.headers.get(n)?.to_str().ok()?;
                    Some((n.as_str().to_owned(), v.to_owned()))
                })
                .collect(),
            body: text.to_owned(),
        });
        let kept = outcome.filter(|o| keep(o, &task_store.limits));
        let (st, sc) = (Arc::clone(&task_store), task_scope.clone());
        if crate::runtime::spawn_blocking(move || st.finish(&sc, kept)).await.is_err() {
            task_store.finish(&task_scope, None);
        }
        Response::from_parts(parts, Body::from(bytes))
    });
    match handle.await {
        Ok(resp) => resp,
        Err(e) => {
            store.finish(&scope, None);
            ApiError::new(codes::INTERNAL_ERROR, format!("request handler failed: {e}")).into_response()
        }
    }
}

#[cfg(test)]
#[path = "idempotency_tests.rs"]
mod tests;
