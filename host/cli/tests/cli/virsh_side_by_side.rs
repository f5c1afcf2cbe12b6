//! Side by side with virsh: each sequence of commands is run by Debian's `virsh` on libvirt's
//! `test:///default` (one virsh process reading the commands on stdin, so they share one state)
//! and by `virtplug` on a fresh mock store (one process per command, as a user runs them). Every
//! command's stdout and the whole sequence of `error:` lines must be the same; times, creation
//! times and the default names made of them are masked. Nothing here is recorded: virsh answers
//! in the same run, so any drift of either side shows.
//!
//! Where the mock is deliberately not the test driver (reference §14 and §13: METADATA_ONLY,
//! NO_METADATA, DISK_ONLY and REUSE_EXT supported; names validated like qemu's; QUIESCE needs
//! DISK_ONLY; the documented LEAVES|NO_LEAVES rule) the sequences leave those commands out;
//! `dominfo`'s OS type, CPU time and security lines are not compared ([`NOT_COMPARED`]). libvirt's parse errors carry the offending
//! line and a caret after their first line; virtplug's errors are one line, so only `error:`
//! lines are compared.
//!
//! Needs virsh (libvirt-clients) and the mock plugin; fails under `CI=true` without them.

#![allow(clippy::unwrap_used, reason = "a test fails loudly on an unexpected value")]

use std::{path::Path, process::Command};

use virtplug_test_support::{MOCK, find_program, need, require};

const BIN: &str = env!("CARGO_BIN_EXE_virtplug");
const AREA: &str = "virsh side-by-side tests";

/// `dominfo` lines where the mock is deliberately not the test driver, left out on both sides:
/// the test driver hard-codes OS type "linux" (the mock reports the definition's, as qemu does),
/// reports the wall clock as CPU time (no plugin reports CPU time, so the line is absent, as
/// virsh leaves it out for 0) and a fake "testSecurity" model (there is no security driver).
const NOT_COMPARED: &[&str] = &["OS Type:", "CPU time:", "Security model:", "Security DOI:", "Security label:"];

/// Masks what depends on the clock: the times virsh prints (`crate::session::mask_times`), and
/// any 10-digit number starting with 1 (creation times, and the default names made of them);
/// drops the [`NOT_COMPARED`] lines.
fn mask(s: &str) -> String {
    let kept: String = s.split_inclusive('\n').filter(|l| !NOT_COMPARED.iter().any(|p| l.starts_with(p))).collect();
    let s = crate::session::mask_times(&kept);
    let b = s.as_bytes();
    let digits_at = |i: usize| b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'1' && (i == 0 || !b[i - 1].is_ascii_digit()) && digits_at(i) == 10 {
            out.push_str("<EPOCH>");
            i += 10;
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// A command line split as virsh splits it: blanks separate words, double quotes group them.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '"' => (quoted, any) = (!quoted, true),
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(word);
    }
    out
}

/// Each command's masked stdout, and the masked `error:` lines of the whole run.
type Run = (Vec<String>, Vec<String>);

fn error_lines(stderr: &str) -> Vec<String> {
    stderr.lines().filter(|l| l.starts_with("error:")).map(mask).collect()
}

/// How both sides connect: read-write, or read-only (`-r`).
#[derive(Clone, Copy, PartialEq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

impl Access {
    fn args(self) -> &'static [&'static str] {
        if self == Access::ReadOnly { &["-r"] } else { &[] }
    }
}

/// The commands through one virsh on `test:///default`, in `cwd`, with `env`.
fn virsh(virsh: &Path, cmds: &[&str], cwd: &Path, env: &[(&str, &str)], access: Access) -> Run {
    let input: String = cmds.iter().map(|c| format!("{c}\n")).collect();
    let mut child = Command::new(virsh)
        .args(["-c", "test:///default"])
        .args(access.args())
        .current_dir(cwd)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    // virsh's read-only prompt is `virsh > `.
    let stdout = String::from_utf8(out.stdout).unwrap().replace("virsh > ", "virsh # ");
    // After the banner, each prompt is followed by the echoed command, then its output.
    let outputs = stdout
        .split("virsh # ")
        .skip(1)
        .take(cmds.len())
        .map(|chunk| mask(chunk.split_once('\n').map_or("", |(_, rest)| rest)))
        .collect::<Vec<_>>();
    assert_eq!(outputs.len(), cmds.len(), "virsh ran {} of the commands:\n{stdout}", outputs.len());
    (outputs, error_lines(&String::from_utf8(out.stderr).unwrap()))
}

/// The commands through `virtplug`, one process each, on a fresh mock store, in `cwd`.
fn ours(cmds: &[&str], cwd: &Path, env: &[(&str, &str)], access: Access) -> Run {
    let (store, config) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut outputs, mut errors) = (Vec::new(), Vec::new());
    for cmd in cmds {
        let out = Command::new(BIN)
            .arg("-c")
            .arg(format!("mock://{}", store.path().display()))
            .args(access.args())
            .args(words(cmd))
            .current_dir(cwd)
            .envs(env.iter().copied())
            .env_remove("VIRTPLUG_PLUGIN_DIR")
            .env_remove("VIRTPLUG_DEFAULT_URI")
            .env("XDG_CONFIG_HOME", config.path())
            .env("HOME", config.path())
            .output()
            .unwrap();
        outputs.push(mask(&String::from_utf8(out.stdout).unwrap()));
        errors.extend(error_lines(&String::from_utf8(out.stderr).unwrap()));
    }
    (outputs, errors)
}

/// Runs `cmds` on both sides, with `files` written into the shared working directory first;
/// returns virsh's stdout of each command (so that a test can check the run did what it meant
/// to), `None` when skipped.
fn side_by_side(cmds: &[&str], files: &[(&str, String)], env: &[(&str, &str)]) -> Option<Vec<String>> {
    side_by_side_as(Access::ReadWrite, cmds, files, env)
}

/// [`side_by_side`] with both sides connected as `access` says.
fn side_by_side_as(
    access: Access,
    cmds: &[&str],
    files: &[(&str, String)],
    env: &[(&str, &str)],
) -> Option<Vec<String>> {
    MOCK.require(AREA)?;
    let virsh_bin = need(AREA, find_program("virsh"))?;
    let cwd = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(cwd.path().join(name), text).unwrap();
    }
    let (want, want_errors) = virsh(&virsh_bin, cmds, cwd.path(), env, access);
    let (got, got_errors) = ours(cmds, cwd.path(), env, access);
    for ((cmd, want), got) in cmds.iter().zip(&want).zip(&got) {
        assert_eq!(got, want, "stdout of `{cmd}` (left: virtplug, right: virsh)");
    }
    assert_eq!(got_errors, want_errors, "error lines (left: virtplug, right: virsh)");
    Some(want)
}

#[test]
fn snapshot_basics() {
    side_by_side(
        &[
            "snapshot-list test",
            "snapshot-create-as test s1 --description first",
            "snapshot-create-as test s2",
            "snapshot-create-as test s3 --print-xml",
            "snapshot-list test",
            "snapshot-list test --tree",
            "snapshot-list test --parent",
            "snapshot-list test --roots",
            "snapshot-list test --leaves",
            "snapshot-list test --no-leaves",
            "snapshot-list test --name",
            "snapshot-list test --topological",
            "snapshot-list test --current",
            "snapshot-list test --from s1",
            "snapshot-list test --from s1 --descendants",
            "snapshot-list test --from s1 --tree",
            "snapshot-list test --metadata",
            "snapshot-list test --no-metadata",
            "snapshot-list test --inactive",
            "snapshot-list test --active",
            "snapshot-list test --disk-only",
            "snapshot-list test --internal",
            "snapshot-list test --external",
            "snapshot-info test s1",
            "snapshot-info test --current",
            "snapshot-parent test s2",
            "snapshot-parent test s1",
            "snapshot-parent test --current",
            "snapshot-current test",
            "snapshot-current test --name",
            "snapshot-current test s1",
            "snapshot-current test --name",
            "snapshot-create-as test s4",
            "snapshot-list test --tree",
            "snapshot-dumpxml test s4",
            "snapshot-dumpxml test s4 --security-info",
            "snapshot-revert test s2",
            "snapshot-revert test --current --paused",
            "domstate test --reason",
            "snapshot-revert test s1 --running",
            "domstate test --reason",
            "snapshot-delete test s1 --children-only",
            "snapshot-list test --tree",
            "snapshot-delete test --current",
            "snapshot-list test",
            "snapshot-info test nosuch",
            "snapshot-dumpxml test nosuch",
            "snapshot-delete test nosuch",
            "snapshot-revert test nosuch",
            "snapshot-list nosuchdom",
            "snapshot-create-as test s1",
            "snapshot-create-as test s1",
            "snapshot-list test --roots --from s1",
            "snapshot-list test --tree --name",
        ],
        &[],
        &[],
    );
}

#[test]
fn a_branching_tree() {
    side_by_side(
        &[
            "snapshot-create-as test r1",
            "snapshot-create-as test a1",
            "snapshot-create-as test a2",
            "snapshot-revert test r1",
            "snapshot-create-as test b1",
            "snapshot-create-as test b2",
            "snapshot-revert test b1",
            "snapshot-create-as test c1",
            "snapshot-list test --tree",
            "snapshot-list test --tree --from b1",
            "snapshot-list test --tree --current",
            "snapshot-list test --from b1 --descendants --leaves",
            "snapshot-list test --from r1 --descendants --no-leaves",
            "snapshot-list test --from r1 --name",
            "snapshot-list test --roots --name",
            "snapshot-list test --leaves --parent",
            "snapshot-list test --topological --name",
            "snapshot-list test --topological --descendants --from b1 --name",
            "snapshot-info test r1",
            "snapshot-info test b1",
            "snapshot-info --current test",
            "snapshot-parent test c1",
            "snapshot-delete test b1",
            "snapshot-list test --tree",
            "snapshot-info test r1",
            "snapshot-current test --name",
            "snapshot-delete test r1 --children-only",
            "snapshot-list test --tree",
            "snapshot-current test",
            "snapshot-create-as test z1",
            "snapshot-list test --parent",
            "snapshot-delete test r1 --children",
            "snapshot-list test",
            "snapshot-current test --name",
        ],
        &[],
        &[],
    );
}

#[test]
fn domain_states_and_reverts() {
    side_by_side(
        &[
            "list --all",
            "domstate test",
            "snapshot-create-as test a --halt",
            "domstate test --reason",
            "list --all",
            "snapshot-create-as test d --atomic",
            "snapshot-create-as test e --validate",
            "snapshot-create-as test --name k --description \"a b\"",
            "snapshot-create-as test",
            "snapshot-list test --tree",
            "start test",
            "snapshot-revert test a",
            "domstate test --reason",
            "snapshot-revert test a --running",
            "domstate test --reason",
            "snapshot-revert test a --paused --running",
            "snapshot-revert test a --force",
            "suspend test",
            "snapshot-create-as test p1",
            "snapshot-info test p1",
            "resume test",
            "snapshot-delete test a --children --children-only",
            "snapshot-delete test a --children",
            "snapshot-list test",
            "destroy test",
            "snapshot-create-as test off1",
            "snapshot-info test off1",
            "snapshot-dumpxml test off1",
            "undefine test",
            "undefine test --snapshots-metadata",
            "list --all",
        ],
        &[],
        &[],
    );
}

#[test]
fn domain_lifecycle_refusals() {
    side_by_side(
        &[
            "suspend test",
            "suspend test",
            "resume test",
            "resume test",
            "destroy test",
            "destroy test",
            "suspend test",
            "resume test",
            "shutdown test",
            "start test",
            "start test",
            "suspend test",
            "shutdown test",
            "domstate test --reason",
        ],
        &[],
        &[],
    );
}

#[test]
fn domain_list_filters() {
    side_by_side(
        &[
            "list",
            "list --inactive",
            "list --all",
            "list --inactive --all",
            "list --uuid --name",
            "list --id --name",
            "list --id",
            "list --uuid",
            "list --table --name",
            "list --table --uuid",
            "list --table --id",
            "list --all --id --uuid --name --table",
            "list --title --all",
            "list --all --state-shutoff",
            "list --all --state-other",
            "list --persistent",
            "list --transient",
            "list --with-snapshot",
            "list --without-snapshot",
            "list --autostart",
            "list --no-autostart",
            "list --with-managed-save",
            "list --without-managed-save",
            "list --managed-save --all",
            "list --with-checkpoint",
            "list --without-checkpoint",
            "list --uuid --title",
            "list --id --uuid --name",
            "snapshot-create-as test s1",
            "list --with-snapshot",
            "list --without-snapshot --all",
            "list --state-running",
            "list --state-paused",
            "suspend test",
            "list --state-paused",
            "list --state-running --state-paused",
            "list --state-paused --state-shutoff",
            "destroy test",
            "list --id",
            "list --inactive --id",
            "list --all --id --name",
            "list --all --id",
            "list --all --uuid --id",
            "list --all --title",
            "list --inactive --name",
            "list --state-shutoff",
            "list --all --state-running --state-shutoff",
            "list --all --name --uuid --id --title",
            "list --all --managed-save",
            "list --with-snapshot --inactive",
        ],
        &[],
        &[],
    );
}

/// `list --title`: a second domain, defined with a title, beside the test domain (without).
#[test]
fn domain_list_titles() {
    let domain = virtplug_host::model::domain::TEST_DOMAIN_XML
        .replace("<name>test</name>", "<name>t2</name>\n  <title>Second &amp; last</title>")
        .replace("6695eb01-f6a4-8304-79aa-97f2502e193f", "6695eb01-f6a4-8304-79aa-97f2502e1940");
    let virsh = side_by_side(
        &["define dom2.xml", "list --all --title", "list --all --uuid --name", "start t2", "list --title", "list --id"],
        &[("dom2.xml", domain)],
        &[],
    );
    if let Some(virsh) = virsh {
        assert!(virsh[1].contains(" shut off   Second & last\n"), "{}", virsh[1]);
    }
}

/// `domname`, `domid`, `domuuid` (each takes only two kinds of reference), and `dumpxml`,
/// whose live XML names the running domain's id.
#[test]
fn domain_references_and_live_xml() {
    side_by_side(
        &[
            "domid test",
            "domname 1",
            "domuuid 1",
            "domuuid test",
            "domname 6695eb01-f6a4-8304-79aa-97f2502e193f",
            "domname 6695EB01-F6A4-8304-79AA-97F2502E193F",
            "domid 6695eb01-f6a4-8304-79aa-97f2502e193f",
            "domname test",
            "domid 1",
            "domname --domain 1",
            "dominfo test",
            "dominfo 1",
            "dumpxml test",
            "dumpxml test --inactive",
            "dumpxml test --security-info",
            "destroy test",
            "dominfo test",
            "domid test",
            "domuuid 1",
            "domname 1",
            "dumpxml test",
            "start test",
            "dumpxml test",
            "suspend test",
            "dominfo test",
            "domname nosuch",
            "dominfo nosuch",
            "domid nosuch",
            "domuuid nosuch",
            "domname",
        ],
        &[],
        &[],
    );
}

/// A definition taken from live XML (`dumpxml` of a running domain, then `define`): the id is
/// ignored, and the new domain gets its own when started.
#[test]
fn define_from_live_xml() {
    let live = virtplug_host::model::domain::TEST_DOMAIN_XML
        .replace("<domain type='test'>", "<domain type='test' id='1'>")
        .replace("<name>test</name>", "<name>t3</name>")
        .replace("6695eb01-f6a4-8304-79aa-97f2502e193f", "6695eb01-f6a4-8304-79aa-97f2502e1941");
    side_by_side(
        &[
            "define live.xml",
            "dumpxml t3",
            "dominfo t3",
            "start t3",
            "dumpxml t3",
            "dumpxml t3 --inactive",
            "list --all",
        ],
        &[("live.xml", live)],
        &[],
    );
}

/// A definition given to a running domain (libvirt's newDef): the domain runs on with what it
/// had (`dumpxml`, `dominfo`, a snapshot's `<domain>`), `dumpxml --inactive` shows the new one,
/// which it takes when it stops; a revert restarts it from the snapshot and drops the pending one.
/// `--migratable` reads the running one, with `--inactive` the pending one.
#[test]
fn a_definition_given_to_a_running_domain_waits_for_it_to_stop() {
    let smaller = virtplug_host::model::domain::TEST_DOMAIN_XML
        .replace("<memory unit='KiB'>8388608</memory>", "<memory unit='KiB'>4194304</memory>")
        .replace(
            "<currentMemory unit='KiB'>2097152</currentMemory>",
            "<currentMemory unit='KiB'>1048576</currentMemory>",
        );
    assert_ne!(smaller, virtplug_host::model::domain::TEST_DOMAIN_XML, "the test domain's memory changed");
    side_by_side(
        &[
            "dumpxml test --migratable",
            "snapshot-create-as test s0",
            "define smaller.xml",
            "dumpxml test --xpath //memory",
            "dumpxml test --inactive --xpath //memory",
            "dumpxml test --migratable --xpath //memory",
            "dumpxml test --migratable --inactive --xpath //memory",
            "dominfo test",
            "snapshot-create-as test s1",
            "snapshot-dumpxml test s1 --xpath //domain/memory",
            "snapshot-revert test s0",
            "dumpxml test --inactive --xpath //memory",
            "define smaller.xml",
            "destroy test",
            "dumpxml test --xpath //memory",
            "dominfo test",
            "start test",
            "define smaller.xml",
            "snapshot-revert test s0 --paused",
            "dumpxml test --inactive --xpath //memory",
            "define smaller.xml",
            "undefine test",
            "dumpxml test --inactive --xpath //memory",
            "destroy test",
            "list --all",
        ],
        &[("smaller.xml", smaller)],
        &[],
    );
}

/// A running domain undefined is transient: a revert to a shut-off snapshot would make it
/// vanish, so libvirt refuses it unless RUNNING or PAUSED is asked; a revert to a running one
/// restarts it, still transient; once destroyed it is gone.
#[test]
fn a_transient_domain_reverts_only_to_a_running_state() {
    side_by_side(
        &[
            "snapshot-create-as test r1",
            "destroy test",
            "snapshot-create-as test off1",
            "start test",
            "undefine test",
            "snapshot-revert test off1",
            "domstate test --reason",
            "list --all",
            "snapshot-revert test r1",
            "domstate test --reason",
            "list --all",
            "undefine test --snapshots-metadata",
            "destroy test",
            "list --all",
        ],
        &[],
        &[],
    );
}

/// A read-only connection: reads answer, every change is refused with libvirt's words, and an
/// unknown snapshot is reported before the refusal of the secure flag.
#[test]
fn read_only_connection() {
    let live = virtplug_host::model::domain::TEST_DOMAIN_XML.replace("<name>test</name>", "<name>t3</name>");
    let virsh = side_by_side_as(
        Access::ReadOnly,
        &[
            "snapshot-list test",
            "snapshot-create-as test x",
            "snapshot-create test x1.xml",
            "snapshot-delete test x",
            "snapshot-revert test x",
            "snapshot-current test x",
            "snapshot-dumpxml test x",
            "snapshot-dumpxml test x --security-info",
            "snapshot-info test x",
            "dumpxml test --security-info",
            "dumpxml test",
            "suspend test",
            "resume test",
            "destroy test",
            "start test",
            "shutdown test",
            "define live.xml",
            "undefine test",
            "domstate test --reason",
            "list --all",
            "snapshot-edit test x",
            "domname 1",
        ],
        &[("x1.xml", "<domainsnapshot><name>x1</name></domainsnapshot>\n".into()), ("live.xml", live)],
        &[("EDITOR", "true")],
    );
    if let Some(virsh) = virsh {
        assert!(virsh[0].starts_with(" Name   Creation Time   State"), "{}", virsh[0]);
    }
}

/// `undefine`'s storage options, which virsh carries out itself: no plugin's disk is a volume
/// of a libvirt storage pool, so each chosen disk is reported as unmanaged and the undefine goes
/// on; a `--storage` item that names no disk stops it first.
#[test]
fn undefine_storage_options() {
    let mut cmds = Vec::new();
    for opt in [
        "--remove-all-storage",
        "--storage vdz",
        "--storage vda,vdz",
        "--wipe-storage",
        "--delete-storage-volume-snapshots",
        "--storage vda --remove-all-storage",
        "--storage /guest/diskimage1 --wipe-storage",
    ] {
        cmds.push(format!("undefine test {opt}"));
    }
    cmds.extend(["destroy test".into(), "snapshot-create-as test s1".into()]);
    for opt in ["--storage vda,vdz", "--storage vdz", "--remove-all-storage", "--storage vda --remove-all-storage"] {
        cmds.push(format!("undefine test {opt}"));
    }
    cmds.extend(["snapshot-delete test s1".into(), "undefine test --storage vda".into(), "list --all".into()]);
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    if let Some(virsh) = side_by_side(&cmds, &[], &[]) {
        assert_eq!(virsh.last().map(String::as_str), Some(" Id   Name   State\n--------------------\n\n"), "{virsh:?}");
    }
    // Byte for byte on both streams, with the exit status: virsh's message about an unmanaged
    // volume ends in a newline of its own (an empty line follows it on stderr) and the
    // command still succeeds.
    require!(MOCK.require(AREA));
    let virsh_bin = require!(need(AREA, find_program("virsh")));
    let want = Command::new(&virsh_bin)
        .args(["-c", "test:///default", "destroy test; undefine test --remove-all-storage"])
        .output()
        .unwrap();
    let store = tempfile::tempdir().unwrap();
    let uri = format!("mock://{}", store.path().display());
    let run = |args: &[&str]| {
        Command::new(BIN).arg("-c").arg(&uri).args(args).env_remove("VIRTPLUG_PLUGIN_DIR").output().unwrap()
    };
    let destroyed = run(&["destroy", "test"]);
    let got = run(&["undefine", "test", "--remove-all-storage"]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert_eq!(
        (text(&destroyed.stdout) + &text(&got.stdout), text(&got.stderr), got.status.code()),
        (text(&want.stdout), text(&want.stderr), want.status.code())
    );
}

/// The memory and disk modes of a plain create as the test driver aligns them: an internal
/// snapshot of a running domain records its memory even when `no` was asked, and may not leave
/// a disk out; once shut off, memory may not be saved.
#[test]
fn memory_and_disk_modes_of_a_create() {
    let doc = |name: &str, body: &str| {
        (format!("{name}.xml"), format!("<domainsnapshot><name>{name}</name>{body}</domainsnapshot>\n"))
    };
    let files = [
        doc("memno", "<memory snapshot='no'/>"),
        doc("memnodisk", "<memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/></disks>"),
        doc("diskno", "<disks><disk name='vda' snapshot='no'/></disks>"),
        doc("diskno2", "<memory snapshot='internal'/><disks><disk name='vda' snapshot='no'/></disks>"),
        doc("off", "<memory snapshot='no'/>"),
    ];
    side_by_side(
        &[
            "snapshot-create test memno.xml",
            "snapshot-dumpxml test memno",
            "snapshot-create test memnodisk.xml",
            "snapshot-dumpxml test memnodisk",
            "snapshot-create test diskno.xml",
            "snapshot-create test diskno2.xml",
            "destroy test",
            "snapshot-create test off.xml",
            "snapshot-dumpxml test off",
            "snapshot-list test --parent",
        ],
        &files.iter().map(|(f, t)| (f.as_str(), t.clone())).collect::<Vec<_>>(),
        &[],
    );
}

/// Disks asked for with a mode: `manual` is refused first (the test driver's own check); an
/// internal snapshot (libvirt's uniform mode) takes only internal disks, whatever the memory was
/// asked to be; each disk is checked in turn (known, not repeated, its mode, a file only with
/// external mode); an external memory snapshot takes external disks with their files, or none.
#[test]
fn disk_modes_checked_in_turn() {
    side_by_side(
        &[
            "snapshot-create test manual.xml",
            "snapshot-create-as test --diskspec vda,snapshot=external --name ext",
            "snapshot-create-as test --diskspec vda,snapshot=external,file=/tmp/vp-ext --name extfile",
            "snapshot-create-as test --diskspec vda,file=/tmp/vp-file --name file",
            "snapshot-create-as test --diskspec vda,snapshot=internal --name int",
            "snapshot-create-as test --diskspec vdb --name unknown",
            "snapshot-create-as test --diskspec vda --diskspec vda --name twice",
            "snapshot-create-as test --diskspec vda,snapshot=external --diskspec vdb --name first",
            "snapshot-create-as test --memspec snapshot=no --diskspec vda,snapshot=external,file=/tmp/vp-no --name memno",
            "snapshot-create-as test --memspec snapshot=no --diskspec vda,snapshot=no --name memnodiskno",
            "snapshot-create-as test --memspec file=/tmp/vp-mem --diskspec vda,snapshot=no --name memext",
            "snapshot-create-as test --memspec file=/tmp/vp-mem2 --diskspec vda,snapshot=external,file=/tmp/vp-disk --name both",
            "snapshot-dumpxml test both",
            "destroy test",
            "snapshot-create-as test --diskspec vda,snapshot=external,file=/tmp/vp-off --name off",
            "snapshot-list test --parent",
        ],
        &[(
            "manual.xml",
            "<domainsnapshot><name>manual</name><disks><disk name='vda' snapshot='manual'/></disks></domainsnapshot>"
                .to_owned(),
        )],
        &[],
    );
}

/// `--xpath` and `--wrap`: the selected nodes printed as virsh prints them (elements
/// re-indented, double-quoted attributes, escaped text), other values refused.
#[test]
fn xpath_selections() {
    let doc = "<domainsnapshot><name>q1</name><description>a &amp; b &lt;c&gt; \"d\" 'e' caf\u{e9}</description></domainsnapshot>\n";
    side_by_side(
        &[
            "snapshot-create-as test s1 --description first",
            "snapshot-create test q1.xml",
            "snapshot-dumpxml test q1 --xpath /domainsnapshot/parent",
            "snapshot-dumpxml test q1 --xpath //name",
            "snapshot-dumpxml test q1 --xpath //name --wrap",
            "snapshot-dumpxml test q1 --xpath //name/text()",
            "snapshot-dumpxml test q1 --xpath //description",
            "snapshot-dumpxml test q1 --xpath //description/text() --wrap",
            "snapshot-dumpxml test q1 --xpath //disk/@name",
            "snapshot-dumpxml test q1 --xpath //disk/@* --wrap",
            "snapshot-dumpxml test q1 --xpath \"//memory|//os\"",
            "snapshot-dumpxml test q1 --xpath \"//disk/@*|//memory|//target/@dev\"",
            "snapshot-dumpxml test q1 --xpath //name/.. --wrap",
            "snapshot-dumpxml test q1 --xpath /",
            "snapshot-dumpxml test q1 --xpath //nosuch",
            "snapshot-dumpxml test q1 --xpath //nosuch --wrap",
            "snapshot-dumpxml test q1 --xpath count(//disk)",
            "snapshot-dumpxml test q1 --wrap",
            "snapshot-dumpxml test nosuch --xpath //name",
            "dumpxml test --xpath //devices/disk",
            "dumpxml test --xpath /domain/@type",
            "dumpxml test --inactive --xpath //vcpu --wrap",
            "dumpxml test //vcpu",
            "snapshot-dumpxml test q1 //name",
        ],
        &[("q1.xml", doc.into())],
        &[],
    );
}

/// `domblklist` and `domiflist` of a domain with every kind of disk source and interface (each
/// interface named as the test driver names them at define, `testnetN`: it replaces any other).
#[test]
fn device_lists() {
    let dom = "<domain type='test'><name>dev</name><memory>1024</memory><os><type>hvm</type></os><devices>\
        <disk type='file' device='disk'><source file='/var/a.qcow2'/><target dev='vda' bus='virtio'/></disk>\
        <disk type='block' device='disk'><source dev='/dev/sdb'/><target dev='vdb' bus='virtio'/></disk>\
        <disk type='network' device='disk'><source protocol='rbd' name='pool/img'/><target dev='vdc' bus='virtio'/></disk>\
        <disk type='volume' device='disk'><source pool='p' volume='v'/><target dev='vdd' bus='virtio'/></disk>\
        <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>\
        <interface type='bridge'><mac address='52:54:00:00:00:01'/><source bridge='br0'/><target dev='testnet0'/><model type='virtio'/></interface>\
        <interface type='network'><mac address='52:54:00:00:00:02'/><source network='default'/><target dev='testnet1'/></interface>\
        <interface type='direct'><mac address='52:54:00:00:00:03'/><source dev='eth0' mode='bridge'/><target dev='testnet2'/></interface>\
        <interface type='user'><mac address='52:54:00:00:00:04'/><target dev='testnet3'/><model type='e1000'/></interface>\
        </devices></domain>\n";
    side_by_side(
        &[
            "define dev.xml",
            "domblklist dev",
            "domblklist dev --details",
            "domblklist --domain dev --inactive",
            "domiflist dev",
            "domiflist dev --inactive",
            "domblklist test --details",
            "domiflist test",
            "domblklist nosuch",
            "domiflist",
        ],
        &[("dev.xml", dom.into())],
        &[],
    );
}

/// Definitions refused as libvirt's parser refuses them (the OS type, the vCPU counts, an `exe`
/// without its init), and those it takes.
#[test]
fn definitions_checked_as_libvirt_checks_them() {
    let doc = |name: &str, body: &str| {
        (
            format!("{name}.xml"),
            format!("<domain type='test'><name>{name}</name><memory>1024</memory>{body}</domain>\n"),
        )
    };
    let hvm = "<os><type>hvm</type></os>";
    let files = [
        doc("noos", ""),
        doc("emptyos", "<os><type></type></os>"),
        doc("upper", "<os><type>HVM</type></os>"),
        doc("exe", "<os><type>exe</type></os>"),
        doc("exeinit", "<os><type>exe</type><init>/bin/sh</init></os>"),
        doc("v0", &format!("<vcpu>0</vcpu>{hvm}")),
        doc("vabc", &format!("<vcpu>abc</vcpu>{hvm}")),
        doc("vspace", &format!("<vcpu>3 </vcpu>{hvm}")),
        doc("vplus", &format!("<vcpu>+3</vcpu>{hvm}")),
        doc("vcur", &format!("<vcpu current='3'>2</vcpu>{hvm}")),
        doc("vcurbad", &format!("<vcpu current='x'>2</vcpu>{hvm}")),
        doc("xen", "<os><type arch='sparc'>xen</type></os>"),
    ];
    let names: Vec<String> = files.iter().map(|(f, _)| f.trim_end_matches(".xml").to_owned()).collect();
    let cmds: Vec<String> =
        names.iter().map(|n| format!("define {n}.xml")).chain(["list --all --name".into()]).collect();
    let files: Vec<(&str, String)> = files.iter().map(|(f, t)| (f.as_str(), t.clone())).collect();
    let want = side_by_side(&cmds.iter().map(String::as_str).collect::<Vec<_>>(), &files, &[]);
    if let Some(want) = want {
        // what virsh took, so that the run did what it meant to
        assert_eq!(want.last().unwrap(), "test\nexeinit\nvplus\nxen\n\n");
    }
}

#[test]
fn files_print_xml_and_errors() {
    let files = [
        (
            "x1.xml",
            "<domainsnapshot>\n  <name>x1</name>\n  <description>from file</description>\n</domainsnapshot>\n".into(),
        ),
        ("xbad.xml", "<domainsnapshot><name>bad</name>\n".into()),
        ("xnoname.xml", "<domainsnapshot><description>no name</description></domainsnapshot>\n".into()),
        (
            "xdisk2.xml",
            "<domainsnapshot><name>dk2</name><disks><disk name='vdz' snapshot='internal'/></disks></domainsnapshot>\n"
                .into(),
        ),
        ("xwrongroot.xml", "<domain><name>x</name></domain>\n".into()),
    ];
    side_by_side(
        &[
            "snapshot-create test x1.xml",
            "snapshot-create test xbad.xml",
            "snapshot-create test xnoname.xml",
            "snapshot-create test xdisk2.xml",
            "snapshot-create test xwrongroot.xml",
            "snapshot-create test nosuchfile.xml",
            "snapshot-dumpxml test x1",
            "snapshot-create test x1.xml --redefine",
            "snapshot-create test x1.xml --redefine --current",
            "snapshot-create test --print-xml x1.xml",
            "snapshot-create-as test --print-xml --name pp --description dd",
            "snapshot-create-as test --print-xml --name pp --memspec snapshot=no --diskspec vda,snapshot=no",
            "snapshot-current test x1",
            "snapshot-current test --name",
            "snapshot-current test nosuch",
            "snapshot-info test x1",
            "snapshot-list test --from nosuch",
            "snapshot-list test --descendants",
            "snapshot-parent test nosuch",
            "snapshot-revert test",
            "snapshot-delete test",
            "snapshot-dumpxml test",
            "snapshot-create-as test \"\"",
            "snapshot-create-as test \" \"",
            "snapshot-create-as test \"a b\"",
            "snapshot-info test \"a b\"",
        ],
        &files,
        &[],
    );
}

#[test]
fn snapshot_edit_through_the_editor() {
    let virsh = side_by_side(
        &[
            "snapshot-create-as test e1 --description old",
            "snapshot-create-as test e2",
            "snapshot-edit test e1",
            "snapshot-dumpxml test e1",
            "snapshot-edit test --current",
            "snapshot-edit test nosuch",
            "snapshot-info test e1",
        ],
        &[],
        &[("EDITOR", "sed -i s/old/NEW/")],
    );
    if let Some(virsh) = virsh {
        assert!(virsh[3].contains("<description>NEW</description>"), "{}", virsh[3]);
    }
}

/// A redefine document of the test domain's running snapshot `rd1`, as `snapshot-dumpxml`
/// prints one (creation time fixed).
fn redefine_doc() -> String {
    let domain = virtplug_host::model::domain::TEST_DOMAIN_XML.replace('\n', "\n  ");
    format!(
        "<domainsnapshot>\n  <name>rd1</name>\n  <state>running</state>\n  <creationTime>1700000000</creationTime>\n  \
         <memory snapshot='internal'/>\n  <disks>\n    <disk name='vda' snapshot='internal'/>\n  </disks>\n  {domain}\n</domainsnapshot>\n"
    )
}

#[test]
fn redefine_checks() {
    let base = redefine_doc();
    let with_parent = |name: &str, parent: &str| {
        base.replace("rd1", name).replace(
            "<state>running</state>",
            &format!("<state>running</state>\n  <parent><name>{parent}</name></parent>"),
        )
    };
    let files = [
        ("redef1.xml", base.clone()),
        ("redef2.xml", with_parent("rd2", "rd1")),
        ("redef3.xml", with_parent("rd3", "nosuch")),
        (
            "redef4.xml",
            base.replace("rd1", "rd4")
                .replace("<state>running</state>", "<state>shutoff</state>")
                .replace("<memory snapshot='internal'/>", "<memory snapshot='no'/>"),
        ),
        (
            "redef5.xml",
            base.replace("rd1", "rd5")
                .replace("6695eb01-f6a4-8304-79aa-97f2502e193f", "11111111-2222-3333-4444-555555555555"),
        ),
        ("redef6.xml", base.replace("rd1", "rd6").replace("  <creationTime>1700000000</creationTime>\n", "")),
        ("redef7.xml", base.replace("rd1", "rd7").replace("  <state>running</state>\n", "")),
        ("redef8.xml", base.replace("<state>running</state>", "<state>shutoff</state>")),
        ("redef9.xml", base.replace("<vcpu placement='static'>2", "<vcpu placement='static'>4")),
    ];
    let virsh = side_by_side(
        &[
            "snapshot-create test redef1.xml --redefine",
            "snapshot-create test redef2.xml --redefine --current",
            "snapshot-current test --name",
            "snapshot-create test redef3.xml --redefine",
            "snapshot-create test redef4.xml --redefine",
            "snapshot-create test redef5.xml --redefine",
            "snapshot-create test redef6.xml --redefine",
            "snapshot-create test redef7.xml --redefine",
            "snapshot-create test redef8.xml --redefine",
            "snapshot-create test redef9.xml --redefine",
            "snapshot-create test redef1.xml --redefine",
            "snapshot-list test --tree",
            "snapshot-info test rd2",
            "snapshot-dumpxml test rd2",
            "snapshot-create test redef1.xml --redefine --no-metadata",
            "snapshot-create test redef1.xml --redefine --halt",
            "snapshot-create test redef1.xml --current",
        ],
        &files,
        &[],
    );
    // Not refused for the same wrong reason on both sides: the first two were taken.
    if let Some(virsh) = virsh {
        assert_eq!(
            virsh[..2],
            ["Domain snapshot rd1 created from 'redef1.xml'\n", "Domain snapshot rd2 created from 'redef2.xml'\n"]
        );
    }
}

/// Malformed documents: the first line of libvirt's parse error, as virsh prints it.
#[test]
fn malformed_documents() {
    let docs = [
        "<domainsnapshot>",
        "<domainsnapshot>\n\n\n",
        "<domainsnapshot>\n  <name>x</name>\n  <description>",
        "<domainsnapshot>\n  <name>x</name>\n</bogus>\n",
        "<domainsnapshot>\n  <name>a & b</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n</domainsnapshot>\ntrailing\n",
        "<domainsnapshot>\n  <name x=1>a</name>\n</domainsnapshot>\n",
        "\n\n",
        "<domainsnapshot>\n  <name>&bogus;</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name a=\"1\" a=\"2\">n</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>&#xZZ;</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <1name>x</1name>\n</domainsnapshot>\n",
        "</x>\n",
        "<domainsnapshot>\n  <name><b></name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>x</name>\n</domainsnapshot",
        "<domainsnapshot>\n  <name a=\"x>x</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n<![CDATA[ x \n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>x</name>\n<!-- unterminated \n</domainsnapshot>\n",
        "<domainsnapshot\n",
        "<domainsnapshot>\n  <na$me>x</na$me>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>x]]>y</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>&#x1F;</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>a\u{1}b</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>x</name>\n  <!-- a -- b -->\n</domainsnapshot>\n",
        "<domainsnapshot a=\"1\"b=\"2\">\n  <name>x</name>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>x</name>\n  <!\n</domainsnapshot>\n",
    ];
    let files: Vec<(String, String)> =
        docs.iter().enumerate().map(|(i, d)| (format!("m{i}.xml"), (*d).to_owned())).collect();
    let files: Vec<(&str, String)> = files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    let cmds: Vec<String> = (0..docs.len()).map(|i| format!("snapshot-create test m{i}.xml")).collect();
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    // Every one refused (virsh prints only its empty line on stdout).
    if let Some(virsh) = side_by_side(&cmds, &files, &[]) {
        assert!(virsh.iter().all(|out| out == "\n"), "{virsh:?}");
    }
}

#[test]
fn words_split_as_virsh_splits_them() {
    assert_eq!(words("a  \"b c\" \"\" d"), ["a", "b c", "", "d"]);
    assert_eq!(mask("s 1700000000 x 2026-12-07 06:08:29 +0000"), "s <EPOCH> x <TIME>");
    assert_eq!(mask("12345678901 1234567890"), "12345678901 <EPOCH>");
}
