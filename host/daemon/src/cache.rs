//! Conditional reads and the answer cache of the snapshot read routes (list, children, lookup,
//! current). Each answer is keyed by (driver URI, domain, snapshot tree generation, variant): the
//! generation (`Connection::snapshot_generation`) changes with every committed write touching the
//! domain's snapshots, by anyone (this daemon, a local CLI, another host on a shared store), and
//! never repeats, so an entry can never be stale; the variant is a hash of everything else that
//! shapes the answer (route, snapshot name, flags, `raw`, paging). An unchanged tree costs one
//! `snapshot_generation` call and a write of cached bytes; a matching `If-None-Match` costs the call.
//!
//! The answers carry `ETag: "g<generation>-<variant>"`. A plugin without generations (it answers
//! `NO_SUPPORT`, as vsphere and virtualbox do) gets neither a cache nor an ETag: every read goes
//! to the plugin, as before.
//!
//! Bounded: at most [`MAX_ENTRIES`] answers and [`MAX_BYTES`] bytes of them, the least recently
//! used going first. Nothing else evicts: entries of an old generation are simply never asked for
//! again and age out.

use std::sync::Mutex;

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use hashlink::LruCache;
use virtplug_host::{Connection, codes};

use crate::{
    error::{ApiError, ApiResult},
    state::Ctx,
};

/// The most answers kept.
pub const MAX_ENTRIES: usize = 256;
/// The most bytes of answers kept (a 1,000-snapshot list is about 140 KB).
pub const MAX_BYTES: usize = 64 << 20;

/// (driver URI, domain as named in the request, generation, variant).
pub type Key = (String, String, u64, u64);

/// One serialised answer: the JSON body and the next page's token, if any.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The exact bytes of the 200 answer's body.
    pub body: Bytes,
    /// `X-Next-Page-Token` of a paged answer.
    pub next: Option<String>,
}

/// The bounded LRU map of answers.
#[derive(Debug)]
pub struct AnswerCache {
    inner: Mutex<(LruCache<Key, Entry>, usize)>,
}

impl Default for AnswerCache {
    fn default() -> Self {
        Self { inner: Mutex::new((LruCache::new_unbounded(), 0)) }
    }
}

impl AnswerCache {
    /// The answer stored under `key` (now the most recently used).
    pub fn get(&self, key: &Key) -> Option<Entry> {
        self.inner.lock().ok()?.0.get(key).cloned()
    }

    /// Stores `entry` under `key`, evicting the least recently used beyond the bounds.
    pub fn put(&self, key: Key, entry: Entry) {
        if entry.body.len() > MAX_BYTES {
            return;
        }
        let Ok(mut guard) = self.inner.lock() else { return };
        let (map, bytes) = &mut *guard;
        *bytes += entry.body.len();
        if let Some(old) = map.insert(key, entry) {
            *bytes -= old.body.len();
        }
        while map.len() > MAX_ENTRIES || *bytes > MAX_BYTES {
            match map.remove_lru() {
                Some((_, old)) => *bytes -= old.body.len(),
                None => break,
            }
        }
    }

    /// How many answers are kept (for tests).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|g| g.0.len()).unwrap_or(0)
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// FNV-1a, 64 bits: the variant hash. Stable across runs and builds (unlike std's hasher), so an
/// ETag stays valid across a daemon restart when the tree did not change.
pub fn variant(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The entity tag of an answer: `"g<generation>-<variant as 16 hex digits>"`.
pub fn etag(generation: u64, variant: u64) -> String {
    format!("\"g{generation}-{variant:016x}\"")
}

/// Whether `If-None-Match` in `headers` names `tag` (weak comparison, as RFC 9110 asks for this
/// header), or is `*` (any current answer: it matches only once the answer exists).
pub fn none_match(headers: &HeaderMap, tag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|t| {
        let t = t.trim();
        t.strip_prefix("W/").unwrap_or(t) == tag
    })
}

fn star(headers: &HeaderMap) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().any(|v| v.as_bytes().trim_ascii() == b"*")
}

/// What a conditional read answers.
#[derive(Debug)]
pub enum Answer {
    /// 304: the client's copy (this ETag) is current.
    NotModified(String),
    /// 200 with the body, its ETag (none without generations) and the next page's token.
    Fresh(Entry, Option<String>),
}

impl Answer {
    /// The response: 304 with the ETag and no body, or 200 JSON with `ETag` and the paging headers
    /// (`path` and `query` are the request's, for `Link`).
    pub fn respond(self, path: &str, query: Option<&str>) -> Response {
        match self {
            Answer::NotModified(tag) => {
                let mut resp = StatusCode::NOT_MODIFIED.into_response();
                if let Ok(v) = HeaderValue::from_str(&tag) {
                    resp.headers_mut().insert(header::ETAG, v);
                }
                resp
            }
            Answer::Fresh(entry, tag) => {
                let mut resp = Response::new(Body::from(entry.body));
                let h = resp.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                if let Some(v) = tag.and_then(|t| HeaderValue::from_str(&t).ok()) {
                    h.insert(header::ETAG, v);
                }
                if let Some(next) = &entry.next {
                    crate::paging::next_headers(h, path, query, next);
                }
                resp
            }
        }
    }
}

/// Serialises `value` as the answer body (as `axum::Json` would, byte for byte).
pub fn json<T: serde::Serialize>(value: &T, next: Option<String>) -> Result<Entry, ApiError> {
    serde_json::to_vec(value)
        .map(|v| Entry { body: Bytes::from(v), next })
        .map_err(|e| ApiError::new(codes::INTERNAL_ERROR, format!("cannot serialise the answer: {e}")))
}

/// A conditional, cached read of `dom`'s snapshot tree on the request's own connection (one
/// plugin call, [`Ctx::run`]): the generation first, then 304 when `If-None-Match` names this answer's
/// ETag, else the cached bytes, else `build(connection, generation)`, cached when the generation
/// was the same after the read as before it (a write in between leaves nothing cached).
///
/// Why sharing between callers is safe: the key holds the driver URI, and the caller's own
/// connection (its read-only flag, its URI access, already checked by [`Ctx`]) answers the
/// generation call before any cached byte is served. These answers are lists and infos that are
/// the same for every caller allowed to read them: secure XML is never part of them (it is only
/// in the XML and export routes, which are never cached). Errors are never cached, and a variant
/// that failed validation once (flags, names) fails it every time, so a hit is never a request
/// that would have been refused.
pub async fn read(
    ctx: &Ctx,
    headers: &HeaderMap,
    dom: String,
    variant: u64,
    build: impl FnOnce(&Connection, Option<u64>) -> ApiResult<Entry> + Send + 'static,
) -> ApiResult<Answer> {
    let state = std::sync::Arc::clone(&ctx.state);
    let uri = ctx.uri.clone();
    let headers = headers.clone();
    ctx.run(move |c| {
        // A generation error (an unknown domain, a bad name) is left to the read itself, so the
        // answer is the one the operation gives.
        let generation = c.snapshot_generation(&dom).ok().flatten();
        let Some(g) = generation else {
            return Ok(build(c, None).map(|e| Answer::Fresh(e, None)));
        };
        let tag = etag(g, variant);
        if none_match(&headers, &tag) {
            return Ok(Ok(Answer::NotModified(tag)));
        }
        let key: Key = (uri, dom, g, variant);
        let entry = match state.answers.get(&key) {
            Some(entry) => entry,
            None => match build(c, Some(g)) {
                Ok(entry) => {
                    if c.snapshot_generation(&key.1).ok().flatten() == Some(g) {
                        state.answers.put(key, entry.clone());
                    }
                    entry
                }
                Err(e) => return Ok(Err(e)),
            },
        };
        if star(&headers) {
            return Ok(Ok(Answer::NotModified(tag)));
        }
        Ok(Ok(Answer::Fresh(entry, Some(tag))))
    })
    .await?
}

/// The export body as a stream of chunks of about [`EXPORT_CHUNK`] bytes, serialised as the
/// stream is read: the same bytes as `serde_json::to_vec(&h)` (compact, fields in declaration
/// order), without ever holding them whole.
pub fn stream_hierarchy(
    h: virtplug_wire::HierarchyJson,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let virtplug_wire::HierarchyJson { xmls, names, parents, current } = h;
    let mut xmls = xmls.into_iter().peekable();
    let mut tail = Some((names, parents, current));
    let mut first = true;
    futures_util::stream::iter(std::iter::from_fn(move || {
        let mut buf: Vec<u8> = Vec::with_capacity(EXPORT_CHUNK + 4096);
        if first {
            buf.extend_from_slice(b"{\"xmls\":[");
        }
        while buf.len() < EXPORT_CHUNK {
            let Some(xml) = xmls.next() else { break };
            if !first {
                buf.push(b',');
            }
            first = false;
            // Writing a string into a Vec cannot fail (no I/O, no map keys).
            let _ = serde_json::to_writer(&mut buf, &xml);
        }
        first = false;
        if xmls.peek().is_none()
            && let Some((names, parents, current)) = tail.take()
        {
            buf.extend_from_slice(b"],\"names\":");
            let _ = serde_json::to_writer(&mut buf, &names);
            buf.extend_from_slice(b",\"parents\":");
            let _ = serde_json::to_writer(&mut buf, &parents);
            buf.extend_from_slice(b",\"current\":");
            let _ = serde_json::to_writer(&mut buf, &current);
            buf.push(b'}');
        }
        (!buf.is_empty()).then(|| Ok(Bytes::from(buf)))
    }))
}

/// The size the export stream's chunks reach before they are sent.
pub const EXPORT_CHUNK: usize = 64 << 10;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry { body: Bytes::from(vec![b'x'; n]), next: None }
    }

    fn key(g: u64) -> Key {
        ("mock:///default".into(), "test".into(), g, 1)
    }

    #[test]
    fn bounded_by_entries_and_bytes_least_recently_used_first() {
        let c = AnswerCache::default();
        for g in 0..MAX_ENTRIES as u64 + 10 {
            c.put(key(g), entry(10));
            let _ = c.get(&key(0)); // kept warm: never the least recently used
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        assert!(c.get(&key(0)).is_some());
        assert!(c.get(&key(1)).is_none());
        c.put(key(1_000), entry(MAX_BYTES - 5));
        assert_eq!(c.len(), 1, "everything else evicted to make room");
        c.put(key(1_001), entry(MAX_BYTES + 1));
        assert!(c.get(&key(1_001)).is_none(), "larger than the whole cache: not kept");
    }

    #[test]
    fn the_export_stream_has_the_bytes_of_one_serialisation() {
        use futures_util::StreamExt;
        let big = "<domainsnapshot>\"&amp;\"</domainsnapshot>".repeat(300);
        for n in [0usize, 1, 2, 5, 40] {
            let h = virtplug_wire::HierarchyJson {
                xmls: (0..n).map(|i| format!("{big}{i}")).collect(),
                names: (0..n).map(|i| format!("s{i}")).collect(),
                parents: (0..n).map(|i| i.checked_sub(1).map(|p| format!("s{p}"))).collect(),
                current: n.checked_sub(1).map(|i| format!("s{i}")),
            };
            let want = serde_json::to_vec(&h).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let chunks: Vec<Bytes> = rt.block_on(stream_hierarchy(h).map(|c| c.unwrap()).collect::<Vec<_>>());
            assert!(chunks.iter().all(|c| c.len() < 2 * EXPORT_CHUNK), "{n}: chunks stay small");
            assert_eq!(chunks.concat(), want, "{n} snapshots");
        }
    }

    #[test]
    fn etags_and_if_none_match() {
        let tag = etag(42, variant(&["list", "0", "false"]));
        assert_eq!(tag, etag(42, variant(&["list", "0", "false"])));
        assert_ne!(tag, etag(42, variant(&["list", "0", "true"])));
        assert_ne!(variant(&["ab", "c"]), variant(&["a", "bc"]));
        assert!(tag.starts_with("\"g42-") && tag.len() == 22);
        for (header, matches) in [
            (tag.clone(), true),
            (format!("W/{tag}"), true),
            (format!("\"other\", {tag}"), true),
            ("*".to_owned(), false),
            ("\"g41-0000000000000000\"".to_owned(), false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&header).unwrap());
            assert_eq!(none_match(&h, &tag), matches, "{header}");
        }
        assert!(!none_match(&HeaderMap::new(), &tag));
    }
}
