//! `migrate-snapshots DOM --from URI_A --to URI_B [--dry-run] [--json]`: the supervised
//! migration of a snapshot hierarchy. When A is a daemon (`mock+unix://…`), daemon A runs it
//! as a task (it survives this client) and this command follows the task; otherwise it runs
//! here. Steps are reported on stderr as they change; stdout gets the result (or the final task
//! as JSON with `--json`).
//!
//! Wiring (CLI owner): `pub mod migrate;` in commands/mod.rs, and a clap subcommand
//! `MigrateSnapshots { domain, #[arg(long)] from, #[arg(long)] to, #[arg(long)] dry_run,
//! #[arg(long)] json }` dispatching to [`migrate_snapshots`] with the registry.

use std::io::Write;

use virtplug_host::{
    HostError, Registry,
    remote::{
        self, Client,
        migrate::{self, Journal, Outcome, Reporter, Side},
        wire::{MigrationRequest, TaskJson, TaskState},
    },
};

use crate::error::{CliError, Result};

/// Prints step changes to stderr.
struct StderrReporter;

impl Reporter for StderrReporter {
    fn step(&mut self, name: &str, state: &str, message: &str) {
        let _ = writeln!(std::io::stderr(), "{name}: {state}{}{message}", if message.is_empty() { "" } else { ": " });
    }
    fn progress(&mut self, _done: u64, _total: u64) {}
    fn journal(&mut self, _journal: &Journal) -> std::result::Result<(), HostError> {
        // In-process runs keep no journal: the command is the supervisor and a crash leaves
        // the same states as a daemon's (A untouched or B complete).
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

/// Runs the command; returns its stdout.
pub fn migrate_snapshots(registry: &Registry, dom: &str, from: &str, to: &str, dry_run: bool, json: bool) -> Result<String> {
    if remote::parse_uri(from, false).is_some() {
        let client = Client::from_uri(from, false)?;
        let request = MigrationRequest { domain: dom.to_owned(), to: to.to_owned(), dry_run };
        let task = client.start_migration(&request).map_err(HostError::Driver)?;
        let mut last: Vec<(String, String)> = Vec::new();
        let done: TaskJson = client
            .wait_task(task.id, |t| {
                for s in &t.steps {
                    let key = (s.name.clone(), s.state.clone());
                    if s.state != "pending" && !last.contains(&key) {
                        let _ = writeln!(std::io::stderr(), "{}: {}{}{}", s.name, s.state, if s.message.is_empty() { "" } else { ": " }, s.message);
                        last.push(key);
                    }
                }
            })
            .map_err(HostError::Driver)?;
        if json {
            return serde_json::to_string_pretty(&done).map_err(|e| CliError::msg(e.to_string()));
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
    let outcome = migrate::migrate(&a, &b, dom, dry_run, &mut StderrReporter)?;
    if json {
        return serde_json::to_string_pretty(&outcome).map_err(|e| CliError::msg(e.to_string()));
    }
    Ok(text(dom, from, to, &outcome))
}
