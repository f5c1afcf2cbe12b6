//! Events plugins report through their host services (ABI 1.1): a guest that shut itself down,
//! a power state changed in the hypervisor's own console. Each goes to the event log (SSE
//! `/v1/events`, with the plugin's kind, domain and snapshot; the plugin's detail text is logged,
//! the wire has no field for it) and, for the domain lifecycle kinds, to libvirt clients'
//! lifecycle callbacks.
//!
//! The registry's sink runs on the plugin's thread, possibly under the plugin's own locks, so it
//! only queues; one thread of its own forwards, looking the domain up (for libvirt's UUID and
//! id) through the daemon's read-only connection.

use std::sync::{Arc, Weak, mpsc};

use virtplug_host::HostEvent;

use crate::{
    libvirt::{LifecycleEvent, domain_handle, publish},
    state::{AppState, Shared},
};

/// Subscribes to the registry's plugin events and starts the forwarding thread, which ends with
/// the daemon's state.
pub fn install(state: &AppState) {
    let (tx, rx) = mpsc::channel::<HostEvent>();
    state.registry.set_event_sink(Some(Arc::new(move |event| {
        // The receiver only goes away with the daemon's state; nothing is left to tell then.
        let _ = tx.send(event);
    })));
    let weak: Weak<Shared> = Arc::downgrade(state);
    let spawned = std::thread::Builder::new().name("plugin-events".into()).spawn(move || {
        while let Ok(event) = rx.recv() {
            let Some(state) = weak.upgrade() else { break };
            forward(&state, &event);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "plugin events cannot be forwarded: no thread");
    }
}

/// The libvirt lifecycle event for a plugin event's kind (and detail), if it is one.
pub fn lifecycle(kind: &str, detail: &str) -> Option<LifecycleEvent> {
    Some(match kind {
        "domain.defined" => LifecycleEvent::Defined,
        "domain.undefined" => LifecycleEvent::Undefined,
        "domain.started" => LifecycleEvent::Started,
        "domain.suspended" => LifecycleEvent::Suspended,
        "domain.resumed" => LifecycleEvent::Resumed,
        "domain.stopped" if detail == "destroyed" => LifecycleEvent::Destroyed,
        "domain.stopped" => LifecycleEvent::Shutdown,
        _ => return None,
    })
}

fn forward(state: &Shared, e: &HostEvent) {
    if !state.allowed_uris.iter().any(|u| u == &e.uri) {
        return;
    }
    tracing::info!(plugin = %e.plugin, uri = %e.uri, kind = %e.kind, domain = %e.domain, detail = %e.detail, "plugin event");
    state.events.emit(&e.kind, &e.uri, Some(&e.domain), e.snapshot.as_deref(), None);
    let Some(what) = lifecycle(&e.kind, &e.detail) else { return };
    // libvirt names the domain by UUID and id: read them now (an undefined domain is gone, and
    // its callbacks cannot be told which one it was).
    let found = state.connection(&e.uri, true).and_then(|c| c.domain_lookup(&e.domain));
    match found {
        Ok(d) => publish(state, &e.uri, domain_handle(&d), what, 0),
        Err(err) => tracing::debug!(domain = %e.domain, error = %err, "plugin event not sent to libvirt clients"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_libvirt_lifecycle_events() {
        let cases = [
            ("domain.stopped", "guest shutdown", Some(LifecycleEvent::Shutdown)),
            ("domain.stopped", "destroyed", Some(LifecycleEvent::Destroyed)),
            ("domain.suspended", "", Some(LifecycleEvent::Suspended)),
            ("domain.resumed", "", Some(LifecycleEvent::Resumed)),
            ("domain.started", "", Some(LifecycleEvent::Started)),
            ("domain.defined", "", Some(LifecycleEvent::Defined)),
            ("domain.undefined", "", Some(LifecycleEvent::Undefined)),
            ("snapshot.created", "", None),
            ("task.progress", "", None),
        ];
        for (kind, detail, want) in cases {
            assert_eq!(lifecycle(kind, detail), want, "{kind} {detail}");
        }
    }
}
