//! virtplug's host library: finds and loads plugins through the stable ABI, maps URI schemes to
//! plugins, and exposes the public [`Connection`] API, whose every entry point runs the generic
//! checks (read-only, libvirt's flag rules, the plugin's declared mask, input validation) before
//! it dispatches to the plugin.
//!
//! It never names a concrete driver and does no terminal or socket I/O for users: it returns
//! data and typed [`HostError`]s. Only the loader touches abi_stable, through the ABI crate.

mod backend;
mod connection;
mod domain;
mod error;
mod loader;
mod registry;
pub mod remote;
pub mod rules;
mod snapshot;

pub use backend::Backend;
pub use connection::Connection;
pub use error::{HostError, Result};
pub use loader::{LoadedPlugin, load_plugin};
pub use registry::{PluginDirs, Registry};
pub use virtplug_model::{self as model, DomainInfo, SnapshotInfo};
pub use virtplug_plugin_api::{Capabilities, PluginInfo, codes, flags};
