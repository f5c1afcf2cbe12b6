//! The race that lost acknowledged snapshots: a migration A → B of a 1,000-snapshot hierarchy
//! while another client creates, deletes and redefines snapshots on A through the API and a
//! local CLI process does the same on A's store. Afterwards every acknowledged change holds
//! (an acknowledged create exists on A or on B, an acknowledged delete on neither), nothing
//! exists on both, and a second migration of the domain started meanwhile was refused at once.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    collections::HashSet,
    path::Path,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use crate::common::{Connect, Daemon, check_tree, plugin_dir};
use virtplug_host::{
    codes,
    flags::snapshot_xml,
    remote::{
        Client,
        wire::{MigrationRequest, TaskState},
    },
};

const N: usize = 1_000;

/// What one writer saw acknowledged, and how often it was refused as busy.
#[derive(Default, Debug)]
struct Acked {
    created: Vec<String>,
    deleted: Vec<String>,
    redefined: usize,
    busy: usize,
    busy_message: Option<String>,
}

fn redefine_xml(name: &str, parent: Option<&str>) -> String {
    let parent = parent.map(|p| format!("<parent><name>{p}</name></parent>")).unwrap_or_default();
    let domain = virtplug_host::model::domain::TEST_DOMAIN_XML;
    format!(
        "<domainsnapshot><name>{name}</name>{parent}<state>running</state><creationTime>1700000000</creationTime>\
         {domain}</domainsnapshot>"
    )
}

/// API writer on A: create, then every third snapshot deleted and every fifth redefined.
fn api_writer(a_uri: &str, stop: &AtomicBool) -> Acked {
    let conn = virtplug_host::Connection::open(&virtplug_host::Registry::default(), a_uri, false).unwrap();
    let mut acked = Acked::default();
    let refused = |e: virtplug_host::HostError, acked: &mut Acked| {
        assert_eq!(e.code(), codes::OPERATION_TIMEOUT, "only a busy domain may refuse: {e}");
        acked.busy += 1;
        acked.busy_message.get_or_insert(e.to_string());
    };
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("api-{i}");
        i += 1;
        match conn.snapshot_create("test", &format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), 0) {
            Ok(_) => acked.created.push(name.clone()),
            Err(e) => refused(e, &mut acked),
        }
        if i % 3 == 0
            && let Some(victim) = acked.created.pop()
        {
            match conn.snapshot_delete("test", &victim, 0) {
                Ok(()) => acked.deleted.push(victim),
                Err(e) if e.code() == codes::NO_DOMAIN_SNAPSHOT => acked.created.push(victim), // migrated
                Err(e) => {
                    acked.created.push(victim);
                    refused(e, &mut acked);
                }
            }
        }
        if i % 5 == 0
            && let Some(target) = acked.created.last()
        {
            match conn.snapshot_xml("test", target, snapshot_xml::SECURE) {
                // An atomic redefine of an existing snapshot (a plain REDEFINE of a dump taken
                // just before the migration dropped it would legitimately create it again on A).
                Ok(x) => match conn.snapshot_edit("test", target, &x, 0) {
                    Ok(_) => acked.redefined += 1,
                    Err(e) if e.code() == codes::NO_DOMAIN_SNAPSHOT => {} // migrated meanwhile
                    Err(e) => refused(e, &mut acked),
                },
                Err(e) => assert_eq!(e.code(), codes::NO_DOMAIN_SNAPSHOT, "{e}"),
            }
        }
    }
    acked
}

/// CLI writer: `virtplug -c mock:///<A's host dir> snapshot-create-as test cli-N` processes.
fn cli_writer(host: &Path, plugins: &Path, stop: &AtomicBool) -> Acked {
    let cli = virtplug_test_support::VIRTPLUG.built();
    let uri = format!("mock://{}", host.display());
    let mut acked = Acked::default();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("cli-{i}");
        i += 1;
        let out = Command::new(&cli)
            .args(["-c", &uri, "snapshot-create-as", "test", &name])
            .env("VIRTPLUG_PLUGIN_DIR", plugins)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), format!("Domain snapshot {name} created\n"));
            acked.created.push(name);
        } else {
            assert!(
                stderr
                    .starts_with("error: Timed out during operation: cannot acquire state change lock (held by job '"),
                "{stderr}"
            );
            acked.busy += 1;
            acked.busy_message.get_or_insert(stderr);
        }
    }
    acked
}

fn names(conn: &virtplug_host::Connection) -> HashSet<String> {
    check_tree(conn).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn a_migration_under_concurrent_writers_loses_nothing_acknowledged() {
    let Some(plugins) = plugin_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let a = Daemon::start(&tmp.path().join("a"), &plugins, &[]);
    // B takes its time with the import, so that the writers meet the migration for sure.
    let b = Daemon::start(&tmp.path().join("b"), &plugins, &["--fault-import-delay-ms".into(), "1500".into()]);
    let (ca, cb) = (a.connect(), b.connect());
    let xmls: Vec<String> =
        (0..N).map(|i| redefine_xml(&format!("r{i}"), (i > 0).then(|| format!("r{}", i - 1)).as_deref())).collect();
    ca.snapshot_import("test", &xmls, Some(&format!("r{}", N - 1)), 0).unwrap();
    assert_eq!(names(&ca).len(), N);

    let stop = Arc::new(AtomicBool::new(false));
    let api = {
        let (uri, stop) = (a.uri(), Arc::clone(&stop));
        std::thread::spawn(move || api_writer(&uri, &stop))
    };
    let cli = {
        let (host, plugins, stop) = (a.host(), plugins.clone(), Arc::clone(&stop));
        std::thread::spawn(move || cli_writer(&host, &plugins, &stop))
    };
    std::thread::sleep(std::time::Duration::from_millis(300));

    let client = Client::from_uri(&a.uri(), false).unwrap();
    let request = MigrationRequest { domain: "test".into(), to: b.uri(), dry_run: false };
    let task = client.start_migration(&request).unwrap();
    // A second migration of the same domain while the first runs: refused at once.
    let second = client.start_migration(&request).unwrap_err();
    assert_eq!(second.code(), codes::OPERATION_TIMEOUT, "{second:?}");
    assert!(second.to_string().contains("cannot acquire state change lock (held by job '"), "{second}");
    assert!(second.to_string().contains(": migration m"), "{second}");
    let done = client.wait_task(task.id, |_| {}).unwrap();
    assert_eq!(done.state, TaskState::Succeeded, "{done:?}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (api, cli) = (api.join().unwrap(), cli.join().unwrap());

    let on_a = names(&ca);
    let on_b = names(&cb);
    let both: Vec<&String> = on_a.intersection(&on_b).collect();
    assert!(both.is_empty(), "snapshots on both hosts: {both:?}");
    for name in api.created.iter().chain(&cli.created) {
        assert!(on_a.contains(name) || on_b.contains(name), "acknowledged {name} was lost");
    }
    for name in &api.deleted {
        assert!(!on_a.contains(name) && !on_b.contains(name), "deleted {name} came back");
    }
    // The hierarchy moved whole; the writers were refused while it moved, and wrote again after.
    assert!((0..N).all(|i| on_b.contains(&format!("r{i}"))));
    assert!(api.busy > 0 && cli.busy > 0, "no writer met the migration: api {api:?}, cli {cli:?}");
    assert!(api.created.iter().any(|n| on_a.contains(n)), "the API writer wrote on A after the migration");
    assert!(api.redefined > 0);
}
