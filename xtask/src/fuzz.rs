//! `cargo xtask fuzz [target…]`: a longer hunt with the stable fuzz driver (tests/fuzz) than the
//! one `cargo test` runs: a release build and 100,000 mutations per target unless `FUZZ_ITERS`
//! says otherwise; `FUZZ_SEED`, `FUZZ_JOBS` and the other `FUZZ_*` variables pass through.
//! Targets are named as arguments (default: all). Failing inputs land in tests/fuzz/artifacts/.

use std::process::Command;

use anyhow::Result;

/// Mutations per target for a hunt (the test run's default is 4,000).
const HUNT_ITERS: &str = "100000";

/// Runs the replay driver in release mode.
pub fn run(targets: &[String]) -> Result<()> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(crate::repo_root());
    cmd.args(["test", "--release", "-p", "virtplug-fuzz", "--test", "replay"]);
    if std::env::var_os("FUZZ_ITERS").is_none() {
        cmd.env("FUZZ_ITERS", HUNT_ITERS);
    }
    if !targets.is_empty() {
        cmd.env("FUZZ_TARGETS", targets.join(","));
    }
    crate::run(cmd)
}
