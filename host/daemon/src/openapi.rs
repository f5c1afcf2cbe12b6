//! The OpenAPI document, generated from the route and type annotations. It is served at
//! `/openapi.json` and checked in beside the wire types as `host/wire/openapi.json` (a test compares the two).

use utoipa::OpenApi;
use virtplug_wire as wire;

use crate::{routes_domain, routes_snapshot, routes_tasks};

/// virtplugd's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "virtplugd", description = "virtplug's management API: one route per host API operation, libvirt's error codes and texts, events and tasks. Every request may name its driver URI in the `virtplug-uri` header (one of the URIs the daemon serves: its default URI and those given with `--allow-uri`) and ask for read-only access with `virtplug-read-only: 1`."),
    paths(
        routes_domain::info,
        routes_domain::list,
        routes_domain::lookup,
        routes_domain::define,
        routes_domain::undefine,
        routes_domain::action,
        routes_domain::xml,
        routes_snapshot::list,
        routes_snapshot::create,
        routes_snapshot::lookup,
        routes_snapshot::edit,
        routes_snapshot::delete,
        routes_snapshot::xml,
        routes_snapshot::children,
        routes_snapshot::revert,
        routes_snapshot::current,
        routes_snapshot::export,
        routes_snapshot::import,
        routes_tasks::list,
        routes_tasks::get,
        routes_tasks::migrate,
        routes_tasks::import_status,
        routes_tasks::settle_import,
        routes_tasks::events,
        crate::observe_probes::healthz,
        crate::observe_probes::readyz,
        crate::observe_metrics::handler,
    ),
    components(schemas(
        wire::ErrorBody, wire::PluginInfoJson, wire::CapsJson, wire::DomainInfo, wire::SnapshotInfo, wire::DefineRequest,
        wire::CreateRequest, wire::FlagsRequest, wire::NameResponse, wire::XmlResponse, wire::CurrentResponse,
        wire::HierarchyJson, wire::ImportRequest, wire::ImportStatusJson, wire::MigrationRequest, wire::TaskState, wire::TaskStep, wire::TaskJson,
        wire::EventJson,
    )),
    tags(
        (name = "connection", description = "the serving plugin"),
        (name = "domain", description = "domain operations"),
        (name = "snapshot", description = "snapshot operations"),
        (name = "task", description = "long operations"),
        (name = "event", description = "the event stream"),
    )
)]
pub struct ApiDoc;

/// The document as pretty JSON with a trailing newline (the checked-in form).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    // The version is the crate's, so the document changes only when the API does.
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
