//! virtplug's host library: finds and loads plugins through the stable ABI, maps URI schemes to
//! plugins, and exposes the public [`Connection`] API, whose every entry point runs the generic
//! checks (read-only, libvirt's flag rules, the plugin's declared mask, input validation) before
//! it dispatches to the plugin.
//!
//! It never names a concrete driver, does no terminal I/O and serves no socket (its remote client
//! only connects to a daemon): it returns data and typed [`HostError`]s. It reaches abi_stable only
//! through the ABI crate's re-export (the loader, and the ABI types crossing the backend boundary).

mod backend;
mod connection;
mod domain;
mod error;
mod import_fallback;
mod loader;
pub mod migrate;
mod registry;
pub mod remote;
pub mod rules;
mod services;
mod snapshot;

pub use backend::Backend;
pub use connection::Connection;
pub use error::{BackendError, BackendResult, HostError, MAX_NAME_BYTES, NameProblem, Result};
pub use loader::{LoadedPlugin, load_plugin};
pub use registry::{PluginDirs, Registry};
pub use services::{EventSink, HostEvent, Progress};
pub use snapshot::SnapshotHierarchy;
pub use virtplug_model::{self as model, DomainInfo, SnapshotInfo};
pub use virtplug_plugin_api::{Capabilities, PluginInfo, codes, flags};
