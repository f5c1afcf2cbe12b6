//! Snapshot routes: one host API operation each, plus the whole-hierarchy export and import.
//! Changes publish events (`snapshot.created`, `.redefined`, `.reverted`, `.deleted`,
//! `.metadata_dropped`, `.imported`, `.current_changed`).

use axum::{
    Json,
    http::{
        HeaderMap, HeaderValue, StatusCode, Uri,
        header::{CONTENT_TYPE, LOCATION},
    },
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;
use virtplug_host::flags::{snapshot_create, snapshot_delete, snapshot_import};
use virtplug_wire::{
    CreateRequest, CurrentResponse, FlagsRequest, HierarchyJson, ImportRequest, NameResponse, SnapshotInfo, TaskJson,
    TaskState, XmlResponse,
};

use crate::{
    cache,
    error::ApiResult,
    extract::{J, P, Q},
    openapi::{BaseErrors, BodyErrors, Conditional, Headers, HostErrors},
    paging::PageQuery,
    routes_domain::FlagsQuery,
    state::Ctx,
};

/// `?flags=N&raw=true`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `flags::snapshot_list` bits.
    #[serde(default)]
    pub flags: u32,
    /// Return the plugin's list unfiltered (what a remote client filters itself).
    #[serde(default)]
    pub raw: bool,
}

/// `?async=true`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsyncQuery {
    /// Run as a task: answer 202 with the task at once.
    #[serde(default, rename = "async")]
    pub run_async: bool,
}

fn ok() -> Json<serde_json::Value> {
    Json(serde_json::json!({}))
}

/// `snapshot_list` at domain level, filtered by the documented group rule; paged and conditional
/// (see [`crate::cache`] and [`crate::paging`]).
#[utoipa::path(get, path = "/v1/domains/{dom}/snapshots", tag = "snapshot", operation_id = "snapshot_list",
    params(("dom" = String, Path, description = "domain name"), ListQuery, PageQuery, Conditional, Headers),
    responses((status = 200, description = "the snapshots (one page of them with `limit` or `page_token`)",
               body = Vec<SnapshotInfo>, headers(("ETag" = String, description = "`\"g<generation>-<variant>\"`: changes whenever the answer may (see docs/api.md, Conditional reads)"),
                 ("X-Next-Page-Token" = String, description = "the `page_token` of the next page; absent on the last page"),
                 ("Link" = String, description = "`<this path and query with page_token=…>; rel=\"next\"`; absent on the last page"))),
              (status = 304, description = "Not modified: the `If-None-Match` ETag is current; no body", headers(("ETag" = String, description = "`\"g<generation>-<variant>\"`: changes whenever the answer may (see docs/api.md, Conditional reads)"))),
              BaseErrors, HostErrors))]
pub async fn list(
    ctx: Ctx,
    uri: Uri,
    headers: HeaderMap,
    P(dom): P<String>,
    Q(q): Q<ListQuery>,
    Q(pq): Q<PageQuery>,
) -> ApiResult<Response> {
    let page = pq.check()?;
    let variant = cache::variant(&["snapshot_list", &q.flags.to_string(), &q.raw.to_string(), &page.variant()]);
    let d = dom.clone();
    let answer = cache::read(&ctx, &headers, dom, variant, move |c, g| {
        let v = if q.raw { c.snapshot_list_unfiltered(&d, q.flags) } else { c.snapshot_list(&d, q.flags) }?;
        let (v, next) = page.cut(v, |s| s.name.clone(), g)?;
        cache::json(&v, next)
    })
    .await?;
    Ok(answer.respond(uri.path(), uri.query()))
}

/// `snapshot_create`: creates (or with REDEFINE, redefines) a snapshot from XML.
#[utoipa::path(post, path = "/v1/domains/{dom}/snapshots", tag = "snapshot", operation_id = "snapshot_create",
    request_body = CreateRequest, params(("dom" = String, Path, description = "domain name"), Headers),
    responses((status = 201, description = "the new snapshot's name", body = NameResponse), BaseErrors, HostErrors, BodyErrors))]
pub async fn create(
    ctx: Ctx,
    P(dom): P<String>,
    J(req): J<CreateRequest>,
) -> ApiResult<(StatusCode, Json<NameResponse>)> {
    let d = dom.clone();
    let flags = req.flags;
    let name = ctx.run(move |c| c.snapshot_create(&d, &req.xml, req.flags)).await?;
    let kind = if flags & snapshot_create::REDEFINE != 0 { "snapshot.redefined" } else { "snapshot.created" };
    ctx.emit(kind, &dom, Some(&name));
    ctx.check_current(&dom).await;
    Ok((StatusCode::CREATED, Json(NameResponse { name })))
}

/// `snapshot_lookup` by name; conditional (see [`crate::cache`]).
#[utoipa::path(get, path = "/v1/domains/{dom}/snapshots/{snap}", tag = "snapshot", operation_id = "snapshot_lookup",
    params(("dom" = String, Path, description = "domain name"), ("snap" = String, Path, description = "snapshot name"), Conditional, Headers),
    responses((status = 200, description = "the snapshot", body = SnapshotInfo, headers(("ETag" = String, description = "`\"g<generation>-<variant>\"`: changes whenever the answer may (see docs/api.md, Conditional reads)"))),
              (status = 304, description = "Not modified: the `If-None-Match` ETag is current; no body", headers(("ETag" = String, description = "`\"g<generation>-<variant>\"`: changes whenever the answer may (see docs/api.md, Conditional reads)"))),
              BaseErrors, HostErrors))]
pub async fn lookup(
    ctx: Ctx,
    uri: Uri,
    headers: HeaderMap,
    P((dom, snap)): P<(String, String)>,
) -> ApiResult<Response> {
    let variant = cache::variant(&["snapshot_lookup", &snap]);
    let d = dom.clone();
    let answer =
        cache::read(&ctx, &headers, dom, variant, move |c, _| cache::json(&c.snapshot_lookup(&d, &snap)?, None))
            .await?;
    Ok(answer.respond(uri.path(), uri.query()))
}

/// `snapshot_edit`: redefines `snap` from XML (possibly renamed) atomically.
#[utoipa::path(put, path = "/v1/domains/{dom}/snapshots/{snap}", tag = "snapshot", operation_id = "snapshot_edit",
    request_body = CreateRequest, params(("dom" = String, Path, description = "domain name"), ("snap" = String, Path, description = "snapshot name"), Headers),
    responses((status = 200, description = "the snapshot's (new) name", body = NameResponse), BaseErrors, HostErrors, BodyErrors))]
pub async fn edit(
    ctx: Ctx,
    P((dom, snap)): P<(String, String)>,
    J(req): J<CreateRequest>,
) -> ApiResult<Json<NameResponse>> {
    let d = dom.clone();
    let name = ctx.run(move |c| c.snapshot_edit(&d, &snap, &req.xml, req.flags)).await?;
    ctx.emit("snapshot.redefined", &dom, Some(&name));
    ctx.check_current(&dom).await;
    Ok(Json(NameResponse { name }))
}

/// `snapshot_delete` with `flags::snapshot_delete` bits.
#[utoipa::path(delete, path = "/v1/domains/{dom}/snapshots/{snap}", tag = "snapshot", operation_id = "snapshot_delete",
    params(("dom" = String, Path, description = "domain name"), ("snap" = String, Path, description = "snapshot name"), FlagsQuery, Headers),
    responses((status = 200, description = "deleted: an empty object", body = Object), BaseErrors, HostErrors))]
pub async fn delete(
    ctx: Ctx,
    P((dom, snap)): P<(String, String)>,
    Q(q): Q<FlagsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let (d, s) = (dom.clone(), snap.clone());
    ctx.run(move |c| c.snapshot_delete(&d, &s, q.flags)).await?;
    let kind =
        if q.flags & snapshot_delete::METADATA_ONLY != 0 { "snapshot.metadata_dropped" } else { "snapshot.deleted" };
    ctx.emit(kind, &dom, Some(&snap));
    ctx.check_current(&dom).await;
    Ok(ok())
}

/// `snapshot_xml` with `flags::snapshot_xml` bits (SECURE needs a read-write channel).
#[utoipa::path(get, path = "/v1/domains/{dom}/snapshots/{snap}/xml", tag = "snapshot", operation_id = "snapshot_xml",
    params(("dom" = String, Path, description = "domain name"), ("snap" = String, Path, description = "snapshot name"), FlagsQuery, Headers),
    responses((status = 200, description = "the snapshot XML", body = XmlResponse), BaseErrors, HostErrors))]
pub async fn xml(ctx: Ctx, P((dom, snap)): P<(String, String)>, Q(q): Q<FlagsQuery>) -> ApiResult<Json<XmlResponse>> {
    ctx.run(move |c| c.snapshot_xml(&dom, &snap, q.flags)).await.map(|xml| Json(XmlResponse { xml }))
}

/// `snapshot_list` of a snapshot's children (bit 0 = DESCENDANTS); paged and conditional (see
/// [`crate::cache`] and [`crate::paging`]).
#[utoipa::path(get, path = "/v1/domains/{dom}/snapshots/{snap}/children", tag = "snapshot", operation_id = "snapshot_children",
    params(("dom" = String, Path, description = "domain name"), ("snap" = String, Path, description = "snapshot name"), FlagsQuery, PageQuery, Conditional, Headers),
    responses((status = 200, description = "the children (or descendants; one page of them with `limit` or `page_token`)",
               body = Vec<SnapshotInfo>, headers(("ETag" = String, description = "`\"g<generation>-<variant>\"`: changes whenever the answer may (see docs/api.md, Conditional reads)"),
                 ("X-Next-Page-Token" = String, description = "the `page_token` of the next page; absent on the last page"),
                 ("Link" = String, description = "`<this path and query with page_token=…>; rel=\"next\"`; absent on the last page"))),
              (status = 304, description = "Not modified: the `If-None-Match` ETag is current; no body", headers(("ETag" = String, description = "`\"g<generation>-<variant>\"`: changes whenever the answer may (see docs/api.md, Conditional reads)"))),
              BaseErrors, HostErrors))]
pub async fn children(
    ctx: Ctx,
    uri: Uri,
    headers: HeaderMap,
    P((dom, snap)): P<(String, String)>,
    Q(q): Q<FlagsQuery>,
    Q(pq): Q<PageQuery>,
) -> ApiResult<Response> {
    let page = pq.check()?;
    let variant = cache::variant(&["snapshot_children", &snap, &q.flags.to_string(), &page.variant()]);
    let d = dom.clone();
    let answer = cache::read(&ctx, &headers, dom, variant, move |c, g| {
        let v = c.snapshot_list_children(&d, &snap, q.flags)?;
        let (v, next) = page.cut(v, |s| s.name.clone(), g)?;
        cache::json(&v, next)
    })
    .await?;
    Ok(answer.respond(uri.path(), uri.query()))
}

/// `snapshot_revert` with `flags::snapshot_revert` bits.
#[utoipa::path(post, path = "/v1/domains/{dom}/snapshots/{snap}/revert", tag = "snapshot", operation_id = "snapshot_revert",
    request_body = FlagsRequest, params(("dom" = String, Path, description = "domain name"), ("snap" = String, Path, description = "snapshot name"), Headers),
    responses((status = 200, description = "reverted: an empty object", body = Object), BaseErrors, HostErrors, BodyErrors))]
pub async fn revert(
    ctx: Ctx,
    P((dom, snap)): P<(String, String)>,
    J(req): J<FlagsRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let (d, s) = (dom.clone(), snap.clone());
    let revert = crate::libvirt::LifecycleEvent::RevertedTo(0);
    ctx.run_lifecycle(&dom, revert, move |c| c.snapshot_revert(&d, &s, req.flags)).await?;
    ctx.emit("snapshot.reverted", &dom, Some(&snap));
    ctx.check_current(&dom).await;
    Ok(ok())
}

/// `snapshot_current`: the current snapshot or null; conditional (see [`crate::cache`]).
#[utoipa::path(get, path = "/v1/domains/{dom}/current-snapshot", tag = "snapshot", operation_id = "snapshot_current",
    params(("dom" = String, Path, description = "domain name"), Conditional, Headers),
    responses((status = 200, description = "the current snapshot or null", body = CurrentResponse, headers(("ETag" = String, description = "`\"g<generation>-<variant>\"`: changes whenever the answer may (see docs/api.md, Conditional reads)"))),
              (status = 304, description = "Not modified: the `If-None-Match` ETag is current; no body", headers(("ETag" = String, description = "`\"g<generation>-<variant>\"`: changes whenever the answer may (see docs/api.md, Conditional reads)"))),
              BaseErrors, HostErrors))]
pub async fn current(ctx: Ctx, uri: Uri, headers: HeaderMap, P(dom): P<String>) -> ApiResult<Response> {
    let variant = cache::variant(&["snapshot_current"]);
    let d = dom.clone();
    let answer = cache::read(&ctx, &headers, dom, variant, move |c, _| {
        cache::json(&CurrentResponse { current: c.snapshot_current(&d)? }, None)
    })
    .await?;
    Ok(answer.respond(uri.path(), uri.query()))
}

/// The whole hierarchy: SECURE XML, parents first, current marker (read-write channel only).
/// Streamed: the JSON is written as the snapshots are serialised, never held whole (the bytes are
/// those of one `serde_json` serialisation of [`HierarchyJson`]; a test compares them).
#[utoipa::path(get, path = "/v1/domains/{dom}/snapshot-export", tag = "snapshot", operation_id = "snapshot_export",
    params(("dom" = String, Path, description = "domain name"), Headers),
    responses((status = 200, description = "the whole hierarchy", body = HierarchyJson), BaseErrors, HostErrors))]
pub async fn export(ctx: Ctx, P(dom): P<String>) -> ApiResult<Response> {
    let h = ctx.run(move |c| c.snapshot_export_hierarchy(&dom)).await.map(HierarchyJson::from)?;
    let mut resp = Response::new(axum::body::Body::from_stream(crate::cache::stream_hierarchy(h)));
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// `snapshot_import`: redefines a whole hierarchy all or nothing (`flags` DRY_RUN = 1 checks only).
/// With `?async=true` it runs as a task and answers 202 at once.
#[utoipa::path(post, path = "/v1/domains/{dom}/snapshot-import", tag = "snapshot", operation_id = "snapshot_import",
    request_body = ImportRequest, params(("dom" = String, Path, description = "domain name"), AsyncQuery, Headers),
    responses((status = 200, description = "imported (or checked, with DRY_RUN): an empty object", body = Object),
              (status = 202, description = "with `async=true`: the task, also at `Location`", body = TaskJson,
               headers(("Location" = String, description = "`/v1/tasks/{id}`"))),
              BaseErrors, HostErrors, BodyErrors))]
pub async fn import(ctx: Ctx, P(dom): P<String>, Q(q): Q<AsyncQuery>, J(req): J<ImportRequest>) -> ApiResult<Response> {
    let dry = req.flags & snapshot_import::DRY_RUN != 0;
    let count = req.xmls.len() as u64;
    if let Some(id) = req.migration.clone().filter(|_| !dry) {
        // Tracked: `running` is recorded before the transaction and the outcome after it, all
        // on the blocking pool, so a client that disconnects cannot leave the record behind.
        let (d, st) = (dom.clone(), std::sync::Arc::clone(&ctx.state));
        let delay = st.fault_import_delay;
        st.imports.begin(&id)?;
        let result = ctx
            .run(move |c| {
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                let result = c.snapshot_import(&d, &req.xmls, req.current.as_deref(), req.flags);
                st.imports.end(&id, result.is_ok());
                result
            })
            .await;
        result?;
        ctx.emit("snapshot.imported", &dom, None);
        ctx.check_current(&dom).await;
        return Ok(ok().into_response());
    }
    if !q.run_async {
        let d = dom.clone();
        ctx.run(move |c| c.snapshot_import(&d, &req.xmls, req.current.as_deref(), req.flags)).await?;
        if !dry {
            ctx.emit("snapshot.imported", &dom, None);
            ctx.check_current(&dom).await;
        }
        return Ok(ok().into_response());
    }
    let st = &ctx.state;
    let task = st.tasks.start("snapshot_import", &["import"], &st.events, &ctx.uri, Some(&dom));
    let (id, bg) = (task.id, ctx.clone());
    crate::runtime::spawn(async move {
        let st = &bg.state;
        st.tasks.update(id, &st.events, &bg.uri, Some(&dom), |t| {
            t.total = count;
            t.steps[0].state = "running".into();
        });
        let d = dom.clone();
        let result = bg.run(move |c| c.snapshot_import(&d, &req.xmls, req.current.as_deref(), req.flags)).await;
        if result.is_ok() && !dry {
            bg.emit("snapshot.imported", &dom, None);
            bg.check_current(&dom).await;
        }
        st.tasks.update(id, &st.events, &bg.uri, Some(&dom), |t| match result {
            Ok(()) => {
                t.done = count;
                t.steps[0].state = "done".into();
                t.state = TaskState::Succeeded;
                t.result = Some(serde_json::json!({ "snapshots": count, "dry_run": dry }));
            }
            Err(e) => {
                t.steps[0].state = "failed".into();
                t.state = TaskState::Failed;
                t.error = Some(e.body);
            }
        });
    });
    Ok(accepted(task))
}

/// 202 with the task and its `Location`.
pub fn accepted(task: TaskJson) -> Response {
    let location =
        HeaderValue::from_str(&format!("/v1/tasks/{}", task.id)).unwrap_or(HeaderValue::from_static("/v1/tasks"));
    let mut headers = HeaderMap::new();
    headers.insert(LOCATION, location);
    (StatusCode::ACCEPTED, headers, Json(task)).into_response()
}
