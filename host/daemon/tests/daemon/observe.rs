//! Operators' view of the daemon: `/healthz`, `/readyz`, `/metrics`, request ids (echoed,
//! generated, in error bodies and task records) and the access log, in text and JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::path::Path;

use crate::common::{Daemon, plugin_dir};

/// A response: status, headers (names lower-cased) and body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
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

fn get(socket: &Path, path: &str) -> Resp {
    http(socket, "GET", path, &[], "")
}

fn ro_socket(d: &Daemon) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}-ro", d.socket().display()))
}

/// A UUID v4 in its hyphenated form.
fn is_uuid_v4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && parts[2].starts_with('4')
}

#[test]
fn health_and_readiness_answer_without_a_uri_on_both_sockets() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let ready = format!(
        r#"{{"status":"ready","checks":[{{"check":"plugins","ok":true}},{{"check":"uri","uri":"mock://{}","ok":true}}]}}"#,
        d.host().display()
    );
    for socket in [d.socket(), ro_socket(&d)] {
        let r = get(&socket, "/healthz");
        assert_eq!((r.status, r.body.as_str()), (200, r#"{"status":"ok"}"#));
        assert_eq!(r.header("content-type"), Some("application/json"));
        let r = get(&socket, "/readyz");
        assert_eq!((r.status, r.body.as_str()), (200, ready.as_str()));
    }
    // The checks open read-only connections, which write no state.
    assert_eq!(std::fs::read_dir(d.host()).unwrap().count(), 0, "readiness wrote state");
}

#[test]
fn readiness_names_a_served_uri_that_cannot_open() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &["--allow-uri".into(), "nosuch:///x".into()]);
    let r = get(&d.socket(), "/readyz");
    assert_eq!(r.status, 503);
    assert_eq!(
        r.body,
        format!(
            concat!(
                r#"{{"status":"not ready","checks":[{{"check":"plugins","ok":true}},"#,
                r#"{{"check":"uri","uri":"mock://{}","ok":true}},"#,
                r#"{{"check":"uri","uri":"nosuch:///x","ok":false,"error":"{}"}}]}}"#
            ),
            d.host().display(),
            NO_PLUGIN
        )
    );
    // Still alive.
    assert_eq!(get(&d.socket(), "/healthz").status, 200);
}

/// What opening a URI of a scheme no plugin serves says.
const NO_PLUGIN: &str = "no connection driver available for nosuch:///x";

#[test]
fn metrics_count_requests_by_route_template_and_status() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    assert_eq!(get(&d.socket(), "/v1/domains/test").status, 200);
    assert_eq!(get(&d.socket(), "/v1/domains/test").status, 200);
    assert_eq!(get(&d.socket(), "/v1/domains/nosuch").status, 404);
    assert_eq!(get(&d.socket(), "/v1/no/such/route").status, 404);
    // A follower of the event stream, counted once its response head arrived.
    let mut events = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    {
        use std::io::{BufRead, Write};
        events.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reader = std::io::BufReader::new(&events);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "HTTP/1.1 200 OK\r\n");
    }
    let r = get(&ro_socket(&d), "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    let lines: Vec<&str> = r.body.lines().collect();
    for want in [
        "# TYPE virtplugd_http_requests counter",
        r#"virtplugd_http_requests_total{method="GET",route="/v1/domains/{dom}",status="200"} 2"#,
        r#"virtplugd_http_requests_total{method="GET",route="/v1/domains/{dom}",status="404"} 1"#,
        r#"virtplugd_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"virtplugd_http_request_duration_seconds_count{method="GET",route="/v1/domains/{dom}",status="200"} 2"#,
        r#"virtplugd_tasks{state="running"} 0"#,
        r#"virtplugd_tasks{state="succeeded"} 0"#,
        r#"virtplugd_tasks{state="failed"} 0"#,
        "virtplugd_event_subscribers 1",
        r#"virtplugd_plugin_call_duration_seconds_count{plugin="mock",via="http"} 3"#,
        r#"virtplugd_plugin_call_errors_total{plugin="mock",via="http",code="VIR_ERR_NO_DOMAIN"} 1"#,
        "# EOF",
    ] {
        assert!(lines.contains(&want), "missing {want:?} in:\n{}", r.body);
    }
    // Never a raw path.
    assert!(!r.body.contains("/v1/domains/test"), "{}", r.body);
    assert!(!r.body.contains("/v1/no/such"), "{}", r.body);
    drop(events);
}

#[test]
fn request_ids_are_echoed_generated_and_carried_in_errors_and_tasks() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let other = format!("mock://{}", tmp.path().join("other").display());
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &["--allow-uri".into(), other.clone()]);
    let sock = d.socket();
    // Echoed.
    let r = http(&sock, "GET", "/healthz", &["X-Request-Id: client-id.42"], "");
    assert_eq!(r.header("x-request-id"), Some("client-id.42"));
    // Generated when absent, fresh each time.
    let (a, b) = (get(&sock, "/healthz"), get(&sock, "/healthz"));
    let (a, b) = (a.header("x-request-id").unwrap(), b.header("x-request-id").unwrap());
    assert!(is_uuid_v4(a) && is_uuid_v4(b) && a != b, "{a} {b}");
    // Replaced when too long or not visible ASCII.
    let long = format!("X-Request-Id: {}", "a".repeat(129));
    for bad in [long.as_str(), "X-Request-Id: has space"] {
        let r = http(&sock, "GET", "/healthz", &[bad], "");
        assert!(is_uuid_v4(r.header("x-request-id").unwrap()), "{bad}: {:?}", r.headers);
    }
    let r = http(&sock, "GET", "/healthz", &[&format!("X-Request-Id: {}", "b".repeat(128))], "");
    assert_eq!(r.header("x-request-id"), Some("b".repeat(128).as_str()));
    // In an error body (a handler's, the router's and the read-only guard's).
    let r = http(&sock, "GET", "/v1/domains/nosuch", &["X-Request-Id: err-1"], "");
    assert_eq!((r.status, r.header("x-request-id")), (404, Some("err-1")));
    assert_eq!(
        r.body,
        r#"{"code":42,"name":"VIR_ERR_NO_DOMAIN","message":"Domain not found","detail":"","request_id":"err-1"}"#
    );
    let r = http(&sock, "GET", "/v1/nosuch", &["X-Request-Id: err-2"], "");
    assert_eq!(r.status, 404);
    assert!(r.body.ends_with(r#","request_id":"err-2"}"#), "{}", r.body);
    let r = http(&ro_socket(&d), "DELETE", "/v1/domains/test", &["X-Request-Id: err-3"], "");
    assert_eq!(r.status, 403);
    assert!(r.body.ends_with(r#","request_id":"err-3"}"#), "{}", r.body);
    // Generated ids reach error bodies too.
    let r = get(&sock, "/v1/domains/nosuch");
    let id = r.header("x-request-id").unwrap();
    assert!(r.body.ends_with(&format!(r#","request_id":"{id}"}}"#)), "{}", r.body);
    // In the record of a task the request started.
    let req = format!(r#"{{"domain":"test","to":"{other}","dry_run":true}}"#);
    let r = http(&sock, "POST", "/v1/migrations", &["X-Request-Id: task-1"], &req);
    assert_eq!(r.status, 202, "{}", r.body);
    let task: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(task["request_id"], "task-1", "{task}");
    let r = get(&sock, &format!("/v1/tasks/{}", task["id"]));
    let again: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(again["request_id"], "task-1", "{again}");
}

/// The access lines of `log`.
fn access_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(" access: ")).collect()
}

#[test]
fn every_request_gets_one_access_line_without_secrets() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let xml = r#"{"xml":"<domainsnapshot><name>secret-looking</name></domainsnapshot>"}"#;
    let r = http(&d.socket(), "POST", "/v1/domains/test/snapshots", &["X-Request-Id: acc-1"], xml);
    assert_eq!(r.status, 201, "{}", r.body);
    let r = http(&ro_socket(&d), "GET", "/v1/domains/test/snapshots/secret-looking", &["X-Request-Id: acc-2"], "");
    assert_eq!(r.status, 200, "{}", r.body);
    let log = d.log();
    let lines = access_lines(&log);
    assert_eq!(lines.len(), 2, "{log}");
    let expect = [
        (r#"principal="unix-rw" method=POST route=/v1/domains/{dom}/snapshots status=201 duration_ms="#, "acc-1"),
        (r#"principal="unix-ro" method=GET route=/v1/domains/{dom}/snapshots/{snap} status=200 duration_ms="#, "acc-2"),
    ];
    for (line, (fields, id)) in lines.iter().zip(expect) {
        assert!(line.contains(&format!(" INFO access: request {fields}")), "{line}");
        assert!(line.ends_with(&format!(" request_id={id}")), "{line}");
    }
    assert!(!log.contains("secret-looking"), "a body or raw path reached the log: {log}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &["--log-format".into(), "json".into()]);
    let r = http(&d.socket(), "GET", "/v1/domains/nosuch", &["X-Request-Id: json-1"], "");
    assert_eq!(r.status, 404);
    let log = d.log();
    let mut access = Vec::new();
    for line in log.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nlog:\n{log}"));
        if v["target"] == "access" {
            access.push(v);
        }
    }
    assert_eq!(access.len(), 1, "{log}");
    let f = &access[0]["fields"];
    assert_eq!(
        (&f["message"], &f["principal"], &f["method"], &f["route"], &f["status"], &f["request_id"]),
        (
            &"request".into(),
            &"unix-rw".into(),
            &"GET".into(),
            &"/v1/domains/{dom}".into(),
            &404.into(),
            &"json-1".into()
        )
    );
    assert!(f["duration_ms"].is_f64(), "{f}");
}

#[test]
fn token_principals_are_logged_by_kind_never_by_token() {
    use virtplug_host::{Connection, Registry};
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), key.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.join("tokens"), "rw rw-secret-1234\nro ro-secret-5678\n").unwrap();
    for (file, token) in [("rw.token", "rw-secret-1234"), ("ro.token", "ro-secret-5678"), ("bad.token", "bad-9999")] {
        std::fs::write(dir.join(file), token).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let path = |f: &str| dir.join(f).display().to_string();
    let extra = [
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--tls-cert".into(),
        path("cert.pem"),
        "--tls-key".into(),
        path("key.pem"),
        "--tokens".into(),
        path("tokens"),
    ];
    let d = Daemon::start(&dir.join("d"), &plugins, &extra);
    let uri = |token: &str| {
        format!(
            "mock+https://localhost:{port}{}?ca={}&token_file={}",
            d.host().display(),
            path("cert.pem"),
            path(token)
        )
    };
    // The daemon may still be binding TCP right after the unix socket answers.
    let mut bad = Connection::open(&Registry::default(), &uri("bad.token"), false);
    for _ in 0..50 {
        match &bad {
            Err(e) if e.to_string().contains("cannot talk") => {
                std::thread::sleep(std::time::Duration::from_millis(50));
                bad = Connection::open(&Registry::default(), &uri("bad.token"), false);
            }
            _ => break,
        }
    }
    assert!(bad.is_err());
    Connection::open(&Registry::default(), &uri("ro.token"), false).unwrap().domain_list().unwrap();
    Connection::open(&Registry::default(), &uri("rw.token"), false).unwrap().domain_list().unwrap();
    let log = d.log();
    let principals: std::collections::BTreeSet<&str> =
        access_lines(&log).iter().filter_map(|l| l.split("principal=\"").nth(1)?.split('"').next()).collect();
    assert_eq!(principals, ["token-ro", "token-rw", "unauthenticated"].into(), "{log}");
    let refused = access_lines(&log).into_iter().find(|l| l.contains("unauthenticated")).unwrap();
    assert!(refused.contains(" status=401 "), "{refused}");
    for secret in ["rw-secret-1234", "ro-secret-5678", "bad-9999"] {
        assert!(!log.contains(secret), "the log must not contain a token: {log}");
    }
}
