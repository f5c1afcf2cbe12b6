//! The host's services for a plugin (ABI 1.1): logging, events and progress/cancellation, per
//! connection.
//!
//! A host of ABI 1.1 or later opens a connection through `open_with_host` and hands over its
//! services; the SDK keeps them with the connection and makes them the *current* host while the
//! plugin's code runs for that connection (its `open` and every driver method). So inside a
//! driver method `host::log(…)`, `host::progress(…)` and `host::cancelled()` reach the host that
//! made the call; code running on a plugin's own thread (an event reader) keeps the handle that
//! [`current`] returned in `open` and calls it there.
//!
//! In a 1.0 host (which only knows `open`) there are no services: [`Host::is_connected`] is
//! false, logging and events are dropped, progress goes nowhere and [`cancelled`] is always
//! false. A plugin works the same otherwise, so it needs no special case for old hosts.

use std::{cell::RefCell, sync::Arc};

use virtplug_plugin_api::{HostServicesBox, PluginEvent, abi_stable::std_types::ROption, log_level};

/// Severity of a log record, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// An error the operator should see.
    Error,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A notable step (a guest stopped by itself).
    Info,
    /// A change or a decision, for whoever debugs the plugin.
    Debug,
    /// Everything else.
    Trace,
}

impl Level {
    fn abi(self) -> u8 {
        match self {
            Level::Error => log_level::ERROR,
            Level::Warn => log_level::WARN,
            Level::Info => log_level::INFO,
            Level::Debug => log_level::DEBUG,
            Level::Trace => log_level::TRACE,
        }
    }
}

/// Something the plugin saw happen outside the host's calls, e.g. a guest that shut itself
/// down: `Event::new("domain.stopped", "vm1").detail("guest shutdown")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The daemon's event kind: `domain.started`, `domain.stopped`, `domain.suspended`,
    /// `domain.resumed`, `domain.defined`, `domain.undefined`, `snapshot.created`,
    /// `snapshot.deleted`, ….
    pub kind: String,
    /// The domain's name.
    pub domain: String,
    /// The snapshot, for snapshot events.
    pub snapshot: Option<String>,
    /// Free detail text (`guest shutdown`); may be empty.
    pub detail: String,
}

impl Event {
    /// An event of `kind` for `domain`, without snapshot or detail.
    pub fn new(kind: impl Into<String>, domain: impl Into<String>) -> Self {
        Self { kind: kind.into(), domain: domain.into(), snapshot: None, detail: String::new() }
    }
    /// With a snapshot name.
    pub fn snapshot(mut self, snapshot: impl Into<String>) -> Self {
        self.snapshot = Some(snapshot.into());
        self
    }
    /// With a detail text.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// The host's services for one connection; cheap to clone, usable from any thread. A no-op
/// handle when the host offered none (a 1.0 host, or code outside any connection).
#[derive(Clone, Default)]
pub struct Host {
    services: Option<Arc<HostServicesBox>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").field("connected", &self.is_connected()).finish()
    }
}

impl Host {
    /// The handle for services the host passed at `open_with_host`.
    pub(crate) fn from_abi(services: HostServicesBox) -> Self {
        Self { services: Some(Arc::new(services)) }
    }

    /// A handle that drops everything (what a plugin has in a 1.0 host).
    pub fn none() -> Self {
        Self::default()
    }

    /// Whether the host offered services (false in a 1.0 host).
    pub fn is_connected(&self) -> bool {
        self.services.is_some()
    }

    /// Logs `message` at `level`; `target` names the plugin's module (`module_path!()`).
    pub fn log(&self, level: Level, target: &str, message: &str) {
        if let Some(s) = &self.services {
            s.log(level.abi(), target.into(), message.into());
        }
    }

    /// Reports `event` to the host (the daemon forwards it to its event stream).
    pub fn event(&self, event: Event) {
        if let Some(s) = &self.services {
            s.event(PluginEvent {
                kind: event.kind.into(),
                domain: event.domain.into(),
                snapshot: event.snapshot.map(Into::into).map_or(ROption::RNone, ROption::RSome),
                detail: event.detail.into(),
            });
        }
    }

    /// Reports progress of the long operation running on this connection: `done` of `total`
    /// units (`total` 0 when unknown).
    pub fn progress(&self, done: u64, total: u64) {
        if let Some(s) = &self.services {
            s.progress(done, total);
        }
    }

    /// Whether the host has a reader for this connection's events (false without services):
    /// start watchers only then.
    pub fn wants_events(&self) -> bool {
        self.services.as_ref().is_some_and(|s| s.wants_events())
    }

    /// Whether the caller asked to cancel the long operation running on this connection
    /// (always false without services).
    pub fn cancelled(&self) -> bool {
        self.services.as_ref().is_some_and(|s| s.cancelled())
    }
}

thread_local! {
    /// The host of the connection whose plugin code this thread is running.
    static CURRENT: RefCell<Option<Host>> = const { RefCell::new(None) };
}

/// Restores the previous current host when a call ends, also when it panics.
struct Restore(Option<Host>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `f` with `host` as the current host (calls may nest: the previous one comes back).
pub(crate) fn enter<R>(host: &Host, f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(|c| c.borrow_mut().replace(host.clone()));
    let _restore = Restore(previous);
    f()
}

/// The host of the connection whose code is running on this thread (in `open` or a driver
/// method); a no-op handle elsewhere. Keep it to report from a thread of the plugin's own.
pub fn current() -> Host {
    CURRENT.with(|c| c.borrow().clone()).unwrap_or_default()
}

fn with_current(f: impl FnOnce(&Host)) {
    CURRENT.with(|c| {
        if let Some(h) = c.borrow().as_ref() {
            f(h);
        }
    });
}

/// Logs through the current host (see [`Host::log`]); `plugin_log!` fills in the target.
pub fn log(level: Level, target: &str, message: &str) {
    with_current(|h| h.log(level, target, message));
}

/// Reports an event through the current host (see [`Host::event`]).
pub fn event(event: Event) {
    with_current(|h| h.event(event));
}

/// Reports progress through the current host (see [`Host::progress`]).
pub fn progress(done: u64, total: u64) {
    with_current(|h| h.progress(done, total));
}

/// Whether the current call was cancelled (see [`Host::cancelled`]).
pub fn cancelled() -> bool {
    CURRENT.with(|c| c.borrow().as_ref().is_some_and(Host::cancelled))
}

/// Logs a formatted line through the current host with this module as target:
/// `plugin_log!(Debug, "created {name}")`. Formats nothing when the host offered no services.
#[macro_export]
macro_rules! plugin_log {
    ($level:ident, $($arg:tt)+) => {
        if $crate::host::current().is_connected() {
            $crate::host::log($crate::host::Level::$level, module_path!(), &format!($($arg)+));
        }
    };
}

#[cfg(test)]
mod tests;
