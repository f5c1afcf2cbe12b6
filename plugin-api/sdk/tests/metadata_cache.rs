//! [`Metadata`]'s per-domain cache over a backend that confirms generations: an operation on a
//! confirmed cache loads nothing and builds nothing (the old behaviour loaded and rebuilt the
//! whole domain on every call), another writer's commit between two operations is always seen,
//! and a failed operation or a dry run leaves nothing stale behind. The backend here is an
//! in-memory store shared by several [`Metadata`] (the "other hosts"), counting its full loads.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod metadata_common;

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use metadata_common::{VM, apply, digest, redefine_xml, snap};
use virtplug_plugin_sdk::{
    DirBackend, Metadata, MetadataBackend, MetadataStore, Result, codes,
    flags::{snapshot_create as cf, snapshot_xml},
    metadata::{Commit, Loaded, Record},
};

/// One domain's committed state, shared by every backend of the "fleet".
#[derive(Default)]
struct State {
    records: BTreeMap<String, Record>,
    current: Option<String>,
    generation: u64,
    /// Whole record sets handed out.
    full_loads: u64,
}

impl State {
    fn loaded(&mut self) -> Loaded {
        self.full_loads += 1;
        Loaded {
            records: self.records.values().cloned().collect(),
            current: self.current.clone(),
            generation: self.generation,
        }
    }
}

/// A backend confirming `known` only when it is the generation it last saw and still the
/// committed one (checked under the lock every writer takes).
struct Mem {
    shared: Arc<Mutex<State>>,
    seen: Option<u64>,
}

impl MetadataBackend for Mem {
    fn load(&mut self, dom: &str) -> Result<Loaded> {
        Ok(self.load_since(dom, None)?.unwrap())
    }

    fn update(&mut self, dom: &str, f: &mut dyn FnMut(Loaded) -> Result<Option<Commit>>) -> Result<()> {
        self.update_since(dom, None, &mut |l| f(l.unwrap())).map(|_| ())
    }

    fn load_since(&mut self, dom: &str, known: Option<u64>) -> Result<Option<Loaded>> {
        assert_eq!(dom, VM);
        let mut st = self.shared.lock().unwrap();
        if known.is_some() && known == Some(st.generation) && self.seen == known {
            return Ok(None);
        }
        self.seen = Some(st.generation);
        Ok(Some(st.loaded()))
    }

    fn update_since(
        &mut self,
        dom: &str,
        known: Option<u64>,
        f: &mut dyn FnMut(Option<Loaded>) -> Result<Option<Commit>>,
    ) -> Result<Option<u64>> {
        assert_eq!(dom, VM);
        let mut st = self.shared.lock().unwrap();
        let confirmed = known.is_some() && known == Some(st.generation) && self.seen == known;
        let given = if confirmed { None } else { Some(st.loaded()) };
        if let Some(c) = f(given)? {
            for n in c.remove {
                st.records.remove(&n);
            }
            for r in c.put {
                st.records.insert(r.def.name.clone(), r);
            }
            st.current = c.current;
            st.generation += 1;
        }
        self.seen = Some(st.generation);
        Ok(Some(st.generation))
    }
}

fn fleet() -> Arc<Mutex<State>> {
    Arc::new(Mutex::new(State::default()))
}

fn host(shared: &Arc<Mutex<State>>) -> Metadata<Mem> {
    Metadata::new(Mem { shared: shared.clone(), seen: None })
}

fn loads(shared: &Arc<Mutex<State>>) -> u64 {
    shared.lock().unwrap().full_loads
}

fn chain(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let parent = (i > 0).then(|| format!("{prefix}{}", i - 1));
            redefine_xml(&format!("{prefix}{i}"), parent.as_deref())
        })
        .collect()
}

fn names(s: &mut dyn MetadataStore) -> Vec<String> {
    s.list(VM).unwrap().into_iter().map(|i| i.name).collect()
}

#[test]
fn an_operation_on_a_confirmed_cache_loads_and_builds_nothing() {
    let shared = fleet();
    let mut s = host(&shared);
    s.import(VM, &chain("s", 1000), Some("s999"), false).unwrap();
    let (loads_before, rebuilds_before) = (loads(&shared), s.rebuilds());
    s.create_def(VM, &snap("c", None)).unwrap();
    assert_eq!(s.lookup(VM, "c").unwrap().parent.as_deref(), Some("s999"));
    assert_eq!(s.list(VM).unwrap().len(), 1001);
    let xml = s.xml(VM, "c", snapshot_xml::SECURE).unwrap();
    assert_eq!(s.definition(VM, "c").unwrap().parent.as_deref(), Some("s999"));
    assert_eq!(s.current(VM).unwrap().unwrap().name, "c");
    s.set_current(VM, "s5").unwrap();
    s.redefine(VM, &xml, cf::REDEFINE | cf::CURRENT).unwrap();
    s.delete(VM, "s998", 0).unwrap();
    assert_eq!(s.lookup(VM, "s999").unwrap().parent.as_deref(), Some("s997"));
    let generation = s.generation(VM).unwrap();
    assert_eq!(generation, shared.lock().unwrap().generation);
    // Thirteen operations: not one whole record set loaded, not one tree built.
    assert_eq!((loads(&shared) - loads_before, s.rebuilds() - rebuilds_before), (0, 0));
}

#[test]
fn another_writers_commit_between_two_operations_is_seen() {
    let shared = fleet();
    let (mut a, mut b) = (host(&shared), host(&shared));
    a.create_def(VM, &snap("x", None)).unwrap();
    assert_eq!(names(&mut b), ["x"]);
    b.create_def(VM, &snap("y", None)).unwrap();
    // a's copy lacks y: its read and its write both see b's commit.
    assert_eq!(a.lookup(VM, "y").unwrap().parent.as_deref(), Some("x"));
    b.create_def(VM, &snap("w", None)).unwrap();
    a.create_def(VM, &snap("z", None)).unwrap();
    assert_eq!(b.lookup(VM, "z").unwrap().parent.as_deref(), Some("w"));
    // An answer only a stale copy would give ("already exists") is not given.
    b.delete(VM, "x", 0).unwrap();
    a.create_def(VM, &snap("x", None)).unwrap();
    assert_eq!(b.current(VM).unwrap().unwrap().name, "x");
    assert_eq!(digest(&mut a), digest(&mut b));
    // The shared 600-step sequence, its steps alternating between two writers, answers and
    // ends as on the directory backend after every step.
    let dir = tempfile::tempdir().unwrap();
    let shared = fleet();
    let (mut a, mut b) = (host(&shared), host(&shared));
    let mut files = Metadata::new(DirBackend::new(dir.path().join("files")));
    for k in 0..600 {
        let s: &mut Metadata<Mem> = if k % 2 == 0 { &mut a } else { &mut b };
        assert_eq!(apply(s, k), apply(&mut files, k), "step {k}");
        let want = digest(&mut files);
        assert_eq!((digest(&mut a), digest(&mut b)), (want.clone(), want), "step {k}");
    }
}

#[test]
fn a_failed_operation_or_a_dry_run_leaves_no_stale_copy() {
    let shared = fleet();
    let mut s = host(&shared);
    s.import(VM, &chain("s", 10), Some("s9"), false).unwrap();
    let before = digest(&mut s);
    // A refused import redefines its first snapshots in memory before the duplicate fails.
    let mut bad = chain("t", 5);
    bad.push(redefine_xml("s3", Some("t4")));
    let e = s.import(VM, &bad, None, false).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::OPERATION_FAILED, "domain moment s3 already exists"));
    assert_eq!(digest(&mut s), before);
    // A dry run applies every change in memory and commits none.
    s.import(VM, &chain("d", 5), Some("d4"), true).unwrap();
    assert_eq!(digest(&mut s), before);
    s.create_def(VM, &snap("c", None)).unwrap();
    assert_eq!(s.lookup(VM, "c").unwrap().parent.as_deref(), Some("s9"));
    assert_eq!(names(&mut s).len(), 11);
}
