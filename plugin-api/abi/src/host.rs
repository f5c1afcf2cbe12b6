//! Host services (ABI 1.1): what the host hands a plugin at `open_with_host` — a log sink, an
//! event sink and a progress/cancellation handle — as one `#[sabi_trait]` object per connection.
//!
//! A 1.0 host never calls `open_with_host`, so a plugin gets no services there and the SDK's
//! `host` functions are no-ops. Methods are only ever appended after `cancelled` (the last
//! prefix method), each with a default body; `tests/defaults.rs` enforces that.

use abi_stable::{
    StableAbi, sabi_trait,
    std_types::{RBox, ROption, RStr, RString},
};

/// The services object `open_with_host` receives; the plugin may keep it for as long as the
/// connection lives and call it from any thread.
pub type HostServicesBox = HostServices_TO<'static, RBox<()>>;

/// Log levels of [`HostServices::log`] (tracing's order: 1 is the most severe).
pub mod log_level {
    /// An error the operator should see.
    pub const ERROR: u8 = 1;
    /// Something unexpected that the plugin handled.
    pub const WARN: u8 = 2;
    /// A notable step (a connection opened, a guest stopped).
    pub const INFO: u8 = 3;
    /// A change or a decision, for whoever debugs the plugin.
    pub const DEBUG: u8 = 4;
    /// Everything else.
    pub const TRACE: u8 = 5;
}

/// Something a plugin saw happen outside the host's own calls (a guest shut itself down, a
/// power state changed in the hypervisor's own console), or the progress of its own work.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginEvent {
    /// The daemon's event kind, e.g. `domain.stopped`, `domain.suspended`, `domain.resumed`,
    /// `domain.started`, `domain.defined`, `domain.undefined`, `snapshot.created`,
    /// `snapshot.deleted`.
    pub kind: RString,
    /// The domain's name.
    pub domain: RString,
    /// The snapshot, for snapshot events.
    pub snapshot: ROption<RString>,
    /// Free detail text, e.g. `guest shutdown` or `destroyed`; may be empty.
    pub detail: RString,
}

/// The host's services for one connection. Every call returns quickly (the host queues what it
/// cannot do at once); a plugin may call them while it holds its own locks.
#[sabi_trait]
pub trait HostServices: Send + Sync {
    /// One log record: `level` from [`log_level`], `target` the plugin's module (free text),
    /// `message` one line. The host logs it through its own logging, tagged with the plugin.
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>);
    /// An event the plugin saw (see [`PluginEvent`]).
    fn event(&self, event: PluginEvent);
    /// Progress of the long operation running on this connection: `done` of `total` units
    /// (bytes, steps); `total` 0 when unknown.
    fn progress(&self, done: u64, total: u64);
    /// Whether the caller of the long operation running on this connection asked to cancel it;
    /// the plugin stops at its next safe point and fails with `OPERATION_ABORTED`.
    #[sabi(last_prefix_field)]
    fn cancelled(&self) -> bool;
    /// Whether anyone listens to this connection's events (a daemon does; a one-shot CLI
    /// command does not), so a plugin starts a costly watcher (an extra session, polling) only
    /// when its events have a reader. Appended in 1.1 after `cancelled`: a host without it
    /// gets this default, no listener.
    fn wants_events(&self) -> bool {
        false
    }
}
