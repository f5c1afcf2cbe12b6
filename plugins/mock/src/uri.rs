//! `mock:` URI → state directory.

use std::path::PathBuf;

use virtplug_plugin_sdk::{Error, Result, codes, model::store::Sync};

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The state directory for `uri`: `mock:///default` or `mock:///<absolute dir>`; anything
/// else is NO_CONNECT.
pub fn state_dir(uri: &str) -> Result<PathBuf> {
    let refuse = || {
        Error::new(
            codes::NO_CONNECT,
            format!("{uri} (the mock driver accepts mock:///default or mock:///<absolute directory>)"),
        )
    };
    let path = uri.strip_prefix("mock://").ok_or_else(refuse)?;
    if !path.starts_with('/') || path.contains(['?', '#']) || path.len() < 2 {
        return Err(refuse());
    }
    if path == "/default" {
        if let Some(d) = env_dir("VIRTPLUG_MOCK_STATE_DIR") {
            return Ok(d);
        }
        if let Some(d) = env_dir("XDG_STATE_HOME") {
            return Ok(d.join("virtplug/mock/default"));
        }
        let home = env_dir("HOME")
            .ok_or_else(|| Error::new(codes::NO_CONNECT, format!("{uri}: neither XDG_STATE_HOME nor HOME is set")))?;
        return Ok(home.join(".local/state/virtplug/mock/default"));
    }
    Ok(PathBuf::from(path))
}

/// Splits `mock:///…?store=etcd://…` into the URI without its query and the fleet store URI:
/// the `store=` parameter, else `VIRTPLUG_STORE` (the host-wide default), else none (the local
/// SQLite store keeps everything). A malformed store URI is INVALID_ARG; any other query is
/// refused by [`state_dir`] as before.
pub fn split_store(uri: &str) -> Result<(String, Option<virtplug_store_etcd::StoreUri>)> {
    let (base, store) = match uri.split_once("?store=") {
        Some((base, store)) => (base.to_owned(), Some(store.to_owned())),
        None => (uri.to_owned(), std::env::var("VIRTPLUG_STORE").ok().filter(|s| !s.is_empty())),
    };
    let store = store.map(|s| virtplug_store_etcd::StoreUri::parse(&s)).transpose()?;
    Ok((base, store))
}

/// The store's durability from `VIRTPLUG_MOCK_SYNC`: `normal` (the default: WAL with
/// `synchronous=NORMAL`, a commit survives the process being killed at any moment but the last
/// commits may be lost on power loss) or `full` (an fsync on every commit).
pub fn sync_mode() -> Result<Sync> {
    match std::env::var("VIRTPLUG_MOCK_SYNC").as_deref() {
        Err(_) | Ok("") | Ok("normal") => Ok(Sync::Normal),
        Ok("full") => Ok(Sync::Full),
        Ok(other) => {
            Err(Error::new(codes::NO_CONNECT, format!("VIRTPLUG_MOCK_SYNC must be 'normal' or 'full', not '{other}'")))
        }
    }
}

/// The fleet store's config: the file `VIRTPLUG_STORE_CONFIG` names (host-wide), else
/// `<state dir>/store.conf` when it exists (one mock host per directory, so two hosts on one
/// machine can carry their own names), else the defaults.
#[cfg(feature = "etcd")]
pub fn store_config(dir: &std::path::Path) -> Result<virtplug_store_etcd::StoreConfig> {
    let local = dir.join("store.conf");
    if std::env::var_os("VIRTPLUG_STORE_CONFIG").is_some_and(|v| !v.is_empty()) || !local.exists() {
        return virtplug_store_etcd::StoreConfig::from_env();
    }
    let text = std::fs::read_to_string(&local).map_err(|e| {
        Error::new(codes::INVALID_ARG, format!("store config '{}' cannot be read: {e}", local.display()))
    })?;
    virtplug_store_etcd::StoreConfig::parse(&local, &text)
}
