//! The shared metadata store of a domain (a fleet store such as etcd): where its snapshot
//! metadata lives (`snapshot_store`) and handing it to another host of that store
//! (`snapshot_handover`), so that `migrate-snapshots` between two daemons on one store is a
//! handover, not a copy. A plugin that keeps its metadata to itself answers `NO_SUPPORT`.

use axum::Json;
use virtplug_wire::{HandoverRequest, StoreJson};

use crate::{
    error::{ApiError, ApiResult},
    extract::{J, P},
    openapi::{BaseErrors, BodyErrors, Headers, HostErrors},
    state::Ctx,
};

/// `snapshot_store`: the shared store holding `dom`'s snapshot metadata, and this host on it.
#[utoipa::path(get, path = "/v1/domains/{dom}/snapshot-store", tag = "snapshot", operation_id = "snapshot_store",
    params(("dom" = String, Path, description = "domain name"), Headers),
    responses((status = 200, description = "the store and this host on it", body = StoreJson), BaseErrors, HostErrors))]
pub async fn store(ctx: Ctx, P(dom): P<String>) -> ApiResult<Json<StoreJson>> {
    let found = ctx.run(move |c| c.snapshot_store(&dom)).await?;
    // None: the plugin keeps the metadata to itself; the host's own NO_SUPPORT answer.
    let (store, host) = found.ok_or_else(|| {
        ApiError::from(virtplug_host::HostError::Driver(virtplug_host::model::Error::no_support("snapshot_store")))
    })?;
    Ok(Json(StoreJson { store, host }))
}

/// `snapshot_handover`: hands `dom`'s snapshot metadata to host `to` of the same store (one
/// transaction, nothing copied); this host can no longer write it.
#[utoipa::path(post, path = "/v1/domains/{dom}/snapshot-handover", tag = "snapshot", operation_id = "snapshot_handover",
    request_body = HandoverRequest, params(("dom" = String, Path, description = "domain name"), Headers),
    responses((status = 200, description = "handed over: an empty object", body = Object), BaseErrors, HostErrors, BodyErrors))]
pub async fn handover(ctx: Ctx, P(dom): P<String>, J(req): J<HandoverRequest>) -> ApiResult<Json<serde_json::Value>> {
    ctx.run(move |c| c.snapshot_handover(&dom, &req.to)).await?;
    Ok(Json(serde_json::json!({})))
}
