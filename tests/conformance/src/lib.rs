//! virtplug's conformance suite: a library of cases that check any plugin `.so` against the
//! plugin contract (the ABI, the capability declaration, libvirt's snapshot semantics), a CLI
//! (`virtplug-conformance`) and [`test_plugin!`] for a plugin's own `cargo test`.
//!
//! Every case runs in its own child process with a timeout ([`runner`]), so a plugin that
//! aborts, segfaults or hangs produces a failed case, not a dead suite. Cases are driven by what
//! the plugin declares ([`cases::matrix`]). Everything the suite creates is named `vpconf-…` and
//! only those resources are cleaned up.
//!
//! This crate must not contain plugin logic or its own copy of the host's checks: it drives the
//! real host (`virtplug-host`) and, for "called directly" cases, the plugin's raw driver object.

pub mod case;
pub mod cases;
pub mod cli;
pub mod ctx;
pub mod harness;
pub mod report;
pub mod runner;
pub mod trace;

pub use case::{Level, Outcome};
pub use ctx::{Options, PREFIX};
pub use runner::{Report, Runner};
