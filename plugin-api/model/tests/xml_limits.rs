//! Bounded parsing (issue 12): depth, attributes per element, elements per document and
//! document size are refused past `virtplug_model::limits` with one-line `XML_DETAIL` errors;
//! inputs at the limits parse. Duplicate attributes keep their message.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use virtplug_model::{
    codes,
    domain::DomainDef,
    limits::{MAX_XML_ATTRIBUTES, MAX_XML_BYTES, MAX_XML_DEPTH, MAX_XML_ELEMENTS},
    xml::{self, ParseFlags},
};

const PLAIN: ParseFlags = ParseFlags { redefine: false, internal: false, offline: false };
const REDEFINE: ParseFlags = ParseFlags { redefine: true, internal: false, offline: false };

fn refused(x: &str, flags: ParseFlags) -> (u32, String) {
    let e = xml::parse(x, flags).unwrap_err();
    assert!(!e.message.contains('\n'), "not one line: {}", e.message);
    (e.code, e.message)
}

/// A snapshot whose `<description>` holds `levels` nested elements, so the document is
/// `levels + 2` deep.
fn nested(levels: usize) -> String {
    format!(
        "<domainsnapshot><description>{}{}</description></domainsnapshot>",
        "<a>".repeat(levels),
        "</a>".repeat(levels)
    )
}

#[test]
fn depth() {
    xml::parse(&nested(MAX_XML_DEPTH - 2), PLAIN).unwrap();
    assert_eq!(
        refused(&nested(MAX_XML_DEPTH - 1), PLAIN),
        (codes::XML_DETAIL, "(domain_snapshot):1: Excessive depth in document: more than 256 nested elements".into())
    );
    // The depth that aborted the CLI (stack overflow), refused as one line.
    assert_eq!(refused(&nested(200_000), PLAIN).0, codes::XML_DETAIL);
    // Inside an embedded domain (kept verbatim, not built) the same bound applies.
    let deep_domain = |levels: usize| {
        format!(
            "<domainsnapshot><name>s</name><state>running</state><creationTime>1</creationTime><domain type='kvm'>{}{}</domain></domainsnapshot>",
            "<a>".repeat(levels),
            "</a>".repeat(levels)
        )
    };
    xml::parse(&deep_domain(MAX_XML_DEPTH - 2), REDEFINE).unwrap();
    assert_eq!(refused(&deep_domain(MAX_XML_DEPTH - 1), REDEFINE).0, codes::XML_DETAIL);
    let e = DomainDef::parse(&format!("<domain type='t'>{}</domain>", "<a>".repeat(300))).unwrap_err();
    assert_eq!(e.message, "(domain_definition):1: Excessive depth in document: more than 256 nested elements");
}

fn with_attrs(n: usize) -> String {
    let attrs: String = (0..n).map(|i| format!(" a{i}='{i}'")).collect();
    format!("<domainsnapshot><name{attrs}>s</name></domainsnapshot>")
}

#[test]
fn attributes() {
    xml::parse(&with_attrs(MAX_XML_ATTRIBUTES), PLAIN).unwrap();
    let over =
        (codes::XML_DETAIL, "(domain_snapshot):1: too many attributes on element name: more than 256".to_owned());
    assert_eq!(refused(&with_attrs(MAX_XML_ATTRIBUTES + 1), PLAIN), over);
    // The 1 MB request that cost 21 s of CPU: refused after reading 257 attributes.
    assert_eq!(refused(&with_attrs(100_000), PLAIN), over);
}

#[test]
fn duplicate_attributes_are_named_as_libxml2_names_them() {
    assert_eq!(
        refused("<domainsnapshot><name a='1' a='2'>s</name></domainsnapshot>", PLAIN),
        (codes::XML_DETAIL, "(domain_snapshot):1: Attribute a redefined".into())
    );
    // Many attributes (found through the hash map): the same message, on the attribute's line.
    let attrs: String = (0..40).map(|i| format!(" a{i}='{i}'")).collect();
    let x = format!("<domainsnapshot><name{attrs}\n a7='again'>s</name></domainsnapshot>");
    assert_eq!(refused(&x, PLAIN).1, "(domain_snapshot):2: Attribute a7 redefined");
    // Inside an embedded domain too.
    let x = "<domainsnapshot><name>s</name><state>running</state><creationTime>1</creationTime>\n<domain type='kvm' type='qemu'/></domainsnapshot>";
    assert_eq!(refused(x, REDEFINE).1, "(domain_snapshot):2: Attribute type redefined");
}

#[test]
fn elements() {
    let doc = |n: usize| format!("<domainsnapshot><description>{}</description></domainsnapshot>", "<a/>".repeat(n));
    xml::parse(&doc(MAX_XML_ELEMENTS - 2), PLAIN).unwrap();
    assert_eq!(
        refused(&doc(MAX_XML_ELEMENTS - 1), PLAIN),
        (codes::XML_DETAIL, "(domain_snapshot):1: too many elements in document: more than 100000".into())
    );
}

#[test]
fn document_size() {
    let doc = |n: usize| {
        let frame = "<domainsnapshot><name>s</name></domainsnapshot>";
        format!("{frame}{}", " ".repeat(n - frame.len()))
    };
    xml::parse(&doc(MAX_XML_BYTES), PLAIN).unwrap();
    assert_eq!(
        refused(&doc(MAX_XML_BYTES + 1), PLAIN),
        (codes::XML_DETAIL, "(domain_snapshot):1: document too large: 10485761 bytes, more than 10485760".into())
    );
    let e = DomainDef::parse(&" ".repeat(MAX_XML_BYTES + 1)).unwrap_err();
    assert_eq!(e.code, codes::XML_DETAIL);
}

/// A memory size in KB (1000 bytes) that overflows is refused, not wrapped (found by fuzzing).
#[test]
fn memory_in_kb_that_overflows_is_refused() {
    let xml = "<domain type='test'><name>d</name><uuid>00000000-0000-4000-8000-000000000001</uuid>\
               <memory unit='KB'>18446744073709551615</memory></domain>";
    let e = virtplug_model::domain::DomainDef::parse(xml).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (virtplug_model::codes::XML_ERROR, "value too large for 'memory'"));
    let ok = xml.replace("18446744073709551615", "2048");
    assert_eq!(virtplug_model::domain::DomainDef::parse(&ok).unwrap().max_memory_kib, 2000);
}
