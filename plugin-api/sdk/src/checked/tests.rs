//! `open_checked` refuses natively what the exported guard refuses, with the same code and
//! detail text, before the plugin's code runs; what passes reaches the plugin unchanged.
#![allow(clippy::unwrap_used, reason = "tests: a failed expectation is the failure")]

use virtplug_model::{
    codes,
    flags::{ops, snapshot_create, snapshot_xml},
};
use virtplug_plugin_api::Capabilities;

use super::*;
use crate::{open_checked, with_checks};

/// Accepts everything, so any refusal comes from the wrapper.
struct Yes;

impl Driver for Yes {
    fn snapshot_create(&self, _dom: &str, _xml: &str, flags: u32) -> Result<String> {
        Ok(format!("created 0x{flags:x}"))
    }
    fn snapshot_xml(&self, _dom: &str, _snap: &str, _flags: u32) -> Result<String> {
        Ok("<domainsnapshot/>".into())
    }
    fn domain_start(&self, _dom: &str) -> Result<()> {
        Ok(())
    }
    fn domain_job_begin(&self, _dom: &str, _job: &str) -> Result<String> {
        Ok("job-1".into())
    }
}

impl Plugin for Yes {
    const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
        name: "yes",
        version: "0",
        schemes: &["yes"],
        ops: ops::SNAPSHOT_CREATE | ops::SNAPSHOT_XML | ops::DOMAIN_START | ops::DOMAIN_JOB,
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
    fn open(_uri: &str, _read_only: bool) -> Result<Box<dyn Driver>> {
        Ok(Box::new(Yes))
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T>) -> (u32, String) {
    let e = r.unwrap_err();
    (e.code, e.message)
}

#[test]
fn read_only_connection_refuses_changes_and_secure_reads() {
    let ro = open_checked::<Yes>("yes:///", true).unwrap();
    assert_eq!(
        refusal(ro.snapshot_create("d", "<domainsnapshot/>", 0)),
        (codes::OPERATION_DENIED, "read only access prevents virDomainSnapshotCreateXML".into())
    );
    assert_eq!(
        refusal(ro.domain_start("d")),
        (codes::OPERATION_DENIED, "read only access prevents virDomainCreate".into())
    );
    assert_eq!(
        refusal(ro.domain_job_begin("d", "migrate")),
        (codes::OPERATION_DENIED, "read only access prevents virtplugDomainJobBegin".into())
    );
    assert_eq!(
        refusal(ro.snapshot_xml("d", "s", snapshot_xml::SECURE)),
        (codes::OPERATION_DENIED, "virDomainSnapshotGetXMLDesc with secure flag".into())
    );
    assert_eq!(ro.snapshot_xml("d", "s", 0).unwrap(), "<domainsnapshot/>");
    let wrapped = with_checks::<Yes>(Box::new(Yes), true);
    assert_eq!(
        refusal(wrapped.domain_start("d")),
        (codes::OPERATION_DENIED, "read only access prevents virDomainCreate".into())
    );
}

#[test]
fn flag_rules_apply_in_the_hosts_order() {
    let rw = open_checked::<Yes>("yes:///", false).unwrap();
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
        assert_eq!(refusal(rw.snapshot_create("d", "<domainsnapshot/>", flags)), (code, text.to_string()));
    }
    let ok = snapshot_create::REDEFINE | snapshot_create::CURRENT;
    assert_eq!(rw.snapshot_create("d", "<domainsnapshot/>", ok).unwrap(), format!("created 0x{ok:x}"));
    assert_eq!(rw.domain_job_begin("d", "migrate").unwrap(), "job-1");
    assert_eq!(refusal(rw.domain_suspend("d")), (codes::NO_SUPPORT, "domain_suspend".into()));
}
