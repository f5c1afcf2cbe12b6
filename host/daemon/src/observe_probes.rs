//! Probes for operators: `/healthz` (the daemon answers) and `/readyz` (it can serve: plugins are
//! loaded, and every served driver URI opens and answers a cheap call within [`READY_TIMEOUT`]).
//! Neither needs a `virtplug-uri` header, and neither changes anything: the URI checks open
//! read-only connections, which create no state.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// How long one served URI may take to open and answer `domain_list` before it counts as
/// failing.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthJson {
    /// Always `ok`.
    pub status: String,
}

/// `/readyz`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReadyJson {
    /// `ready` (200) or `not ready` (503).
    pub status: String,
    /// Every check, in order: `plugins`, then `uri` once per served URI.
    pub checks: Vec<CheckJson>,
}

/// One readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct CheckJson {
    /// `plugins` or `uri`.
    pub check: String,
    /// The served URI, for `uri` checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub uri: Option<String>,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

/// Liveness: the daemon answers.
#[utoipa::path(get, path = "/healthz", tag = "observe", operation_id = "daemon_health", responses((status = 200, body = HealthJson), crate::openapi::ProbeErrors))]
pub async fn healthz() -> Json<HealthJson> {
    Json(HealthJson { status: "ok".into() })
}

/// Opens `uri` read-only (or reuses the open connection) and lists its domains.
async fn check_uri(state: &AppState, uri: String) -> CheckJson {
    let st = std::sync::Arc::clone(state);
    let u = uri.clone();
    let call = crate::runtime::spawn_blocking(move || st.connection(&u, true).and_then(|c| c.domain_list().map(drop)));
    let error = match tokio::time::timeout(READY_TIMEOUT, call).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(e.to_string()),
        Ok(Err(e)) => Some(format!("check failed: {e}")),
        Err(_) => Some(format!("no answer within {} s", READY_TIMEOUT.as_secs())),
    };
    CheckJson { check: "uri".into(), uri: Some(uri), ok: error.is_none(), error }
}

/// Readiness: plugins are loaded, and every served URI opens and answers `domain_list` within
/// 2 s. 503 names each failing check.
#[utoipa::path(get, path = "/readyz", tag = "observe", operation_id = "daemon_readiness",
    responses((status = 200, body = ReadyJson), (status = 503, description = "a check failed", body = ReadyJson), crate::openapi::ProbeErrors))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<ReadyJson>) {
    let loaded = state.registry.plugins().len();
    let mut checks = vec![CheckJson {
        check: "plugins".into(),
        uri: None,
        ok: loaded > 0,
        error: (loaded == 0).then(|| "no plugin loaded".to_owned()),
    }];
    let pending: Vec<_> = state.allowed_uris.iter().map(|u| check_uri(&state, u.clone())).collect();
    checks.extend(futures_util::future::join_all(pending).await);
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(ReadyJson { status: if ready { "ready" } else { "not ready" }.into(), checks }))
}
