//! The OpenAPI document, generated from the route and type annotations. It is served at
//! `/openapi.json` and checked in beside the wire types as `host/wire/openapi.json` (a test compares the two;
//! `.ci/run` validates it with `openapi-spec-validator` and drives every operation through a client generated
//! from it with `openapi-python-client`).
//!
//! Conventions every route annotation follows, so the contract stays valid and stable:
//! - operationId: `<object>_<verb>`, the object being what the route acts on (`connection`, `domain`,
//!   `snapshot`, `task`, `migration`, `import`, `event`, `daemon`) and the verb the host API's (`domain_list`,
//!   `snapshot_children`, `snapshot_export`, `task_get`, `migration_start`, `import_settle`, `event_stream`,
//!   `daemon_health`). A generated client names its functions after them: never rename one.
//! - Query parameters come from `IntoParams` structs with `parameter_in = Query`; path parameters are
//!   tuples naming `Path`.
//! - Every operation that builds a [`crate::state::Ctx`] lists [`Headers`] (`virtplug-uri`,
//!   `virtplug-read-only`) and [`BaseErrors`]; one that runs a host operation adds [`HostErrors`]; one that
//!   reads a JSON body adds [`BodyErrors`]. The statuses are those of [`crate::error::status_for`] (the one
//!   mapping from libvirt codes) and of the HTTP-layer rejections in `error.rs` and `extract.rs`. The operator
//!   routes (`observe_*.rs`) read no header and list [`ProbeErrors`].
//! - `X-Request-Id` (every operation and answer) and `Idempotency-Key` (every POST and PUT, with its 409 and
//!   422) are added by one modifier (`SharedHeaders`), never written in a route's annotation.
//! - A response in a content type the client generator does not know (`/metrics`'s OpenMetrics text) is
//!   mapped for it in `tests/http-client/client.yaml`, never misdeclared here.

use utoipa::{
    IntoParams, IntoResponses, Modify, OpenApi,
    openapi::{
        ContentBuilder, Ref, RefOr, Required, ResponseBuilder,
        header::HeaderBuilder,
        path::{Operation, Parameter, ParameterBuilder, ParameterIn},
        response::Response,
        schema::{ObjectBuilder, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use virtplug_wire::{self as wire, ErrorBody};

use crate::{routes_domain, routes_snapshot, routes_store, routes_tasks};

/// The request headers every operation reads (through [`crate::state::Ctx`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header, rename_all = "kebab-case")]
pub struct Headers {
    /// The driver URI the request is for: the daemon's default URI when absent; any URI the daemon does not
    /// serve (its default and those given with `--allow-uri`) is refused with 403 before anything is opened.
    #[param(nullable = false)]
    pub virtplug_uri: Option<String>,
    /// `1` asks for a read-only connection on a read-write channel (writes then answer 403); any other value
    /// is ignored.
    #[param(nullable = false)]
    pub virtplug_read_only: Option<String>,
}

/// The conditional-read header of the cached snapshot reads (list, children, lookup, current).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct Conditional {
    /// The `ETag` of an answer the client holds (several, comma-separated, or `*`): 304 with no body when
    /// the answer is still that one.
    #[param(rename = "If-None-Match", nullable = false)]
    pub if_none_match: Option<String>,
}

/// The errors every operation can answer: the request context, the token and the body guard.
#[derive(Debug, IntoResponses)]
pub enum BaseErrors {
    /// `VIR_ERR_INVALID_ARG` (8): a malformed path parameter, query or JSON body, or a `virtplug-uri` header
    /// that is not text; `VIR_ERR_NO_CONNECT` (5): no URI given and no default configured; and every other
    /// code mapped to 400.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `VIR_ERR_AUTH_FAILED` (45): over TCP, the bearer token is missing or wrong (`WWW-Authenticate:
    /// Bearer`). Never on the unix sockets.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
    Unauthorized(ErrorBody),
    /// `VIR_ERR_OPERATION_DENIED` (29): the `virtplug-uri` is not served by this daemon, or a read-only
    /// principal (read-only socket or token, or `virtplug-read-only: 1`) asked for a change.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// `VIR_ERR_INVALID_ARG` (8): the body is larger than the route accepts (a route without a body
    /// accepts none); refused before it is read.
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// `VIR_ERR_INTERNAL_ERROR` (1) and every code the mapping does not name.
    #[response(status = 500)]
    Internal(ErrorBody),
}

/// The errors of the operator routes (`/healthz`, `/readyz`, `/metrics`): they need no `virtplug-uri` and
/// run nothing of the host API, so only the listener's token check and the body guard can refuse them.
#[derive(Debug, IntoResponses)]
pub enum ProbeErrors {
    /// `VIR_ERR_AUTH_FAILED` (45): over TCP, the bearer token is missing or wrong (`WWW-Authenticate:
    /// Bearer`). Never on the unix sockets.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
    Unauthorized(ErrorBody),
    /// `VIR_ERR_INVALID_ARG` (8): the request carries a body (these routes accept none).
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
}

/// The errors of an operation that runs the host API: whatever libvirt code it fails with, with its
/// status from the one mapping (`error::status_for`).
#[derive(Debug, IntoResponses)]
pub enum HostErrors {
    /// `VIR_ERR_NO_DOMAIN` (42) or `VIR_ERR_NO_DOMAIN_SNAPSHOT` (72); `VIR_ERR_NO_SUPPORT` (3) for an unknown
    /// domain action.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `VIR_ERR_OPERATION_INVALID` (55), `VIR_ERR_OPERATION_FAILED` (9), `VIR_ERR_SNAPSHOT_REVERT_RISKY` (77)
    /// or `VIR_ERR_OPERATION_TIMEOUT` (68, another job holds the domain: retry later).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// `VIR_ERR_NO_SUPPORT` (3) or `VIR_ERR_OPERATION_UNSUPPORTED` (84): the serving plugin does not do this.
    #[response(status = 501)]
    NotImplemented(ErrorBody),
    /// `VIR_ERR_AUTH_FAILED` (45) from a backend: the hypervisor refused the daemon's credentials (no
    /// `WWW-Authenticate`: the client's token is not in question).
    #[response(status = 502)]
    BadGateway(ErrorBody),
}

/// The errors of an operation that reads a JSON body.
#[derive(Debug, IntoResponses)]
pub enum BodyErrors {
    /// `VIR_ERR_INVALID_ARG` (8): the body stalled (nothing received for the body timeout).
    #[response(status = 408)]
    RequestTimeout(ErrorBody),
    /// `VIR_ERR_INVALID_ARG` (8): the body is not declared `Content-Type: application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// `VIR_ERR_INVALID_ARG` (8): the body is JSON but not of the request's shape (a missing field, a
    /// wrong type).
    #[response(status = 422)]
    UnprocessableEntity(ErrorBody),
}

/// The bearer scheme of the TCP listener.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "Over TCP (TLS, `--listen`): a token from the daemon's tokens file (`rw TOKEN` or `ro TOKEN` \
                 lines) as `Authorization: Bearer TOKEN`; a missing or wrong one answers 401. The unix sockets \
                 need none: the socket's file permissions decide access (the `-ro` socket is read-only).",
            ))
            .build();
        doc.components.get_or_insert_with(Default::default).add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The headers every operation shares, added to each after generation so that none can miss them:
/// `X-Request-Id` (an optional request header on every operation, a response header on every
/// response, see `observe.rs`) and, on every POST and PUT, `Idempotency-Key` with the answers it adds
/// (see `idempotency.rs`).
struct SharedHeaders;

impl SharedHeaders {
    fn request_id() -> Parameter {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(crate::observe::MAX_REQUEST_ID))
            .pattern(Some("^[!-~]+$"));
        ParameterBuilder::new()
            .name("X-Request-Id")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The request's id, echoed in `X-Request-Id`, error bodies, task records and log lines: 1 to 128 \
                 visible ASCII characters; any other value (or none) is replaced by a fresh UUID v4.",
            ))
            .schema(Some(schema))
            .build()
    }

    fn idempotency_key() -> Parameter {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(crate::idempotency::MAX_KEY))
            .pattern(Some("^[!-~]+$"));
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retry safe: a request repeated with the same key (same principal, method, path, query, \
                 `virtplug-*` headers and body) within 24 h is not run again; it gets the first answer (status, \
                 body, `Location`, `ETag`, the first `X-Request-Id`) with `Idempotent-Replayed: true`. 1 to 255 \
                 visible ASCII characters (else 400). See docs/api.md, \"Idempotency\".",
            ))
            .schema(Some(schema))
            .build()
    }

    fn error(description: &str) -> RefOr<Response> {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        RefOr::T(ResponseBuilder::new().description(description).content("application/json", content).build())
    }

    /// Adds `sentence` to the description of `status`'s answer, or adds that answer.
    fn answer(op: &mut Operation, status: &str, sentence: &str) {
        match op.responses.responses.get_mut(status) {
            Some(RefOr::T(r)) => {
                r.description.push(' ');
                r.description.push_str(sentence);
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                op.responses.responses.insert(status.to_owned(), Self::error(sentence));
            }
        }
    }
}

impl Modify for SharedHeaders {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let id_header = || {
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("The request's id: the client's when acceptable, a fresh UUID v4 otherwise."))
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let keyed = [&mut item.post, &mut item.put];
            for op in keyed.into_iter().flatten() {
                op.parameters.get_or_insert_with(Vec::new).push(Self::idempotency_key());
                Self::answer(
                    op,
                    "400",
                    "`VIR_ERR_INVALID_ARG` (8) also for an `Idempotency-Key` that is not 1 to 255 visible ASCII characters.",
                );
                Self::answer(
                    op,
                    "409",
                    "`VIR_ERR_OPERATION_INVALID` (55): a request with this `Idempotency-Key` is in progress (retry later).",
                );
                Self::answer(
                    op,
                    "422",
                    "`VIR_ERR_INVALID_ARG` (8): this `Idempotency-Key` was already used with a different request.",
                );
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(r) = response {
                        let replayed = HeaderBuilder::new()
                            .schema(ObjectBuilder::new().schema_type(Type::String))
                            .description(Some("`true` on an answer replayed for an `Idempotency-Key`."))
                            .build();
                        r.headers.insert("Idempotent-Replayed".to_owned(), replayed);
                    }
                }
            }
            let all = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete];
            for op in all.into_iter().flatten() {
                op.parameters.get_or_insert_with(Vec::new).push(Self::request_id());
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(r) = response {
                        r.headers.insert("X-Request-Id".to_owned(), id_header());
                    }
                }
            }
        }
    }
}

/// virtplugd's API.
#[derive(OpenApi)]
#[openapi(
    info(title = "virtplugd", description = "virtplug's management API: one route per host API operation, libvirt's error codes and texts, events and tasks. Every request may name its driver URI in the `virtplug-uri` header (one of the URIs the daemon serves: its default URI and those given with `--allow-uri`) and ask for read-only access with `virtplug-read-only: 1`. Served on a read-write and a read-only unix socket (no authentication: file permissions decide) and, when configured, on TCP with TLS and bearer tokens. See docs/api.md."),
    servers(
        (url = "http://localhost", description = "The unix sockets (`--socket PATH`, read-write, and `PATH-ro`, read-only): an HTTP client that connects over a unix socket; the host name is ignored."),
        (url = "https://{host}:{port}", description = "TCP with TLS (`--listen ADDR:PORT --tls-cert --tls-key --tokens`): bearer token required.",
            variables(
                ("host" = (default = "localhost", description = "the daemon's host name (as in its certificate)")),
                ("port" = (default = "8443", description = "the port given with `--listen`")),
            )),
    ),
    security((), ("bearer" = [])),
    modifiers(&BearerAuth, &SharedHeaders),
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
        routes_store::store,
        routes_store::handover,
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
        wire::EventJson, wire::StoreJson, wire::HandoverRequest,
    )),
    tags(
        (name = "connection", description = "the serving plugin"),
        (name = "domain", description = "domain operations"),
        (name = "snapshot", description = "snapshot operations"),
        (name = "task", description = "long operations"),
        (name = "event", description = "the event stream"),
        (name = "observe", description = "health, readiness and metrics for operators"),
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
