//! libvirt's RPC protocol on unix sockets (`--libvirt-socket PATH`, read-only twin `PATH-ro`):
//! the remote program and the keepalive program, so libvirt's own clients (virsh,
//! python3-libvirt, go-libvirt and the stacks built on them) drive every virtplug plugin.
//!
//! One task reads a connection's packets; each call runs in its own task (clients pipeline
//! calls; replies go out in any order, matched by serial), so keepalive is answered while a long
//! call runs. A bounded number of calls run at once per connection and the reply queue is
//! bounded, so a client that pipelines without reading stops being read instead of growing the
//! daemon's memory. Framing errors close the connection; a bad call gets an error reply.
//!
//! The calls themselves ([`session`]) run the host's checks through `virtplug-host` exactly as
//! the HTTP routes do; the bytes are `virtplug-libvirt-rpc`'s.

mod calls_domain;
mod calls_snapshot;
mod lifecycle;
mod session;

use std::{path::Path, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    sync::{Semaphore, mpsc, watch},
};
use virtplug_libvirt_rpc::{
    packet::{self, Header},
    proto::{
        KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION,
        REMOTE_PROC_CONNECT_CLOSE, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, VIR_NET_CALL, VIR_NET_MESSAGE, VIR_NET_OK,
    },
};

pub use lifecycle::{Lifecycle, LifecycleEvent, publish};
pub use session::domain_handle;

use crate::state::AppState;

/// Calls of one connection running at once; the next waits (and the connection is not read).
const CALLS_IN_FLIGHT: usize = 32;
/// Packets queued for writing per connection.
const OUT_QUEUE: usize = 64;
/// Connections served at once per socket.
const MAX_CONNECTIONS: usize = 256;

/// libvirt's `VIR_ERR_RPC` and `VIR_FROM_RPC`.
const ERR_RPC: i32 = 39;
const FROM_RPC: i32 = 7;

/// What the writer task sends.
enum Out {
    Packet(Vec<u8>),
    /// Flush, then close (after CONNECT_CLOSE's reply).
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
                tokio::spawn(async move {
                    connection(stream, state, read_only).await;
                    drop(permit);
                });
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
        tokio::spawn(serve(listener, Arc::clone(state), read_only, stop.clone()));
        bound.push(p);
    }
    Ok(bound)
}

async fn connection(stream: UnixStream, state: AppState, read_only: bool) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Out>(OUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Out::Packet(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Out::Close => break,
            }
        }
        let _ = wr.shutdown().await;
    });
    let session = session::Session::new(state, read_only, tx.clone());
    let calls = Arc::new(Semaphore::new(CALLS_IN_FLIGHT));
    loop {
        let body = match read_packet(&mut rd).await {
            Ok(Some(b)) => b,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "libvirt connection closed on a framing error");
                break;
            }
        };
        let Ok((header, _)) = packet::parse(&body) else { break };
        match (header.prog, header.vers) {
            (KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION) => {
                if header.proc_ == KEEPALIVE_PROC_PING && header.type_ == VIR_NET_MESSAGE {
                    let _ = tx.send(Out::Packet(packet::keepalive(KEEPALIVE_PROC_PONG))).await;
                }
                // PONG or anything else on this program: nothing to answer.
            }
            (REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION) if header.type_ == VIR_NET_CALL => {
                if header.status != VIR_NET_OK {
                    let err = packet::error(ERR_RPC, FROM_RPC, "Unexpected message status");
                    let _ = tx.send(Out::Packet(packet::reply_error(&header, &err))).await;
                    continue;
                }
                let Ok(permit) = Arc::clone(&calls).acquire_owned().await else { break };
                let closing = header.proc_ == REMOTE_PROC_CONNECT_CLOSE;
                let (session, tx) = (Arc::clone(&session), tx.clone());
                let task = tokio::spawn(async move {
                    let reply = session.call(&header, &body[packet::HEADER_BYTES..]).await;
                    let _ = tx.send(Out::Packet(reply)).await;
                    drop(permit);
                });
                if closing {
                    let _ = task.await;
                    break;
                }
            }
            (REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION) => {
                // Replies, events or streams from a client: nothing this server asked for.
            }
            (prog, vers) => {
                // As libvirtd: the error echoes the call's header.
                let err = packet::error(ERR_RPC, FROM_RPC, format!("Cannot find program {prog} version {vers}"));
                let _ = tx.send(Out::Packet(packet::reply_error(&header, &err))).await;
            }
        }
    }
    session.close();
    let _ = tx.send(Out::Close).await;
    drop(tx);
    let _ = writer.await;
}

/// Reads one packet's body (header and payload); `None` at a clean end of stream. The buffer
/// grows as bytes arrive, so a length word announcing 32 MiB costs nothing until sent.
async fn read_packet(rd: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; packet::LEN_BYTES];
    match rd.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = packet::body_len(len).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut body = Vec::with_capacity(n.min(64 << 10));
    rd.take(n as u64).read_to_end(&mut body).await?;
    if body.len() != n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(body))
}

/// A header for tests and the fuzz target: what a call to `procedure` carries.
pub fn call_header(procedure: i32, serial: u32) -> Header {
    Header {
        prog: REMOTE_PROGRAM,
        vers: REMOTE_PROTOCOL_VERSION,
        proc_: procedure,
        type_: VIR_NET_CALL,
        serial,
        status: VIR_NET_OK,
    }
}
