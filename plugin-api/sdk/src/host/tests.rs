//! The host services through the exported root module: `open_with_host` makes them current for
//! the connection's calls and keeps them for the plugin's own threads; `open` (a 1.0 host) gives
//! a connection whose logging, events and progress go nowhere.
#![allow(clippy::unwrap_used, reason = "tests: a failed expectation is the failure")]

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use virtplug_model::{self as model, codes, flags::ops};
use virtplug_plugin_api::{
    Capabilities, HostServices, HostServicesBox, PluginEvent,
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RResult, RStr},
    },
};

use crate::{
    Driver, Plugin, PluginDescriptor,
    guard::root_module,
    host::{self, Event, Host},
};

/// Records every call the plugin makes into the host; `cancel` answers `cancelled()`.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<Vec<String>>>,
    cancel: Arc<AtomicBool>,
}

impl HostServices for Recorder {
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>) {
        self.calls.lock().unwrap().push(format!("log {level} {target}: {message}"));
    }
    fn event(&self, e: PluginEvent) {
        let snap = e.snapshot.into_option().map(|s| s.into_string()).unwrap_or_default();
        self.calls.lock().unwrap().push(format!("event {} {} {snap} {}", e.kind, e.domain, e.detail));
    }
    fn progress(&self, done: u64, total: u64) {
        self.calls.lock().unwrap().push(format!("progress {done}/{total}"));
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// A plugin that uses every service: the current host in `domain_start`, the handle kept at
/// open from a thread of its own in `domain_shutdown`.
struct Svc {
    kept: Host,
}

impl Driver for Svc {
    fn domain_start(&self, dom: &str) -> model::Result<()> {
        crate::plugin_log!(Debug, "starting {dom}");
        host::progress(1, 2);
        if host::cancelled() {
            return Err(model::Error::new(codes::OPERATION_FAILED, "cancelled"));
        }
        host::event(Event::new("domain.started", dom).detail("booted"));
        Ok(())
    }
    fn domain_shutdown(&self, dom: &str) -> model::Result<()> {
        let kept = self.kept.clone();
        let dom = dom.to_owned();
        std::thread::spawn(move || kept.event(Event::new("domain.stopped", dom).snapshot("s1"))).join().unwrap();
        Ok(())
    }
}

impl Plugin for Svc {
    const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
        name: "svc",
        version: "0",
        schemes: &["svc"],
        ops: ops::DOMAIN_START | ops::DOMAIN_SHUTDOWN,
        caps: Capabilities {
            snapshot_create: 0,
            snapshot_revert: 0,
            snapshot_delete: 0,
            snapshot_list: 0,
            snapshot_xml: 0,
            snapshot_import: 0,
            domain_undefine: 0,
            domain_xml: 0,
        },
    };
    fn open(_uri: &str, _read_only: bool) -> model::Result<Box<dyn Driver>> {
        host::log(host::Level::Info, "svc", "open");
        Ok(Box::new(Svc { kept: host::current() }))
    }
}

#[test]
fn services_reach_the_host_during_calls_and_from_the_plugins_threads() {
    let recorder = Recorder::default();
    let module = root_module::<Svc>();
    let open_with_host = module.open_with_host().unwrap();
    let services = HostServicesBox::from_value(recorder.clone(), TD_Opaque);
    let driver = open_with_host(RStr::from("svc:///"), false, services).into_result().unwrap();
    driver.domain_start(RStr::from("vm1")).into_result().unwrap();
    driver.domain_shutdown(RStr::from("vm1")).into_result().unwrap();
    recorder.cancel.store(true, Ordering::Relaxed);
    let e = driver.domain_start(RStr::from("vm2")).into_result().unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::OPERATION_FAILED, "cancelled"));
    assert_eq!(
        *recorder.calls.lock().unwrap(),
        [
            "log 3 svc: open",
            "log 4 virtplug_plugin_sdk::host::tests: starting vm1",
            "progress 1/2",
            "event domain.started vm1  booted",
            "event domain.stopped vm1 s1 ",
            "log 4 virtplug_plugin_sdk::host::tests: starting vm2",
            "progress 1/2",
        ]
    );
    // Outside any call there is no current host.
    assert!(!host::current().is_connected());
    assert!(!host::cancelled());
}

#[test]
fn a_1_0_host_opens_without_services_and_everything_is_a_no_op() {
    let module = root_module::<Svc>();
    let driver = (module.open())(RStr::from("svc:///"), false).into_result().unwrap();
    // Logging, progress and the event go nowhere; cancelled() is false, so the call succeeds.
    assert!(matches!(driver.domain_start(RStr::from("vm1")), RResult::ROk(())));
    assert!(matches!(driver.domain_shutdown(RStr::from("vm1")), RResult::ROk(())));
    assert!(!Host::none().is_connected());
    assert!(!Host::none().cancelled());
}
