//! virtplug's reference driver (`mock:` URIs): implements every operation and every flag with
//! libvirt's semantics, keeps its state (domains and snapshot metadata) in the model crate's
//! SQLite store, and validates like qemu (stricter than libvirt's test driver).
//!
//! - `mock:///default`: state under `$VIRTPLUG_MOCK_STATE_DIR`, else
//!   `$XDG_STATE_HOME/virtplug/mock/default`, else `~/.local/state/virtplug/mock/default`;
//! - `mock:///<absolute dir>`: state in that directory (one "host" per directory; processes
//!   opening the same directory share the state).
//!
//! - `…?store=etcd://h1:p1,h2:p2/PREFIX` (or `VIRTPLUG_STORE`): the snapshot metadata lives on
//!   that etcd cluster (crate `virtplug-store-etcd`, cargo feature `etcd`), the domains stay in
//!   the local store; each snapshot change commits on etcd inside the local transaction that
//!   changes the domain, so a refused etcd write leaves the local store untouched. The store's
//!   config is `VIRTPLUG_STORE_CONFIG`'s file, else `<state dir>/store.conf`. In a daemon
//!   (a host that reads events) a read-write connection also watches the store and reports
//!   the snapshot changes other hosts commit as snapshot events.
//!
//! A fresh store holds the domain `test` of libvirt's `test:///default`, running with id 1.
//! Every operation is one store transaction. This crate depends on the SDK only and does no
//! terminal I/O.

#![warn(missing_docs)]

mod driver;
mod snapshot;
mod state;
mod uri;

use virtplug_plugin_sdk::{
    Capabilities, Driver, Plugin, PluginDescriptor, Result, export_plugin,
    flags::{
        domain_undefine, domain_xml, ops, snapshot_create, snapshot_delete, snapshot_import, snapshot_list,
        snapshot_revert, snapshot_xml,
    },
};

pub use driver::MockDriver;
pub use uri::state_dir;

/// The mock plugin.
#[derive(Debug)]
pub struct MockPlugin;

impl Plugin for MockPlugin {
    const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
        name: "mock",
        version: env!("CARGO_PKG_VERSION"),
        schemes: &["mock"],
        ops: ops::ALL,
        caps: Capabilities {
            snapshot_create: snapshot_create::ALL,
            snapshot_revert: snapshot_revert::ALL,
            snapshot_delete: snapshot_delete::ALL,
            snapshot_list: snapshot_list::ALL,
            snapshot_xml: snapshot_xml::ALL,
            snapshot_import: snapshot_import::ALL,
            domain_undefine: domain_undefine::ALL,
            domain_xml: domain_xml::ALL,
        },
    };

    // The generic refusals (read-only, SECURE on read-only, libvirt's flag rules) are not
    // repeated in the driver: the host only ever calls it through the SDK's guard, which applies
    // the rule table first. Called raw (without the guard or `open_checked`), a read-only
    // connection is not refused writes by these checks.
    fn open(uri: &str, read_only: bool) -> Result<Box<dyn Driver>> {
        let (base, store) = virtplug_store_etcd::fleet::split_store(uri)?;
        let dir = uri::state_dir(&base)?;
        Ok(Box::new(MockDriver::open_with_store(&dir, read_only, store)?))
    }
}

export_plugin!(MockPlugin);
