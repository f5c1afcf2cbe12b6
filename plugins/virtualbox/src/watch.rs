//! The connection's watcher: what VirtualBox does without this connection (a machine powered
//! off in VirtualBox's own window, a guest that shut down or crashed, another VBoxManage) reaches
//! the host as events (ABI 1.1 host services).
//!
//! VBoxManage has no event stream a subprocess can follow, so the watcher polls: every
//! [`INTERVAL`] `list vms` and one `showvminfo --machinereadable` per machine, on a thread of
//! its own with a runner of its own. A machine whose libvirt state changed is reported:
//! `domain.stopped` (detail: VirtualBox's state, `poweroff`, `saved`, `aborted`),
//! `domain.started`, `domain.suspended`, `domain.resumed`. Transient states VirtualBox reports
//! while it changes (`starting`, `restoring`, …, libvirt's NOSTATE) are not compared. Changes
//! this connection made itself are recorded before the command runs ([`Shared::expect`]) and not
//! reported again (the host already told everyone); a change made elsewhere right after one of
//! the connection's own (between two polls) is reported from the state the connection set.
//!
//! The first poll is taken during `open`, so a change made after `open` returned is never
//! missed. Only read-write connections opened by a host that offers services are watched. The
//! thread ends within [`INTERVAL`] once the connection is dropped.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use virtplug_plugin_sdk::{
    Result,
    flags::domain_state as st,
    host::{self, Event, Host, Level},
};

use crate::{
    machine::{Machine, libvirt_state},
    parse,
    runner::Runner,
};

/// How often the watcher polls: a change made elsewhere reaches the host within this (plus the
/// poll's own time: 1 + one invocation per machine).
pub const INTERVAL: Duration = Duration::from_secs(2);

/// What the connection and its watcher share.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set when the connection is dropped.
    stop: AtomicBool,
    /// libvirt states this connection is bringing machines to: (UUID, state).
    own: Mutex<Vec<(String, u32)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Records that this connection is about to bring machine `uuid` to `state` (before the
    /// command runs, so the watcher cannot see the change first).
    pub(crate) fn expect(&self, uuid: &str, state: u32) {
        lock(&self.own).push((uuid.to_owned(), state));
    }
    /// Forgets an expectation whose command failed.
    pub(crate) fn forget(&self, uuid: &str, state: u32) {
        let mut own = lock(&self.own);
        if let Some(i) = own.iter().position(|(u, s)| u == uuid && *s == state) {
            own.remove(i);
        }
    }
    /// The state this connection last brought machine `uuid` to since the previous poll, if it
    /// did (consumes the records): what a change is compared from, so that the connection's own
    /// change is not reported, and a change made elsewhere right after it (between two polls)
    /// is reported from there.
    fn settle(&self, uuid: &str) -> Option<u32> {
        let mut own = lock(&self.own);
        let last = own.iter().rev().find(|(u, _)| u == uuid).map(|(_, s)| *s);
        own.retain(|(u, _)| u != uuid);
        last
    }
    /// Ends the watcher (the connection is gone).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

fn is_active(state: u32) -> bool {
    !matches!(state, st::SHUTOFF | st::CRASHED | st::NOSTATE)
}

/// What a machine's change from libvirt state `before` to `after` (VirtualBox's state name
/// `vmstate`) is reported as.
fn transition(before: u32, after: u32, vmstate: &str) -> Option<(&'static str, String)> {
    match (before, after) {
        (b, st::SHUTOFF | st::CRASHED) if is_active(b) => Some(("domain.stopped", vmstate.to_owned())),
        (st::SHUTOFF | st::CRASHED, a) if is_active(a) => Some(("domain.started", vmstate.to_owned())),
        (st::RUNNING, st::PAUSED) => Some(("domain.suspended", vmstate.to_owned())),
        (st::PAUSED, st::RUNNING) => Some(("domain.resumed", vmstate.to_owned())),
        _ => None,
    }
}

/// The watcher's state (moved to its thread after the first poll).
struct Watcher {
    runner: Runner,
    shared: Arc<Shared>,
    host: Host,
    /// Every machine seen: UUID → (name, libvirt state).
    known: HashMap<String, (String, u32)>,
    /// Whether the last poll failed (a failure is logged once until a poll succeeds).
    failing: bool,
}

/// Starts watching when the host of the running `open` offers services; returns what the
/// connection shares with the watcher.
pub(crate) fn start(program: &std::path::Path, timeout: Duration) -> Option<Arc<Shared>> {
    let host = host::current();
    // Only when the host has a reader for events (a daemon): a CLI command starts no watcher.
    if !host.wants_events() {
        return None;
    }
    let shared = Arc::new(Shared::default());
    let runner = Runner { program: program.to_owned(), timeout, count: AtomicU64::new(0) };
    let mut w = Watcher { runner, shared: Arc::clone(&shared), host, known: HashMap::new(), failing: false };
    // The first poll now, so that nothing after `open` is missed.
    w.look();
    let spawned = std::thread::Builder::new().name("vbox-watch".into()).spawn(move || w.run());
    if let Err(e) = spawned {
        host::log(Level::Warn, module_path!(), &format!("no watcher for VirtualBox machine states: {e}"));
    }
    Some(shared)
}

impl Watcher {
    fn run(mut self) {
        loop {
            std::thread::sleep(INTERVAL);
            if self.shared.stopped() {
                return;
            }
            self.look();
        }
    }

    /// Every registered machine: (UUID, name, VirtualBox state).
    fn poll(&self) -> Result<Vec<(String, String, String)>> {
        let out = self.runner.check(&["list", "vms"])?;
        let vms = parse::list_vms(&out.stdout).map_err(|e| {
            virtplug_plugin_sdk::Error::internal(format!("VBoxManage printed unparseable output for list vms: {}", e.0))
        })?;
        let mut all = Vec::with_capacity(vms.len());
        for (name, uuid) in vms {
            if name == "<inaccessible>" {
                continue;
            }
            // A machine unregistered between the two calls is simply gone.
            if let Ok(m) = Machine::info_only(&self.runner, &uuid) {
                all.push((m.uuid, m.name, m.state));
            }
        }
        Ok(all)
    }

    /// One poll, compared with the last one.
    fn look(&mut self) {
        let machines = match self.poll() {
            Ok(m) => {
                self.failing = false;
                m
            }
            Err(e) => {
                if !self.failing {
                    self.host.log(Level::Warn, module_path!(), &format!("VirtualBox watcher: {e}"));
                }
                self.failing = true;
                return;
            }
        };
        self.known.retain(|uuid, _| machines.iter().any(|(u, _, _)| u == uuid));
        for (uuid, name, vmstate) in machines {
            let state = libvirt_state(&vmstate).0;
            if state == st::NOSTATE {
                continue;
            }
            let before = self.known.insert(uuid.clone(), (name.clone(), state));
            // A machine seen for the first time has nothing to compare with.
            let Some((_, was)) = before else { continue };
            if was == state {
                continue;
            }
            let from = self.shared.settle(&uuid).unwrap_or(was);
            if let Some((kind, detail)) = transition(from, state, &vmstate) {
                self.host.log(Level::Info, module_path!(), &format!("domain {name}: {kind} ({detail})"));
                self.host.event(Event::new(kind, name).detail(detail));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_reported() {
        let s = |k: &'static str, d: &str| Some((k, d.to_owned()));
        let cases = [
            (st::RUNNING, "poweroff", s("domain.stopped", "poweroff")),
            (st::PAUSED, "saved", s("domain.stopped", "saved")),
            (st::RUNNING, "aborted", s("domain.stopped", "aborted")),
            (st::SHUTDOWN, "poweroff", s("domain.stopped", "poweroff")),
            (st::SHUTOFF, "running", s("domain.started", "running")),
            (st::CRASHED, "paused", s("domain.started", "paused")),
            (st::RUNNING, "paused", s("domain.suspended", "paused")),
            (st::PAUSED, "running", s("domain.resumed", "running")),
            (st::RUNNING, "stopping", None),
            (st::SHUTOFF, "aborted", None),
            (st::RUNNING, "running", None),
        ];
        for (before, vmstate, want) in cases {
            assert_eq!(transition(before, libvirt_state(vmstate).0, vmstate), want, "{before} -> {vmstate}");
        }
    }

    #[test]
    fn own_changes_settle_once() {
        let s = Shared::default();
        s.expect("u1", st::RUNNING);
        s.expect("u2", st::SHUTOFF);
        s.expect("u1", st::PAUSED);
        assert_eq!(s.settle("u1"), Some(st::PAUSED));
        assert_eq!(s.settle("u1"), None);
        s.forget("u2", st::SHUTOFF);
        assert_eq!(s.settle("u2"), None);
    }
}
