//! Domain routes and the connection-level ones (`/v1/info`). Each route is one host API
//! operation: it runs on the request's [`Connection`](virtplug_host::Connection), so the generic
//! checks run here exactly as in-process.

use axum::{
    Json,
    http::{StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;
use virtplug_wire::{DefineRequest, DomainInfo, FlagsRequest, PluginInfoJson, XmlResponse};

use crate::{
    error::ApiResult,
    extract::{J, P, Q},
    openapi::{BaseErrors, BodyErrors, Headers, HostErrors},
    paging::PageQuery,
    state::Ctx,
};

/// `?flags=N`: the operation's flag bits.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlagsQuery {
    /// The operation's flag bits (libvirt's values).
    #[serde(default)]
    pub flags: u32,
}

/// The serving plugin's self-description (its masks drive a remote client's local checks).
#[utoipa::path(get, path = "/v1/info", tag = "connection", operation_id = "connection_info", params(Headers),
    responses((status = 200, description = "the plugin's self-description", body = PluginInfoJson), BaseErrors, HostErrors))]
pub async fn info(ctx: Ctx) -> ApiResult<Json<PluginInfoJson>> {
    ctx.run(|c| Ok(PluginInfoJson::from(c.plugin_info()))).await.map(Json)
}

/// `domain_list`; paged (see [`crate::paging`]).
#[utoipa::path(get, path = "/v1/domains", tag = "domain", operation_id = "domain_list", params(PageQuery, Headers),
    responses((status = 200, description = "every domain (one page of them with `limit` or `page_token`)", body = Vec<DomainInfo>,
               headers(("X-Next-Page-Token" = String, description = "the `page_token` of the next page; absent on the last page"),
                       ("Link" = String, description = "`<this path and query with page_token=…>; rel=\"next\"`; absent on the last page"))),
              BaseErrors, HostErrors))]
pub async fn list(ctx: Ctx, uri: Uri, Q(pq): Q<PageQuery>) -> ApiResult<Response> {
    let page = pq.check()?;
    let all = ctx.run(|c| c.domain_list()).await?;
    let (v, next) = page.cut(all, |d| d.name.clone(), None)?;
    let mut resp = Json(v).into_response();
    if let Some(next) = next {
        crate::paging::next_headers(resp.headers_mut(), uri.path(), uri.query(), &next);
    }
    Ok(resp)
}

/// `domain_lookup` by name, UUID or id.
#[utoipa::path(get, path = "/v1/domains/{dom}", tag = "domain", operation_id = "domain_lookup",
    params(("dom" = String, Path, description = "domain name, UUID or id"), Headers),
    responses((status = 200, description = "the domain", body = DomainInfo), BaseErrors, HostErrors))]
pub async fn lookup(ctx: Ctx, P(dom): P<String>) -> ApiResult<Json<DomainInfo>> {
    ctx.run(move |c| c.domain_lookup(&dom)).await.map(Json)
}

/// `domain_define` from domain XML.
#[utoipa::path(post, path = "/v1/domains", tag = "domain", operation_id = "domain_define", request_body = DefineRequest,
    params(Headers),
    responses((status = 201, description = "the defined domain", body = DomainInfo), BaseErrors, HostErrors, BodyErrors))]
pub async fn define(ctx: Ctx, J(req): J<DefineRequest>) -> ApiResult<(StatusCode, Json<DomainInfo>)> {
    let (d, what) = ctx.run(move |c| crate::libvirt::define(c, &req.xml)).await?;
    ctx.emit("domain.defined", &d.name, None);
    let handle = crate::libvirt::domain_handle(&d);
    crate::libvirt::publish(&ctx.state, &ctx.uri, handle, what, d.state);
    Ok((StatusCode::CREATED, Json(d)))
}

/// `domain_undefine` with `flags::domain_undefine` bits.
#[utoipa::path(delete, path = "/v1/domains/{dom}", tag = "domain", operation_id = "domain_undefine",
    params(("dom" = String, Path, description = "domain name"), FlagsQuery, Headers),
    responses((status = 200, description = "undefined: an empty object", body = Object), BaseErrors, HostErrors))]
pub async fn undefine(ctx: Ctx, P(dom): P<String>, Q(q): Q<FlagsQuery>) -> ApiResult<Json<serde_json::Value>> {
    let d = dom.clone();
    let gone =
        ctx.run(move |c| c.domain_lookup(&d).and_then(|info| c.domain_undefine(&d, q.flags).map(|()| info))).await?;
    ctx.emit("domain.undefined", &dom, None);
    let handle = crate::libvirt::domain_handle(&gone);
    crate::libvirt::publish(&ctx.state, &ctx.uri, handle, crate::libvirt::LifecycleEvent::Undefined, gone.state);
    Ok(Json(serde_json::json!({})))
}

/// A lifecycle action: `start`, `shutdown`, `destroy`, `suspend` or `resume`.
#[utoipa::path(post, path = "/v1/domains/{dom}/{action}", tag = "domain", operation_id = "domain_action",
    params(("dom" = String, Path, description = "domain name"),
           ("action" = String, Path, description = "start, shutdown, destroy, suspend or resume (any other: 404)"),
           Headers),
    request_body = FlagsRequest,
    responses((status = 200, description = "done: an empty object", body = Object), BaseErrors, HostErrors, BodyErrors))]
pub async fn action(ctx: Ctx, P((dom, action)): P<(String, String)>) -> ApiResult<Json<serde_json::Value>> {
    let d = dom.clone();
    let kind = match action.as_str() {
        "start" => "domain.started",
        "shutdown" | "destroy" => "domain.stopped",
        "suspend" => "domain.suspended",
        "resume" => "domain.resumed",
        _ => {
            return Err(crate::error::ApiError::http(
                StatusCode::NOT_FOUND,
                virtplug_host::codes::NO_SUPPORT,
                format!("POST /v1/domains/{{dom}}/{action}"),
            ));
        }
    };
    use crate::libvirt::LifecycleEvent as L;
    let what = match action.as_str() {
        "start" => L::Started,
        "shutdown" => L::Shutdown,
        "destroy" => L::Destroyed,
        "suspend" => L::Suspended,
        _ => L::Resumed,
    };
    ctx.run_lifecycle(&dom, what, move |c| match action.as_str() {
        "start" => c.domain_start(&d),
        "shutdown" => c.domain_shutdown(&d),
        "destroy" => c.domain_destroy(&d),
        "suspend" => c.domain_suspend(&d),
        _ => c.domain_resume(&d),
    })
    .await?;
    ctx.emit(kind, &dom, None);
    Ok(Json(serde_json::json!({})))
}

/// `domain_xml` with `flags::domain_xml` bits (SECURE needs a read-write channel).
#[utoipa::path(get, path = "/v1/domains/{dom}/xml", tag = "domain", operation_id = "domain_xml",
    params(("dom" = String, Path, description = "domain name"), FlagsQuery, Headers),
    responses((status = 200, description = "the domain XML", body = XmlResponse), BaseErrors, HostErrors))]
pub async fn xml(ctx: Ctx, P(dom): P<String>, Q(q): Q<FlagsQuery>) -> ApiResult<Json<XmlResponse>> {
    ctx.run(move |c| c.domain_xml(&dom, q.flags)).await.map(|xml| Json(XmlResponse { xml }))
}
