//! A request whose handling panics in the daemon's own code is answered: 500 with libvirt's
//! internal error, and one log line naming the route and the request id. Without this the
//! panic ends the connection's thread and the client sees its connection close, with no answer
//! and no id to look for in the log. Plugin panics never get here (the plugin SDK turns them
//! into errors at the ABI boundary); a panic in a response body already under way still ends
//! its connection, as nothing can be answered any more.

use std::panic::AssertUnwindSafe;

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures_util::FutureExt;
use virtplug_host::codes;

use crate::error::ApiError;

/// The error a request that panicked is answered with.
pub fn panicked() -> ApiError {
    ApiError::new(codes::INTERNAL_ERROR, "the request failed unexpectedly (see the daemon's log)")
}

/// The layer (inside the access log's, so that the 500 is logged and carries the request id).
pub async fn answer_panics(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    // Unwind safety: what a handler shares lives behind `std` mutexes or in atomics. A panic
    // poisons the mutex it held, and every user skips a poisoned one (the answer cache misses
    // and reads the store, a task is not found) rather than read a half-made change.
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::error!(
                route = route.as_deref().unwrap_or("(none)"),
                request_id = crate::observe::current_request_id().as_deref().unwrap_or("(none)"),
                "a request panicked; answered 500 with an internal error"
            );
            panicked().into_response()
        }
    }
}
