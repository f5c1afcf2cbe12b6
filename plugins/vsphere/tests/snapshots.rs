//! Snapshot operations against the real simulator (both models), with the SOAP round trips
//! each operation costs.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use common::{Model, each_model, trips};
use virtplug_plugin_sdk::{
    codes,
    flags::{domain_state as st, snapshot_create as cf, snapshot_delete as df, snapshot_revert as rf},
};

fn xml(name: &str, desc: &str) -> String {
    format!("<domainsnapshot>\n  <name>{name}</name>\n  <description>{desc}</description>\n</domainsnapshot>\n")
}

#[test]
fn lifecycle_with_round_trip_targets() {
    each_model(|m, _sim, c| {
        let (vm, uuid) = m.vm();
        c.domain_list().unwrap(); // warms the name cache, as any client's first lookup does
        // The first change on a connection reads the tree first; the next ones start from the
        // tree read with the previous outcome (issue 19: the task, then its outcome).
        let (name, n) = trips(c, || c.snapshot_create(vm, &xml("s1", "first"), 0).unwrap());
        assert_eq!(name, "s1");
        assert_eq!(n, 3, "{m:?}: first create on the connection took {n} round trips");
        let (_, n) = trips(c, || c.snapshot_create(vm, &xml("s2", ""), cf::DISK_ONLY | cf::QUIESCE).unwrap());
        assert_eq!(n, 2, "{m:?}: create took {n} round trips");

        let (list, n) = trips(c, || c.snapshot_list(vm).unwrap());
        assert_eq!(n, 1, "{m:?}: tree listing took {n} round trips");
        let names: Vec<_> = list.iter().map(|s| (s.name.as_str(), s.parent.as_deref(), s.current)).collect();
        assert_eq!(names, [("s1", None, false), ("s2", Some("s1"), true)]);
        assert!(list.iter().all(|s| !s.has_metadata));

        let (cur, n) = trips(c, || c.snapshot_current(vm).unwrap());
        assert!(n <= 3 && n == 1, "{m:?}: current took {n} round trips");
        assert_eq!(cur.unwrap().name, "s2");

        let x = c.snapshot_xml(vm, "s2").unwrap();
        assert!(x.starts_with("<domainsnapshot>\n  <name>s2</name>\n  <description></description>\n  <state>"), "{x}");
        assert!(x.contains("  <parent>\n    <name>s1</name>\n  </parent>\n  <creationTime>"), "{x}");
        assert!(x.ends_with(&format!("  <domain>\n    <uuid>{uuid}</uuid>\n  </domain>\n</domainsnapshot>\n")), "{x}");
        let l = c.snapshot_lookup(vm, "s1").unwrap();
        assert_eq!((l.name.as_str(), l.parent, l.current), ("s1", None, false));
        assert!(l.creation_time > 1_600_000_000);

        let ((), n) = trips(c, || c.snapshot_revert(vm, "s1", 0).unwrap());
        assert_eq!(n, 3, "{m:?}: revert took {n} round trips (a fresh read, the task, its outcome)");
        assert_eq!(c.snapshot_current(vm).unwrap().unwrap().name, "s1");

        let (_, n) = trips(c, || c.snapshot_create(vm, &xml("s3", "branch"), 0).unwrap());
        assert_eq!(n, 2, "{m:?}: create after a read took {n} round trips");
        let list = c.snapshot_list(vm).unwrap();
        let names: Vec<_> = list.iter().map(|s| (s.name.as_str(), s.parent.as_deref())).collect();
        assert_eq!(names, [("s1", None), ("s2", Some("s1")), ("s3", Some("s1"))]);

        let e = c.snapshot_create(vm, &xml("s1", ""), 0).unwrap_err();
        assert_eq!(e.code, codes::OPERATION_INVALID);
        assert_eq!(e.to_string(), "Requested operation is not valid: Snapshot 's1' already exists");

        let ((), n) = trips(c, || c.snapshot_delete(vm, "s2", 0).unwrap());
        assert_eq!(n, 3, "{m:?}: delete took {n} round trips (a fresh read, the task, its outcome)");
        let names: Vec<_> = c.snapshot_list(vm).unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["s1", "s3"]);

        // METADATA_ONLY is the declared no-op: vSphere keeps the metadata itself.
        let ((), n) = trips(c, || c.snapshot_delete(vm, "s3", df::METADATA_ONLY).unwrap());
        assert_eq!(n, 1);
        assert_eq!(c.snapshot_list(vm).unwrap().len(), 2);
        assert_eq!(c.snapshot_delete(vm, "nosuch", df::METADATA_ONLY).unwrap_err().code, codes::NO_DOMAIN_SNAPSHOT);

        c.snapshot_delete(vm, "s1", df::CHILDREN).unwrap();
        assert!(c.snapshot_list(vm).unwrap().is_empty());
        assert_eq!(c.snapshot_current(vm).unwrap(), None);
        let e = c.snapshot_lookup(vm, "s1").unwrap_err();
        assert_eq!(e.code, codes::NO_DOMAIN_SNAPSHOT);
        assert_eq!(e.to_string(), "Domain snapshot not found: no domain snapshot with matching name 's1'");
    });
}

#[test]
fn children_only_removes_each_child_subtree() {
    each_model(|_m, _sim, c| {
        let (vm, _) = _m.vm();
        c.snapshot_create(vm, &xml("root", ""), 0).unwrap();
        c.snapshot_create(vm, &xml("a", ""), 0).unwrap();
        c.snapshot_create(vm, &xml("a1", ""), 0).unwrap();
        c.snapshot_revert(vm, "root", 0).unwrap();
        c.snapshot_create(vm, &xml("b", ""), 0).unwrap();
        c.snapshot_revert(vm, "root", 0).unwrap();
        let ((), n) = trips(c, || c.snapshot_delete(vm, "root", df::CHILDREN_ONLY).unwrap());
        assert_eq!(n, 4, "children-only with 2 children took {n} round trips (a read, 2 removes, 1 outcome read)");
        let names: Vec<_> = c.snapshot_list(vm).unwrap().into_iter().map(|s| (s.name, s.current)).collect();
        assert_eq!(names, [("root".to_owned(), true)]);
        // a leaf: nothing to remove, still fine
        c.snapshot_delete(vm, "root", df::CHILDREN_ONLY).unwrap();
        assert_eq!(c.snapshot_list(vm).unwrap().len(), 1);
    });
}

#[test]
fn quirk_3_subtree_removal_above_current_leaves_no_current() {
    // Simulator quirk F.6 #3: RemoveSnapshot_Task(removeChildren=true) on an ancestor of the
    // current snapshot leaves currentSnapshot naming a removed snapshot. virtplug reports "no
    // current snapshot" then (real vSphere moves current to the removed snapshot's parent).
    each_model(|m, _sim, c| {
        let (vm, _) = m.vm();
        c.snapshot_create(vm, &xml("p", ""), 0).unwrap();
        c.snapshot_create(vm, &xml("q", ""), 0).unwrap();
        c.snapshot_create(vm, &xml("r", ""), 0).unwrap();
        c.snapshot_delete(vm, "q", df::CHILDREN).unwrap();
        let list = c.snapshot_list(vm).unwrap();
        assert_eq!(list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["p"]);
        let cur = c.snapshot_current(vm).unwrap();
        assert!(cur.is_none() || cur.as_ref().is_some_and(|s| s.name == "p"), "{cur:?}");
        assert!(list.iter().all(|s| !s.current) || cur.is_some());
    });
}

#[test]
fn a_create_after_removing_the_subtree_of_the_current_snapshot_succeeds() {
    // e1 -> e2 -> e3 (current); CHILDREN_ONLY of e1 removes e2's subtree. The simulator then
    // names the removed e3 as current (quirk F.6 #3) and its next CreateSnapshot_Task crashed
    // its handler: 'connection closed before message completed'. The delete now puts current
    // where vSphere does (e1), so the create succeeds as a child of e1.
    each_model(|m, _sim, c| {
        let (vm, _) = m.vm();
        for n in ["e1", "e2", "e3"] {
            c.snapshot_create(vm, &xml(n, ""), 0).unwrap();
        }
        c.snapshot_delete(vm, "e1", df::CHILDREN_ONLY).unwrap();
        c.snapshot_create(vm, &xml("e4", ""), 0).unwrap();
        let list: Vec<_> = c.snapshot_list(vm).unwrap().into_iter().map(|s| (s.name, s.parent, s.current)).collect();
        assert_eq!(list, [("e1".into(), None, false), ("e4".into(), Some("e1".into()), true)], "{m:?}");
        // CHILDREN of a middle snapshot above current: current moves to its parent.
        c.snapshot_create(vm, &xml("e5", ""), 0).unwrap();
        c.snapshot_delete(vm, "e4", df::CHILDREN).unwrap();
        c.snapshot_create(vm, &xml("e6", ""), 0).unwrap();
        let list: Vec<_> = c.snapshot_list(vm).unwrap().into_iter().map(|s| (s.name, s.parent, s.current)).collect();
        assert_eq!(list, [("e1".into(), None, false), ("e6".into(), Some("e1".into()), true)], "{m:?}");
    });
}

#[test]
fn a_kept_tree_made_stale_by_another_client_is_read_again() {
    each_model(|m, sim, c| {
        let (vm, _) = m.vm();
        let other = sim.connect();
        c.snapshot_create(vm, &xml("a", ""), 0).unwrap();
        c.snapshot_create(vm, &xml("b", ""), 0).unwrap();

        // Removed elsewhere: a revert reads the tree first and refuses from it.
        other.snapshot_delete(vm, "b", 0).unwrap();
        let (e, n) = trips(c, || c.snapshot_revert(vm, "b", 0).unwrap_err());
        assert_eq!(e.code, codes::NO_DOMAIN_SNAPSHOT, "{m:?}: {e}");
        assert_eq!(e.to_string(), "Domain snapshot not found: no domain snapshot with matching name 'b'");
        assert_eq!(n, 1, "{m:?}: the read");

        // Removed and made again under the same name elsewhere: the revert reaches the new one.
        other.snapshot_delete(vm, "a", 0).unwrap();
        other.snapshot_create(vm, &xml("a", "again"), 0).unwrap();
        other.snapshot_create(vm, &xml("c", ""), 0).unwrap();
        let ((), n) = trips(c, || c.snapshot_revert(vm, "a", 0).unwrap());
        assert_eq!(n, 3, "{m:?}: read, task, outcome");
        let cur = other.snapshot_current(vm).unwrap().unwrap();
        assert_eq!(cur.name, "a");
        assert!(other.snapshot_xml(vm, "a").unwrap().contains("<description>again</description>"));

        // A name the kept tree has but the server no longer does: read again, then created.
        other.snapshot_delete(vm, "c", 0).unwrap();
        let (_, n) = trips(c, || c.snapshot_create(vm, &xml("c", ""), 0).unwrap());
        assert_eq!(n, 3, "{m:?}: read, task, outcome");
        let names: Vec<_> = c.snapshot_list(vm).unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["a", "c"], "{m:?}");
    });
}

#[test]
fn quirk_1_disk_only_snapshot_state() {
    // Simulator quirk F.6 #1: the snapshot's state is the VM's power state whatever `memory`
    // says; real vSphere records poweredOff (shutoff) for a DISK_ONLY (memory=false) snapshot.
    each_model(|m, _sim, c| {
        let (vm, _) = m.vm();
        c.snapshot_create(vm, &xml("d", ""), cf::DISK_ONLY).unwrap();
        let s = c.snapshot_lookup(vm, "d").unwrap();
        assert!(s.state == st::RUNNING || s.state == st::SHUTOFF, "{}", s.state);
    });
}

#[test]
fn duplicate_names_made_elsewhere_are_ambiguous_and_ids_still_work() {
    // vSphere allows duplicate names (reference §B.15); virtplug refuses to create them, so the
    // duplicate is made with a raw CreateSnapshot_Task, as another client would.
    each_model(|m, _sim, c| {
        let (vm, _) = m.vm();
        c.snapshot_create(vm, &xml("twin", ""), 0).unwrap();
        let moid = c.vm_moid_for_tests(vm).unwrap();
        let body = format!(
            r#"<CreateSnapshot_Task xmlns="urn:vim25"><_this type="VirtualMachine">{moid}</_this><name>twin</name><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"#
        );
        c.raw_call_for_tests("CreateSnapshot_Task", &body).unwrap();
        let e = c.snapshot_lookup(vm, "twin").unwrap_err();
        assert_eq!(e.code, codes::INVALID_ARG);
        assert!(e.message.contains("ambiguous") && e.message.matches("snapshot-").count() == 2, "{e}");
        assert_eq!(c.snapshot_revert(vm, "twin", 0).unwrap_err().code, codes::INVALID_ARG);
        assert_eq!(c.snapshot_delete(vm, "twin", 0).unwrap_err().code, codes::INVALID_ARG);
        // Each twin stays addressable by its id.
        let id =
            e.message.split("snapshot-").nth(2).and_then(|r| r.split(|ch: char| !ch.is_ascii_digit()).next()).unwrap();
        c.snapshot_delete(vm, &format!("snapshot-{id}"), 0).unwrap();
        assert_eq!(c.snapshot_lookup(vm, "twin").unwrap().name, "twin");
    });
}

#[test]
fn revert_running_and_paused_apply_the_power_state() {
    // Simulator quirk F.6 #2: revert does not change the VM's power state, so the power state
    // after a plain revert is whatever it was; RUNNING / PAUSED must still be honoured.
    each_model(|m, _sim, c| {
        let (vm, _) = m.vm();
        c.snapshot_create(vm, &xml("r1", ""), 0).unwrap();
        c.domain_destroy(vm).unwrap();
        assert_eq!(c.domain_lookup_by_name(vm).unwrap().state, st::SHUTOFF);
        c.snapshot_revert(vm, "r1", rf::RUNNING).unwrap();
        assert_eq!(c.domain_lookup_by_name(vm).unwrap().state, st::RUNNING);
        c.snapshot_revert(vm, "r1", rf::PAUSED).unwrap();
        assert_eq!(c.domain_lookup_by_name(vm).unwrap().state, st::PAUSED);
        c.snapshot_revert(vm, "r1", rf::RUNNING).unwrap();
        assert_eq!(c.domain_lookup_by_name(vm).unwrap().state, st::RUNNING);
    });
}

#[test]
fn unknown_domain_and_snapshot() {
    each_model(|m, _sim, c| {
        let (vm, _) = m.vm();
        assert_eq!(c.snapshot_list("nosuch").unwrap_err().code, codes::NO_DOMAIN);
        assert_eq!(c.snapshot_revert(vm, "nosuch", 0).unwrap_err().code, codes::NO_DOMAIN_SNAPSHOT);
        assert_eq!(c.snapshot_xml(vm, "nosuch").unwrap_err().code, codes::NO_DOMAIN_SNAPSHOT);
        let e = c
            .snapshot_create(vm, "<domainsnapshot><name>x</name><disks><disk name='sda'/></disks></domainsnapshot>", 0)
            .unwrap_err();
        assert_eq!(e.code, codes::CONFIG_UNSUPPORTED);
    });
}

#[test]
fn vm_model_is_covered() {
    assert_eq!(Model::Vpx.vm().0, "DC0_H0_VM0");
}
