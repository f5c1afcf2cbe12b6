//! One libvirt client connection on threads of its own, so a call costs one hand-off between
//! threads instead of four (reader task → call task → blocking pool → writer task):
//! - the reader thread reads packets and answers keepalive PINGs itself, so a PING is answered
//!   while a long call runs;
//! - the executor thread runs calls in arrival order and writes each reply;
//! - a call that arrives while the executor is busy runs on the runtime's blocking pool, so
//!   pipelined calls run concurrently and a slow call does not hold up the others;
//! - the event thread writes lifecycle events as the session's forwarder queues them.
//!
//! At most [`CALLS_IN_FLIGHT`] calls are queued or running; the reader waits for one to finish
//! before it reads on, so a client that sends calls without reading replies stops being read
//! (its replies block in the socket) instead of growing the daemon's memory, and a reply that
//! cannot be written within [`WRITE_TIMEOUT`] ends the connection, so such a client cannot hold
//! the threads writing to it. Writers share the socket through a mutex, one whole packet at a
//! time.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    sync::{Arc, Condvar, Mutex, mpsc as std_mpsc},
    time::Duration,
};

use tokio::{runtime::Handle, sync::mpsc};
use virtplug_libvirt_rpc::{
    packet::{self, Header},
    proto::{
        KEEPALIVE_PROC_PING, KEEPALIVE_PROC_PONG, KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION,
        REMOTE_PROC_CONNECT_CLOSE, REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION, VIR_NET_CALL, VIR_NET_MESSAGE, VIR_NET_OK,
    },
};

use super::{
    Out,
    session::{ERR_RPC, Session, from},
};
use crate::state::AppState;

/// Calls of one connection queued or running at once.
pub const CALLS_IN_FLIGHT: usize = 32;
/// Event packets queued for writing per connection.
const EVENT_QUEUE: usize = 64;

/// How long one packet may take to write: a client that stops reading its replies is hung up
/// on after this, so the threads blocked writing to it (the blocking pool's among them) are
/// freed instead of held for as long as the client likes.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The socket's write side, one packet at a time.
struct Writer(Mutex<UnixStream>);

impl Writer {
    fn send(&self, bytes: &[u8]) -> bool {
        let Ok(mut s) = self.0.lock() else { return false };
        if s.write_all(bytes).is_ok() {
            return true;
        }
        // A write that failed or timed out: end the connection (the reader sees it too).
        let _ = s.shutdown(std::net::Shutdown::Both);
        false
    }
}

/// Calls queued or running, and whether the executor is idle.
#[derive(Default)]
struct Load {
    state: Mutex<(usize, bool)>,
    changed: Condvar,
}

impl Load {
    /// Waits for room, then counts a call in; true when the executor is idle (and now taken).
    fn enter(&self) -> bool {
        let Ok(mut g) = self.state.lock() else { return false };
        while g.0 >= CALLS_IN_FLIGHT {
            g = match self.changed.wait(g) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
        g.0 += 1;
        let executor_idle = !g.1;
        if executor_idle {
            g.1 = true;
        }
        executor_idle
    }

    fn leave(&self, was_executor: bool) {
        if let Ok(mut g) = self.state.lock() {
            g.0 -= 1;
            if was_executor {
                g.1 = false;
            }
        }
        self.changed.notify_all();
    }

    /// Waits until no call is queued or running.
    fn drain(&self) {
        let Ok(mut g) = self.state.lock() else { return };
        while g.0 > 0 {
            g = match self.changed.wait(g) {
                Ok(g) => g,
                Err(_) => return,
            };
        }
    }
}

/// Serves one accepted connection until it closes; returns when every thread of it is done
/// or detached.
pub fn serve(stream: UnixStream, state: AppState, read_only: bool, rt: Handle) {
    let (Ok(write_half), Ok(event_half)) = (stream.try_clone(), stream.try_clone()) else { return };
    // Shared by every clone of the socket: a packet that cannot be written within it ends the
    // connection (see `WRITE_TIMEOUT`).
    if write_half.set_write_timeout(Some(WRITE_TIMEOUT)).is_err() {
        return;
    }
    let writer = Arc::new(Writer(Mutex::new(write_half)));
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(EVENT_QUEUE);
    let session = session_in(&rt, state, read_only, out_tx);
    let events = {
        let writer = Arc::clone(&writer);
        std::thread::Builder::new().name("libvirt-events".into()).spawn(move || {
            while let Some(Out::Packet(bytes)) = out_rx.blocking_recv() {
                if !writer.send(&bytes) {
                    break;
                }
            }
        })
    };
    let load = Arc::new(Load::default());
    let (call_tx, call_rx) = std_mpsc::channel::<(Header, Vec<u8>)>();
    let executor = {
        let (session, writer, load, rt) = (Arc::clone(&session), Arc::clone(&writer), Arc::clone(&load), rt.clone());
        std::thread::Builder::new().name("libvirt-calls".into()).spawn(move || {
            while let Ok((header, body)) = call_rx.recv() {
                run_call(&rt, &session, &writer, &header, &body);
                load.leave(true);
            }
        })
    };
    if let (Ok(events), Ok(executor)) = (events, executor) {
        read_loop(stream, &session, &writer, &load, &call_tx, &rt);
        // Hang up first: a write blocked on a client that stopped reading fails now instead of
        // holding this connection's threads (after CONNECT_CLOSE every reply is already out).
        let _ = event_half.shutdown(std::net::Shutdown::Both);
        drop(call_tx);
        let _ = executor.join();
        load.drain();
        session.close();
        let _ = session.out.try_send(Out::Close);
        let _ = events.join();
    }
}

/// The session, created inside the runtime (its forwarder task is spawned there).
fn session_in(rt: &Handle, state: AppState, read_only: bool, out: mpsc::Sender<Out>) -> Arc<Session> {
    let _entered = rt.enter();
    Session::new(state, read_only, out)
}

fn run_call(rt: &Handle, session: &Arc<Session>, writer: &Writer, header: &Header, body: &[u8]) {
    let reply = rt.block_on(session.call(header, &body[packet::HEADER_BYTES..]));
    writer.send(&reply);
}

fn read_loop(
    mut stream: UnixStream,
    session: &Arc<Session>,
    writer: &Arc<Writer>,
    load: &Arc<Load>,
    calls: &std_mpsc::Sender<(Header, Vec<u8>)>,
    rt: &Handle,
) {
    loop {
        let body = match read_packet(&mut stream) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "libvirt connection closed on a framing error");
                return;
            }
        };
        let Ok((header, _)) = packet::parse(&body) else { return };
        match (header.prog, header.vers) {
            (KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION) => {
                if header.proc_ == KEEPALIVE_PROC_PING && header.type_ == VIR_NET_MESSAGE {
                    writer.send(&packet::keepalive(KEEPALIVE_PROC_PONG));
                }
                // PONG or anything else on this program: nothing to answer.
            }
            (REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION) if header.type_ == VIR_NET_CALL => {
                if header.status != VIR_NET_OK {
                    let err = packet::error(ERR_RPC, from::RPC, "Unexpected message status");
                    writer.send(&packet::reply_error(&header, &err));
                    continue;
                }
                let closing = header.proc_ == REMOTE_PROC_CONNECT_CLOSE;
                if load.enter() {
                    if calls.send((header, body)).is_err() {
                        return;
                    }
                } else {
                    let (session, writer, load, handle) =
                        (Arc::clone(session), Arc::clone(writer), Arc::clone(load), rt.clone());
                    rt.spawn_blocking(move || {
                        run_call(&handle, &session, &writer, &header, &body);
                        load.leave(false);
                    });
                }
                if closing {
                    // The reply goes out after every earlier call's; then the connection ends.
                    load.drain();
                    return;
                }
            }
            (REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION) => {
                // Replies, events or streams from a client: nothing this server asked for.
            }
            (prog, vers) => {
                // As libvirtd: the error echoes the call's header.
                let err = packet::error(ERR_RPC, from::RPC, format!("Cannot find program {prog} version {vers}"));
                writer.send(&packet::reply_error(&header, &err));
            }
        }
    }
}

/// Reads one packet's body (header and payload); `None` at a clean end of stream. The buffer
/// grows as bytes arrive, so a length word announcing 32 MiB costs nothing until sent.
fn read_packet(rd: &mut UnixStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; packet::LEN_BYTES];
    match rd.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let n = packet::body_len(len).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let mut body = Vec::with_capacity(n.min(64 << 10));
    rd.take(n as u64).read_to_end(&mut body)?;
    if body.len() != n {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(body))
}
