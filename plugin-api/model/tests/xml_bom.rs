//! A UTF-8 byte order mark before the document: every entry point strips it, so the spans of
//! embedded documents index the right text (issue 11.3, issue 12: bundles with a BOM).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use virtplug_model::{
    bundle::Bundle,
    domain::{DomainDef, TEST_DOMAIN_XML},
    xml::{self, FormatFlags, ParseFlags, SnapshotDef},
};

const BOM: &str = "\u{feff}";

fn snapshot_xml() -> String {
    let def = SnapshotDef {
        name: "s1".into(),
        description: Some("with a <domain>".into()),
        state: virtplug_model::flags::domain_state::RUNNING,
        creation_time: 1795681679,
        domain: Some(TEST_DOMAIN_XML.into()),
        inactive_domain: Some(
            TEST_DOMAIN_XML.replace("<domain ", "<inactiveDomain ").replace("</domain>", "</inactiveDomain>"),
        ),
        cookie: Some("<cookie>\n  <cpu mode='custom'/>\n</cookie>".into()),
        ..Default::default()
    };
    xml::format(&def, None, FormatFlags { secure: true, ..Default::default() })
}

#[test]
fn snapshot_with_bom_parses_exactly_as_without() {
    let plain = snapshot_xml();
    for flags in [
        ParseFlags { redefine: true, ..Default::default() },
        ParseFlags::default(),
        ParseFlags { offline: true, ..Default::default() },
    ] {
        let without = xml::parse(&plain, flags);
        let with = xml::parse(&format!("{BOM}{plain}"), flags);
        assert_eq!(with, without, "{flags:?}");
    }
    let def = xml::parse(&format!("{BOM}{plain}"), ParseFlags { redefine: true, ..Default::default() }).unwrap();
    assert_eq!(def.domain.as_deref(), Some(TEST_DOMAIN_XML));
    assert_eq!(xml::format(&def, None, FormatFlags { secure: true, ..Default::default() }), plain);
}

#[test]
fn domain_with_bom_keeps_no_bom() {
    let d = DomainDef::parse(&format!("{BOM}{TEST_DOMAIN_XML}\n")).unwrap();
    assert_eq!(d, DomainDef::parse(TEST_DOMAIN_XML).unwrap());
    assert_eq!(d.xml, TEST_DOMAIN_XML);
}

#[test]
fn bundle_with_bom_reads() {
    let def = xml::parse(&snapshot_xml(), ParseFlags { redefine: true, ..Default::default() }).unwrap();
    let b = Bundle::new("6695eb01-f6a4-8304-79aa-97f2502e193f", Some("s1"), vec![def]).unwrap();
    let text = b.to_string();
    assert_eq!(Bundle::parse(&format!("{BOM}{text}")).unwrap(), b);
}

#[test]
fn schema_check_and_secret_stripping_accept_a_bom() {
    xml::validate_schema(&format!("{BOM}{}", snapshot_xml())).unwrap();
    let dom = "<domain type='t'><graphics type='vnc' passwd='s3cret'/></domain>";
    assert_eq!(xml::strip_secrets(&format!("{BOM}{dom}")), "<domain type='t'><graphics type='vnc'/></domain>");
}
