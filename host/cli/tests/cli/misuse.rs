//! Misuse of the `virtplug` binary: every refusal is virsh 9.0's one line (or lines) on stderr
//! and exit status 1, with virsh's empty stdout line only when a command ran; file reads are
//! bounded; a plugin's panic is one error line; a closed stdout ends the command quietly.
//!
//! The expected texts are virsh 9.0's own output for the same command lines against
//! `test:///default` (Debian 12's libvirt-clients), except where a comment says otherwise.
//! Cases that run a command use the mock plugin beside the binary (`mock:///<tempdir>`); they
//! fail under `CI=true` without it and are skipped with one note otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected value")]

use std::process::{Command, Stdio};

use virtplug_test_support::{MOCK, require};

use super::{Out, output};

const BIN: &str = env!("CARGO_BIN_EXE_virtplug");

/// A fresh mock state (`mock:///<dir>`, domain `test`) and a clean environment.
struct Env {
    dir: tempfile::TempDir,
    uri: String,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("mock://{}", dir.path().join("state").display());
        Self { dir, uri }
    }

    fn command(&self, argv: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(argv.iter().map(|a| a.replace("URI", &self.uri)))
            .env_remove("VIRTPLUG_PLUGIN_DIR")
            .env_remove("VIRTPLUG_CONFIG")
            .env_remove("VIRTPLUG_DEFAULT_URI")
            .env_remove("VIRTPLUG_PLUGIN_LOG")
            .env("XDG_CONFIG_HOME", self.dir.path())
            .env("HOME", self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `argv` (`URI` in a word stands for the mock state's URI).
    fn run(&self, argv: &[&str]) -> Out {
        output(self.command(argv).output().unwrap())
    }
}

/// One case: argv, the exact stderr, the exact stdout; the exit status is always 1.
type Case<'a> = (&'a [&'a str], &'a str, &'a str);

fn check(env: &Env, cases: &[Case<'_>]) {
    for (argv, stderr, stdout) in cases {
        let expected = Out { code: 1, stderr: (*stderr).to_owned(), stdout: (*stdout).to_owned() };
        assert_eq!(env.run(argv), expected, "virtplug {}", argv.join(" "));
    }
}

/// Refused while parsing argv: nothing is loaded or connected, and no empty line on stdout.
#[test]
fn command_line_misuse_is_one_line_in_virsh_words() {
    let env = Env::new();
    check(
        &env,
        &[
            // Unknown options.
            (
                &["-c", "URI", "snapshot-list", "test", "--bogus"],
                "error: command 'snapshot-list' doesn't support option --bogus\n",
                "",
            ),
            (&["snapshot-list", "--bogus=3"], "error: command 'snapshot-list' doesn't support option --bogus\n", ""),
            (&["list", "--bogus"], "error: command 'list' doesn't support option --bogus\n", ""),
            (&["--bogus", "list"], "error: unsupported option '--bogus'. See --help.\n", ""),
            (&["--bogus=1", "list"], "error: unsupported option '--bogus=1'. See --help.\n", ""),
            (&["-z", "list"], "error: unsupported option '-z'. See --help.\n", ""),
            (&["-rz", "list"], "error: unsupported option '-z'. See --help.\n", ""),
            (&["--readonly=1", "list"], "error: unsupported option '-r'. See --help.\n", ""),
            // Missing required arguments: each one, in option order.
            (&["snapshot-create-as"], "error: command 'snapshot-create-as' requires <domain> option\n", ""),
            (
                &["snapshot-create-as", "--name", "x"],
                "error: command 'snapshot-create-as' requires <domain> option\n",
                "",
            ),
            (
                &["snapshot-dumpxml"],
                "error: command 'snapshot-dumpxml' requires <domain> option\n\
                 error: command 'snapshot-dumpxml' requires <snapshotname> option\n",
                "",
            ),
            (&["snapshot-dumpxml", "test"], "error: command 'snapshot-dumpxml' requires <snapshotname> option\n", ""),
            (&["define"], "error: command 'define' requires <file> option\n", ""),
            (&["undefine", "--nvram", "--keep-nvram"], "error: command 'undefine' requires <domain> option\n", ""),
            // virtplug's own command; virsh's wording for a required named option.
            (
                &["migrate-snapshots", "test", "--to", "x"],
                "error: command 'migrate-snapshots' requires --from option\n",
                "",
            ),
            // Options without their value.
            (&["-c"], "error: option '-c'/'--connect' requires an argument\n", ""),
            (&["list", "--connect"], "error: option '-c'/'--connect' requires an argument\n", ""),
            (&["snapshot-list", "test", "--from"], "error: expected syntax: --from <string>\n", ""),
            (&["snapshot-list", "--domain"], "error: expected syntax: --domain <string>\n", ""),
            (&["snapshot-create-as", "test", "--diskspec"], "error: expected syntax: --diskspec <string>\n", ""),
            // Too many arguments.
            (&["snapshot-dumpxml", "test", "s1", "extra"], "error: unexpected data 'extra'\n", ""),
            (&["list", "x"], "error: unexpected data 'x'\n", ""),
            (&["list", "--all", "--", "x"], "error: unexpected data 'x'\n", ""),
            (&["dominfo", "--domain=test", "x"], "error: unexpected data 'x'\n", ""),
            (&["plugins", "x"], "error: unexpected data 'x'\n", ""),
            // An option twice, or a flag given a value.
            (&["snapshot-list", "test", "--domain", "test"], "error: option --domain already seen\n", ""),
            (&["list", "--all", "--all"], "error: option --all already seen\n", ""),
            (&["list", "--all=1"], "error: invalid '=' after option --all\n", ""),
            (&["snapshot-list", "test", "--from=a", "--tree="], "error: invalid '=' after option --tree\n", ""),
            // Unknown commands.
            (&["bogus"], "error: unknown command: 'bogus'\n", ""),
            (&["-c", "URI", "--", "bogus"], "error: unknown command: 'bogus'\n", ""),
            // `help` is a command in virsh: its empty line follows.
            (&["help", "bogus"], "error: command or command group 'bogus' doesn't exist\n", "\n"),
            // virsh starts its interactive shell here; virtplug has none (its own text).
            (&[], "error: no command given. See --help.\n", ""),
            (&["-c", "URI"], "error: no command given. See --help.\n", ""),
        ],
    );
}

/// Refused once the command runs, after connecting: virsh's empty line follows on stdout.
#[test]
fn option_checks_of_a_running_command() {
    require!(MOCK.require("virtplug misuse cases that need the mock"));
    let env = Env::new();
    let c = |rest: &'static [&'static str]| -> Vec<&'static str> { [&["-c", "URI"][..], rest].concat() };
    let cases: Vec<(Vec<&str>, &str, &str)> = vec![
        (
            c(&["snapshot-list", "test", "--tree", "--parent"]),
            "error: Options --parent and --tree are mutually exclusive\n",
            "\n",
        ),
        (
            c(&["snapshot-list", "test", "--from", "s1", "--current"]),
            "error: --from and --current are mutually exclusive\n",
            "\n",
        ),
        (
            c(&["snapshot-list", "test", "--descendants"]),
            "error: --descendants requires either --from or --current\n",
            "\n",
        ),
        (
            c(&["snapshot-edit", "test", "--rename", "--clone"]),
            "error: Options --rename and --clone are mutually exclusive\n",
            "\n",
        ),
        (
            c(&["undefine", "test", "--nvram", "--keep-nvram"]),
            "error: Options --nvram and --keep-nvram are mutually exclusive\n",
            "\n",
        ),
        (
            c(&["snapshot-current", "test", "--name", "--snapshotname", "x"]),
            "error: Options --name and --snapshotname are mutually exclusive\n",
            "\n",
        ),
        (
            c(&["snapshot-info", "test", "--current", "--snapshotname", "s"]),
            "error: --snapshotname and --current are mutually exclusive\n",
            "\n",
        ),
        // Empty values.
        (c(&["snapshot-list", ""]), "error: Failed to get option 'domain': Option argument is empty\n", "\n"),
        (
            c(&["snapshot-list", "test", "--from", ""]),
            "error: Failed to get option 'from': Option argument is empty\n",
            "\n",
        ),
        (
            c(&["snapshot-create-as", "test", "--name", ""]),
            "error: Failed to get option 'name': Option argument is empty\n",
            "\n",
        ),
        (
            c(&["snapshot-create-as", "test", "--description=", "--print-xml"]),
            "error: Failed to get option 'description': Option argument is empty\n",
            "\n",
        ),
        (
            c(&["snapshot-create", "test", "--xmlfile", ""]),
            "error: Failed to get option 'xmlfile': Option argument is empty\n",
            "\n",
        ),
        (c(&["define", ""]), "error: Failed to get option 'file': Option argument is empty\n", "\n"),
    ];
    for (argv, stderr, stdout) in &cases {
        let expected = Out { code: 1, stderr: (*stderr).to_owned(), stdout: (*stdout).to_owned() };
        assert_eq!(env.run(argv), expected, "virtplug {}", argv.join(" "));
    }
    // The refused `--name ''` created nothing.
    let listed = env.run(&["-c", "URI", "snapshot-list", "test", "--name"]);
    assert_eq!(listed, Out { code: 0, stderr: String::new(), stdout: "\n".to_owned() });
}

/// Words are assigned as virsh assigns them once the grammar accepts the line: values that
/// look like options, `--opt=value`, `--` and bare words in declaration order.
#[test]
fn well_formed_lines_still_run() {
    require!(MOCK.require("virtplug misuse cases that need the mock"));
    let env = Env::new();
    let xml = "<domainsnapshot>\n  <name>n</name>\n  <description>-d</description>\n  <memory file='/m'/>\n  \
               <disks>\n    <disk name='a'/>\n    <disk name='b'/>\n  </disks>\n</domainsnapshot>\n\n\n";
    let ok = |argv: &[&str], stdout: &str| {
        let out = env.run(argv);
        assert_eq!(out, Out { code: 0, stderr: String::new(), stdout: stdout.to_owned() }, "{argv:?}");
    };
    ok(&["-c", "URI", "snapshot-create-as", "test", "n", "-d", "--memspec", "/m", "--print-xml", "a", "b"], xml);
    // After `--` every word is data, even `--diskspec`; named list items come first.
    let xml_ba = xml.replace("'a'", "'x'").replace("'b'", "'a'").replace("'x'", "'b'");
    ok(
        &[
            "--connect=URI",
            "snapshot-create-as",
            "--print-xml",
            "--memspec=/m",
            "--diskspec",
            "b",
            "--",
            "test",
            "n",
            "-d",
            "a",
        ],
        &xml_ba,
    );
    ok(&["snapshot-list", "--connect", "URI", "--domain=test", "--name"], "\n");
}

#[test]
fn help_and_version_still_work() {
    let env = Env::new();
    for argv in [&["snapshot-list", "--help"][..], &["help", "snapshot-list"], &["snapshot-list", "test", "-h"]] {
        let out = env.run(argv);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{argv:?}");
        assert!(
            out.stdout.starts_with("List snapshots for a domain\n\nUsage: virtplug snapshot-list "),
            "{argv:?}: {}",
            out.stdout
        );
    }
    for argv in [&["--help"][..], &["-h"], &["help"]] {
        let out = env.run(argv);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{argv:?}");
        assert!(out.stdout.starts_with("virtplug: manage hypervisor domains"), "{argv:?}: {}", out.stdout);
    }
    let out = env.run(&["--version"]);
    assert_eq!(
        out,
        Out { code: 0, stderr: String::new(), stdout: format!("virtplug {}\n", env!("CARGO_PKG_VERSION")) }
    );
}
