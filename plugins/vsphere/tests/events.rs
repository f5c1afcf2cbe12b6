//! Power state changes made outside virtplug reach an SSE client of virtplugd as events (ABI 1.1
//! host services; the connection's watcher, `src/watch.rs`): the simulator's VM is powered off,
//! suspended and powered off again by SOAP calls of the test's own session, and virtplugd's
//! `/v1/events` shows each; a start through virtplugd in between is reported once (by the
//! daemon), not again by the watcher.
//!
//! Needs the simulator (tests/vsphere-sim), the built plugin and the built daemon
//! (`cargo build -p virtplug-plugin-vsphere -p virtplug-daemon`); under CI=true a missing
//! simulator is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::time::Duration;

use common::{Model, PASSWORD, Sim, USER};
use virtplug_test_support::{Daemon, EventStream, VSPHERE, request};

/// How long an event may take before the test fails (a bound on a failure, not a measurement).
const GIVE_UP: Duration = Duration::from_secs(60);

/// A SOAP session of the test's own on the simulator: what another vSphere client would do.
struct Outside {
    client: reqwest::blocking::Client,
    url: String,
    cookie: String,
}

impl Outside {
    fn login(sim: &Sim) -> Self {
        let client = reqwest::blocking::Client::new();
        let url = format!("http://{}:{}/sdk", sim.host, sim.port);
        let mut me = Self { client, url, cookie: String::new() };
        let login = format!(
            r#"<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>{USER}</userName><password>{PASSWORD}</password></Login>"#
        );
        let resp = me.post(&login);
        let cookie = resp.headers().get("set-cookie").expect("a session cookie").to_str().unwrap();
        me.cookie = cookie.split(';').next().unwrap().to_owned();
        assert!(resp.status().is_success(), "Login: {}", resp.text().unwrap());
        me
    }

    fn post(&self, body: &str) -> reqwest::blocking::Response {
        let envelope = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
        );
        let mut req = self.client.post(&self.url).header("Content-Type", "text/xml").body(envelope);
        if !self.cookie.is_empty() {
            req = req.header("Cookie", &self.cookie);
        }
        req.send().unwrap()
    }

    /// The VM's moid by its BIOS uuid.
    fn vm(&self, uuid: &str) -> String {
        let find = format!(
            r#"<FindByUuid xmlns="urn:vim25"><_this type="SearchIndex">SearchIndex</_this><uuid>{uuid}</uuid><vmSearch>true</vmSearch></FindByUuid>"#
        );
        let text = self.post(&find).text().unwrap();
        let start = text.find(r#"type="VirtualMachine">"#).unwrap_or_else(|| panic!("FindByUuid: {text}"));
        let rest = &text[start + r#"type="VirtualMachine">"#.len()..];
        rest[..rest.find('<').unwrap()].to_owned()
    }

    /// Runs a power task (the simulator finishes it before answering).
    fn power(&self, moid: &str, method: &str) {
        let body = format!(r#"<{method} xmlns="urn:vim25"><_this type="VirtualMachine">{moid}</_this></{method}>"#);
        let resp = self.post(&body);
        let ok = resp.status().is_success();
        assert!(ok, "{method}: {}", resp.text().unwrap());
    }
}

#[test]
fn an_out_of_band_power_off_reaches_an_sse_client() {
    let Some(sim) = Sim::start(Model::Vpx) else { return };
    let (vm, uuid) = Model::Vpx.vm();
    let root = tempfile::tempdir().unwrap();
    let plugins = root.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(VSPHERE.built(), plugins.join("libvirtplug_plugin_vsphere.so")).unwrap();
    // SAFETY: set before any thread of this test binary's only test starts; the daemon inherits it.
    unsafe { std::env::set_var(virtplug_plugin_vsphere::uri::PASSWORD_ENV, PASSWORD) };
    let uri = sim.uri("", "");
    let daemon = Daemon::start(&root.path().join("daemon"), &plugins, &["--allow-uri".into(), uri.clone()]);
    let socket = daemon.socket();

    // Opens the daemon's read-write connection (and with it the watcher).
    let (status, body) = request(&socket, "GET", "/v1/domains", &uri);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(vm), "{body}");

    let outside = Outside::login(&sim);
    let moid = outside.vm(uuid);
    let mut events = EventStream::open(&socket);

    outside.power(&moid, "PowerOffVM_Task");
    assert_eq!(events.until("domain.stopped", vm, &daemon, GIVE_UP), ["domain.stopped"], "{}", daemon.log());
    let (status, body) = request(&socket, "GET", &format!("/v1/domains/{vm}"), &uri);
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    // libvirt's VIR_DOMAIN_SHUTOFF.
    assert_eq!((status, d["state"].as_u64()), (200, Some(5)), "{body}");

    // virtplugd's own start is told by virtplugd alone; the watcher does not repeat it.
    let (status, body) = request(&socket, "POST", &format!("/v1/domains/{vm}/start"), &uri);
    assert!((200..300).contains(&status), "{status} {body}");
    outside.power(&moid, "SuspendVM_Task");
    assert_eq!(
        events.until("domain.suspended", vm, &daemon, GIVE_UP),
        ["domain.started", "domain.suspended"],
        "{}",
        daemon.log()
    );
    outside.power(&moid, "PowerOffVM_Task");
    assert_eq!(events.until("domain.stopped", vm, &daemon, GIVE_UP), ["domain.stopped"], "{}", daemon.log());
    assert!(daemon.log().contains("powered off"), "the plugin's detail is logged: {}", daemon.log());
}
