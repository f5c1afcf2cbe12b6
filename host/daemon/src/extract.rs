//! Extractors whose rejections are [`ApiError`]s (JSON with a libvirt code) instead of axum's
//! plain-text ones, and [`guard`], which every routed request passes before its handler: a
//! read-only principal's write is refused, and the body is capped by its route, before a byte
//! of it is read.

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    extract::{FromRequest, FromRequestParts, MatchedPath, Request, State},
    http::{Method, header::CONTENT_LENGTH},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use virtplug_host::{HostError, rules};
use virtplug_wire as wire;

pub use crate::error::BodyError;
use crate::{error::ApiError, state::Access};

/// Path parameters, percent-decoded.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct P<T>(pub T);

/// Query parameters.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Q<T>(pub T);

/// A JSON body (size-limited by [`guard`]: 413 beyond the route's limit).
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct J<T>(pub T);

/// The body limits (bytes) and the body inactivity timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Small JSON routes (flags, migrations, settle).
    pub small: usize,
    /// Routes carrying one XML document (define, snapshot create and edit).
    pub xml: usize,
    /// Hierarchy import.
    pub import: usize,
    /// A body that sends nothing for this long fails (408).
    pub timeout: Duration,
}

/// Which limit a route's body gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// The route reads no body: any byte is too many.
    Empty,
    /// [`BodyLimits::small`].
    Small,
    /// [`BodyLimits::xml`].
    Xml,
    /// [`BodyLimits::import`].
    Import,
}

/// What a read-only principal is told when it asks a route to change something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writes {
    /// A read route.
    No,
    /// A write route: the libvirt function named in the refusal (the host's, so that the text
    /// is the one the host would give after reading the body).
    Function(&'static str),
    /// `POST /v1/domains/{dom}/{action}`: the function depends on the action.
    Action,
}

/// Body size and write refusal of every route that changes something or reads a body; other
/// routes (GET) read no body and change nothing. A test checks that every documented route
/// that is not a GET has a line here.
pub const ROUTES: &[(&str, &str, Size, Writes)] = &[
    ("POST", "/v1/domains", Size::Xml, Writes::Function(rules::DOMAIN_DEFINE.function)),
    ("DELETE", "/v1/domains/{dom}", Size::Empty, Writes::Function(rules::DOMAIN_UNDEFINE.function)),
    ("POST", "/v1/domains/{dom}/{action}", Size::Small, Writes::Action),
    ("POST", "/v1/domains/{dom}/snapshots", Size::Xml, Writes::Function(rules::SNAPSHOT_CREATE.function)),
    ("PUT", "/v1/domains/{dom}/snapshots/{snap}", Size::Xml, Writes::Function(rules::SNAPSHOT_EDIT.function)),
    ("DELETE", "/v1/domains/{dom}/snapshots/{snap}", Size::Empty, Writes::Function(rules::SNAPSHOT_DELETE.function)),
    (
        "POST",
        "/v1/domains/{dom}/snapshots/{snap}/revert",
        Size::Small,
        Writes::Function(rules::SNAPSHOT_REVERT.function),
    ),
    ("POST", "/v1/domains/{dom}/snapshot-import", Size::Import, Writes::Function(rules::SNAPSHOT_IMPORT.function)),
    ("POST", "/v1/domains/{dom}/snapshot-handover", Size::Small, Writes::Function(rules::SNAPSHOT_HANDOVER.function)),
    // The names the handlers give (settling records an import; a migration drops metadata).
    ("POST", "/v1/imports/{id}/settle", Size::Small, Writes::Function("virDomainSnapshotCreateXML")),
    ("POST", "/v1/migrations", Size::Small, Writes::Function("virDomainSnapshotDelete")),
];

/// The rule of `method` on the matched route `path`. A route missing from [`ROUTES`] reads no
/// body when it is a GET or HEAD, and is otherwise treated as a small write.
pub fn rule(method: &Method, path: &str) -> (Size, Writes) {
    if let Some((_, _, size, writes)) = ROUTES.iter().find(|(m, p, ..)| *m == method.as_str() && *p == path) {
        return (*size, *writes);
    }
    if *method == Method::GET || *method == Method::HEAD {
        (Size::Empty, Writes::No)
    } else {
        (Size::Small, Writes::Function("this request"))
    }
}

fn action_function(action: &str) -> Option<&'static str> {
    Some(match action {
        "start" => rules::DOMAIN_START.function,
        "shutdown" => rules::DOMAIN_SHUTDOWN.function,
        "destroy" => rules::DOMAIN_DESTROY.function,
        "suspend" => rules::DOMAIN_SUSPEND.function,
        "resume" => rules::DOMAIN_RESUME.function,
        _ => return None,
    })
}

/// Whether the request comes from a read-only principal (socket, token or the
/// `virtplug-read-only` header), decided as [`crate::state::Ctx`] decides it.
fn read_only(req: &Request) -> bool {
    let access = req.extensions().get::<Access>().copied().unwrap_or(Access::ReadOnly);
    access == Access::ReadOnly || req.headers().get(wire::READ_ONLY_HEADER).is_some_and(|v| v.as_bytes() == b"1")
}

/// The middleware: refuses a read-only principal's write and a body whose declared length is
/// over the route's limit without reading it, and otherwise lets the body through counted and
/// watched for stalls.
pub async fn guard(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let path = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_default();
    let (size, writes) = rule(req.method(), &path);
    if read_only(&req) {
        let function = match writes {
            Writes::No => None,
            Writes::Function(f) => Some(f),
            Writes::Action => req.uri().path().rsplit('/').next().and_then(action_function),
        };
        if let Some(function) = function {
            return ApiError::from(HostError::ReadOnly { function }).into_response();
        }
    }
    let limit = match size {
        Size::Empty => 0,
        Size::Small => limits.small,
        Size::Xml => limits.xml,
        Size::Import => limits.import,
    };
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::from(BodyError::TooLarge(limit)).into_response();
    }
    let (parts, body) = req.into_parts();
    next.run(Request::from_parts(parts, bounded(body, limit, limits.timeout))).await
}

/// `body`, failing with [`BodyError::TooLarge`] past `limit` bytes and [`BodyError::TimedOut`]
/// when nothing arrives for `timeout`; nothing is buffered here.
fn bounded(body: Body, limit: usize, timeout: Duration) -> Body {
    struct S {
        inner: axum::body::BodyDataStream,
        seen: usize,
        done: bool,
    }
    let state = S { inner: body.into_data_stream(), seen: 0, done: false };
    let stream = futures_util::stream::unfold(state, move |mut s| async move {
        if s.done {
            return None;
        }
        let item: Result<Bytes, axum::BoxError> = match tokio::time::timeout(timeout, s.inner.next()).await {
            Ok(None) => return None,
            Ok(Some(Ok(bytes))) => {
                s.seen = s.seen.saturating_add(bytes.len());
                if s.seen > limit { Err(BodyError::TooLarge(limit).into()) } else { Ok(bytes) }
            }
            Ok(Some(Err(e))) => Err(e.into()),
            Err(_) => Err(BodyError::TimedOut(timeout.as_secs()).into()),
        };
        s.done = item.is_err();
        Some((item, s))
    });
    Body::from_stream(stream)
}
