//! `migrate-snapshots DOM --from URI_A --to URI_B [--dry-run] [--json]`: the supervised
//! migration of a snapshot hierarchy. When A is a daemon (`mock+unix://…`), daemon A runs it
//! as a task (it survives this client, and its journal lets a restarted daemon settle it) and
//! this command follows the task; otherwise it runs here, under a fresh migration id.
//!
//! Steps are reported on stderr as they change: one indicatif progress bar per step when stderr
//! is a terminal, plain `step: state[: message]` lines otherwise. Stdout gets the result line,
//! or with `--json` the final result (the finished task for a daemon, the outcome otherwise).

use std::io::{IsTerminal, Write};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use virtplug_host::{
    HostError, Registry,
    migrate::{self, Journal, Outcome, Reporter, STEPS, Side},
    remote::{self, Client},
};
use virtplug_wire::{MigrationRequest, TaskState, TaskStep};

use crate::error::{CliError, Result};

/// Where step changes go: bars on a terminal, lines otherwise.
enum Progress {
    Bars { multi: MultiProgress, bars: Vec<(String, ProgressBar)> },
    Lines { seen: Vec<(String, String)> },
}

impl Progress {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self::Lines { seen: Vec::new() };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {prefix:<12} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bars = STEPS
            .iter()
            .map(|name| {
                let bar = multi.add(
                    ProgressBar::new(1)
                        .with_style(style.clone())
                        .with_prefix((*name).to_owned())
                        .with_message("pending"),
                );
                ((*name).to_owned(), bar)
            })
            .collect();
        Self::Bars { multi, bars }
    }

    /// Step `name` is now `state` with `message`; `done`/`total` units overall.
    fn step(&mut self, name: &str, state: &str, message: &str, done: u64, total: u64) {
        match self {
            Self::Lines { seen } => {
                let key = (name.to_owned(), state.to_owned());
                if state != "pending" && !seen.contains(&key) {
                    let sep = if message.is_empty() { "" } else { ": " };
                    let _ = writeln!(std::io::stderr(), "{name}: {state}{sep}{message}");
                    seen.push(key);
                }
            }
            Self::Bars { bars, .. } => {
                let Some((_, bar)) = bars.iter().find(|(n, _)| n == name) else { return };
                if bar.is_finished() {
                    return;
                }
                bar.set_length(total.max(1));
                let text = if message.is_empty() { state.to_owned() } else { format!("{state}: {message}") };
                match state {
                    "running" => {
                        bar.set_position(done.min(total));
                        bar.enable_steady_tick(std::time::Duration::from_millis(100));
                        bar.set_message(text);
                    }
                    "done" | "skipped" => {
                        bar.set_position(total.max(1));
                        bar.finish_with_message(text);
                    }
                    "failed" => bar.abandon_with_message(text),
                    _ => bar.set_message(text),
                }
            }
        }
    }

    fn steps(&mut self, steps: &[TaskStep], done: u64, total: u64) {
        for s in steps {
            self.step(&s.name, &s.state, &s.message, done, total);
        }
    }

    fn finish(self) {
        if let Self::Bars { multi, bars } = self {
            for (_, bar) in &bars {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
            let _ = multi.clear();
        }
    }
}

/// An in-process run's reporter: progress on stderr, no journal.
struct LocalReporter {
    progress: Progress,
    done: u64,
    total: u64,
    /// The step running now, whose bar follows the unit count.
    running: Option<String>,
}

impl Reporter for LocalReporter {
    fn step(&mut self, name: &str, state: &str, message: &str) {
        self.running = (state == "running").then(|| name.to_owned());
        self.progress.step(name, state, message, self.done, self.total);
    }
    fn progress(&mut self, done: u64, total: u64) {
        (self.done, self.total) = (done, total);
        if let Some(name) = &self.running {
            self.progress.step(name, "running", "", done, total);
        }
    }
    fn journal(&mut self, _journal: &Journal) -> std::result::Result<(), HostError> {
        // In-process runs keep no journal: this command is the supervisor, B's import runs
        // synchronously under it, and a crash leaves A untouched or B complete.
        Ok(())
    }
}

fn text(dom: &str, from: &str, to: &str, o: &Outcome) -> String {
    let current = o.current.as_deref().map(|c| format!(", current {c}")).unwrap_or_default();
    if o.dry_run {
        format!("Dry run: {} snapshots of domain {dom} can move from {from} to {to}{current}", o.snapshots)
    } else {
        format!("Migrated {} snapshots of domain {dom} from {from} to {to}{current}", o.snapshots)
    }
}

fn pretty(text: serde_json::Result<String>) -> Result<String> {
    let mut s = text.map_err(|e| CliError::msg(e.to_string()))?;
    s.push('\n');
    Ok(s)
}

/// Runs the command; returns its stdout (without virsh's end-of-command newline for text).
pub fn migrate_snapshots(
    registry: &Registry,
    dom: &str,
    from: &str,
    to: &str,
    dry_run: bool,
    json: bool,
) -> Result<String> {
    if remote::parse_uri(from, false).is_some() {
        let client = Client::from_uri(from, false)?;
        let request = MigrationRequest { domain: dom.to_owned(), to: to.to_owned(), dry_run };
        let task = client.start_migration(&request).map_err(HostError::from)?;
        let mut progress = Progress::new();
        let done = client.wait_task(task.id, |t| progress.steps(&t.steps, t.done, t.total));
        progress.finish();
        let done = done.map_err(HostError::from)?;
        if json {
            return pretty(serde_json::to_string_pretty(&done));
        }
        return match (done.state, done.error) {
            (TaskState::Succeeded, _) => {
                let o: Outcome = done.result.and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
                Ok(text(dom, from, to, &o))
            }
            (_, Some(e)) => Err(CliError::msg(e.message)),
            _ => Err(CliError::msg("migration failed")),
        };
    }
    let a = Side::open(registry, from)?;
    let b = Side::open(registry, to)?;
    let mut rep = LocalReporter { progress: Progress::new(), done: 0, total: 0, running: None };
    let result = migrate::migrate(&a, &b, &migrate::new_id(), dom, dry_run, &mut rep);
    rep.progress.finish();
    let outcome = result?;
    if json {
        return pretty(serde_json::to_string_pretty(&outcome));
    }
    Ok(text(dom, from, to, &outcome))
}
