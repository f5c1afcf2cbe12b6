//! [`EtcdBackend`]: the SDK's [`MetadataBackend`] on an etcd v3 cluster, with generations
//! (atomic whole-tree switches), fenced per-domain ownership and handover (see the crate
//! documentation for the key layout and the guarantees).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions, Identity, PutOptions,
    TlsOptions, Txn, TxnOp,
};
use virtplug_plugin_sdk::{
    Error, Result, codes,
    metadata::{Commit, Loaded, MetadataBackend, Record},
    model::xml::{self, FormatFlags, ParseFlags},
};

use crate::{
    keys::{Keys, hex, prefix_end, unhex},
    uri::{StoreConfig, StoreUri},
};

/// Operations per etcd transaction when a generation is written in chunks: below etcd's default
/// `--max-txn-ops` (128), with room for the guards.
pub const CHUNK_OPS: usize = 100;
/// Value bytes per chunk: below etcd's default request limit (1.5 MiB).
pub const CHUNK_BYTES: usize = 1024 * 1024;
/// Keys per page when a generation is read (the gRPC message limit is 4 MiB by default).
const PAGE: i64 = 1000;
/// Attempts of an idempotent request while the cluster elects a leader or a member is down.
const RETRIES: u32 = 20;

/// What a failed request means to the caller.
pub(crate) fn store_error(uri: &str, e: &etcd_client::Error) -> Error {
    let text = e.to_string().replace('\n', " ");
    let unreachable = match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        // Unavailable (14), DeadlineExceeded (4), Cancelled (1), Unknown (2: a reset connection).
        etcd_client::Error::GRpcStatus(s) => matches!(s.code() as i32, 1 | 2 | 4 | 14),
        _ => false,
    };
    if unreachable {
        // SYSTEM_ERROR, as libvirt reports a remote it cannot reach ("unable to connect ...").
        Error::new(codes::SYSTEM_ERROR, format!("unable to reach the metadata store {uri}: {text}"))
    } else {
        Error::new(codes::OPERATION_FAILED, format!("metadata store {uri}: {text}"))
    }
}

fn retryable(e: &Error) -> bool {
    e.code == codes::SYSTEM_ERROR
}

/// The error of every write once this host's lease is gone.
pub fn lease_lost(host: &str) -> Error {
    Error::new(
        codes::OPERATION_FAILED,
        format!("host '{host}' lost its lease on the metadata store: it owns no domain and can write no more"),
    )
}

/// The error of a write to a domain another host owns.
pub fn owned_by(dom: &str, owner: &str) -> Error {
    Error::new(codes::OPERATION_INVALID, format!("the snapshot metadata of domain '{dom}' is owned by host '{owner}'"))
}

/// A host's connection to the fleet's metadata on etcd (see the crate documentation).
pub struct EtcdBackend {
    /// A sync plugin drives the async client through a private current-thread runtime and
    /// `block_on`: the plugin's entry points are synchronous (called on the host's blocking
    /// threads), a current-thread runtime starts no worker threads per connection, and the
    /// client's connection tasks run exactly while a call waits on them.
    rt: tokio::runtime::Runtime,
    client: Client,
    uri: String,
    keys: Keys,
    host: String,
    lease: i64,
    lost: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Domains this backend has seen itself own (a cache: every write still compares).
    owned: HashSet<String>,
    /// Per domain, the pointer of the last generation this connection loaded or committed (its
    /// version is that generation's number). The records themselves stay with the caller
    /// ([`Metadata`](virtplug_plugin_sdk::Metadata) keeps the built tree): a read whose pointer
    /// still matches is confirmed with one small read ([`MetadataBackend::load_since`]), and a
    /// write on the caller's copy of it sends its delta with no read at all (the write's compare
    /// on the pointer's mod revision fences a stale copy; only a failed compare re-reads).
    cache: HashMap<String, Pointer>,
    /// Requests sent to the cluster by this connection (every attempt counts): an inspection
    /// for tests and benches.
    requests: AtomicU64,
    /// Writes this connection made (each pointer it writes carries a fresh write id).
    writes: AtomicU64,
    /// A fault for tests ([`Self::lose_reply_after`]): transactions to commit before one whose
    /// reply is thrown away; 0 when none is to be lost.
    lose_reply: AtomicU64,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("uri", &self.uri)
            .field("host", &self.host)
            .field("lease", &self.lease)
            .finish()
    }
}

/// The client options of `cfg`; its TLS files are read here (unreadable: INVALID_ARG naming
/// the file).
pub(crate) fn connect_options(cfg: &StoreConfig) -> Result<ConnectOptions> {
    let mut o = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
    if let Some((u, p)) = &cfg.user {
        o = o.with_user(u.clone(), p.clone());
    }
    if let Some(tls) = &cfg.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| {
                Error::new(codes::INVALID_ARG, format!("store config: TLS file '{}' cannot be read: {e}", p.display()))
            })
        };
        let mut t = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
        if let Some((cert, key)) = &tls.identity {
            t = t.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        o = o.with_tls(t);
    }
    Ok(o)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(codes::SYSTEM_ERROR, format!("cannot start the metadata store's runtime: {e}")))
}

fn parse_record(name_hex: &str, value: &[u8]) -> Result<Record> {
    let corrupt = || Error::new(codes::OPERATION_FAILED, format!("metadata store: corrupt snapshot record {name_hex}"));
    let text = std::str::from_utf8(value).map_err(|_| corrupt())?;
    let (seq, body) = text.split_once('\n').ok_or_else(corrupt)?;
    let seq = seq.parse().map_err(|_| corrupt())?;
    let def = xml::parse(body, ParseFlags { redefine: true, ..Default::default() })?;
    if unhex(name_hex).as_deref() != Some(def.name.as_str()) {
        return Err(corrupt());
    }
    Ok(Record { def, seq })
}

fn record_value(r: &Record) -> String {
    let flags = FormatFlags { secure: true, internal: false, current: false };
    format!("{}\n{}", r.seq, xml::format(&r.def, None, flags))
}

/// A domain's pointer as read: the live generation and the pointer's revisions.
#[derive(Debug, Clone, Default)]
struct Pointer {
    gid: Option<String>,
    mod_revision: i64,
    version: i64,
    /// The value as written (`<gid>\n<writer host>\n<write id>`): unique to the write.
    value: String,
}

/// What a transaction did: the revision it committed at (`None`: a guard failed), and whether
/// an earlier attempt of it went unanswered. Such an attempt may have committed all the same
/// (etcd applies a proposal the client stopped waiting for), and then it is that attempt that
/// made the retry's guard fail.
struct TxnOutcome {
    revision: Option<i64>,
    uncertain: bool,
}

impl EtcdBackend {
    /// Connects to the cluster of `uri` as the host `cfg.host`, joining the host's lease (the
    /// one other processes of this host keep alive) or granting one, and keeps it alive from a
    /// thread of its own until dropped. Cluster unreachable: SYSTEM_ERROR.
    pub fn connect(uri: &str, cfg: &StoreConfig) -> Result<Self> {
        let parsed = StoreUri::parse(uri)?;
        let rt = runtime()?;
        let keys = Keys::new(&parsed.prefix);
        let client = rt
            .block_on(Client::connect(&parsed.endpoints, Some(connect_options(cfg)?)))
            .map_err(|e| store_error(uri, &e))?;
        let mut this = Self {
            rt,
            client,
            uri: uri.to_owned(),
            keys,
            host: cfg.host.clone(),
            lease: 0,
            lost: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
            owned: HashSet::new(),
            cache: HashMap::new(),
            requests: Default::default(),
            writes: Default::default(),
            lose_reply: Default::default(),
        };
        this.lease = this.join_lease(cfg.lease_ttl)?;
        this.spawn_keeper(&parsed, cfg)?;
        Ok(this)
    }

    /// The store's identity, the same for every host and URI spelling of it:
    /// `etcd://<members, sorted>/<prefix>`.
    pub fn store_id(&self) -> String {
        match StoreUri::parse(&self.uri) {
            Ok(mut u) => {
                u.endpoints.sort();
                format!("etcd://{}{}", u.endpoints.join(","), u.prefix)
            }
            // Parsed once at connect: cannot fail now; the URI itself is the next best name.
            Err(_) => self.uri.clone(),
        }
    }

    /// This host's name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Requests this connection has sent to the cluster so far (each retry counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// This host's lease id.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// The host's lease: the live one registered under `hosts/<host>`, else a fresh one
    /// registered there (created only if absent, so two processes of a host agree on one).
    fn join_lease(&mut self, ttl: i64) -> Result<i64> {
        let key = self.keys.host(&self.host);
        for _ in 0..RETRIES {
            let got = self.retry(|mut c| {
                let key = key.clone();
                async move { c.get(key, None).await }
            })?;
            if let Some(kv) = got.kvs().first() {
                let id: i64 = std::str::from_utf8(kv.value()).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
                if id != 0 && kv.lease() == id {
                    return Ok(id);
                }
            }
            let grant = self.retry(|mut c| async move { c.lease_grant(ttl, None).await })?;
            let id = grant.id();
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(key.clone(), id.to_string(), Some(PutOptions::new().with_lease(id)))]);
            match self.txn(txn) {
                Ok(true) => return Ok(id),
                Ok(false) => {}
                // The lease lapsed between its grant and its registration (a leader change, a
                // host starved of CPU for its TTL): take a fresh one.
                Err(e) if e.message.contains("requested lease not found") => continue,
                Err(e) => return Err(e),
            }
            // Another process of this host registered first: use its lease.
            let _ = self.rt.block_on(self.client.lease_revoke(id));
        }
        Err(Error::new(codes::OPERATION_FAILED, format!("host '{}' cannot register its lease", self.host)))
    }

    /// Keeps the lease alive from a thread with its own runtime and connection (a current-thread
    /// runtime only runs while someone blocks on it, and the plugin's may sit idle for longer
    /// than the lease). Marks the lease lost when the cluster says it expired.
    fn spawn_keeper(&self, parsed: &StoreUri, cfg: &StoreConfig) -> Result<()> {
        let rt = runtime()?;
        let (endpoints, opts) = (parsed.endpoints.clone(), connect_options(cfg)?);
        let (lease, lost, stop) = (self.lease, self.lost.clone(), self.stop.clone());
        let period = Duration::from_millis((cfg.lease_ttl as u64 * 1000 / 3).max(200));
        std::thread::Builder::new()
            .name("etcd-lease".into())
            .spawn(move || {
                rt.block_on(async move {
                    let mut conn: Option<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream)> = None;
                    while !stop.load(Ordering::SeqCst) {
                        if conn.is_none() {
                            let open = async {
                                let mut c = Client::connect(&endpoints, Some(opts.clone())).await?;
                                c.lease_keep_alive(lease).await
                            };
                            conn = tokio::time::timeout(period, open).await.ok().and_then(|c| c.ok());
                        }
                        // A renewal not answered within a period (its member died or lost the
                        // leadership, the stream stalled) is tried again at once on a fresh
                        // connection: the lease must not lapse while a member is being replaced.
                        let renewed = match conn.as_mut() {
                            Some((keeper, stream)) => {
                                let renew = async {
                                    keeper.keep_alive().await?;
                                    stream.message().await
                                };
                                match tokio::time::timeout(period, renew).await {
                                    Ok(Ok(Some(m))) if m.ttl() <= 0 => {
                                        lost.store(true, Ordering::SeqCst);
                                        return;
                                    }
                                    Ok(Ok(Some(_))) => true,
                                    _ => false,
                                }
                            }
                            None => false,
                        };
                        if !renewed {
                            conn = None;
                        }
                        let pause = if renewed { period } else { Duration::from_millis(100) };
                        let mut slept = Duration::ZERO;
                        while slept < pause && !stop.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            slept += Duration::from_millis(50);
                        }
                    }
                });
            })
            .map_err(|e| Error::new(codes::SYSTEM_ERROR, format!("cannot start the lease keeper: {e}")))?;
        Ok(())
    }

    /// Stops renewing the lease (what a paused or partitioned host does): once the TTL passes,
    /// the cluster drops the host's ownerships and every later write of this backend is refused.
    pub fn stop_keepalive(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Whether the cluster still knows this host's lease (false once it expired or was revoked).
    pub fn lease_alive(&mut self) -> Result<bool> {
        let lease = self.lease;
        let r = self.retry(|mut c| async move { c.lease_time_to_live(lease, None).await })?;
        // -1: expired or revoked (0 only means less than a second is left).
        let alive = r.ttl() >= 0;
        if !alive {
            self.lost.store(true, Ordering::SeqCst);
        }
        Ok(alive)
    }

    /// Runs an idempotent request, retrying while the cluster is unavailable (leader election,
    /// a member down); the last unavailability is the error.
    fn retry<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        self.attempts(false, f).map(|(v, _)| v)
    }

    /// [`Self::retry`], also saying how many attempts it took. `lossy`: a transaction, whose
    /// reply [`Self::lose_reply_after`] may throw away.
    fn attempts<T, F, Fut>(&self, lossy: bool, mut f: F) -> Result<(T, u32)>
    where
        F: FnMut(Client) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
    {
        let mut last = None;
        for attempt in 0..RETRIES {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let err = match self.rt.block_on(f(self.client.clone())) {
                Ok(_) if lossy && self.reply_lost() => Error::new(
                    codes::SYSTEM_ERROR,
                    format!("unable to reach the metadata store {}: the reply was lost (test fault)", self.uri),
                ),
                Ok(v) => return Ok((v, attempt + 1)),
                Err(e) => store_error(&self.uri, &e),
            };
            if !retryable(&err) || (self.never_reached() && attempt >= 2) {
                return Err(err);
            }
            last = Some(err);
            self.rt.block_on(async { tokio::time::sleep(Duration::from_millis(250)).await });
        }
        Err(last.unwrap_or_else(|| Error::internal("metadata store: no attempt made")))
    }

    /// A test's fault: after `n` more transactions of this connection commit, the reply of the
    /// next one is thrown away once it has committed, as when the cluster commits a request
    /// after the client's timeout. The connection then retries it, as it retries any
    /// unanswered request.
    pub fn lose_reply_after(&self, n: u64) {
        self.lose_reply.store(n + 1, Ordering::SeqCst);
    }

    /// Whether the fault of [`Self::lose_reply_after`] is still to come.
    pub fn reply_loss_pending(&self) -> bool {
        self.lose_reply.load(Ordering::SeqCst) > 0
    }

    /// Whether the reply of the transaction that just committed is to be thrown away.
    fn reply_lost(&self) -> bool {
        let left = self.lose_reply.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        left == Ok(1)
    }

    /// Before the lease exists the backend has never reached the cluster: fail fast then (three
    /// attempts) instead of retrying as for a member that went away.
    fn never_reached(&self) -> bool {
        self.lease == 0
    }

    /// Commits `txn`, retrying on unavailability; whether its guards held on the attempt that
    /// was answered. For a transaction whose own commit would fail its guards, an unanswered
    /// attempt that committed makes this false: such writes use [`Self::txn_at`] and check.
    fn txn(&self, txn: Txn) -> Result<bool> {
        self.txn_at(txn).map(|r| r.revision.is_some())
    }

    /// Commits `txn`, retrying on unavailability: see [`TxnOutcome`].
    fn txn_at(&self, txn: Txn) -> Result<TxnOutcome> {
        let (r, attempts) = self.attempts(true, |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })?;
        let revision = r.succeeded().then(|| r.header().map_or(0, |h| h.revision()));
        Ok(TxnOutcome { revision, uncertain: attempts > 1 })
    }

    fn check_live(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(lease_lost(&self.host));
        }
        Ok(())
    }

    /// The guards of every write to `dom`: this host owns it under its lease.
    fn owner_guards(&self, dom: &str) -> [Compare; 2] {
        let key = self.keys.owner(dom);
        [
            Compare::value(key.clone(), CompareOp::Equal, self.host.clone()),
            Compare::lease(key, CompareOp::Equal, self.lease),
        ]
    }

    /// The host owning `dom`, if any.
    pub fn owner(&mut self, dom: &str) -> Result<Option<String>> {
        Ok(self.owner_kv(dom)?.map(|(host, _)| host))
    }

    /// The host owning `dom` and the lease it holds it under, if any.
    fn owner_kv(&self, dom: &str) -> Result<Option<(String, i64)>> {
        let key = self.keys.owner(dom);
        let r = self.retry(|mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })?;
        Ok(r.kvs().first().map(|kv| (String::from_utf8_lossy(kv.value()).into_owned(), kv.lease())))
    }

    /// Takes `dom` for this host if no host owns it (one txn: exactly one of several racing hosts
    /// wins), then collects generations a dead writer left behind. Already ours: nothing to do.
    /// Owned by another host: OPERATION_INVALID naming it.
    pub fn claim(&mut self, dom: &str) -> Result<()> {
        self.check_live()?;
        let key = self.keys.owner(dom);
        let put = TxnOp::put(key.clone(), self.host.clone(), Some(PutOptions::new().with_lease(self.lease)));
        let txn = Txn::new().when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)]).and_then([put]);
        if !self.txn(txn)? {
            let txn = Txn::new().when(self.owner_guards(dom));
            if !self.txn(txn)? {
                return Err(self.refusal(dom)?);
            }
            self.owned.insert(dom.to_owned());
            return Ok(());
        }
        self.owned.insert(dom.to_owned());
        self.collect_orphans(dom)
    }

    /// Why a guarded write to `dom` was refused: the lease is gone, or another host owns it.
    fn refusal(&mut self, dom: &str) -> Result<Error> {
        self.owned.remove(dom);
        if self.lost.load(Ordering::SeqCst) || !self.lease_alive()? {
            return Ok(lease_lost(&self.host));
        }
        Ok(match self.owner(dom)? {
            Some(owner) if owner != self.host => owned_by(dom, &owner),
            Some(_) => Error::new(
                codes::OPERATION_FAILED,
                format!("the snapshot metadata of domain '{dom}' is held under another lease of host '{}'", self.host),
            ),
            None => Error::new(
                codes::OPERATION_FAILED,
                format!("the snapshot metadata of domain '{dom}' changed while it was written; nothing was written"),
            ),
        })
    }

    /// Hands `dom` to `to_host` in one transaction: this host must own it under its live lease
    /// and `to_host` must be in the fleet (its lease live); the owner key moves to that lease.
    pub fn handover(&mut self, dom: &str, to_host: &str) -> Result<()> {
        self.check_live()?;
        let hkey = self.keys.host(to_host);
        let r = self.retry(|mut c| {
            let hkey = hkey.clone();
            async move { c.get(hkey, None).await }
        })?;
        let target = r.kvs().first().map(|kv| (kv.value().to_vec(), kv.lease()));
        let Some((value, lease)) = target.filter(|(_, l)| *l != 0) else {
            return Err(Error::new(
                codes::OPERATION_INVALID,
                format!("host '{to_host}' is not in the fleet (it holds no live lease)"),
            ));
        };
        let mut when = self.owner_guards(dom).to_vec();
        when.push(Compare::value(hkey, CompareOp::Equal, value));
        let put = TxnOp::put(self.keys.owner(dom), to_host, Some(PutOptions::new().with_lease(lease)));
        let outcome = self.txn_at(Txn::new().when(when).and_then([put]))?;
        // An unanswered attempt that committed fails the retry's guards: the owner key then
        // already names `to_host` under its lease.
        if outcome.revision.is_none() && !(outcome.uncertain && self.owner_kv(dom)? == Some((to_host.into(), lease))) {
            return Err(self.refusal(dom)?);
        }
        self.owned.remove(dom);
        Ok(())
    }

    fn pointer(&self, dom: &str) -> Result<(Pointer, i64)> {
        let key = self.keys.pointer(dom);
        let r = self.retry(|mut c| {
            let key = key.clone();
            async move { c.get(key, None).await }
        })?;
        let rev = r.header().map_or(0, |h| h.revision());
        let p = r.kvs().first().map_or_else(Pointer::default, |kv| Pointer {
            gid: Some(pointer_gid(kv.value())),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
            value: String::from_utf8_lossy(kv.value()).into_owned(),
        });
        Ok((p, rev))
    }

    /// Every key-value under `prefix` as of `revision`, page by page.
    pub(crate) fn range_at(&self, prefix: &str, revision: i64, keys_only: bool) -> Result<Vec<(String, Vec<u8>)>> {
        let end = prefix_end(prefix);
        let mut from = prefix.to_owned();
        let mut out = Vec::new();
        loop {
            let mut opts = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision > 0 {
                opts = opts.with_revision(revision);
            }
            if keys_only {
                opts = opts.with_keys_only();
            }
            let r = self.retry(|mut c| {
                let (from, opts) = (from.clone(), opts.clone());
                async move { c.get(from, Some(opts)).await }
            })?;
            for kv in r.kvs() {
                out.push((String::from_utf8_lossy(kv.key()).into_owned(), kv.value().to_vec()));
            }
            match r.kvs().last() {
                Some(last) if r.more() => from = format!("{}\0", String::from_utf8_lossy(last.key())),
                _ => return Ok(out),
            }
        }
    }

    /// The pointer, then the generation it names as of the pointer's read revision (so a switch
    /// in between cannot mix two generations); `None` instead of the records when the pointer is
    /// still the one of generation `known` this connection last loaded or committed.
    fn load_at(&mut self, dom: &str, known: Option<u64>) -> Result<(Option<Loaded>, Pointer)> {
        let (p, rev) = self.pointer(dom)?;
        if let (Some(g), Some(cp)) = (known, self.cache.get(dom))
            && cp.version as u64 == g
            && cp.mod_revision == p.mod_revision
            && cp.gid == p.gid
        {
            return Ok((None, p));
        }
        self.cache.remove(dom);
        let loaded = self.read_generation(dom, &p, rev)?;
        self.cache.insert(dom.to_owned(), p.clone());
        Ok((Some(loaded), p))
    }

    /// The generation `p` names, read as of revision `rev`.
    fn read_generation(&self, dom: &str, p: &Pointer, rev: i64) -> Result<Loaded> {
        let Some(gid) = p.gid.clone() else {
            return Ok(Loaded::default());
        };
        let gprefix = self.keys.generation(dom, &gid);
        let mut loaded = Loaded { generation: p.version as u64, ..Loaded::default() };
        for (key, value) in self.range_at(&gprefix, rev, false)? {
            let rest = &key[gprefix.len()..];
            if rest == "current" {
                loaded.current = Some(String::from_utf8_lossy(&value).into_owned());
            } else if let Some(name_hex) = rest.strip_prefix("s/") {
                loaded.records.push(parse_record(name_hex, &value)?);
            }
        }
        Ok(loaded)
    }

    /// The cluster's floor for benches: one single-key transaction round trip (an unguarded put
    /// of `key` under the store's prefix).
    pub fn floor_txn(&mut self, key: &str) -> Result<()> {
        let txn = Txn::new().and_then([TxnOp::put(format!("{}/bench/{key}", self.keys.prefix()), "x", None)]);
        self.txn(txn).map(|_| ())
    }

    /// Raw puts for benches: `values` under `P/bench/<key>/<i>`, in unguarded transactions of
    /// the same chunk size as a generation write; the cluster's raw throughput for those bytes.
    pub fn raw_puts(&mut self, key: &str, values: &[String]) -> Result<()> {
        for (n, chunk) in values.chunks(CHUNK_OPS).enumerate() {
            let ops: Vec<TxnOp> = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    TxnOp::put(format!("{}/bench/{key}/{}", self.keys.prefix(), n * CHUNK_OPS + i), v.as_str(), None)
                })
                .collect();
            self.txn(Txn::new().and_then(ops))?;
        }
        Ok(())
    }

    /// How many keys `dom`'s generations hold (the live one's snapshots and current, plus any
    /// orphan): an inspection for tools and tests.
    pub fn stored_keys(&mut self, dom: &str) -> Result<i64> {
        let prefix = self.keys.generations(dom);
        let end = prefix_end(&prefix);
        let r = self.retry(|mut c| {
            let (prefix, end) = (prefix.clone(), end.clone());
            async move { c.get(prefix, Some(GetOptions::new().with_range(end).with_count_only())).await }
        })?;
        Ok(r.count())
    }

    /// Deletes every generation of `dom` except the live one (what a writer that died between
    /// its chunks and its switch left), guarded by ownership.
    pub fn collect_orphans(&mut self, dom: &str) -> Result<()> {
        let (p, _) = self.pointer(dom)?;
        let gens = self.keys.generations(dom);
        let mut seen = HashSet::new();
        for (key, _) in self.range_at(&gens, 0, true)? {
            if let Some((gid, _)) = key[gens.len()..].split_once('/')
                && Some(gid) != p.gid.as_deref()
            {
                seen.insert(gid.to_owned());
            }
        }
        for gid in seen {
            let prefix = self.keys.generation(dom, &gid);
            let del = TxnOp::delete(prefix, Some(DeleteOptions::new().with_prefix()));
            self.txn(Txn::new().when(self.owner_guards(dom)).and_then([del]))?;
        }
        Ok(())
    }

    /// Writes `commit` as a delta under the live generation in one transaction guarded by the
    /// pointer's mod revision (the pointer is rewritten, so the next writer's guard moves).
    fn write_delta(&mut self, dom: &str, p: &Pointer, gid: &str, commit: &Commit) -> Result<Option<Pointer>> {
        let mut ops = Vec::with_capacity(commit.put.len() + commit.remove.len() + 2);
        for r in &commit.put {
            ops.push(TxnOp::put(self.keys.snapshot(dom, gid, &hex(&r.def.name)), record_value(r), None));
        }
        for name in &commit.remove {
            ops.push(TxnOp::delete(self.keys.snapshot(dom, gid, &hex(name)), None));
        }
        ops.push(match &commit.current {
            Some(c) => TxnOp::put(self.keys.current(dom, gid), c.as_str(), None),
            None => TxnOp::delete(self.keys.current(dom, gid), None),
        });
        let value = self.pointer_value(gid);
        ops.push(TxnOp::put(self.keys.pointer(dom), value.as_str(), None));
        let mut when = self.owner_guards(dom).to_vec();
        when.push(Compare::mod_revision(self.keys.pointer(dom), CompareOp::Equal, p.mod_revision));
        let outcome = self.txn_at(Txn::new().when(when).and_then(ops))?;
        self.written(dom, outcome, p, gid, value)
    }

    /// The pointer a write of `value` (naming generation `gid`, over `p`) left, `None` when its
    /// guards refused it. A guard that failed after an unanswered attempt is checked against
    /// the pointer: if it holds `value` (no other write can have written it), that attempt
    /// committed, and the write is done.
    fn written(
        &self,
        dom: &str,
        outcome: TxnOutcome,
        p: &Pointer,
        gid: &str,
        value: String,
    ) -> Result<Option<Pointer>> {
        if let Some(mod_revision) = outcome.revision {
            return Ok(Some(Pointer { gid: Some(gid.to_owned()), mod_revision, version: p.version + 1, value }));
        }
        if outcome.uncertain {
            let now = self.pointer(dom)?.0;
            if now.value == value {
                return Ok(Some(now));
            }
        }
        Ok(None)
    }

    /// Writes the whole tree under a fresh generation in chunks, then switches the pointer in
    /// one compare-and-swap that also deletes the old generation. The unchanged records are
    /// copied as stored (read from the live generation, not parsed): if the pointer moved since
    /// `p`, what was read may be another state, but then every chunk's and the switch's compare
    /// fails. A failed switch removes the new generation (or leaves it to
    /// [`Self::collect_orphans`] if even that fails).
    fn write_generation(&mut self, dom: &str, p: &Pointer, commit: &Commit) -> Result<Option<Pointer>> {
        let mut tree: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        if let Some(old) = &p.gid {
            let oprefix = self.keys.generation(dom, old);
            for (key, value) in self.range_at(&oprefix, 0, false)? {
                if let Some(name_hex) = key[oprefix.len()..].strip_prefix("s/") {
                    tree.insert(name_hex.to_owned(), value);
                }
            }
        }
        for name in &commit.remove {
            tree.remove(&hex(name));
        }
        for r in &commit.put {
            tree.insert(hex(&r.def.name), record_value(r).into_bytes());
        }
        let gid = format!("{:x}-{:x}", p.mod_revision, std::process::id() as u128 ^ nanos());
        let mut ptr_guard = self.owner_guards(dom).to_vec();
        ptr_guard.push(Compare::mod_revision(self.keys.pointer(dom), CompareOp::Equal, p.mod_revision));
        let mut ops = Vec::new();
        let mut bytes = 0;
        let mut values: Vec<(String, Vec<u8>)> =
            tree.into_iter().map(|(name_hex, v)| (self.keys.snapshot(dom, &gid, &name_hex), v)).collect();
        if let Some(c) = &commit.current {
            values.push((self.keys.current(dom, &gid), c.clone().into_bytes()));
        }
        let n = values.len();
        for (i, (k, v)) in values.into_iter().enumerate() {
            bytes += k.len() + v.len();
            ops.push(TxnOp::put(k, v, None));
            if ops.len() == CHUNK_OPS || bytes >= CHUNK_BYTES || i + 1 == n {
                let chunk = Txn::new().when(ptr_guard.clone()).and_then(std::mem::take(&mut ops));
                bytes = 0;
                if !self.txn(chunk)? {
                    self.drop_generation(dom, &gid);
                    return Ok(None);
                }
            }
        }
        let value = self.pointer_value(&gid);
        let mut switch = vec![TxnOp::put(self.keys.pointer(dom), value.as_str(), None)];
        if let Some(old) = &p.gid {
            switch.push(TxnOp::delete(self.keys.generation(dom, old), Some(DeleteOptions::new().with_prefix())));
        }
        let outcome = self.txn_at(Txn::new().when(ptr_guard).and_then(switch))?;
        let written = self.written(dom, outcome, p, &gid, value)?;
        if written.is_none() {
            self.drop_generation(dom, &gid);
        }
        Ok(written)
    }

    /// The pointer's value for a write of this host naming generation `gid`, unique to the
    /// write (by which a write that went unanswered knows its own commit).
    fn pointer_value(&self, gid: &str) -> String {
        let n = self.writes.fetch_add(1, Ordering::Relaxed);
        format!("{gid}\n{}\n{:x}.{:x}.{n:x}", self.host, std::process::id(), nanos())
    }

    fn drop_generation(&self, dom: &str, gid: &str) {
        let del = TxnOp::delete(self.keys.generation(dom, gid), Some(DeleteOptions::new().with_prefix()));
        // Best effort: what stays is collected by the next claim.
        let _ = self.txn(Txn::new().when(self.owner_guards(dom)).and_then([del]));
    }
}

/// The generation id of a pointer's value (`<gid>\n<writer>\n<write id>`; before write ids,
/// `<gid>\n<writer>`).
pub(crate) fn pointer_gid(value: &[u8]) -> String {
    String::from_utf8_lossy(value).split('\n').next().unwrap_or_default().to_owned()
}

/// The host that wrote a pointer's value (empty if it names none).
pub(crate) fn pointer_writer(value: &[u8]) -> String {
    String::from_utf8_lossy(value).split('\n').nth(1).unwrap_or_default().to_owned()
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

impl Drop for EtcdBackend {
    fn drop(&mut self) {
        // The lease is the host's (other processes of it may share it): it is not revoked here;
        // it lapses one TTL after the last process of the host stops renewing it.
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl MetadataBackend for EtcdBackend {
    fn load(&mut self, dom: &str) -> Result<Loaded> {
        self.load_since(dom, None)?.ok_or_else(|| Error::internal("metadata store: a load confirmed nothing"))
    }

    /// One read of the pointer when it still names generation `known` as this connection last
    /// saw it; else the pointer and the generation it names.
    fn load_since(&mut self, dom: &str, known: Option<u64>) -> Result<Option<Loaded>> {
        Ok(self.load_at(dom, known)?.0)
    }

    fn update(&mut self, dom: &str, f: &mut dyn FnMut(Loaded) -> Result<Option<Commit>>) -> Result<()> {
        let mut f = |loaded: Option<Loaded>| f(loaded.unwrap_or_default());
        // Without a known generation `f` is always handed a fresh load.
        self.update_since(dom, None, &mut f).map(|_| ())
    }

    /// Hands `f` nothing (the caller's copy) when this connection last loaded or committed
    /// generation `known` (no read); a refused compare or an answer other than a commit is
    /// checked against the cluster before it counts (another connection or host may have
    /// written), re-running `f` on a fresh read if the pointer moved.
    fn update_since(
        &mut self,
        dom: &str,
        known: Option<u64>,
        f: &mut dyn FnMut(Option<Loaded>) -> Result<Option<Commit>>,
    ) -> Result<Option<u64>> {
        self.check_live()?;
        if !self.owned.contains(dom) {
            self.claim(dom)?;
        }
        let mut fresh = false;
        loop {
            let (given, p) = match (known, self.cache.get(dom)) {
                (Some(g), Some(p)) if !fresh && p.version as u64 == g => (None, p.clone()),
                _ => {
                    fresh = true;
                    self.load_at(dom, None)?
                }
            };
            let commit = match f(given) {
                Ok(Some(commit)) => commit,
                other => {
                    if !fresh && self.pointer(dom)?.0.mod_revision != p.mod_revision {
                        fresh = true;
                        continue;
                    }
                    return other.map(|_| Some(p.version as u64));
                }
            };
            let bytes: usize = commit.put.iter().map(|r| record_value(r).len()).sum();
            let small = commit.put.len() + commit.remove.len() + 2 <= CHUNK_OPS && bytes < CHUNK_BYTES;
            let written = match p.gid.clone() {
                Some(gid) if small => self.write_delta(dom, &p, &gid, &commit)?,
                _ => self.write_generation(dom, &p, &commit)?,
            };
            match written {
                Some(np) => {
                    let generation = np.version as u64;
                    self.cache.insert(dom.to_owned(), np);
                    return Ok(Some(generation));
                }
                None if !fresh => fresh = true,
                None => {
                    self.cache.remove(dom);
                    return Err(self.refusal(dom)?);
                }
            }
        }
    }
}
