//! Leaf helpers of the mock connection shared by the domain operations (`driver.rs`) and the
//! snapshot operations (`snapshot.rs`): domain state, hypervisor ids, the definition a running
//! domain takes when it stops, and [`Conn`], what a snapshot operation needs from its
//! connection — so that `snapshot.rs` never imports `driver.rs`.

use std::sync::MutexGuard;

use virtplug_plugin_sdk::{
    Result,
    flags::domain_state as st,
    model::{
        domain::DomainDef,
        store::{DomainRecord, Store, Writer},
    },
};

pub(crate) use virtplug_plugin_sdk::flags::domain_state_reason as reason;

/// What the snapshot operations need from a mock connection.
pub(crate) trait Conn {
    /// The connection's store, locked.
    fn store(&self) -> Result<MutexGuard<'_, Store>>;
    /// OPERATION_DENIED on a read-only connection, naming libvirt's public function.
    fn deny_read_only(&self, function: &str) -> Result<()>;
    /// The fleet store keeping the snapshot metadata (`store=etcd://…`), locked; `None`: the
    /// local store keeps it. Always locked after [`Conn::store`].
    fn fleet(&self) -> Result<Option<MutexGuard<'_, Fleet>>>;
}

pub(crate) use virtplug_store_etcd::Fleet;

/// Whether a domain in `state` is running (or paused, or otherwise not shut off).
pub(crate) fn is_active(state: u32) -> bool {
    state != st::SHUTOFF && state != st::NOSTATE
}

/// Allocates the next hypervisor id (like the test driver's counter).
pub(crate) fn next_id(w: &mut Writer<'_, '_>) -> Result<i32> {
    let id: i32 = w.meta("next_id")?.and_then(|v| v.parse().ok()).unwrap_or(2);
    w.set_meta("next_id", &(id + 1).to_string())?;
    Ok(id)
}

/// Where a running domain's next definition is kept: a definition given to a running domain
/// (libvirt's `newDef`) changes what it runs only when it stops; until then `dumpxml` shows the
/// running one, `dumpxml --inactive` and the next start this one. Kept as a store setting (the
/// `meta` table), so no schema change was needed for it.
pub(crate) fn pending_key(uuid: &str) -> String {
    format!("pending_definition:{uuid}")
}

/// Stops `dom`; a transient domain disappears with its snapshot metadata, a persistent one takes
/// its pending definition, if it has one.
pub(crate) fn stop(w: &mut Writer<'_, '_>, dom: &DomainRecord, why: u32) -> Result<()> {
    let key = pending_key(&dom.uuid);
    let pending = w.meta(&key)?;
    w.remove_meta(&key)?;
    if !dom.persistent {
        return w.undefine_domain(&dom.uuid);
    }
    if let Some(def) = pending.and_then(|xml| DomainDef::parse(&xml).ok()) {
        w.define_domain(&def, dom.state, dom.reason, dom.id)?;
    }
    w.set_domain_state(&dom.uuid, st::SHUTOFF, why, -1)
}
