//! The CLI's integration tests, one test binary (linking `virtplug_cli` once instead of eight
//! times): each module is one former test file; `cargo test -p virtplug-cli --test cli <module>::`
//! runs one of them.

mod bundle_bytes;
mod edit_job;
mod hostile;
mod migrate;
mod misuse;
mod options;
mod output;
mod session;
mod virsh_side_by_side;

/// A finished `virtplug` run: exit code and both streams (compared whole by the tests).
#[derive(Debug, PartialEq, Eq)]
struct Out {
    code: i32,
    stderr: String,
    stdout: String,
}

/// The run's [`Out`]; its streams must be UTF-8.
fn output(out: std::process::Output) -> Out {
    Out {
        code: out.status.code().unwrap_or(-1),
        #[allow(clippy::unwrap_used, reason = "a test fails loudly on non-UTF-8 output")]
        stderr: String::from_utf8(out.stderr).unwrap(),
        #[allow(clippy::unwrap_used, reason = "a test fails loudly on non-UTF-8 output")]
        stdout: String::from_utf8(out.stdout).unwrap(),
    }
}
