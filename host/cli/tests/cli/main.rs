//! The CLI's integration tests, one test binary (linking `virtplug_cli` once instead of eight
//! times): each module is one former test file; `cargo test -p virtplug-cli --test cli <module>::`
//! runs one of them.

mod bundle_bytes;
mod edit_job;
mod hostile;
mod migrate;
mod misuse;
mod options;
mod output;
mod session;
