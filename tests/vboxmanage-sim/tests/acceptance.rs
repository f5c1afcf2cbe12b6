//! The acceptance scenarios of `virtualbox-backend.md` §9, the plugin (native SDK API, opened
//! with `Plugin::open`) against the simulator — or a real VBoxManage with
//! `VIRTPLUG_VBOX_REAL=/path/to/VBoxManage`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::Env;
use virtplug_plugin_sdk::{Driver, codes, flags::domain_state as st, flags::snapshot_delete as del};

fn xml(name: &str) -> String {
    format!("<domainsnapshot><name>{name}</name></domainsnapshot>")
}

fn create(d: &dyn Driver, vm: &str, name: &str) {
    assert_eq!(d.snapshot_create(vm, &xml(name), 0).unwrap(), name);
}

/// (name, parent) of every snapshot, sorted.
fn shape(d: &dyn Driver, vm: &str) -> Vec<(String, Option<String>)> {
    let mut v: Vec<_> = d.snapshot_list(vm, 0).unwrap().into_iter().map(|s| (s.name, s.parent)).collect();
    v.sort();
    v
}

fn pair(n: &str, p: Option<&str>) -> (String, Option<String>) {
    (n.to_owned(), p.map(str::to_owned))
}

fn current(d: &dyn Driver, vm: &str) -> Option<String> {
    d.snapshot_current(vm).unwrap().map(|s| s.name)
}

fn err<T: std::fmt::Debug>(r: virtplug_plugin_sdk::Result<T>) -> (u32, String) {
    let e = r.expect_err("expected an error");
    (e.code, e.message)
}

#[test]
fn empty_vm_lists_nothing_and_has_no_current() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("empty");
    let r = env.vbm(&["snapshot", &vm, "list", "--machinereadable"]);
    assert_eq!((r.code, r.stdout.as_str()), (1, "This machine does not have any snapshots\n"));
    let d = env.driver();
    assert!(d.snapshot_list(&vm, 0).unwrap().is_empty());
    assert_eq!(d.snapshot_current(&vm).unwrap(), None);
    assert_eq!(err(d.snapshot_lookup(&vm, "x")).0, codes::NO_DOMAIN_SNAPSHOT);
}

#[test]
fn delete_of_a_snapshot_with_two_children_is_refused() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("two");
    let d = env.driver();
    create(&*d, &vm, "A");
    create(&*d, &vm, "B");
    d.snapshot_revert(&vm, "A", 0).unwrap();
    create(&*d, &vm, "C");
    assert_eq!(shape(&*d, &vm), vec![pair("A", None), pair("B", Some("A")), pair("C", Some("A"))]);
    assert_eq!(current(&*d, &vm).as_deref(), Some("C"));
    let (code, msg) = err(d.snapshot_delete(&vm, "A", 0));
    assert_eq!(code, codes::OPERATION_INVALID);
    assert_eq!(
        msg,
        format!(
            "Snapshot 'A' of the machine '{vm}' cannot be deleted, because it has 2 child snapshots, which is more than the one snapshot allowed for deletion"
        )
    );
    assert_eq!(d.snapshot_list(&vm, 0).unwrap().len(), 3);
}

#[test]
fn delete_of_the_current_snapshot_with_one_child_is_refused() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("cur");
    let d = env.driver();
    create(&*d, &vm, "A");
    create(&*d, &vm, "B");
    d.snapshot_revert(&vm, "A", 0).unwrap();
    assert_eq!(current(&*d, &vm).as_deref(), Some("A"));
    let (code, msg) = err(d.snapshot_delete(&vm, "A", 0));
    assert_eq!(code, codes::OPERATION_INVALID);
    assert_eq!(
        msg,
        format!(
            "Snapshot 'A' of the machine '{vm}' cannot be deleted, because it is the current snapshot and has one child snapshot"
        )
    );
}

#[test]
fn one_child_is_reparented_to_the_end_and_indices_change() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("reparent");
    let d = env.driver();
    // A -> {B -> C, D}
    create(&*d, &vm, "A");
    create(&*d, &vm, "B");
    create(&*d, &vm, "C");
    d.snapshot_revert(&vm, "A", 0).unwrap();
    create(&*d, &vm, "D");
    let before = env.ok(&["snapshot", &vm, "list", "--machinereadable"]).stdout;
    assert!(before.contains("SnapshotName-1-1=\"C\"\n") && before.contains("SnapshotName-2=\"D\"\n"), "{before}");
    d.snapshot_delete(&vm, "B", 0).unwrap();
    assert_eq!(shape(&*d, &vm), vec![pair("A", None), pair("C", Some("A")), pair("D", Some("A"))]);
    let after = env.ok(&["snapshot", &vm, "list", "--machinereadable"]).stdout;
    assert!(after.contains("SnapshotName-1=\"D\"\n") && after.contains("SnapshotName-2=\"C\"\n"), "{after}");
    assert_eq!(current(&*d, &vm).as_deref(), Some("D"));
}

#[test]
fn duplicate_names_are_ambiguous_for_the_plugin_and_dfs_first_for_virtualbox() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("dups");
    // R -> {X -> {dup (deep)}, dup (shallow)}: DFS pre-order finds the deep one first, BFS the
    // shallow one.
    let r = env.take(&vm, "R");
    env.take(&vm, "X");
    let deep = env.take(&vm, "dup");
    env.ok(&["snapshot", &vm, "restore", &r]);
    let shallow = env.take(&vm, "dup");
    let d = env.driver();
    let (code, msg) = err(d.snapshot_lookup(&vm, "dup"));
    assert_eq!(code, codes::INVALID_ARG);
    assert_eq!(
        msg,
        format!(
            "snapshot name 'dup' is ambiguous: 2 snapshots of domain '{vm}' have it ({deep}, {shallow}); name one by its UUID"
        )
    );
    assert_eq!(err(d.snapshot_delete(&vm, "dup", 0)).0, codes::INVALID_ARG);
    // Each is reachable by UUID (braces allowed).
    assert_eq!(d.snapshot_lookup(&vm, &deep).unwrap().parent.as_deref(), Some("X"));
    assert_eq!(d.snapshot_lookup(&vm, &format!("{{{shallow}}}")).unwrap().parent.as_deref(), Some("R"));
    // VirtualBox itself picks the first DFS pre-order match.
    env.ok(&["snapshot", &vm, "edit", "dup", "--description=picked"]);
    assert!(d.snapshot_xml(&vm, &deep, 0).unwrap().contains("<description>picked</description>"));
    assert!(!d.snapshot_xml(&vm, &shallow, 0).unwrap().contains("picked"));
    // The plugin refuses to create a third one.
    let (code, msg) = err(d.snapshot_create(&vm, &xml("dup"), 0));
    assert_eq!((code, msg.as_str()), (codes::OPERATION_INVALID, "Snapshot 'dup' already exists"));
    // Deleting by UUID removes exactly that one.
    d.snapshot_delete(&vm, &deep, 0).unwrap();
    assert_eq!(d.snapshot_lookup(&vm, "dup").unwrap().parent.as_deref(), Some("R"));
}

#[test]
fn running_vm_take_online_restore_refused_delete_allowed() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("running");
    let d = env.driver();
    create(&*d, &vm, "off");
    env.set_state(&vm, "running");
    create(&*d, &vm, "on");
    let on = d.snapshot_lookup(&vm, "on").unwrap();
    assert_eq!(on.state, st::RUNNING);
    assert_eq!(d.snapshot_lookup(&vm, "off").unwrap().state, st::SHUTOFF);
    assert!(d.snapshot_xml(&vm, "on", 0).unwrap().contains("<state>running</state>"));
    let (code, msg) = err(d.snapshot_revert(&vm, "off", 0));
    assert_eq!(code, codes::OPERATION_INVALID);
    assert_eq!(msg, "Cannot delete the current state of the running machine (machine state: Running)");
    d.snapshot_delete(&vm, "on", 0).unwrap();
    assert_eq!(shape(&*d, &vm), vec![pair("off", None)]);
    assert_eq!(env.vm_state(&vm), "running");
}

#[test]
fn saved_vm_restore_goes_to_poweroff_or_saved() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("saved");
    let d = env.driver();
    create(&*d, &vm, "offline");
    env.set_state(&vm, "running");
    create(&*d, &vm, "online");
    env.set_state(&vm, "saved");
    assert_eq!(d.domain_lookup_by_name(&vm).unwrap().state, st::SHUTOFF);
    d.snapshot_revert(&vm, "offline", 0).unwrap();
    assert_eq!(env.vm_state(&vm), "poweroff");
    let cfg = std::fs::read_to_string(env.cfg_file(&vm)).unwrap();
    let machine_line = cfg.lines().find(|l| l.contains("<Machine ")).unwrap();
    assert!(!machine_line.contains("stateFile"), "saved state discarded: {machine_line}");
    d.snapshot_revert(&vm, "online", 0).unwrap();
    assert_eq!(env.vm_state(&vm), "saved");
    assert_eq!(current(&*d, &vm).as_deref(), Some("online"));
}

#[test]
fn wide_and_deep_trees() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("wide");
    let d = env.driver();
    create(&*d, &vm, "root");
    for i in 1..=11 {
        d.snapshot_revert(&vm, "root", 0).unwrap();
        create(&*d, &vm, &format!("c{i}"));
    }
    let out = env.ok(&["snapshot", &vm, "list", "--machinereadable"]).stdout;
    assert!(out.contains("SnapshotName-11=\"c11\"\n") && out.contains("SnapshotName-10=\"c10\"\n"));
    let list = d.snapshot_list(&vm, 0).unwrap();
    assert_eq!(list.len(), 12);
    assert!(list.iter().filter(|s| s.name != "root").all(|s| s.parent.as_deref() == Some("root")));
    assert_eq!(d.snapshot_lookup(&vm, "c10").unwrap().parent.as_deref(), Some("root"));

    let vm2 = env.create_vm("deep");
    for i in 0..22 {
        create(&*d, &vm2, &format!("level {i}"));
    }
    let deep = d.snapshot_lookup(&vm2, "level 21").unwrap();
    assert_eq!((deep.parent.as_deref(), deep.current), (Some("level 20"), true));
    // CHILDREN on a 22-deep chain: a leaves-first walk, each deletion of a leaf.
    d.snapshot_delete(&vm2, "level 1", del::CHILDREN).unwrap();
    assert_eq!(shape(&*d, &vm2), vec![pair("level 0", None)]);
    assert_eq!(current(&*d, &vm2).as_deref(), Some("level 0"));
}

#[test]
fn awkward_names_and_multi_line_descriptions() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("names");
    let d = env.driver();
    let names = ["with \"quotes\"", "spaces  and\ttab", "Ünïcødé ✓ 快照", "-dash", "a=b\"c"];
    for n in names {
        let x = format!(
            "<domainsnapshot><name>{}</name><description>line one\nSnapshotName-9=\"not a key\"\n\"quoted\" &amp; done</description></domainsnapshot>",
            n.replace('"', "&quot;")
        );
        assert_eq!(d.snapshot_create(&vm, &x, 0).unwrap(), n);
    }
    for n in names {
        let info = d.snapshot_lookup(&vm, n).unwrap();
        assert_eq!(info.name, n);
        let x = d.snapshot_xml(&vm, n, 0).unwrap();
        assert!(x.contains("<description>line one\nSnapshotName-9=&quot;not a key&quot;\n&quot;quoted&quot; &amp; done</description>"), "{x}");
    }
    // A UUID-shaped name made outside the plugin is still found by name (no snapshot has that
    // UUID); the plugin itself refuses to create one.
    let shaped = "12345678-1234-1234-1234-123456789abc";
    env.take(&vm, shaped);
    assert_eq!(d.snapshot_lookup(&vm, shaped).unwrap().name, shaped);
    assert_eq!(err(d.snapshot_create(&vm, &xml("0bd2a1c8-1234-1234-1234-123456789abc"), 0)).0, codes::XML_DETAIL);
    assert_eq!(d.snapshot_list(&vm, 0).unwrap().len(), 6);
}

#[test]
fn missing_or_unusable_vboxmanage_is_one_clear_error() {
    let Some(env) = Env::new() else { return };
    let open = |uri: &str| {
        use virtplug_plugin_sdk::Plugin;
        virtplug_plugin_virtualbox::VirtualBox::open(uri, false).map(drop).expect_err("open must fail")
    };
    let missing = env.dir.path().join("nope/VBoxManage");
    let e = open(&format!("vbox:///session?vboxmanage={}", missing.display()));
    assert_eq!(e.code, codes::OPERATION_FAILED);
    assert!(e.message.starts_with("VBoxManage not found or not executable: '"), "{}", e.message);
    let not_exec = env.dir.path().join("plain-file");
    std::fs::write(&not_exec, "x").unwrap();
    let e = open(&format!("vbox:///session?vboxmanage={}", not_exec.display()));
    assert!(e.message.starts_with("VBoxManage not found or not executable"), "{}", e.message);
    let exit126 = env.dir.path().join("exit126");
    std::fs::write(&exit126, "#!/bin/sh\nexit 126\n").unwrap();
    let mut p = std::fs::metadata(&exit126).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(&exit126, p).unwrap();
    let e = open(&format!("vbox:///session?vboxmanage={}", exit126.display()));
    assert!(
        e.message.contains("not found or not executable") && e.message.contains("exit status 126"),
        "{}",
        e.message
    );
    let e = open("vbox:///system");
    assert_eq!(e.code, codes::NO_CONNECT);
    let e = open("vbox:///session?bogus=1");
    assert_eq!(e.code, codes::INVALID_ARG);
}
