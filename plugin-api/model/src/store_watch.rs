//! Lock-free reads of per-domain generations ([`GenerationWatch`]): the answer the daemon's
//! conditional reads ask for on every request, served from memory for as long as no
//! transaction has committed to the store, by any connection or process.
//!
//! # Why it is exact
//!
//! The store is always in WAL mode (`enter_wal` in `store.rs`). SQLite then keeps the
//! *wal-index header* at the start of the `-shm` shared memory, in two 48-byte copies at offsets
//! 0 and 48 (<https://sqlite.org/walformat.html>, "the wal-index header"): `iVersion` (3007000),
//! `iChange` (incremented by every committed transaction), `isInit`, the page size, `mxFrame`
//! (the last committed WAL frame), the database size, the checksum of the last frame, the WAL
//! salts (a new pair whenever the WAL restarts from its beginning) and a checksum over all of
//! it. A committing writer, in any process, writes the new header (copy 1, a memory barrier,
//! copy 0) before its commit returns; every reader finds the newest commit through it.
//!
//! So a header read now that is byte-for-byte the header read *before* one of our own SQLite
//! reads means that no transaction has committed since that read began: the value it read is
//! still the store's. Values read after a different header are never returned for this one.
//! A write acknowledged to anyone (its commit returned) has already changed the header, so the
//! next read anywhere misses the cache and reads the store. A value recorded with a header may
//! even be newer than that header (a commit landed between our header read and our query);
//! that only makes a later hit impossible, never a stale answer.
//!
//! The header is read as SQLite's own readers read it (`walIndexTryHdr`): copy 0, a barrier,
//! copy 1; it is used only when both copies are identical, initialised, of version 3007000 and
//! their checksum is right. Anything else (a writer half-way through its update, a header that
//! needs recovery) means no fast path this time: the value is read from the store.
//!
//! # How the header is reached
//!
//! Through SQLite's own mapping of the `-shm` file: the watch keeps its own read-only
//! connection, and asks that connection's file, through the public VFS interface, for the
//! region SQLite has already mapped (`xShmMap` with `bExtend` 0, which maps nothing new). The
//! `-shm` file is never opened here: closing any descriptor of a file drops every POSIX lock
//! this process holds on it, SQLite's included. The mapping lives as long as the connection
//! keeps its WAL open, that is as long as the connection lives, and both live in one
//! [`GenerationWatch`].
//!
//! # Limits
//!
//! - A store that is not (or no longer) in WAL mode is outside what the watch detects: a
//!   process switching it out of WAL mode writes the database without updating the header.
//!   Our stores are always WAL, and SQLite refuses that switch (`SQLITE_BUSY`) while another
//!   connection, the watch's included, holds the WAL open. Likewise a writer with
//!   `locking_mode=EXCLUSIVE` keeps its wal-index in private memory; it cannot take the lock it
//!   needs while the watch's connection is open.
//! - Without a usable mapping (an in-memory store, no database file yet, a `-shm` this process
//!   may only read, a VFS without shared memory) [`GenerationWatch::open`] gives `Ok(None)`
//!   and callers read through their store.
//! - Two headers compare equal only when every field does. An old header would come back only
//!   after 2^32 commits wrapped `iChange` *and* the WAL (salts, frame count, frame checksum)
//!   were the same again; a WAL restart always increments the first salt.
//! - The `-shm` memory is written by other processes; it is read with volatile loads and
//!   fences, as SQLite itself reads it, outside what Rust's memory model describes. Someone
//!   truncating the `-shm` file by hand would fault this process, as it would SQLite.

use std::{
    collections::HashMap,
    ffi::{c_int, c_void},
    path::{Path, PathBuf},
    ptr::NonNull,
    sync::{
        Mutex, OnceLock, PoisonError, RwLock,
        atomic::{Ordering, fence},
    },
};

use rusqlite::{Connection, ffi};

use crate::{Result, store_gen, store_rows::db};

/// The wal-index header: 48 bytes, read as 12 native-endian words.
type Header = [u32; HEADER_WORDS];
const HEADER_WORDS: usize = 12;
/// `iVersion` of the only wal-index format there is (`WALINDEX_MAX_VERSION`).
const WALINDEX_VERSION: u32 = 3_007_000;
/// The size of the regions SQLite maps the wal-index in (`WALINDEX_PGSZ`); `xShmMap` must be
/// asked with the size the connection itself uses.
const WALINDEX_REGION: c_int = 32_768;
/// At most this many cached answers; the cache starts over when full (a daemon asks about the
/// domains it serves, far fewer).
const CACHE_LIMIT: usize = 4096;

/// Answers [`Store::generation_of_named`](crate::store::Store::generation_of_named) and
/// [`Store::generation`](crate::store::Store::generation) for a store file, from memory while
/// no transaction has committed to it since the answer was read (see the module docs), without
/// taking any lock held across a SQLite call. Open one beside a store with
/// [`GenerationWatch::open`]; it reads through its own read-only connection.
pub struct GenerationWatch {
    /// SQLite's mapping of the wal-index's first region; valid while `conn` lives.
    shm: Shm,
    /// The watch's own read-only connection (the mapping's owner), for the reads that miss.
    conn: Mutex<Connection>,
    /// The answers read since the header was last seen to change.
    cache: RwLock<Cache>,
}

impl std::fmt::Debug for GenerationWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("GenerationWatch").field("cached", &cache.len()).finish_non_exhaustive()
    }
}

impl GenerationWatch {
    /// A watch over the store file at `path`, opened read-only (it never creates or migrates a
    /// store; an unknown schema is refused as [`Store::open_read_only`] refuses it). `Ok(None)`
    /// when there is no store there, when it is not in WAL mode, or when SQLite has no shared
    /// mapping of its wal-index to offer: callers then read through their store.
    ///
    /// [`Store::open_read_only`]: crate::store::Store::open_read_only
    pub fn open(path: &Path) -> Result<Option<Self>> {
        // Its checks read the schema version: a read transaction, which opens the WAL and has
        // SQLite map the wal-index.
        let Some((conn, _version)) = crate::store::read_only_connection(path)? else { return Ok(None) };
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Ok(None);
        }
        let Some(shm) = Shm::of(&conn) else { return Ok(None) };
        Ok(Some(Self { shm, conn: Mutex::new(conn), cache: RwLock::new(Cache::default()) }))
    }

    /// [`Store::generation_of_named`](crate::store::Store::generation_of_named): the same value,
    /// or the same error (NO_DOMAIN naming `name`). Errors are never cached.
    pub fn generation_of_named(&self, name: &str) -> Result<u64> {
        self.read(Key::Name(name))
    }

    /// [`Store::generation`](crate::store::Store::generation) of domain `uuid`: the same value,
    /// or the same error. Errors are never cached.
    pub fn generation(&self, uuid: &str) -> Result<u64> {
        self.read(Key::Uuid(uuid))
    }

    fn read(&self, key: Key<'_>) -> Result<u64> {
        if let Some(value) = self.shm.header().and_then(|now| self.cached(&now, key)) {
            return Ok(value);
        }
        // The connection is only ever used under this lock; a panic while it was held left no
        // transaction open (statements reset when dropped), so a poisoned lock is used as is.
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        // Read BEFORE the query: the value read below then holds for this header.
        let before = self.shm.header();
        // Readers that missed together queue on the lock; all but the first find its answer.
        if let Some(value) = before.and_then(|h| self.cached(&h, key)) {
            return Ok(value);
        }
        let value = match key {
            Key::Name(name) => store_gen::read_of_named(&conn, name)?,
            Key::Uuid(uuid) => store_gen::read(&conn, uuid)?,
        };
        if let Some(header) = before {
            // Recorded under the connection's lock, so answers are recorded in the order they
            // were read: an older one never replaces a newer one.
            self.cache.write().unwrap_or_else(PoisonError::into_inner).record(header, key, value);
        }
        Ok(value)
    }

    /// The answer recorded for `key` with the header `now`, if any.
    fn cached(&self, now: &Header, key: Key<'_>) -> Option<u64> {
        // A panic while the cache was written left a map without that answer, or an empty one.
        self.cache.read().unwrap_or_else(PoisonError::into_inner).get(now, key)
    }
}

/// A [`GenerationWatch`] opened on first use. Most connections (a CLI command) never ask for a
/// generation, and opening a watch costs a SQLite connection on every start. An open that fails
/// leaves it absent: callers then read through their store, which reports a lasting failure.
#[derive(Debug, Default)]
pub struct LazyGenerationWatch {
    /// The store file; `None`: never a watch (an in-memory store, a fleet store).
    path: Option<PathBuf>,
    watch: OnceLock<Option<GenerationWatch>>,
}

impl LazyGenerationWatch {
    /// A watch over the store file at `path`, opened when first asked for; none without a path.
    pub fn new(path: Option<&Path>) -> Self {
        Self { path: path.map(Path::to_owned), watch: OnceLock::new() }
    }

    /// The watch, opened now if this is the first call.
    pub fn get(&self) -> Option<&GenerationWatch> {
        let path = self.path.as_deref()?;
        self.watch.get_or_init(|| GenerationWatch::open(path).ok().flatten()).as_ref()
    }
}

/// What is asked: a domain by name, or by uuid.
#[derive(Clone, Copy)]
enum Key<'a> {
    Name(&'a str),
    Uuid(&'a str),
}

/// Answers read after one header.
#[derive(Default)]
struct Cache {
    header: Option<Header>,
    by_name: HashMap<String, u64>,
    by_uuid: HashMap<String, u64>,
}

impl Cache {
    fn len(&self) -> usize {
        self.by_name.len() + self.by_uuid.len()
    }

    fn get(&self, now: &Header, key: Key<'_>) -> Option<u64> {
        if self.header.as_ref() != Some(now) {
            return None;
        }
        match key {
            Key::Name(name) => self.by_name.get(name).copied(),
            Key::Uuid(uuid) => self.by_uuid.get(uuid).copied(),
        }
    }

    /// Records `value` as `key`'s answer read after `header`; answers read after another
    /// header go.
    fn record(&mut self, header: Header, key: Key<'_>, value: u64) {
        if self.header != Some(header) || self.len() >= CACHE_LIMIT {
            self.by_name.clear();
            self.by_uuid.clear();
            self.header = Some(header);
        }
        match key {
            Key::Name(name) => self.by_name.insert(name.to_owned(), value),
            Key::Uuid(uuid) => self.by_uuid.insert(uuid.to_owned(), value),
        };
    }
}

/// SQLite's mapping of the first wal-index region (32 KiB, the header at its start).
struct Shm(NonNull<u32>);

// SAFETY: the pointer is into a shared file mapping of this process, not tied to any thread,
// and is only ever read (volatile loads); the memory stays mapped while the owning
// `GenerationWatch`'s connection lives, and that connection is only used under its mutex.
unsafe impl Send for Shm {}
// SAFETY: as above: `&Shm` only reads the mapping, which is safe from several threads at once.
unsafe impl Sync for Shm {}

impl Shm {
    /// The mapping `conn` (a WAL-mode connection that has read) already has, or None when its
    /// VFS offers none or offers it read-only.
    fn of(conn: &Connection) -> Option<Self> {
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: `conn.handle()` is the live connection's handle, used on this thread while
        // `conn` is borrowed (nothing else uses it: it is not shared yet). FILE_POINTER writes
        // one `sqlite3_file*` (the main database's open file) into `file` and nothing else.
        let rc = unsafe {
            ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&raw mut file).cast::<c_void>(),
            )
        };
        if rc != ffi::SQLITE_OK || file.is_null() {
            return None;
        }
        // SAFETY: `file` is the database's open file, alive as long as `conn` (borrowed here);
        // an open file's `pMethods` is set (null only if the open failed) and points to its
        // VFS's method table, which lives as long as the VFS is registered (the whole run).
        let methods = unsafe { (*file).pMethods.as_ref() }?;
        // `xShmMap` exists from version 2 of the method table on.
        if methods.iVersion < 2 {
            return None;
        }
        let shm_map = methods.xShmMap?;
        let mut region: *mut c_void = std::ptr::null_mut();
        // SAFETY: `file` is this connection's open database file, which SQLite itself calls
        // `xShmMap` on. The connection is in WAL mode (checked by the caller) in normal locking
        // mode (we never change it) and has completed a read, so the file already has its
        // shared-memory handle and region 0 is mapped: with `bExtend` 0 and the size SQLite
        // uses, the call only looks that mapping up under the VFS's own mutex (it neither opens
        // a file nor grows one). The region stays mapped until the connection closes its WAL
        // (`xShmUnmap` when it closes; a read-only connection never leaves WAL mode).
        let rc = unsafe { shm_map(file, 0, WALINDEX_REGION, 0, &raw mut region) };
        // SQLITE_READONLY: a mapping this process may only read, which SQLite then does not
        // trust (it copies the header to private memory and may unmap the region): not used.
        if rc != ffi::SQLITE_OK {
            return None;
        }
        NonNull::new(region.cast::<u32>()).map(Self)
    }

    /// The header, when it can be trusted: both copies read alike, initialised, of the known
    /// version, with a right checksum; None otherwise (being written, or needing recovery).
    fn header(&self) -> Option<Header> {
        let first = self.copy(0);
        // Copy 0 before copy 1, the reverse of the writer's order, as SQLite's readers do.
        fence(Ordering::Acquire);
        let second = self.copy(1);
        // The store read (on a miss) comes after the header read.
        fence(Ordering::Acquire);
        (first == second && valid(&first)).then_some(first)
    }

    fn copy(&self, which: usize) -> Header {
        let mut words = [0; HEADER_WORDS];
        for (i, word) in words.iter_mut().enumerate() {
            // SAFETY: the region is 32 KiB, page-aligned, mapped readable for as long as `self`
            // exists (see `Shm::of` and the `Send` note); the two copies are its first 96
            // bytes. Other connections and processes write it concurrently, so it is read with
            // volatile aligned 32-bit loads and only trusted after the checks in `header`.
            *word = unsafe { self.0.as_ptr().add(which * HEADER_WORDS + i).read_volatile() };
        }
        words
    }
}

/// Whether one copy of the header is initialised (`isInit`, the byte at offset 12), of version
/// 3007000, and carries the checksum SQLite computes over its first 40 bytes (native byte
/// order, `walChecksumBytes`).
fn valid(h: &Header) -> bool {
    let is_init = h[3].to_ne_bytes()[0];
    if is_init == 0 || h[0] != WALINDEX_VERSION {
        return false;
    }
    let (mut s1, mut s2) = (0u32, 0u32);
    for pair in h[..10].chunks_exact(2) {
        s1 = s1.wrapping_add(pair[0]).wrapping_add(s2);
        s2 = s2.wrapping_add(pair[1]).wrapping_add(s1);
    }
    s1 == h[10] && s2 == h[11]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
#[path = "store_watch_tests.rs"]
mod tests;
