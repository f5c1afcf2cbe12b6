//! virtplug's snapshot and domain model: native (non-ABI) types, the `<domainsnapshot>` XML
//! parser and formatter ([`xml`]), the domain XML subset ([`domain`]), the snapshot tree with
//! libvirt's rules ([`tree`]), list filters ([`filter`]), the SQLite metadata store (`store`, feature `sqlite`)
//! and the hierarchy export/import bundle ([`bundle`]).
//!
//! Pure library: no ABI types cross this crate (it uses only the ABI crate's numeric
//! constants), no terminal or socket I/O, no knowledge of any particular plugin.

#![warn(missing_docs)]

mod error;
mod secrets;
mod sha256;
mod types;
mod xml_errors;
mod xml_verified;
mod xmltree;

pub mod bundle;
pub mod domain;
pub mod filter;
pub mod import_order;
pub mod limits;
pub mod redefine;
// The SQLite store is a feature (on by default) so that a plugin keeping its metadata elsewhere
// does not compile SQLite; the SDK leaves it off unless the plugin asks for `sqlite`.
#[cfg(feature = "sqlite")]
pub mod store;
#[cfg(feature = "sqlite")]
mod store_gen;
#[cfg(feature = "sqlite")]
mod store_jobs;
#[cfg(feature = "sqlite")]
mod store_ops;
#[cfg(feature = "sqlite")]
mod store_rows;
#[cfg(feature = "sqlite")]
mod store_tx;
// Lock-free generation reads over SQLite's wal-index header (re-exported by `store`).
#[cfg(feature = "sqlite")]
mod store_watch;
pub mod tree;
pub mod xml;

pub use error::{Error, Result};
pub use types::{DomainInfo, SnapshotInfo};
pub use virtplug_plugin_api::{codes, flags};
