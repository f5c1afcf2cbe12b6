//! `fleet`: snapshot metadata on a real 3-member etcd cluster (started here on free loopback
//! ports) beside the directory-free SQLite store, with the cluster's floor in the same run: one
//! single-key transaction round trip, and raw put throughput of the same bytes as an import.
//! Rows: the founding workflow (chain create, dump, redefine, delete, per op) at 1,000 and 16,000
//! on etcd beside SQLite, handover at 1,000 / 16,000 / 64,000 (target ≤ 50 ms, constant in N), a
//! 16,000-snapshot import against raw puts (target ≤ 3×).
//! Built only with the bench's `etcd` feature (`cargo xtask bench` turns it on).

#[cfg(feature = "etcd")]
mod imp {
    use std::time::Instant;

    use virtplug_plugin_sdk::flags::{snapshot_create, snapshot_delete, snapshot_xml};

    use anyhow::{Result, anyhow};
    use virtplug_plugin_sdk::{Metadata, MetadataStore, SqliteMetadata, model::store::Sync};
    use virtplug_store_etcd::{EtcdBackend, StoreConfig};
    use virtplug_test_support::EtcdCluster;

    use crate::report::{self, Row, Target, Unit};

    const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

    fn chain(prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                let parent = if i > 0 { format!("<parent><name>{prefix}{}</name></parent>", i - 1) } else { String::new() };
                format!(
                    "<domainsnapshot><name>{prefix}{i}</name><state>shutoff</state>{parent}<creationTime>1700000000</creationTime></domainsnapshot>"
                )
            })
            .collect()
    }

    fn host(uri: &str, name: &str) -> Result<Metadata<EtcdBackend>> {
        let cfg = StoreConfig { host: name.into(), user: None, lease_ttl: 30, tls: None };
        Ok(Metadata::new(EtcdBackend::connect(uri, &cfg).map_err(|e| anyhow!("{e}"))?))
    }

    fn e(err: virtplug_plugin_sdk::Error) -> anyhow::Error {
        anyhow!("{err}")
    }

    pub fn run() -> Result<()> {
        let tmp = std::env::temp_dir().join(format!("virtplug-bench-fleet-{}", std::process::id()));
        let c =
            EtcdCluster::start("fleet bench", &tmp.join("etcd"), 3).ok_or_else(|| anyhow!("etcd is not installed"))?;
        report::header("Fleet store (etcd, 3 members on loopback) beside SQLite");
        let uri = c.uri("bench");
        let mut a = host(&uri, "h1")?;
        let mut b = host(&uri, "h2")?;
        // Floor: one single-key transaction round trip (median of 200).
        let mut rtts: Vec<f64> = (0..200)
            .map(|i| {
                let t = Instant::now();
                a.backend().floor_txn(&format!("f{i}")).map(|()| t.elapsed().as_secs_f64())
            })
            .collect::<std::result::Result<_, _>>()
            .map_err(e)?;
        rtts.sort_by(f64::total_cmp);
        let floor = rtts[rtts.len() / 2];
        Row::new("fleet", "floor: one single-key txn", Unit::Time, floor).emit();
        // The founding workflow, per op, on each store.
        let mut sq = SqliteMetadata::open(&tmp.join("bench.db"), Sync::Normal).map_err(e)?;
        for (n, timed) in [(1000usize, 1000usize), (16_000, 500)] {
            // A UUID of its own: redefine checks the embedded domain's UUID against it.
            let dom = format!("6695eb01-f6a4-8304-79aa-{n:012x}");
            let on_etcd = workflow(&mut a, &dom, n, timed)?;
            let on_sqlite = workflow(&mut sq, &dom, n, timed)?;
            for ((phase, ours), (_, sqlite)) in on_etcd.iter().zip(&on_sqlite) {
                Row::new("fleet", format!("chain {n} {phase} per op (etcd)"), Unit::Time, *ours).floor(floor).emit();
                Row::new("fleet", format!("chain {n} {phase} per op (SQLite)"), Unit::Time, *sqlite).emit();
            }
        }
        report::note(
            "workflow: create as a chain, dump every XML, drop all (one CHILDREN|METADATA_ONLY), redefine all, \
             delete from the root (one CHILDREN); at 1,000 all of it, at 16,000 the last 500 of each phase on \
             top of 15,500 imported; per op = phase time / ops; etcd floor = one single-key txn",
        );
        // Handover: constant in N (one transaction whatever the domain holds).
        for (k, size) in [1000usize, 16_000, 64_000].into_iter().enumerate() {
            let dom = format!("{VM}-{k}");
            a.import(&dom, &chain("s", size), None, false).map_err(e)?;
            let t = Instant::now();
            a.backend().handover(&dom, "h2").map_err(e)?;
            let took = t.elapsed().as_secs_f64();
            b.backend().handover(&dom, "h1").map_err(e)?;
            Row::new("fleet", format!("handover {size}"), Unit::Time, took)
                .floor(floor)
                .target(Target::AtMost(0.050))
                .emit();
        }
        // Import of 16,000 as a generation against raw puts of the same bytes.
        let xmls = chain("i", 16_000);
        let t = Instant::now();
        a.import(&format!("{VM}-import"), &xmls, None, false).map_err(e)?;
        let import = t.elapsed().as_secs_f64();
        let t = Instant::now();
        a.backend().raw_puts("raw", &xmls).map_err(e)?;
        let raw = t.elapsed().as_secs_f64();
        Row::new("fleet", "import 16000 (generation)", Unit::Time, import).floor(raw).target(Target::Floor(3.0)).emit();
        report::note("floor of the import row: raw puts of the same XML bytes in transactions of 100 (same run)");
        drop(c);
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(())
    }

    /// The founding workflow on `s` at `n` snapshots, timing its last `timed` operations of each
    /// phase: the first `n - timed` of the chain are imported (one call, untimed), then `timed`
    /// are created on top, dumped, dropped, redefined and deleted. Per-op seconds of create, dump,
    /// redefine and delete (drop and delete are one call each, divided by `timed` as the workflow
    /// section divides by N).
    fn workflow(s: &mut dyn MetadataStore, dom: &str, n: usize, timed: usize) -> Result<Vec<(&'static str, f64)>> {
        let base = n - timed;
        if base > 0 {
            s.import(dom, &chain("b", base), Some(&format!("b{}", base - 1)), false).map_err(e)?;
        }
        let per = |t: Instant| t.elapsed().as_secs_f64() / timed as f64;
        let t = Instant::now();
        for i in 0..timed {
            let def = virtplug_plugin_sdk::model::xml::SnapshotDef {
                domain: Some(format!("<domain type='test'><name>vm</name><uuid>{dom}</uuid></domain>")),
                ..snapshot(&format!("c{i}"))
            };
            s.create_def(dom, &def).map_err(e)?;
        }
        let create = per(t);
        let t = Instant::now();
        let dumped: Vec<String> = (0..timed)
            .map(|i| s.xml(dom, &format!("c{i}"), snapshot_xml::SECURE))
            .collect::<std::result::Result<_, _>>()
            .map_err(e)?;
        let dump = per(t);
        s.delete(dom, "c0", snapshot_delete::CHILDREN | snapshot_delete::METADATA_ONLY).map_err(e)?;
        let t = Instant::now();
        for (i, x) in dumped.iter().enumerate() {
            let current = if i + 1 == timed { snapshot_create::CURRENT } else { 0 };
            s.redefine(dom, x, snapshot_create::REDEFINE | current).map_err(e)?;
        }
        let redefine = per(t);
        let t = Instant::now();
        s.delete(dom, "c0", snapshot_delete::CHILDREN).map_err(e)?;
        let delete = per(t);
        if s.list(dom).map_err(e)?.len() != base {
            return Err(anyhow!("the workflow left snapshots behind"));
        }
        Ok(vec![("create", create), ("dump", dump), ("redefine", redefine), ("delete", delete)])
    }

    fn snapshot(name: &str) -> virtplug_plugin_sdk::model::xml::SnapshotDef {
        virtplug_plugin_sdk::model::xml::SnapshotDef {
            name: name.into(),
            state: virtplug_plugin_sdk::flags::domain_state::SHUTOFF,
            creation_time: 1_700_000_000,
            ..Default::default()
        }
    }
}

/// Runs the section (a note only when the bench was built without etcd).
pub fn run() -> anyhow::Result<()> {
    #[cfg(feature = "etcd")]
    return imp::run();
    #[cfg(not(feature = "etcd"))]
    {
        crate::report::note("fleet: built without the `etcd` feature (cargo xtask bench turns it on)");
        Ok(())
    }
}
