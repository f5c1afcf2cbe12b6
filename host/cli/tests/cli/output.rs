//! Byte-exact checks of the pure formatters against the reference's observed virsh output
//! (libvirt-snapshot-semantics.md §6.2, §11.3, Appendix A). `finish` adds virsh's
//! end-of-command newline, which is where each example's final empty line comes from.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use virtplug_cli::{
    commands::snapshot_list::render_table,
    output::{finish, info, table, time, tree},
    xml,
};
use virtplug_host::{SnapshotInfo, flags::domain_state};

fn snap(name: &str, parent: Option<&str>, t: i64) -> SnapshotInfo {
    SnapshotInfo {
        name: name.to_owned(),
        parent: parent.map(str::to_owned),
        creation_time: t,
        state: domain_state::RUNNING,
        current: false,
        has_metadata: true,
        external: false,
        disk_only: false,
    }
}

/// 2026-11-26 08:22:24 UTC.
const T: i64 = 1_795_681_344;

#[test]
fn table_with_parent_column() {
    let list = [
        snap("s1", None, T),
        snap("s1a", Some("s1"), T),
        snap("s1a1", Some("s1a"), T),
        snap("s2", Some("s1"), T),
        snap("s3", Some("s2"), T),
    ];
    let expected = " Name   Creation Time               State     Parent
------------------------------------------------------
 s1     2026-11-26 08:22:24 +0000   running   
 s1a    2026-11-26 08:22:24 +0000   running   s1
 s1a1   2026-11-26 08:22:24 +0000   running   s1a
 s2     2026-11-26 08:22:24 +0000   running   s1
 s3     2026-11-26 08:22:24 +0000   running   s2

";
    assert_eq!(finish(&render_table(&list, true)), expected);
}

#[test]
fn table_layouts() {
    let check = |headers: &[&str], rows: &[&[&str]], expected: &str| {
        let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
        assert_eq!(finish(&table::render(headers, &rows)), expected, "{headers:?} {rows:?}");
    };
    let snapshot_headers = &["Name", "Creation Time", "State"];
    check(snapshot_headers, &[], " Name   Creation Time   State\n-------------------------------\n\n");
    check(
        snapshot_headers,
        &[&["r2orphan", "2026-11-26 08:40:47 +0000", "shutoff"]],
        concat!(
            " Name       Creation Time               State\n",
            "-------------------------------------------------\n",
            " r2orphan   2026-11-26 08:40:47 +0000   shutoff\n",
            "\n"
        ),
    );
    // virsh list
    check(
        &["Id", "Name", "State"],
        &[&["1", "test", "running"], &["-", "other", "shut off"]],
        " Id   Name    State\n------------------------\n 1    test    running\n -    other   shut off\n\n",
    );
}

#[test]
fn table_from_appendix_a() {
    let t = 1_795_681_679;
    let list = [snap("1795681679", Some("s2"), t), snap("s1", None, t), snap("s2", Some("s1"), t)];
    let expected = " Name         Creation Time               State     Parent
------------------------------------------------------------
 1795681679   2026-11-26 08:27:59 +0000   running   s2
 s1           2026-11-26 08:27:59 +0000   running   
 s2           2026-11-26 08:27:59 +0000   running   s1

";
    assert_eq!(finish(&render_table(&list, true)), expected);
}

fn entries(items: &[(&str, Option<&str>)]) -> Vec<tree::Entry> {
    items.iter().map(|(n, p)| tree::Entry { name: n.to_string(), parent: p.map(str::to_owned) }).collect()
}

#[test]
fn tree_rendering() {
    let check = |items: &[(&str, Option<&str>)], expected: &str| {
        assert_eq!(finish(&tree::render(&entries(items))), expected, "{items:?}");
    };
    check(
        &[("s1", None), ("s1a", Some("s1")), ("s1a1", Some("s1a")), ("s2", Some("s1")), ("s3", Some("s2"))],
        "s1\n  |\n  +- s1a\n  |   |\n  |   +- s1a1\n  |     \n  +- s2\n      |\n      +- s3\n        \n\n",
    );
    // A single childless root: its name, the step-5 empty line, the final empty line.
    check(&[("b", None)], "b\n\n\n");
    // Two roots, the first childless.
    check(&[("a", Some("c")), ("b2", None), ("c", None)], "b2\n\nc\n  |\n  +- a\n    \n\n");
    // Appendix A: a chain, then siblings.
    check(
        &[("1795681679", Some("s2")), ("s1", None), ("s2", Some("s1"))],
        "s1\n  |\n  +- s2\n      |\n      +- 1795681679\n        \n\n",
    );
    check(
        &[("1795681679", Some("s1")), ("s1", None), ("s2", Some("s1"))],
        "s1\n  |\n  +- 1795681679\n  +- s2\n    \n\n",
    );
    // Nothing to show: only virsh's end-of-command line.
    check(&[], "\n");
    // virtplug extension: an entry whose parent was filtered out is shown as a root.
    check(&[("x", Some("gone"))], "x\n\n\n");
}

#[test]
fn tree_deep_chain_does_not_overflow() {
    let names: Vec<String> = (0..20_000).map(|i| format!("n{i}")).collect();
    let items: Vec<tree::Entry> = names
        .iter()
        .enumerate()
        .map(|(i, n)| tree::Entry { name: n.clone(), parent: i.checked_sub(1).map(|p| names[p].clone()) })
        .collect();
    let out = tree::render(&items);
    assert!(out.starts_with("n0\n  |\n  +- n1\n"));
    assert!(out.contains("+- n19999\n"));
}

#[test]
fn time_formatting() {
    let check = |secs: i64, expected: &str| assert_eq!(time::format_utc(secs), expected, "{secs}");
    check(0, "1970-01-01 00:00:00 +0000");
    check(1_795_681_679, "2026-11-26 08:27:59 +0000");
    check(1_795_682_447, "2026-11-26 08:40:47 +0000");
    check(951_782_400, "2000-02-29 00:00:00 +0000");
    check(4_107_542_399, "2100-02-28 23:59:59 +0000");
    check(-1, "1969-12-31 23:59:59 +0000");
    check(1_709_210_096, "2024-02-29 12:34:56 +0000");
}

#[test]
fn snapshot_info_block() {
    let mut s = snap("s1a1", Some("s1a"), T);
    s.current = true;
    let counts = Some(info::Counts { children: 0, descendants: 0 });
    let expected = "\
Name:           s1a1
Domain:         test
Current:        yes
State:          running
Location:       internal
Parent:         s1a
Children:       0
Descendants:    0
Metadata:       yes

";
    assert_eq!(finish(&info::snapshot_info("test", &s, counts)), expected);

    let mut root = snap("s1", None, T);
    root.external = true;
    root.has_metadata = false;
    let out = info::snapshot_info("test", &root, Some(info::Counts { children: 1, descendants: 2 }));
    assert!(out.contains("\nParent:         -\n"), "{out}");
    assert!(out.contains("\nLocation:       external\n"), "{out}");
    assert!(out.contains("\nChildren:       1\nDescendants:    2\nMetadata:       no\n"), "{out}");
    // Without child listing virsh stops after Parent.
    assert!(info::snapshot_info("test", &root, None).ends_with("Parent:         -\n"));
}

#[test]
fn create_as_xml() {
    let doc = xml::create_as(
        Some("x"),
        Some("d"),
        Some("file=/path/to/m.img,snapshot=external"),
        &["vda,snapshot=external,file=/path/to/x.qcow2".to_owned()],
    )
    .unwrap();
    let expected = "\
<domainsnapshot>
  <name>x</name>
  <description>d</description>
  <memory snapshot='external' file='/path/to/m.img'/>
  <disks>
    <disk name='vda' snapshot='external'>
      <source file='/path/to/x.qcow2'/>
    </disk>
  </disks>
</domainsnapshot>
";
    assert_eq!(doc, expected);
    assert_eq!(
        xml::create_as(Some("s1"), None, None, &[]).unwrap(),
        "<domainsnapshot>\n  <name>s1</name>\n</domainsnapshot>\n"
    );
    assert_eq!(
        xml::create_as(Some("s<1>&"), Some("a<b>c&d'e\"f"), None, &[]).unwrap(),
        "<domainsnapshot>\n  <name>s&lt;1&gt;&amp;</name>\n  <description>a&lt;b&gt;c&amp;d&apos;e&quot;f</description>\n</domainsnapshot>\n"
    );
}

#[test]
fn specs() {
    assert_eq!(xml::split_spec("a,,b,c"), ["a,b", "c"]);
    assert_eq!(xml::memspec("/m.img").unwrap(), "  <memory file='/m.img'/>\n");
    assert_eq!(
        xml::diskspec("sdb,stype=block,driver=qcow2,file=/dev/x").unwrap(),
        "    <disk name='sdb' type='block'>\n      <driver type='qcow2'/>\n      <source dev='/dev/x'/>\n    </disk>\n"
    );
    assert_eq!(xml::diskspec("vda,snapshot=no").unwrap(), "    <disk name='vda' snapshot='no'/>\n");
    let lines = |r: Result<String, virtplug_cli::error::CliError>| r.unwrap_err().lines();
    assert_eq!(lines(xml::memspec("bogus")), ["unable to parse memspec: bogus"]);
    assert_eq!(lines(xml::diskspec("vda,what=1")), ["unable to parse diskspec: vda,what=1"]);
    assert_eq!(
        lines(xml::diskspec("vda,stype=net")),
        ["Unknown storage type: 'net'", "unable to parse diskspec: vda,stype=net"]
    );
}

#[test]
fn snapshot_name_of_edited_xml() {
    let check = |doc: &str, expected: Option<&str>| assert_eq!(xml::snapshot_name(doc).as_deref(), expected, "{doc}");
    check("<domainsnapshot>\n  <name>s2</name>\n  <domain><name>test</name></domain>\n</domainsnapshot>\n", Some("s2"));
    check(
        "<domainsnapshot><description>x</description><domain><name>test</name></domain><name>a&amp;b</name></domainsnapshot>",
        Some("a&b"),
    );
    check("<domainsnapshot><domain><name>test</name></domain></domainsnapshot>", None);
    check("<snapshot><name>x</name></snapshot>", None);
    check("<domainsnapshot><name>x", None);
}
