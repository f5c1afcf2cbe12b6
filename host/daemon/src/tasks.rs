//! Long operations as tasks: an id, steps, progress and a final result or error, pollable at
//! `/v1/tasks/{id}` and published on the event stream (`task.progress`, `task.finished`), and the
//! [`TaskReporter`] through which a migration reports into its task and persists its journal
//! under the state directory. Running migrations and recovering their journals is
//! `crate::migrations`, which builds on this module and the daemon state.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use virtplug_host::{
    HostError,
    migrate::{Journal, Reporter},
};
use virtplug_wire::{TaskJson, TaskState, TaskStep};

use crate::{error::ApiError, events::EventLog};

/// Every task of this daemon run.
#[derive(Debug, Default)]
pub struct Tasks {
    inner: Mutex<(u64, BTreeMap<u64, TaskJson>)>,
}

impl Tasks {
    /// Task ids after `last`. The daemon passes its event log's last sequence number: every
    /// task emits an event, so a run's task ids stay below the next run's first sequence
    /// number, and a task id never names another run's task (a retried request replayed
    /// after a restart names its own task, never a newer one).
    pub fn after(last: u64) -> Self {
        Self { inner: Mutex::new((last, BTreeMap::new())) }
    }

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
                    request_id: crate::observe::current_request_id(),
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
                request_id: None,
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
