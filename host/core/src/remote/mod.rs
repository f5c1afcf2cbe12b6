//! Remote connections: a URI with a transport (`mock+unix:///default`, `qemu+https://host:port/system`)
//! reaches a `virtplugd` daemon. The client is a [`Backend`](crate::Backend) speaking the daemon's
//! HTTP/JSON API, which `Connection::open` wraps in an ordinary connection, so every generic check
//! runs here with the remote plugin's masks and again in the daemon.
//!
//! URI parameters read by the client (and not sent on): `socket=PATH` (unix transport), `ca=PATH`
//! (PEM roots for `+https`), `token_file=PATH` (bearer token; `VIRTPLUG_TOKEN` otherwise).
//! The unix socket defaults to `VIRTPLUGD_SOCKET`, else `$XDG_RUNTIME_DIR/virtplug/virtplugd-sock`
//! (`-ro` suffix for read-only connections), else `/run/virtplug/virtplugd-sock`.

mod backend;
mod client;
pub mod http;
mod uri;
/// The wire types live in their own crate (`virtplug-wire`); re-exported for existing callers.
pub use virtplug_wire as wire;

pub use backend::RemoteBackend;
pub use client::Client;
pub use uri::{RemoteUri, default_socket, parse_uri};

pub use crate::error::SYSTEM_ERROR;

use crate::{
    error::{HostError, Result},
    snapshot::SnapshotHierarchy,
};

/// The hierarchy as the daemon sends it, for the host's callers.
impl From<wire::HierarchyJson> for SnapshotHierarchy {
    fn from(h: wire::HierarchyJson) -> Self {
        let wire::HierarchyJson { xmls, names, parents, current } = h;
        Self { xmls, names, parents, current }
    }
}

/// The hierarchy as the daemon's export route answers it.
impl From<SnapshotHierarchy> for wire::HierarchyJson {
    fn from(h: SnapshotHierarchy) -> Self {
        let SnapshotHierarchy { xmls, names, parents, current } = h;
        Self { xmls, names, parents, current }
    }
}

/// Opens `uri` through a daemon: fetches the remote plugin's info so that the local checks use
/// the remote masks. `Connection::open` calls it for URIs with a transport.
pub fn open(uri: &str, read_only: bool) -> Result<RemoteBackend> {
    let client = Client::from_uri(uri, read_only)?;
    let info = client.plugin_info().map_err(HostError::from)?;
    Ok(RemoteBackend::new(std::sync::Arc::new(client), info))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::{SYSTEM_ERROR, open, wire};
    use crate::{error::HostError, snapshot::SnapshotHierarchy};

    /// The host's hierarchy and the wire's carry the same fields, unchanged both ways.
    #[test]
    fn a_hierarchy_crosses_the_wire_unchanged() {
        let host = SnapshotHierarchy {
            xmls: vec!["<a/>".into(), "<b/>".into()],
            names: vec!["a".into(), "b".into()],
            parents: vec![None, Some("a".into())],
            current: Some("b".into()),
        };
        let json = wire::HierarchyJson::from(host.clone());
        assert_eq!(
            serde_json::to_value(&json).unwrap(),
            serde_json::json!({
                "xmls": ["<a/>", "<b/>"], "names": ["a", "b"], "parents": [null, "a"], "current": "b"
            })
        );
        assert_eq!(SnapshotHierarchy::from(json), host);
    }

    /// A daemon that cannot be reached is a failure of the way there (`Remote`, libvirt's system
    /// error), not a refusal of the remote plugin (`Driver`); the text is the client's as before.
    #[test]
    fn an_unreachable_daemon_is_a_remote_error() {
        let dir = std::env::temp_dir().join(format!("virtplug-no-daemon-{}", std::process::id()));
        let socket = dir.join("sock");
        let err = open(&format!("mock+unix:///default?socket={}", socket.display()), false).map(|_| ()).unwrap_err();
        let message = format!(
            "cannot talk to virtplugd: cannot connect to {}: No such file or directory (os error 2)",
            socket.display()
        );
        assert_eq!(err, HostError::Remote { code: SYSTEM_ERROR, message: message.clone() });
        assert_eq!(err.code(), 38);
        assert_eq!(err.to_string(), message);
    }
}
