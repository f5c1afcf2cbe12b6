//! The mock driver through the native SDK API (`Plugin::open`, `Driver`), with libvirt's exact
//! error texts.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use virtplug_plugin_mock::MockPlugin;
use virtplug_plugin_sdk::{
    Driver, Error, Plugin, codes,
    flags::{
        domain_state as st, domain_undefine, domain_xml, ops, snapshot_create as cf, snapshot_delete as df,
        snapshot_import, snapshot_revert as rf, snapshot_xml,
    },
    model::domain::TEST_DOMAIN_XML,
};

const UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

struct Host {
    _dir: tempfile::TempDir,
    uri: String,
    d: Box<dyn Driver>,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("mock://{}", dir.path().display());
    // Behind the SDK's checks, as the host calls it: the generic refusals asserted here are the
    // rule table's, not the plugin's.
    let d = virtplug_plugin_sdk::open_checked::<MockPlugin>(&uri, false).unwrap();
    Host { _dir: dir, uri, d }
}

fn named(name: &str) -> String {
    format!("<domainsnapshot>\n  <name>{name}</name>\n</domainsnapshot>\n")
}

fn err<T: std::fmt::Debug>(r: Result<T, Error>) -> (u32, String) {
    let e = r.unwrap_err();
    (e.code, e.message)
}

/// `x<-parent` in topological order, then `current=`.
fn shape(d: &dyn Driver) -> String {
    let mut parts: Vec<String> = d
        .snapshot_list("test", 0)
        .unwrap()
        .iter()
        .map(|i| format!("{}<-{}", i.name, i.parent.as_deref().unwrap_or("None")))
        .collect();
    parts.push(format!("current={}", d.snapshot_current("test").unwrap().map_or("None".into(), |c| c.name)));
    parts.join(" ")
}

fn state(d: &dyn Driver) -> u32 {
    d.domain_lookup_by_name("test").unwrap().state
}

#[test]
fn descriptor_declares_everything() {
    let desc = MockPlugin::DESCRIPTOR;
    assert_eq!(desc.ops, ops::ALL);
    assert_eq!(desc.schemes, &["mock"]);
    let c = desc.caps;
    assert_eq!(
        (
            c.snapshot_create,
            c.snapshot_revert,
            c.snapshot_delete,
            c.snapshot_list,
            c.snapshot_xml,
            c.snapshot_import,
            c.domain_undefine,
            c.domain_xml
        ),
        (0x3ff, 0xf, 0x7, 0x7ff, 0x1, 0x1, 0x7f, 0xb)
    );
}

#[test]
fn fresh_store_has_the_test_domain() {
    let h = host();
    let doms = h.d.domain_list().unwrap();
    assert_eq!(doms.len(), 1);
    let t = &doms[0];
    assert_eq!((t.name.as_str(), t.uuid.as_str(), t.id, t.state), ("test", UUID, 1, st::RUNNING));
    assert_eq!((t.max_memory_kib, t.memory_kib, t.vcpus, t.persistent), (8388608, 2097152, 2, true));
    // Live XML names the running domain's id (libvirt's `<domain type='test' id='1'>`); the
    // inactive definition is the stored one.
    let live = TEST_DOMAIN_XML.replacen("<domain type='test'>", "<domain type='test' id='1'>", 1);
    assert_eq!(h.d.domain_xml("test", 0).unwrap(), format!("{live}\n"));
    assert_eq!(h.d.domain_xml("test", domain_xml::INACTIVE).unwrap(), format!("{TEST_DOMAIN_XML}\n"));
    assert_eq!(h.d.domain_lookup_by_uuid(UUID).unwrap().name, "test");
    // A lookup of an unknown domain, as the test driver reports it: NO_DOMAIN with no detail.
    assert_eq!(err(h.d.domain_lookup_by_name("nosuch")), (codes::NO_DOMAIN, String::new()));
}

#[test]
fn other_uris_are_refused() {
    for uri in ["qemu:///system", "mock://remote/x", "mock:default", "mock:///"] {
        let e = MockPlugin::open(uri, false).err().unwrap();
        assert_eq!(e.code, codes::NO_CONNECT, "{uri}");
        assert!(e.message.starts_with(uri), "{}", e.message);
    }
}

#[test]
fn appendix_a_session() {
    let h = host();
    let d = &*h.d;
    assert_eq!(
        d.snapshot_create(
            "test",
            "<domainsnapshot>\n  <name>s1</name>\n  <description>first</description>\n</domainsnapshot>\n",
            0
        )
        .unwrap(),
        "s1"
    );
    d.snapshot_create("test", &named("s2"), 0).unwrap();
    let auto = d.snapshot_create("test", "<domainsnapshot/>", 0).unwrap();
    assert!(auto.parse::<i64>().is_ok(), "{auto}");
    assert_eq!(shape(d), format!("s1<-None s2<-s1 {auto}<-s2 current={auto}"));
    let x = d.snapshot_xml("test", "s2", 0).unwrap();
    let time = d.snapshot_lookup("test", "s2").unwrap().creation_time;
    let domain: String = TEST_DOMAIN_XML.lines().map(|l| format!("  {l}\n")).collect();
    let want = format!(
        "<domainsnapshot>\n  <name>s2</name>\n  <state>running</state>\n  <parent>\n    <name>s1</name>\n  </parent>\n  <creationTime>{time}</creationTime>\n  <memory snapshot='internal'/>\n  <disks>\n    <disk name='vda' snapshot='internal'/>\n  </disks>\n{domain}</domainsnapshot>\n"
    );
    assert_eq!(x, want);
    assert!(
        d.snapshot_xml("test", "s1", 0)
            .unwrap()
            .contains("  <name>s1</name>\n  <description>first</description>\n  <state>running</state>\n")
    );
    // plain delete reparents; redefine from the dump without CURRENT keeps current
    let s2 = d.snapshot_xml("test", "s2", snapshot_xml::SECURE).unwrap();
    d.snapshot_delete("test", "s2", 0).unwrap();
    assert_eq!(shape(d), format!("s1<-None {auto}<-s1 current={auto}"));
    d.snapshot_create("test", &s2, cf::REDEFINE).unwrap();
    // s2, redefined last, is s1's newest child: libvirt lists it first (reference §5.3)
    assert_eq!(shape(d), format!("s1<-None s2<-s1 {auto}<-s1 current={auto}"));
    d.snapshot_create("test", &s2, cf::REDEFINE | cf::CURRENT).unwrap();
    assert_eq!(d.snapshot_current("test").unwrap().unwrap().name, "s2");
    // redefine validation errors (§7.3)
    let s1 = d.snapshot_xml("test", "s1", snapshot_xml::SECURE).unwrap();
    let cases: Vec<(String, u32, &str)> = vec![
        (
            s2.replace(UUID, "6695eb01-f6a4-8304-79aa-97f2502e1930"),
            codes::INVALID_ARG,
            "definition for snapshot s2 must use uuid 6695eb01-f6a4-8304-79aa-97f2502e193f",
        ),
        (
            s2.replace("<name>s1</name>", "<name>nosuch</name>"),
            codes::INVALID_ARG,
            "parent nosuch for moment s2 not found",
        ),
        (
            s2.replace("<name>s1</name>", "<name>s2</name>"),
            codes::INVALID_ARG,
            "cannot set moment s2 as its own parent",
        ),
        (
            s1.replace("</state>\n", "</state>\n  <parent>\n    <name>s2</name>\n  </parent>\n"),
            codes::INVALID_ARG,
            "parent s2 would create cycle to s1",
        ),
        (
            s2.replace(&format!("  <creationTime>{time}</creationTime>\n"), ""),
            codes::INTERNAL_ERROR,
            "missing creationTime from existing snapshot",
        ),
        (s2.replace("  <state>running</state>\n", ""), codes::XML_ERROR, "missing state from existing snapshot"),
        (
            s2.replace("<state>running</state>", "<state>shutoff</state>"),
            codes::XML_ERROR,
            "memory state cannot be saved with offline or disk-only snapshot",
        ),
        (
            s2.replace("<state>running</state>", "<state>shutoff</state>")
                .replace("<memory snapshot='internal'/>", "<memory snapshot='no'/>"),
            codes::INVALID_ARG,
            "cannot change between online and offline snapshot state in snapshot s2",
        ),
        (
            s2.replace("<vcpu placement='static'>2</vcpu>", "<vcpu placement='static'>3</vcpu>"),
            codes::CONFIG_UNSUPPORTED,
            "Target domain vCPU max 3 does not match source 2",
        ),
        (s2.replace("  <name>s2</name>\n", ""), codes::XML_ERROR, "a redefined snapshot must have a name"),
    ];
    for (xml, code, msg) in cases {
        assert_eq!(err(d.snapshot_create("test", &xml, cf::REDEFINE)), (code, msg.to_owned()));
    }
    assert_eq!(
        err(d.snapshot_create("test", &named("s1"), 0)),
        (codes::OPERATION_FAILED, "domain moment s1 already exists".into())
    );
    assert_eq!(
        err(d.snapshot_create("test", &s2, cf::REDEFINE | cf::DISK_ONLY)),
        (codes::INVALID_ARG, "disk-only flag for snapshot s2 requires disk-snapshot state".into())
    );
    // delete --children on the root removes everything
    d.snapshot_delete("test", "s1", df::CHILDREN).unwrap();
    assert_eq!(shape(d), "current=None");
}

#[test]
fn create_flags() {
    let h = host();
    let d = &*h.d;
    let flag_errors: &[(u32, &str)] = &[
        (
            cf::CURRENT,
            "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'",
        ),
        (
            cf::REDEFINE | cf::NO_METADATA,
            "Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' and 'VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA' are mutually exclusive",
        ),
        (
            cf::REDEFINE | cf::HALT,
            "Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' and 'VIR_DOMAIN_SNAPSHOT_CREATE_HALT' are mutually exclusive",
        ),
        (
            cf::QUIESCE,
            "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_QUIESCE'",
        ),
        (
            cf::LIVE | cf::REDEFINE,
            "Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_LIVE' and 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' are mutually exclusive",
        ),
    ];
    for (flags, msg) in flag_errors {
        assert_eq!(err(d.snapshot_create("test", &named("x"), *flags)), (codes::INVALID_ARG, (*msg).to_owned()));
    }
    assert_eq!(
        err(d.snapshot_create("test", &named("x"), cf::LIVE)),
        (codes::OPERATION_UNSUPPORTED, "live snapshot creation is supported only during full system snapshots".into())
    );
    assert_eq!(
        err(d.snapshot_create("test", &named("x/y"), 0)),
        (codes::XML_DETAIL, "invalid snapshot name 'x/y': name can't contain '/'".into())
    );
    assert_eq!(
        err(d.snapshot_create("test", &named(".hidden"), 0)),
        (codes::XML_DETAIL, "invalid snapshot name '.hidden': name can't start with '.'".into())
    );
    assert_eq!(err(d.snapshot_create("test", "<domainsnapshot><bogus/></domainsnapshot>", cf::VALIDATE)).0, 92);
    assert_eq!(
        err(d.snapshot_create("test", "<snapshot/>", 0)),
        (codes::XML_ERROR, "expecting root element of 'domainsnapshot', not 'snapshot'".into())
    );
    // NO_METADATA: taken, nothing recorded, name rules skipped
    assert_eq!(d.snapshot_create("test", &named("x/y"), cf::NO_METADATA).unwrap(), "x/y");
    assert_eq!(shape(d), "current=None");
    // DISK_ONLY (+QUIESCE): disk-snapshot state, external
    d.snapshot_create("test", &named("disk"), cf::DISK_ONLY | cf::QUIESCE | cf::ATOMIC | cf::REUSE_EXT).unwrap();
    let info = d.snapshot_lookup("test", "disk").unwrap();
    assert_eq!((info.state, info.disk_only, info.external), (st::DISK_SNAPSHOT, true, true));
    assert!(
        d.snapshot_xml("test", "disk", 0)
            .unwrap()
            .contains("  <memory snapshot='no'/>\n  <disks>\n    <disk name='vda' snapshot='external'/>\n")
    );
    // LIVE with external memory on a running domain
    d.snapshot_create("test", "<domainsnapshot><name>live</name><memory file='/m.img'/></domainsnapshot>", cf::LIVE)
        .unwrap();
    assert!(d.snapshot_lookup("test", "live").unwrap().external);
    assert_eq!(err(d.snapshot_create("test", "<domainsnapshot><name>mix</name><disks><disk name='vda' snapshot='internal'/></disks><memory file='/m.img'/></domainsnapshot>", 0)).1,
        "mixing internal and external targets for a snapshot is not yet supported");
    assert_eq!(
        err(d.snapshot_create(
            "test",
            "<domainsnapshot><name>u</name><disks><disk name='vdz'/></disks></domainsnapshot>",
            0
        ))
        .1,
        "no disk named 'vdz'"
    );
    // HALT shuts the domain off; then memory state is refused (offline) like qemu
    d.snapshot_create("test", &named("halted"), cf::HALT).unwrap();
    assert_eq!(state(d), st::SHUTOFF);
    assert_eq!(d.snapshot_lookup("test", "halted").unwrap().state, st::RUNNING);
    assert_eq!(
        err(d.snapshot_create("test", "<domainsnapshot><memory snapshot='internal'/></domainsnapshot>", 0)),
        (codes::XML_ERROR, "memory state cannot be saved with offline or disk-only snapshot".into())
    );
    d.snapshot_create("test", &named("off"), 0).unwrap();
    let off = d.snapshot_lookup("test", "off").unwrap();
    assert_eq!((off.state, off.parent.as_deref()), (st::SHUTOFF, Some("halted")));
    assert!(d.snapshot_xml("test", "off", 0).unwrap().contains("<memory snapshot='no'/>"));
}

#[test]
fn reference_sequence_8_2_and_revert() {
    let h = host();
    let d = &*h.d;
    for n in ["r", "a", "b", "c"] {
        d.snapshot_create("test", &named(n), 0).unwrap();
    }
    let b = d.snapshot_xml("test", "b", snapshot_xml::SECURE).unwrap();
    d.snapshot_create("test", &b.replace("<name>a</name>", "<name>r</name>"), cf::REDEFINE).unwrap();
    // libvirt's order: b, re-linked by the redefine, is r's newest child (reference §8.2)
    assert_eq!(shape(d), "r<-None b<-r c<-b a<-r current=c");
    d.snapshot_revert("test", "a", 0).unwrap();
    assert_eq!(shape(d), "r<-None b<-r c<-b a<-r current=a");
    d.snapshot_create("test", &named("a2"), 0).unwrap();
    d.snapshot_revert("test", "c", 0).unwrap();
    d.snapshot_delete("test", "b", df::CHILDREN_ONLY).unwrap();
    assert_eq!(shape(d), "r<-None b<-r a<-r a2<-a current=b");
    d.snapshot_delete("test", "b", df::METADATA_ONLY).unwrap();
    assert_eq!(shape(d), "r<-None a<-r a2<-a current=r");
    d.snapshot_delete("test", "r", 0).unwrap();
    assert_eq!(shape(d), "a<-None a2<-a current=None");
    assert_eq!(err(d.snapshot_delete("test", "a", df::CHILDREN | df::CHILDREN_ONLY)),
        (codes::INVALID_ARG, "Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' are mutually exclusive".into()));
    assert_eq!(
        err(d.snapshot_delete("test", "nosuch", 0)),
        (codes::NO_DOMAIN_SNAPSHOT, "no domain snapshot with matching name 'nosuch'".into())
    );

    // revert applies the snapshot's state
    d.domain_destroy("test").unwrap();
    d.snapshot_create("test", &named("cold"), 0).unwrap();
    d.snapshot_revert("test", "a", 0).unwrap();
    assert_eq!(state(d), st::RUNNING);
    assert!(d.domain_lookup_by_name("test").unwrap().id > 1);
    d.snapshot_revert("test", "cold", 0).unwrap();
    assert_eq!(state(d), st::SHUTOFF);
    d.snapshot_revert("test", "a", rf::PAUSED).unwrap();
    assert_eq!(state(d), st::PAUSED);
    d.snapshot_revert("test", "cold", rf::RUNNING).unwrap();
    assert_eq!(state(d), st::RUNNING);
    assert_eq!(d.snapshot_current("test").unwrap().unwrap().name, "cold");
    assert_eq!(
        err(d.snapshot_revert("test", "a", rf::RUNNING | rf::PAUSED)),
        (
            codes::INVALID_ARG,
            "Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' and 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' are mutually exclusive"
                .into()
        )
    );
    let nodom = "<domainsnapshot>\n  <name>nodom</name>\n  <state>running</state>\n  <creationTime>5</creationTime>\n</domainsnapshot>\n";
    d.snapshot_create("test", nodom, cf::REDEFINE).unwrap();
    assert_eq!(
        err(d.snapshot_revert("test", "nodom", rf::FORCE)),
        (codes::SNAPSHOT_REVERT_RISKY, "snapshot 'nodom' lacks domain 'test' rollback info".into())
    );
    let legacy = format!(
        "<domainsnapshot>\n  <name>old</name>\n  <state>running</state>\n  <creationTime>5</creationTime>\n  <domain>\n    <uuid>{UUID}</uuid>\n  </domain>\n</domainsnapshot>\n"
    );
    assert_eq!(
        err(d.snapshot_create("test", &legacy, cf::REDEFINE)),
        (codes::INTERNAL_ERROR, "missing domain in snapshot".into())
    );
    assert!(d.snapshot_lookup("test", "old").is_err());
}

#[test]
fn domain_operations_and_undefine_guard() {
    let h = host();
    let d = &*h.d;
    assert_eq!(err(d.domain_start("test")), (codes::INTERNAL_ERROR, "Domain 'test' is already running".into()));
    d.domain_suspend("test").unwrap();
    assert_eq!(state(d), st::PAUSED);
    d.domain_resume("test").unwrap();
    d.domain_shutdown("test").unwrap();
    assert_eq!((state(d), d.domain_lookup_by_name("test").unwrap().id), (st::SHUTOFF, -1));
    // As libvirt's test driver: destroy checks activity; shutdown wants an active domain,
    // suspend a running one, resume a paused one, and they say so as internal errors.
    assert_eq!(err(d.domain_destroy("test")), (codes::OPERATION_INVALID, "domain is not running".into()));
    assert_eq!(err(d.domain_shutdown("test")), (codes::INTERNAL_ERROR, "domain 'test' not running".into()));
    assert_eq!(err(d.domain_suspend("test")), (codes::INTERNAL_ERROR, "domain 'test' not running".into()));
    assert_eq!(err(d.domain_resume("test")), (codes::INTERNAL_ERROR, "domain 'test' not paused".into()));
    d.domain_start("test").unwrap();
    assert_eq!(err(d.domain_resume("test")), (codes::INTERNAL_ERROR, "domain 'test' not paused".into()));
    d.domain_suspend("test").unwrap();
    assert_eq!(err(d.domain_suspend("test")), (codes::INTERNAL_ERROR, "domain 'test' not running".into()));
    // A paused domain can be shut down.
    d.domain_shutdown("test").unwrap();
    d.domain_start("test").unwrap();
    for n in ["a", "b"] {
        d.snapshot_create("test", &named(n), 0).unwrap();
    }
    d.domain_destroy("test").unwrap();
    assert_eq!(
        err(d.domain_undefine("test", 0)),
        (codes::OPERATION_INVALID, "cannot delete inactive domain with 2 snapshots".into())
    );
    d.domain_undefine("test", domain_undefine::SNAPSHOTS_METADATA).unwrap();
    assert!(d.domain_list().unwrap().is_empty());
    let info = d.domain_define(TEST_DOMAIN_XML).unwrap();
    assert_eq!((info.state, info.id), (st::SHUTOFF, -1));
    assert!(d.snapshot_list("test", 0).unwrap().is_empty(), "metadata was removed with the domain");
}

#[test]
fn read_only_connections_refuse_changes() {
    let h = host();
    h.d.snapshot_create("test", &named("a"), 0).unwrap();
    let ro = virtplug_plugin_sdk::open_checked::<MockPlugin>(&h.uri, true).unwrap();
    let denied = |r: Result<(), Error>, f: &str| {
        assert_eq!(err(r), (codes::OPERATION_DENIED, format!("read only access prevents {f}")))
    };
    denied(ro.snapshot_create("test", &named("b"), 0).map(|_| ()), "virDomainSnapshotCreateXML");
    denied(ro.snapshot_revert("test", "a", 0), "virDomainRevertToSnapshot");
    denied(ro.snapshot_delete("test", "a", 0), "virDomainSnapshotDelete");
    denied(ro.domain_undefine("test", 0), "virDomainUndefineFlags");
    denied(ro.domain_destroy("test"), "virDomainDestroy");
    assert_eq!(
        err(ro.snapshot_xml("test", "a", snapshot_xml::SECURE)),
        (codes::OPERATION_DENIED, "virDomainSnapshotGetXMLDesc with secure flag".into())
    );
    assert!(ro.snapshot_xml("test", "a", 0).is_ok());
    assert_eq!(ro.snapshot_list("test", 0).unwrap().len(), 1);
    // The raw plugin, without the SDK's checks, runs a read-only dry run.
    let raw_ro = MockPlugin::open(&h.uri, true).unwrap();
    raw_ro.snapshot_import("test", &[], None, snapshot_import::DRY_RUN).unwrap();
}

#[test]
fn two_opens_of_one_dir_share_state_and_dirs_are_isolated() {
    let h = host();
    let other = MockPlugin::open(&h.uri, false).unwrap();
    h.d.snapshot_create("test", &named("s1"), 0).unwrap();
    other.snapshot_create("test", &named("s2"), 0).unwrap();
    assert_eq!(shape(&*h.d), "s1<-None s2<-s1 current=s2");
    assert_eq!(shape(&*other), shape(&*h.d));
    let elsewhere = host();
    assert_eq!(shape(&*elsewhere.d), "current=None");
}

#[test]
fn import_and_edit() {
    let src = host();
    for i in 0..12 {
        src.d.snapshot_create("test", &named(&format!("snap-{i}")), 0).unwrap();
    }
    let mut xmls: Vec<(String, String)> = src
        .d
        .snapshot_list("test", 0)
        .unwrap()
        .iter()
        .map(|i| (i.name.clone(), src.d.snapshot_xml("test", &i.name, snapshot_xml::SECURE).unwrap()))
        .collect();
    xmls.sort(); // name order: snap-10 before snap-9
    let xmls: Vec<String> = xmls.into_iter().map(|(_, x)| x).collect();
    let dst = host();
    dst.d.snapshot_import("test", &xmls, Some("snap-11"), snapshot_import::DRY_RUN).unwrap();
    assert_eq!(shape(&*dst.d), "current=None");
    dst.d.snapshot_import("test", &xmls, Some("snap-11"), 0).unwrap();
    dst.d.snapshot_import("test", &xmls, Some("snap-11"), 0).unwrap();
    assert_eq!(shape(&*dst.d), shape(&*src.d));
    let mut bad = xmls.clone();
    bad.push(
        xmls[1]
            .replace("<name>snap-1</name>", "<name>snap-99</name>")
            .replace("<name>snap-0</name>", "<name>missing</name>"),
    );
    let third = host();
    assert!(third.d.snapshot_import("test", &bad, None, 0).is_err());
    assert_eq!(shape(&*third.d), "current=None");

    let x = dst.d.snapshot_xml("test", "snap-5", snapshot_xml::SECURE).unwrap();
    let renamed = x.replace("<name>snap-5</name>", "<name>five</name>");
    assert_eq!(dst.d.snapshot_edit("test", "snap-5", &renamed, 0).unwrap(), "five");
    assert_eq!(dst.d.snapshot_lookup("test", "snap-6").unwrap().parent.as_deref(), Some("five"));
    assert!(dst.d.snapshot_lookup("test", "snap-5").is_err());
    assert_eq!(
        err(dst.d.snapshot_edit("test", "five", &renamed.replace("<name>five</name>", "<name>snap-1</name>"), 0)),
        (codes::OPERATION_FAILED, "domain moment snap-1 already exists".into())
    );
}

#[test]
fn undefining_an_active_domain_makes_it_transient() {
    let h = host();
    let d = &*h.d;
    d.snapshot_create("test", &named("a"), 0).unwrap();
    d.domain_undefine("test", 0).unwrap();
    assert!(!d.domain_lookup_by_name("test").unwrap().persistent);
    assert_eq!(
        err(d.snapshot_create("test", &named("h"), cf::HALT)),
        (codes::OPERATION_INVALID, "cannot halt after transient domain snapshot".into())
    );
    d.domain_destroy("test").unwrap();
    assert!(d.domain_list().unwrap().is_empty(), "a transient domain disappears when it stops");
    assert_eq!(err(d.snapshot_list("test", 0)).0, codes::NO_DOMAIN);
}

/// The generation moves with every committed change to the snapshot metadata — through this
/// connection or another one — to a value never seen before, and stays put for reads and
/// refused changes; it is per domain, and a domain defined again never reuses a value.
#[test]
fn snapshot_generation_follows_every_write() {
    let h = host();
    let d = &*h.d;
    let other = MockPlugin::open(&h.uri, false).unwrap();
    let ro = virtplug_plugin_sdk::open_checked::<MockPlugin>(&h.uri, true).unwrap();
    let mut seen = vec![d.snapshot_generation("test").unwrap()];
    let mut step = |moved: bool, what: &str| {
        let g = d.snapshot_generation("test").unwrap();
        assert_eq!(ro.snapshot_generation("test").unwrap(), g, "{what}: the same for every connection");
        let last = *seen.last().unwrap();
        if moved {
            assert!(g > last && !seen.contains(&g), "{what}: {g} after {seen:?}");
            seen.push(g);
        } else {
            assert_eq!(g, last, "{what}");
        }
    };
    d.snapshot_create("test", &named("a"), 0).unwrap();
    step(true, "create");
    d.snapshot_list("test", 0).unwrap();
    d.snapshot_xml("test", "a", 0).unwrap();
    step(false, "reads");
    other.snapshot_create("test", &named("b"), 0).unwrap();
    step(true, "another connection's create");
    assert_eq!(err(d.snapshot_delete("test", "nosuch", 0)).0, codes::NO_DOMAIN_SNAPSHOT);
    step(false, "a refused delete");
    d.snapshot_create("test", &named("nometa"), cf::NO_METADATA).unwrap();
    step(false, "a create without metadata");
    d.snapshot_revert("test", "a", 0).unwrap();
    step(true, "revert");
    let x = d.snapshot_xml("test", "b", snapshot_xml::SECURE).unwrap();
    d.snapshot_edit("test", "b", &x.replace("<name>b</name>", "<name>b2</name>"), 0).unwrap();
    step(true, "edit");
    d.snapshot_import("test", std::slice::from_ref(&x), None, snapshot_import::DRY_RUN).unwrap();
    step(false, "a dry-run import");
    d.snapshot_import("test", &[x], None, 0).unwrap();
    step(true, "import");
    d.snapshot_delete("test", "b", df::METADATA_ONLY).unwrap();
    step(true, "delete");
    d.domain_destroy("test").unwrap();
    step(true, "destroy (a domain-row write)");
    d.domain_undefine("test", domain_undefine::SNAPSHOTS_METADATA).unwrap();
    assert_eq!(err(d.snapshot_generation("test")), (codes::NO_DOMAIN, "no domain with matching name 'test'".into()));
    d.domain_define(TEST_DOMAIN_XML).unwrap();
    step(true, "undefine, then define again");
    assert_eq!(
        err(d.snapshot_generation("nosuch")),
        (codes::NO_DOMAIN, "no domain with matching name 'nosuch'".into())
    );
}

/// A define that reuses another domain's UUID under a new name is refused, and the domain that
/// holds the UUID keeps its name, definition and snapshots (libvirt never renames on define).
/// So does a define refused by the definition checks.
#[test]
fn refused_defines_change_nothing_stored() {
    let h = host();
    h.d.snapshot_create("test", &named("s1"), 0).unwrap();
    let before = (h.d.domain_xml("test", domain_xml::INACTIVE).unwrap(), shape(&*h.d));
    let taken = TEST_DOMAIN_XML.replace("<name>test</name>", "<name>other</name>");
    assert_eq!(
        err(h.d.domain_define(&taken)),
        (codes::OPERATION_FAILED, format!("domain 'test' is already defined with uuid {UUID}"))
    );
    let no_os = TEST_DOMAIN_XML.replace("<type arch='i686'>hvm</type>", "");
    assert_eq!(err(h.d.domain_define(&no_os)), (codes::XML_ERROR, "an os <type> must be specified".to_owned()));
    assert_eq!((h.d.domain_xml("test", domain_xml::INACTIVE).unwrap(), shape(&*h.d)), before);
    let names: Vec<String> = h.d.domain_list().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, vec!["test"]);
}
