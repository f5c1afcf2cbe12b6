//! Non-secure output hides what libvirt's `VIR_DOMAIN_XML_SECURE` hides, whatever the spacing,
//! quoting or escaping of the document (issue 12: a tab before `passwd` or spaces around `=`
//! leaked it), and keeps everything else byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use virtplug_model::xml::{self, FormatFlags, ParseFlags, strip_secrets};

fn check(input: &str, expected: &str) {
    assert_eq!(strip_secrets(input), expected, "{input:?}");
}

#[test]
fn passwd_attributes_however_written() {
    let cases: &[(&str, &str)] = &[
        (
            "<domain><graphics type='vnc' passwd='s3cret' port='-1'/></domain>",
            "<domain><graphics type='vnc' port='-1'/></domain>",
        ),
        ("<domain><graphics type='vnc'\tpasswd='s3cret'/></domain>", "<domain><graphics type='vnc'/></domain>"),
        (
            "<domain><graphics type='vnc'\n      passwd='s3cret'\n      port='5900'/></domain>",
            "<domain><graphics type='vnc'\n      port='5900'/></domain>",
        ),
        ("<domain><graphics type='vnc' passwd = 's3cret'/></domain>", "<domain><graphics type='vnc'/></domain>"),
        ("<domain><graphics type='vnc' passwd\t=\n's3cret'/></domain>", "<domain><graphics type='vnc'/></domain>"),
        ("<domain><graphics type=\"vnc\" passwd=\"s3'cret\"/></domain>", "<domain><graphics type=\"vnc\"/></domain>"),
        (
            "<domain><graphics passwd='&#x73;&#51;cr&amp;t&apos;' type='spice'></graphics></domain>",
            "<domain><graphics type='spice'></graphics></domain>",
        ),
        ("<domain><graphics passwd=''/></domain>", "<domain><graphics/></domain>"),
        (
            "<domain><graphics type='vnc' passwd='a' passwdValidTo='2030-01-01T00:00:00'/><graphics type='spice' passwd='b'/></domain>",
            "<domain><graphics type='vnc' passwdValidTo='2030-01-01T00:00:00'/><graphics type='spice'/></domain>",
        ),
        // Any element; only the exact name (libvirt writes no other attribute under SECURE).
        (
            "<domain x:passwd='kept' passwdx='kept'><a passwd='gone'>passwd='text stays'</a></domain>",
            "<domain x:passwd='kept' passwdx='kept'><a>passwd='text stays'</a></domain>",
        ),
        // Nothing to hide: untouched, byte for byte.
        (
            "<domain type='kvm'>\n  <!-- c --> <name>a&amp;b</name>\n</domain>",
            "<domain type='kvm'>\n  <!-- c --> <name>a&amp;b</name>\n</domain>",
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn disk_source_cookies() {
    check(
        "<domain>\n  <disk type='network'>\n    <source protocol='https' name='i'>\n      <host name='h'/>\n      <cookies>\n        <cookie name='c'>s3cret</cookie>\n      </cookies>\n    </source>\n  </disk>\n</domain>",
        "<domain>\n  <disk type='network'>\n    <source protocol='https' name='i'>\n      <host name='h'/>\n    </source>\n  </disk>\n</domain>",
    );
    check(
        "<domain><source><cookies/></source><cookies>kept</cookies></domain>",
        "<domain><source></source><cookies>kept</cookies></domain>",
    );
}

#[test]
fn unreadable_text_still_loses_passwords() {
    check("<domain><graphics\tpasswd = \"s3cret\" port='1'>", "<domain><graphics port='1'>");
    check("<graphics passwd='unterminated", "<graphics");
}

#[test]
fn non_secure_snapshot_dump_hides_them() {
    let x = "<domainsnapshot>\n  <name>a</name>\n  <state>running</state>\n  <creationTime>1</creationTime>\n  <domain type='t'>\n    <name>d</name>\n    <devices>\n      <graphics type='vnc'\tpasswd = \"s3cret\" port='-1'/>\n    </devices>\n  </domain>\n  <inactiveDomain type='t'>\n    <graphics type='vnc'\n              passwd='s3cret'/>\n  </inactiveDomain>\n</domainsnapshot>\n";
    let def = xml::parse(x, ParseFlags { redefine: true, ..Default::default() }).unwrap();
    let public = xml::format(&def, None, FormatFlags::default());
    assert!(!public.contains("s3cret"), "{public}");
    assert!(
        public.contains("<graphics type='vnc' port='-1'/>") && public.contains("<graphics type='vnc'/>"),
        "{public}"
    );
    assert_eq!(xml::format(&def, None, FormatFlags { secure: true, ..Default::default() }), x);
}
