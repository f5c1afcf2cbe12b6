//! Watching the fleet: [`watch`] reports the commits other hosts make to any domain's snapshot
//! metadata under a store prefix, as [`RemoteChange`]s (snapshots created, deleted, the current
//! one moved), so a host can tell its own clients what changed elsewhere.
//!
//! It watches `P/ptr/` only (every commit rewrites its domain's pointer once, whatever its size,
//! and the pointer names its writer), from its own thread with its own runtime and connection.
//! For a commit of another host it reads the names (keys only) and the current snapshot of the
//! generation before and after it, at those revisions: O(N) names per remote commit, paid by the
//! watcher, not by the operation. Commits of this host are not reported (its own operations are
//! reported by whoever made them). A watch that breaks (a member down) resumes from the last
//! revision it saw, so nothing between is missed unless the cluster compacted it.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use etcd_client::{Client, EventType, GetOptions, WatchOptions};
use virtplug_plugin_sdk::{Error, Result, codes};

use crate::{
    backend::{connect_options, pointer_gid, pointer_writer, runtime, store_error},
    keys::{Keys, prefix_end, unhex},
    uri::{StoreConfig, StoreUri},
};

/// How often the watcher thread looks whether its [`Watch`] was dropped.
const POLL: Duration = Duration::from_millis(200);

/// What another host changed in one commit of a domain's snapshot metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteChange {
    /// The domain (the store's key: the mock's and qemu's domain UUID).
    pub dom: String,
    /// The host that committed it.
    pub host: String,
    /// Snapshots the commit created, by name.
    pub created: Vec<String>,
    /// Snapshots the commit deleted, by name.
    pub deleted: Vec<String>,
    /// The current snapshot after the commit, when the commit moved it.
    pub current: Option<Option<String>>,
}

/// A running watch: dropping it ends the watcher thread (within 200 ms, its poll period).
#[derive(Debug)]
pub struct Watch {
    stop: Arc<AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The snapshot names and the current one of a domain at one revision.
type State = (BTreeSet<String>, Option<String>);

/// Starts watching the store of `uri` as host `cfg.host`: `on` is called on the watcher's thread
/// for every commit another host makes after `watch` returns. Cluster unreachable: SYSTEM_ERROR.
pub fn watch(uri: &str, cfg: &StoreConfig, on: impl FnMut(RemoteChange) + Send + 'static) -> Result<Watch> {
    let parsed = StoreUri::parse(uri)?;
    let keys = Keys::new(&parsed.prefix);
    let rt = runtime()?;
    let mut client = rt
        .block_on(Client::connect(&parsed.endpoints, Some(connect_options(cfg)?)))
        .map_err(|e| store_error(uri, &e))?;
    // The revision the watch starts after: what was committed before this returns is not news.
    let opts = GetOptions::new().with_prefix().with_count_only();
    let start = rt
        .block_on(client.get(keys.pointers(), Some(opts)))
        .map_err(|e| store_error(uri, &e))?
        .header()
        .map_or(0, |h| h.revision());
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = Watcher { client, keys, host: cfg.host.clone(), stop: stop.clone(), known: HashMap::new() };
    std::thread::Builder::new()
        .name("etcd-watch".into())
        .spawn(move || rt.block_on(watcher.run(start, on)))
        .map_err(|e| Error::new(codes::SYSTEM_ERROR, format!("cannot start the metadata store's watcher: {e}")))?;
    Ok(Watch { stop })
}

struct Watcher {
    client: Client,
    keys: Keys,
    host: String,
    stop: Arc<AtomicBool>,
    /// Each domain's state after the last remote commit seen (dropped on a commit of this host,
    /// whose effect is read again at the next remote one).
    known: HashMap<String, State>,
}

impl Watcher {
    async fn run(mut self, mut after: i64, mut on: impl FnMut(RemoteChange)) {
        while !self.stop.load(Ordering::SeqCst) {
            let opts = WatchOptions::new().with_prefix().with_start_revision(after + 1);
            let Ok(mut stream) = self.client.watch(self.keys.pointers(), Some(opts)).await else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            while !self.stop.load(Ordering::SeqCst) {
                // A timeout only looks at `stop` again (receiving a message is cancel-safe).
                let msg = match tokio::time::timeout(POLL, stream.message()).await {
                    Err(_) => continue,
                    Ok(Ok(Some(m))) => m,
                    Ok(_) => break,
                };
                if msg.canceled() {
                    // Compacted past `after`: resume at the oldest revision still kept.
                    after = after.max(msg.compact_revision() - 1);
                    break;
                }
                for ev in msg.events() {
                    let Some(kv) = ev.kv() else { continue };
                    after = after.max(kv.mod_revision());
                    if ev.event_type() != EventType::Put {
                        continue;
                    }
                    let key = String::from_utf8_lossy(kv.key());
                    let Some(dom) = key.strip_prefix(&self.keys.pointers()).and_then(unhex) else { continue };
                    if let Some(change) = self.commit(dom, kv.value(), kv.mod_revision()).await {
                        on(change);
                    }
                }
            }
        }
    }

    /// The change of one commit of `dom` at revision `rev` (pointer value `value`), if another
    /// host made it and its generations could be read.
    async fn commit(&mut self, dom: String, value: &[u8], rev: i64) -> Option<RemoteChange> {
        let writer = pointer_writer(value);
        if writer == self.host {
            self.known.remove(&dom);
            return None;
        }
        let before = match self.known.remove(&dom) {
            Some(s) => s,
            None => self.state_at(&dom, rev - 1).await.ok()?,
        };
        let now = self.generation_at(&dom, &pointer_gid(value), rev).await.ok()?;
        let change = RemoteChange {
            dom: dom.clone(),
            host: writer,
            created: now.0.difference(&before.0).cloned().collect(),
            deleted: before.0.difference(&now.0).cloned().collect(),
            current: (now.1 != before.1).then(|| now.1.clone()),
        };
        self.known.insert(dom, now);
        Some(change)
    }

    /// `dom`'s state at revision `rev` (empty when it had no pointer then).
    async fn state_at(&mut self, dom: &str, rev: i64) -> std::result::Result<State, etcd_client::Error> {
        let r = self.client.get(self.keys.pointer(dom), Some(GetOptions::new().with_revision(rev))).await?;
        match r.kvs().first() {
            Some(kv) => self.generation_at(dom, &pointer_gid(kv.value()), rev).await,
            None => Ok(State::default()),
        }
    }

    /// The names (keys only, page by page) and the current snapshot of generation `gid` at `rev`.
    async fn generation_at(
        &mut self,
        dom: &str,
        gid: &str,
        rev: i64,
    ) -> std::result::Result<State, etcd_client::Error> {
        let gprefix = self.keys.generation(dom, gid);
        let names = format!("{gprefix}s/");
        let end = prefix_end(&names);
        let mut state = State::default();
        let mut from = names.clone();
        loop {
            let opts = GetOptions::new().with_range(end.clone()).with_revision(rev).with_keys_only().with_limit(10_000);
            let r = self.client.get(from.clone(), Some(opts)).await?;
            for kv in r.kvs() {
                if let Some(name) = String::from_utf8_lossy(kv.key()).strip_prefix(&names).and_then(unhex) {
                    state.0.insert(name);
                }
            }
            match r.kvs().last() {
                Some(last) if r.more() => from = format!("{}\0", String::from_utf8_lossy(last.key())),
                _ => break,
            }
        }
        let r = self.client.get(self.keys.current(dom, gid), Some(GetOptions::new().with_revision(rev))).await?;
        state.1 = r.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned());
        Ok(state)
    }
}
