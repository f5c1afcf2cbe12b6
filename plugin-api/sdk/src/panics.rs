//! Panics inside guarded calls: caught, recorded, and kept off the user's terminal.
//!
//! A plugin is a `cdylib` with its own copy of std, hence its own panic hook: the host's hook
//! never sees a plugin's panic. Without ours, std's default hook would print the panic message
//! (and a backtrace under `RUST_BACKTRACE`) on the stderr of whoever loaded the plugin — the
//! CLI's user — above the one `error:` line the host reports.
//!
//! So the first guarded entry installs a hook that, for a panic on a thread that is inside a
//! guarded call, records the message, its location and (when `RUST_BACKTRACE` asks for one) a
//! backtrace instead of printing them; panics elsewhere (threads the plugin started itself) go
//! to the hook that was there before. The guard turns the panic into `INTERNAL_ERROR` as
//! before, and writes the record as one log entry on stderr only when [`LOG_ENV`] is `stderr`:
//! virtplugd's log is its stderr, so a daemon started with it keeps the text; the CLI, by
//! default, prints the error line alone.

use std::{
    any::Any,
    backtrace::{Backtrace, BacktraceStatus},
    cell::{Cell, RefCell},
    io::Write,
    panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind},
    sync::Once,
};

/// The environment variable that sends guarded panics' records to stderr (value `stderr`).
pub const LOG_ENV: &str = "VIRTPLUG_PLUGIN_LOG";

thread_local! {
    /// How many guarded calls this thread is inside (a guarded call may call another).
    static GUARDED: Cell<u32> = const { Cell::new(0) };
    /// The record of the last panic caught on this thread, taken by [`guarded`].
    static RECORD: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs the recording hook once per plugin library, chaining to the previous hook for
/// panics outside guarded calls.
fn install() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) > 0 {
                let record = describe(info);
                RECORD.with(|r| *r.borrow_mut() = Some(record));
            } else {
                previous(info);
            }
        }));
    });
}

/// `at FILE:LINE:COL: MESSAGE`, then the backtrace when one was asked for.
fn describe(info: &PanicHookInfo<'_>) -> String {
    let mut text = String::new();
    if let Some(at) = info.location() {
        text.push_str(&format!("at {}:{}:{}: ", at.file(), at.line(), at.column()));
    }
    text.push_str(&payload_text(info.payload()));
    // Only a record that is logged is worth a backtrace (RUST_BACKTRACE decides, as in std).
    if logging() {
        let backtrace = Backtrace::capture();
        if backtrace.status() == BacktraceStatus::Captured {
            text.push_str(&format!("\nstack backtrace:\n{backtrace}"));
        }
    }
    text
}

/// Whether caught panics are logged on stderr ([`LOG_ENV`] is `stderr`).
fn logging() -> bool {
    std::env::var_os(LOG_ENV).is_some_and(|v| v == "stderr")
}

/// The panic message, when the payload is a string (as `panic!` makes it).
pub fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// A panic caught by [`guarded`].
pub struct Caught {
    /// The panic payload.
    pub payload: Box<dyn Any + Send>,
    /// Location, message and backtrace as the hook recorded them.
    pub record: Option<String>,
}

/// Runs `f` inside `catch_unwind` with the recording hook in place.
pub fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, Caught> {
    install();
    GUARDED.with(|g| g.set(g.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get().saturating_sub(1)));
    result.map_err(|payload| Caught { payload, record: RECORD.with(|r| r.borrow_mut().take()) })
}

/// Logs a caught panic of `plugin` in `operation` when [`LOG_ENV`] is `stderr`.
pub fn log(plugin: &str, operation: &str, caught: &Caught) {
    if !logging() {
        return;
    }
    let record = caught.record.clone().unwrap_or_else(|| payload_text(caught.payload.as_ref()));
    let line = format!("ERROR virtplug plugin '{plugin}' panicked in {operation} {record}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
