//! Running cases: the parent re-executes itself once per case (a child process with a timeout),
//! so an abort, a segfault or a hang inside the plugin becomes a reported failure; the child
//! loads the plugin, runs exactly one case and writes its verdict to a file.

use std::{
    io::Write,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use virtplug_host::PluginInfo;
use virtplug_plugin_api::{
    Capabilities,
    abi_stable::std_types::{RString, RVec},
};

use crate::{
    case::{Level, Outcome},
    cases,
    ctx::{CannotRun, Ctx, Options},
};

/// The pseudo-case that loads the plugin and opens the URI before anything else runs.
pub const PREFLIGHT: &str = "@preflight";

/// What the preflight child reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Preflight {
    /// Loaded and opened.
    Ok {
        /// The plugin's self-description.
        info: InfoRecord,
    },
    /// Could not run (one line).
    Refused {
        /// Why.
        reason: String,
    },
}

/// `PluginInfo` as plain data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs, reason = "the fields mirror PluginInfo and Capabilities one to one")]
pub struct InfoRecord {
    pub name: String,
    pub version: String,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub schemes: Vec<String>,
    pub ops: u64,
    pub caps: [u32; 8],
}

impl InfoRecord {
    fn from_info(i: &PluginInfo) -> Self {
        let c = &i.caps;
        Self {
            name: i.name.to_string(),
            version: i.version.to_string(),
            abi_major: i.abi_major,
            abi_minor: i.abi_minor,
            schemes: i.schemes.iter().map(|s| s.to_string()).collect(),
            ops: i.ops,
            caps: [
                c.snapshot_create,
                c.snapshot_revert,
                c.snapshot_delete,
                c.snapshot_list,
                c.snapshot_xml,
                c.snapshot_import,
                c.domain_undefine,
                c.domain_xml,
            ],
        }
    }

    /// Back to the ABI record.
    pub fn to_info(&self) -> PluginInfo {
        let [
            snapshot_create,
            snapshot_revert,
            snapshot_delete,
            snapshot_list,
            snapshot_xml,
            snapshot_import,
            domain_undefine,
            domain_xml,
        ] = self.caps;
        PluginInfo {
            name: self.name.as_str().into(),
            version: self.version.as_str().into(),
            abi_major: self.abi_major,
            abi_minor: self.abi_minor,
            schemes: self.schemes.iter().map(|s| RString::from(s.as_str())).collect::<RVec<_>>(),
            ops: self.ops,
            caps: Capabilities {
                snapshot_create,
                snapshot_revert,
                snapshot_delete,
                snapshot_list,
                snapshot_xml,
                snapshot_import,
                domain_undefine,
                domain_xml,
            },
        }
    }
}

/// Redirects fd 1 into a file for the lifetime of the value; [`StdoutCapture::finish`] returns
/// what was written.
struct StdoutCapture {
    saved: i32,
    file: std::fs::File,
}

impl StdoutCapture {
    fn start(path: &Path) -> Option<Self> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(path).ok()?;
        let _ = std::io::stdout().flush();
        // SAFETY: dup/dup2 on valid descriptors (1 and a file we own); restored in finish().
        let saved = unsafe { libc::dup(1) };
        if saved < 0 {
            return None;
        }
        // SAFETY: as above.
        unsafe { libc::dup2(file.as_raw_fd(), 1) };
        Some(Self { saved, file })
    }

    fn finish(self) -> Vec<u8> {
        use std::io::{Read, Seek};
        let _ = std::io::stdout().flush();
        // SAFETY: restores the descriptor saved in start().
        unsafe {
            libc::dup2(self.saved, 1);
            libc::close(self.saved);
        }
        let mut file = self.file;
        let mut out = Vec::new();
        let _ = file.seek(std::io::SeekFrom::Start(0));
        let _ = file.read_to_end(&mut out);
        out
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) {
    if let Ok(text) = serde_json::to_string(value) {
        let _ = std::fs::write(path, text);
    }
}

/// The child's side: run one case (or the preflight) and write the verdict to `result`.
/// Returns the process exit code (0: a verdict was written).
pub fn run_one(opts: &Options, case_id: &str, result: &Path) -> i32 {
    crate::trace::install(crate::trace::op_file(result));
    let capture_path = result.with_extension("stdout");
    let capture = StdoutCapture::start(&capture_path);
    if case_id == PREFLIGHT {
        let verdict = match Ctx::open(opts) {
            Ok(ctx) => Preflight::Ok { info: InfoRecord::from_info(&ctx.info) },
            Err(CannotRun(reason)) => Preflight::Refused { reason },
        };
        if let Some(c) = capture {
            c.finish();
        }
        write_json(result, &verdict);
        return 0;
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| run_case(opts, case_id))).unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Outcome::Fail {
            message: format!("the case panicked in the host or the suite: {what}"),
            expected: None,
            got: None,
        }
    });
    let printed = capture.map(StdoutCapture::finish).unwrap_or_default();
    let _ = std::fs::remove_file(&capture_path);
    let outcome = if case_id == "static.no_stdout" && !printed.is_empty() && !matches!(outcome, Outcome::Fail { .. }) {
        let text = String::from_utf8_lossy(&printed);
        let first: String = text.chars().take(120).collect();
        Outcome::fail(
            "the plugin wrote to stdout (which belongs to the host's user)",
            "no output",
            format!("{} bytes: {first:?}", printed.len()),
        )
    } else {
        outcome
    };
    write_json(result, &outcome);
    0
}

fn run_case(opts: &Options, case_id: &str) -> Outcome {
    let ctx = match Ctx::open(opts) {
        Ok(c) => c,
        Err(CannotRun(reason)) => {
            return Outcome::Fail {
                message: format!("could not open the plugin: {reason}"),
                expected: None,
                got: None,
            };
        }
    };
    let all = cases::all(&ctx.info);
    let Some(case) = all.iter().find(|c| c.id == case_id) else {
        return Outcome::Skip { reason: format!("no case {case_id} for this plugin") };
    };
    if let Some(reason) = skip_reason(case, &ctx.info, opts) {
        return Outcome::Skip { reason };
    }
    match (case.run)(&ctx) {
        Ok(o) => o,
        Err(f) => f.into(),
    }
}

fn skip_reason(case: &crate::case::Case, info: &PluginInfo, opts: &Options) -> Option<String> {
    if let Some(m) = case.needs.missing(info) {
        return Some(m);
    }
    if case.needs.probe && opts.probe.is_none() {
        return Some(NO_PROBE.to_owned());
    }
    if case.needs.touches_domain && opts.live {
        return Some(format!("--live: changes the state of domain '{}', which the suite did not create", opts.domain));
    }
    None
}

/// The skip reason of a `--probe` case when no hook was given.
pub const NO_PROBE: &str = "no --probe hook given: only the plugin's author can say what the hypervisor holds (run as `CMD <uri> <domain> <snapshot>`, printing present or absent)";

/// Why a run did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The plugin could not be loaded or opened (one line).
    CannotRun(String),
    /// A part of the `--only` pattern matches no case id (one line, with a suggestion).
    UnknownCase(String),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CannotRun(reason) => write!(f, "cannot run: {reason}"),
            Self::UnknownCase(text) => f.write_str(text),
        }
    }
}

/// What the parent learnt from one child.
struct ChildRun {
    end: ChildEnd,
    verdict: Option<String>,
    /// The last three non-empty lines of its stderr, joined.
    stderr_tail: String,
    /// Its whole stderr.
    stderr: String,
    /// The last operation it started.
    op: Option<String>,
}

/// The first panic a plugin's guard logged (`VIRTPLUG_PLUGIN_LOG=stderr`) in a child's stderr.
fn first_panic(stderr: &str) -> Option<&str> {
    stderr.lines().find(|l| l.starts_with("ERROR virtplug plugin '") && l.contains("' panicked in "))
}

/// A failure that only says "poisoned by an earlier panic" is the echo of a panic the case did
/// not report (a best-effort call that swallowed it): name that panic instead, so one panic
/// reads as one failure with its message.
fn name_the_panic(outcome: Outcome, stderr: &str) -> Outcome {
    let Outcome::Fail { message, expected, got } = outcome else { return outcome };
    let poisoned = |t: &Option<String>| t.as_deref().is_some_and(|t| t.contains("poisoned by an earlier panic"));
    match first_panic(stderr) {
        Some(line) if poisoned(&got) || message.contains("poisoned by an earlier panic") => {
            let record = line.trim_start_matches("ERROR virtplug ");
            Outcome::Fail {
                message: format!("{record} (later calls were refused: the connection is poisoned)"),
                expected: Some("no panic".to_owned()),
                got: got.or(expected),
            }
        }
        _ => Outcome::Fail { message, expected, got },
    }
}

/// One case's line in the report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseReport {
    /// Case id.
    pub id: String,
    /// What it checks.
    pub title: String,
    /// Level.
    pub level: Level,
    /// Verdict.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall time of the child, in milliseconds.
    pub millis: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// The plugin file.
    pub plugin: String,
    /// The URI.
    pub uri: String,
    /// `name version`.
    pub plugin_name: String,
    /// Plugin version.
    pub plugin_version: String,
    /// Cases in run order.
    pub cases: Vec<CaseReport>,
    /// Time spent on static cases, ms.
    pub static_millis: u64,
    /// Time spent on behavioural cases, ms.
    pub behaviour_millis: u64,
    /// Whole run, ms.
    pub total_millis: u64,
}

impl Report {
    /// Counts (pass, fail, skip).
    pub fn counts(&self) -> (usize, usize, usize) {
        let mut c = (0, 0, 0);
        for r in &self.cases {
            match r.outcome {
                Outcome::Pass { .. } => c.0 += 1,
                Outcome::Fail { .. } => c.1 += 1,
                Outcome::Skip { .. } => c.2 += 1,
            }
        }
        c
    }

    /// The case with `id`.
    pub fn case(&self, id: &str) -> Option<&CaseReport> {
        self.cases.iter().find(|c| c.id == id)
    }
}

/// How to start one child for a case: given the case id and the result file, a command.
pub type Spawner = Box<dyn Fn(&str, &Path) -> Command>;

/// Called after each case with its report (the CLI prints progress with it).
pub type Progress = Box<dyn Fn(&CaseReport)>;

/// Parent-side settings.
pub struct Runner {
    /// Plugin, URI, domain, live.
    pub opts: Options,
    /// Only cases whose id matches (see [`cases::matches`]).
    pub only: Option<String>,
    /// Per-case timeout.
    pub timeout: Duration,
    /// Starts a child.
    pub spawn: Spawner,
    /// Called after each case (progress output).
    pub progress: Option<Progress>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("opts", &self.opts).field("only", &self.only).finish_non_exhaustive()
    }
}

enum ChildEnd {
    Exited(ExitStatus),
    TimedOut,
}

fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        let name = match sig {
            libc::SIGABRT => "SIGABRT",
            libc::SIGSEGV => "SIGSEGV",
            libc::SIGBUS => "SIGBUS",
            libc::SIGILL => "SIGILL",
            libc::SIGKILL => "SIGKILL",
            libc::SIGFPE => "SIGFPE",
            _ => "signal",
        };
        format!("killed by {name} ({sig})")
    } else {
        format!("exited with code {}", status.code().unwrap_or(-1))
    }
}

impl Runner {
    fn child(&self, case_id: &str, dir: &Path) -> ChildRun {
        let result = dir.join(format!("{}.json", case_id.replace(['/', '@'], "_")));
        let stderr_path = result.with_extension("stderr");
        let _ = std::fs::remove_file(&result);
        let _ = std::fs::remove_file(crate::trace::op_file(&result));
        let mut cmd = (self.spawn)(case_id, &result);
        // The SDK's guard then logs each caught panic with its message (see `name_the_panic`).
        cmd.env("VIRTPLUG_PLUGIN_LOG", "stderr");
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        if let Ok(f) = std::fs::File::create(&stderr_path) {
            cmd.stderr(Stdio::from(f));
        }
        let end = match cmd.spawn() {
            Err(e) => {
                let why = format!("cannot start the child process: {e}");
                return ChildRun {
                    end: ChildEnd::TimedOut,
                    verdict: None,
                    stderr_tail: why.clone(),
                    stderr: why,
                    op: None,
                };
            }
            Ok(mut child) => {
                let deadline = Instant::now() + self.timeout;
                let mut sleep = Duration::from_millis(1);
                loop {
                    match child.try_wait() {
                        Ok(Some(status)) => break ChildEnd::Exited(status),
                        Ok(None) if Instant::now() >= deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break ChildEnd::TimedOut;
                        }
                        Ok(None) => {
                            std::thread::sleep(sleep);
                            sleep = (sleep * 2).min(Duration::from_millis(20));
                        }
                        Err(_) => break ChildEnd::TimedOut,
                    }
                }
            }
        };
        let verdict = std::fs::read_to_string(&result).ok();
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let stderr_tail = tail[tail.len().saturating_sub(3)..].join(" | ");
        let op = crate::trace::last(&result);
        let _ = std::fs::remove_file(crate::trace::op_file(&result));
        ChildRun { end, verdict, stderr_tail, stderr, op }
    }

    /// Loads the plugin and opens the URI in a child: its info, or the one-line reason the
    /// suite cannot run.
    pub fn preflight(&self, dir: &Path) -> Result<PluginInfo, String> {
        let ChildRun { end, verdict, stderr_tail: stderr, .. } = self.child(PREFLIGHT, dir);
        match (verdict.and_then(|v| serde_json::from_str::<Preflight>(&v).ok()), end) {
            (Some(Preflight::Ok { info }), _) => Ok(info.to_info()),
            (Some(Preflight::Refused { reason }), _) => Err(reason),
            (None, ChildEnd::TimedOut) => Err(format!(
                "plugin {} did not finish loading and opening {} within {} s (it hangs in open())",
                self.opts.plugin.display(),
                self.opts.uri,
                self.timeout.as_secs()
            )),
            (None, ChildEnd::Exited(status)) => Err(format!(
                "loading plugin {} crashed the process ({}){}",
                self.opts.plugin.display(),
                describe_status(&status),
                if stderr.is_empty() { String::new() } else { format!(": {stderr}") }
            )),
        }
    }

    /// Runs every applicable case. `Err` is the one-line reason the suite could not run.
    pub fn run(&self) -> Result<Report, RunError> {
        let t0 = Instant::now();
        let dir = std::env::temp_dir().join(format!("vpconf-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| RunError::CannotRun(format!("cannot create {}: {e}", dir.display())))?;
        let info = self.preflight(&dir);
        let info = match info {
            Ok(i) => i,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(RunError::CannotRun(e));
            }
        };
        let all = cases::all(&info);
        if let Some(pattern) = &self.only {
            let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
            if let Err(e) = cases::check_only(pattern, &ids) {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(RunError::UnknownCase(e));
            }
        }
        let mut reports = Vec::new();
        let (mut static_ms, mut behaviour_ms) = (0u64, 0u64);
        for case in all {
            if let Some(p) = &self.only
                && !cases::matches(&case.id, p)
            {
                continue;
            }
            let t = Instant::now();
            let outcome = if let Some(reason) = skip_reason(&case, &info, &self.opts) {
                Outcome::Skip { reason }
            } else {
                let ChildRun { end, verdict, stderr_tail, stderr: whole, op } = self.child(&case.id, &dir);
                let during = op.as_deref().map(|op| format!(" in {op}")).unwrap_or_default();
                match (verdict.and_then(|v| serde_json::from_str::<Outcome>(&v).ok()), end) {
                    (Some(o), _) => name_the_panic(o, &whole),
                    (None, ChildEnd::TimedOut) => Outcome::fail(
                        format!(
                            "the case did not finish within {} s: the plugin hangs{during}",
                            self.timeout.as_secs()
                        ),
                        "an answer",
                        "no answer (child killed)",
                    ),
                    (None, ChildEnd::Exited(status)) => {
                        let got = format!(
                            "{}{during}{}",
                            describe_status(&status),
                            if stderr_tail.is_empty() { String::new() } else { format!(": {stderr_tail}") }
                        );
                        match case.on_crash {
                            Some(diagnosis) => Outcome::fail(diagnosis, "an error returned to the host", got),
                            None => Outcome::fail("the plugin crashed the process", "an answer", got),
                        }
                    }
                }
            };
            let millis = t.elapsed().as_millis() as u64;
            match case.level {
                Level::Static => static_ms += millis,
                Level::Behaviour => behaviour_ms += millis,
            }
            let report =
                CaseReport { id: case.id.clone(), title: case.title.clone(), level: case.level, outcome, millis };
            if let Some(p) = &self.progress {
                p(&report);
            }
            reports.push(report);
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(Report {
            plugin: self.opts.plugin.display().to_string(),
            uri: self.opts.uri.clone(),
            plugin_name: info.name.to_string(),
            plugin_version: info.version.to_string(),
            cases: reports,
            static_millis: static_ms,
            behaviour_millis: behaviour_ms,
            total_millis: t0.elapsed().as_millis() as u64,
        })
    }
}

/// A spawner that re-executes `exe` with `--run-one CASE` and the options (the CLI's mode).
pub fn cli_spawner(exe: PathBuf, opts: &Options) -> Spawner {
    let opts = opts.clone();
    Box::new(move |case, result| {
        let mut cmd = Command::new(&exe);
        cmd.arg("--run-one").arg(case).arg("--result-file").arg(result);
        cmd.arg("--plugin").arg(&opts.plugin).arg("--uri").arg(&opts.uri).arg("--domain").arg(&opts.domain);
        if opts.live {
            cmd.arg("--live");
        }
        if let Some(probe) = &opts.probe {
            cmd.arg("--probe").arg(probe);
        }
        cmd
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POISONED: &str = "VIR_ERR_INTERNAL_ERROR (1): internal error: plugin 'toy' is poisoned by an earlier panic and refuses further calls";

    #[test]
    fn a_poisoned_failure_names_the_panic_that_poisoned_the_connection() {
        let stderr = "noise\nERROR virtplug plugin 'toy' panicked in snapshot_delete at src/lib.rs:9:5: index out of bounds\n\
                      ERROR virtplug plugin 'toy' panicked in snapshot_list at src/lib.rs:1:1: later\n";
        let failed = Outcome::fail("snapshot_list failed", "success", POISONED);
        assert_eq!(
            name_the_panic(failed, stderr),
            Outcome::Fail {
                message: "plugin 'toy' panicked in snapshot_delete at src/lib.rs:9:5: index out of bounds (later calls were refused: the connection is poisoned)".into(),
                expected: Some("no panic".into()),
                got: Some(POISONED.into()),
            }
        );
        // Without a logged panic, or for any other failure, the outcome is left as it was.
        let failed = Outcome::fail("snapshot_list failed", "success", POISONED);
        assert_eq!(name_the_panic(failed.clone(), "noise\n"), failed);
        let other = Outcome::fail("wrong parent", "a", "b");
        assert_eq!(name_the_panic(other.clone(), stderr), other);
        assert_eq!(name_the_panic(Outcome::pass(), stderr), Outcome::pass());
    }
}
