//! The connection's watcher: power state changes made outside this connection (in vCenter's
//! client, by another tool, by HA) reach the host as events (ABI 1.1 host services).
//!
//! One property filter on a private property collector covers `name` and `runtime.powerState`
//! of every VM in the connection's scope (a container view); `WaitForUpdatesEx` with
//! [`WAIT_SECONDS`] runs in a loop on a thread of its own, on a session of its own (a long wait
//! must not hold the connection's session or count in its round trips). A VM whose power state
//! changes is reported: `domain.started` (`powered on`), `domain.stopped` (`powered off`),
//! `domain.suspended` (`suspended`), `domain.resumed` (`resumed`). Changes this connection made
//! itself are recorded before the task starts ([`Shared::expect`]) and not reported again (the
//! host already told everyone).
//!
//! The first answer (the state when the watcher starts) is taken during `open`, so a change
//! made after `open` returned is never missed. After a failure (server gone, session expired)
//! the watcher sets everything up again after [`RETRY`] and reports what changed meanwhile.
//! Only read-write connections opened by a host that offers services are watched. The thread
//! ends within [`WAIT_SECONDS`] once the connection is dropped, and logs its session out.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use virtplug_plugin_sdk::host::{self, Event, Host, Level};

use crate::{
    fault::Subject,
    soap::{CallError, CallResult, Soap},
    uri::{Credentials, Target},
    vim::{self, MoRef, ObjSpec},
    xmldom::{Element, escape},
};

/// `maxWaitSeconds` of each wait: how long a dropped connection's watcher may outlive it.
pub const WAIT_SECONDS: u32 = 5;
/// Pause before setting up again after a failure.
pub const RETRY: Duration = Duration::from_secs(5);

/// What the connection and its watcher share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set when the connection is dropped.
    stop: AtomicBool,
    /// Power states this connection is bringing VMs to: (moid, `runtime.powerState`).
    own: Mutex<Vec<(String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Records that this connection is about to bring `vm` to `state` (before the call, so the
    /// watcher cannot see the change first).
    pub(crate) fn expect(&self, vm: &MoRef, state: &str) {
        lock(&self.own).push((vm.value.clone(), state.to_owned()));
    }
    /// Forgets an expectation whose call failed.
    pub(crate) fn forget(&self, vm: &MoRef, state: &str) {
        let mut own = lock(&self.own);
        if let Some(i) = own.iter().position(|(m, s)| *m == vm.value && s == state) {
            own.remove(i);
        }
    }
    /// The power state this connection last brought `moid` to, if it did since the last
    /// change seen (consumes the records): what a change is compared from, so that the
    /// connection's own change is not reported, and a change made elsewhere right after it
    /// (coalesced in one update) is reported from there.
    fn settle(&self, moid: &str) -> Option<String> {
        let mut own = lock(&self.own);
        let last = own.iter().rev().find(|(m, _)| m == moid).map(|(_, s)| s.clone());
        own.retain(|(m, _)| m != moid);
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

/// The `runtime.powerState` a power method brings a VM to.
pub(crate) fn target_state(method: &str) -> Option<&'static str> {
    match method {
        "PowerOnVM_Task" => Some("poweredOn"),
        "PowerOffVM_Task" | "ShutdownGuest" => Some("poweredOff"),
        "SuspendVM_Task" => Some("suspended"),
        _ => None,
    }
}

/// What a change of `runtime.powerState` from `before` to `after` is reported as.
fn transition(before: &str, after: &str) -> Option<(&'static str, &'static str)> {
    match (before, after) {
        ("poweredOn" | "suspended", "poweredOff") => Some(("domain.stopped", "powered off")),
        ("poweredOff", "poweredOn") => Some(("domain.started", "powered on")),
        ("suspended", "poweredOn") => Some(("domain.resumed", "resumed")),
        ("poweredOn", "suspended") => Some(("domain.suspended", "suspended")),
        _ => None,
    }
}

/// One VM's change from an update set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Update {
    /// `enter`, `modify` or `leave`.
    kind: String,
    moid: String,
    name: Option<String>,
    state: Option<String>,
}

/// Reads a `WaitForUpdatesEx` answer: its version and the VMs' changes.
fn parse_updates(resp: &Element) -> (Option<String>, Vec<Update>) {
    let Some(rv) = resp.child("returnval") else { return (None, Vec::new()) };
    let version = rv.child_text("version").map(str::to_owned);
    let mut out = Vec::new();
    for os in rv.children_named("filterSet").flat_map(|fs| fs.children_named("objectSet")) {
        let Some(obj) = os.child("obj").and_then(MoRef::from_element) else { continue };
        let value = |path: &str| {
            os.children_named("changeSet")
                .filter(|c| c.child_text("name") == Some(path))
                .find_map(|c| c.child("val").map(|v| v.text.trim().to_owned()))
        };
        out.push(Update {
            kind: os.child_text("kind").unwrap_or("modify").to_owned(),
            moid: obj.value,
            name: value("name"),
            state: value("runtime.powerState"),
        });
    }
    (version, out)
}

/// A session of the watcher's own with its private collector and the last version seen.
struct Session {
    soap: Soap,
    collector: MoRef,
    version: String,
}

impl Session {
    fn close(self) {
        let body = format!(
            r#"<DestroyPropertyCollector xmlns="urn:vim25">{}</DestroyPropertyCollector>"#,
            self.collector.xml("_this")
        );
        let _ = self.soap.call("DestroyPropertyCollector", &body);
        self.soap.logout();
    }
}

/// The watcher's state (moved to its thread once the first answer is in).
pub(crate) struct Watcher {
    target: Target,
    creds: Credentials,
    container: MoRef,
    shared: Arc<Shared>,
    host: Host,
    /// Every VM seen: moid → (name as vSphere writes it, `runtime.powerState`).
    known: HashMap<String, (String, String)>,
    session: Option<Session>,
}

/// Starts watching `container` when the host of the running `open` offers services; returns
/// what the connection shares with the watcher.
pub(crate) fn start(target: &Target, creds: &Credentials, container: &MoRef) -> Option<Arc<Shared>> {
    let host = host::current();
    // Only when the host has a reader for events (a daemon): a CLI command starts no watcher.
    if !host.wants_events() {
        return None;
    }
    let shared = Arc::new(Shared::default());
    let mut w = Watcher {
        target: target.clone(),
        creds: creds.clone(),
        container: container.clone(),
        shared: Arc::clone(&shared),
        host,
        known: HashMap::new(),
        session: None,
    };
    // The first answer now, so that nothing after `open` is missed; a failure is retried on
    // the thread (the connection itself works without its watcher).
    if let Err(e) = w.connect() {
        w.warn(&e);
    }
    let spawned = std::thread::Builder::new().name("vsphere-watch".into()).spawn(move || w.run());
    if let Err(e) = spawned {
        host::log(Level::Warn, module_path!(), &format!("no watcher for vSphere power states: {e}"));
    }
    Some(shared)
}

impl Watcher {
    fn warn(&self, e: &virtplug_plugin_sdk::Error) {
        self.host.log(Level::Warn, module_path!(), &format!("vSphere watcher for {}: {e}", self.target.authority()));
    }

    /// Logs in, creates the view, the collector and the filter, and applies the first answer.
    fn connect(&mut self) -> virtplug_plugin_sdk::Result<()> {
        let soap = Soap::new(&self.target)?;
        let sc = vim::service_content(&soap).map_err(|e| e.into_error("RetrieveServiceContent", Subject::None))?;
        if !sc.api_version.is_empty() {
            soap.set_api_version(&sc.api_version);
        }
        soap.login(&sc.session_manager.value, &self.creds)?;
        let collector = Self::filter(&soap, &sc.property_collector, &sc.view_manager, &self.container)
            .map_err(|e| e.into_error("CreateFilter", Subject::None));
        let collector = match collector {
            Ok(c) => c,
            Err(e) => {
                soap.logout();
                return Err(e);
            }
        };
        let mut session = Session { soap, collector, version: String::new() };
        match Self::wait(&mut session) {
            Ok(updates) => {
                self.apply(updates);
                self.session = Some(session);
                Ok(())
            }
            Err(e) => {
                session.close();
                Err(e.into_error("WaitForUpdatesEx", Subject::None))
            }
        }
    }

    /// A private collector with one filter on every VM's `name` and `runtime.powerState`.
    fn filter(soap: &Soap, pc: &MoRef, view_manager: &MoRef, container: &MoRef) -> CallResult<MoRef> {
        let view = vim::create_vm_view(soap, view_manager, container)?;
        let body =
            format!(r#"<CreatePropertyCollector xmlns="urn:vim25">{}</CreatePropertyCollector>"#, pc.xml("_this"));
        let own = vim::call_moref(soap, "CreatePropertyCollector", &body)?.ok_or_else(|| {
            CallError::Error(virtplug_plugin_sdk::Error::internal(
                "malformed answer from the server: missing property collector",
            ))
        })?;
        let mut b = format!(r#"<CreateFilter xmlns="urn:vim25">{}<spec>"#, own.xml("_this"));
        b.push_str("<propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>runtime.powerState</pathSet></propSet>");
        vim::object_set(&mut b, &ObjSpec::View(&view));
        b.push_str("</spec><partialUpdates>false</partialUpdates></CreateFilter>");
        soap.call("CreateFilter", &b)?;
        Ok(own)
    }

    /// One `WaitForUpdatesEx`; an empty answer (the wait timed out) has no updates.
    fn wait(session: &mut Session) -> CallResult<Vec<Update>> {
        let body = format!(
            r#"<WaitForUpdatesEx xmlns="urn:vim25">{}<version>{}</version><options><maxWaitSeconds>{WAIT_SECONDS}</maxWaitSeconds></options></WaitForUpdatesEx>"#,
            session.collector.xml("_this"),
            escape(&session.version)
        );
        let resp = session.soap.call("WaitForUpdatesEx", &body)?;
        let (version, updates) = parse_updates(&resp);
        if let Some(v) = version {
            session.version = v;
        }
        Ok(updates)
    }

    fn run(mut self) {
        while !self.shared.stopped() {
            let Some(session) = self.session.as_mut() else {
                self.pause();
                if self.shared.stopped() {
                    break;
                }
                if let Err(e) = self.connect() {
                    self.warn(&e);
                }
                continue;
            };
            match Self::wait(session) {
                Ok(updates) => self.apply(updates),
                Err(e) => {
                    self.warn(&e.into_error("WaitForUpdatesEx", Subject::None));
                    if let Some(s) = self.session.take() {
                        s.close();
                    }
                }
            }
        }
        if let Some(s) = self.session.take() {
            s.close();
        }
    }

    /// Waits [`RETRY`], a second at a time so that a dropped connection ends the thread soon.
    fn pause(&self) {
        let step = Duration::from_secs(1);
        let mut left = RETRY;
        while !left.is_zero() && !self.shared.stopped() {
            let now = left.min(step);
            std::thread::sleep(now);
            left -= now;
        }
    }

    /// Records `updates` and reports every power state change this connection did not make.
    fn apply(&mut self, updates: Vec<Update>) {
        for u in updates {
            if u.kind == "leave" {
                self.known.remove(&u.moid);
                continue;
            }
            let before = self.known.get(&u.moid).cloned();
            let name = u.name.or_else(|| before.as_ref().map(|b| b.0.clone())).unwrap_or_default();
            let state = u.state.or_else(|| before.as_ref().map(|b| b.1.clone())).unwrap_or_default();
            self.known.insert(u.moid.clone(), (name.clone(), state.clone()));
            // A VM seen for the first time has nothing to compare with.
            let Some((_, was)) = before else { continue };
            if was == state {
                continue;
            }
            let from = self.shared.settle(&u.moid).unwrap_or(was);
            if let Some((kind, detail)) = transition(&from, &state) {
                let dom = crate::conn::unescape_vm_name(&name);
                self.host.log(Level::Info, module_path!(), &format!("domain {dom}: {kind} ({detail})"));
                self.host.event(Event::new(kind, dom).detail(detail));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn transitions_reported() {
        let cases = [
            ("poweredOn", "poweredOff", Some(("domain.stopped", "powered off"))),
            ("suspended", "poweredOff", Some(("domain.stopped", "powered off"))),
            ("poweredOff", "poweredOn", Some(("domain.started", "powered on"))),
            ("suspended", "poweredOn", Some(("domain.resumed", "resumed"))),
            ("poweredOn", "suspended", Some(("domain.suspended", "suspended"))),
            ("poweredOff", "suspended", None),
            ("poweredOn", "poweredOn", None),
        ];
        for (before, after, want) in cases {
            assert_eq!(transition(before, after), want, "{before} -> {after}");
        }
    }

    #[test]
    fn update_sets_parse() {
        let xml = r#"<WaitForUpdatesExResponse xmlns="urn:vim25"><returnval><version>2</version><filterSet><filter type="PropertyFilter">f</filter><objectSet><kind>modify</kind><obj type="VirtualMachine">vm-1</obj><changeSet><name>runtime.powerState</name><op>assign</op><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="VirtualMachinePowerState">poweredOff</val></changeSet></objectSet><objectSet><kind>leave</kind><obj type="VirtualMachine">vm-2</obj></objectSet></filterSet></returnval></WaitForUpdatesExResponse>"#;
        let el = crate::xmldom::parse(xml).unwrap();
        let (version, ups) = parse_updates(&el);
        assert_eq!(version.as_deref(), Some("2"));
        assert_eq!(
            ups,
            [
                Update { kind: "modify".into(), moid: "vm-1".into(), name: None, state: Some("poweredOff".into()) },
                Update { kind: "leave".into(), moid: "vm-2".into(), name: None, state: None },
            ]
        );
        let (version, ups) =
            parse_updates(&crate::xmldom::parse("<WaitForUpdatesExResponse></WaitForUpdatesExResponse>").unwrap());
        assert_eq!((version, ups.len()), (None, 0));
    }

    #[test]
    fn own_changes_settle_once() {
        let s = Shared::default();
        let (a, b) = (MoRef::new("VirtualMachine", "vm-7"), MoRef::new("VirtualMachine", "vm-8"));
        s.expect(&a, "poweredOn");
        s.expect(&b, "poweredOff");
        s.expect(&a, "suspended");
        assert_eq!(s.settle("vm-7").as_deref(), Some("suspended"));
        assert_eq!(s.settle("vm-7"), None);
        s.forget(&b, "poweredOff");
        assert_eq!(s.settle("vm-8"), None);
    }
}
