//! The event log: every event gets the next sequence number and goes into a bounded ring (for
//! clients that resume with the last id they saw) and to live subscribers. The SSE route replays
//! what a client missed, then follows; a client further behind than the ring gets `reset`.

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use tokio::sync::broadcast;
use virtplug_host::remote::wire::{EventJson, TaskJson};

/// Events kept for resuming clients.
pub const RING: usize = 65_536;

/// The daemon's event log.
#[derive(Debug)]
pub struct EventLog {
    inner: Mutex<Ring>,
    live: broadcast::Sender<EventJson>,
}

#[derive(Debug, Default)]
struct Ring {
    next: u64,
    events: VecDeque<EventJson>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a reader gets: events after its cursor, or `None` when some were dropped from the ring.
pub type Replay = Option<Vec<EventJson>>;

impl Default for EventLog {
    fn default() -> Self {
        Self { inner: Mutex::new(Ring { next: 1, events: VecDeque::new() }), live: broadcast::channel(4096).0 }
    }
}

impl EventLog {
    /// Appends an event.
    pub fn emit(&self, kind: &str, uri: &str, domain: Option<&str>, snapshot: Option<&str>, task: Option<TaskJson>) {
        let Ok(mut ring) = self.inner.lock() else { return };
        let event = EventJson {
            seq: ring.next,
            kind: kind.to_owned(),
            uri: uri.to_owned(),
            domain: domain.map(str::to_owned),
            snapshot: snapshot.map(str::to_owned),
            task,
            time: now(),
        };
        ring.next += 1;
        if ring.events.len() == RING {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        // Sent under the lock, so live order equals sequence order.
        let _ = self.live.send(event);
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> u64 {
        self.inner.lock().map(|r| r.next - 1).unwrap_or(0)
    }

    /// Events with `seq > after`; `None` if the ring no longer holds all of them.
    pub fn since(&self, after: u64) -> Replay {
        let ring = self.inner.lock().ok()?;
        let last = ring.next - 1;
        let first = ring.events.front().map_or(ring.next, |e| e.seq);
        // A cursor from the future (another daemon run) or older than the ring: `reset`.
        if after > last || after + 1 < first {
            return None;
        }
        Some(ring.events.iter().filter(|e| e.seq > after).cloned().collect())
    }

    /// Subscribes to live events (call before [`EventLog::since`] to miss nothing).
    pub fn subscribe(&self) -> broadcast::Receiver<EventJson> {
        self.live.subscribe()
    }
}
