//! The event log: every event gets the next sequence number and goes into a bounded ring (for
//! clients that resume with the last id they saw) and to live subscribers. The SSE route replays
//! what a client missed, then follows; a client further behind than the ring gets `reset`.
//!
//! Sequence numbers never repeat across daemon runs: they are reserved in blocks recorded in
//! the state directory (`event-seq`), and a new run starts past the last reserved block with a
//! gap, so a cursor from an earlier run is always behind this run's first event and gets
//! `reset` — never another run's events under the same numbers.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use tokio::sync::broadcast;
use virtplug_wire::{EventJson, TaskJson};

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
    /// Sequence numbers below this are reserved on disk (`u64::MAX` without a state file).
    reserved: u64,
    /// Where reservations are recorded.
    file: Option<PathBuf>,
}

/// Sequence numbers reserved per write of the reservation file.
pub const SEQ_BLOCK: u64 = 1 << 16;

/// Records that numbers below `upto` may have been handed out (temporary file, fsync, rename).
fn reserve(file: &Path, upto: u64) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = file.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(format!("{upto}\n").as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, file)?;
    if let Some(dir) = file.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What a reader gets: events after its cursor, or `None` when some were dropped from the ring.
pub type Replay = Option<Vec<EventJson>>;

impl Default for EventLog {
    fn default() -> Self {
        let ring = Ring { next: 1, events: VecDeque::new(), reserved: u64::MAX, file: None };
        Self { inner: Mutex::new(ring), live: broadcast::channel(4096).0 }
    }
}

impl EventLog {
    /// An event log whose sequence numbers continue past every earlier run that used
    /// `state_dir` (see the module header). Fails when the reservation cannot be recorded.
    pub fn durable(state_dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(state_dir)?;
        let file = state_dir.join("event-seq");
        let next = match std::fs::read_to_string(&file) {
            // One number skipped past everything the last run may have handed out: its last
            // cursor is then always older than our first event.
            Ok(text) => {
                let last_reserved = text.trim().parse::<u64>().map_err(|e| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", file.display()))
                })?;
                last_reserved + 2
            }
            // The first run on this state directory.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(e),
        };
        let reserved = next + SEQ_BLOCK;
        reserve(&file, reserved)?;
        let ring = Ring { next, events: VecDeque::new(), reserved, file: Some(file) };
        Ok(Self { inner: Mutex::new(ring), live: broadcast::channel(4096).0 })
    }

    /// Appends an event.
    pub fn emit(&self, kind: &str, uri: &str, domain: Option<&str>, snapshot: Option<&str>, task: Option<TaskJson>) {
        let Ok(mut ring) = self.inner.lock() else { return };
        if ring.next >= ring.reserved {
            let upto = ring.next + SEQ_BLOCK;
            match ring.file.as_deref().map(|f| reserve(f, upto)) {
                Some(Err(e)) => tracing::error!(error = %e, "cannot record event sequence reservation"),
                _ => ring.reserved = upto,
            }
        }
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
        if ring.events.is_empty() {
            // Nothing emitted in this run yet: only this run's "nothing seen" cursor resumes.
            return (after == last).then(Vec::new);
        }
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
