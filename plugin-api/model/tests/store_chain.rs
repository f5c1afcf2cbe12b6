//! The replication workload on a 16,000-snapshot chain through the store: create, dump,
//! metadata-only delete, redefine in topological order, walk, delete. Checks results only; the
//! elapsed time is printed for information (performance claims live in benchmarks).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::time::Instant;

use virtplug_model::{
    domain::{DomainDef, TEST_DOMAIN_XML},
    flags::{domain_state as st, snapshot_delete},
    store::{Store, Sync},
    tree::RedefineFlags,
    xml::{self, FormatFlags, ParseFlags, SnapshotDef},
};

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";
const N: usize = 16_000;

#[test]
fn chain_of_16000() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("chain.db"), Sync::Normal).unwrap();
    s.define_domain(&DomainDef::parse(TEST_DOMAIN_XML).unwrap(), st::RUNNING, 1, 1).unwrap();
    let t0 = Instant::now();
    for i in 0..N {
        let def = SnapshotDef {
            name: format!("snap-{i}"),
            state: st::RUNNING,
            creation_time: 1_700_000_000 + i as i64,
            domain: Some(TEST_DOMAIN_XML.to_owned()),
            ..Default::default()
        };
        s.create(VM, &def).unwrap();
    }
    let t_create = t0.elapsed();
    let order = s.snapshots(VM).unwrap();
    assert_eq!(order.len(), N);
    assert_eq!(order[N - 1].name, format!("snap-{}", N - 1));
    let dumps: Vec<String> = order
        .iter()
        .map(|i| s.snapshot_xml(VM, &i.name, FormatFlags { secure: true, ..Default::default() }).unwrap())
        .collect();
    let t_dump = t0.elapsed();
    for i in order.iter().rev() {
        s.delete(VM, &i.name, snapshot_delete::METADATA_ONLY).unwrap();
    }
    assert_eq!(s.snapshot_count(VM).unwrap(), 0);
    let t_delete = t0.elapsed();
    for (k, x) in dumps.iter().enumerate() {
        let def = xml::parse(x, ParseFlags { redefine: true, ..Default::default() }).unwrap();
        s.redefine(VM, def, RedefineFlags { current: k == N - 1, disk_only: false }).unwrap();
    }
    let t_redefine = t0.elapsed();
    let walk = s.snapshots(VM).unwrap();
    for (k, i) in walk.iter().enumerate() {
        let want = (k > 0).then(|| format!("snap-{}", k - 1));
        assert_eq!(i.parent, want);
    }
    assert_eq!(s.current(VM).unwrap().unwrap().name, format!("snap-{}", N - 1));
    let t_walk = t0.elapsed();
    for i in &walk {
        s.delete(VM, &i.name, 0).unwrap();
    }
    assert_eq!(s.snapshot_count(VM).unwrap(), 0);
    eprintln!(
        "chain {N}: create {:?}, +dump {:?}, +delete {:?}, +redefine {:?}, +walk {:?}, +delete {:?}",
        t_create,
        t_dump,
        t_delete,
        t_redefine,
        t_walk,
        t0.elapsed()
    );
}
