//! Runs `VBoxManage` as a subprocess: an argv vector (never a shell), `LC_ALL=C LANG=C`, stdin
//! closed, a timeout after which the process is killed, and one mapping from "what happened"
//! to a libvirt error. Nothing is ever retried here: a failed or timed-out `take` is reported,
//! never repeated (a retry could take a snapshot twice).

use std::{
    io::Read,
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use virtplug_plugin_sdk::{Error, Result, codes};

/// How to reach VBoxManage.
#[derive(Debug)]
pub struct Runner {
    /// The binary: a path, or a bare name looked up on `PATH`.
    pub program: PathBuf,
    /// Per-invocation limit.
    pub timeout: Duration,
    /// Invocations so far on this connection (for benchmarks and tests).
    pub count: AtomicU64,
}

/// One finished invocation.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The parsed error lines of a failed invocation (reference §1.5: only the first `error:` line
/// and the `code NAME (0x…)` token are relied on; context lines vary between builds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VboxError {
    /// First `VBoxManage: error:` line's text (not a Details/Context line).
    pub text: Option<String>,
    /// Symbolic HRESULT from `Details: code NAME (0x…)`.
    pub code: Option<String>,
}

/// Extracts the error lines from stderr (`VBoxManage: error:` or `VBoxManage.exe: error:`).
pub fn error_lines(stderr: &str) -> VboxError {
    let mut text = None;
    let mut code = None;
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("VBoxManage").and_then(|r| r.strip_prefix(".exe").or(Some(r))) else {
            continue;
        };
        let Some(msg) = rest.strip_prefix(": error: ") else { continue };
        if let Some(d) = msg.strip_prefix("Details: code ") {
            if code.is_none() {
                code = d.split_whitespace().next().map(str::to_owned);
            }
        } else if !msg.starts_with("Context: ") && !msg.is_empty() && text.is_none() {
            text = Some(msg.to_owned());
        }
    }
    VboxError { text, code }
}

impl Runner {
    fn unusable(&self, why: impl std::fmt::Display) -> Error {
        Error::new(
            codes::OPERATION_FAILED,
            format!(
                "VBoxManage not found or not executable: '{}' ({why}); set vboxmanage= in the URI or VIRTPLUG_VBOXMANAGE",
                self.program.display()
            ),
        )
    }

    /// Runs `VBoxManage args…` and returns what it printed, whatever its exit code. Errors only
    /// when it cannot be started or does not finish in time.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        self.count.fetch_add(1, Ordering::Relaxed);
        let spawn = || {
            Command::new(&self.program)
                .args(args)
                .env("LC_ALL", "C")
                .env("LANG", "C")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
        };
        // ETXTBSY: the binary was just written and another thread's fork still holds it open.
        // Nothing ran, so trying again cannot repeat an operation.
        let mut attempt = spawn();
        for _ in 0..5 {
            match &attempt {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    thread::sleep(Duration::from_millis(20));
                    attempt = spawn();
                }
                _ => break,
            }
        }
        let mut child = attempt.map_err(|e| self.unusable(e))?;
        let (closed_tx, closed_rx) = std::sync::mpsc::channel::<()>();
        let reader = |pipe: Option<Box<dyn Read + Send>>, closed: std::sync::mpsc::Sender<()>| {
            thread::spawn(move || {
                let mut buf = Vec::new();
                if let Some(mut p) = pipe {
                    let _ = p.read_to_end(&mut buf);
                }
                let _ = closed.send(());
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let out = reader(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>), closed_tx.clone());
        let err = reader(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>), closed_tx);
        let start = Instant::now();
        // Both pipes closing is how a finished VBoxManage shows itself: wait for that without
        // polling (a poll interval would add up to its length to every call), bounded by the
        // timeout; then reap below.
        for _ in 0..2 {
            if closed_rx.recv_timeout(self.timeout.saturating_sub(start.elapsed())).is_err() {
                break;
            }
        }
        let mut pause = Duration::from_micros(50);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if start.elapsed() >= self.timeout => {
                    // Kill and reap; the reader threads end when the pipes close.
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::new(
                        codes::OPERATION_FAILED,
                        format!(
                            "VBoxManage {} did not finish within {} s and was killed",
                            args.first().copied().unwrap_or(""),
                            self.timeout.as_secs_f32()
                        ),
                    ));
                }
                Ok(None) => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(e) => return Err(self.unusable(e)),
            }
        };
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        let code = status.code().unwrap_or(-1);
        if code == 126 || code == 127 {
            // What a shell or exec wrapper reports for "not executable" / "not found" (Vagrant
            // maps 126 the same way).
            return Err(self.unusable(format!("exit status {code}")));
        }
        Ok(Output { code, stdout, stderr })
    }

    /// Runs and requires success: exit 0 and no `error:` line on stderr (Packer and Vagrant
    /// treat either as failure). Failures are mapped by [`map_failure`].
    pub fn check(&self, args: &[&str]) -> Result<Output> {
        let out = self.run(args)?;
        let errors = error_lines(&out.stderr);
        if out.code == 0 && errors.text.is_none() {
            return Ok(out);
        }
        Err(map_failure(args, &out, &errors))
    }
}

/// A failed invocation as a libvirt error: lookups that found nothing → `NO_DOMAIN` /
/// `NO_DOMAIN_SNAPSHOT`; VirtualBox's state refusals → `OPERATION_INVALID` with VirtualBox's own
/// sentence; invalid arguments → `INVALID_ARG`; anything else → `OPERATION_FAILED` naming the
/// command, the exit status and the HRESULT.
pub fn map_failure(args: &[&str], out: &Output, e: &VboxError) -> Error {
    let fallback = || {
        out.stderr
            .lines()
            .chain(out.stdout.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message")
            .to_owned()
    };
    let text = e.text.clone().unwrap_or_else(fallback);
    let code = e.code.as_deref().unwrap_or("");
    if text.starts_with("Could not find a registered machine") {
        return Error::new(codes::NO_DOMAIN, text);
    }
    if text.starts_with("Could not find a snapshot")
        || (text == "This machine does not have any snapshots" && e.text.is_some())
    {
        return Error::new(codes::NO_DOMAIN_SNAPSHOT, text);
    }
    match code {
        "VBOX_E_INVALID_VM_STATE" | "VBOX_E_INVALID_OBJECT_STATE" => Error::operation_invalid(text),
        "E_INVALIDARG" | "NS_ERROR_INVALID_ARG" => Error::invalid_arg(text),
        _ => {
            let cmd: Vec<&str> = args.iter().take(3).copied().collect();
            let with_code = if code.is_empty() { String::new() } else { format!(" ({code})") };
            Error::new(
                codes::OPERATION_FAILED,
                format!("VBoxManage {} exited with status {}: {text}{with_code}", cmd.join(" "), out.code),
            )
        }
    }
}
