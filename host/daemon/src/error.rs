//! API errors: libvirt's code, symbolic name and exact message as JSON, with the one mapping
//! from libvirt codes to HTTP statuses ([`status_for`]). HTTP-layer rejections (unknown route,
//! oversized or malformed body) keep the status the HTTP layer chose and carry a libvirt code too.

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use virtplug_host::{HostError, codes};
use virtplug_wire::ErrorBody;

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: ErrorBody,
}

/// The one mapping from libvirt's error codes to HTTP statuses.
pub fn status_for(code: u32) -> StatusCode {
    match code {
        codes::OPERATION_DENIED => StatusCode::FORBIDDEN,
        // A backend refusing the daemon's credentials (a hypervisor's wrong password) is a
        // failure upstream, not the client's: 502, without `WWW-Authenticate`, so that no
        // client takes it for its own bearer token failing. The daemon's own token check
        // answers 401 ([`ApiError::unauthorized`]).
        codes::AUTH_FAILED => StatusCode::BAD_GATEWAY,
        codes::NO_DOMAIN | codes::NO_DOMAIN_SNAPSHOT => StatusCode::NOT_FOUND,
        codes::NO_SUPPORT | codes::OPERATION_UNSUPPORTED => StatusCode::NOT_IMPLEMENTED,
        // OPERATION_TIMEOUT: another job holds the domain (refused at once, retry later).
        codes::OPERATION_INVALID
        | codes::OPERATION_FAILED
        | codes::SNAPSHOT_REVERT_RISKY
        | codes::OPERATION_TIMEOUT => StatusCode::CONFLICT,
        codes::INVALID_ARG
        | codes::XML_ERROR
        | codes::XML_DETAIL
        | codes::INVALID_DOMAIN_SNAPSHOT
        | codes::INVALID_DOMAIN
        | codes::CONFIG_UNSUPPORTED
        | codes::NO_CONNECT => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// An error with libvirt's `code` and `detail` (the message gets libvirt's prefix), its status
    /// from [`status_for`].
    pub fn new(code: u32, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let message = format!("{}{detail}", codes::prefix(code));
        Self {
            status: status_for(code),
            body: ErrorBody { code, name: codes::name(code).into(), message, detail, request_id: None },
        }
    }

    /// An HTTP-layer rejection: `status` stays, the body says it in libvirt's terms.
    pub fn http(status: StatusCode, code: u32, detail: impl Into<String>) -> Self {
        Self { status, ..Self::new(code, detail) }
    }

    /// The daemon's own authentication missing or wrong: 401 with `WWW-Authenticate: Bearer`.
    /// The token is never part of the text.
    pub fn unauthorized() -> Self {
        Self::http(StatusCode::UNAUTHORIZED, codes::AUTH_FAILED, "a valid bearer token is required")
    }
}

impl From<HostError> for ApiError {
    fn from(e: HostError) -> Self {
        let code = e.code();
        let message = e.to_string();
        let detail = match &e {
            HostError::Driver(inner) => inner.message.clone(),
            _ => message.strip_prefix(codes::prefix(code)).unwrap_or(&message).to_owned(),
        };
        Self {
            status: status_for(code),
            body: ErrorBody { code, name: codes::name(code).into(), message, detail, request_id: None },
        }
    }
}

/// Why reading a request body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More bytes than the route accepts.
    #[error("request body is larger than the {0} bytes this route accepts")]
    TooLarge(usize),
    /// Nothing arrived for the body timeout.
    #[error("request body stalled: nothing received for {0} s")]
    TimedOut(u64),
}

impl From<BodyError> for ApiError {
    /// 413 for a body over its route's limit, 408 for a stalled one.
    fn from(e: BodyError) -> Self {
        let status = match e {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
        };
        Self::http(status, codes::INVALID_ARG, e.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        // The body guard's verdict, when reading stopped there.
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&r);
        while let Some(e) = cause {
            if let Some(body) = e.downcast_ref::<BodyError>() {
                return (*body).into();
            }
            cause = e.source();
        }
        let status = r.status();
        let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request body is larger than the daemon accepts".to_owned()
        } else {
            format!("malformed JSON request: {}", r.body_text())
        };
        Self::http(status, codes::INVALID_ARG, detail)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::http(StatusCode::BAD_REQUEST, codes::INVALID_ARG, format!("malformed query: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::http(StatusCode::BAD_REQUEST, codes::INVALID_ARG, format!("malformed path: {}", r.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        // The request being answered (none outside one, e.g. in a unit test).
        if self.body.request_id.is_none() {
            self.body.request_id = crate::observe::current_request_id();
        }
        let mut resp = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// Result with [`ApiError`].
pub type ApiResult<T> = std::result::Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use axum::http::header::WWW_AUTHENTICATE;
    use virtplug_host::model;

    use super::*;

    /// (error, status, `WWW-Authenticate`, code, message)
    fn check(e: ApiError, status: u16, www: Option<&str>, code: u32, message: &str) {
        assert_eq!((e.body.code, e.body.message.as_str()), (code, message));
        let resp = e.into_response();
        assert_eq!(resp.status().as_u16(), status, "{message}");
        assert_eq!(resp.headers().get(WWW_AUTHENTICATE).map(|v| v.to_str().unwrap()), www, "{message}");
    }

    #[test]
    fn a_backend_refusing_its_credentials_is_not_the_clients_token_failing() {
        let wrong_password = "Cannot complete login due to an incorrect user name or password.";
        check(
            HostError::Driver(model::Error::new(codes::AUTH_FAILED, wrong_password)).into(),
            502,
            None,
            codes::AUTH_FAILED,
            &format!("authentication failed: {wrong_password}"),
        );
        check(
            ApiError::unauthorized(),
            401,
            Some("Bearer"),
            codes::AUTH_FAILED,
            "authentication failed: a valid bearer token is required",
        );
        check(
            HostError::ReadOnly { function: "virDomainSnapshotCreateXML" }.into(),
            403,
            None,
            codes::OPERATION_DENIED,
            "operation forbidden: read only access prevents virDomainSnapshotCreateXML",
        );
        check(
            BodyError::TooLarge(1024).into(),
            413,
            None,
            codes::INVALID_ARG,
            "invalid argument: request body is larger than the 1024 bytes this route accepts",
        );
        check(
            BodyError::TimedOut(30).into(),
            408,
            None,
            codes::INVALID_ARG,
            "invalid argument: request body stalled: nothing received for 30 s",
        );
    }
}
