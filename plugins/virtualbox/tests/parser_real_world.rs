//! The plugin's parsers on hand-written real-world VBoxManage output, kept apart from the
//! simulator so that the two cannot share a misunderstanding (reference §9 item 4): Packer-style
//! trees with `Current*` lines in the middle and duplicate names, indices ≥ 10, depth 20,
//! quotes and non-ASCII, multi-line descriptions, truncated output, 7.0's `Encryption:` line.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use virtplug_plugin_virtualbox::{parse, runner, settings};

/// (name, parent name, uuid suffix) per node in pre-order, and the current node's name.
fn shape(text: &str) -> (Vec<(String, Option<String>)>, Option<String>) {
    let t = parse::snapshot_section(text).unwrap();
    let nodes = t.snaps.iter().map(|s| (s.name.clone(), s.parent.map(|p| t.snaps[p].name.clone()))).collect();
    (nodes, t.current.map(|c| t.snaps[c].name.clone()))
}

fn u(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// Shaped like Packer's test data: the current node sits in the middle of the tree and two
/// snapshots share the name "Snapshot 2".
#[test]
fn packer_style_tree_with_current_in_the_middle_and_duplicate_names() {
    let text = format!(
        "SnapshotName=\"Imported\"\nSnapshotUUID=\"{}\"\nSnapshotName-1=\"Snapshot 1\"\nSnapshotUUID-1=\"{}\"\nSnapshotName-1-1=\"Snapshot 2\"\nSnapshotUUID-1-1=\"{}\"\nSnapshotName-1-2=\"Snapshot 2\"\nSnapshotUUID-1-2=\"{}\"\nCurrentSnapshotName=\"Snapshot 2\"\nCurrentSnapshotUUID=\"{}\"\nCurrentSnapshotNode=\"SnapshotName-1-2\"\nSnapshotName-1-2-1=\"Snapshot 3\"\nSnapshotUUID-1-2-1=\"{}\"\nSnapshotName-2=\"Snapshot 4\"\nSnapshotUUID-2=\"{}\"\n",
        u(1),
        u(2),
        u(3),
        u(4),
        u(4),
        u(5),
        u(6)
    );
    let t = parse::snapshot_section(&text).unwrap();
    assert_eq!(t.current, Some(3));
    assert_eq!(t.snaps[3].uuid, u(4));
    let (nodes, cur) = shape(&text);
    assert_eq!(cur.as_deref(), Some("Snapshot 2"));
    let p = |s: &str| Some(s.to_owned());
    assert_eq!(
        nodes,
        vec![
            ("Imported".into(), None),
            ("Snapshot 1".into(), p("Imported")),
            ("Snapshot 2".into(), p("Snapshot 1")),
            ("Snapshot 2".into(), p("Snapshot 1")),
            ("Snapshot 3".into(), p("Snapshot 2")),
            ("Snapshot 4".into(), p("Imported")),
        ]
    );
}

/// Packer's pattern `-[1-9]+` drops `-10`; ours must not.
#[test]
fn child_index_ten_and_above() {
    let mut text = format!("SnapshotName=\"root\"\nSnapshotUUID=\"{}\"\n", u(0));
    for i in 1..=12 {
        text.push_str(&format!("SnapshotName-{i}=\"c{i}\"\nSnapshotUUID-{i}=\"{}\"\n", u(i)));
    }
    text.push_str(&format!("SnapshotName-12-1=\"deep\"\nSnapshotUUID-12-1=\"{}\"\nCurrentSnapshotName=\"deep\"\nCurrentSnapshotUUID=\"{}\"\nCurrentSnapshotNode=\"SnapshotName-12-1\"\n", u(99), u(99)));
    let (nodes, cur) = shape(&text);
    assert_eq!(nodes.len(), 14);
    assert_eq!(nodes[10], ("c10".to_owned(), Some("root".to_owned())));
    assert_eq!(nodes[13], ("deep".to_owned(), Some("c12".to_owned())));
    assert_eq!(cur.as_deref(), Some("deep"));
}

#[test]
fn depth_twenty_chain() {
    let mut text = String::new();
    let mut suffix = String::new();
    for i in 0..20 {
        text.push_str(&format!("SnapshotName{suffix}=\"level {i}\"\nSnapshotUUID{suffix}=\"{}\"\n", u(i)));
        suffix.push_str("-1");
    }
    let (nodes, cur) = shape(&text);
    assert_eq!(nodes.len(), 20);
    assert_eq!(nodes[19], ("level 19".to_owned(), Some("level 18".to_owned())));
    assert_eq!(cur, None, "no Current* lines: no current snapshot");
}

/// Values are raw: quotes, `=`, non-ASCII and newlines, even a line that looks like a key.
#[test]
fn raw_names_and_multi_line_descriptions() {
    let text = format!(
        "SnapshotName=\"say \"hi\" = ok\"\nSnapshotUUID=\"{}\"\nSnapshotDescription=\"first line\nSnapshotName-1=\"fake\"\nlast \"line\"\"\nSnapshotName-1=\"Ünïcødé 快照\"\nSnapshotUUID-1=\"{}\"\nSnapshotDescription-1=\"one\"\nCurrentSnapshotName=\"Ünïcødé 快照\"\nCurrentSnapshotUUID=\"{}\"\nCurrentSnapshotNode=\"SnapshotName-1\"\n",
        u(1),
        u(2),
        u(2)
    );
    let t = parse::snapshot_section(&text).unwrap();
    assert_eq!(t.snaps.len(), 2);
    assert_eq!(t.snaps[0].name, "say \"hi\" = ok");
    assert_eq!(t.snaps[0].description.as_deref(), Some("first line\nSnapshotName-1=\"fake\"\nlast \"line\""));
    assert_eq!(t.snaps[1].name, "Ünïcødé 快照");
    assert_eq!(t.current, Some(1));
}

/// Truncated or inconsistent output is an error, never a guess.
#[test]
fn truncated_and_inconsistent_sections_are_errors() {
    let good =
        format!("SnapshotName=\"a\"\nSnapshotUUID=\"{}\"\nSnapshotName-1=\"b\"\nSnapshotUUID-1=\"{}\"\n", u(1), u(2));
    for cut in [good.find("SnapshotUUID-1").unwrap(), good.len() - 10, 14] {
        assert!(parse::snapshot_section(&good[..cut]).is_err(), "cut at {cut}: {:?}", &good[..cut]);
    }
    let cases = [
        format!("SnapshotName-1=\"orphan\"\nSnapshotUUID-1=\"{}\"\n", u(1)),
        "SnapshotName=\"a\"\nSnapshotUUID=\"not-a-uuid\"\n".to_string(),
        format!(
            "SnapshotName=\"a\"\nSnapshotUUID=\"{}\"\nCurrentSnapshotName=\"a\"\nCurrentSnapshotUUID=\"{}\"\nCurrentSnapshotNode=\"SnapshotName\"\n",
            u(1),
            u(2)
        ),
        format!("SnapshotName=\"a\"\nSnapshotUUID=\"{}\"\nSnapshotName-1=\"b\"\nSnapshotUUID-1=\"{}\"\n", u(1), u(1)),
    ];
    for c in &cases {
        assert!(parse::snapshot_section(c).is_err(), "{c}");
    }
    // Skipped indices are not the next pre-order node: they end up in the previous raw value
    // and the entry is then missing its UUID line — still an error.
    let gap =
        format!("SnapshotName=\"a\"\nSnapshotUUID=\"{}\"\nSnapshotName-2=\"b\"\nSnapshotUUID-2=\"{}\"\n", u(1), u(2));
    assert!(parse::snapshot_section(&gap).is_err());
}

#[test]
fn no_snapshots_message_is_an_empty_tree() {
    assert_eq!(
        parse::snapshot_list(1, "This machine does not have any snapshots\n"),
        Some(Ok(parse::CliTree::default()))
    );
    assert_eq!(parse::snapshot_list(1, "something else\n"), None);
    assert_eq!(parse::snapshot_list(0, "").map(|r| r.map(|t| t.snaps.len())), Some(Ok(0)));
}

#[test]
fn showvminfo_with_encryption_line_escapes_and_snapshots() {
    let text = format!(
        "name=\"my \\\"vm\\\"\"\nEncryption:     disabled\ngroups=\"/\"\nostype=\"Ubuntu (64-bit)\"\nUUID=\"{}\"\nCfgFile=\"/home/u/VirtualBox VMs/my vm/my vm.vbox\"\nmemory=2048\nVMState=\"running\"\nVMStateChangeTime=\"2024-03-25T13:40:44.123456789Z\"\ndescription=\"two\nlines \\\\ with backslash\"\n\"key=with=eq\"=\"v\"\nSnapshotName=\"s\"\nSnapshotUUID=\"{}\"\nCurrentSnapshotName=\"s\"\nCurrentSnapshotUUID=\"{}\"\nCurrentSnapshotNode=\"SnapshotName\"\n",
        u(7),
        u(8),
        u(8)
    );
    let info = parse::showvminfo(&text).unwrap();
    assert_eq!(info.get("name"), Some("my \"vm\""));
    assert_eq!(info.get("CfgFile"), Some("/home/u/VirtualBox VMs/my vm/my vm.vbox"));
    assert_eq!(info.get("memory"), Some("2048"));
    assert_eq!(info.get("description"), Some("two\nlines \\ with backslash"));
    assert_eq!(info.tree.current, Some(0));
    for bad in [
        "",
        "\u{1}garbage\n",
        "name=\"x\"\nUUID=\"nope\"\nCfgFile=\"/x\"\nVMState=\"poweroff\"\n",
        "name=\"unterminated\n",
    ] {
        assert!(parse::showvminfo(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn list_vms_names_are_not_escaped() {
    let text =
        format!("\"plain\" {{{}}}\n\"with \"quotes\" {{x}}\" {{{}}}\n\"<inaccessible>\" {{{}}}\n", u(1), u(2), u(3));
    let vms = parse::list_vms(&text).unwrap();
    assert_eq!(vms[1], ("with \"quotes\" {x}".to_owned(), u(2)));
    assert_eq!(vms[2].0, "<inaccessible>");
    assert!(parse::list_vms("garbage line\n").is_err());
    assert_eq!(parse::taken_uuid(&format!("Snapshot taken. UUID: {}\n", u(5))), Some(u(5)));
}

#[test]
fn error_lines_take_the_first_message_and_the_code() {
    let stderr = "VBoxManage: error: Snapshot 'A' of the machine 'vm' cannot be deleted, because it has 2 child snapshots, which is more than the one snapshot allowed for deletion\nVBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component SessionMachine, interface IMachine, callee nsISupports\nVBoxManage: error: Context: \"DeleteSnapshot(bstrSnapGuid.raw(), pProgress.asOutParam())\" at line 554 of file VBoxManageSnapshot.cpp\n";
    let e = runner::error_lines(stderr);
    assert_eq!(e.code.as_deref(), Some("VBOX_E_INVALID_OBJECT_STATE"));
    assert!(e.text.unwrap().starts_with("Snapshot 'A' of the machine 'vm' cannot be deleted"));
    let win = runner::error_lines("VBoxManage.exe: error: Could not find a registered machine named 'x'\n");
    assert_eq!(win.text.as_deref(), Some("Could not find a registered machine named 'x'"));
    assert_eq!(runner::error_lines("0%...10%...100%\n"), runner::VboxError { text: None, code: None });
}

/// An older (innotek namespace) file reads like a 7.0 one; descriptions keep their newlines.
#[test]
fn settings_file_reader() {
    let text = r#"<?xml version="1.0"?>
<VirtualBox xmlns="http://www.innotek.de/VirtualBox-settings" version="1.12-linux">
  <Machine uuid="{00000000-0000-4000-8000-000000000001}" name="old" currentSnapshot="{00000000-0000-4000-8000-000000000003}" snapshotFolder="Snapshots" lastStateChange="2014-01-02T03:04:05Z">
    <Description>machine description, not a snapshot's</Description>
    <Snapshot uuid="{00000000-0000-4000-8000-000000000002}" name="a &amp; &quot;b&quot;" timeStamp="2014-01-02T03:04:05Z">
      <Description>line 1
line 2 &lt;x&gt;</Description>
      <Hardware/>
      <Snapshots>
        <Snapshot uuid="{00000000-0000-4000-8000-000000000003}" name="c" timeStamp="2014-01-02T03:04:06Z" stateFile="Snapshots/x.sav">
          <Hardware><Description>not this</Description></Hardware>
        </Snapshot>
      </Snapshots>
    </Snapshot>
    <Hardware/>
  </Machine>
</VirtualBox>
"#;
    let s = settings::parse("old.vbox", text).unwrap();
    assert_eq!(s.current.as_deref(), Some(u(3).as_str()));
    let a = &s.snaps[&u(2)];
    assert_eq!(
        (a.name.as_str(), a.description.as_str(), a.time, a.online),
        ("a & \"b\"", "line 1\nline 2 <x>", 1_388_631_845, false)
    );
    let c = &s.snaps[&u(3)];
    assert_eq!((c.parent.as_deref(), c.online, c.description.as_str()), (Some(u(2).as_str()), true, ""));
    assert!(settings::parse("x", "<VirtualBox><Machine uuid=\"{bad}\"/></VirtualBox>").is_err());
    assert!(settings::parse("x", "<VirtualBox><Other/></VirtualBox>").is_err());
    assert!(settings::parse("x", &text[..200]).is_err());
}
