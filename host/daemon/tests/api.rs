//! The HTTP surface: libvirt codes and texts in JSON errors, read-only socket, bad input (413,
//! malformed JSON, unknown route), the served OpenAPI document, and the event stream's resume.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    time::Duration,
};

use common::{Daemon, create, plugin_dir, raw};
use virtplug_host::{Connection, Registry, flags::snapshot_xml};

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
}

#[test]
fn errors_bad_input_and_read_only() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &["--max-body".into(), "4096".into()]);
    let sock = d.socket();
    let ro = std::path::PathBuf::from(format!("{}-ro", sock.display()));
    let cases: &[(&std::path::Path, String, u16, &str)] = &[
        (
            &sock,
            post("/v1/domains/test/snapshots", r#"{"xml":"<domainsnapshot/>","flags":2}"#),
            400,
            r#""code":8,"name":"VIR_ERR_INVALID_ARG","message":"Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'""#,
        ),
        (&sock, post("/v1/domains/test/snapshots", "{not json"), 400, "malformed JSON request"),
        (
            &sock,
            post("/v1/domains/test/snapshots", &format!(r#"{{"xml":"{}"}}"#, "x".repeat(8192))),
            413,
            r#""code":8"#,
        ),
        (&sock, get("/v1/nosuch"), 404, "no such route: /v1/nosuch"),
        (&sock, get("/v1/domains/nosuch"), 404, r#""code":42,"name":"VIR_ERR_NO_DOMAIN""#),
        (
            &sock,
            get("/v1/domains/test/snapshots/nosuch"),
            404,
            "Domain snapshot not found: no domain snapshot with matching name 'nosuch'",
        ),
        (&sock, get("/v1/domains/test/snapshots?flags=oops"), 400, "malformed query"),
        (
            &ro,
            post("/v1/domains/test/snapshots", r#"{"xml":"<domainsnapshot/>"}"#),
            403,
            "operation forbidden: read only access prevents virDomainSnapshotCreateXML",
        ),
        (
            &ro,
            get("/v1/domains/test/snapshot-export"),
            403,
            "operation forbidden: virDomainSnapshotGetXMLDesc with secure flag",
        ),
        (&ro, get("/v1/domains"), 200, r#""name":"test""#),
    ];
    for (socket, request, status, needle) in cases {
        let (got, body) = raw(socket, request);
        assert_eq!(got, *status, "{request}: {body}");
        assert!(body.contains(needle), "{request}: {body}");
    }
    // The served document is the generated one.
    let (status, body) = raw(&sock, &get("/openapi.json"));
    assert_eq!(status, 200);
    assert_eq!(body, virtplug_daemon::openapi::document());
    // Through the remote client on the read-only socket: lists work, SECURE does not.
    let conn = Connection::open(&Registry::default(), &d.ro_uri(), true).unwrap();
    create(&d.connect(), "s1");
    assert_eq!(conn.snapshot_list("test", 0).unwrap().len(), 1);
    let e = conn.snapshot_xml("test", "s1", snapshot_xml::SECURE).unwrap_err();
    assert_eq!(e.to_string(), "operation forbidden: virDomainSnapshotGetXMLDesc with secure flag");
}

/// Reads SSE events (id, kind) from `since` until `n` have arrived.
fn read_events(socket: &std::path::Path, since: Option<u64>, n: usize) -> Vec<(u64, String)> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let header = since.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
    s.write_all(format!("GET /v1/events HTTP/1.1\r\nHost: x\r\n{header}\r\n").as_bytes()).unwrap();
    let mut out = Vec::new();
    let (mut id, mut kind) = (0, String::new());
    for line in BufReader::new(s).lines() {
        let line = line.unwrap();
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.trim().parse().unwrap();
        } else if let Some(v) = line.strip_prefix("event: ") {
            kind = v.trim().to_owned();
            out.push((id, kind.clone()));
            if out.len() == n {
                break;
            }
        }
    }
    let _ = kind;
    out
}

#[test]
fn events_resume_from_the_last_id() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let conn = d.connect();
    create(&conn, "s1"); // created + current_changed
    create(&conn, "s2"); // created + current_changed
    let first = read_events(&d.socket(), Some(0), 4);
    assert_eq!(
        first,
        [
            (1, "snapshot.created".into()),
            (2, "snapshot.current_changed".into()),
            (3, "snapshot.created".into()),
            (4, "snapshot.current_changed".into())
        ]
    );
    // Missed while disconnected: a revert and a metadata drop.
    conn.snapshot_revert("test", "s1", 0).unwrap();
    conn.snapshot_delete("test", "s2", virtplug_host::flags::snapshot_delete::METADATA_ONLY).unwrap();
    let resumed = read_events(&d.socket(), Some(4), 3);
    assert_eq!(
        resumed,
        [
            (5, "snapshot.reverted".into()),
            (6, "snapshot.current_changed".into()),
            (7, "snapshot.metadata_dropped".into())
        ]
    );
    // A cursor from another daemon run gets `reset`.
    let reset = read_events(&d.socket(), Some(1_000_000), 1);
    assert_eq!(reset[0].1, "reset");
}
