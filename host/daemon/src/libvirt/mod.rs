//! libvirt's RPC protocol on unix sockets (`--libvirt-socket PATH`, read-only twin `PATH-ro`):
//! the remote program and the keepalive program, so libvirt's own clients (virsh,
//! python3-libvirt, go-libvirt and the stacks built on them) drive every virtplug plugin.
//!
//! An async loop accepts connections; each connection then runs on threads of its own ([`conn`]:
//! a reader that also answers keepalive, an executor, pipelined calls on the blocking pool),
//! which costs a call one hand-off between threads. Replies go out in any order, matched by
//! serial; a bounded number of calls are in flight per connection, so a client that pipelines
//! without reading stops being read instead of growing the daemon's memory. Framing errors
//! close the connection; a bad call gets an error reply.
//!
//! The calls themselves ([`session`]) run the host's checks through `virtplug-host` exactly as
//! the HTTP routes do; the bytes are `virtplug-libvirt-rpc`'s.

mod calls_domain;
mod calls_snapshot;
mod conn;
mod lifecycle;
mod session;

use std::{path::Path, sync::Arc};

use tokio::{
    net::UnixListener,
    sync::{Semaphore, watch},
};

pub use calls_domain::define;
pub use lifecycle::{Lifecycle, LifecycleEvent, publish};
pub use session::domain_handle;

use crate::state::AppState;

/// Connections served at once per socket.
const MAX_CONNECTIONS: usize = 256;

/// What a session queues for its connection's event writer.
pub(crate) enum Out {
    Packet(Vec<u8>),
    /// The connection is closing: stop.
    Close,
}

/// Serves `listener` until `stop` says true. `read_only`: the read-only socket, whose
/// connections are read-only whatever they ask.
pub async fn serve(listener: UnixListener, state: AppState, read_only: bool, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let state = Arc::clone(&state);
                let rt = tokio::runtime::Handle::current();
                let stream = match stream.into_std().and_then(|s| s.set_nonblocking(false).map(|()| s)) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "libvirt socket: cannot take over an accepted connection");
                        continue;
                    }
                };
                let spawned = std::thread::Builder::new().name("libvirt-read".into()).spawn(move || {
                    conn::serve(stream, state, read_only, rt);
                    drop(permit);
                });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "libvirt socket: cannot start a connection thread");
                }
            }
            Err(e) => {
                // Out of descriptors or similar: wait instead of spinning.
                tracing::warn!(error = %e, "libvirt socket: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Binds `path` (0600) and `PATH-ro` (0666) and serves both.
pub fn spawn(path: &Path, state: &AppState, stop: &watch::Receiver<bool>) -> std::io::Result<Vec<std::path::PathBuf>> {
    let ro = std::path::PathBuf::from(format!("{}-ro", path.display()));
    let mut bound = Vec::new();
    for (p, mode, read_only) in [(path.to_owned(), 0o600, false), (ro, 0o666, true)] {
        let listener = crate::listen::bind_unix(&p, mode)?;
        tracing::info!(socket = %p.display(), read_only, "listening (libvirt RPC)");
        crate::runtime::spawn(serve(listener, Arc::clone(state), read_only, stop.clone()));
        bound.push(p);
    }
    Ok(bound)
}
