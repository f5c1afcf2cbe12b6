//! The operation a case is in: a case's child process records every operation it starts, so
//! that when the parent kills a hanging child (or finds it crashed) the report names the call.
//!
//! Calls through the host are seen through the host's own `check` event (one per operation,
//! before the plugin runs: `tracing::debug!(op, flags, "check")`), so no case has to announce
//! them; calls straight to the plugin's driver are announced with [`note`]. Each operation
//! overwrites one small file, which survives the child being killed.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use tracing::{
    Event, Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};

static FILE: OnceLock<PathBuf> = OnceLock::new();

/// The file where a child records its operations, derived from its result file.
pub fn op_file(result: &Path) -> PathBuf {
    result.with_extension("op")
}

/// Records, in this process, every operation the host checks from now on into `file`.
pub fn install(file: PathBuf) {
    let _ = std::fs::remove_file(&file);
    if FILE.set(file).is_ok() {
        // Fails only when a global subscriber exists already: then the host's events go there
        // and only the operations announced with `note` are recorded.
        let _ = tracing::subscriber::set_global_default(OpRecorder);
    }
}

/// Records `what` as the operation in progress (for calls that bypass the host).
pub fn note(what: &str) {
    if let Some(file) = FILE.get() {
        let _ = std::fs::write(file, what);
    }
}

/// The last operation a child recorded, if any.
pub fn last(result: &Path) -> Option<String> {
    std::fs::read_to_string(op_file(result)).ok().filter(|s| !s.is_empty())
}

/// A subscriber that keeps nothing but the host's `check` events.
struct OpRecorder;

#[derive(Default)]
struct CheckEvent {
    is_check: bool,
    op: Option<String>,
    flags: Option<u64>,
}

impl Visit for CheckEvent {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "op" {
            self.op = Some(value.to_owned());
        }
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "flags" {
            self.flags = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, value as u64);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.is_check = format!("{value:?}") == "check";
        }
    }
}

impl Subscriber for OpRecorder {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() && metadata.target().starts_with("virtplug_host")
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut e = CheckEvent::default();
        event.record(&mut e);
        if e.is_check
            && let Some(op) = e.op
        {
            note(&format!("{op} (flags 0x{:x}) through the host", e.flags.unwrap_or(0)));
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
