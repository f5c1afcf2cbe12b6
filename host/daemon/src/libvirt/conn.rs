//! One libvirt client connection on threads of its own. Two call threads take turns reading the
//! socket (leader and follower): the one that reads a call hands the reading to the other, which
//! is waiting for it, and runs the call itself, so a call's reply costs no hand-off between
//! threads on its way (only a wake-up of the other thread, off its path):
//! - whichever thread reads answers keepalive PINGs itself, so a PING is answered while a long
//!   call runs on the other;
//! - a call read while the other thread is busy with a call runs on the runtime's blocking pool,
//!   and the reader reads on, so pipelined calls run concurrently and a slow call does not hold
//!   up the others;
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
    panic::AssertUnwindSafe,
    sync::{Arc, Condvar, Mutex},
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
    session::{ERR_RPC, Session, from, panicked},
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

/// Calls queued or running.
#[derive(Default)]
struct Load {
    state: Mutex<usize>,
    changed: Condvar,
}

impl Load {
    /// Waits for room, then counts a call in; false when the lock is poisoned.
    fn enter(&self) -> bool {
        let Ok(mut g) = self.state.lock() else { return false };
        while *g >= CALLS_IN_FLIGHT {
            g = match self.changed.wait(g) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
        *g += 1;
        true
    }

    fn leave(&self) {
        if let Ok(mut g) = self.state.lock() {
            *g -= 1;
        }
        self.changed.notify_all();
    }

    /// Counts the call out when dropped, also when the call panicked (else the drain at
    /// CONNECT_CLOSE or at the end would wait for it forever).
    fn counted(&self) -> Counted<'_> {
        Counted(self)
    }

    /// Waits until no call is queued or running.
    fn drain(&self) {
        let Ok(mut g) = self.state.lock() else { return };
        while *g > 0 {
            g = match self.changed.wait(g) {
                Ok(g) => g,
                Err(_) => return,
            };
        }
    }
}

/// A call counted in [`Load`], counted out on drop.
struct Counted<'a>(&'a Load);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// Who reads the socket: taken by one call thread at a time (see the module header).
#[derive(Default)]
struct Turns {
    state: Mutex<TurnState>,
    changed: Condvar,
}

#[derive(Default)]
struct TurnState {
    /// A thread is reading (or about to).
    taken: bool,
    /// Call threads waiting to read.
    waiting: usize,
    /// The connection has ended: no thread reads again.
    ended: bool,
}

impl Turns {
    /// Waits until no thread reads, then reads; false once the connection has ended.
    fn take(&self) -> bool {
        let Ok(mut g) = self.state.lock() else { return false };
        g.waiting += 1;
        while g.taken && !g.ended {
            g = match self.changed.wait(g) {
                Ok(g) => g,
                Err(_) => return false,
            };
        }
        g.waiting -= 1;
        if g.ended {
            return false;
        }
        g.taken = true;
        true
    }

    /// Called by the reader with a call in hand: when another call thread waits to read, it reads
    /// from now on and this thread runs the call (true); otherwise this thread keeps reading.
    fn pass(&self) -> bool {
        let Ok(mut g) = self.state.lock() else { return false };
        if g.waiting == 0 {
            return false;
        }
        g.taken = false;
        drop(g);
        self.changed.notify_one();
        true
    }

    /// The connection has ended: every waiting thread returns.
    fn end(&self) {
        if let Ok(mut g) = self.state.lock() {
            g.ended = true;
            g.taken = false;
        }
        self.changed.notify_all();
    }
}

/// What one connection's call threads share.
struct Shared {
    session: Arc<Session>,
    writer: Arc<Writer>,
    load: Load,
    turns: Turns,
    stream: UnixStream,
    rt: Handle,
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
    let shared = Arc::new(Shared { session, writer, load: Load::default(), turns: Turns::default(), stream, rt });
    let Ok(events) = events else { return };
    // Without a second call thread (no thread to be had), every call runs on the blocking pool.
    let follower = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new().name("libvirt-calls".into()).spawn(move || call_thread(&shared)).ok()
    };
    call_thread(&shared);
    // Hang up first: a write blocked on a client that stopped reading fails now instead of
    // holding this connection's threads (after CONNECT_CLOSE every reply is already out).
    let _ = event_half.shutdown(std::net::Shutdown::Both);
    if let Some(follower) = follower {
        let _ = follower.join();
    }
    shared.load.drain();
    shared.session.close();
    let _ = shared.session.out.try_send(Out::Close);
    let _ = events.join();
}

/// The session, created inside the runtime (its forwarder task is spawned there).
fn session_in(rt: &Handle, state: AppState, read_only: bool, out: mpsc::Sender<Out>) -> Arc<Session> {
    let _entered = rt.enter();
    Session::new(state, read_only, out)
}

/// Runs one call and writes its reply. A call that panics is answered with an internal error and
/// logged, and the connection goes on: unanswered, its client would wait for ever (libvirt's
/// clients have no call timeout, and keepalive goes on being answered).
fn run_call(c: &Shared, header: &Header, body: &[u8]) {
    let call = AssertUnwindSafe(|| c.rt.block_on(c.session.call(header, &body[packet::HEADER_BYTES..])));
    let reply = std::panic::catch_unwind(call).unwrap_or_else(|_| {
        tracing::error!(
            procedure = header.proc_,
            serial = header.serial,
            "a libvirt call panicked; answered with an internal error"
        );
        packet::reply_error(header, &panicked())
    });
    c.writer.send(&reply);
}

/// One call thread: reads while it has the turn; a call read is run here when the other call
/// thread takes over the reading, else on the blocking pool while this one reads on. Returns
/// once the connection has ended.
fn call_thread(c: &Arc<Shared>) {
    while c.turns.take() {
        loop {
            let Some((header, body)) = read_until_call(c) else {
                c.turns.end();
                return;
            };
            if header.proc_ == REMOTE_PROC_CONNECT_CLOSE {
                // The reply goes out after every earlier call's; then the connection ends.
                c.load.leave();
                c.load.drain();
                run_call(c, &header, &body);
                c.turns.end();
                return;
            }
            if c.turns.pass() {
                let _counted = c.load.counted();
                run_call(c, &header, &body);
                break;
            }
            let pooled = Arc::clone(c);
            c.rt.spawn_blocking(move || {
                let _counted = pooled.load.counted();
                run_call(&pooled, &header, &body);
            });
        }
    }
}

/// Reads packets, answering those that need no call, until a call arrives (counted in: `Load`);
/// `None` when the connection ends (end of stream, a framing error, a full load's lock lost).
fn read_until_call(c: &Shared) -> Option<(Header, Vec<u8>)> {
    loop {
        let body = match read_packet(&c.stream) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "libvirt connection closed on a framing error");
                return None;
            }
        };
        let Ok((header, _)) = packet::parse(&body) else { return None };
        match (header.prog, header.vers) {
            (KEEPALIVE_PROGRAM, KEEPALIVE_PROTOCOL_VERSION) => {
                if header.proc_ == KEEPALIVE_PROC_PING && header.type_ == VIR_NET_MESSAGE {
                    c.writer.send(&packet::keepalive(KEEPALIVE_PROC_PONG));
                }
                // PONG or anything else on this program: nothing to answer.
            }
            (REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION) if header.type_ == VIR_NET_CALL => {
                if header.status != VIR_NET_OK {
                    let err = packet::error(ERR_RPC, from::RPC, "Unexpected message status");
                    c.writer.send(&packet::reply_error(&header, &err));
                    continue;
                }
                return c.load.enter().then_some((header, body));
            }
            (REMOTE_PROGRAM, REMOTE_PROTOCOL_VERSION) => {
                // Replies, events or streams from a client: nothing this server asked for.
            }
            (prog, vers) => {
                // As libvirtd: the error echoes the call's header.
                let err = packet::error(ERR_RPC, from::RPC, format!("Cannot find program {prog} version {vers}"));
                c.writer.send(&packet::reply_error(&header, &err));
            }
        }
    }
}

/// Reads one packet's body (header and payload); `None` at a clean end of stream. The buffer
/// grows as bytes arrive, so a length word announcing 32 MiB costs nothing until sent.
fn read_packet(mut rd: &UnixStream) -> std::io::Result<Option<Vec<u8>>> {
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
