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

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::{Duration, Instant},
};

use common::{Model, PASSWORD, Sim, USER};
use virtplug_test_support::{Daemon, VSPHERE};

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

/// One HTTP/1.1 request on the daemon's socket for `uri`: (status, body).
fn request(socket: &Path, method: &str, path: &str, uri: &str) -> (u16, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nVirtplug-Uri: {uri}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

/// The SSE stream of `/v1/events` from its start.
struct Events {
    reader: BufReader<UnixStream>,
    kind: String,
}

impl Events {
    fn open(socket: &Path) -> Self {
        let mut s = UnixStream::connect(socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n").unwrap();
        Self { reader: BufReader::new(s), kind: String::new() }
    }

    /// The kinds of events for `domain` read until (and with) the next `kind` for it; fails
    /// after [`GIVE_UP`] (the stream's keep-alives would otherwise never end it).
    fn until(&mut self, kind: &str, domain: &str, daemon: &Daemon) -> Vec<String> {
        let give_up = Instant::now() + GIVE_UP;
        let mut seen = Vec::new();
        let mut line = String::new();
        loop {
            assert!(
                Instant::now() < give_up,
                "no event {kind} for {domain} within {GIVE_UP:?}; saw {seen:?}; daemon log: {}",
                daemon.log()
            );
            match self.reader.read_line(&mut line) {
                Ok(0) => panic!("the event stream ended; saw {seen:?}"),
                Ok(_) if line.ends_with('\n') => {}
                // A timeout: keep what was read of the line and look again.
                Ok(_) | Err(_) => continue,
            }
            let text = std::mem::take(&mut line);
            if let Some(k) = text.strip_prefix("event: ") {
                self.kind = k.trim().to_owned();
            } else if let Some(data) = text.strip_prefix("data: ") {
                let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
                if v["domain"].as_str() == Some(domain) {
                    seen.push(self.kind.clone());
                    if self.kind == kind {
                        return seen;
                    }
                }
            }
        }
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
    let mut events = Events::open(&socket);

    outside.power(&moid, "PowerOffVM_Task");
    assert_eq!(events.until("domain.stopped", vm, &daemon), ["domain.stopped"], "{}", daemon.log());
    let (status, body) = request(&socket, "GET", &format!("/v1/domains/{vm}"), &uri);
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    // libvirt's VIR_DOMAIN_SHUTOFF.
    assert_eq!((status, d["state"].as_u64()), (200, Some(5)), "{body}");

    // virtplugd's own start is told by virtplugd alone; the watcher does not repeat it.
    let (status, body) = request(&socket, "POST", &format!("/v1/domains/{vm}/start"), &uri);
    assert!((200..300).contains(&status), "{status} {body}");
    outside.power(&moid, "SuspendVM_Task");
    assert_eq!(
        events.until("domain.suspended", vm, &daemon),
        ["domain.started", "domain.suspended"],
        "{}",
        daemon.log()
    );
    outside.power(&moid, "PowerOffVM_Task");
    assert_eq!(events.until("domain.stopped", vm, &daemon), ["domain.stopped"], "{}", daemon.log());
    assert!(daemon.log().contains("powered off"), "the plugin's detail is logged: {}", daemon.log());
}
