//! Snapshot changes other hosts commit on the fleet store, as the host's snapshot events (the
//! kinds the daemon's event stream uses for its own changes): one snapshot created →
//! `snapshot.created` naming it; several (an import) → one `snapshot.imported`; one deleted →
//! `snapshot.deleted` naming it; several (a subtree) → one `snapshot.deleted` naming none; the
//! current snapshot moved → `snapshot.current_changed` naming the new one. The detail names the
//! host that committed. A domain this host does not define is not reported (events name domains
//! by their name on this host, found by UUID in the local store).

use std::path::Path;

use crate::RemoteChange;
use virtplug_plugin_sdk::{
    host::{Event, Host},
    model::store::Store,
};

/// Reports `ch` through `host`; `db` is this host's local store (read-only here).
pub(crate) fn report(host: &Host, db: &Path, ch: &RemoteChange) {
    let Some(name) = Store::open_read_only(db).ok().flatten().and_then(|mut s| s.domain_by_uuid(&ch.dom).ok()) else {
        return;
    };
    let detail = format!("by host {}", ch.host);
    let send = |kind: &str, snapshot: Option<&str>| {
        let mut e = Event::new(kind, name.name.as_str()).detail(detail.as_str());
        if let Some(s) = snapshot {
            e = e.snapshot(s);
        }
        host.event(e);
    };
    match ch.created.as_slice() {
        [] => {}
        [one] => send("snapshot.created", Some(one)),
        _ => send("snapshot.imported", None),
    }
    match ch.deleted.as_slice() {
        [] => {}
        [one] => send("snapshot.deleted", Some(one)),
        _ => send("snapshot.deleted", None),
    }
    if let Some(current) = &ch.current {
        send("snapshot.current_changed", current.as_deref());
    }
}
