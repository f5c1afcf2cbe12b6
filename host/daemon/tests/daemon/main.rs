//! The daemon's integration tests, one test binary (linking the daemon and host once instead of
//! seven times): each module is one former test file, `common` their shared helpers; `cargo test
//! -p virtplug-daemon --test daemon <module>::` runs one of them. `openapi.rs` stays its own
//! binary because its regenerate command names it.

mod common;

mod api;
mod faults;
mod fleet;
mod hardening;
mod http_client;
mod idempotency;
mod libvirt_clients;
mod libvirt_wire;
mod migration;
mod migration_kill_points;
mod migration_race;
mod observe;
mod paging_etag;
mod tls;
