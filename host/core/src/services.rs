//! The host services a plugin gets per connection (ABI 1.1 `open_with_host`): its log records
//! go through this process's tracing with the target `plugin::<name>`, its events to the
//! subscriber the registry's owner set ([`Registry::set_event_sink`](crate::Registry)), and its
//! progress reports and cancellation checks to the reporter the caller installed on the
//! connection for the running call ([`Connection::with_progress`](crate::Connection)).
//!
//! A 1.0 plugin has no `open_with_host`; the host opens it with `open` and none of this is used.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, RwLock},
};

use tracing::{
    Event, Level, Metadata,
    callsite::{Callsite, Identifier},
    field::{FieldSet, Value},
    metadata::Kind,
    subscriber::Interest,
};
use virtplug_plugin_api::{HostServices, PluginEvent, abi_stable::std_types::RStr, log_level};

/// An event a plugin reported, with the connection it came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEvent {
    /// The plugin's name (`info().name`).
    pub plugin: String,
    /// The URI of the connection that reported it.
    pub uri: String,
    /// The event kind, e.g. `domain.stopped` (the plugin's text, unchecked).
    pub kind: String,
    /// The domain's name.
    pub domain: String,
    /// The snapshot, for snapshot events.
    pub snapshot: Option<String>,
    /// The plugin's detail text; may be empty.
    pub detail: String,
}

/// Where plugin events go; called on the plugin's thread, possibly while the plugin holds its
/// own locks, so it must only hand the event on (a channel), never call back into a connection.
pub type EventSink = Arc<dyn Fn(HostEvent) + Send + Sync>;

/// The registry's event subscriber, shared with every connection's services, so a sink set after
/// connections were opened still receives their events.
#[derive(Default)]
pub(crate) struct EventSlot(RwLock<Option<EventSink>>);

impl std::fmt::Debug for EventSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.read().map(|s| s.is_some()).unwrap_or(false);
        f.debug_struct("EventSlot").field("set", &set).finish()
    }
}

impl EventSlot {
    pub(crate) fn set(&self, sink: Option<EventSink>) {
        if let Ok(mut slot) = self.0.write() {
            *slot = sink;
        }
    }

    fn is_set(&self) -> bool {
        self.0.read().map(|s| s.is_some()).unwrap_or(false)
    }

    fn send(&self, event: HostEvent) {
        let sink = self.0.read().ok().and_then(|s| s.clone());
        match sink {
            Some(sink) => sink(event),
            None => {
                tracing::debug!(plugin = %event.plugin, kind = %event.kind, domain = %event.domain, "plugin event without a subscriber")
            }
        }
    }
}

/// The caller's side of a long operation: where progress goes and whether to cancel.
pub trait Progress: Send + Sync {
    /// `done` of `total` units (`total` 0 when the plugin does not know).
    fn report(&self, done: u64, total: u64);
    /// Whether the caller wants the operation stopped; asked by the plugin at its safe points.
    fn cancelled(&self) -> bool {
        false
    }
}

/// The reporter of the call running on a connection (none between calls).
pub(crate) type ProgressSlot = Mutex<Option<Arc<dyn Progress>>>;

/// One connection's services, as handed to the plugin.
pub(crate) struct Services {
    pub(crate) plugin: String,
    pub(crate) uri: String,
    pub(crate) events: Arc<EventSlot>,
    pub(crate) progress: Arc<ProgressSlot>,
}

impl Services {
    fn reporter(&self) -> Option<Arc<dyn Progress>> {
        self.progress.lock().ok().and_then(|p| p.clone())
    }
}

impl HostServices for Services {
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>) {
        emit_log(&self.plugin, level, target.as_str(), message.as_str());
    }

    fn event(&self, event: PluginEvent) {
        self.events.send(HostEvent {
            plugin: self.plugin.clone(),
            uri: self.uri.clone(),
            kind: event.kind.into_string(),
            domain: event.domain.into_string(),
            snapshot: event.snapshot.into_option().map(|s| s.into_string()),
            detail: event.detail.into_string(),
        });
    }

    fn progress(&self, done: u64, total: u64) {
        if let Some(reporter) = self.reporter() {
            reporter.report(done, total);
        }
    }

    fn cancelled(&self) -> bool {
        self.reporter().is_some_and(|r| r.cancelled())
    }

    /// True once the registry's owner set an event sink (the daemon does before it opens
    /// connections; the CLI never does, so its commands start no plugin watchers).
    fn wants_events(&self) -> bool {
        self.events.is_set()
    }
}

/// A tracing call site made at run time: tracing's macros need a target known at compile time,
/// and a plugin's is `plugin::<name>`. One per (plugin, level), kept for the process's life
/// (plugins are never unloaded either).
struct PluginCallsite {
    meta: OnceLock<Metadata<'static>>,
}

/// Field names of a plugin record: the text, and the plugin's own target (its module).
const FIELDS: &[&str] = &["message", "module"];

impl Callsite for PluginCallsite {
    fn set_interest(&self, _: Interest) {
        // Interest is asked of the current dispatcher on every record instead (`emit_log`).
    }
    fn metadata(&self) -> &Metadata<'_> {
        // Set in `callsite` before the call site is registered or used; tracing reaches it
        // only through the `Identifier` handed out after that.
        self.meta.get().unwrap_or(&PLACEHOLDER)
    }
}

/// Never reached (see `metadata`); satisfies the signature without a panic.
static PLACEHOLDER: Metadata<'static> = {
    static PLACEHOLDER_SITE: PluginCallsite = PluginCallsite { meta: OnceLock::new() };
    Metadata::new(
        "plugin record",
        "plugin",
        Level::TRACE,
        None,
        None,
        None,
        FieldSet::new(FIELDS, Identifier(&PLACEHOLDER_SITE)),
        Kind::EVENT,
    )
};

fn tracing_level(level: u8) -> Level {
    match level {
        log_level::ERROR => Level::ERROR,
        log_level::WARN => Level::WARN,
        log_level::INFO => Level::INFO,
        log_level::DEBUG => Level::DEBUG,
        // TRACE, and any finer level a newer plugin might send.
        _ => Level::TRACE,
    }
}

/// The call site for `plugin`'s records at `level`.
fn callsite(plugin: &str, level: Level) -> &'static PluginCallsite {
    static SITES: OnceLock<Mutex<HashMap<(String, Level), &'static PluginCallsite>>> = OnceLock::new();
    let sites = SITES.get_or_init(Mutex::default);
    let mut sites = sites.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(site) = sites.get(&(plugin.to_owned(), level)) {
        return site;
    }
    let target: &'static str = Box::leak(format!("plugin::{plugin}").into_boxed_str());
    let site: &'static PluginCallsite = Box::leak(Box::new(PluginCallsite { meta: OnceLock::new() }));
    let meta = Metadata::new(
        "plugin record",
        target,
        level,
        None,
        None,
        None,
        FieldSet::new(FIELDS, Identifier(site)),
        Kind::EVENT,
    );
    let _ = site.meta.set(meta);
    tracing::callsite::register(site);
    sites.insert((plugin.to_owned(), level), site);
    site
}

/// Logs one plugin record through the current tracing dispatcher, target `plugin::<plugin>`.
pub(crate) fn emit_log(plugin: &str, level: u8, module: &str, message: &str) {
    let level = tracing_level(level);
    if level > tracing::level_filters::LevelFilter::current() {
        return;
    }
    let meta = callsite(plugin, level).metadata();
    tracing::dispatcher::get_default(|dispatch| {
        if !dispatch.enabled(meta) {
            return;
        }
        let fields = meta.fields();
        let (Some(message_field), Some(module_field)) = (fields.field("message"), fields.field("module")) else {
            return;
        };
        let values: [(&tracing::field::Field, Option<&dyn Value>); 2] =
            [(&message_field, Some(&message as &dyn Value)), (&module_field, Some(&module as &dyn Value))];
        let set = fields.value_set(&values);
        dispatch.event(&Event::new(meta, &set));
    });
}

#[cfg(test)]
mod tests;
