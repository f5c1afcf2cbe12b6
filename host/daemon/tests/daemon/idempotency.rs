//! Safe retries and migration progress (issue 15, points 6 and 7): a POST retried with the same
//! `Idempotency-Key` answers the first outcome and runs nothing again (one snapshot, one task,
//! also after a daemon restart); a key reused for another request is 422, a malformed key 400, a
//! retry while the first runs 409; no key keeps today's behaviour. And a migration of 300
//! snapshots reports its progress snapshot by snapshot during the import and the verify.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::path::Path;

use crate::common::{Connect, Daemon, create, plugin_dir};
use virtplug_host::{
    Registry,
    flags::snapshot_list,
    migrate::{self, Journal, Reporter, Side},
    remote::{Client, wire::TaskState},
};

/// A response: status, headers (names lower-cased) and body.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One request over the unix socket (`Connection: close`), with `extra` header lines and a body.
fn http(socket: &Path, method: &str, path: &str, extra: &[&str], body: &str) -> Resp {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    s.write_all(format!("{head}\r\n{body}").as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Resp { status, headers, body: body.to_owned() }
}

fn count(d: &Daemon) -> usize {
    d.connect().snapshot_list("test", snapshot_list::METADATA).unwrap().len()
}

/// (status, code, message) of an error answer.
fn error(r: &Resp) -> (u16, u64, String) {
    let v = r.json();
    (r.status, v["code"].as_u64().unwrap(), v["message"].as_str().unwrap().to_owned())
}

const CREATE: &str = "/v1/domains/test/snapshots";
const UNNAMED: &str = r#"{"xml":"<domainsnapshot/>","flags":0}"#;

#[test]
fn an_unnamed_create_retried_with_its_key_makes_one_snapshot_and_answers_the_same() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let sock = d.socket();
    let key = "Idempotency-Key: create-1";

    let first = http(&sock, "POST", CREATE, &[key], UNNAMED);
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(first.header("idempotent-replayed"), None);
    let first_id = first.header("x-request-id").unwrap().to_owned();
    let retry = http(&sock, "POST", CREATE, &[key, "X-Request-Id: the-retry"], UNNAMED);
    assert_eq!((retry.status, retry.body.as_str()), (201, first.body.as_str()));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.header("x-request-id"), Some(first_id.as_str()), "the first request's id");
    assert_eq!(retry.header("content-type"), Some("application/json"));
    assert_eq!(count(&d), 1, "one snapshot");

    // The same key for another request: refused, nothing runs.
    let other = r#"{"xml":"<domainsnapshot><name>other</name></domainsnapshot>","flags":0}"#;
    let r = http(&sock, "POST", CREATE, &[key], other);
    assert_eq!(
        error(&r),
        (422, 8, "invalid argument: this Idempotency-Key was already used with a different request".into())
    );
    // Another path is another request too.
    let r = http(&sock, "POST", "/v1/domains/nosuch/snapshots", &[key], UNNAMED);
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(count(&d), 1);

    // A malformed key: 400, nothing runs.
    let long = format!("Idempotency-Key: {}", "k".repeat(256));
    for bad in [long.as_str(), "Idempotency-Key: has space", "Idempotency-Key:"] {
        let r = http(&sock, "POST", CREATE, &[bad], UNNAMED);
        assert_eq!(
            error(&r),
            (400, 8, "invalid argument: the Idempotency-Key header must be 1 to 255 visible ASCII characters".into()),
            "{bad}"
        );
    }
    let max = format!("Idempotency-Key: {}", "k".repeat(255));
    let named = r#"{"xml":"<domainsnapshot><name>maxkey</name></domainsnapshot>","flags":0}"#;
    assert_eq!(http(&sock, "POST", CREATE, &[max.as_str()], named).status, 201);
    assert_eq!(count(&d), 2);

    // No key: today's behaviour, every POST runs (the second is refused by the mock, which
    // shows it ran; nothing is replayed).
    let plain = r#"{"xml":"<domainsnapshot><name>plain</name></domainsnapshot>","flags":0}"#;
    let r = http(&sock, "POST", CREATE, &[], plain);
    assert_eq!((r.status, r.header("idempotent-replayed")), (201, None));
    let r = http(&sock, "POST", CREATE, &[], plain);
    assert_eq!((r.status, r.header("idempotent-replayed")), (409, None), "{r:?}");
    assert_eq!(count(&d), 3);

    // An error is an outcome too: kept and replayed, the operation not run again.
    let dup = r#"{"xml":"<domainsnapshot><name>twice</name></domainsnapshot>","flags":0}"#;
    assert_eq!(http(&sock, "POST", CREATE, &[], dup).status, 201);
    let refused = http(&sock, "POST", CREATE, &["Idempotency-Key: dup"], dup);
    assert_eq!(refused.status, 409, "{refused:?}");
    assert_eq!(http(&sock, "POST", CREATE, &["Idempotency-Key: dup"], dup).body, refused.body);

    // PUT too: the edit's answer is replayed.
    let edit = r#"{"xml":"<domainsnapshot><name>renamed</name><state>shutoff</state><creationTime>1</creationTime></domainsnapshot>","flags":0}"#;
    let put = |k: &str| http(&sock, "PUT", "/v1/domains/test/snapshots/twice", &[k], edit);
    let first = put("Idempotency-Key: edit-1");
    let again = put("Idempotency-Key: edit-1");
    assert_eq!((again.status, again.body.as_str()), (first.status, first.body.as_str()));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

#[test]
fn a_retry_while_the_first_runs_is_refused_with_409() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // Tracked imports wait 2 s before their transaction: the first request is surely running
    // when the import record says so.
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &["--fault-import-delay-ms".into(), "2000".into()]);
    let sock = d.socket();
    let body = r#"{"xmls":[],"migration":"m-idem"}"#;
    let key = "Idempotency-Key: import-1";
    let first = {
        let sock = sock.clone();
        std::thread::spawn(move || http(&sock, "POST", "/v1/domains/test/snapshot-import", &[key], body))
    };
    loop {
        let r = http(&sock, "GET", "/v1/imports/m-idem", &[], "");
        if r.json()["state"] == "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let busy = http(&sock, "POST", "/v1/domains/test/snapshot-import", &[key], body);
    assert_eq!(
        error(&busy),
        (409, 55, "Requested operation is not valid: a request with this Idempotency-Key is in progress".into())
    );
    let first = first.join().unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    let later = http(&sock, "POST", "/v1/domains/test/snapshot-import", &[key], body);
    assert_eq!((later.status, later.body.as_str()), (200, first.body.as_str()));
    assert_eq!(later.header("idempotent-replayed"), Some("true"));
}

#[test]
fn a_migration_retried_with_its_key_starts_one_task_also_after_a_restart() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let mut a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
    let b = Daemon::start(&tmp.path().join("b"), &plugins, &[]);
    let ca = a.connect();
    for name in ["s1", "s2", "s3"] {
        create(&ca, name);
    }
    let body = serde_json::json!({ "domain": "test", "to": b.uri() }).to_string();
    let key = "Idempotency-Key: migrate-1";
    let first = http(&a.socket(), "POST", "/v1/migrations", &[key], &body);
    assert_eq!(first.status, 202, "{first:?}");
    let id = first.json()["id"].as_u64().unwrap();
    assert_eq!(first.header("location"), Some(format!("/v1/tasks/{id}").as_str()));
    let retry = http(&a.socket(), "POST", "/v1/migrations", &[key], &body);
    assert_eq!((retry.status, retry.body.as_str()), (202, first.body.as_str()));
    assert_eq!(retry.header("location"), first.header("location"));
    let done = Client::from_uri(&a.uri(), false).unwrap().wait_task(id, |_| {}).unwrap();
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    let migrations = |d: &Daemon| {
        let tasks = http(&d.socket(), "GET", "/v1/tasks", &[], "").json();
        tasks.as_array().unwrap().iter().filter(|t| t["kind"] == "migrate_snapshots").count()
    };
    assert_eq!(migrations(&a), 1, "one task");

    // After a restart the daemon still knows the key: the first answer, no second task.
    a.kill_and_restart();
    let after = http(&a.socket(), "POST", "/v1/migrations", &[key], &body);
    assert_eq!((after.status, after.body.as_str()), (202, first.body.as_str()));
    assert_eq!(after.header("idempotent-replayed"), Some("true"));
    assert_eq!(after.header("x-request-id"), first.header("x-request-id"));
    assert_eq!(migrations(&a), 0, "no task started in this run");
    assert_eq!(count(&b), 3);
}

/// Records every progress report with the step running at the time.
#[derive(Default)]
struct Recorder {
    running: String,
    reports: Vec<(String, u64, u64)>,
}

impl Reporter for Recorder {
    fn step(&mut self, name: &str, state: &str, _message: &str) {
        if state == "running" {
            self.running = name.to_owned();
        }
    }
    fn progress(&mut self, done: u64, total: u64) {
        self.reports.push((self.running.clone(), done, total));
    }
    fn journal(&mut self, _journal: &Journal) -> Result<(), virtplug_host::HostError> {
        Ok(())
    }
}

#[test]
fn a_migration_reports_progress_per_snapshot_during_import_and_verify() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
    let b = Daemon::start(&tmp.path().join("b"), &plugins, &[]);
    let ca = a.connect();
    for i in 0..300 {
        create(&ca, &format!("s{i}"));
    }
    let registry = Registry::default();
    let (from, to) = (Side::open(&registry, &a.uri()).unwrap(), Side::open(&registry, &b.uri()).unwrap());
    let mut rec = Recorder::default();
    let outcome = migrate::migrate(&from, &to, &migrate::new_id(), "test", false, &mut rec).unwrap();
    assert_eq!(outcome.snapshots, 300);
    assert_eq!(count(&b), 300);

    // 2n + 2 units: n checked before the import, its commit, n verified, the source's drop.
    let total = 602;
    assert!(rec.reports.iter().all(|r| r.2 == total), "{:?}", rec.reports);
    assert_eq!(rec.reports.first().map(|r| r.1), Some(0));
    assert_eq!(rec.reports.last().map(|r| (r.0.as_str(), r.1)), Some(("drop_source", total)));
    let done: Vec<u64> = rec.reports.iter().map(|r| r.1).collect();
    assert!(done.windows(2).all(|w| w[0] < w[1]), "strictly rising: {done:?}");
    let within =
        |step: &str, lo: u64, hi: u64| rec.reports.iter().filter(|r| r.0 == step && r.1 > lo && r.1 < hi).count();
    // About 100 reports in all (every 6 units): ~50 while importing, ~50 while verifying.
    assert!(within("import", 0, 301) >= 40, "{:?}", rec.reports);
    assert!(within("verify", 301, total) >= 40, "{:?}", rec.reports);
    assert!(rec.reports.len() <= 110, "throttled: {} reports", rec.reports.len());
}

#[test]
fn a_keyed_body_over_its_limit_is_refused_as_without_a_key_and_keeps_nothing() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &["--max-body".into(), "1024".into()]);
    // No declared length: the body guard counts it as it arrives, under the key's buffering.
    let chunked = format!(
        "POST /v1/domains/test/snapshots/s/revert HTTP/1.1\r\nHost: x\r\nConnection: close\r\nIdempotency-Key: big\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{}\r\n0\r\n\r\n",
        " ".repeat(0x800)
    );
    let text = {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
        s.write_all(chunked.as_bytes()).unwrap();
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(
        text.contains(r#""message":"invalid argument: request body is larger than the 1024 bytes this route accepts""#),
        "{text}"
    );
    // The key was never taken: another request with it runs (and its refusal is kept).
    let r = http(&d.socket(), "POST", "/v1/domains/test/snapshots/s/revert", &["Idempotency-Key: big"], "{}");
    assert_eq!(r.status, 404, "{r:?}");
    let again = http(&d.socket(), "POST", "/v1/domains/test/snapshots/s/revert", &["Idempotency-Key: big"], "{}");
    assert_eq!((again.status, again.header("idempotent-replayed")), (404, Some("true")));
}
