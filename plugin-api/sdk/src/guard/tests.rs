//! The guard applies the host's rule table by itself: a plugin called without the host refuses
//! what the host refuses, with the same code and detail text, and its code never runs.
#![allow(clippy::unwrap_used, reason = "tests: a failed expectation is the failure")]

use virtplug_model::flags::{ops, snapshot_create, snapshot_xml};
use virtplug_plugin_api::{Capabilities, DriverBox, abi_stable::std_types::RStr};

use super::*;

/// Accepts everything, so any refusal comes from the guard.
struct Yes;

impl Driver for Yes {
    fn snapshot_create(&self, _dom: &str, _xml: &str, _flags: u32) -> model::Result<String> {
        Ok("created".into())
    }
    fn snapshot_xml(&self, _dom: &str, _snap: &str, _flags: u32) -> model::Result<String> {
        Ok("<domainsnapshot/>".into())
    }
    fn domain_start(&self, _dom: &str) -> model::Result<()> {
        Ok(())
    }
}

impl Plugin for Yes {
    const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
        name: "yes",
        version: "0",
        schemes: &["yes"],
        ops: ops::SNAPSHOT_CREATE | ops::SNAPSHOT_XML | ops::DOMAIN_START,
        caps: Capabilities {
            // Everything but NO_METADATA, so the mask step has something to refuse.
            snapshot_create: snapshot_create::ALL & !snapshot_create::NO_METADATA,
            snapshot_revert: 0,
            snapshot_delete: 0,
            snapshot_list: 0,
            snapshot_xml: snapshot_xml::ALL,
            snapshot_import: 0,
            domain_undefine: 0,
            domain_xml: 0,
        },
    };
    fn open(_uri: &str, _read_only: bool) -> model::Result<Box<dyn Driver>> {
        Ok(Box::new(Yes))
    }
}

fn connect(read_only: bool) -> DriverBox {
    open::<Yes>(RStr::from("yes:///"), read_only).into_result().unwrap()
}

fn refusal<T: std::fmt::Debug>(r: RResult<T, AbiError>) -> (u32, String) {
    let e = r.into_result().unwrap_err();
    (e.code, e.message.into())
}

fn s(text: &str) -> RStr<'_> {
    RStr::from(text)
}

#[test]
fn read_only_connection_refuses_changes_and_secure_reads() {
    let ro = connect(true);
    assert_eq!(
        refusal(ro.snapshot_create(s("d"), s("<domainsnapshot/>"), 0)),
        (codes::OPERATION_DENIED, "read only access prevents virDomainSnapshotCreateXML".into())
    );
    assert_eq!(
        refusal(ro.domain_start(s("d"))),
        (codes::OPERATION_DENIED, "read only access prevents virDomainCreate".into())
    );
    assert_eq!(
        refusal(ro.snapshot_xml(s("d"), s("s"), snapshot_xml::SECURE)),
        (codes::OPERATION_DENIED, "virDomainSnapshotGetXMLDesc with secure flag".into())
    );
    assert_eq!(ro.snapshot_xml(s("d"), s("s"), 0).into_result().unwrap().as_str(), "<domainsnapshot/>");
}

#[test]
fn flag_rules_apply_in_the_hosts_order() {
    let rw = connect(false);
    let create = |flags| refusal(rw.snapshot_create(s("d"), s("<domainsnapshot/>"), flags));
    let cases: &[(u32, u32, &str)] = &[
        (0x400, codes::INVALID_ARG, "unsupported flags (0x400) in function snapshot_create"),
        (
            snapshot_create::CURRENT,
            codes::INVALID_ARG,
            "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'",
        ),
        (
            snapshot_create::REDEFINE | snapshot_create::HALT,
            codes::INVALID_ARG,
            "Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' and 'VIR_DOMAIN_SNAPSHOT_CREATE_HALT' are mutually exclusive",
        ),
        (snapshot_create::NO_METADATA, codes::INVALID_ARG, "unsupported flags (0x4) in function snapshot_create"),
    ];
    for &(flags, code, text) in cases {
        assert_eq!(create(flags), (code, text.to_string()), "flags 0x{flags:x}");
    }
    assert_eq!(rw.snapshot_create(s("d"), s("<domainsnapshot/>"), 0).into_result().unwrap().as_str(), "created");
    assert_eq!(refusal(rw.domain_suspend(s("d"))), (codes::NO_SUPPORT, "domain_suspend".into()));
}

/// Serves only `snapshot_generation`.
struct Generation;

impl Driver for Generation {
    fn snapshot_generation(&self, _dom: &str) -> model::Result<u64> {
        Ok(7)
    }
}

impl Plugin for Generation {
    const DESCRIPTOR: PluginDescriptor =
        PluginDescriptor { name: "gen", schemes: &["gen"], ops: ops::SNAPSHOT_GENERATION, ..Yes::DESCRIPTOR };
    fn open(_uri: &str, _read_only: bool) -> model::Result<Box<dyn Driver>> {
        Ok(Box::new(Generation))
    }
}

#[test]
fn snapshot_generation_is_a_flagless_read() {
    let ro = open::<Generation>(s("gen:///"), true).into_result().unwrap();
    assert_eq!(ro.snapshot_generation(s("d"), 0).into_result().unwrap(), 7);
    assert_eq!(
        refusal(ro.snapshot_generation(s("d"), 1)),
        (codes::INVALID_ARG, "unsupported flags (0x1) in function snapshot_generation".into())
    );
    // a plugin that does not declare the bit answers NO_SUPPORT, which hosts take as "no generation"
    assert_eq!(
        refusal(connect(true).snapshot_generation(s("d"), 0)),
        (codes::NO_SUPPORT, "snapshot_generation".into())
    );
}

/// Serves only the shared-store pair.
struct Shared;

impl Driver for Shared {
    fn snapshot_store(&self, _dom: &str) -> model::Result<String> {
        Ok("etcd://a:1/p\nh1".into())
    }
    fn snapshot_handover(&self, _dom: &str, _to: &str) -> model::Result<()> {
        Ok(())
    }
}

impl Plugin for Shared {
    const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
        name: "shared",
        schemes: &["shared"],
        ops: ops::SNAPSHOT_STORE | ops::SNAPSHOT_HANDOVER,
        ..Yes::DESCRIPTOR
    };
    fn open(_uri: &str, _read_only: bool) -> model::Result<Box<dyn Driver>> {
        Ok(Box::new(Shared))
    }
}

#[test]
fn snapshot_store_is_a_read_and_handover_a_write() {
    let ro = open::<Shared>(s("shared:///"), true).into_result().unwrap();
    assert_eq!(ro.snapshot_store(s("d"), 0).into_result().unwrap().as_str(), "etcd://a:1/p\nh1");
    assert_eq!(
        refusal(ro.snapshot_handover(s("d"), s("h2"), 0)),
        (codes::OPERATION_DENIED, "read only access prevents virtplugDomainSnapshotHandover".into())
    );
    let rw = open::<Shared>(s("shared:///"), false).into_result().unwrap();
    rw.snapshot_handover(s("d"), s("h2"), 0).into_result().unwrap();
    assert_eq!(
        refusal(rw.snapshot_store(s("d"), 1)),
        (codes::INVALID_ARG, "unsupported flags (0x1) in function snapshot_store".into())
    );
    // a plugin that does not declare them answers NO_SUPPORT: the host then copies
    assert_eq!(refusal(connect(false).snapshot_store(s("d"), 0)), (codes::NO_SUPPORT, "snapshot_store".into()));
}
