//! What a plugin needs to keep its snapshot metadata on the fleet store, shared by every plugin
//! that offers `store=` (mock, qemu): the `store=` query parameter (else `VIRTPLUG_STORE`), the
//! config file (`VIRTPLUG_STORE_CONFIG`, else `<state dir>/store.conf`), [`connect`] giving a
//! [`Fleet`] (the SDK's tree rules over [`EtcdBackend`](crate::EtcdBackend)), and the watch
//! that turns other hosts' commits into this host's snapshot events (the crate's `events` module).
//! Without the `etcd` feature a well-formed `store=` is refused in one line; a malformed one is
//! INVALID_ARG either way.

use std::path::Path;

use virtplug_plugin_sdk::{Error, MetadataStore, Result, codes};

use crate::uri::{StoreConfig, StoreUri};

/// Snapshot metadata on a store several hosts share, with the SDK's tree rules.
pub type Fleet = Box<dyn FleetStore>;

/// A store several hosts share: its identity and the handover of a domain to another host.
pub trait FleetStore: MetadataStore {
    /// `<store>\n<host>`: the store's identity (the same text on every host) and this host.
    fn identity(&mut self) -> String;
    /// Hands domain `dom` (its UUID) to host `to`, taking it first when no host owns it.
    fn handover(&mut self, dom: &str, to: &str) -> Result<()>;
    /// Refuses, as a write would, unless this host may write `dom`: it owns it, or no host
    /// does and it takes it now. A plugin asks before it changes anything outside the store
    /// (disk images), so that a write the store refuses never follows a change already made.
    fn claim(&mut self, dom: &str) -> Result<()>;
}

/// A running watch of the fleet store (dropped with the connection, which ends it).
pub type FleetWatch = Box<dyn std::any::Any + Send + Sync>;

/// Splits the `store=` parameter off `uri`'s query: the URI with the other parameters as they
/// were, and the store URI (`store=`, else `VIRTPLUG_STORE`, the host-wide default, else none:
/// the plugin's local store keeps everything). A malformed store URI is INVALID_ARG.
pub fn split_store(uri: &str) -> Result<(String, Option<StoreUri>)> {
    let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut store = None;
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        match kv.strip_prefix("store=") {
            Some(s) if store.is_none() => store = Some(s.to_owned()),
            Some(_) => return Err(Error::new(codes::INVALID_ARG, format!("{uri}: store= given twice"))),
            None => rest.push(kv),
        }
    }
    let base = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    let store = store.or_else(|| std::env::var("VIRTPLUG_STORE").ok().filter(|s| !s.is_empty()));
    Ok((base, store.map(|s| StoreUri::parse(&s)).transpose()?))
}

/// The fleet store's config: the file `VIRTPLUG_STORE_CONFIG` names (host-wide), else
/// `<state dir>/store.conf` when it exists (one host per state directory, so two hosts on one
/// machine can carry their own names), else the defaults.
pub fn config(dir: &Path) -> Result<StoreConfig> {
    let local = dir.join("store.conf");
    if std::env::var_os("VIRTPLUG_STORE_CONFIG").is_some_and(|v| !v.is_empty()) || !local.exists() {
        return StoreConfig::from_env();
    }
    let text = std::fs::read_to_string(&local).map_err(|e| {
        Error::new(codes::INVALID_ARG, format!("store config '{}' cannot be read: {e}", local.display()))
    })?;
    StoreConfig::parse(&local, &text)
}

/// The fleet store of `store` for the plugin `plugin` whose state lives in `dir` (its config
/// from [`config`]). With `events_db` (a read-write connection whose host reads events: a
/// daemon), also a watch that reports the snapshot changes other hosts commit, naming domains
/// as that local SQLite store does. The cluster is reached here: unreachable, the caller has
/// created nothing yet.
#[cfg(feature = "etcd")]
pub fn connect(
    store: &StoreUri,
    dir: &Path,
    _plugin: &str,
    events_db: Option<std::path::PathBuf>,
) -> Result<(Fleet, Option<FleetWatch>)> {
    let uri = format!("etcd://{}{}", store.endpoints.join(","), store.prefix);
    let cfg = config(dir)?;
    let backend = crate::EtcdBackend::connect(&uri, &cfg)?;
    let host = virtplug_plugin_sdk::host::current();
    let watch = match events_db {
        Some(db) if host.wants_events() => {
            let w = crate::watch(&uri, &cfg, move |ch| crate::events::report(&host, &db, &ch))?;
            Some(Box::new(w) as FleetWatch)
        }
        _ => None,
    };
    Ok((Box::new(virtplug_plugin_sdk::Metadata::new(backend)), watch))
}

/// Without the `etcd` feature a well-formed `store=` is refused in one line.
#[cfg(not(feature = "etcd"))]
pub fn connect(
    _store: &StoreUri,
    _dir: &Path,
    plugin: &str,
    _events_db: Option<std::path::PathBuf>,
) -> Result<(Fleet, Option<FleetWatch>)> {
    Err(Error::new(
        codes::CONFIG_UNSUPPORTED,
        format!("this build of the {plugin} plugin has no etcd store (cargo feature etcd)"),
    ))
}

#[cfg(feature = "etcd")]
impl FleetStore for virtplug_plugin_sdk::Metadata<crate::EtcdBackend> {
    fn identity(&mut self) -> String {
        let b = self.backend();
        format!("{}\n{}", b.store_id(), b.host())
    }
    fn handover(&mut self, dom: &str, to: &str) -> Result<()> {
        let b = self.backend();
        if b.owner(dom)?.is_none() {
            b.claim(dom)?;
        }
        b.handover(dom, to)
    }
    fn claim(&mut self, dom: &str) -> Result<()> {
        self.backend().claim(dom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn store_is_split_off_and_other_parameters_stay() {
        let (base, s) = split_store("qemu:///embed?root=/x&store=etcd://a:1,b:2/fleet&accel=tcg").unwrap();
        assert_eq!(base, "qemu:///embed?root=/x&accel=tcg");
        let s = s.unwrap();
        assert_eq!((s.endpoints, s.prefix.as_str()), (vec!["a:1".to_owned(), "b:2".to_owned()], "/fleet"));
        let (base, s) = split_store("mock:///d?store=etcd://a:1/p").unwrap();
        assert_eq!((base.as_str(), s.is_some()), ("mock:///d", true));
        let e = split_store("mock:///d?store=etcd://a:1/p&store=etcd://b:1/p").unwrap_err();
        assert_eq!(e.code, codes::INVALID_ARG);
        let e = split_store("qemu:///session?store=http://a:1/p").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (codes::INVALID_ARG, "store URI 'http://a:1/p': the scheme must be etcd://")
        );
        // VIRTPLUG_STORE is the host-wide default; `store=` wins over it (the only test of this
        // binary that touches the variable)
        unsafe { std::env::set_var("VIRTPLUG_STORE", "etcd://h:1/env") };
        let from_env = split_store("mock:///d").map(|(b, s)| (b, s.map(|s| s.prefix)));
        let given = split_store("mock:///d?store=etcd://h:1/uri").map(|(_, s)| s.map(|s| s.prefix));
        unsafe { std::env::remove_var("VIRTPLUG_STORE") };
        assert_eq!(from_env.unwrap(), ("mock:///d".to_owned(), Some("/env".to_owned())));
        assert_eq!(given.unwrap(), Some("/uri".to_owned()));
    }
}
