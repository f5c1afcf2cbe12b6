//! End-to-end: the built `virtplug` binary against the mock plugin (`mock:///<tempdir>`,
//! a fresh domain `test` like libvirt's `test:///default`), replaying the observed virsh
//! session of the reference's Appendix A. Stdout, stderr and exit codes are compared byte for
//! byte (virsh's end-of-command empty lines included); creation times, which depend on the
//! clock, are replaced by `<TIME>`.
//!
//! The mock plugin is found beside the binary (target/<profile>). Without it these tests
//! fail under `CI=true` and are skipped with one note otherwise.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::process::Command;

use virtplug_test_support::{MOCK, require};

const BIN: &str = env!("CARGO_BIN_EXE_virtplug");

/// Replaces every `YYYY-MM-DD HH:MM:SS +0000` by `<TIME>`.
pub(crate) fn mask_times(s: &str) -> String {
    let shape = "dddd-dd-dd dd:dd:dd +0000";
    let fits =
        |w: &[u8]| w.iter().zip(shape.bytes()).all(|(&c, p)| if p == b'd' { c.is_ascii_digit() } else { c == p });
    let bytes = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes.len() - i >= shape.len() && fits(&bytes[i..i + shape.len()]) {
            out.push_str("<TIME>");
            i += shape.len();
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

struct Session {
    dir: tempfile::TempDir,
    config: tempfile::TempDir,
    uri: String,
}

struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Session {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = tempfile::tempdir().unwrap();
        let uri = format!("mock://{}", dir.path().display());
        Self { dir, config, uri }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn raw(&self, args: &[&str]) -> Out {
        self.raw_with(&self.uri, args)
    }

    fn raw_with(&self, uri: &str, args: &[&str]) -> Out {
        let out = Command::new(BIN)
            .arg("-c")
            .arg(uri)
            .args(args)
            .env_remove("VIRTPLUG_PLUGIN_DIR")
            .env_remove("VIRTPLUG_CONFIG")
            .env_remove("VIRTPLUG_DEFAULT_URI")
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("HOME", self.config.path())
            .output()
            .unwrap();
        Out {
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    fn run(&self, cmdline: &str) -> Out {
        let args: Vec<&str> = cmdline.split_whitespace().collect();
        self.raw(&args)
    }

    /// Runs and expects success with exactly `stdout` (times masked) and no stderr.
    fn ok(&self, cmdline: &str, stdout: &str) {
        let out = self.run(cmdline);
        assert_eq!((mask_times(&out.stdout).as_str(), out.stderr.as_str(), out.code), (stdout, "", 0), "{cmdline}");
    }

    /// Runs and expects failure showing `shown`: virsh's `error:` lines on stderr, then its
    /// empty line on stdout (so `shown`, as a terminal shows it, ends with an empty line).
    fn err(&self, cmdline: &str, shown: &str) {
        let out = self.run(cmdline);
        let stderr = shown.strip_suffix('\n').unwrap_or(shown);
        assert_eq!((out.stdout.as_str(), out.stderr.as_str(), out.code), ("\n", stderr, 1), "{cmdline}");
    }
}

#[test]
fn appendix_a_session() {
    require!(MOCK.require("virtplug CLI session tests"));
    let s = Session::new();
    s.ok("snapshot-list test", " Name   Creation Time   State\n-------------------------------\n\n");
    s.ok("snapshot-create-as test s1 --description first", "Domain snapshot s1 created\n");
    s.ok("snapshot-create-as test s2", "Domain snapshot s2 created\n");
    let out = s.run("snapshot-create test");
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
    let n = out
        .stdout
        .strip_prefix("Domain snapshot ")
        .and_then(|r| r.strip_suffix(" created\n"))
        .unwrap_or_else(|| panic!("{:?}", out.stdout))
        .to_owned();
    assert!(n.bytes().all(|b| b.is_ascii_digit()), "default name is the creation time: {n}");

    s.ok("snapshot-list test --tree", &format!("s1\n  |\n  +- s2\n      |\n      +- {n}\n        \n\n"));
    s.ok("snapshot-current test --name", &format!("{n}\n"));
    let pad = " ".repeat(n.len().saturating_sub(4));
    let dashes = "-".repeat(n.len() + 3 + 28 + 10 + 9);
    s.ok(
        "snapshot-list test --parent",
        &format!(
            " Name{pad}   Creation Time   State     Parent\n{dashes}\n {n}   <TIME>   running   s2\n s1{p2}   <TIME>   running   \n s2{p2}   <TIME>   running   s1\n\n",
            p2 = " ".repeat(n.len() - 2)
        )
        .replace("Creation Time   State", "Creation Time               State"),
    );

    let xml = s.run("snapshot-dumpxml test s2");
    assert_eq!(xml.code, 0, "{}", xml.stderr);
    assert!(xml.stdout.starts_with("<domainsnapshot>\n  <name>s2</name>\n  <state>running</state>\n  <parent>\n    <name>s1</name>\n  </parent>\n"), "{}", xml.stdout);
    assert!(xml.stdout.ends_with("</domainsnapshot>\n\n"), "{}", xml.stdout);
    let s2_xml = s.path("s2.xml");
    std::fs::write(&s2_xml, &xml.stdout[..xml.stdout.len() - 1]).unwrap();

    s.ok(
        "snapshot-info test s2",
        "Name:           s2\nDomain:         test\nCurrent:        no\nState:          running\nLocation:       internal\nParent:         s1\nChildren:       1\nDescendants:    1\nMetadata:       yes\n\n",
    );
    s.ok("snapshot-parent test s2", "s1\n");
    s.err("snapshot-parent test s1", "error: snapshot 's1' has no parent\n\n");

    s.ok("snapshot-delete test s2", "Domain snapshot s2 deleted\n\n");
    s.ok("snapshot-list test --tree", &format!("s1\n  |\n  +- {n}\n    \n\n"));
    s.ok("snapshot-current test --name", &format!("{n}\n"));

    s.ok(
        &format!("snapshot-create test {s2_xml} --redefine"),
        &format!("Domain snapshot s2 created from '{s2_xml}'\n"),
    );
    s.ok("snapshot-list test --tree", &format!("s1\n  |\n  +- {n}\n  +- s2\n    \n\n"));
    s.ok("snapshot-current test --name", &format!("{n}\n"));
    s.ok(
        &format!("snapshot-create test {s2_xml} --redefine --current"),
        &format!("Domain snapshot s2 created from '{s2_xml}'\n"),
    );
    s.ok("snapshot-current test --name", "s2\n");
    s.ok(
        "snapshot-info test --current",
        "Name:           s2\nDomain:         test\nCurrent:        yes\nState:          running\nLocation:       internal\nParent:         s1\nChildren:       0\nDescendants:    0\nMetadata:       yes\n\n",
    );

    // Generic (host-level) flag errors, with virsh's failure lines where virsh prints them.
    s.err(
        &format!("snapshot-create test {s2_xml} --current"),
        "error: Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'\n\n",
    );
    s.err(
        &format!("snapshot-create test {s2_xml} --redefine --no-metadata"),
        "error: Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' and 'VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA' are mutually exclusive\n\n",
    );
    s.err(
        "snapshot-delete test s1 --children --children-only",
        "error: Failed to delete snapshot s1\nerror: Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' are mutually exclusive\n\n",
    );
    s.err(
        "snapshot-revert test s1 --running --paused",
        "error: Failed to revert snapshot s1\nerror: Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' and 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' are mutually exclusive\n\n",
    );
    s.err("snapshot-create-as test s1", "error: operation failed: domain moment s1 already exists\n\n");
    s.err("snapshot-info test x1", "error: Domain snapshot not found: no domain snapshot with matching name 'x1'\n\n");
    s.err("snapshot-list test --tree --name", "error: Options --tree and --name are mutually exclusive\n\n");
    s.err("snapshot-list test --leaves --tree", "error: --leaves and --tree are mutually exclusive\n\n");
    s.err("snapshot-info test s1 --current", "error: --snapshotname and --current are mutually exclusive\n\n");

    // Listing filters (Appendix A, "listing filters").
    s.ok("snapshot-list test --roots --name", "s1\n\n");
    s.ok("snapshot-list test --leaves --name", &format!("{n}\ns2\n\n"));
    s.ok("snapshot-list test --no-leaves --name", "s1\n\n");
    s.ok("snapshot-list test --from s1 --name", &format!("{n}\ns2\n\n"));
    s.ok("snapshot-list test --from s1 --descendants --name", &format!("{n}\ns2\n\n"));
    s.ok("snapshot-list test --metadata --name", &format!("{n}\ns1\ns2\n\n"));
    s.ok("snapshot-list test --no-metadata --name", "\n");
    s.ok("snapshot-list test --active --name", &format!("{n}\ns1\ns2\n\n"));
    s.ok("snapshot-list test --inactive --name", "\n");
    s.ok("snapshot-list test --internal --name", &format!("{n}\ns1\ns2\n\n"));
    s.ok("snapshot-list test --external --name", "\n");
    s.ok("snapshot-list test --from s1 --descendants --tree", &format!("s1\n  |\n  +- {n}\n  +- s2\n    \n\n"));
    s.ok("snapshot-list test --current --name", "\n");
    let topo = s.run("snapshot-list test --topological --name");
    assert!(topo.stdout.starts_with("s1\n"), "{}", topo.stdout);

    s.ok("snapshot-revert test s1", "Domain snapshot s1 reverted\n\n");
    s.ok("snapshot-current test --name", "s1\n");
    s.ok("snapshot-current test --snapshotname s2", "Snapshot s2 set as current\n");
    s.ok("snapshot-current test --name", "s2\n");

    s.ok("snapshot-delete test s1 --children", "Domain snapshot s1 deleted\n\n");
    s.ok("snapshot-list test --tree", "\n");
    s.err("snapshot-current test --name", "error: domain 'test' has no current snapshot\n\n");
}

#[test]
fn domain_lifecycle_and_undefine() {
    require!(MOCK.require("virtplug CLI session tests"));
    let s = Session::new();
    s.ok("domstate test", "running\n\n");
    s.ok("list", " Id   Name   State\n----------------------\n 1    test   running\n\n");
    s.ok("list --name", "test\n\n");
    s.ok("snapshot-create-as test s1", "Domain snapshot s1 created\n");
    s.err(
        "-r snapshot-create-as test x",
        "error: operation forbidden: read only access prevents virDomainSnapshotCreateXML\n\n",
    );
    s.ok("suspend test", "Domain 'test' suspended\n\n");
    s.ok("domstate test", "paused\n\n");
    s.ok("resume test", "Domain 'test' resumed\n\n");
    s.ok("destroy test", "Domain 'test' destroyed\n\n");
    s.ok("domstate test", "shut off\n\n");
    s.ok("list", " Id   Name   State\n--------------------\n\n");
    s.ok("list --all", " Id   Name   State\n-----------------------\n -    test   shut off\n\n");
    s.err(
        "undefine test",
        "error: Failed to undefine domain 'test'\nerror: Requested operation is not valid: cannot delete inactive domain with 1 snapshots\n\n",
    );
    s.ok("undefine test --snapshots-metadata", "Domain 'test' has been undefined\n\n");
    s.err("dominfo test", "error: failed to get domain 'test'\n\n");
}

/// `domstate --reason`, each line as virsh printed it on `test:///default` after the same steps.
#[test]
fn domstate_reasons_follow_each_change() {
    require!(MOCK.require("virtplug CLI session tests"));
    let s = Session::new();
    s.ok("domstate test --reason", "running (unknown)\n\n");
    s.ok("snapshot-create-as test s1", "Domain snapshot s1 created\n");
    s.ok("destroy test", "Domain 'test' destroyed\n\n");
    s.ok("domstate test --reason", "shut off (destroyed)\n\n");
    s.ok("start test", "Domain 'test' started\n\n");
    s.ok("domstate --reason --domain test", "running (booted)\n\n");
    s.ok("suspend test", "Domain 'test' suspended\n\n");
    s.ok("domstate test --reason", "paused (user)\n\n");
    s.ok("resume test", "Domain 'test' resumed\n\n");
    s.ok("domstate test --reason", "running (unpaused)\n\n");
    s.ok("shutdown test", "Domain 'test' is being shutdown\n\n");
    s.ok("domstate test --reason", "shut off (shutdown)\n\n");
    s.ok("snapshot-revert test s1", "Domain snapshot s1 reverted\n\n");
    s.ok("domstate test --reason", "running (from snapshot)\n\n");
    s.ok("snapshot-revert test s1 --paused", "Domain snapshot s1 reverted\n\n");
    s.ok("domstate test --reason", "paused (from snapshot)\n\n");
    s.ok("domstate test", "paused\n\n");
}

#[test]
fn print_xml_json_and_usage_errors() {
    require!(MOCK.require("virtplug CLI session tests"));
    let s = Session::new();
    s.ok(
        "snapshot-create-as test --print-xml --name x --description d --disk-only --diskspec vda,snapshot=external,file=/path/to/x.qcow2 --memspec file=/path/to/m.img,snapshot=external",
        "<domainsnapshot>\n  <name>x</name>\n  <description>d</description>\n  <memory snapshot='external' file='/path/to/m.img'/>\n  <disks>\n    <disk name='vda' snapshot='external'>\n      <source file='/path/to/x.qcow2'/>\n    </disk>\n  </disks>\n</domainsnapshot>\n\n\n",
    );
    s.ok("snapshot-create-as test s1", "Domain snapshot s1 created\n");
    let out = s.run("snapshot-list test --json");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["name"], "s1");
    assert_eq!(v[0]["current"], true);
    assert_eq!(v[0]["state"], "running");
    let out = s.run("--json snapshot-info test s1");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((v["domain"].as_str(), v["children"].as_u64()), (Some("test"), Some(0)));
    s.err("snapshot-delete test s1 --json", "error: command 'snapshot-delete' does not support --json\n\n");
    // Command-line misuse (refused before a command runs, so without the empty line): misuse.rs.
    s.err("snapshot-revert test", "error: --snapshotname or --current is required\n\n");
    s.err(
        "snapshot-create test /nonexistent/s.xml",
        "error: Failed to open file '/nonexistent/s.xml': No such file or directory\n\n",
    );
    let bad = s.raw_with("nosuch:///x", &["list"]);
    assert_eq!(
        (bad.stdout.as_str(), bad.stderr.as_str(), bad.code),
        (
            "\n",
            "error: failed to connect to the hypervisor\nerror: no connection driver available for nosuch:///x\n",
            1
        )
    );
    let plugins = s.run("plugins");
    assert!(plugins.stdout.contains("Schemes:    mock"), "{}", plugins.stdout);
    assert!(plugins.stdout.contains("VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE"), "{}", plugins.stdout);
}

impl Session {
    /// Runs with `EDITOR` set to a shell command that edits the file in place.
    fn with_editor(&self, editor: &str, cmdline: &str) -> Out {
        let args: Vec<&str> = cmdline.split_whitespace().collect();
        let out = Command::new(BIN)
            .arg("-c")
            .arg(&self.uri)
            .args(&args)
            .env_remove("VIRTPLUG_PLUGIN_DIR")
            .env_remove("VIRTPLUG_CONFIG")
            .env_remove("VISUAL")
            .env("EDITOR", editor)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("HOME", self.config.path())
            .output()
            .unwrap();
        Out {
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
            code: out.status.code().unwrap_or(-1),
        }
    }
}

#[test]
fn snapshot_edit_is_atomic() {
    require!(MOCK.require("virtplug CLI session tests"));
    let s = Session::new();
    s.ok("snapshot-create-as test s1", "Domain snapshot s1 created\n");
    s.ok("snapshot-create-as test s2", "Domain snapshot s2 created\n");
    let triple = |o: Out| (o.stdout, o.stderr, o.code);

    let unchanged = s.with_editor("true", "snapshot-edit test s2");
    assert_eq!(triple(unchanged), ("Snapshot s2 XML configuration not changed.\n\n".into(), String::new(), 0));

    let describe = "sed -i 's#<name>s2</name>#<name>s2</name><description>edited</description>#'";
    assert_eq!(
        triple(s.with_editor(describe, "snapshot-edit test s2")),
        ("Snapshot s2 edited.\n\n".into(), String::new(), 0)
    );
    assert!(s.run("snapshot-dumpxml test s2").stdout.contains("<description>edited</description>"));

    // A new name without --rename or --clone changes nothing (virsh would leave both behind).
    let rename = "sed -i 's#<name>s2</name>#<name>s3</name>#'";
    assert_eq!(
        triple(s.with_editor(rename, "snapshot-edit test s2")),
        ("\n".into(), "error: Must use --rename or --clone to change s2 to s3\nerror: Failed to update s2\n".into(), 1)
    );
    s.ok("snapshot-list test --name", "s1\ns2\n\n");

    assert_eq!(triple(s.with_editor(rename, "snapshot-edit test s2 --rename")), ("\n".into(), String::new(), 0));
    s.ok("snapshot-list test --name", "s1\ns3\n\n");
    s.ok("snapshot-current test --name", "s3\n");

    let clone = "sed -i 's#<name>s3</name>#<name>s4</name>#'";
    assert_eq!(
        triple(s.with_editor(clone, "snapshot-edit test s3 --clone")),
        ("Snapshot s3 cloned to s4.\n\n".into(), String::new(), 0)
    );
    s.ok("snapshot-list test --name", "s1\ns3\ns4\n\n");
    s.err("snapshot-edit test s3 --rename --clone", "error: Options --rename and --clone are mutually exclusive\n\n");
}

#[test]
fn export_import_and_halt_quirk() {
    require!(MOCK.require("virtplug CLI session tests"));
    let src = Session::new();
    src.ok("snapshot-create-as test s1", "Domain snapshot s1 created\n");
    src.ok("snapshot-create-as test s2", "Domain snapshot s2 created\n");
    src.ok("snapshot-revert test s1", "Domain snapshot s1 reverted\n\n");
    let bundle = src.path("bundle.xml");
    let out = src.run(&format!("snapshot-export test --file {bundle}"));
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));

    let dst = Session::new();
    dst.ok(
        &format!("snapshot-import test {bundle} --dry-run"),
        "Domain 'test': 2 snapshots can be imported (dry run, nothing changed)\n\n",
    );
    dst.ok("snapshot-list test --name", "\n");
    dst.ok(&format!("snapshot-import test {bundle}"), "Domain 'test': 2 snapshots imported\n\n");
    dst.ok("snapshot-list test --tree", "s1\n  |\n  +- s2\n    \n\n");
    dst.ok("snapshot-current test --name", "s1\n");

    // virsh emulates --halt when the library refuses REDEFINE|HALT: redefine, then destroy.
    let s2 = src.path("s2.xml");
    let xml = src.run("snapshot-dumpxml test s2 --security-info").stdout;
    std::fs::write(&s2, &xml[..xml.len() - 1]).unwrap();
    src.ok("domstate test", "running\n\n");
    src.ok(
        &format!("snapshot-create test {s2} --redefine --halt"),
        &format!("Domain snapshot s2 created from '{s2}'\n"),
    );
    src.ok("domstate test", "shut off\n\n");
}
