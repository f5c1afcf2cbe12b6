//! Paging, conditional reads and the streamed export (issue 15, points 4 and 5), over raw HTTP so
//! that every header is seen: `ETag` stable while the tree is, new after a write the daemon did not
//! make (a direct host connection on the same mock store), 304 on a match, 200 with the new body
//! after a change; pages that walk a list exactly once; bad paging input refused in one line; the
//! export streamed with the bytes of one serialisation.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    io::{Read, Write},
    path::Path,
};

use virtplug_host::{Connection, PluginDirs, Registry, remote::wire::HierarchyJson};

use crate::common::{Connect, Daemon, create, plugin_dir};

/// One answer: status, headers (lower-case names) and the body (de-chunked).
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    fn names(&self) -> Vec<String> {
        self.json().as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect()
    }
}

/// `GET path` on `socket` with extra header lines.
fn get(socket: &Path, path: &str, extra: &[(&str, &str)]) -> Answer {
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(out[..split].to_vec()).unwrap();
    let mut raw = out[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked") {
        let mut body = Vec::new();
        loop {
            let eol = raw.windows(2).position(|w| w == b"\r\n").unwrap();
            let size = usize::from_str_radix(std::str::from_utf8(&raw[..eol]).unwrap(), 16).unwrap();
            if size == 0 {
                break;
            }
            body.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
            raw.drain(..eol + 2 + size + 2);
        }
        raw = body;
    }
    Answer { status, headers, body: raw }
}

/// A host connection straight to the daemon's mock store: writes the daemon does not make.
fn direct(d: &Daemon, plugins: &Path) -> Connection {
    let registry = Registry::discover(&PluginDirs { dirs: vec![plugins.to_owned()], beside_executable: Vec::new() });
    Connection::open(&registry, &format!("mock://{}", d.host().display()), false).unwrap()
}

#[test]
fn etags_follow_the_tree_whoever_writes_it() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let (sock, ro) = (d.socket(), std::path::PathBuf::from(format!("{}-ro", d.socket().display())));
    let conn = d.connect();
    for n in ["a", "b", "c"] {
        create(&conn, n);
    }
    let paths = [
        "/v1/domains/test/snapshots",
        "/v1/domains/test/snapshots?flags=1024",
        "/v1/domains/test/snapshots?raw=true",
        "/v1/domains/test/snapshots/a",
        "/v1/domains/test/snapshots/a/children?flags=1",
        "/v1/domains/test/current-snapshot",
    ];
    let mut tags = Vec::new();
    for path in paths {
        let first = get(&sock, path, &[]);
        assert_eq!(first.status, 200, "{path}: {}", first.text());
        let tag = first.header("etag").unwrap_or_else(|| panic!("{path}: no ETag")).to_owned();
        assert!(tag.starts_with("\"g") && tag.ends_with('"') && tag.contains('-'), "{path}: {tag}");
        // Stable: the same answer and tag again, from the cache, for a read-only caller too.
        let again = get(&ro, path, &[]);
        assert_eq!(
            (again.status, again.header("etag"), again.text()),
            (200, Some(tag.as_str()), first.text()),
            "{path}"
        );
        // 304 with the tag and no body on a match (also among others, and weak).
        for inm in [tag.clone(), format!("\"x\", W/{tag}"), "*".to_owned()] {
            let not = get(&sock, path, &[("If-None-Match", &inm)]);
            assert_eq!((not.status, not.header("etag"), not.body.len()), (304, Some(tag.as_str()), 0), "{path} {inm}");
        }
        let other = get(&sock, path, &[("If-None-Match", "\"g0-0000000000000000\"")]);
        assert_eq!((other.status, other.text()), (200, first.text()), "{path}");
        tags.push((path, tag, first.text()));
    }
    let distinct: std::collections::HashSet<&String> = tags.iter().map(|(_, t, _)| t).collect();
    assert_eq!(distinct.len(), paths.len(), "each query has its own variant");

    // A write the daemon did not make: every tag changes; the old one gets 200 and the new body.
    let other = direct(&d, &plugins);
    other.snapshot_create("test", "<domainsnapshot><name>d</name></domainsnapshot>", 0).unwrap();
    for (path, tag, body) in &tags {
        let after = get(&sock, path, &[("If-None-Match", tag)]);
        assert_eq!(after.status, 200, "{path}");
        let new_tag = after.header("etag").unwrap();
        assert_ne!(new_tag, tag, "{path}");
        let unchanged = path.ends_with("/snapshots/a");
        assert_eq!(after.text() == *body, unchanged, "{path}: {}", after.text());
        assert_eq!(get(&sock, path, &[("If-None-Match", new_tag)]).status, 304, "{path}");
    }
    assert_eq!(get(&sock, paths[0], &[]).names(), ["a", "b", "c", "d"]);
    assert!(get(&sock, "/v1/domains/test/current-snapshot", &[]).text().contains(r#""name":"d""#));

    // Errors carry no tag and are never cached: the snapshot appears once created.
    let missing = get(&sock, "/v1/domains/test/snapshots/e", &[]);
    assert_eq!((missing.status, missing.header("etag")), (404, None));
    assert!(missing.text().contains(r#""code":72"#), "{}", missing.text());
    other.snapshot_create("test", "<domainsnapshot><name>e</name></domainsnapshot>", 0).unwrap();
    assert_eq!(get(&sock, "/v1/domains/test/snapshots/e", &[]).status, 200);
    let nodom = get(&sock, "/v1/domains/nosuch/snapshots", &[]);
    assert_eq!((nodom.status, nodom.header("etag")), (404, None));
    // The read-only socket still refuses writes.
    let refused = get(&ro, "/v1/domains/test/snapshot-export", &[]);
    assert_eq!(refused.status, 403, "{}", refused.text());
}

#[test]
fn pages_walk_each_list_once() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let sock = d.socket();
    let conn = d.connect();
    for i in 0..7 {
        create(&conn, &format!("s{i}"));
    }
    let whole = get(&sock, "/v1/domains/test/snapshots?flags=1024", &[]);
    assert_eq!((whole.header("x-next-page-token"), whole.header("link")), (None, None), "no paging asked: no token");
    let (mut seen, mut path, mut pages) = (Vec::new(), "/v1/domains/test/snapshots?flags=1024&limit=3".to_owned(), 0);
    loop {
        let a = get(&sock, &path, &[]);
        assert_eq!(a.status, 200, "{}", a.text());
        seen.extend(a.names());
        pages += 1;
        let Some(token) = a.header("x-next-page-token") else {
            assert_eq!(a.header("link"), None);
            break;
        };
        let link = a.header("link").unwrap();
        let next = format!("/v1/domains/test/snapshots?flags=1024&limit=3&page_token={token}");
        assert_eq!(link, format!("<{next}>; rel=\"next\""));
        // The page's own ETag, and a 304 for it.
        let tag = a.header("etag").unwrap().to_owned();
        assert_eq!(get(&sock, &path, &[("If-None-Match", &tag)]).status, 304);
        if pages == 1 {
            // A change between pages elsewhere in the list neither repeats nor skips what is left.
            conn.snapshot_delete("test", "s0", 0).unwrap();
        }
        path = next;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, whole.names());
    // Children pages, and every list without paging is the whole list as before.
    let kids = get(&sock, "/v1/domains/test/snapshots/s1/children?flags=1&limit=2", &[]);
    assert_eq!(kids.names(), ["s2", "s3"]);
    let token = kids.header("x-next-page-token").unwrap();
    let rest = get(&sock, &format!("/v1/domains/test/snapshots/s1/children?flags=1&page_token={token}"), &[]);
    assert_eq!((rest.names(), rest.header("x-next-page-token")), (vec!["s4".into(), "s5".into(), "s6".into()], None));
    // Domains and tasks.
    conn.domain_define(
        "<domain type='test'><name>zz</name><memory unit='KiB'>1048576</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64'>hvm</type></os></domain>",
    )
    .unwrap();
    let doms = get(&sock, "/v1/domains?limit=1", &[]);
    assert_eq!(doms.json().as_array().unwrap().len(), 1);
    let token = doms.header("x-next-page-token").unwrap();
    let more = get(&sock, &format!("/v1/domains?limit=1&page_token={token}"), &[]);
    assert_eq!((more.json().as_array().unwrap().len(), more.header("x-next-page-token")), (1, None));
    assert_eq!(get(&sock, "/v1/tasks?limit=5", &[]).text(), "[]");
    // Bad input: 400, INVALID_ARG, one line.
    for (path, message) in [
        ("/v1/domains/test/snapshots?limit=0", "invalid argument: limit must be between 1 and 10000"),
        ("/v1/domains/test/snapshots?limit=10001", "invalid argument: limit must be between 1 and 10000"),
        ("/v1/tasks?limit=0", "invalid argument: limit must be between 1 and 10000"),
        ("/v1/domains?page_token=nope!", "invalid argument: page_token is not a token this daemon issued"),
        (
            "/v1/domains/test/snapshots?page_token=bm9wZQ",
            "invalid argument: page_token is not a token this daemon issued",
        ),
        (
            "/v1/domains/test/snapshots/s1/children?page_token=%7B",
            "invalid argument: page_token is not a token this daemon issued",
        ),
    ] {
        let a = get(&sock, path, &[]);
        let body = a.json();
        assert_eq!(
            (a.status, body["code"].as_u64(), body["message"].as_str()),
            (400, Some(8), Some(message)),
            "{path}"
        );
    }
}

#[test]
fn the_export_is_streamed_with_the_bytes_of_one_serialisation() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let conn = d.connect();
    for i in 0..300 {
        create(&conn, &format!("snap-{i}"));
        if i % 3 == 2 {
            conn.snapshot_revert("test", &format!("snap-{}", i / 2), 0).unwrap();
        }
    }
    let a = get(&d.socket(), "/v1/domains/test/snapshot-export", &[]);
    assert_eq!(a.status, 200);
    assert_eq!(a.header("transfer-encoding"), Some("chunked"), "streamed, not one buffered body");
    assert_eq!(a.header("content-type"), Some("application/json"));
    let want =
        serde_json::to_vec(&HierarchyJson::from(direct(&d, &plugins).snapshot_export_hierarchy("test").unwrap()))
            .unwrap();
    assert!(want.len() > 200_000, "several chunks: {}", want.len());
    assert!(a.body == want, "the streamed export differs from one serialisation");
    // The remote client still reads it.
    assert_eq!(conn.snapshot_export_hierarchy("test").unwrap().names.len(), 300);
}

/// The `virtplugd_http_requests_total` count of `GET /v1/domains/{dom}/snapshots` answered `status`.
fn list_answers(socket: &Path, status: u16) -> u64 {
    let prefix = format!(
        r#"virtplugd_http_requests_total{{method="GET",route="/v1/domains/{{dom}}/snapshots",status="{status}"}} "#
    );
    get(socket, "/metrics", &[]).text().lines().find_map(|l| l.strip_prefix(&prefix)?.parse().ok()).unwrap_or(0)
}

#[test]
fn the_host_client_revalidates_its_lists() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let sock = d.socket();
    let conn = d.connect();
    for n in ["a", "b"] {
        create(&conn, n);
    }
    let names = |c: &Connection| c.snapshot_list("test", 0).unwrap().into_iter().map(|s| s.name).collect::<Vec<_>>();
    assert_eq!(names(&conn), ["a", "b"]);
    assert_eq!((list_answers(&sock, 200), list_answers(&sock, 304)), (1, 0));
    // Unchanged: the kept answer, revalidated by a 304 each time.
    for _ in 0..3 {
        assert_eq!(names(&conn), ["a", "b"]);
    }
    assert_eq!((list_answers(&sock, 200), list_answers(&sock, 304)), (1, 3));
    // A write the daemon did not make: the next list is a 200 with the new tree, then 304 again.
    direct(&d, &plugins).snapshot_create("test", "<domainsnapshot><name>c</name></domainsnapshot>", 0).unwrap();
    assert_eq!(names(&conn), ["a", "b", "c"]);
    assert_eq!(names(&conn), ["a", "b", "c"]);
    assert_eq!((list_answers(&sock, 200), list_answers(&sock, 304)), (2, 4));
    // Another query is its own kept answer (LEAVES: c is the only leaf).
    let leaves: Vec<String> = conn.snapshot_list("test", 1 << 2).unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(leaves, ["c"]);
}

/// `snapshot_list_shared` through a daemon hands out the client's kept answer itself while the
/// tree is unchanged (the same allocation, no copy of its names), and a new list as soon as
/// anyone's write is acknowledged: this client's, another daemon client's, or a direct one's.
/// A list already handed out is never changed under its holder.
#[test]
fn the_host_clients_shared_list_is_the_kept_answer_until_the_tree_changes() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = Daemon::start(&tmp.path().join("d"), &plugins, &[]);
    let sock = d.socket();
    let conn = d.connect();
    for n in ["a", "b"] {
        create(&conn, n);
    }
    let names = |l: &[virtplug_host::SnapshotInfo]| l.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let first = conn.snapshot_list_shared("test", 0).unwrap();
    assert_eq!(names(&first), ["a", "b"]);
    let again = conn.snapshot_list_shared("test", 0).unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &again), "an unchanged tree's list is the kept answer, not a copy");
    assert_eq!((list_answers(&sock, 200), list_answers(&sock, 304)), (1, 1));
    // The copying list is the same answer, revalidated the same way.
    assert_eq!(conn.snapshot_list("test", 0).unwrap(), first.to_vec());
    assert_eq!((list_answers(&sock, 200), list_answers(&sock, 304)), (1, 2));
    // Each acknowledged write, whoever made it, is in the very next list.
    let other = d.connect();
    let mut want = vec!["a", "b"];
    let mut held = first;
    for (writer, name) in [(&conn, "c"), (&other, "d")] {
        create(writer, name);
        want.push(name);
        let now = conn.snapshot_list_shared("test", 0).unwrap();
        assert_eq!(names(&now), want, "after {name}");
        assert!(!std::sync::Arc::ptr_eq(&held, &now));
        assert_eq!(names(&held), want[..want.len() - 1], "a list handed out stays as it was");
        held = now;
    }
    direct(&d, &plugins).snapshot_create("test", "<domainsnapshot><name>e</name></domainsnapshot>", 0).unwrap();
    assert_eq!(names(&conn.snapshot_list_shared("test", 0).unwrap()), ["a", "b", "c", "d", "e"]);
    assert_eq!((list_answers(&sock, 200), list_answers(&sock, 304)), (4, 2));
    // A local connection (no kept answers) lists the same through the shared form.
    assert_eq!(names(&direct(&d, &plugins).snapshot_list_shared("test", 0).unwrap()), ["a", "b", "c", "d", "e"]);
}
