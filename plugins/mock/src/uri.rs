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
