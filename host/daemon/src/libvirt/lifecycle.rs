//! Domain lifecycle events for libvirt clients: callbacks registered per connection (the
//! callback procedures 316/317 and the legacy 167/168), and the forwarding of the daemon's
//! lifecycle broadcast to them as `DOMAIN_EVENT_CALLBACK_LIFECYCLE` (or the legacy
//! `DOMAIN_EVENT_LIFECYCLE`) messages. Only the lifecycle event is ever sent; callbacks for
//! the other event ids are accepted and stay silent, as on a driver that never raises them.

use std::sync::{Arc, atomic::Ordering};

use tokio::sync::broadcast::error::RecvError;
use virtplug_host::codes;
use virtplug_libvirt_rpc::{packet, proto::*};

use crate::state::Shared;

use super::{
    Out,
    session::{Fail, Reply, Session, fail, from, ok},
};

/// libvirt's `VIR_DOMAIN_EVENT_ID_LIFECYCLE` and the count of event ids libvirt 9.0 defines.
const EVENT_ID_LIFECYCLE: i32 = 0;
const EVENT_ID_LAST: i32 = 27;

/// `virDomainEventType` values with their details (`virDomainEvent*DetailType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// DEFINED / ADDED.
    Defined,
    /// DEFINED / UPDATED: a definition replaced an existing domain's.
    Updated,
    /// UNDEFINED / REMOVED.
    Undefined,
    /// STARTED / BOOTED.
    Started,
    /// SUSPENDED / PAUSED.
    Suspended,
    /// RESUMED / UNPAUSED.
    Resumed,
    /// STOPPED / SHUTDOWN.
    Shutdown,
    /// STOPPED / DESTROYED.
    Destroyed,
    /// A revert that left the domain in this state (`flags::domain_state`).
    RevertedTo(u32),
}

impl LifecycleEvent {
    /// The wire pairs (event, detail) for a domain whose state before the change was `before`.
    /// A revert is what libvirt's test driver raises: an active domain is stopped and started
    /// again from the snapshot (STOPPED, then STARTED, FROM_SNAPSHOT), then paused if the
    /// snapshot was (SUSPENDED FROM_SNAPSHOT); reverting to a shut-off snapshot only stops it.
    fn wire(self, before: u32) -> Vec<(i32, i32)> {
        const PAUSED: u32 = 3;
        let active = |s: u32| (1..=3).contains(&s);
        match self {
            Self::Defined => vec![(0, 0)],
            Self::Updated => vec![(0, 1)],
            Self::Undefined => vec![(1, 0)],
            Self::Started => vec![(2, 0)],
            Self::Suspended => vec![(3, 0)],
            Self::Resumed => vec![(4, 0)],
            Self::Shutdown => vec![(5, 0)],
            Self::Destroyed => vec![(5, 1)],
            Self::RevertedTo(after) => {
                let mut out = Vec::new();
                if active(before) {
                    out.push((5, 6));
                }
                if active(after) {
                    out.push((2, 3));
                }
                if after == PAUSED {
                    out.push((3, 5));
                }
                out
            }
        }
    }
}

/// One lifecycle change, broadcast daemon-wide.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// The driver URI it happened on.
    pub uri: String,
    /// The domain after the change.
    pub dom: RemoteNonnullDomain,
    /// libvirt's event and detail numbers.
    pub event: i32,
    pub detail: i32,
}

/// Publishes `what` for `dom` (whose state before the change was `before`) to every libvirt
/// client's callbacks; the HTTP routes publish their changes here too.
pub fn publish(state: &Shared, uri: &str, dom: RemoteNonnullDomain, what: LifecycleEvent, before: u32) {
    for (event, detail) in what.wire(before) {
        let _ = state.lifecycle.send(Lifecycle { uri: uri.to_owned(), dom: dom.clone(), event, detail });
    }
}

/// A registered callback.
#[derive(Debug, Clone)]
pub struct Callback {
    event_id: i32,
    /// Only this domain's events (by UUID).
    dom: Option<[u8; 16]>,
    /// Registered through the legacy procedure (its id is the event id).
    legacy: bool,
}

/// CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: the server picks a daemon-wide unique id.
pub fn register(s: &Session, payload: &[u8]) -> Reply {
    let a: RemoteConnectDomainEventCallbackRegisterAnyArgs = packet::args(payload)?;
    check_event_id(a.event_id)?;
    let id = s.state.next_callback_id.fetch_add(1, Ordering::Relaxed);
    let cb = Callback { event_id: a.event_id, dom: a.dom.map(|d| d.uuid), legacy: false };
    s.callbacks.lock().map_err(|_| poisoned())?.insert(id, cb);
    ok(&RemoteConnectDomainEventCallbackRegisterAnyRet { callback_id: id })
}

/// CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY.
pub fn deregister(s: &Session, payload: &[u8]) -> Reply {
    let a: RemoteConnectDomainEventCallbackDeregisterAnyArgs = packet::args(payload)?;
    let removed = s.callbacks.lock().map_err(|_| poisoned())?.remove(&a.callback_id);
    match removed {
        Some(_) => ok(&()),
        None => Err(fail(
            codes::INTERNAL_ERROR,
            from::RPC,
            &format!("domain event callback {} not registered", a.callback_id),
        )),
    }
}

/// The legacy CONNECT_DOMAIN_EVENT_REGISTER_ANY (clients that were told no callback support).
pub fn register_legacy(s: &Session, payload: &[u8]) -> Reply {
    let a: RemoteConnectDomainEventRegisterAnyArgs = packet::args(payload)?;
    check_event_id(a.event_id)?;
    let cb = Callback { event_id: a.event_id, dom: None, legacy: true };
    // Keyed below zero so they never meet the server-chosen ids.
    s.callbacks.lock().map_err(|_| poisoned())?.insert(-1 - a.event_id, cb);
    ok(&())
}

/// The legacy CONNECT_DOMAIN_EVENT_DEREGISTER_ANY.
pub fn deregister_legacy(s: &Session, payload: &[u8]) -> Reply {
    let a: RemoteConnectDomainEventDeregisterAnyArgs = packet::args(payload)?;
    match s.callbacks.lock().map_err(|_| poisoned())?.remove(&(-1 - a.event_id)) {
        Some(_) => ok(&()),
        None => Err(fail(codes::INTERNAL_ERROR, from::RPC, &format!("domain event {} not registered", a.event_id))),
    }
}

fn check_event_id(id: i32) -> Result<(), Fail> {
    if (0..EVENT_ID_LAST).contains(&id) {
        return Ok(());
    }
    Err(fail(codes::INTERNAL_ERROR, from::RPC, &format!("unsupported event ID {id}")))
}

fn poisoned() -> Fail {
    fail(codes::INTERNAL_ERROR, from::RPC, "event callbacks unavailable")
}

/// Forwards the daemon's lifecycle events on `uri` to the session's callbacks until aborted.
pub fn forward(session: Arc<Session>, uri: String) -> tokio::task::JoinHandle<()> {
    let mut rx = session.state.lifecycle.subscribe();
    crate::runtime::spawn(async move {
        loop {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "a libvirt client missed lifecycle events");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            if ev.uri != uri {
                continue;
            }
            let targets: Vec<(i32, bool)> = match session.callbacks.lock() {
                Ok(cbs) => cbs
                    .iter()
                    .filter(|(_, c)| c.event_id == EVENT_ID_LIFECYCLE && c.dom.is_none_or(|u| u == ev.dom.uuid))
                    .map(|(id, c)| (*id, c.legacy))
                    .collect(),
                Err(_) => return,
            };
            for (id, legacy) in targets {
                let msg = RemoteDomainEventLifecycleMsg { dom: ev.dom.clone(), event: ev.event, detail: ev.detail };
                let bytes = if legacy {
                    packet::event(REMOTE_PROC_DOMAIN_EVENT_LIFECYCLE, &msg)
                } else {
                    packet::event(
                        REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE,
                        &RemoteDomainEventCallbackLifecycleMsg { callback_id: id, msg },
                    )
                };
                if session.out.send(Out::Packet(bytes)).await.is_err() {
                    return;
                }
            }
        }
    })
}
