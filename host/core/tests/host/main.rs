//! The host library's integration tests, one test binary (linking the host once instead of three
//! times): each module is one former test file; `cargo test -p virtplug-host --test host
//! <module>::` runs one of them. `registry_env.rs` stays its own binary: it changes the process
//! environment, so it must be alone in its process.

mod fixtures;
mod generation;
mod import_fallback;
mod migrate_verify;
mod plugin_files;
