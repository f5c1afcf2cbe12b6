//! libvirt's RPC protocol byte by byte against a real virtplugd: the handshake's exact replies,
//! error replies (unknown procedure or program, undecodable payloads, the allow-list,
//! read-only), keepalive, pipelining, hostile framing — which closes only the offending
//! connection while other clients keep being served — and a call that panics in the daemon.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::result_large_err,
    reason = "tests fail loudly on unexpected errors; RemoteError is the error they inspect"
)]

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    time::Duration,
};

use virtplug_libvirt_rpc::{
    packet::{self, Header},
    proto::*,
    xdr::{self, Reader, Xdr},
};

use crate::common::{Daemon, plugin_dir};

fn daemon() -> Option<(tempfile::TempDir, Daemon)> {
    let plugins = plugin_dir()?;
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start_libvirt(&tmp.path().join("d"), &plugins, &[]);
    Some((tmp, d))
}

struct Client {
    s: UnixStream,
    serial: u32,
}

impl Client {
    fn connect(path: &std::path::Path) -> Self {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Self { s, serial: 0 }
    }
    fn send_call(&mut self, procedure: i32, args: &impl Xdr) -> u32 {
        let serial = self.serial;
        self.serial += 1;
        let h = Header {
            prog: REMOTE_PROGRAM,
            vers: REMOTE_PROTOCOL_VERSION,
            proc_: procedure,
            type_: VIR_NET_CALL,
            serial,
            status: VIR_NET_OK,
        };
        self.s.write_all(&packet::encode(&h, args)).unwrap();
        serial
    }
    /// The next packet: header and payload; `None` when the daemon closed the connection.
    fn read(&mut self) -> Option<(Header, Vec<u8>)> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).ok()?;
        let n = packet::body_len(len).unwrap();
        let mut body = vec![0; n];
        self.s.read_exact(&mut body).unwrap();
        let (h, payload) = packet::parse(&body).unwrap();
        Some((h, payload.to_vec()))
    }
    fn call<T: Xdr>(&mut self, procedure: i32, args: &impl Xdr) -> Result<T, RemoteError> {
        let serial = self.send_call(procedure, args);
        let (h, payload) = self.read().expect("a reply");
        assert_eq!((h.proc_, h.serial, h.type_), (procedure, serial, VIR_NET_REPLY));
        if h.status == VIR_NET_ERROR {
            return Err(xdr::from_bytes(&payload).unwrap());
        }
        Ok(xdr::from_bytes(&payload).unwrap())
    }
    fn open(&mut self, name: &str, flags: u32) -> Result<(), RemoteError> {
        self.call::<()>(REMOTE_PROC_CONNECT_OPEN, &RemoteConnectOpenArgs { name: Some(name.to_owned()), flags })
    }
}

fn text(e: &RemoteError) -> (i32, i32, &str) {
    (e.code, e.domain, e.message.as_deref().unwrap_or(""))
}

fn test_domain(c: &mut Client) -> RemoteNonnullDomain {
    let r: RemoteDomainLookupByNameRet =
        c.call(REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, &RemoteDomainLookupByNameArgs { name: "test".into() }).unwrap();
    r.dom
}

#[test]
fn handshake_replies_are_libvirtds() {
    let Some((_tmp, d)) = daemon() else { return };
    let mut c = Client::connect(&d.libvirt_socket());
    // AUTH_LIST: the measured reply, byte for byte.
    c.send_call(REMOTE_PROC_AUTH_LIST, &());
    let mut raw = vec![0u8; 36];
    c.s.read_exact(&mut raw).unwrap();
    assert_eq!(
        raw,
        [
            0, 0, 0, 0x24, 0x20, 0, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 0x42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            1, 0, 0, 0, 0
        ]
    );
    let keepalive: RemoteConnectSupportsFeatureRet =
        c.call(REMOTE_PROC_CONNECT_SUPPORTS_FEATURE, &RemoteConnectSupportsFeatureArgs { feature: 10 }).unwrap();
    assert_eq!(keepalive.supported, 1);
    // Any other feature needs an open connection.
    let e = c
        .call::<RemoteConnectSupportsFeatureRet>(
            REMOTE_PROC_CONNECT_SUPPORTS_FEATURE,
            &RemoteConnectSupportsFeatureArgs { feature: 14 },
        )
        .unwrap_err();
    assert_eq!(text(&e), (1, 7, "internal error: hypervisor connection not open"));
    // Calls before open.
    let e = c.call::<()>(REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, &RemoteDomainLookupByNameArgs { name: "test".into() });
    assert_eq!(text(&e.unwrap_err()), (1, 7, "internal error: connection not open"));
    // The allow-list: nothing but the served URIs is opened.
    let e = c.open("mock:///tmp/elsewhere", 0).unwrap_err();
    assert_eq!(text(&e), (29, 0, "operation forbidden: URI 'mock:///tmp/elsewhere' is not served by this daemon"));
    // Unknown bits (the client's USER | AUTOSTART) are accepted.
    c.open(&d.libvirt_name(), 6).unwrap();
    assert_eq!(text(&c.open(&d.libvirt_name(), 0).unwrap_err()), (1, 7, "internal error: connection already open"));
    for (feature, want) in [(14, 1), (15, 1), (8, 0), (9, 0)] {
        let r: RemoteConnectSupportsFeatureRet =
            c.call(REMOTE_PROC_CONNECT_SUPPORTS_FEATURE, &RemoteConnectSupportsFeatureArgs { feature }).unwrap();
        assert_eq!(r.supported, want, "feature {feature}");
    }
    let uri: RemoteConnectGetUriRet = c.call(REMOTE_PROC_CONNECT_GET_URI, &()).unwrap();
    assert_eq!(uri.uri, d.libvirt_name());
    let dom = test_domain(&mut c);
    assert_eq!((dom.name.as_str(), dom.id), ("test", 1));
    assert_eq!(dom.uuid[..4], [0x66, 0x95, 0xeb, 0x01]);
    c.call::<()>(REMOTE_PROC_CONNECT_CLOSE, &()).unwrap();
    assert!(c.read().is_none(), "the daemon closes after CONNECT_CLOSE");
}

#[test]
fn errors_have_libvirts_shape() {
    let Some((_tmp, d)) = daemon() else { return };
    let mut c = Client::connect(&d.libvirt_socket());
    c.open(&d.libvirt_name(), 0).unwrap();
    // An unknown procedure: exactly what clients turn into VIR_ERR_NO_SUPPORT.
    let e = c.call::<()>(9999, &()).unwrap_err();
    assert_eq!((e.code, e.domain, e.level, e.message.as_deref()), (39, 7, 2, Some("unknown procedure: 9999")));
    // An unknown program: the error echoes the call's header.
    let h = Header { prog: 0x1234, vers: 7, proc_: 3, type_: VIR_NET_CALL, serial: 77, status: VIR_NET_OK };
    c.s.write_all(&packet::encode(&h, &())).unwrap();
    let (rh, payload) = c.read().unwrap();
    assert_eq!((rh.prog, rh.vers, rh.proc_, rh.serial, rh.status), (0x1234, 7, 3, 77, VIR_NET_ERROR));
    let e: RemoteError = xdr::from_bytes(&payload).unwrap();
    assert_eq!(text(&e), (39, 7, "Cannot find program 4660 version 7"));
    // Undecodable arguments: a string longer than the payload, then trailing bytes.
    let mut bad = xdr::to_bytes(&100u32);
    bad.extend_from_slice(b"test");
    let serial = c.send_call(REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, &Raw(bad));
    let (rh, payload) = c.read().unwrap();
    assert_eq!((rh.serial, rh.status), (serial, VIR_NET_ERROR));
    assert_eq!(text(&xdr::from_bytes(&payload).unwrap()), (39, 7, "Unable to decode message payload"));
    let mut trailing = xdr::to_bytes(&RemoteDomainLookupByNameArgs { name: "test".into() });
    trailing.extend_from_slice(&[0, 0, 0, 0]);
    let e = c.call::<()>(REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME, &Raw(trailing)).unwrap_err();
    assert_eq!(text(&e), (39, 7, "Unable to decode message payload"));
    // Host errors: the plugin's text, the test driver's error domain for the mock.
    let dom = test_domain(&mut c);
    let e = c
        .call::<RemoteDomainSnapshotLookupByNameRet>(
            REMOTE_PROC_DOMAIN_SNAPSHOT_LOOKUP_BY_NAME,
            &RemoteDomainSnapshotLookupByNameArgs { dom: dom.clone(), name: "nosuch".into(), flags: 0 },
        )
        .unwrap_err();
    assert_eq!(text(&e), (72, 12, "Domain snapshot not found: no domain snapshot with matching name 'nosuch'"));
    let e = c
        .call::<RemoteDomainSnapshotCurrentRet>(
            REMOTE_PROC_DOMAIN_SNAPSHOT_CURRENT,
            &RemoteDomainSnapshotCurrentArgs { dom: dom.clone(), flags: 0 },
        )
        .unwrap_err();
    assert_eq!(text(&e), (72, 12, "Domain snapshot not found: the domain does not have a current snapshot"));
    let e = c
        .call::<RemoteDomainSnapshotCurrentRet>(
            REMOTE_PROC_DOMAIN_SNAPSHOT_CURRENT,
            &RemoteDomainSnapshotCurrentArgs { dom, flags: 4 },
        )
        .unwrap_err();
    assert_eq!(text(&e), (8, 12, "unsupported flags (0x4) in function snapshot_current"));
    // The connection is still good.
    let r: RemoteConnectNumOfDomainsRet = c.call(REMOTE_PROC_CONNECT_NUM_OF_DOMAINS, &()).unwrap();
    assert_eq!(r.num, 1);
}

/// Pre-encoded arguments.
struct Raw(Vec<u8>);
impl Xdr for Raw {
    fn encode(&self, w: &mut xdr::Writer) {
        // An opaque without its length word: write the bytes as fixed data.
        w.opaque_fixed(&self.0);
    }
    fn decode(_: &mut Reader<'_>) -> Result<Self, xdr::XdrError> {
        unreachable!("only sent")
    }
}

#[test]
fn the_read_only_socket_refuses_every_change() {
    let Some((_tmp, d)) = daemon() else { return };
    let mut ro = Client::connect(&std::path::PathBuf::from(format!("{}-ro", d.libvirt_socket().display())));
    // Flags 0: the socket, not the client, makes it read-only.
    ro.open(&d.libvirt_name(), 0).unwrap();
    let dom = test_domain(&mut ro);
    let e = ro.call::<()>(REMOTE_PROC_DOMAIN_SUSPEND, &RemoteDomainSuspendArgs { dom: dom.clone() }).unwrap_err();
    assert_eq!(text(&e), (29, 20, "operation forbidden: read only access prevents virDomainSuspend"));
    let args = RemoteDomainSnapshotCreateXmlArgs { dom: dom.clone(), xml_desc: "<domainsnapshot/>".into(), flags: 0 };
    let e = ro.call::<RemoteDomainSnapshotCreateXmlRet>(REMOTE_PROC_DOMAIN_SNAPSHOT_CREATE_XML, &args).unwrap_err();
    assert_eq!(text(&e), (29, 35, "operation forbidden: read only access prevents virDomainSnapshotCreateXML"));
    let e = ro
        .call::<RemoteDomainGetXmlDescRet>(
            REMOTE_PROC_DOMAIN_GET_XML_DESC,
            &RemoteDomainGetXmlDescArgs { dom: dom.clone(), flags: 1 },
        )
        .unwrap_err();
    assert_eq!(text(&e), (29, 20, "operation forbidden: virDomainGetXMLDesc with secure flag"));
    // Reads are served, and nothing was created.
    let n: RemoteDomainSnapshotNumRet =
        ro.call(REMOTE_PROC_DOMAIN_SNAPSHOT_NUM, &RemoteDomainSnapshotNumArgs { dom, flags: 0 }).unwrap();
    assert_eq!(n.num, 0);
}

#[test]
fn keepalive_and_pipelined_calls_are_answered() {
    let Some((_tmp, d)) = daemon() else { return };
    let mut c = Client::connect(&d.libvirt_socket());
    c.open(&d.libvirt_name(), 0).unwrap();
    let dom = test_domain(&mut c);
    // PING → PONG, never a reply.
    c.s.write_all(&packet::keepalive(KEEPALIVE_PROC_PING)).unwrap();
    let (h, payload) = c.read().unwrap();
    assert_eq!((h.prog, h.proc_, h.type_, h.serial), (KEEPALIVE_PROGRAM, KEEPALIVE_PROC_PONG, VIR_NET_MESSAGE, 0));
    assert!(payload.is_empty());
    // 500 calls written before any reply is read: every one answered once, matched by serial.
    let mut batch = Vec::new();
    let mut serials = Vec::new();
    for _ in 0..500 {
        let serial = c.serial;
        c.serial += 1;
        let h = Header {
            prog: REMOTE_PROGRAM,
            vers: 1,
            proc_: REMOTE_PROC_DOMAIN_SNAPSHOT_NUM,
            type_: VIR_NET_CALL,
            serial,
            status: VIR_NET_OK,
        };
        batch.extend(packet::encode(&h, &RemoteDomainSnapshotNumArgs { dom: dom.clone(), flags: 0 }));
        serials.push(serial);
    }
    let mut writer = c.s.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&batch).unwrap());
    let mut seen = Vec::new();
    for _ in 0..500 {
        let (h, payload) = c.read().unwrap();
        assert_eq!((h.proc_, h.status), (REMOTE_PROC_DOMAIN_SNAPSHOT_NUM, VIR_NET_OK));
        let r: RemoteDomainSnapshotNumRet = xdr::from_bytes(&payload).unwrap();
        assert_eq!(r.num, 0);
        seen.push(h.serial);
    }
    sender.join().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, serials);
}

#[test]
fn a_ping_is_answered_while_a_call_waits_for_the_store() {
    let Some((_tmp, d)) = daemon() else { return };
    let Some(sqlite3) = virtplug_test_support::need("libvirt socket", virtplug_test_support::find_program("sqlite3"))
    else {
        return;
    };
    let mut c = Client::connect(&d.libvirt_socket());
    c.open(&d.libvirt_name(), 0).unwrap();
    let dom = test_domain(&mut c);
    // Another process takes the store's write lock and keeps it until told to commit.
    let mut holder = std::process::Command::new(sqlite3)
        .arg(d.host().join("mock.db"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_holder = holder.stdin.take().unwrap();
    to_holder.write_all(b"BEGIN IMMEDIATE;\nSELECT 'locked';\n").unwrap();
    let mut from_holder = holder.stdout.take().unwrap();
    let mut said = [0u8; 7];
    from_holder.read_exact(&mut said).unwrap();
    assert_eq!(&said, b"locked\n");
    // A create now waits for the lock; a PING meanwhile is answered at once.
    let xml_desc = "<domainsnapshot><name>waited</name></domainsnapshot>".to_owned();
    let serial = c.send_call(
        REMOTE_PROC_DOMAIN_SNAPSHOT_CREATE_XML,
        &RemoteDomainSnapshotCreateXmlArgs { dom: dom.clone(), xml_desc, flags: 0 },
    );
    std::thread::sleep(Duration::from_millis(300));
    c.s.write_all(&packet::keepalive(KEEPALIVE_PROC_PING)).unwrap();
    c.s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let (h, _) = c.read().expect("a PONG while the create waits");
    assert_eq!((h.prog, h.proc_), (KEEPALIVE_PROGRAM, KEEPALIVE_PROC_PONG));
    // The lock released, the create completes and is answered.
    to_holder.write_all(b"COMMIT;\n").unwrap();
    drop(to_holder);
    assert!(holder.wait().unwrap().success());
    c.s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (h, payload) = c.read().expect("the create's reply");
    assert_eq!((h.proc_, h.serial, h.status), (REMOTE_PROC_DOMAIN_SNAPSHOT_CREATE_XML, serial, VIR_NET_OK));
    let r: RemoteDomainSnapshotCreateXmlRet = xdr::from_bytes(&payload).unwrap();
    assert_eq!(r.snap.name, "waited");
}

#[test]
fn hostile_framing_closes_only_that_connection() {
    let Some((_tmp, d)) = daemon() else { return };
    let mut good = Client::connect(&d.libvirt_socket());
    good.open(&d.libvirt_name(), 0).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("shorter than a header", vec![0, 0, 0, 8, 1, 2, 3, 4]),
        ("over the maximum", ((packet::MAX_PACKET + 1) as u32).to_be_bytes().to_vec()),
        ("length word zero", vec![0, 0, 0, 0]),
    ];
    for (what, bytes) in cases {
        let mut bad = Client::connect(&d.libvirt_socket());
        bad.s.write_all(&bytes).unwrap();
        assert!(bad.read().is_none(), "{what}: the connection is closed");
        let r: RemoteConnectNumOfDomainsRet = good.call(REMOTE_PROC_CONNECT_NUM_OF_DOMAINS, &()).unwrap();
        assert_eq!(r.num, 1, "{what}: other clients are still served");
    }
    // A client that announces 32 MiB, sends a little and hangs up, and one that disconnects
    // with a call in flight.
    let mut partial = Client::connect(&d.libvirt_socket());
    partial.s.write_all(&(packet::MAX_PACKET as u32).to_be_bytes()).unwrap();
    partial.s.write_all(&[0; 1000]).unwrap();
    drop(partial);
    let mut gone = Client::connect(&d.libvirt_socket());
    gone.open(&d.libvirt_name(), 0).unwrap();
    let dom = test_domain(&mut gone);
    gone.send_call(
        REMOTE_PROC_DOMAIN_SNAPSHOT_CREATE_XML,
        &RemoteDomainSnapshotCreateXmlArgs {
            dom,
            xml_desc: "<domainsnapshot><name>x</name></domainsnapshot>".into(),
            flags: 0,
        },
    );
    drop(gone);
    let r: RemoteConnectNumOfDomainsRet = good.call(REMOTE_PROC_CONNECT_NUM_OF_DOMAINS, &()).unwrap();
    assert_eq!(r.num, 1);
    // A client that pipelines thousands of calls and never reads a reply: the daemon stops
    // reading it (bounded calls in flight and replies queued) and serves the others.
    let flood = Client::connect(&d.libvirt_socket());
    let mut writer = flood.s.try_clone().unwrap();
    let name = d.libvirt_name();
    let sender = std::thread::spawn(move || {
        let mut c = Client { s: writer.try_clone().unwrap(), serial: 0 };
        let _ = c.open(&name, 0);
        let args = RemoteDomainLookupByNameArgs { name: "test".into() };
        for serial in 1..5000u32 {
            let h = Header {
                prog: REMOTE_PROGRAM,
                vers: 1,
                proc_: REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME,
                type_: VIR_NET_CALL,
                serial,
                status: VIR_NET_OK,
            };
            if writer.write_all(&packet::encode(&h, &args)).is_err() {
                return serial;
            }
        }
        5000
    });
    std::thread::sleep(Duration::from_millis(500));
    let r: RemoteConnectNumOfDomainsRet = good.call(REMOTE_PROC_CONNECT_NUM_OF_DOMAINS, &()).unwrap();
    assert_eq!(r.num, 1, "served while another client floods");
    flood.s.shutdown(std::net::Shutdown::Both).unwrap();
    sender.join().unwrap();
    let r: RemoteConnectNumOfDomainsRet = good.call(REMOTE_PROC_CONNECT_NUM_OF_DOMAINS, &()).unwrap();
    assert_eq!(r.num, 1);
}

/// The next lifecycle event packet: (callback id, domain name, event, detail).
fn next_event(c: &mut Client) -> (i32, String, i32, i32) {
    let (h, payload) = c.read().expect("an event");
    assert_eq!(
        (h.prog, h.proc_, h.type_, h.status),
        (REMOTE_PROGRAM, REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE, VIR_NET_MESSAGE, VIR_NET_OK)
    );
    let m: RemoteDomainEventCallbackLifecycleMsg = xdr::from_bytes(&payload).unwrap();
    (m.callback_id, m.msg.dom.name, m.msg.event, m.msg.detail)
}

#[test]
fn lifecycle_events_reach_callbacks_from_both_apis() {
    let Some((_tmp, d)) = daemon() else { return };
    let mut listener = Client::connect(&d.libvirt_socket());
    listener.open(&d.libvirt_name(), 0).unwrap();
    let register = |c: &mut Client, event_id: i32| -> Result<i32, RemoteError> {
        c.call::<RemoteConnectDomainEventCallbackRegisterAnyRet>(
            REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
            &RemoteConnectDomainEventCallbackRegisterAnyArgs { event_id, dom: None },
        )
        .map(|r| r.callback_id)
    };
    let lifecycle = register(&mut listener, 0).unwrap();
    let reboot = register(&mut listener, 1).unwrap();
    assert_ne!(lifecycle, reboot, "the server picks distinct ids");
    assert_eq!(text(&register(&mut listener, 27).unwrap_err()), (1, 7, "internal error: unsupported event ID 27"));
    // A change through libvirt's protocol on another connection…
    let mut actor = Client::connect(&d.libvirt_socket());
    actor.open(&d.libvirt_name(), 0).unwrap();
    let dom = test_domain(&mut actor);
    actor.call::<()>(REMOTE_PROC_DOMAIN_SUSPEND, &RemoteDomainSuspendArgs { dom: dom.clone() }).unwrap();
    assert_eq!(next_event(&mut listener), (lifecycle, "test".into(), 3, 0), "Suspended Paused");
    // …and through the HTTP API.
    let post = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
    };
    let (status, body) = crate::common::raw(&d.socket(), &post("/v1/domains/test/resume"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(next_event(&mut listener), (lifecycle, "test".into(), 4, 0), "Resumed Unpaused");
    // A revert of a running domain to a running snapshot: stopped, then started, from snapshot.
    let created: RemoteDomainSnapshotCreateXmlRet = actor
        .call(
            REMOTE_PROC_DOMAIN_SNAPSHOT_CREATE_XML,
            &RemoteDomainSnapshotCreateXmlArgs {
                dom,
                xml_desc: "<domainsnapshot><name>s1</name></domainsnapshot>".into(),
                flags: 0,
            },
        )
        .unwrap();
    actor
        .call::<()>(
            REMOTE_PROC_DOMAIN_REVERT_TO_SNAPSHOT,
            &RemoteDomainRevertToSnapshotArgs { snap: created.snap, flags: 2 },
        )
        .unwrap();
    assert_eq!(next_event(&mut listener), (lifecycle, "test".into(), 5, 6), "Stopped Snapshot");
    assert_eq!(next_event(&mut listener), (lifecycle, "test".into(), 2, 3), "Started Snapshot");
    assert_eq!(next_event(&mut listener), (lifecycle, "test".into(), 3, 5), "Suspended Snapshot");
    // Deregistered: no more events; an unknown id is refused.
    listener
        .call::<()>(
            REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
            &RemoteConnectDomainEventCallbackDeregisterAnyArgs { callback_id: lifecycle },
        )
        .unwrap();
    let e = listener
        .call::<()>(
            REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
            &RemoteConnectDomainEventCallbackDeregisterAnyArgs { callback_id: lifecycle },
        )
        .unwrap_err();
    assert_eq!(text(&e), (1, 7, &*format!("internal error: domain event callback {lifecycle} not registered")));
    let (status, _) = crate::common::raw(&d.socket(), &post("/v1/domains/test/destroy"));
    assert_eq!(status, 200);
    // The next packet on the listener is the reply to this call, not an event.
    let r: RemoteConnectNumOfDomainsRet = listener.call(REMOTE_PROC_CONNECT_NUM_OF_DOMAINS, &()).unwrap();
    assert_eq!(r.num, 0);
}

/// The daemon's threads serving libvirt connections (`libvirt-…`).
fn libvirt_threads(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("libvirt-")))
        .count()
}

#[test]
fn a_call_that_panics_is_answered_with_an_internal_error_and_the_connection_goes_on() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // A fault for tests: every CONNECT_NUM_OF_DOMAINS panics in the daemon's code.
    let fault = format!("panic-in-libvirt-procedure:{REMOTE_PROC_CONNECT_NUM_OF_DOMAINS}");
    let d = Daemon::start_libvirt_with_env(&tmp.path().join("d"), &plugins, &[], &[("VIRTPLUGD_FAULT", &fault)]);
    let pid = d.child.id();
    let idle = libvirt_threads(pid);
    let mut c = Client::connect(&d.libvirt_socket());
    c.open(&d.libvirt_name(), 0).unwrap();
    let answer = (1, 7, "internal error: the call failed unexpectedly (see the daemon's log)");
    for _ in 0..2 {
        let e = c.call::<RemoteConnectNumOfDomainsRet>(REMOTE_PROC_CONNECT_NUM_OF_DOMAINS, &()).unwrap_err();
        assert_eq!(text(&e), answer);
    }
    // The connection goes on: a call, a PING.
    assert_eq!(test_domain(&mut c).name, "test");
    c.s.write_all(&packet::keepalive(KEEPALIVE_PROC_PING)).unwrap();
    assert_eq!(c.read().unwrap().0.proc_, KEEPALIVE_PROC_PONG);
    // Pipelined, so that some run beside another (on the blocking pool): each answered once.
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..20 {
        let serial = c.serial;
        c.serial += 1;
        let proc_ = if i % 2 == 0 { REMOTE_PROC_CONNECT_NUM_OF_DOMAINS } else { REMOTE_PROC_DOMAIN_LOOKUP_BY_NAME };
        let h = Header { prog: REMOTE_PROGRAM, vers: 1, proc_, type_: VIR_NET_CALL, serial, status: VIR_NET_OK };
        batch.extend(if i % 2 == 0 {
            packet::encode(&h, &())
        } else {
            packet::encode(&h, &RemoteDomainLookupByNameArgs { name: "test".into() })
        });
        expected.push((serial, proc_));
    }
    c.s.write_all(&batch).unwrap();
    let mut seen = Vec::new();
    for _ in 0..20 {
        let (h, payload) = c.read().expect("every call answered");
        if h.proc_ == REMOTE_PROC_CONNECT_NUM_OF_DOMAINS {
            assert_eq!(h.status, VIR_NET_ERROR);
            assert_eq!(text(&xdr::from_bytes(&payload).unwrap()), answer);
        } else {
            assert_eq!(h.status, VIR_NET_OK);
        }
        seen.push((h.serial, h.proc_));
    }
    seen.sort_unstable();
    assert_eq!(seen, expected);
    // Each panic logged once; the connection closes as any other, and its threads end.
    c.call::<()>(REMOTE_PROC_CONNECT_CLOSE, &()).unwrap();
    drop(c);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while libvirt_threads(pid) > idle && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(libvirt_threads(pid), idle, "the connection's threads ended");
    assert_eq!(d.log().matches("a libvirt call panicked").count(), 12, "{}", d.log());
}
