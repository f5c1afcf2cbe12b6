//! Hostile clients (issue 12): the daemon serves only its configured URIs and opens nothing
//! else; a read-only principal writes nothing anywhere; bodies are capped by route and principal
//! before they are read; header, body and idle timeouts; the per-listener connection limit; an
//! accept loop that backs off when file descriptors run out.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::common::{BIN, Connect, Daemon, create, plugin_dir, raw};
use virtplug_host::{Connection, PluginDirs, Registry, codes};

/// The read-only socket, once it listens (`Daemon::start` waits for the read-write one only).
fn ro_socket(d: &Daemon) -> PathBuf {
    let path = PathBuf::from(format!("{}-ro", d.socket().display()));
    for _ in 0..400 {
        if UnixStream::connect(&path).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    path
}

fn get_with_uri(uri: &str) -> String {
    format!("GET /v1/domains HTTP/1.1\r\nHost: x\r\nvirtplug-uri: {uri}\r\nConnection: close\r\n\r\n")
}

/// The response head and body read from `s` (Content-Length bodies only), or the I/O error.
fn read_response(s: &mut UnixStream) -> std::io::Result<(u16, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[test]
fn only_configured_uris_are_served_and_nothing_else_is_opened() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other");
    let d =
        Daemon::start(&tmp.path().join("d"), &plugins, &["--allow-uri".into(), format!("mock://{}", other.display())]);
    let fresh = tmp.path().join("fresh");
    let fresh_uri = format!("mock://{}", fresh.display());
    let refusal = format!(
        r#"{{"code":29,"name":"VIR_ERR_OPERATION_DENIED","message":"operation forbidden: URI '{fresh_uri}' is not served by this daemon","#
    );
    for socket in [d.socket(), ro_socket(&d)] {
        let (status, body) = raw(&socket, &get_with_uri(&fresh_uri));
        assert_eq!(status, 403, "{body}");
        assert!(body.starts_with(&refusal), "{body}");
        // A write with a body is refused the same way, on the read-write socket too.
        let xml = r#"{"xml":"<domainsnapshot/>"}"#;
        let post = format!(
            "POST /v1/domains/test/snapshots HTTP/1.1\r\nHost: x\r\nvirtplug-uri: {fresh_uri}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
            xml.len()
        );
        let (status, body) = raw(&socket, &post);
        assert_eq!(status, 403, "{body}");
    }
    // Nor as the local destination of a migration.
    let req = format!(r#"{{"domain":"test","to":"{fresh_uri}","dry_run":false}}"#);
    let post = format!(
        "POST /v1/migrations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{req}",
        req.len()
    );
    let (status, body) = raw(&d.socket(), &post);
    assert_eq!(status, 403, "{body}");
    assert!(body.starts_with(&refusal), "{body}");
    // Through the remote client: libvirt's error, nothing created.
    let e = Connection::open(
        &Registry::default(),
        &format!("mock+unix://{}?socket={}", fresh.display(), d.socket().display()),
        false,
    )
    .unwrap_err();
    assert_eq!(e.code(), codes::OPERATION_DENIED);
    assert_eq!(e.to_string(), format!("operation forbidden: URI '{fresh_uri}' is not served by this daemon"));
    assert!(!fresh.exists(), "a refused URI created {}", fresh.display());
    // The default URI and the allowed one work.
    let (status, body) = raw(&d.socket(), &get_with_uri(&format!("mock://{}", other.display())));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""name":"test""#), "{body}");
    assert_eq!(d.connect().domain_list().unwrap().len(), 1);
}

#[test]
fn a_daemon_with_no_uri_to_serve_does_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--socket")
        .arg(tmp.path().join("sock"))
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .env("VIRTPLUG_PLUGIN_DIR", tmp.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default(),
        "virtplugd: no driver URI to serve: give --default-uri URI (and --allow-uri URI for more)"
    );
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn read_only_opens_create_no_state() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    // In process, as `virtplug -r -c mock:///<dir> list` opens it.
    let registry = Registry::discover(&PluginDirs { dirs: vec![plugins.clone()], beside_executable: Vec::new() });
    let fresh = tmp.path().join("fresh/state");
    let conn = Connection::open(&registry, &format!("mock://{}", fresh.display()), true).unwrap();
    let domains = conn.domain_list().unwrap();
    assert_eq!(domains.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["test"]);
    assert!(conn.snapshot_list("test", 0).unwrap().is_empty());
    let e = conn.snapshot_create("test", "<domainsnapshot><name>s</name></domainsnapshot>", 0).unwrap_err();
    assert_eq!(e.to_string(), "operation forbidden: read only access prevents virDomainSnapshotCreateXML");
    drop(conn);
    assert!(!tmp.path().join("fresh").exists(), "a read-only open created its state directory");

    // Through the daemon's read-only socket, before any read-write client created the state.
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let get = "GET /v1/domains/test/snapshots HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (status, body) = raw(&ro_socket(&d), get);
    assert_eq!((status, body.as_str()), (200, "[]"));
    let (status, body) = raw(&d.socket(), &get.replace("Host: x", "Host: x\r\nvirtplug-read-only: 1"));
    assert_eq!((status, body.as_str()), (200, "[]"));
    assert_eq!(files_under(&d.host()), Vec::<String>::new(), "a read-only request wrote state");
    // Once a read-write client has created it, read-only connections see the real store.
    create(&d.connect(), "s1");
    let (status, body) = raw(&ro_socket(&d), get);
    assert_eq!(status, 200);
    assert!(body.contains(r#""name":"s1""#), "{body}");
}

/// VmHWM (peak resident set) of `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn bodies_are_capped_by_route_and_principal_before_they_are_read() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(
        &tmp.path().join("d"),
        &plugins,
        &["--max-body".into(), "1024".into(), "--body-timeout".into(), "1".into()],
    );
    let head = |path: &str, len: u64, extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n{extra}\r\n"
        )
    };
    // A read-only principal's write: answered at once, before any body byte is sent, and the
    // daemon does not grow while the client goes on sending.
    let before = peak_rss_kib(d.child.id());
    for (socket, extra) in [(ro_socket(&d), ""), (d.socket(), "virtplug-read-only: 1\r\n")] {
        let mut s = UnixStream::connect(&socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head("/v1/domains/test/snapshot-import", 300 << 20, extra).as_bytes()).unwrap();
        let (status, body) = read_response(&mut s).unwrap();
        assert_eq!(status, 403, "{body}");
        assert!(
            body.contains(r#""message":"operation forbidden: read only access prevents virtplugDomainSnapshotImport""#),
            "{body}"
        );
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..64 {
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    }
    let grown = peak_rss_kib(d.child.id()).saturating_sub(before);
    assert!(grown < 32 << 10, "the daemon grew by {grown} KiB reading refused bodies");

    // Declared lengths over the route's limit: 413 at once, on the read-write socket.
    let cases: &[(&str, u64, &str)] = &[
        ("/v1/domains/test/snapshots/s/revert", 1025, "1024"),
        ("/v1/migrations", 1 << 30, "1024"),
        (
            "/v1/domains/test/snapshots",
            virtplug_daemon::DEFAULT_MAX_XML_BODY as u64 + 1,
            &virtplug_daemon::DEFAULT_MAX_XML_BODY.to_string(),
        ),
        (
            "/v1/domains/test/snapshot-import",
            virtplug_daemon::DEFAULT_MAX_IMPORT_BODY as u64 + 1,
            &virtplug_daemon::DEFAULT_MAX_IMPORT_BODY.to_string(),
        ),
    ];
    for (path, len, limit) in cases {
        let mut s = UnixStream::connect(d.socket()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head(path, *len, "").as_bytes()).unwrap();
        let (status, body) = read_response(&mut s).unwrap();
        assert_eq!(status, 413, "{path}: {body}");
        let text = format!(
            r#""message":"invalid argument: request body is larger than the {limit} bytes this route accepts""#
        );
        assert!(body.contains(&text), "{path}: {body}");
    }
    // A body without a declared length is counted as it arrives.
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let chunked = format!(
        "POST /v1/domains/test/snapshots/s/revert HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n{}\r\n800\r\n{}\r\n0\r\n\r\n",
        " ".repeat(0x800),
        " ".repeat(0x800)
    );
    s.write_all(chunked.as_bytes()).unwrap();
    let (status, body) = read_response(&mut s).unwrap();
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("request body is larger than the 1024 bytes this route accepts"), "{body}");
    // A body that stalls: 408 after the body timeout.
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("{}{{\"flags\":", head("/v1/domains/test/snapshots/s/revert", 100, "")).as_bytes()).unwrap();
    let (status, body) = read_response(&mut s).unwrap();
    assert_eq!(status, 408, "{body}");
    assert!(body.contains(r#""message":"invalid argument: request body stalled: nothing received for 1 s""#), "{body}");
}

/// Whether the daemon closed `s`: a read returns end of file (or the connection was reset).
fn closed_by_peer(s: &mut UnixStream) -> bool {
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn slow_headers_and_idle_connections_are_closed() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let args = |header: &str, idle: &str| -> Vec<String> {
        vec!["--header-timeout".into(), header.into(), "--idle-timeout".into(), idle.into()]
    };
    // One header line every half second, against a 2 s header timeout (idle would wait 600 s).
    let d = Daemon::start(&tmp.path().join("h"), &plugins, &args("2", "600"));
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.write_all(b"GET /v1/domains HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut sent = 0;
    while sent < 60 {
        std::thread::sleep(Duration::from_millis(500));
        if s.write_all(format!("X-Slow-{sent}: 1\r\n").as_bytes()).is_err() {
            break;
        }
        sent += 1;
    }
    assert!(sent < 60, "a request head sent one line at a time was never cut off");
    drop(d);

    // Silent connections, fresh or after a request, are closed after the idle timeout; an
    // event stream is a request in progress, not idle.
    let d = Daemon::start(&tmp.path().join("i"), &plugins, &args("600", "2"));
    let mut fresh = UnixStream::connect(d.socket()).unwrap();
    fresh.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert!(closed_by_peer(&mut fresh), "an idle connection stayed open");
    let mut used = UnixStream::connect(d.socket()).unwrap();
    used.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    used.write_all(b"GET /v1/domains HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut used).unwrap().0, 200);
    assert!(closed_by_peer(&mut used), "an idle keep-alive connection stayed open");
    let mut events = UnixStream::connect(d.socket()).unwrap();
    events.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    events.write_all(b"GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    std::thread::sleep(Duration::from_secs(4));
    create(&d.connect(), "s1");
    let mut seen = String::new();
    let mut b = [0u8; 4096];
    while !seen.contains("event: snapshot.created") {
        let n = events.read(&mut b).unwrap();
        assert!(n > 0, "the event stream was closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&b[..n]));
    }
}

#[test]
fn the_connection_limit_makes_further_connections_wait() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &["--max-connections".into(), "2".into()]);
    let first = UnixStream::connect(d.socket()).unwrap();
    let mut second = UnixStream::connect(d.socket()).unwrap();
    second.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    second.write_all(b"GET /v1/domains HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut second).unwrap().0, 200);
    // Two connections open: a third is queued, unanswered.
    let mut third = UnixStream::connect(d.socket()).unwrap();
    third.write_all(b"GET /v1/domains HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    third.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let mut b = [0u8; 1];
    let e = third.read(&mut b).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "the third connection was served");
    // One closes: the third is served.
    drop(first);
    third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read_response(&mut third).unwrap().0, 200);
    assert_eq!(d.log().matches("connection limit reached").count(), 1, "{}", d.log());
}

/// Threads of process `pid` (its `/proc` task entries).
fn threads(pid: u32) -> usize {
    proc_entries(pid, "task")
}

/// Each connection is served on a thread of its own: 40 keep-alive connections open at once are
/// all answered, each several times, and once they close the daemon is back to the threads and
/// descriptors it had (nothing is left behind per connection).
#[test]
fn connection_threads_end_with_their_connections() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let pid = d.child.id();
    let list = "GET /v1/domains/test/snapshots HTTP/1.1\r\nHost: x\r\n\r\n";
    // Everything a connection opens once for the daemon (the store, its generation watch).
    let (status, _) =
        raw(&d.socket(), "GET /v1/domains/test/snapshots HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 200);
    let settle = || std::thread::sleep(Duration::from_millis(300));
    settle();
    let (threads_before, fds_before) = (threads(pid), open_fds(pid));
    let mut conns: Vec<UnixStream> = (0..40).map(|_| UnixStream::connect(d.socket()).unwrap()).collect();
    for round in 0..3 {
        for c in &mut conns {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(list.as_bytes()).unwrap();
        }
        for c in &mut conns {
            assert_eq!(read_response(c).unwrap().0, 200, "round {round}");
        }
    }
    assert!(threads(pid) >= threads_before + 40, "{} threads with 40 connections open", threads(pid));
    drop(conns);
    // At most as many as before: the main runtime's idle blocking threads may also have ended.
    let back = || threads(pid) <= threads_before && open_fds(pid) <= fds_before;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !back() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        back(),
        "after the close: {} threads (before {threads_before}), {} descriptors (before {fds_before})",
        threads(pid),
        open_fds(pid)
    );
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn open_fds(pid: u32) -> usize {
    proc_entries(pid, "fd")
}

/// Whether the daemon closed `s`, without waiting (a read that would wait: still open).
fn closed_now(s: &std::net::TcpStream) -> bool {
    let _ = s.set_nonblocking(true);
    let closed = !matches!(s.peek(&mut [0u8; 1]), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
    let _ = s.set_nonblocking(false);
    closed
}

/// What each of `pid`'s descriptors is (for a failure's message).
fn fd_targets(pid: u32) -> String {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return String::new() };
    let mut all: Vec<String> = dir
        .flatten()
        .map(|e| {
            format!(
                "{}={}",
                e.file_name().to_string_lossy(),
                std::fs::read_link(e.path()).unwrap_or_default().display()
            )
        })
        .collect();
    all.sort();
    all.join(" ")
}

/// Entries of `/proc/<pid>/<dir>` (0 when unreadable).
fn proc_entries(pid: u32, dir: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/{dir}")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn the_accept_loops_back_off_when_file_descriptors_run_out() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("host")).unwrap();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), key.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.join("tokens"), "rw secret-token-1\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = std::fs::File::create(dir.join("log")).unwrap();
    // A daemon allowed 32 descriptors (about 24 once its store is open: each listener keeps its
    // next connection's runtime ready, four descriptors, and each connection has its own), on a
    // unix socket and on TLS.
    const LIMIT: usize = 32;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(r#"ulimit -n {LIMIT} && exec "$0" "$@""#))
        .arg(BIN)
        .arg("--socket")
        .arg(dir.join("sock"))
        .arg("--no-ro-socket")
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--default-uri")
        .arg(format!("mock://{}", dir.join("host").display()))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .arg("--tokens")
        .arg(dir.join("tokens"))
        .env("VIRTPLUG_PLUGIN_DIR", &plugins)
        // The accept loops' debug lines: what each accept did, for a failure's message.
        .env("VIRTPLUGD_LOG", "info,virtplug_daemon::listen=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let _guard = Kill(&mut child);
    let sock = dir.join("sock");
    let read_log = || std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    let mut ready = false;
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && UnixStream::connect(&sock).is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ready, "virtplugd did not start: {}", read_log());
    // Open the store first (it needs descriptors of its own), then hold TCP connections (their
    // handshakes wait) until the daemon has no descriptor left, and queue one on each listener.
    // The readiness probes' connections may not have ended yet on a loaded machine, and the store
    // cannot open while they hold the descriptors it needs: that request fails (409, SQLite's
    // "unable to open database file", in whichever step of the open ran out), and a later one
    // opens it.
    let mut opened = None;
    for _ in 0..50 {
        let (status, body) = raw(&sock, "GET /v1/domains HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if status == 200 {
            opened = Some(body);
            break;
        }
        assert!(status == 409 && body.contains("unable to open database file"), "{status} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(opened.is_some(), "the store never opened: {} descriptors open", open_fds(pid));
    // Out of descriptors: the TLS listener's accept loop says so (a debug line per failed try).
    // How many stay open then depends on where the last try failed (a connection takes its
    // socket and its runtime's four: tokio's I/O driver holds its epoll twice, its waker, and
    // its copy of the signal pipe), so the log is the witness, not the count. A readiness
    // probe's connection may have ended after a failure already logged: only failures after
    // the store opened count. A connection still ending can give descriptors back later, and
    // the accept loop, backing off up to 1 s, takes them again: so this waits on a deadline.
    // At most 64 held at once: one the daemon closed (a handshake that timed out) is replaced.
    let tcp_failure = format!(
        "accepting or starting a connection failed: Too many open files (os error 24) listener=\"127.0.0.1:{port}\""
    );
    let tcp_failures = |log: &str| log.lines().filter(|l| l.contains(&tcp_failure)).count();
    let before_holding = tcp_failures(&read_log());
    let mut held: Vec<std::net::TcpStream> = Vec::new();
    let (mut full, mut closed) = (false, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        held.retain(|s| {
            let open = !closed_now(s);
            closed += usize::from(!open);
            open
        });
        if held.len() < 64 {
            held.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
        }
        std::thread::sleep(Duration::from_millis(20));
        if tcp_failures(&read_log()) > before_holding {
            full = true;
            break;
        }
    }
    assert!(
        full,
        "the daemon never ran out of descriptors ({} open: {}; {} threads; {} held connections open, {closed} closed by it): {}",
        open_fds(pid),
        fd_targets(pid),
        proc_entries(pid, "task"),
        held.len(),
        read_log()
    );
    held.push(std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    let queued = UnixStream::connect(&sock).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // A loop retrying at once burns a core: about 100 ticks a second.
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_ticks(pid) - before;
    assert!(used < 30, "the accept loops used {used} ticks of CPU in 3 s while out of descriptors");
    // Logged once per listener.
    let log = read_log();
    let failures: Vec<&str> = log.lines().filter(|l| l.contains("accepting a connection failed")).collect();
    assert_eq!(failures.len(), 2, "{log}");
    assert!(failures.iter().any(|l| l.contains(&format!("listener=\"127.0.0.1:{port}\""))), "{log}");
    assert!(failures.iter().any(|l| l.contains("Too many open files")), "{log}");
    // Descriptors back: the queued connection is served.
    drop(held);
    let mut queued = queued;
    queued.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    queued.write_all(b"GET /v1/domains HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut queued).unwrap().0, 200);
}

/// A request whose handling panics in the daemon's code (a test's fault) is answered 500 with
/// libvirt's internal error and its request id, and logged once; its connection goes on.
#[test]
fn a_request_that_panics_is_answered_with_an_internal_error_and_the_connection_goes_on() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let fault = [("VIRTPLUGD_FAULT", "panic-in-http-route:/v1/domains/{dom}")];
    let d = Daemon::start_with_env(&tmp.path().join("d"), &plugins, &[], &fault);
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let detail = "the request failed unexpectedly (see the daemon's log)";
    for id in ["panic-1", "panic-2"] {
        s.write_all(format!("GET /v1/domains/test HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\n\r\n").as_bytes())
            .unwrap();
        let (status, body) = read_response(&mut s).unwrap();
        assert_eq!(status, 500, "{body}");
        let expected = format!(
            r#"{{"code":1,"name":"VIR_ERR_INTERNAL_ERROR","message":"internal error: {detail}","detail":"{detail}","request_id":"{id}"}}"#
        );
        assert_eq!(body, expected);
    }
    // The same connection goes on, and so do other routes.
    s.write_all(b"GET /v1/domains HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (status, body) = read_response(&mut s).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""name":"test""#), "{body}");
    let log = d.log();
    let caught: Vec<&str> = log.lines().filter(|l| l.contains("a request panicked")).collect();
    assert_eq!(caught.len(), 2, "{log}");
    for (line, id) in caught.iter().zip(["panic-1", "panic-2"]) {
        assert!(
            line.contains(r#"route="/v1/domains/{dom}""#) && line.contains(&format!("request_id=\"{id}\"")),
            "{line}"
        );
    }
    let access = log.lines().filter(|l| l.contains("route=/v1/domains/{dom} status=500")).count();
    assert_eq!(access, 2, "{log}");
}

/// Every documented route that may change something or read a body has its line in the body
/// guard's table; nothing in the table is undocumented.
#[test]
fn every_write_route_has_a_body_rule() {
    use virtplug_daemon::extract::{ROUTES, Size, Writes, rule};
    let doc: serde_json::Value = serde_json::from_str(&virtplug_daemon::openapi::document()).unwrap();
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            if method != "GET" {
                documented.push((method, path.clone()));
            }
        }
    }
    documented.sort();
    let mut table: Vec<(String, String)> = ROUTES.iter().map(|(m, p, ..)| ((*m).to_owned(), (*p).to_owned())).collect();
    table.sort();
    assert_eq!(documented, table);
    for (method, path) in &documented {
        let (size, writes) = rule(&method.parse().unwrap(), path);
        assert_ne!(writes, Writes::No, "{method} {path}");
        assert!(method == "DELETE" || size != Size::Empty, "{method} {path}");
    }
    assert_eq!(rule(&axum::http::Method::GET, "/v1/domains"), (Size::Empty, Writes::No));
}

/// A read-write client that talks to the read-only socket with a large body still gets the
/// daemon's refusal, not a broken pipe: the daemon answers before reading the body and closes,
/// and the client reads that answer after its write fails.
#[test]
fn a_refused_large_body_still_gets_its_answer() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let uri = format!("mock+unix://{}?socket={}", d.host().display(), ro_socket(&d).display());
    let conn = Connection::open(&Registry::default(), &uri, false).unwrap();
    let padding = "x".repeat(64 * 1024);
    let xmls: Vec<String> = (0..300)
        .map(|i| {
            format!(
                "<domainsnapshot><name>s{i}</name><description>{padding}</description><state>running</state>\
                 <creationTime>1</creationTime>{}</domainsnapshot>",
                virtplug_host::model::domain::TEST_DOMAIN_XML
            )
        })
        .collect();
    let e = conn.snapshot_import("test", &xmls, None, 0).unwrap_err();
    assert_eq!(e.code(), codes::OPERATION_DENIED, "{e}");
    assert!(e.to_string().starts_with("operation forbidden: read only access prevents "), "{e}");
}
