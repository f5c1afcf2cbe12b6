//! Migration tasks: opening and holding the source, running a migration to the end, and the
//! recovery a restarted daemon runs over the journals left behind ([`spawn_recovery_of`], one
//! task per journal through [`recover_journal`], retrying while a destination is down). A task
//! runs on the blocking pool independently of the request that started it, so a client that
//! disconnects does not stop it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use virtplug_host::{
    HostError,
    migrate::{self, Journal, Reporter, Side},
};

use crate::{
    state::AppState,
    tasks::{TaskReporter, finish},
};

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
    crate::runtime::spawn_blocking(move || {
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
