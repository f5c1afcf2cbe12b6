//! Unit tests of the hierarchy bundle: round trips in parent order, refusals with their exact texts,
//! libvirt metadata directories, and the per-hierarchy and per-snapshot size limits.
use super::*;
use crate::{domain::TEST_DOMAIN_XML, flags::domain_state as st};

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

fn snap(name: &str, parent: Option<&str>) -> SnapshotDef {
    SnapshotDef {
        name: name.into(),
        parent: parent.map(Into::into),
        state: st::RUNNING,
        creation_time: 1795681679,
        domain: Some(TEST_DOMAIN_XML.into()),
        ..Default::default()
    }
}

fn chain(n: usize) -> Vec<SnapshotDef> {
    (0..n)
        .map(|i| {
            let parent = (i > 0).then(|| format!("snap-{}", i - 1));
            snap(&format!("snap-{i}"), parent.as_deref())
        })
        .collect()
}

/// Re-seals an edited body with a valid checksum, to reach the checks after the checksum.
fn reseal(text: &str) -> String {
    let pos = text.rfind(&format!("\n{CHECKSUM_OPEN}")).unwrap();
    let body = &text[..=pos];
    format!("{body}{CHECKSUM_OPEN}{}</checksum>\n{CLOSE}", hex_digest(body.as_bytes()))
}

fn check(text: &str, code: u32, msg: &str) {
    let e = Bundle::parse(text).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (code, msg));
}

#[test]
fn round_trip_orders_by_parent_links() {
    let mut defs = chain(12);
    defs.sort_by(|a, b| a.name.cmp(&b.name));
    let b = Bundle::new(VM, Some("snap-11"), defs).unwrap();
    let names: Vec<&str> = b.snapshots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names[9..], ["snap-9", "snap-10", "snap-11"]);
    let text = b.to_string();
    assert!(text.starts_with("<virtplugSnapshotBundle version='1'>\n  <domain uuid='6695eb01-f6a4-8304-79aa-97f2502e193f'/>\n  <current name='snap-11'/>\n  <domainsnapshot>\n    <name>snap-0</name>\n"), "{text}");
    assert_eq!(Bundle::parse(&text).unwrap(), b);
    assert_eq!(b.snapshot_xmls()[1].lines().nth(3), Some("  <parent>"));
}

#[test]
fn refusals() {
    let text = Bundle::new(VM, Some("snap-1"), chain(3)).unwrap().to_string();
    // Cutting the final newline only leaves a complete document (see trailing_whitespace).
    for cut in [10, text.len() / 2, text.len() - 30, text.len() - 2] {
        let e = Bundle::parse(&text[..cut]).unwrap_err();
        assert_eq!(e.code, codes::XML_ERROR);
        assert!(e.message.contains("truncated"), "{cut}: {}", e.message);
    }
    let tampered = text.replacen("snap-2", "snap-X", 1);
    assert!(Bundle::parse(&tampered).unwrap_err().message.starts_with("snapshot bundle checksum mismatch: recorded "));
    check(
        &reseal(
            &text.replace("  <current name='snap-1'/>\n", "  <current name='snap-1'/>\n  <current name='snap-2'/>\n"),
        ),
        codes::XML_ERROR,
        "snapshot bundle has more than one current snapshot marker",
    );
    check(
        &reseal(&text.replace("<current name='snap-1'/>", "<current name='nosuch'/>")),
        codes::INVALID_ARG,
        "current snapshot nosuch is not in the bundle",
    );
    check(
        &reseal(&text.replacen("<name>snap-1</name>\n    </parent>", "<name>gone</name>\n    </parent>", 1)),
        codes::INVALID_ARG,
        "parent gone for moment snap-2 not found",
    );
    check(
        &reseal(&text.replacen("<name>snap-2</name>", "<name>snap-1</name>", 1)),
        codes::OPERATION_FAILED,
        "domain moment snap-1 already exists",
    );
    let cyc = Bundle::new(VM, None, vec![snap("a", Some("b")), snap("b", Some("a")), snap("r", None)]).unwrap_err();
    assert_eq!((cyc.code, cyc.message.as_str()), (codes::INVALID_ARG, "parent b would create cycle to a"));
    let mut other = snap("x", None);
    other.domain =
        Some(TEST_DOMAIN_XML.replace("6695eb01-f6a4-8304-79aa-97f2502e193f", "6695eb01-f6a4-8304-79aa-97f2502e1930"));
    assert_eq!(
        Bundle::new(VM, None, vec![other]).unwrap_err().message,
        "definition for snapshot x must use uuid 6695eb01-f6a4-8304-79aa-97f2502e193f"
    );
    check(
        "<virtplugSnapshotBundle version='1'>\n",
        codes::XML_ERROR,
        "snapshot bundle is truncated: no checksum found",
    );
}

const HEADER: &str = "<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE. CHANGES TO IT ARE LIKELY TO BE\nOVERWRITTEN AND LOST. Changes to this xml configuration should be made using:\n  virsh snapshot-edit\nor other application using the libvirt API.\n-->\n\n";

#[test]
fn reads_libvirt_metadata_dir() {
    let dir = tempfile::tempdir().unwrap();
    for (i, def) in chain(12).iter().enumerate() {
        let body = xml::format(def, Some(VM), FormatFlags { secure: true, internal: true, current: i == 11 });
        std::fs::write(dir.path().join(format!("{}.xml", def.name)), format!("{HEADER}{body}")).unwrap();
    }
    std::fs::write(dir.path().join("README"), "not a snapshot").unwrap();
    std::fs::write(dir.path().join("snap-3.xml.new"), "<domainsnapshot>stale").unwrap();
    let b = Bundle::from_libvirt_dir(dir.path()).unwrap();
    assert_eq!(b.snapshots.len(), 12);
    assert_eq!(b.current.as_deref(), Some("snap-11"));
    let names: Vec<&str> = b.snapshots.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, (0..12).map(|i| format!("snap-{i}")).collect::<Vec<_>>());
    assert!(b.snapshots.iter().all(|s| s.active.is_none()));

    let body = xml::format(
        &snap("extra", Some("snap-0")),
        Some(VM),
        FormatFlags { secure: true, internal: true, current: true },
    );
    std::fs::write(dir.path().join("extra.xml"), body.clone()).unwrap();
    assert_eq!(
        Bundle::from_libvirt_dir(dir.path()).unwrap_err().message,
        "more than one snapshot claims to be current ('extra' and 'snap-11')"
    );
    std::fs::remove_file(dir.path().join("extra.xml")).unwrap();
    std::fs::write(dir.path().join("renamed.xml"), body.replace("<active>1</active>", "<active>0</active>")).unwrap();
    assert!(
        Bundle::from_libvirt_dir(dir.path()).unwrap_err().message.ends_with("holds snapshot 'extra', not 'renamed'")
    );
}

#[test]
fn trailing_whitespace_after_the_root_is_accepted() {
    let b = Bundle::new(VM, Some("snap-1"), chain(3)).unwrap();
    let text = b.to_string();
    // `snapshot-export DOM > file` once added a newline; editors add or remove final ones.
    for tail in ["\n", "\n\n", " \t\r\n", ""] {
        let edited = format!("{}{tail}", text.strip_suffix('\n').unwrap());
        assert_eq!(Bundle::parse(&edited).unwrap(), b, "{tail:?}");
    }
    for tail in ["x", "\n<!-- -->", "\n\u{a0}"] {
        let e = Bundle::parse(&format!("{text}{tail}")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                codes::XML_ERROR,
                "snapshot bundle is truncated or has trailing data after the checksum (expected </virtplugSnapshotBundle>)"
            ),
            "{tail:?}"
        );
    }
}

/// A 16,000-snapshot hierarchy is larger than one document may be, and still imports; each
/// snapshot in it obeys the per-document limits.
#[test]
fn bundle_limits_are_per_hierarchy_and_per_snapshot() {
    let defs: Vec<SnapshotDef> = (0..16_000)
        .map(|i| SnapshotDef {
            name: format!("s{i}"),
            parent: (i > 0).then(|| format!("s{}", i - 1)),
            description: Some("d".repeat(700)),
            state: st::SHUTOFF,
            creation_time: 1,
            ..Default::default()
        })
        .collect();
    let b = Bundle::new(VM, Some("s15999"), defs).unwrap();
    let text = b.to_string();
    assert!(text.len() > crate::limits::MAX_XML_BYTES, "{}", text.len());
    assert_eq!(Bundle::parse(&text).unwrap().snapshots.len(), 16_000);

    let one = Bundle::new(VM, None, vec![snap("x", None)]).unwrap().to_string();
    let check = |inserted: &str, msg: &str| {
        let e = Bundle::parse(&reseal(&one.replacen("<name>x</name>", &format!("<name>x</name>{inserted}"), 1)))
            .unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (codes::XML_DETAIL, msg));
    };
    // Each snapshot alone: 100,001 elements are more than one document may hold.
    check(
        &format!("<description>{}</description>", "<a/>".repeat(crate::limits::MAX_XML_ELEMENTS)),
        "(domain_snapshot):2: too many elements in document: more than 100000",
    );
    // Depth is bounded while the bundle is read (its root is one level more).
    check(
        &format!("<description>{}x{}</description>", "<a>".repeat(300), "</a>".repeat(300)),
        "(snapshot_bundle):4: Excessive depth in document: more than 257 nested elements",
    );
}

#[test]
fn libvirt_metadata_files_over_a_mebibyte_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut def = snap("big", None);
    def.description = Some("d".repeat(crate::limits::MAX_LIBVIRT_METADATA_FILE_BYTES));
    let body = xml::format(&def, Some(VM), FormatFlags { secure: true, internal: true, current: true });
    let path = dir.path().join("big.xml");
    std::fs::write(&path, body).unwrap();
    let e = Bundle::from_libvirt_dir(dir.path()).unwrap_err();
    assert_eq!(
        (e.code, e.message),
        (codes::OPERATION_FAILED, format!("cannot read '{}': file is larger than 1048576 bytes", path.display()))
    );
}
