//! The connection's watcher: what qemu does on its own reaches the host as events (ABI 1.1 host
//! services). Every [`INTERVAL`] it reads, without waiting, the QMP events of the domains this
//! connection holds a monitor for; after a `STOP`, `RESUME` or `SHUTDOWN` (or a monitor that
//! closed) it refreshes the domain from qemu as any call would, and a state that changed from
//! the recorded one is reported: `domain.stopped` (detail `guest shutdown`, `shutdown` or
//! `crashed`), `domain.suspended`, `domain.resumed`. Changes this connection made itself were
//! recorded when it made them, so they are not reported again.
//!
//! Only read-write connections opened by a host that offers services are watched (in a 1.0 host
//! nobody would hear). Domains whose monitor another connection or process holds are not (qemu
//! serves one monitor client). The thread holds the connection's state only while it looks and
//! ends once the connection is gone.

use std::{
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use serde_json::Value;
use virtplug_plugin_sdk::{
    flags::domain_state as st,
    host::{self, Event, Host, Level},
};

use crate::{
    driver::{Inner, QemuDriver, is_active, reason},
    uri::Config,
};

/// How often the watcher looks: a guest's own change reaches the host within this.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// Starts the watcher of `drv` when the host of the running `open` offers services.
pub(crate) fn spawn(drv: &QemuDriver) {
    let host = host::current();
    // Only when the host has a reader for events (a daemon): a CLI command starts no watcher.
    if !host.wants_events() {
        return;
    }
    let inner = Arc::downgrade(&drv.inner);
    let cfg = drv.cfg.clone();
    let spawned = std::thread::Builder::new().name("qemu-watch".into()).spawn(move || run(&inner, &cfg, &host));
    if let Err(e) = spawned {
        host::log(Level::Warn, module_path!(), &format!("no watcher for qemu events: {e}"));
    }
}

fn run(inner: &Weak<Mutex<Inner>>, cfg: &Config, host: &Host) {
    loop {
        std::thread::sleep(INTERVAL);
        let Some(inner) = inner.upgrade() else { return };
        // A view of the same connection (same state, same configuration) to refresh through.
        let drv = QemuDriver::view(cfg.clone(), inner);
        look(&drv, host);
    }
}

/// What a domain's change from `before` to `after` (its new reason `why`) is reported as.
fn transition(before: u32, after: u32, why: u32, guest: bool) -> Option<(&'static str, &'static str)> {
    match (before, after) {
        (b, st::SHUTOFF) if is_active(b) => Some((
            "domain.stopped",
            match why {
                reason::SHUTOFF_SHUTDOWN if guest => "guest shutdown",
                reason::SHUTOFF_SHUTDOWN => "shutdown",
                _ => "crashed",
            },
        )),
        (st::RUNNING, st::PAUSED) => Some(("domain.suspended", "paused")),
        (st::PAUSED, st::RUNNING) => Some(("domain.resumed", "unpaused")),
        _ => None,
    }
}

fn event_name(e: &Value) -> &str {
    e.get("event").and_then(Value::as_str).unwrap_or("")
}

/// One look at every watched domain.
fn look(drv: &QemuDriver, host: &Host) {
    let Ok(mut g) = drv.lock() else { return };
    let watched: Vec<String> = g.qmp.keys().cloned().collect();
    for uuid in watched {
        let Some(q) = g.qmp.get_mut(&uuid) else { continue };
        let (events, gone) = match q.pending_events() {
            Ok(events) => (events, false),
            Err(_) => (Vec::new(), true),
        };
        let telling = events.iter().any(|e| matches!(event_name(e), "STOP" | "RESUME" | "SHUTDOWN"));
        if !telling && !gone {
            continue;
        }
        let guest = events.iter().any(|e| event_name(e) == "SHUTDOWN" && e["data"]["guest"].as_bool() == Some(true));
        let Ok(before) = g.store.domain_by_uuid(&uuid) else { continue };
        let name = before.name.clone();
        let Ok(after) = drv.refresh(&mut g, before.clone()) else { continue };
        if let Some((kind, detail)) = transition(before.state, after.state, after.reason, guest) {
            host.log(Level::Info, module_path!(), &format!("domain {name}: {kind} ({detail})"));
            host.event(Event::new(kind, name).detail(detail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_reported() {
        let cases = [
            (st::RUNNING, st::SHUTOFF, reason::SHUTOFF_SHUTDOWN, true, Some(("domain.stopped", "guest shutdown"))),
            (st::PAUSED, st::SHUTOFF, reason::SHUTOFF_SHUTDOWN, false, Some(("domain.stopped", "shutdown"))),
            (st::RUNNING, st::SHUTOFF, reason::SHUTOFF_CRASHED, false, Some(("domain.stopped", "crashed"))),
            (st::RUNNING, st::PAUSED, reason::PAUSED_USER, false, Some(("domain.suspended", "paused"))),
            (st::PAUSED, st::RUNNING, reason::RUNNING_UNPAUSED, false, Some(("domain.resumed", "unpaused"))),
            (st::RUNNING, st::RUNNING, reason::RUNNING_UNPAUSED, false, None),
            (st::SHUTOFF, st::SHUTOFF, reason::SHUTOFF_SHUTDOWN, true, None),
        ];
        for (before, after, why, guest, want) in cases {
            assert_eq!(transition(before, after, why, guest), want, "{before} -> {after}");
        }
    }
}
