//! TCP with TLS and bearer tokens: no or a wrong token is 401 (and the token never appears in
//! the log), a read-only token lists but cannot change anything nor read secure XML, a
//! read-write token can. Loopback only.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use crate::common::{Daemon, plugin_dir};
use virtplug_host::{Connection, Registry, flags::snapshot_xml};

#[test]
fn tls_with_read_write_and_read_only_tokens() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), key.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.join("tokens"), "# tokens\nrw rw-secret-1234\nro ro-secret-5678\n").unwrap();
    std::fs::write(dir.join("rw.token"), "rw-secret-1234\n").unwrap();
    std::fs::write(dir.join("ro.token"), "ro-secret-5678\n").unwrap();
    std::fs::write(dir.join("bad.token"), "wrong-secret-9999\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let extra: Vec<String> = vec![
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--tls-cert".into(),
        dir.join("cert.pem").display().to_string(),
        "--tls-key".into(),
        dir.join("key.pem").display().to_string(),
        "--tokens".into(),
        dir.join("tokens").display().to_string(),
    ];
    let d = Daemon::start(&dir.join("d"), &plugins, &extra);
    let uri = |token: &str| {
        format!(
            "mock+https://localhost:{port}{}?ca={}&token_file={}",
            d.host().display(),
            dir.join("cert.pem").display(),
            dir.join(token).display()
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
    let e = bad.unwrap_err();
    assert_eq!(e.code(), virtplug_host::codes::AUTH_FAILED, "{e}");
    assert_eq!(e.to_string(), "authentication failed: a valid bearer token is required");

    let ro = Connection::open(&Registry::default(), &uri("ro.token"), false).unwrap();
    assert_eq!(ro.domain_list().unwrap().len(), 1);
    let rw = Connection::open(&Registry::default(), &uri("rw.token"), false).unwrap();
    rw.snapshot_create("test", "<domainsnapshot><name>s1</name></domainsnapshot>", 0).unwrap();
    assert_eq!(ro.snapshot_list("test", 0).unwrap().len(), 1);
    // The read-only token cannot change anything or read secure XML (the daemon decides: this
    // client asked for read-write).
    let e = ro.snapshot_create("test", "<domainsnapshot><name>s2</name></domainsnapshot>", 0).unwrap_err();
    assert_eq!(e.to_string(), "operation forbidden: read only access prevents virDomainSnapshotCreateXML");
    let e = ro.snapshot_xml("test", "s1", snapshot_xml::SECURE).unwrap_err();
    assert_eq!(e.to_string(), "operation forbidden: virDomainSnapshotGetXMLDesc with secure flag");
    assert!(rw.snapshot_xml("test", "s1", snapshot_xml::SECURE).is_ok());
    let log = d.log();
    for secret in ["rw-secret-1234", "ro-secret-5678", "wrong-secret-9999"] {
        assert!(!log.contains(secret), "the log must not contain a token");
    }
}
