//! [`DirBackend`]: snapshot metadata as a directory of files, no database.
//!
//! Layout, under the backend's root, one directory per domain (its UUID hex-encoded, since
//! names are data, never paths):
//! - `<hex(name)>.<generation>.xml`: one file per snapshot, libvirt's XML (secure, with
//!   `<parent>` and the embedded `<domain>`), written once and never changed: a commit that
//!   changes a snapshot writes a new file under the commit's generation;
//! - `index`: the commit point. `virtplug-metadata-dir 1`, `generation N`, `current HEX|-`, then
//!   one `SEQ HEX FILE` line per snapshot. Only the files the index names count;
//! - `lock`: held (`flock`, exclusive) by the one writer of the domain.
//!
//! A commit writes each new snapshot file to a temporary file, fsyncs and renames it, fsyncs
//! the directory, then writes the index the same way (temporary file, fsync, rename, directory
//! fsync), and only then removes the files the new index no longer names. A crash before the
//! index rename leaves the old index and every file it names; after it, the new one: the
//! domain holds the state before or after the commit, never a mix. Leftovers (temporary files,
//! unnamed snapshot files) are removed by the next commit. Readers take no lock: they read the
//! index, then its files, and read again if a concurrent commit removed one in between.

use std::{
    collections::{HashMap, HashSet},
    fs::{self, File, OpenOptions},
    io::{ErrorKind, Write},
    path::{Path, PathBuf},
};

use virtplug_model::{
    Error, Result, codes,
    xml::{self, FormatFlags, ParseFlags, SnapshotDef},
};

use crate::metadata::{Commit, Loaded, MetadataBackend, Record};

const MAGIC: &str = "virtplug-metadata-dir 1";
/// Readers retry this many times when a commit removed a file between index and file reads.
const READ_RETRIES: usize = 16;

/// Snapshot metadata in a directory (see the module documentation).
#[derive(Debug)]
pub struct DirBackend {
    root: PathBuf,
    /// Parsed snapshot files by path: a file never changes once written, so a parsed copy stays
    /// valid as long as the file exists.
    cache: HashMap<PathBuf, SnapshotDef>,
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::new(codes::OPERATION_FAILED, format!("metadata directory '{}': {e}", path.display()))
}

fn corrupt(path: &Path, what: &str) -> Error {
    Error::new(codes::OPERATION_FAILED, format!("metadata directory '{}': {what}", path.display()))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

/// Writes `path` atomically: a temporary file beside it, fsync, rename. The caller fsyncs the
/// directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| io_error(&tmp, &e))?;
    f.write_all(bytes).map_err(|e| io_error(&tmp, &e))?;
    f.sync_all().map_err(|e| io_error(&tmp, &e))?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, &e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, &e))
}

/// One index line: a snapshot's sequence number and file.
struct Entry {
    name: String,
    seq: u64,
    file: String,
}

struct Index {
    generation: u64,
    current: Option<String>,
    entries: Vec<Entry>,
}

impl Index {
    fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut lines = text.lines();
        if lines.next() != Some(MAGIC) {
            return Err(corrupt(path, "not a virtplug metadata index"));
        }
        let bad = || corrupt(path, "damaged index");
        let generation = lines.next().and_then(|l| l.strip_prefix("generation ")?.parse().ok()).ok_or_else(bad)?;
        let current = match lines.next().and_then(|l| l.strip_prefix("current ")).ok_or_else(bad)? {
            "-" => None,
            h => Some(unhex(h).ok_or_else(bad)?),
        };
        let mut entries = Vec::new();
        for line in lines {
            let mut parts = line.split(' ');
            let (Some(seq), Some(name), Some(file), None) = (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let seq = seq.parse().map_err(|_| bad())?;
            entries.push(Entry { name: unhex(name).ok_or_else(bad)?, seq, file: file.to_owned() });
        }
        Ok(Self { generation, current, entries })
    }

    fn format(&self) -> String {
        let mut out = format!(
            "{MAGIC}\ngeneration {}\ncurrent {}\n",
            self.generation,
            self.current.as_deref().map_or("-".into(), hex)
        );
        for e in &self.entries {
            out.push_str(&format!("{} {} {}\n", e.seq, hex(&e.name), e.file));
        }
        out
    }
}

impl DirBackend {
    /// Metadata under `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), cache: HashMap::new() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn dir(&self, dom: &str) -> PathBuf {
        self.root.join(hex(dom))
    }

    fn read_index(dir: &Path) -> Result<Option<Index>> {
        let path = dir.join("index");
        match fs::read_to_string(&path) {
            Ok(text) => Index::parse(&path, &text).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, &e)),
        }
    }

    /// The index's snapshots; `Ok(None)` when a file it names is gone (a concurrent commit).
    fn try_load(&mut self, dir: &Path) -> Result<Option<Loaded>> {
        let Some(index) = Self::read_index(dir)? else { return Ok(Some(Loaded::default())) };
        let mut records = Vec::with_capacity(index.entries.len());
        for e in index.entries {
            let path = dir.join(&e.file);
            let def = match self.cache.get(&path) {
                Some(def) => def.clone(),
                None => {
                    let text = match fs::read_to_string(&path) {
                        Ok(t) => t,
                        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
                        Err(err) => return Err(io_error(&path, &err)),
                    };
                    let def = xml::parse(&text, ParseFlags { redefine: true, ..Default::default() })?;
                    if def.name != e.name {
                        return Err(corrupt(&path, "snapshot file does not match the index"));
                    }
                    self.cache.insert(path, def.clone());
                    def
                }
            };
            records.push(Record { def, seq: e.seq });
        }
        Ok(Some(Loaded { records, current: index.current, generation: index.generation }))
    }

    fn load_dir(&mut self, dir: &Path) -> Result<Loaded> {
        for _ in 0..READ_RETRIES {
            if let Some(loaded) = self.try_load(dir)? {
                return Ok(loaded);
            }
        }
        Err(corrupt(dir, "the index names a snapshot file that does not exist"))
    }

    fn commit(&mut self, dir: &Path, old_generation: u64, commit: Commit) -> Result<()> {
        let generation = old_generation + 1;
        let removed: HashSet<&str> =
            commit.remove.iter().chain(commit.put.iter().map(|r| &r.def.name)).map(String::as_str).collect();
        let old_index = Self::read_index(dir)?;
        let mut entries: Vec<Entry> = old_index
            .map(|i| i.entries)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !removed.contains(e.name.as_str()))
            .collect();
        for r in &commit.put {
            let file = format!("{}.{generation}.xml", hex(&r.def.name));
            let path = dir.join(&file);
            let flags = FormatFlags { secure: true, internal: false, current: false };
            write_atomic(&path, xml::format(&r.def, None, flags).as_bytes())?;
            self.cache.insert(path, SnapshotDef { active: None, ..r.def.clone() });
            entries.push(Entry { name: r.def.name.clone(), seq: r.seq, file });
        }
        if !commit.put.is_empty() {
            sync_dir(dir)?;
        }
        let index = Index { generation, current: commit.current, entries };
        write_atomic(&dir.join("index"), index.format().as_bytes())?;
        sync_dir(dir)?;
        // The new state is committed; what it no longer names is garbage.
        let keep: HashSet<&str> = index.entries.iter().map(|e| e.file.as_str()).chain(["index", "lock"]).collect();
        let listing = fs::read_dir(dir).map_err(|e| io_error(dir, &e))?;
        for entry in listing.flatten() {
            let name = entry.file_name();
            if !name.to_str().is_some_and(|n| keep.contains(n)) {
                let path = entry.path();
                self.cache.remove(&path);
                // A file that cannot be removed now is removed by a later commit.
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }
}

impl MetadataBackend for DirBackend {
    fn load(&mut self, dom: &str) -> Result<Loaded> {
        let dir = self.dir(dom);
        self.load_dir(&dir)
    }

    fn update(&mut self, dom: &str, f: &mut dyn FnMut(Loaded) -> Result<Option<Commit>>) -> Result<()> {
        let dir = self.dir(dom);
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, &e))?;
        lock.lock().map_err(|e| io_error(&lock_path, &e))?;
        let loaded = self.load_dir(&dir)?;
        let old_generation = loaded.generation;
        let result = match f(loaded)? {
            Some(commit) => self.commit(&dir, old_generation, commit),
            None => Ok(()),
        };
        // Dropping the file releases the lock; an explicit unlock reports nothing useful.
        drop(lock);
        result
    }
}
