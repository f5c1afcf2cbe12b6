//! Paging of the list routes (domains, snapshots, children, tasks): `?limit=N&page_token=T`.
//! Bodies stay JSON arrays (existing clients keep working); the next page's token travels in the
//! `X-Next-Page-Token` and `Link: <…>; rel="next"` headers.
//!
//! A token is base64url (no padding) of a small JSON object: the last item's key (snapshot or
//! domain name, task id), its index, and the snapshot tree generation the page was cut from.
//! The order is each list's existing order. The next page starts after the named item wherever it
//! now is, so items created or deleted elsewhere in the list neither shift nor repeat a page; only
//! when that item itself is gone does it resume at the recorded index (and a token whose item is
//! gone while the generation is unchanged was not cut from this list: 400).

use axum::http::{HeaderMap, HeaderName, HeaderValue, header::LINK};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use virtplug_host::codes;

use crate::error::ApiError;

/// The largest `limit` a request may ask for.
pub const MAX_LIMIT: u32 = 10_000;

/// The header carrying the next page's token.
pub const NEXT_PAGE_HEADER: &str = "x-next-page-token";

/// `?limit=N&page_token=T`.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1 to 10000); absent: every item from the token on, as without paging.
    #[param(nullable = false, minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// Where to go on: the `X-Next-Page-Token` of the previous page, as given (opaque).
    #[param(nullable = false)]
    pub page_token: Option<String>,
}

/// What a token says (serialised, then base64url).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Token {
    /// Format version.
    v: u8,
    /// The last item's key.
    after: String,
    /// The index just past it.
    at: usize,
    /// The snapshot tree generation of the page (null for domains and tasks).
    g: Option<u64>,
}

/// A validated [`PageQuery`].
#[derive(Debug, Default, Clone)]
pub struct Page {
    limit: Option<usize>,
    token: Option<Token>,
    /// The token as given (part of the cache variant).
    raw: Option<String>,
}

fn bad(detail: &str) -> ApiError {
    ApiError::new(codes::INVALID_ARG, detail.to_owned())
}

impl PageQuery {
    /// Checks `limit` and decodes `page_token`: 400 (`VIR_ERR_INVALID_ARG`) with one line when either is bad.
    pub fn check(&self) -> Result<Page, ApiError> {
        let limit = match self.limit {
            Some(n) if n == 0 || n > MAX_LIMIT => return Err(bad("limit must be between 1 and 10000")),
            n => n.map(|n| n as usize),
        };
        let token = match &self.page_token {
            None => None,
            Some(t) => {
                let bytes =
                    URL_SAFE_NO_PAD.decode(t).map_err(|_| bad("page_token is not a token this daemon issued"))?;
                let token: Token = serde_json::from_slice(&bytes)
                    .ok()
                    .filter(|t: &Token| t.v == 1)
                    .ok_or_else(|| bad("page_token is not a token this daemon issued"))?;
                Some(token)
            }
        };
        Ok(Page { limit, token, raw: self.page_token.clone() })
    }
}

impl Page {
    /// Whether the request asks for paging at all.
    pub fn is_paged(&self) -> bool {
        self.limit.is_some() || self.token.is_some()
    }

    /// What identifies this page in a cache variant (limit and token).
    pub fn variant(&self) -> String {
        format!("{:?}/{}", self.limit, self.raw.as_deref().unwrap_or(""))
    }

    /// Cuts this page out of `all` (in its order, `key` naming each item); returns the page and
    /// the next page's token (none after the last page). `generation` is the snapshot tree
    /// generation `all` was read at, if any.
    pub fn cut<T>(
        &self,
        mut all: Vec<T>,
        key: impl Fn(&T) -> String,
        generation: Option<u64>,
    ) -> Result<(Vec<T>, Option<String>), ApiError> {
        let start = match &self.token {
            None => 0,
            Some(t) => match all.iter().position(|i| key(i) == t.after) {
                Some(i) => i + 1,
                None if t.g.is_some() && t.g == generation => {
                    return Err(bad("page_token was not issued for this list"));
                }
                None => t.at.min(all.len()),
            },
        };
        let end = self.limit.map_or(all.len(), |n| start.saturating_add(n).min(all.len()));
        let next = (end < all.len() && end > start)
            .then(|| Token { v: 1, after: key(&all[end - 1]), at: end, g: generation })
            .and_then(|t| serde_json::to_vec(&t).ok())
            .map(|b| URL_SAFE_NO_PAD.encode(b));
        all.truncate(end);
        all.drain(..start);
        Ok((all, next))
    }
}

/// Adds `X-Next-Page-Token: T` and `Link: <path?query with page_token=T>; rel="next"`.
pub fn next_headers(headers: &mut HeaderMap, path: &str, query: Option<&str>, token: &str) {
    let mut pairs: Vec<&str> =
        query.unwrap_or("").split('&').filter(|p| !p.is_empty() && !p.starts_with("page_token=")).collect();
    let own = format!("page_token={token}");
    pairs.push(&own);
    let link = format!("<{path}?{}>; rel=\"next\"", pairs.join("&"));
    // The token is base64url and the path arrived as a valid request target: both are header-safe.
    if let (Ok(t), Ok(l)) = (HeaderValue::from_str(token), HeaderValue::from_str(&link)) {
        headers.insert(HeaderName::from_static(NEXT_PAGE_HEADER), t);
        headers.insert(LINK, l);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn page(limit: Option<u32>, token: Option<&str>) -> Result<Page, ApiError> {
        PageQuery { limit, page_token: token.map(str::to_owned) }.check()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn pages_follow_the_named_item() {
        let all = names(&["a", "b", "c", "d", "e"]);
        let (p1, t1) = page(Some(2), None).unwrap().cut(all.clone(), Clone::clone, Some(7)).unwrap();
        assert_eq!(p1, names(&["a", "b"]));
        // "a" deleted and "bb" created since: the next page starts after "b" wherever it is.
        let changed = names(&["b", "bb", "c", "d", "e"]);
        let (p2, t2) = page(Some(2), t1.as_deref()).unwrap().cut(changed.clone(), Clone::clone, Some(8)).unwrap();
        assert_eq!(p2, names(&["bb", "c"]));
        let (p3, t3) = page(Some(2), t2.as_deref()).unwrap().cut(changed.clone(), Clone::clone, Some(8)).unwrap();
        assert_eq!((p3, t3), (names(&["d", "e"]), None));
        // Without a limit: everything from the token on; without either: everything.
        let (rest, none) = page(None, t1.as_deref()).unwrap().cut(all.clone(), Clone::clone, Some(7)).unwrap();
        assert_eq!((rest, none), (names(&["c", "d", "e"]), None));
        let (whole, none) = page(None, None).unwrap().cut(all.clone(), Clone::clone, None).unwrap();
        assert_eq!((whole, none), (all.clone(), None));
        // The named item gone: resume at its index; gone at the same generation: not this list's token.
        let (p, _) = page(Some(2), t1.as_deref()).unwrap().cut(names(&["a", "c", "d"]), Clone::clone, Some(9)).unwrap();
        assert_eq!(p, names(&["d"]));
        let e = page(Some(2), t1.as_deref()).unwrap().cut(names(&["x", "y", "z"]), Clone::clone, Some(7)).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.body.message.as_str()),
            (400, "invalid argument: page_token was not issued for this list")
        );
    }

    #[test]
    fn bad_limits_and_tokens_are_refused_in_one_line() {
        for (limit, token, message) in [
            (Some(0), None, "invalid argument: limit must be between 1 and 10000"),
            (Some(10_001), None, "invalid argument: limit must be between 1 and 10000"),
            (None, Some("!!"), "invalid argument: page_token is not a token this daemon issued"),
            (None, Some("e30"), "invalid argument: page_token is not a token this daemon issued"),
        ] {
            let e = page(limit, token).unwrap_err();
            assert_eq!((e.status.as_u16(), e.body.code, e.body.message.as_str()), (400, 8, message));
        }
        assert!(page(Some(10_000), None).is_ok());
    }

    #[test]
    fn the_link_keeps_the_query_and_replaces_the_token() {
        let mut h = HeaderMap::new();
        next_headers(&mut h, "/v1/domains/test/snapshots", Some("flags=4&page_token=old&limit=2"), "NEW");
        assert_eq!(h.get(NEXT_PAGE_HEADER).unwrap(), "NEW");
        assert_eq!(h.get(LINK).unwrap(), "</v1/domains/test/snapshots?flags=4&limit=2&page_token=NEW>; rel=\"next\"");
    }
}
