//! The mock with `store=etcd://…` (feature `etcd`): snapshot metadata on a real 3-member etcd
//! cluster, domains local; two hosts (state directories) see one hierarchy; a malformed store URI
//! or an unreachable cluster is a one-line error that creates nothing locally. Needs `etcd`
//! (fails under CI=true without it).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use virtplug_plugin_mock::MockPlugin;
use virtplug_plugin_sdk::{Plugin, codes, flags::snapshot_delete};
use virtplug_test_support::{EtcdCluster, require};

fn names(d: &dyn virtplug_plugin_sdk::Driver) -> Vec<String> {
    d.snapshot_list("test", 0).unwrap().into_iter().map(|i| i.name).collect()
}

#[test]
fn two_hosts_share_the_snapshot_metadata_and_keep_their_domains() {
    let tmp = tempfile::tempdir().unwrap();
    let c = require!(EtcdCluster::start("mock etcd store", &tmp.path().join("etcd"), 3));
    let store = c.uri("fleet");
    let a = MockPlugin::open(&format!("mock://{}/a?store={store}", tmp.path().display()), false).unwrap();
    let b = MockPlugin::open(&format!("mock://{}/b?store={store}", tmp.path().display()), false).unwrap();
    a.snapshot_create("test", "<domainsnapshot><name>s1</name></domainsnapshot>", 0).unwrap();
    a.snapshot_create("test", "<domainsnapshot><name>s2</name></domainsnapshot>", 0).unwrap();
    // b's domain `test` has the same UUID (libvirt's test domain): it sees a's hierarchy.
    assert_eq!(names(&*b), ["s1", "s2"]);
    assert_eq!(b.snapshot_current("test").unwrap().unwrap().name, "s2");
    assert_eq!(b.snapshot_lookup("test", "s2").unwrap().parent.as_deref(), Some("s1"));
    assert!(b.snapshot_xml("test", "s1", 0).unwrap().contains("<name>s1</name>"));
    // Domain state stays local: a revert on a changes a's domain, the current snapshot for both.
    a.domain_destroy("test").unwrap();
    a.snapshot_revert("test", "s1", 0).unwrap();
    assert_eq!(b.snapshot_current("test").unwrap().unwrap().name, "s1");
    assert_eq!(a.domain_lookup_by_name("test").unwrap().state, b.domain_lookup_by_name("test").unwrap().state);
    a.snapshot_delete("test", "s1", snapshot_delete::CHILDREN).unwrap();
    assert!(names(&*b).is_empty());
    // Nothing of the snapshots is in a's local store: without the store, a has none.
    let local = MockPlugin::open(&format!("mock://{}/a", tmp.path().display()), false).unwrap();
    a.snapshot_create("test", "<domainsnapshot><name>s3</name></domainsnapshot>", 0).unwrap();
    assert!(names(&*local).is_empty());
    // Undefining with the snapshot metadata drops the fleet's copy too (b defines the domain
    // again and sees none); without the flag the snapshots keep it.
    a.domain_destroy("test").unwrap();
    let e = a.domain_undefine("test", 0).unwrap_err();
    assert_eq!(e.message, "cannot delete inactive domain with 1 snapshots");
    a.domain_undefine("test", virtplug_plugin_sdk::flags::domain_undefine::SNAPSHOTS_METADATA).unwrap();
    assert!(names(&*b).is_empty());
}

#[test]
fn a_bad_store_uri_or_an_unreachable_cluster_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("h");
    let e = MockPlugin::open(&format!("mock://{}?store=etcd://a/x", dir.display()), false).err().unwrap();
    assert_eq!(
        (e.code, e.to_string()),
        (codes::INVALID_ARG, "invalid argument: store URI 'etcd://a/x': every member must be host:port".into())
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let e =
        MockPlugin::open(&format!("mock://{}?store=etcd://127.0.0.1:{port}/x", dir.display()), false).err().unwrap();
    assert_eq!(e.code, codes::SYSTEM_ERROR);
    assert!(e.message.starts_with(&format!("unable to reach the metadata store etcd://127.0.0.1:{port}/x: ")));
    assert!(!dir.exists(), "nothing may be created locally");
}
