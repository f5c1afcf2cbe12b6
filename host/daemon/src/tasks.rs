//! Long operations as tasks: an id, steps, progress and a final result or error, pollable at
//! `/v1/tasks/{id}` and published on the event stream (`task.progress`, `task.finished`). A task
//! runs on the blocking pool independently of the request that started it, so a client that
//! disconnects does not stop it. Migration tasks persist a journal under the state directory,
//! which a restarted daemon uses to finish or roll back ([`spawn_recovery_of`], one task per
//! journal through [`recover_journal`], retrying while a destination is down).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use virtplug_host::{
    HostError,
    remote::{
        migrate::{self, Journal, Reporter, Side},
        wire::{TaskJson, TaskState, TaskStep},
    },
};

use crate::{error::ApiError, events::EventLog, state::AppState};

/// Every task of this daemon run.
#[derive(Debug, Default)]
pub struct Tasks {
    inner: Mutex<(u64, BTreeMap<u64, TaskJson>)>,
}

impl Tasks {
    /// Registers a running task with `steps`.
    pub fn start(&self, kind: &str, steps: &[&str], events: &EventLog, uri: &str, domain: Option<&str>) -> TaskJson {
        let task = match self.inner.lock() {
            Ok(mut inner) => {
                inner.0 += 1;
                let task = TaskJson {
                    id: inner.0,
                    kind: kind.to_owned(),
                    state: TaskState::Running,
                    done: 0,
                    total: 0,
                    steps: steps
                        .iter()
                        .map(|s| TaskStep { name: (*s).to_owned(), state: "pending".into(), message: String::new() })
                        .collect(),
                    result: None,
                    error: None,
                };
                inner.1.insert(task.id, task.clone());
                task
            }
            Err(_) => TaskJson {
                id: 0,
                kind: kind.into(),
                state: TaskState::Failed,
                done: 0,
                total: 0,
                steps: vec![],
                result: None,
                error: None,
            },
        };
        events.emit("task.progress", uri, domain, None, Some(task.clone()));
        task
    }

    /// Applies `change` to task `id` and publishes it.
    pub fn update(
        &self,
        id: u64,
        events: &EventLog,
        uri: &str,
        domain: Option<&str>,
        change: impl FnOnce(&mut TaskJson),
    ) {
        let snapshot = match self.inner.lock() {
            Ok(mut inner) => inner.1.get_mut(&id).map(|t| {
                change(t);
                t.clone()
            }),
            Err(_) => None,
        };
        if let Some(task) = snapshot {
            let kind = if task.state == TaskState::Running { "task.progress" } else { "task.finished" };
            events.emit(kind, uri, domain, None, Some(task));
        }
    }

    /// One task.
    pub fn get(&self, id: u64) -> Option<TaskJson> {
        self.inner.lock().ok().and_then(|i| i.1.get(&id).cloned())
    }

    /// Every task, oldest first.
    pub fn all(&self) -> Vec<TaskJson> {
        self.inner.lock().map(|i| i.1.values().cloned().collect()).unwrap_or_default()
    }
}

/// Where migration journals live.
pub fn journal_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("migrations")
}

/// Writes `journal` atomically (temporary file, fsync, rename); `done`/`rolled_back` remove it.
pub fn write_journal(dir: &Path, id: &str, journal: &Journal) -> Result<(), HostError> {
    use std::io::Write;
    let err = |e: std::io::Error| HostError::Config {
        message: format!("cannot write migration journal in {}: {e}", dir.display()),
    };
    let path = dir.join(format!("{id}.json"));
    if matches!(journal.phase.as_str(), "done" | "rolled_back") {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err(e)),
            _ => Ok(()),
        };
    }
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{id}.tmp"));
    let bytes = serde_json::to_vec(journal).map_err(|e| err(std::io::Error::other(e)))?;
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reports migration progress into a task and persists its journal.
pub struct TaskReporter {
    /// The task registry.
    pub tasks: Arc<Tasks>,
    /// The event log.
    pub events: Arc<EventLog>,
    /// The task.
    pub id: u64,
    /// Source URI (for events).
    pub uri: String,
    /// The domain.
    pub domain: String,
    /// Journal directory.
    pub journal_dir: PathBuf,
    /// Journal file stem.
    pub journal_id: String,
}

impl Reporter for TaskReporter {
    fn step(&mut self, name: &str, state: &str, message: &str) {
        self.tasks.update(self.id, &self.events, &self.uri, Some(&self.domain), |t| {
            if let Some(step) = t.steps.iter_mut().find(|s| s.name == name) {
                step.state = state.to_owned();
                step.message = message.to_owned();
            }
        });
    }
    fn progress(&mut self, done: u64, total: u64) {
        self.tasks.update(self.id, &self.events, &self.uri, Some(&self.domain), |t| {
            t.done = done;
            t.total = total;
        });
    }
    fn journal(&mut self, journal: &Journal) -> Result<(), HostError> {
        write_journal(&self.journal_dir, &self.journal_id, journal)
    }
}

/// Finishes the task with the migration's outcome.
pub fn finish(rep: &TaskReporter, result: Result<serde_json::Value, HostError>) {
    rep.tasks.update(rep.id, &rep.events, &rep.uri, Some(&rep.domain), |t| match result {
        Ok(value) => {
            t.state = TaskState::Succeeded;
            t.result = Some(value);
        }
        Err(e) => {
            t.state = TaskState::Failed;
            t.error = Some(ApiError::from(e).body);
        }
    });
}

/// Opens the source side of a migration and, unless it is a dry run, holds `dom` on it for
/// migration `id`: a second migration or any other change of the domain is refused from here
/// on (`OPERATION_TIMEOUT`), before the request is answered.
pub fn open_source(
    state: &AppState,
    from: &str,
    to: &str,
    dom: &str,
    id: &str,
    dry_run: bool,
) -> Result<Side, HostError> {
    let side = Side::open(&state.registry, from)?;
    if !dry_run {
        side.hold(dom, &format!("migration {id} to {to}"))?;
    }
    Ok(side)
}

/// Runs a migration task to the end (blocking) and says whether it succeeded. A migration that
/// fails with its journal not settled (B unreachable while the import may still commit, or the
/// source drop failing) leaves the journal to the recovery, which retries in the background.
pub fn run_migration(state: &AppState, from: Side, to: &str, dom: &str, dry_run: bool, rep: &mut TaskReporter) -> bool {
    let id = rep.journal_id.clone();
    let result = Side::open(&state.registry, to)
        .and_then(|b| migrate::migrate(&from, &b, &id, dom, dry_run, rep))
        .map(|outcome| serde_json::to_value(outcome).unwrap_or_default());
    from.release();
    let failed = result.is_err();
    finish(rep, result);
    let journal = rep.journal_dir.join(format!("{}.json", rep.journal_id));
    if failed && journal.is_file() {
        spawn_recovery_of(Arc::clone(state), vec![journal]);
    }
    !failed
}

/// Settles the migrations of `journals` in the background, each as a task, retrying every second
/// (for up to ten minutes) those it cannot settle yet (a destination down).
pub fn spawn_recovery_of(state: AppState, mut journals: Vec<PathBuf>) {
    tokio::task::spawn_blocking(move || {
        for _ in 0..600 {
            journals.retain(|path| !recover_journal(&state, path));
            if journals.is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        for path in journals {
            tracing::error!(journal = %path.display(), "migration journal not settled; it is retried at the next start");
        }
    });
}

/// Finishes or rolls back the migration of one journal as a task. Returns whether it is settled
/// (a journal already gone counts as settled).
pub fn recover_journal(state: &AppState, path: &Path) -> bool {
    let (tasks, events) = (&state.tasks, &state.events);
    let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else { return true };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
        Err(_) => return false,
    };
    let Ok(mut journal) = serde_json::from_slice::<Journal>(&bytes) else {
        tracing::warn!(path = %path.display(), "unreadable migration journal left in place");
        return true;
    };
    if journal.id.is_empty() {
        journal.id.clone_from(&stem);
    }
    let task = tasks.start("migrate_snapshots_recovery", &["recover"], events, &journal.from, Some(&journal.domain));
    let mut rep = TaskReporter {
        tasks: Arc::clone(tasks),
        events: Arc::clone(events),
        id: task.id,
        uri: journal.from.clone(),
        domain: journal.domain.clone(),
        journal_dir: path.parent().map(Path::to_owned).unwrap_or_default(),
        journal_id: stem,
    };
    rep.step("recover", "running", &format!("phase {}", journal.phase));
    let result = migrate::recover(&state.registry, &mut journal, &mut rep);
    let settled = result.is_ok();
    match &result {
        Ok(phase) => rep.step("recover", "done", phase),
        Err(e) => rep.step("recover", "failed", &e.to_string()),
    }
    finish(&rep, result.map(|phase| serde_json::json!({ "phase": phase })));
    settled
}
