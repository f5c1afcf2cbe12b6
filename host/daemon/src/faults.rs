//! Faults for tests, named by `VIRTPLUGD_FAULT` and read once: how the daemon answers when its
//! own code panics is tested by making it panic. Nothing here runs unless the variable names a
//! fault; no other configuration reads it.
//!
//! - `panic-in-libvirt-procedure:N`: every libvirt call of procedure N panics;
//! - `panic-in-http-route:T`: every HTTP request routed to the template T (as the access log
//!   names routes: `/v1/domains/{dom}`) panics in its handler's place.

use std::sync::OnceLock;

use axum::{extract::MatchedPath, extract::Request, middleware::Next, response::Response};

fn fault() -> Option<&'static str> {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    FAULT.get_or_init(|| std::env::var("VIRTPLUGD_FAULT").ok()).as_deref()
}

/// Whether libvirt procedure `procedure` is to panic.
pub fn panics_in_procedure(procedure: i32) -> bool {
    fault().and_then(|f| f.strip_prefix("panic-in-libvirt-procedure:")).and_then(|n| n.parse().ok()) == Some(procedure)
}

/// Whether a route is to panic (the router adds [`http`] only then).
pub fn panics_on_routes() -> bool {
    http_route().is_some()
}

fn http_route() -> Option<&'static str> {
    fault().and_then(|f| f.strip_prefix("panic-in-http-route:"))
}

/// The route layer of `panic-in-http-route` (innermost: where the handler would run).
pub async fn http(req: Request, next: Next) -> Response {
    if let Some(route) = http_route()
        && req.extensions().get::<MatchedPath>().is_some_and(|m| m.as_str() == route)
    {
        panic!("VIRTPLUGD_FAULT: a panic in the handler of {route}");
    }
    next.run(req).await
}
