//! virtplug's snapshot and domain model: native (non-ABI) types, the `<domainsnapshot>` XML
//! parser and formatter, the snapshot tree with libvirt's rules, list filters, and the SQLite
//! metadata store.
//!
//! Pure library: no ABI types cross this crate (it uses only the ABI crate's numeric
//! constants), no terminal or socket I/O, no knowledge of any particular plugin.

mod error;
mod types;

pub use error::{Error, Result};
pub use types::{DomainInfo, SnapshotInfo};
pub use virtplug_plugin_api::{codes, flags};
