//! Shared daemon state and the per-request context: which driver URI, and whether the caller may
//! change anything (decided by the socket or the token, lowered by the `virtplug-read-only`
//! header). Connections are opened once per (URI, read-only) and shared by every request.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{extract::FromRequestParts, http::request::Parts};
use virtplug_host::{Connection, HostError, Registry, codes};
use virtplug_wire as wire;

use crate::{
    error::{ApiError, ApiResult},
    events::EventLog,
    imports::Imports,
    tasks::Tasks,
};

/// What a channel (socket or token) allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Everything.
    ReadWrite,
    /// Lists and non-secure dumps only.
    ReadOnly,
}

/// Daemon-wide state.
#[derive(Debug)]
pub struct Shared {
    /// The plugin registry.
    pub registry: Registry,
    /// URI used when a request names none.
    pub default_uri: Option<String>,
    /// The driver URIs served (the default one and the allow-list); no other is ever opened.
    pub allowed_uris: Vec<String>,
    /// State directory (journals).
    pub state_dir: PathBuf,
    /// Open connections by (URI, read-only).
    conns: Mutex<HashMap<(String, bool), Arc<Connection>>>,
    /// Last known current snapshot per (URI, domain), to publish `snapshot.current_changed`.
    currents: Mutex<HashMap<(String, String), Option<String>>>,
    /// Events.
    pub events: Arc<EventLog>,
    /// Tasks.
    pub tasks: Arc<Tasks>,
    /// Imports tracked by migration id.
    pub imports: Imports,
    /// Fault injection for tests: tracked imports wait this long before the plugin transaction.
    pub fault_import_delay: Duration,
    /// Domain lifecycle changes, for libvirt clients' event callbacks.
    pub lifecycle: tokio::sync::broadcast::Sender<crate::libvirt::Lifecycle>,
    /// The next libvirt event callback id (unique daemon-wide, as libvirtd's).
    pub next_callback_id: std::sync::atomic::AtomicI32,
    /// Serialised snapshot read answers by (URI, domain, generation, variant).
    pub answers: crate::cache::AnswerCache,
}

/// The router's state.
pub type AppState = Arc<Shared>;

impl Shared {
    /// New state.
    pub fn new(registry: Registry, default_uri: Option<String>, allowed_uris: Vec<String>, state_dir: PathBuf) -> Self {
        let events = Arc::new(EventLog::durable(&state_dir).unwrap_or_else(|e| {
            tracing::error!(error = %e, "event numbers cannot be made durable: a client resuming from an earlier run may miss `reset`");
            EventLog::default()
        }));
        let tasks = Arc::new(Tasks::after(events.last_seq()));
        Self {
            imports: Imports::load(&state_dir),
            fault_import_delay: Duration::ZERO,
            registry,
            default_uri,
            allowed_uris,
            state_dir,
            conns: Mutex::default(),
            currents: Mutex::default(),
            events,
            tasks,
            lifecycle: tokio::sync::broadcast::channel(1024).0,
            next_callback_id: std::sync::atomic::AtomicI32::new(0),
            answers: crate::cache::AnswerCache::default(),
        }
    }

    /// The shared connection for `uri` (opened on first use).
    pub fn connection(&self, uri: &str, read_only: bool) -> Result<Arc<Connection>, HostError> {
        let key = (uri.to_owned(), read_only);
        if let Some(c) = self.conns.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(c);
        }
        let conn = Arc::new(Connection::open(&self.registry, uri, read_only)?);
        if let Ok(mut m) = self.conns.lock() {
            return Ok(Arc::clone(m.entry(key).or_insert(conn)));
        }
        Ok(conn)
    }

    /// Refuses a driver URI this daemon does not serve, before anything is opened: opening a
    /// URI can create state (`mock:///<any directory>`), so only the configured ones are.
    /// OPERATION_DENIED (29) as for any other forbidden operation; 403.
    pub fn check_served(&self, uri: &str) -> Result<(), ApiError> {
        if self.allowed_uris.iter().any(|u| u == uri) {
            return Ok(());
        }
        // The URI is the client's own text; keep the answer one short line.
        let shown: String = uri.chars().take(200).collect();
        Err(ApiError::new(codes::OPERATION_DENIED, format!("URI '{shown}' is not served by this daemon")))
    }

    /// Records `dom`'s current snapshot; returns true when it changed since last seen.
    pub fn current_changed(&self, uri: &str, dom: &str, current: Option<String>) -> bool {
        let Ok(mut m) = self.currents.lock() else { return false };
        let key = (uri.to_owned(), dom.to_owned());
        match m.insert(key, current.clone()) {
            Some(previous) => previous != current,
            None => true,
        }
    }
}

/// Per-request context.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The driver URI.
    pub uri: String,
    /// Whether the connection is read-only.
    pub read_only: bool,
    /// The state.
    pub state: AppState,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let access = parts.extensions.get::<Access>().copied().unwrap_or(Access::ReadOnly);
        let asked_ro = parts.headers.get(wire::READ_ONLY_HEADER).is_some_and(|v| v.as_bytes() == b"1");
        let uri = match parts.headers.get(wire::URI_HEADER) {
            Some(v) => v
                .to_str()
                .map_err(|_| ApiError::new(codes::INVALID_ARG, "the virtplug-uri header is not valid text"))?
                .to_owned(),
            None => state
                .default_uri
                .clone()
                .ok_or_else(|| ApiError::new(codes::NO_CONNECT, "(no URI given and no default URI configured)"))?,
        };
        state.check_served(&uri)?;
        Ok(Self { uri, read_only: access == Access::ReadOnly || asked_ro, state: Arc::clone(state) })
    }
}

impl Ctx {
    /// Runs `f` on this request's connection: right here on a connection thread (it serves
    /// only this request meanwhile), else on the blocking pool.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, HostError> + Send + 'static,
    ) -> ApiResult<T> {
        if crate::runtime::on_connection_thread() {
            let conn = self.state.connection(&self.uri, self.read_only)?;
            return crate::observe::plugin_call("http", &conn, f).map_err(ApiError::from);
        }
        let state = Arc::clone(&self.state);
        let (uri, ro) = (self.uri.clone(), self.read_only);
        // The request's span (its id) follows the call onto the blocking pool.
        let span = tracing::Span::current();
        crate::runtime::spawn_blocking(move || {
            let _request = span.enter();
            let conn = state.connection(&uri, ro)?;
            crate::observe::plugin_call("http", &conn, f)
        })
        .await
        .map_err(|e| ApiError::new(codes::INTERNAL_ERROR, format!("request handler failed: {e}")))?
        .map_err(ApiError::from)
    }

    /// Publishes `kind` for `dom`/`snap`.
    pub fn emit(&self, kind: &str, dom: &str, snap: Option<&str>) {
        self.state.events.emit(kind, &self.uri, Some(dom), snap, None);
    }

    /// Runs a domain change `f` and tells libvirt clients' lifecycle callbacks about it (the
    /// domain's state is read before and after, so a revert's events follow its effect).
    pub async fn run_lifecycle(
        &self,
        dom: &str,
        what: crate::libvirt::LifecycleEvent,
        f: impl FnOnce(&Connection) -> Result<(), HostError> + Send + 'static,
    ) -> ApiResult<()> {
        let d = dom.to_owned();
        let (before, after) = self
            .run(move |c| {
                let known = c.domain_lookup(&d).ok();
                f(c)?;
                // A transient domain that stopped is gone: its event names it as it was, shut off,
                // with no id. Another failed lookup publishes nothing.
                let after = match lookup_after_change(c, &d) {
                    Ok(Some(info)) => Some(info),
                    Ok(None) => known.clone().map(|i| virtplug_host::DomainInfo {
                        id: -1,
                        state: virtplug_host::flags::domain_state::SHUTOFF,
                        ..i
                    }),
                    Err(_) => None,
                };
                Ok((known.map_or(0, |i| i.state), after))
            })
            .await?;
        if let Some(after) = after {
            let what = match what {
                crate::libvirt::LifecycleEvent::RevertedTo(_) => {
                    crate::libvirt::LifecycleEvent::RevertedTo(after.state)
                }
                w => w,
            };
            crate::libvirt::publish(&self.state, &self.uri, crate::libvirt::domain_handle(&after), what, before);
        }
        Ok(())
    }

    /// After a snapshot change: publishes `snapshot.current_changed` if `dom`'s current moved.
    pub async fn check_current(&self, dom: &str) {
        let d = dom.to_owned();
        if let Ok(current) = self.run(move |c| c.snapshot_current(&d)).await {
            let name = current.map(|s| s.name);
            if self.state.current_changed(&self.uri, dom, name.clone()) {
                self.emit("snapshot.current_changed", dom, name.as_deref());
            }
        }
    }
}

/// The domain `name` after a change that succeeded: `None` when it is gone (a transient domain
/// that stopped), which is no failure of the change.
pub(crate) fn lookup_after_change(c: &Connection, name: &str) -> Result<Option<virtplug_host::DomainInfo>, HostError> {
    match c.domain_lookup(name) {
        Ok(info) => Ok(Some(info)),
        Err(e) if e.code() == codes::NO_DOMAIN => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn task_ids_never_repeat_across_daemon_runs() {
        let dir = tempfile::tempdir().unwrap();
        let run = || Shared::new(Registry::default(), None, vec![], dir.path().to_owned());
        let first = run();
        let a = first.tasks.start("t", &[], &first.events, "u", None).id;
        let b = first.tasks.start("t", &[], &first.events, "u", None).id;
        drop(first);
        let second = run();
        let c = second.tasks.start("t", &[], &second.events, "u", None).id;
        assert!(a < b && b < c, "{a} {b} {c}");
    }
}
