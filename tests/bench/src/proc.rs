//! Running a child process and reading its wall time.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// One finished child: wall time, stdout.
pub struct Run {
    /// Wall-clock time from spawn to exit.
    pub wall: Duration,
    /// Captured stdout.
    pub stdout: String,
}

/// Runs `cmd` to completion, failing on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<Run> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
    let status = child.wait().with_context(|| format!("waiting for {cmd:?}"))?;
    let wall = start.elapsed();
    let stdout = reader.join().unwrap_or_default();
    if !status.success() {
        bail!("{cmd:?} failed ({status}): {err}");
    }
    Ok(Run { wall, stdout })
}

/// The median of `samples` (sorted in place).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
