//! The `virtplug` binary against hostile surroundings: endless or oversized input files, a
//! plugin that panics, a reader that closes stdout early. Each ends in one line (or none) and
//! a definite exit status; nothing runs out of memory.
//!
//! The file-read texts are virsh 9.0's (`virFileReadAll` with `VSH_MAX_XML_FILE`, 10 MiB).
//! Cases that run a command need the mock plugin (or the panicky fixture) beside the binary;
//! they fail under `CI=true` without it and are skipped with one note otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test fails loudly on an unexpected value")]

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use virtplug_cli::error::{MAX_BUNDLE_FILE_BYTES, MAX_XML_FILE_BYTES, read_bounded, read_limited};
use virtplug_test_support::{MOCK, fixture, require};

use super::{Out, output};

const BIN: &str = env!("CARGO_BIN_EXE_virtplug");

/// `virtplug -c mock://<dir>/state ARGS` in a clean environment.
fn virtplug(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("-c")
        .arg(format!("mock://{}", dir.join("state").display()))
        .args(args)
        .env_remove("VIRTPLUG_PLUGIN_DIR")
        .env_remove("VIRTPLUG_CONFIG")
        .env_remove("VIRTPLUG_DEFAULT_URI")
        .env_remove("VIRTPLUG_PLUGIN_LOG")
        .env("XDG_CONFIG_HOME", dir)
        .env("HOME", dir)
        .stdin(Stdio::null());
    cmd
}

fn failed(stderr: &str) -> Out {
    Out { code: 1, stderr: stderr.to_owned(), stdout: "\n".to_owned() }
}

#[test]
fn reads_stop_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, len: usize| {
        let path = dir.path().join(name);
        std::fs::write(&path, "x".repeat(len)).unwrap();
        path.display().to_string()
    };
    let (at, over) = (file("at", 5), file("over", 6));
    assert_eq!(read_limited(&at, 5).map_err(|e| e.lines()), Ok("xxxxx".to_owned()));
    assert_eq!(
        read_limited(&over, 5).map_err(|e| e.lines()),
        Err(vec![format!("Failed to read file '{over}': Value too large for defined data type")])
    );
    // An endless reader is cut after limit + 1 bytes.
    assert_eq!(
        read_bounded(std::io::repeat(b'<'), "/dev/stdin", 1 << 20).map_err(|e| e.lines()),
        Err(vec!["Failed to read file '/dev/stdin': Value too large for defined data type".to_owned()])
    );
    assert_eq!(
        read_limited(&dir.path().display().to_string(), 5).map_err(|e| e.lines()),
        Err(vec![format!("Failed to read file '{}': Is a directory", dir.path().display())])
    );
    let latin1 = dir.path().join("latin1");
    std::fs::write(&latin1, b"<a>\xe9</a>").unwrap();
    let latin1 = latin1.display().to_string();
    assert_eq!(
        read_limited(&latin1, 100).map_err(|e| e.lines()),
        Err(vec![format!("Failed to read file '{latin1}': Invalid or incomplete multibyte or wide character")])
    );
    assert_eq!((MAX_XML_FILE_BYTES, MAX_BUNDLE_FILE_BYTES), (10 << 20, 512 << 20));
}

#[test]
fn endless_and_oversized_xml_files_are_refused_in_one_line() {
    require!(MOCK.require("virtplug cases that need the mock"));
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.xml");
    std::fs::write(&big, vec![b' '; (MAX_XML_FILE_BYTES + 1) as usize]).unwrap();
    let big = big.display().to_string();
    let cases: &[(&[&str], String)] = &[
        (
            &["snapshot-create", "test", "--xmlfile", "/dev/zero"],
            "error: Failed to read file '/dev/zero': Value too large for defined data type\n".to_owned(),
        ),
        (
            &["define", "/dev/zero"],
            "error: Failed to read file '/dev/zero': Value too large for defined data type\n".to_owned(),
        ),
        (
            &["snapshot-create", "test", &big],
            format!("error: Failed to read file '{big}': Value too large for defined data type\n"),
        ),
        (
            &["snapshot-create", "test", "--xmlfile", "/tmp"],
            "error: Failed to read file '/tmp': Is a directory\n".to_owned(),
        ),
        // virsh reads "-" as a file name too.
        (&["snapshot-create", "test", "-"], "error: Failed to open file '-': No such file or directory\n".to_owned()),
    ];
    for (args, stderr) in cases {
        assert_eq!(output(virtplug(dir.path(), args).output().unwrap()), failed(stderr), "{args:?}");
    }
    // A bundle larger than its limit (a sparse file: nothing is written or read).
    let huge = dir.path().join("huge.bundle");
    std::fs::File::create(&huge).unwrap().set_len(MAX_BUNDLE_FILE_BYTES + 1).unwrap();
    let huge = huge.display().to_string();
    assert_eq!(
        output(virtplug(dir.path(), &["snapshot-import", "test", &huge]).output().unwrap()),
        failed(&format!("error: Failed to read file '{huge}': Value too large for defined data type\n"))
    );
    // Standard input without end, through /dev/stdin.
    let mut child = virtplug(dir.path(), &["snapshot-create", "test", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = vec![b' '; 1 << 16];
        // Ends when virtplug stops reading and closes the pipe.
        while stdin.write_all(&chunk).is_ok() {}
    });
    let out = output(child.wait_with_output().unwrap());
    writer.join().unwrap();
    assert_eq!(out, failed("error: Failed to read file '/dev/stdin': Value too large for defined data type\n"));
}

/// A panic inside a plugin is the one error line on stderr — no panic message, no backtrace —
/// and its record (location, backtrace) goes to stderr only under VIRTPLUG_PLUGIN_LOG=stderr.
#[test]
fn a_plugin_panic_is_one_error_line() {
    let so = require!(fixture("panicky").require("virtplug cases that need the panicky fixture"));
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(so, plugins.join("libpanicky.so")).unwrap();
    let run = |log: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.args(["-c", "panicky:///", "snapshot-create", "test"])
            .env("VIRTPLUG_PLUGIN_DIR", &plugins)
            .env("RUST_BACKTRACE", "1")
            .env_remove("VIRTPLUG_PLUGIN_LOG")
            .stdin(Stdio::null());
        if let Some(log) = log {
            cmd.env("VIRTPLUG_PLUGIN_LOG", log);
        }
        output(cmd.output().unwrap())
    };
    let line = "error: internal error: plugin 'panicky' panicked in snapshot_create: driver bug in snapshot_create\n";
    assert_eq!(run(None), failed(line));
    let logged = run(Some("stderr"));
    let record = "ERROR virtplug plugin 'panicky' panicked in snapshot_create at tests/fixtures/panicky/src/lib.rs:";
    assert!(logged.stderr.starts_with(record), "{}", logged.stderr);
    assert!(logged.stderr.contains(": driver bug in snapshot_create\nstack backtrace:\n"), "{}", logged.stderr);
    assert!(logged.stderr.ends_with(&format!("\n{line}")), "{}", logged.stderr);
    assert_eq!((logged.code, logged.stdout.as_str()), (1, "\n"));
}

/// `virtplug … | head`: a reader that went away ends the command quietly with status 0, as
/// virsh does with SIGPIPE ignored.
#[test]
fn a_closed_stdout_ends_quietly() {
    require!(MOCK.require("virtplug cases that need the mock"));
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        output(virtplug(dir.path(), args).stdout(writer).output().unwrap())
    };
    let quiet = Out { code: 0, stderr: String::new(), stdout: String::new() };
    assert_eq!(run(&["snapshot-create-as", "test", "s1"]), quiet);
    assert_eq!(run(&["snapshot-list", "test"]), quiet);
    assert_eq!(run(&["snapshot-dumpxml", "test", "s1"]), quiet);
    // A failure still says why on stderr.
    let failure = run(&["snapshot-list", "nosuch"]);
    assert_eq!(
        failure,
        Out { code: 1, stderr: "error: failed to get domain 'nosuch'\n".to_owned(), stdout: String::new() }
    );
}
