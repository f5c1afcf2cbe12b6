//! Runs the libvirt 9.0 snapshot XML cases shipped in `shared/data/libvirt-snapshot-xml` exactly
//! as libvirt's `qemudomainsnapshotxml2xmltest` harness does (see that directory's README), and
//! checks every parse error text.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::path::PathBuf;

use virtplug_model::{
    codes,
    flags::domain_state,
    xml::{self, FormatFlags, ParseFlags},
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/libvirt-snapshot-xml")
}

#[derive(Clone, Copy)]
enum Mode {
    Create,
    Redefine,
    RedefineInternal,
}

struct Case {
    name: &'static str,
    input_dir: &'static str,
    mode: Mode,
    uuid: Option<&'static str>,
    creation_time: Option<i64>,
    running: bool,
}

const U1: &str = "9d37b878-a7cc-9f9a-b78f-49b3abad25a8";
const U2: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

const CASES: &[Case] = &[
    Case {
        name: "empty",
        input_dir: "in",
        mode: Mode::Create,
        uuid: Some(U1),
        creation_time: Some(1386166249),
        running: false,
    },
    Case {
        name: "noparent",
        input_dir: "in",
        mode: Mode::Create,
        uuid: Some(U1),
        creation_time: Some(1272917631),
        running: true,
    },
    Case {
        name: "external_vm",
        input_dir: "in",
        mode: Mode::Create,
        uuid: None,
        creation_time: Some(1555419243),
        running: false,
    },
    Case {
        name: "disk_snapshot",
        input_dir: "in",
        mode: Mode::Create,
        uuid: None,
        creation_time: Some(1555419243),
        running: false,
    },
    Case {
        name: "all_parameters",
        input_dir: "out",
        mode: Mode::RedefineInternal,
        uuid: Some(U1),
        creation_time: None,
        running: false,
    },
    Case {
        name: "full_domain",
        input_dir: "out",
        mode: Mode::RedefineInternal,
        uuid: Some(U2),
        creation_time: None,
        running: false,
    },
    Case {
        name: "metadata",
        input_dir: "out",
        mode: Mode::Redefine,
        uuid: Some(U2),
        creation_time: None,
        running: false,
    },
];

fn run(case: &Case) -> String {
    let input = std::fs::read_to_string(data_dir().join(case.input_dir).join(format!("{}.xml", case.name)))
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let pflags = match case.mode {
        Mode::Create => ParseFlags::default(),
        Mode::Redefine => ParseFlags { redefine: true, ..Default::default() },
        Mode::RedefineInternal => ParseFlags { redefine: true, internal: true, ..Default::default() },
    };
    let mut def = xml::parse(&input, pflags).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    if case.running {
        assert_eq!(def.state, 0, "{}: a running case must parse with no state", case.name);
        def.state = domain_state::RUNNING;
    }
    if let Some(t) = case.creation_time {
        assert_eq!(def.creation_time, 0, "{}: creation time already set", case.name);
        def.fill_defaults(t);
    }
    let internal = matches!(case.mode, Mode::RedefineInternal);
    let fflags = FormatFlags { secure: true, internal, current: internal && def.active == Some(true) };
    xml::format(&def, case.uuid, fflags)
}

#[test]
fn libvirt_cases_are_byte_identical() {
    assert_eq!(CASES.len(), 7);
    for case in CASES {
        let expected = std::fs::read_to_string(data_dir().join("out").join(format!("{}.xml", case.name)))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let got = run(case);
        assert_eq!(got, expected, "case {}", case.name);
    }
}

#[test]
fn round_trip_of_output_is_stable() {
    for case in CASES {
        let once = run(case);
        let again =
            xml::parse(&once, ParseFlags { redefine: true, internal: once.contains("<active>"), ..Default::default() });
        if let Ok(def) = again {
            let fflags =
                FormatFlags { secure: true, internal: def.active.is_some(), current: def.active == Some(true) };
            assert_eq!(xml::format(&def, case.uuid, fflags), once, "{}", case.name);
        }
    }
}

const S2: &str = "<domainsnapshot>
  <name>s2</name>
  <state>running</state>
  <parent>
    <name>s1</name>
  </parent>
  <creationTime>1795681679</creationTime>
  <memory snapshot='internal'/>
  <disks>
    <disk name='vda' snapshot='internal'/>
  </disks>
</domainsnapshot>
";

fn check(xml_text: &str, flags: ParseFlags, code: u32, message: &str) {
    let err = xml::parse(xml_text, flags).expect_err(xml_text);
    assert_eq!((err.code, err.message.as_str()), (code, message), "{xml_text}");
}

#[test]
fn parse_error_texts() {
    let redefine = ParseFlags { redefine: true, ..Default::default() };
    let plain = ParseFlags::default();
    check(&S2.replace("  <name>s2</name>\n", ""), redefine, codes::XML_ERROR, "a redefined snapshot must have a name");
    check(
        &S2.replace("  <state>running</state>\n", ""),
        redefine,
        codes::XML_ERROR,
        "missing state from existing snapshot",
    );
    check(
        &S2.replace("  <creationTime>1795681679</creationTime>\n", ""),
        redefine,
        codes::INTERNAL_ERROR,
        "missing creationTime from existing snapshot",
    );
    check(
        &S2.replace("running", "bogus"),
        redefine,
        codes::CONFIG_UNSUPPORTED,
        "Invalid state 'bogus' in domain snapshot XML",
    );
    check(
        &S2.replace("running", "nostate"),
        redefine,
        codes::CONFIG_UNSUPPORTED,
        "Invalid state 'nostate' in domain snapshot XML",
    );
    check(
        &S2.replace("running", "pmsuspended"),
        redefine,
        codes::CONFIG_UNSUPPORTED,
        "Invalid state 'pmsuspended' in domain snapshot XML",
    );
    check(
        &S2.replace("running", "shutoff"),
        redefine,
        codes::XML_ERROR,
        "memory state cannot be saved with offline or disk-only snapshot",
    );
    check(
        &S2.replace("running", "disk-snapshot"),
        redefine,
        codes::XML_ERROR,
        "memory state cannot be saved with offline or disk-only snapshot",
    );
    check(
        S2,
        ParseFlags { offline: true, ..Default::default() },
        codes::XML_ERROR,
        "memory state cannot be saved with offline or disk-only snapshot",
    );
    check("<snapshot/>", plain, codes::XML_ERROR, "expecting root element of 'domainsnapshot', not 'snapshot'");
    check(
        "<domainsnapshot>",
        plain,
        codes::XML_DETAIL,
        "(domain_snapshot):1: Premature end of data in tag domainsnapshot line 1",
    );
    check("", plain, codes::XML_DETAIL, "(domain_snapshot):1: Document is empty");
    check(
        "<domainsnapshot><memory snapshot='internal' file='/m'/></domainsnapshot>",
        plain,
        codes::XML_ERROR,
        "memory filename '/m' requires external snapshot",
    );
    check(
        "<domainsnapshot><memory snapshot='external'/></domainsnapshot>",
        plain,
        codes::XML_ERROR,
        "external memory snapshots require a filename",
    );
    check(
        "<domainsnapshot><memory file='rel'/></domainsnapshot>",
        plain,
        codes::XML_ERROR,
        "memory snapshot file path (rel) must be absolute",
    );
    check(
        "<domainsnapshot><memory snapshot='manual'/></domainsnapshot>",
        plain,
        codes::XML_ERROR,
        "'manual' memory snapshot mode not supported",
    );
    check(
        "<domainsnapshot><disks><disk/></disks></domainsnapshot>",
        plain,
        codes::INTERNAL_ERROR,
        "missing name from disk snapshot element",
    );
    check(
        "<domainsnapshot><disks><disk name='vda'><source file='x'/></disk></disks></domainsnapshot>",
        plain,
        codes::XML_ERROR,
        "disk snapshot image path 'x' must be absolute",
    );
    check(
        &S2.replace("</domainsnapshot>", ""),
        ParseFlags { redefine: true, internal: true, ..Default::default() },
        codes::XML_DETAIL,
        "(domain_snapshot):13: Premature end of data in tag domainsnapshot line 1",
    );
    check(
        S2,
        ParseFlags { redefine: true, internal: true, ..Default::default() },
        codes::INTERNAL_ERROR,
        "Could not find 'active' element",
    );
    // Enumerated attributes: virXMLPropEnum's words.
    check(
        "<domainsnapshot><memory snapshot='bogus'/></domainsnapshot>",
        plain,
        codes::XML_ERROR,
        "Invalid value for attribute 'snapshot' in element 'memory': 'bogus'.",
    );
    check(
        "<domainsnapshot><disks><disk name='vda' snapshot='bogus'/></disks></domainsnapshot>",
        plain,
        codes::XML_ERROR,
        "Invalid value for attribute 'snapshot' in element 'disk': 'bogus'.",
    );
    let bad = xml::parse("<domainsnapshot><name>a</name></bogus>", plain).unwrap_err();
    assert_eq!(bad.code, codes::XML_DETAIL);
    assert!(!bad.message.contains('\n'), "{}", bad.message);
}

#[test]
fn plain_create_ignores_redefine_fields() {
    let def = xml::parse(S2, ParseFlags::default()).unwrap();
    assert_eq!((def.state, def.parent.as_deref(), def.creation_time), (0, None, 0));
    let with_active = S2.replace("</disks>", "</disks>\n  <active>1</active>");
    assert_eq!(xml::parse(&with_active, ParseFlags { redefine: true, ..Default::default() }).unwrap().active, None);
}

#[test]
fn escaping_follows_libvirt() {
    let def = xml::parse("<domainsnapshot><name>s&lt;1&gt;&amp;</name><description>a&lt;b&gt;c&amp;d'e\"f</description></domainsnapshot>", ParseFlags::default()).unwrap();
    let out = xml::format(&def, None, FormatFlags::default());
    assert!(out.contains("<name>s&lt;1&gt;&amp;</name>"), "{out}");
    assert!(out.contains("<description>a&lt;b&gt;c&amp;d&apos;e&quot;f</description>"), "{out}");
}

#[test]
fn secure_parts_only_with_secure() {
    let x = "<domainsnapshot>\n  <name>a</name>\n  <state>running</state>\n  <creationTime>1</creationTime>\n  <domain type='t'>\n    <name>d</name>\n    <devices>\n      <graphics type='vnc' passwd='s3cret' port='-1'/>\n    </devices>\n  </domain>\n</domainsnapshot>\n";
    let def = xml::parse(x, ParseFlags { redefine: true, ..Default::default() }).unwrap();
    assert_eq!(xml::format(&def, None, FormatFlags { secure: true, ..Default::default() }), x);
    let public = xml::format(&def, None, FormatFlags::default());
    assert!(!public.contains("s3cret") && public.contains("<graphics type='vnc' port='-1'/>"), "{public}");
}

#[test]
fn malformed_embedded_domain_is_refused_though_kept_verbatim() {
    // The embedded <domain> is kept as text, not built as a tree, but it is still read through:
    // a broken end tag, an unquoted attribute or a bad entity inside it is the document's error.
    let redefine = ParseFlags { redefine: true, ..Default::default() };
    let with_domain = |inner: &str| {
        S2.replace("</domainsnapshot>", &format!("  <domain type='kvm'>\n    {inner}\n  </domain>\n</domainsnapshot>"))
    };
    let ok = xml::parse(&with_domain("<name>x</name><devices><disk type='file'/></devices>"), redefine).unwrap();
    assert!(ok.domain.as_deref().is_some_and(|d| d.contains("<disk type='file'/>")));
    for broken in ["<name>x</nam>", "<devices><disk type=file/></devices>", "<name>a &bogus; b</name>", "<name>x"] {
        let e = xml::parse(&with_domain(broken), redefine).unwrap_err();
        assert_eq!(e.code, codes::XML_DETAIL, "{broken}: {e}");
        assert!(e.message.starts_with("(domain_snapshot):"), "{broken}: {e}");
    }
}

/// Malformed documents: each gives libxml2's message on the line libxml2 names, as libvirt 9.0
/// reported them through `virsh snapshot-create` (first line of the error; libvirt appends the
/// offending line and a caret, which virtplug's one-line errors leave out). The documents in
/// the second half used to be accepted.
#[test]
fn malformed_documents_read_as_libxml2_reports_them() {
    let plain = ParseFlags::default();
    let cases: &[(&str, &str)] = &[
        ("<domainsnapshot>\n", "2: Premature end of data in tag domainsnapshot line 1"),
        ("<domainsnapshot>\n\n\n", "4: Premature end of data in tag domainsnapshot line 1"),
        ("<domainsnapshot>\n  <name>x</name>\n  <description>", "3: Premature end of data in tag description line 3"),
        (
            "<domainsnapshot>\n  <name>x</name>\n</bogus>\n",
            "3: Opening and ending tag mismatch: domainsnapshot line 1 and bogus",
        ),
        (
            "<domainsnapshot>\n  <name><b></name>\n</domainsnapshot>\n",
            "2: Opening and ending tag mismatch: b line 2 and name",
        ),
        ("<domainsnapshot>\n  <name>x</ name>\n</domainsnapshot>\n", "2: expected '>'"),
        ("<domainsnapshot>\n  <name>x</name>\n</domainsnapshot", "3: expected '>'"),
        ("<domainsnapshot\n", "2: Couldn't find end of Start Tag domainsnapshot line 1"),
        ("<domainsnapshot>\n  <name a=\"1\"\n", "3: Couldn't find end of Start Tag name line 2"),
        ("<domainsnapshot>\n  <name>a & b</name>\n</domainsnapshot>\n", "2: xmlParseEntityRef: no name"),
        ("<domainsnapshot>\n  <name>a &amp b</name>\n</domainsnapshot>\n", "2: EntityRef: expecting ';'"),
        ("<domainsnapshot>\n  <name>&bogus;</name>\n</domainsnapshot>\n", "2: Entity 'bogus' not defined"),
        ("<domainsnapshot>\n  <name>&#xZZ;</name>\n</domainsnapshot>\n", "2: CharRef: invalid hexadecimal value"),
        ("<domainsnapshot>\n  <name>&#0;</name>\n</domainsnapshot>\n", "2: xmlParseCharRef: invalid xmlChar value 0"),
        (
            "<domainsnapshot>\n  <name>&#1114112;</name>\n</domainsnapshot>\n",
            "2: xmlParseCharRef: character reference out of bounds",
        ),
        ("<domainsnapshot>\n  <name x=1>a</name>\n</domainsnapshot>\n", "2: AttValue: \" or ' expected"),
        (
            "<domainsnapshot>\n  <name b>x</name>\n</domainsnapshot>\n",
            "2: Specification mandates value for attribute b",
        ),
        (
            "<domainsnapshot>\n  <name a=\"x>x</name>\n</domainsnapshot>\n",
            "2: Unescaped '<' not allowed in attributes values",
        ),
        ("<domainsnapshot>\n</domainsnapshot>\ntrailing\n", "3: Extra content at the end of the document"),
        ("<domainsnapshot>\n</domainsnapshot>\n<more/>\n", "3: Extra content at the end of the document"),
        ("<domainsnapshot>\n</domainsnapshot>\n</extra>\n", "3: Extra content at the end of the document"),
        ("</x>\n", "1: StartTag: invalid element name"),
        ("\n\n", "3: Start tag expected, '<' not found"),
        ("<!-- c -->\n", "2: Start tag expected, '<' not found"),
        ("\n  abc\n<domainsnapshot/>", "2: Start tag expected, '<' not found"),
        ("<?xml version=\"1.0\"?>\n", "2: Start tag expected, '<' not found"),
        ("<domainsnapshot>\n<![CDATA[ x \n</domainsnapshot>\n", "4: CData section not finished"),
        ("<domainsnapshot>\n  <name>x</name>\n<!-- unterminated \n</domainsnapshot>\n", "5: Comment not terminated"),
        ("<domainsnapshot>\n  <name>x</name>\n  <!\n</domainsnapshot>\n", "3: StartTag: invalid element name"),
        // accepted before
        ("<domainsnapshot>\n  <1name>x</1name>\n</domainsnapshot>\n", "2: StartTag: invalid element name"),
        ("<domainsnapshot>\n  <name>a < b</name>\n</domainsnapshot>\n", "2: StartTag: invalid element name"),
        ("<domainsnapshot>\n  <na$me>x</na$me>\n</domainsnapshot>\n", "2: error parsing attribute name"),
        (
            "<domainsnapshot>\n  <name a=\"<\">x</name>\n</domainsnapshot>\n",
            "2: Unescaped '<' not allowed in attributes values",
        ),
        (
            "<domainsnapshot>\n  <name a=\"\u{2}\">x</name>\n</domainsnapshot>\n",
            "2: invalid character in attribute value",
        ),
        ("<domainsnapshot a=\"1\"b=\"2\">\n  <name>x</name>\n</domainsnapshot>\n", "1: attributes construct error"),
        ("<domainsnapshot>\n  <name>x]]>y</name>\n</domainsnapshot>\n", "2: Sequence ']]>' not allowed in content"),
        ("<domainsnapshot>\n  <name>a\u{1}b</name>\n</domainsnapshot>\n", "2: PCDATA invalid Char value 1"),
        (
            "<domainsnapshot>\n  <name>&#x1F;</name>\n</domainsnapshot>\n",
            "2: xmlParseCharRef: invalid xmlChar value 31",
        ),
        (
            "<domainsnapshot>\n  <name>x</name>\n  <!-- a -- b -->\n</domainsnapshot>\n",
            "3: Double hyphen within comment: <!-- a ",
        ),
    ];
    for (doc, want) in cases {
        let err = xml::parse(doc, plain).expect_err(doc);
        assert_eq!(
            (err.code, err.message.as_str()),
            (codes::XML_DETAIL, format!("(domain_snapshot):{want}").as_str()),
            "{doc:?}"
        );
    }
    // Within an embedded domain (kept verbatim, so only checked): the same words.
    let redefine = ParseFlags { redefine: true, ..Default::default() };
    let with_domain = |inner: &str| {
        format!(
            "<domainsnapshot>\n  <name>s</name>\n  <state>running</state>\n  <creationTime>1</creationTime>\n  <domain type='test'>\n{inner}\n  </domain>\n</domainsnapshot>\n"
        )
    };
    for (inner, want) in [
        ("    <name>t</nam>", "6: Opening and ending tag mismatch: name line 6 and nam"),
        ("    <name>t&x;</name>", "6: Entity 'x' not defined"),
        ("    <1a/>", "6: StartTag: invalid element name"),
        ("    <!-- a--b -->", "6: Double hyphen within comment: <!-- a"),
    ] {
        let doc = with_domain(inner);
        let err = xml::parse(&doc, redefine).expect_err(&doc);
        assert_eq!(err.message, format!("(domain_snapshot):{want}"), "{doc:?}");
    }
}
