//! The CI-must-not-skip policy: a test that lacks a backend or a built artifact FAILS under
//! `CI=true`; elsewhere it returns early, and the process prints one note saying why.

use std::{collections::HashSet, fmt::Display, sync::Mutex};

/// Whether `CI=true` (exactly) is set.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The policy for something the tests of `area` need and lack: panics under `CI=true` with
/// `what`; elsewhere prints `note: skipping <area>: <what>` (each distinct note once per
/// process, however many tests hit it) and returns `None`.
pub fn missing<T>(area: &str, what: impl Display) -> Option<T> {
    if in_ci() {
        panic!("CI=true, {area} cannot run: {what}");
    }
    static NOTED: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    // A poisoned lock only means another test panicked while noting: the set is still usable.
    let mut noted = NOTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let note = format!("note: skipping {area}: {what}");
    if noted.get_or_insert_with(HashSet::new).insert(note.clone()) {
        eprintln!("{note}");
    }
    None
}

/// `Some(value)` when found; otherwise [`missing`] with the error as the reason.
pub fn need<T, E: Display>(area: &str, found: Result<T, E>) -> Option<T> {
    match found {
        Ok(v) => Some(v),
        Err(why) => missing(area, why),
    }
}

/// Unwraps an `Option` from [`need`], [`missing`] or [`crate::Artifact::require`], or returns
/// from the calling test (the skip policy has already failed under CI or printed its note).
#[macro_export]
macro_rules! require {
    ($found:expr) => {
        match $found {
            Some(v) => v,
            None => return,
        }
    };
}
