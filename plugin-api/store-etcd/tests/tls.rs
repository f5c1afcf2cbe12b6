//! TLS from the store config (`ca`, `cert`, `key`) against a real one-member etcd that serves
//! HTTPS only and requires client certificates (certificates made here with rcgen): with all
//! three a host writes; without the client certificate, or without TLS, it cannot connect; an
//! unreadable file is a one-line INVALID_ARG. Needs `etcd` (fails under CI=true without it).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use virtplug_plugin_sdk::{Metadata, MetadataStore, codes, model::xml::SnapshotDef};
use virtplug_store_etcd::{EtcdBackend, StoreConfig};
use virtplug_test_support::{find_program, need, require};

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// Kills the member on drop.
struct Member(Child);

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Writes ca.pem, server.pem/-key.pem and client.pem/-key.pem into `dir`.
fn certificates(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    for (name, purpose, sans) in [
        ("server", ExtendedKeyUsagePurpose::ServerAuth, vec!["127.0.0.1".to_owned(), "localhost".to_owned()]),
        ("client", ExtendedKeyUsagePurpose::ClientAuth, vec!["h1".to_owned()]),
    ] {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(sans).unwrap();
        p.extended_key_usages = vec![purpose];
        let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    }
}

fn config(dir: &Path, text: &str) -> StoreConfig {
    let path = dir.join("store.conf");
    std::fs::write(&path, text).unwrap();
    StoreConfig::parse(&path, text).unwrap()
}

#[test]
fn tls_and_client_certificates_come_from_the_store_config() {
    let program = require!(need("etcd store TLS test", find_program("etcd")));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    certificates(dir);
    let (client, peer) = (free_port(), free_port());
    let pem = |f: &str| dir.join(f).display().to_string();
    let _member = Member(
        Command::new(program)
            .args(["--name", "t", "--data-dir"])
            .arg(dir.join("data"))
            .args(["--listen-client-urls", &format!("https://127.0.0.1:{client}")])
            .args(["--advertise-client-urls", &format!("https://127.0.0.1:{client}")])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-cluster", &format!("t=http://127.0.0.1:{peer}")])
            .args(["--cert-file", &pem("server.pem"), "--key-file", &pem("server-key.pem")])
            .args(["--trusted-ca-file", &pem("ca.pem"), "--client-cert-auth"])
            .args(["--logger", "zap", "--log-outputs", "stderr", "--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let uri = format!("etcd://127.0.0.1:{client}/tls");
    let full = config(dir, "host = h1\nca = ca.pem\ncert = client.pem\nkey = client-key.pem\n");
    // The member takes a moment to serve: connect until it does (bounded, not timed).
    let deadline = Instant::now() + Duration::from_secs(30);
    let backend = loop {
        match EtcdBackend::connect(&uri, &full) {
            Ok(b) => break b,
            Err(e) => assert!(Instant::now() < deadline, "the TLS member never served: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut s = Metadata::new(backend);
    let def = SnapshotDef { name: "s1".into(), state: 5, creation_time: 1_700_000_000, ..Default::default() };
    s.create_def(VM, &def).unwrap();
    assert_eq!(s.list(VM).unwrap().len(), 1);
    // Without the client certificate, or without TLS at all, no connection.
    for text in ["host = h2\nca = ca.pem\n", "host = h2\n"] {
        let e = EtcdBackend::connect(&uri, &config(dir, text)).unwrap_err();
        assert_eq!(e.code, codes::SYSTEM_ERROR, "{text}: {e}");
    }
    // A file that cannot be read is named.
    let e = EtcdBackend::connect(&uri, &config(dir, "ca = missing.pem\n")).unwrap_err();
    assert_eq!(e.code, codes::INVALID_ARG);
    assert!(e.message.starts_with(&format!("store config: TLS file '{}' cannot be read: ", pem("missing.pem"))));
}
