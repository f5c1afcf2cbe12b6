//! Unit tests of the per-domain generations: every kind of write takes a new value, reads and
//! writes that do not commit keep it, other connections see it, and no value comes back —
//! across reopens, after undefine and define, after a migration from schema v4.
use std::path::Path;

use rusqlite::{Connection, params};

use crate::{
    codes,
    domain::{DomainDef, TEST_DOMAIN_XML},
    flags::{domain_state as st, snapshot_delete},
    store::{SCHEMA_VERSION, Store, Sync},
    tree::RedefineFlags,
    xml::{FormatFlags, SnapshotDef},
};

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";
const OTHER_XML: &str = "<domain type='test'><name>other</name><uuid>11111111-2222-4333-8444-555555555555</uuid>\
<memory>1024</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>";
const OTHER: &str = "11111111-2222-4333-8444-555555555555";

fn snap(name: &str, parent: Option<&str>) -> SnapshotDef {
    SnapshotDef {
        name: name.into(),
        parent: parent.map(Into::into),
        state: st::RUNNING,
        creation_time: 1_700_000_000,
        domain: Some(TEST_DOMAIN_XML.into()),
        ..Default::default()
    }
}

fn test_def() -> DomainDef {
    DomainDef::parse(TEST_DOMAIN_XML).unwrap()
}

fn open(path: &Path) -> Store {
    Store::open(path, Sync::Normal).unwrap()
}

/// Records each generation read and checks it against the ones before: `moved` says whether
/// the last step was a committed write (a strictly larger value never seen) or not (the same).
struct Seen(Vec<u64>);

impl Seen {
    fn step(&mut self, s: &mut Store, moved: bool, what: &str) {
        let g = s.generation(VM).unwrap();
        let name = s.domain_by_uuid(VM).unwrap().name;
        assert_eq!(s.generation_of_named(&name).unwrap(), g, "{what}: the same value by the domain's name");
        let last = *self.0.last().unwrap();
        if moved {
            assert!(g > last, "{what}: {g} after {last}");
            assert!(!self.0.contains(&g), "{what}: {g} repeats");
            self.0.push(g);
        } else {
            assert_eq!(g, last, "{what}");
        }
    }
}

#[test]
fn every_kind_of_write_takes_a_new_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("m.db"));
    s.define_domain(&test_def(), st::RUNNING, 1, 1).unwrap();
    // a fresh store's counter is at 1 (v5 started it there); the new row takes epoch 2, and the
    // define's own transaction counts as its first write
    assert_eq!(s.generation(VM).unwrap(), (2 << 32) + 1);
    let mut seen = Seen(vec![(2 << 32) + 1]);
    s.create(VM, &snap("a", None)).unwrap();
    assert_eq!(s.generation(VM).unwrap(), (2 << 32) + 2);
    seen.0.push((2 << 32) + 2);
    s.create(VM, &snap("b", None)).unwrap();
    seen.step(&mut s, true, "create");
    let mut redefined = snap("b", Some("a"));
    redefined.description = Some("redefined".into());
    s.redefine(VM, redefined, RedefineFlags::default()).unwrap();
    seen.step(&mut s, true, "redefine");
    s.edit(VM, "b", snap("b2", Some("a")), RedefineFlags::default()).unwrap();
    seen.step(&mut s, true, "edit (rename)");
    s.set_current(VM, "a").unwrap();
    seen.step(&mut s, true, "revert (current moves)");
    s.import(VM, vec![snap("i1", None), snap("i2", Some("i1"))], Some("i2")).unwrap();
    seen.step(&mut s, true, "import");
    s.delete(VM, "i2", snapshot_delete::METADATA_ONLY).unwrap();
    seen.step(&mut s, true, "delete");
    s.set_domain_state(VM, st::PAUSED, 1, 1).unwrap();
    seen.step(&mut s, true, "state change");
    s.write(|w| w.remove_all_snapshots(VM)).unwrap();
    seen.step(&mut s, true, "metadata drop");
    s.create(VM, &snap("c", None)).unwrap();
    seen.step(&mut s, true, "create after the drop");
    s.undefine_domain(VM).unwrap();
    let e = s.generation(VM).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (codes::NO_DOMAIN, format!("no domain with matching uuid '{VM}'").as_str())
    );
    let e = s.generation_of_named("test").unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::NO_DOMAIN, "no domain with matching name 'test'"));
    s.define_domain(&test_def(), st::SHUTOFF, 0, -1).unwrap();
    seen.step(&mut s, true, "undefine, then define again");
    // one transaction, one new value, however many writes it made
    let before = s.generation(VM).unwrap();
    s.write(|w| {
        w.create(VM, &snap("x", None))?;
        w.create(VM, &snap("y", None))?;
        w.delete(VM, "x", 0)
    })
    .unwrap();
    assert_eq!(s.generation(VM).unwrap(), before + 1);
}

#[test]
fn reads_and_writes_that_do_not_commit_keep_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut s = open(&path);
    s.define_domain(&test_def(), st::RUNNING, 1, 1).unwrap();
    s.create(VM, &snap("a", None)).unwrap();
    let mut seen = Seen(vec![s.generation(VM).unwrap()]);

    s.snapshots(VM).unwrap();
    s.snapshot(VM, "a").unwrap();
    s.current(VM).unwrap();
    s.snapshot_xml(VM, "a", FormatFlags::default()).unwrap();
    s.domain_by_uuid(VM).unwrap();
    seen.step(&mut s, false, "reads");
    s.write(|w| w.snapshot_count(VM).map(drop)).unwrap();
    seen.step(&mut s, false, "a write transaction that only read");
    assert_eq!(s.delete(VM, "nosuch", 0).unwrap_err().code, codes::NO_DOMAIN_SNAPSHOT);
    seen.step(&mut s, false, "a refused delete");
    let e = s
        .write(|w| {
            w.create(VM, &snap("b", None))?;
            w.delete(VM, "nosuch", 0)
        })
        .unwrap_err();
    assert_eq!(e.code, codes::NO_DOMAIN_SNAPSHOT);
    assert_eq!(s.snapshot_count(VM).unwrap(), 1, "rolled back");
    seen.step(&mut s, false, "a rolled-back transaction that had created");
    s.dry_run(|w| w.import(VM, vec![snap("d", None)], None)).unwrap();
    seen.step(&mut s, false, "a dry run");
    s.import(VM, vec![snap("a", None)], None).unwrap();
    seen.step(&mut s, false, "an import that changes nothing");

    // another connection's job refuses this connection's write: nothing commits
    let mut holder = open(&path);
    let id = holder.job_begin(VM, "migration m1").unwrap();
    let e = s.create(VM, &snap("b", None)).unwrap_err();
    assert_eq!(e.code, codes::OPERATION_TIMEOUT);
    seen.step(&mut s, false, "a write refused by a job");
    // the holder's own write goes through, and this connection sees its new value
    holder.create(VM, &snap("h", None)).unwrap();
    seen.step(&mut s, true, "another connection's create");
    holder.job_end(VM, &id).unwrap();

    // another domain's writes leave this one's generation alone
    s.define_domain(&DomainDef::parse(OTHER_XML).unwrap(), st::SHUTOFF, 0, -1).unwrap();
    let other = s.generation(OTHER).unwrap();
    assert!(other > *seen.0.last().unwrap());
    s.set_domain_state(OTHER, st::RUNNING, 1, 2).unwrap();
    seen.step(&mut s, false, "another domain's writes");
    assert_eq!(s.generation(OTHER).unwrap(), other + 1);
}

#[test]
fn values_never_repeat_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut seen = Vec::new();
    for round in 0..3 {
        let mut s = open(&path);
        if round == 0 {
            s.define_domain(&test_def(), st::RUNNING, 1, 1).unwrap();
        } else {
            assert_eq!(s.generation(VM).unwrap(), *seen.last().unwrap(), "kept across the reopen");
        }
        s.create(VM, &snap(&format!("s{round}"), None)).unwrap();
        seen.push(s.generation(VM).unwrap());
        // undefine and define again: the new row takes a value the old one never had
        s.write(|w| w.undefine_domain(VM)).unwrap();
        s.define_domain(&test_def(), st::SHUTOFF, 0, -1).unwrap();
        seen.push(s.generation(VM).unwrap());
    }
    // epochs 2, 3, 4, 5: each new row its own; a value counts the row's writes
    let e = |epoch: u64, writes: u64| (epoch << 32) + writes;
    assert_eq!(seen, [e(2, 2), e(3, 1), e(3, 2), e(4, 1), e(4, 2), e(5, 1)]);
}

/// A name that moves from one domain to another never meets a value the old one had: two
/// domains written in step have different values (their epochs differ).
#[test]
fn two_domains_never_share_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("m.db"));
    s.define_domain(&test_def(), st::RUNNING, 1, 1).unwrap();
    s.define_domain(&DomainDef::parse(OTHER_XML).unwrap(), st::SHUTOFF, 0, -1).unwrap();
    let mut all = std::collections::HashSet::new();
    for k in 0..20 {
        for dom in [VM, OTHER] {
            s.create(dom, &snap(&format!("s{k}"), None)).unwrap();
            assert!(all.insert(s.generation(dom).unwrap()), "{dom} step {k}: a value seen before");
        }
    }
}

/// A domain whose epoch is used up (2^32 values) takes a new one, above every value given out.
#[test]
fn a_used_up_epoch_is_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut s = open(&path);
    s.define_domain(&test_def(), st::RUNNING, 1, 1).unwrap();
    s.define_domain(&DomainDef::parse(OTHER_XML).unwrap(), st::SHUTOFF, 0, -1).unwrap();
    let other = s.generation(OTHER).unwrap();
    let last = (2u64 << 32) | 0xFFFF_FFFF;
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE domains SET generation = ?1 WHERE uuid = ?2", params![last as i64, VM])
        .unwrap();
    s.create(VM, &snap("a", None)).unwrap();
    let g = s.generation(VM).unwrap();
    assert_eq!(g, 4 << 32, "epoch 4: after the two domains' 2 and 3");
    assert!(g > other && g > last);
    s.create(VM, &snap("b", None)).unwrap();
    assert_eq!(s.generation(VM).unwrap(), (4 << 32) + 1);
}

#[test]
fn a_v4_store_is_migrated_to_an_epoch_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    {
        let c = Connection::open(&path).unwrap();
        c.execute_batch(crate::store::SCHEMA_V1).unwrap();
        c.execute_batch(crate::store::MIGRATE_V1_V2).unwrap();
        c.execute_batch(crate::store::MIGRATE_V2_V3).unwrap();
        c.execute_batch(crate::store_jobs::MIGRATE_V3_V4).unwrap();
        c.execute(
            "INSERT INTO domains (uuid, name, xml, state, reason, dom_id) VALUES (?1, 'test', ?2, 5, 0, -1)",
            params![VM, TEST_DOMAIN_XML],
        )
        .unwrap();
        c.pragma_update(None, "user_version", 4).unwrap();
    }
    let mut s = open(&path);
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 7);
    // v5 started the counter at 1 and the domain at 1; v7 gives it epoch 2
    assert_eq!(s.generation(VM).unwrap(), 2 << 32);
    s.create(VM, &snap("a", None)).unwrap();
    assert_eq!(s.generation(VM).unwrap(), (2 << 32) + 1);
}

/// A v6 store with several domains (values of the old store-wide counter): after the migration
/// each domain is on an epoch of its own, above every old value, and later writes keep them apart.
#[test]
fn a_v6_store_gives_each_domain_its_own_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v6.db");
    let mut s = open(&path);
    s.define_domain(&test_def(), st::RUNNING, 1, 1).unwrap();
    s.define_domain(&DomainDef::parse(OTHER_XML).unwrap(), st::SHUTOFF, 0, -1).unwrap();
    drop(s);
    {
        // back to v6's form: old counter values 7 and 9 on the domains, the counter at 9
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "UPDATE domains SET generation = CASE name WHEN 'test' THEN 7 ELSE 9 END;
             UPDATE generation SET value = 9 WHERE id = 1;
             ALTER TABLE domains DROP COLUMN current_snapshot;
             DROP TABLE snapshot_currents;
             CREATE UNIQUE INDEX snapshots_one_current ON snapshots (dom_uuid) WHERE is_current = 1;",
        )
        .unwrap();
        c.pragma_update(None, "user_version", 6).unwrap();
    }
    let mut s = open(&path);
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    // epochs 10 and 11, in uuid order ("1111…" before "6695…"); the counter moves past both
    assert_eq!((s.generation(OTHER).unwrap(), s.generation(VM).unwrap()), (10 << 32, 11 << 32));
    s.create(VM, &snap("a", None)).unwrap();
    s.create(OTHER, &snap("a", None)).unwrap();
    assert_eq!((s.generation(OTHER).unwrap(), s.generation(VM).unwrap()), ((10 << 32) + 1, (11 << 32) + 1));
    let third = "<domain type='test'><name>third</name><uuid>22222222-2222-4333-8444-555555555555</uuid>\
<memory>1024</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>";
    s.define_domain(&DomainDef::parse(third).unwrap(), st::SHUTOFF, 0, -1).unwrap();
    assert_eq!(s.generation("22222222-2222-4333-8444-555555555555").unwrap(), (12 << 32) + 1);
}
