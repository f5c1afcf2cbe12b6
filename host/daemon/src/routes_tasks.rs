//! Tasks, supervised migrations and the event stream.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json,
    http::{HeaderMap, StatusCode},
    response::{
        Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use virtplug_host::{
    codes,
    migrate::{self, STEPS},
};
use virtplug_wire::{ErrorBody, EventJson, ImportStatusJson, MigrationRequest, TaskJson};

use crate::{
    error::{ApiError, ApiResult},
    events::EventLog,
    extract::{J, P, Q},
    migrations,
    openapi::{BaseErrors, BodyErrors, Headers, HostErrors},
    paging::PageQuery,
    routes_snapshot::accepted,
    state::Ctx,
    tasks::{self, TaskReporter},
};

/// Every task of this daemon run, oldest first; paged (see [`crate::paging`]).
#[utoipa::path(get, path = "/v1/tasks", tag = "task", operation_id = "task_list", params(PageQuery, Headers),
    responses((status = 200, description = "every task of this run (one page of them with `limit` or `page_token`)", body = Vec<TaskJson>,
               headers(("X-Next-Page-Token" = String, description = "the `page_token` of the next page; absent on the last page"),
                       ("Link" = String, description = "`<this path and query with page_token=…>; rel=\"next\"`; absent on the last page"))),
              BaseErrors))]
pub async fn list(ctx: Ctx, uri: axum::http::Uri, Q(pq): Q<PageQuery>) -> ApiResult<Response> {
    let page = pq.check()?;
    let (v, next) = page.cut(ctx.state.tasks.all(), |t| t.id.to_string(), None)?;
    let mut resp = axum::response::IntoResponse::into_response(Json(v));
    if let Some(next) = next {
        crate::paging::next_headers(resp.headers_mut(), uri.path(), uri.query(), &next);
    }
    Ok(resp)
}

/// One task: state, steps, progress, result or error.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "task", operation_id = "task_get",
    params(("id" = u64, Path, description = "task id"), Headers),
    responses((status = 200, description = "the task", body = TaskJson),
              (status = 404, description = "`VIR_ERR_INVALID_ARG` (8): no task with this id", body = ErrorBody),
              BaseErrors))]
pub async fn get(ctx: Ctx, P(id): P<u64>) -> ApiResult<Json<TaskJson>> {
    ctx.state
        .tasks
        .get(id)
        .map(Json)
        .ok_or_else(|| ApiError::http(StatusCode::NOT_FOUND, codes::INVALID_ARG, format!("no task with id {id}")))
}

/// Starts a supervised migration of `domain`'s snapshot hierarchy from this daemon's URI to
/// `to`: export, dry-run import, import in one transaction, verify, drop the source metadata.
/// Answers 202 with the task; the task goes on if the client disconnects.
#[utoipa::path(post, path = "/v1/migrations", tag = "task", operation_id = "migration_start",
    request_body = MigrationRequest, params(Headers),
    responses((status = 202, description = "the migration task, also at `Location`", body = TaskJson,
               headers(("Location" = String, description = "`/v1/tasks/{id}`"))),
              BaseErrors, HostErrors, BodyErrors))]
pub async fn migrate(ctx: Ctx, J(req): J<MigrationRequest>) -> ApiResult<Response> {
    if ctx.read_only {
        return Err(virtplug_host::HostError::ReadOnly { function: "virDomainSnapshotDelete" }.into());
    }
    // A destination opened here (no transport) is a URI this daemon serves, like any other.
    if virtplug_host::remote::parse_uri(&req.to, false).is_none() {
        ctx.state.check_served(&req.to)?;
    }
    let st = Arc::clone(&ctx.state);
    let journal_id = migrate::new_id();
    // The source is held before the answer: a second migration, or any change of the domain,
    // is refused at once while this one runs.
    let source = {
        let (st, from, to, dom, id) =
            (Arc::clone(&st), ctx.uri.clone(), req.to.clone(), req.domain.clone(), journal_id.clone());
        crate::runtime::spawn_blocking(move || migrations::open_source(&st, &from, &to, &dom, &id, req.dry_run))
            .await
            .map_err(|e| ApiError::new(codes::INTERNAL_ERROR, format!("request handler failed: {e}")))??
    };
    let task = st.tasks.start("migrate_snapshots", STEPS, &st.events, &ctx.uri, Some(&req.domain));
    let mut rep = TaskReporter {
        tasks: Arc::clone(&st.tasks),
        events: Arc::clone(&st.events),
        id: task.id,
        uri: ctx.uri.clone(),
        domain: req.domain.clone(),
        journal_dir: tasks::journal_dir(&st.state_dir),
        journal_id,
    };
    let from = ctx.uri.clone();
    crate::runtime::spawn_blocking(move || {
        let succeeded = migrations::run_migration(&st, source, &req.to, &req.domain, req.dry_run, &mut rep);
        // Only what happened: a failed or dry-run migration left the source's metadata in place.
        if succeeded && !req.dry_run {
            st.events.emit("snapshot.metadata_dropped", &from, Some(&req.domain), None, None);
        }
    });
    Ok(accepted(task))
}

/// What this daemon knows of the import tracked under migration `id` (`unknown` when nothing).
#[utoipa::path(get, path = "/v1/imports/{id}", tag = "task", operation_id = "import_status",
    params(("id" = String, Path, description = "migration id"), Headers),
    responses((status = 200, description = "the import's state", body = ImportStatusJson), BaseErrors))]
pub async fn import_status(ctx: Ctx, P(id): P<String>) -> ApiResult<Json<ImportStatusJson>> {
    let state = ctx.state.imports.get(&id);
    Ok(Json(ImportStatusJson { migration: id, state }))
}

/// Settles the import tracked under migration `id`, for a supervisor about to finish or roll
/// back: `running` (still in flight: ask again), `committed`, `failed`, `interrupted`, or
/// `aborted` (it never started here, and an import under this id is refused from now on).
#[utoipa::path(post, path = "/v1/imports/{id}/settle", tag = "task", operation_id = "import_settle",
    params(("id" = String, Path, description = "migration id"), Headers),
    responses((status = 200, description = "the import's settled state", body = ImportStatusJson), BaseErrors))]
pub async fn settle_import(ctx: Ctx, P(id): P<String>) -> ApiResult<Json<ImportStatusJson>> {
    if ctx.read_only {
        return Err(virtplug_host::HostError::ReadOnly { function: "virDomainSnapshotCreateXML" }.into());
    }
    let st = Arc::clone(&ctx.state);
    let key = id.clone();
    let state = crate::runtime::spawn_blocking(move || st.imports.settle(&key))
        .await
        .map_err(|e| ApiError::new(codes::INTERNAL_ERROR, format!("request handler failed: {e}")))??;
    Ok(Json(ImportStatusJson { migration: id, state }))
}

/// `?since=N`: resume after sequence number N (the `Last-Event-ID` header does the same).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SinceQuery {
    /// The last sequence number seen.
    #[param(nullable = false)]
    pub since: Option<u64>,
}

fn sse_event(e: &EventJson) -> Event {
    Event::default().id(e.seq.to_string()).event(e.kind.clone()).data(serde_json::to_string(e).unwrap_or_default())
}

fn reset(log: &EventLog) -> EventJson {
    EventJson {
        seq: log.last_seq(),
        kind: "reset".into(),
        uri: String::new(),
        domain: None,
        snapshot: None,
        task: None,
        time: 0,
    }
}

/// Server-sent events: domain, snapshot and task events, each with its sequence number as the
/// SSE id. A client that reconnects with `Last-Event-ID` (or `?since=`) first gets what it
/// missed; one further behind than the daemon keeps gets a `reset` event.
#[utoipa::path(get, path = "/v1/events", tag = "event", operation_id = "event_stream",
    params(SinceQuery,
           ("Last-Event-ID" = Option<String>, Header, nullable = false, description = "resume after this sequence number (decimal; wins over `since`)"),
           Headers),
    responses((status = 200, content_type = "text/event-stream", body = String,
               description = "Server-sent events, never ending: each has `id: <seq>`, `event: <kind>` and `data: <one EventJson as JSON>` (schema `EventJson`); a comment line every 15 s keeps the connection alive."),
              BaseErrors))]
pub async fn events(
    ctx: Ctx,
    headers: HeaderMap,
    Q(q): Q<SinceQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let log = Arc::clone(&ctx.state.events);
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let since = header.or(q.since).unwrap_or_else(|| log.last_seq());
    let rx = log.subscribe();
    let (first, cursor) = match log.since(since) {
        Some(missed) => {
            let cursor = missed.last().map_or(since, |e| e.seq);
            (missed, cursor)
        }
        None => {
            let r = reset(&log);
            let cursor = r.seq;
            (vec![r], cursor)
        }
    };
    let replay = stream::iter(first.into_iter().map(|e| Ok(sse_event(&e))));
    let state = (rx, cursor, log, std::collections::VecDeque::<EventJson>::new());
    let live = stream::unfold(state, |(mut rx, mut cursor, log, mut pending)| async move {
        loop {
            if let Some(e) = pending.pop_front() {
                cursor = cursor.max(e.seq);
                return Some((Ok(sse_event(&e)), (rx, cursor, log, pending)));
            }
            match rx.recv().await {
                Ok(e) if e.seq <= cursor => continue,
                Ok(e) => pending.push_back(e),
                // Fell behind the live channel: catch up from the ring, or say reset.
                Err(RecvError::Lagged(_)) => pending.extend(log.since(cursor).unwrap_or_else(|| vec![reset(&log)])),
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream::StreamExt::chain(replay, live)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
