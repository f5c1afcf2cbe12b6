//! Tracked imports: an import that carries a migration id has its outcome recorded durably under
//! `<state dir>/imports/<id>.json` — `running` before the plugin transaction starts, then
//! `committed` or `failed`. The migration's supervisor (possibly restarted after a SIGKILL) asks
//! `POST /v1/imports/{id}/settle` and waits while the answer is `running`, so that it never
//! decides to finish or roll back while the import can still commit. An id this daemon never saw
//! is settled as `aborted`, and an import arriving later under it is refused. A record still
//! `running` when the daemon starts belongs to a killed run: it becomes `interrupted` (the plugin
//! transaction committed whole or not at all; the supervisor compares the trees).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, SystemTime},
};

use virtplug_host::{HostError, codes};

use crate::error::ApiError;

/// Records older than this are removed when the daemon starts.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// The tracked imports of this daemon (durable).
#[derive(Debug)]
pub struct Imports {
    dir: PathBuf,
    states: Mutex<HashMap<String, String>>,
}

/// Whether `id` is acceptable as a migration id (it names a file).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn bad_id(id: &str) -> ApiError {
    ApiError::new(codes::INVALID_ARG, format!("invalid migration id '{id}'"))
}

impl Imports {
    /// Loads the records under `state_dir`; `running` ones become `interrupted`.
    pub fn load(state_dir: &Path) -> Self {
        let dir = state_dir.join("imports");
        let mut states = HashMap::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(id) = path.file_stem().and_then(|s| s.to_str()).filter(|s| valid_id(s)).map(str::to_owned)
                else {
                    continue;
                };
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > KEEP);
                let Some(mut state) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v["state"].as_str().map(str::to_owned))
                else {
                    continue;
                };
                if old && state != "running" {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                if state == "running" {
                    state = "interrupted".into();
                    if let Err(e) = write(&dir, &id, &state) {
                        tracing::warn!("cannot record interrupted import {id}: {e}");
                    }
                }
                states.insert(id, state);
            }
        }
        Self { dir, states: Mutex::new(states) }
    }

    /// The recorded state of `id`, `unknown` when none.
    pub fn get(&self, id: &str) -> String {
        self.states.lock().ok().and_then(|m| m.get(id).cloned()).unwrap_or_else(|| "unknown".into())
    }

    /// Before the import of `id` starts: records `running` (durably). Refuses an id already
    /// settled or used.
    pub fn begin(&self, id: &str) -> Result<(), ApiError> {
        if !valid_id(id) {
            return Err(bad_id(id));
        }
        let mut m = self.states.lock().map_err(|_| ApiError::new(codes::INTERNAL_ERROR, "import records poisoned"))?;
        if let Some(state) = m.get(id) {
            return Err(ApiError::new(
                codes::OPERATION_INVALID,
                format!("the import of migration {id} was already {state} here"),
            ));
        }
        write(&self.dir, id, "running").map_err(ApiError::from)?;
        m.insert(id.to_owned(), "running".into());
        Ok(())
    }

    /// After the import of `id`: records `committed` or `failed`.
    pub fn end(&self, id: &str, committed: bool) {
        let state = if committed { "committed" } else { "failed" };
        if let Ok(mut m) = self.states.lock() {
            if let Err(e) = write(&self.dir, id, state) {
                // The record stays `running` on disk: a restart makes it `interrupted`, which
                // the supervisor resolves by comparing the trees.
                tracing::error!("cannot record the end of import {id}: {e}");
            }
            m.insert(id.to_owned(), state.into());
        }
    }

    /// Settles `id`: an unknown id is recorded as `aborted` (and refused from now on); otherwise
    /// the recorded state (`running` while in flight).
    pub fn settle(&self, id: &str) -> Result<String, ApiError> {
        if !valid_id(id) {
            return Err(bad_id(id));
        }
        let mut m = self.states.lock().map_err(|_| ApiError::new(codes::INTERNAL_ERROR, "import records poisoned"))?;
        if let Some(state) = m.get(id) {
            return Ok(state.clone());
        }
        write(&self.dir, id, "aborted").map_err(ApiError::from)?;
        m.insert(id.to_owned(), "aborted".into());
        Ok("aborted".into())
    }
}

/// Writes one record atomically and durably (temporary file, fsync, rename, fsync of the folder).
fn write(dir: &Path, id: &str, state: &str) -> Result<(), HostError> {
    use std::io::Write;
    let err = |e: std::io::Error| HostError::Config {
        message: format!("cannot write import record in {}: {e}", dir.display()),
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(".{id}.tmp"));
    let bytes = serde_json::to_vec(&serde_json::json!({ "migration": id, "state": state }))
        .map_err(|e| err(std::io::Error::other(e)))?;
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(err)?;
    std::fs::rename(&tmp, dir.join(format!("{id}.json"))).map_err(err)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
