//! `snapshot-edit` holds the domain while the editor runs: a second CLI process that tries to
//! change the domain meanwhile is refused at once with the busy-domain error naming the edit,
//! the edit itself goes through, and afterwards the domain is free again.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::{path::Path, process::Command};

use virtplug_test_support::{MOCK, require};

const BIN: &str = env!("CARGO_BIN_EXE_virtplug");

fn virtplug(uri: &str, args: &[&str], editor: Option<&Path>) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["-c", uri]).args(args).env_remove("VISUAL");
    if let Some(e) = editor {
        cmd.env("EDITOR", e);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn another_writer_is_refused_while_the_editor_runs() {
    require!(MOCK.require("the snapshot-edit job test"));
    let tmp = tempfile::tempdir().unwrap();
    let uri = format!("mock://{}", tmp.path().join("host").display());
    assert_eq!(virtplug(&uri, &["snapshot-create-as", "test", "s1", "first"], None).0, 0);
    // The "editor": a second virtplug process tries to write, then the description changes.
    let report = tmp.path().join("intruder.txt");
    let editor = tmp.path().join("editor.sh");
    std::fs::write(
        &editor,
        format!(
            "#!/bin/sh\n'{BIN}' -c '{uri}' snapshot-create-as test intruder > '{r}' 2>&1; echo \"exit $?\" >> '{r}'\n\
             sed -i 's/first/edited/' \"$1\"\n",
            r = report.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let (code, out, err) = virtplug(&uri, &["snapshot-edit", "test", "s1"], Some(&editor));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "Snapshot s1 edited.\n\n", ""));
    let intruder = std::fs::read_to_string(&report).unwrap();
    assert!(
        intruder.starts_with("error: Timed out during operation: cannot acquire state change lock (held by job '"),
        "{intruder}"
    );
    assert!(intruder.contains(": snapshot-edit of s1 (virtplug CLI), process "), "{intruder}");
    assert!(intruder.ends_with("exit 1\n"), "{intruder}");

    let (_, xml, _) = virtplug(&uri, &["snapshot-dumpxml", "test", "s1"], None);
    assert!(xml.contains("<description>edited</description>"), "{xml}");
    assert_eq!(virtplug(&uri, &["snapshot-create-as", "test", "after"], None).0, 0);
    let (_, list, _) = virtplug(&uri, &["snapshot-list", "test", "--name"], None);
    assert_eq!(list, "after\ns1\n\n");
}
