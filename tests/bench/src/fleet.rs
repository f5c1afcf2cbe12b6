//! `fleet`: snapshot metadata on a real 3-member etcd cluster (started here on free loopback
//! ports) beside the directory-free SQLite store, with the cluster's floor in the same run: one
//! single-key transaction round trip, and raw put throughput of the same bytes as an import.
//! Rows: founding creates at 1,000 on etcd and on SQLite, handover at 1,000 / 16,000 / 64,000
//! (target ≤ 50 ms, constant in N), a 16,000-snapshot import against raw puts (target ≤ 3×).
//! Built only with the bench's `etcd` feature (`cargo xtask bench` turns it on).

#[cfg(feature = "etcd")]
mod imp {
    use std::time::Instant;

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
        let cfg = StoreConfig { host: name.into(), user: None, lease_ttl: 30 };
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
        // Founding creates: 1,000 plain creates on each store, per op.
        let n = 1000;
        let t = Instant::now();
        for i in 0..n {
            a.create_def(VM, &snapshot(&format!("c{i}"))).map_err(e)?;
        }
        let etcd_create = t.elapsed().as_secs_f64() / n as f64;
        let mut sq = SqliteMetadata::open(&tmp.join("bench.db"), Sync::Normal).map_err(e)?;
        let t = Instant::now();
        for i in 0..n {
            sq.create_def(VM, &snapshot(&format!("c{i}"))).map_err(e)?;
        }
        let sqlite_create = t.elapsed().as_secs_f64() / n as f64;
        Row::new("fleet", "chain 1000 create per op (etcd)", Unit::Time, etcd_create).floor(floor).emit();
        Row::new("fleet", "chain 1000 create per op (SQLite)", Unit::Time, sqlite_create).emit();
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
        report::note(
            "not measured: creates at 16,000 on etcd (each operation loads the whole generation: O(N) per op)",
        );
        drop(c);
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(())
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
