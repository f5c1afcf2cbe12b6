//! What a qemu guest does on its own reaches an SSE client of virtplugd as an event (ABI 1.1
//! host services; the connection's watcher, `src/watch.rs`): a guest that powers itself off
//! becomes `domain.stopped` on `/v1/events` and the domain is shut off (reason shutdown).
//!
//! The guest is a boot sector that writes the ACPI sleep command to the `pc` machine's PM1a
//! control port (0x604 ← 0x2000), so qemu reports `SHUTDOWN` with `guest: true`. Needs qemu,
//! the built plugin and the built daemon (`cargo build -p virtplug-daemon`); under CI=true a
//! missing qemu is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::{Duration, Instant},
};

/// How long the guest may take to boot and power off before the test fails (emulated, on a
/// loaded CI machine it took over 60 s once).
const GIVE_UP: Duration = Duration::from_secs(180);

use common::{Root, backend, boot_image, dom_xml, qemu_img};
use virtplug_test_support::{Daemon, EventStream, QEMU};

/// `mov dx, 0x604; mov ax, 0x2000; out dx, ax; hlt; jmp hlt`: the guest powers itself off.
const POWEROFF: [u8; 10] = [0xBA, 0x04, 0x06, 0xB8, 0x00, 0x20, 0xEF, 0xF4, 0xEB, 0xFD];

/// One HTTP/1.1 request on the daemon's socket for `uri`: (status, body).
fn request(socket: &Path, method: &str, path: &str, uri: &str, body: Option<&str>) -> (u16, String) {
    let mut s = UnixStream::connect(socket).unwrap();
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nVirtplug-Uri: {uri}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Follows `/v1/events` until an event of `kind` for `domain`; returns every (kind, domain) seen.
/// The stream sends keep-alives, so a missing event would never end it: after [`GIVE_UP`] the
/// test fails instead of hanging (a bound on a failure, not a measurement).
fn follow_until(socket: &Path, kind: &str, domain: &str) -> Vec<(String, String)> {
    let give_up = Instant::now() + GIVE_UP;
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n").unwrap();
    let mut reader = BufReader::new(s);
    let mut seen = Vec::new();
    let mut current = String::new();
    let mut line = String::new();
    loop {
        assert!(Instant::now() < give_up, "no event {kind} for {domain} within {GIVE_UP:?}; saw {seen:?}");
        match reader.read_line(&mut line) {
            Ok(0) => panic!("the event stream ended; saw {seen:?}"),
            Ok(_) if line.ends_with('\n') => {}
            // A timeout: keep what was read of the line and look again.
            Ok(_) | Err(_) => continue,
        }
        let text = std::mem::take(&mut line);
        if let Some(k) = text.strip_prefix("event: ") {
            current = k.trim().to_owned();
        } else if let Some(data) = text.strip_prefix("data: ") {
            let v: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
            let dom = v["domain"].as_str().unwrap_or("").to_owned();
            seen.push((current.clone(), dom.clone()));
            if current == kind && dom == domain {
                return seen;
            }
        }
    }
}

/// A daemon serving the built plugin and `root`'s URI: (daemon, URI).
fn daemon_for(root: &Root) -> (Daemon, String) {
    let plugins = root.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(QEMU.built(), plugins.join("libvirtplug_plugin_qemu.so")).unwrap();
    let uri = root.uri();
    let daemon = Daemon::start(&root.path().join("daemon"), &plugins, &["--allow-uri".into(), uri.clone()]);
    (daemon, uri)
}

#[test]
fn a_guest_initiated_shutdown_reaches_an_sse_client() {
    if !backend() {
        return;
    }
    let root = Root::new();
    let img = boot_image(&root, "poweroff.qcow2", &POWEROFF);
    let (daemon, uri) = daemon_for(&root);
    let socket = daemon.socket();

    let xml = dom_xml("poweroff", &[("vda", &img, "qcow2", false)]);
    let define = serde_json::json!({ "xml": xml }).to_string();
    let (status, body) = request(&socket, "POST", "/v1/domains", &uri, Some(&define));
    assert_eq!(status, 201, "{body}");
    let (status, body) = request(&socket, "POST", "/v1/domains/poweroff/start", &uri, None);
    assert!((200..300).contains(&status), "{status} {body}");

    // Nobody asks the daemon anything now: the guest powers itself off and the event arrives.
    let seen = follow_until(&socket, "domain.stopped", "poweroff");
    let kinds: Vec<&str> = seen.iter().filter(|(_, d)| d == "poweroff").map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["domain.defined", "domain.started", "domain.stopped"], "{}", daemon.log());
    assert!(daemon.log().contains("guest shutdown"), "the plugin's detail is logged: {}", daemon.log());

    let (status, body) = request(&socket, "GET", "/v1/domains/poweroff", &uri, None);
    assert_eq!(status, 200, "{body}");
    let d: serde_json::Value = serde_json::from_str(&body).unwrap();
    // libvirt's VIR_DOMAIN_SHUTOFF (5), VIR_DOMAIN_SHUTOFF_SHUTDOWN (1).
    assert_eq!((d["state"].as_u64(), d["reason"].as_u64()), (Some(5), Some(1)), "{body}");
}

/// The events of one domain, step by step, as an SSE client sees them: defined, a shut-off
/// snapshot `off` made with `off` (body), started, a snapshot `s` made with `create` (body),
/// reverts to `s` with no flag, PAUSED and RUNNING, a revert to `off` (the domain stops), a
/// start. Each step's list runs up to its own event, so whatever the watcher raises after a
/// revert lands in the next step's list.
fn steps(
    daemon: &Daemon,
    events: &mut EventStream,
    uri: &str,
    name: &str,
    uuid: &str,
    img: &Path,
    (off, create): (&str, &str),
) -> Vec<Vec<String>> {
    use virtplug_plugin_sdk::flags::snapshot_revert as rf;
    let socket = daemon.socket();
    let mut out = Vec::new();
    let mut step = |method: &str, path: String, body: Option<String>, until: &str| {
        let (status, text) = request(&socket, method, &path, uri, body.as_deref());
        assert!((200..300).contains(&status), "{path}: {status} {text}");
        out.push(events.until(until, name, daemon, GIVE_UP));
        // after a revert the watcher (one look every 200 ms) gets a few looks before the next
        // step, so what it raises about the revert shows in that step's list (a pause, not a
        // measurement)
        if until == "snapshot.reverted" {
            std::thread::sleep(Duration::from_millis(600));
        }
    };
    let xml = dom_xml(name, &[("vda", img, "qcow2", false)]).replace(common::UUID, uuid);
    step("POST", "/v1/domains".into(), Some(serde_json::json!({ "xml": xml }).to_string()), "domain.defined");
    let snapshots = format!("/v1/domains/{name}/snapshots");
    step("POST", snapshots.clone(), Some(off.to_owned()), "snapshot.created");
    step("POST", format!("/v1/domains/{name}/start"), None, "domain.started");
    step("POST", snapshots.clone(), Some(create.to_owned()), "snapshot.created");
    let flags = |f: u32| Some(serde_json::json!({ "flags": f }).to_string());
    for f in [0, rf::PAUSED, rf::RUNNING] {
        step("POST", format!("{snapshots}/s/revert"), flags(f), "snapshot.reverted");
    }
    step("POST", format!("{snapshots}/off/revert"), flags(0), "snapshot.reverted");
    step("POST", format!("/v1/domains/{name}/start"), None, "domain.started");
    out
}

#[test]
fn external_reverts_raise_what_internal_reverts_raise() {
    use virtplug_plugin_sdk::flags::snapshot_create as cf;
    if !backend() {
        return;
    }
    let root = Root::new();
    let (daemon, uri) = daemon_for(&root);
    let mut events = EventStream::open(&daemon.socket());
    let img = |n: &str| {
        let p = root.path().join(n);
        qemu_img(&["create", "-q", "-f", "qcow2", p.to_str().unwrap(), "64M"]);
        p
    };
    let body = |xml: String, flags: u32| serde_json::json!({ "xml": xml, "flags": flags }).to_string();
    let snap = "<domainsnapshot><name>s</name></domainsnapshot>".to_owned();
    let off = "<domainsnapshot><name>off</name></domainsnapshot>".to_owned();
    let (int_off, ext_off) = (body(off.clone(), 0), body(off, cf::DISK_ONLY));
    // internal, with memory: reverted in place (snapshot-load)
    let u1 = "6695eb01-f6a4-8304-79aa-97f2502e1901";
    let internal = steps(&daemon, &mut events, &uri, "int", u1, &img("i.qcow2"), (&int_off, &body(snap.clone(), 0)));
    // external with memory: every revert starts a new qemu from the save image
    let mem = root.path().join("x.mem");
    let xml = format!(
        "<domainsnapshot><name>s</name><memory snapshot='external' file='{}'/></domainsnapshot>",
        mem.display()
    );
    let u2 = "6695eb01-f6a4-8304-79aa-97f2502e1902";
    let memory = steps(&daemon, &mut events, &uri, "mem", u2, &img("x.qcow2"), (&ext_off, &body(xml, 0)));
    // external disk-only: reverted in place (new overlays switched under the running qemu)
    let u3 = "6695eb01-f6a4-8304-79aa-97f2502e1903";
    let disk = steps(&daemon, &mut events, &uri, "disk", u3, &img("y.qcow2"), (&ext_off, &body(snap, cf::DISK_ONLY)));
    let want: Vec<Vec<&str>> = vec![
        vec!["domain.defined"],
        vec!["snapshot.created"],
        vec!["snapshot.current_changed", "domain.started"],
        vec!["snapshot.created"],
        vec!["snapshot.current_changed", "snapshot.reverted"],
        vec!["snapshot.reverted"],
        vec!["snapshot.reverted"],
        vec!["snapshot.reverted"],
        vec!["snapshot.current_changed", "domain.started"],
    ];
    assert_eq!(internal, want, "{}", daemon.log());
    assert_eq!(memory, internal, "{}", daemon.log());
    assert_eq!(disk, internal, "{}", daemon.log());
}
