//! The HTTP surface: libvirt codes and texts in JSON errors, read-only socket, bad input (413,
//! malformed JSON, unknown route), the served OpenAPI document, and the event stream's resume.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    io::{BufRead, BufReader, Write},
    time::Duration,
};

use crate::common::{Connect, Daemon, create, plugin_dir, raw};
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
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &["--max-xml-body".into(), "4096".into()]);
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

/// Event numbers continue across daemon runs: a cursor from the previous run gets `reset`, never
/// this run's events under numbers it has seen; this run's own cursors resume as usual.
#[test]
fn events_resume_across_a_restart_gets_reset() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    create(&d.connect(), "s1");
    let before = read_events(&d.socket(), Some(0), 2);
    assert_eq!(before, [(1, "snapshot.created".into()), (2, "snapshot.current_changed".into())]);
    d.kill_and_restart();
    let conn = d.connect();
    create(&conn, "s2");
    create(&conn, "s3");
    for old in [0, 1, 2] {
        assert_eq!(read_events(&d.socket(), Some(old), 1)[0].1, "reset", "cursor {old} of the previous run");
    }
    // This run's numbers start past the previous run's reservation, and resume among themselves.
    let first = read_events(&d.socket(), Some(u64::MAX), 1);
    assert_eq!(first[0].1, "reset");
    let reserved: u64 = std::fs::read_to_string(d.dir.join("state/event-seq")).unwrap().trim().parse().unwrap();
    assert!(reserved > 2);
    let ours = (reserved - virtplug_daemon::events::SEQ_BLOCK)..reserved;
    let base = ours.start;
    assert_eq!(
        read_events(&d.socket(), Some(base - 1), 4),
        [
            (base, "snapshot.created".into()),
            (base + 1, "snapshot.current_changed".into()),
            (base + 2, "snapshot.created".into()),
            (base + 3, "snapshot.current_changed".into())
        ]
    );
    assert_eq!(
        read_events(&d.socket(), Some(base + 1), 2),
        [(base + 2, "snapshot.created".into()), (base + 3, "snapshot.current_changed".into())]
    );
}

/// Reads events after `since` until one of kind `until` arrives; returns their kinds.
fn kinds_until(socket: &std::path::Path, since: u64, until: &str) -> Vec<String> {
    let mut kinds = Vec::new();
    let mut n = 1;
    loop {
        let got = read_events(socket, Some(since), n);
        if let Some(last) = got.last()
            && last.1 == until
        {
            kinds = got.into_iter().map(|(_, k)| k).collect();
            break;
        }
        n += 1;
        assert!(n < 200, "no {until} event: {kinds:?}");
    }
    kinds
}

/// `snapshot.metadata_dropped` only when the source's metadata was really dropped.
#[test]
fn a_failed_migration_emits_no_metadata_dropped() {
    use virtplug_host::remote::{
        Client,
        wire::{MigrationRequest, TaskState},
    };
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
    let b = Daemon::start(&tmp.path().join("b"), &plugins, &[]);
    create(&a.connect(), "s1");
    // B holds another `s1` (another description): the import is refused, A keeps everything.
    b.connect()
        .snapshot_create("test", "<domainsnapshot><name>s1</name><description>other</description></domainsnapshot>", 0)
        .unwrap();
    let client = Client::from_uri(&a.uri(), false).unwrap();
    let cursor = read_events(&a.socket(), Some(0), 2).last().unwrap().0;
    let request = MigrationRequest { domain: "test".into(), to: b.uri(), dry_run: false };
    let task = client.start_migration(&request).unwrap();
    assert_eq!(client.wait_task(task.id, |_| {}).unwrap().state, TaskState::Failed);
    let kinds = kinds_until(&a.socket(), cursor, "task.finished");
    assert!(!kinds.iter().any(|k| k == "snapshot.metadata_dropped"), "{kinds:?}");
    assert_eq!(a.connect().snapshot_list("test", 0).unwrap().len(), 1);

    // Once B no longer conflicts, the same migration drops A's metadata and says so.
    b.connect().snapshot_delete("test", "s1", 0).unwrap();
    let task = client.start_migration(&request).unwrap();
    assert_eq!(client.wait_task(task.id, |_| {}).unwrap().state, TaskState::Succeeded);
    let kinds = kinds_until(&a.socket(), cursor, "snapshot.metadata_dropped");
    assert_eq!(kinds.iter().filter(|k| *k == "task.finished").count(), 2, "{kinds:?}");
}
