//! The simulator against the behaviour checklist of `virtualbox-backend.md` §8, byte for byte
//! (stdout, stderr, exit code). Each test names its checklist item and upstream source. These
//! run against the simulator only (`--sim-control` sets up the machines).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::Env;

const LOGO: &str = "Oracle VM VirtualBox Command Line Management Interface Version 7.0.8\nCopyright (C) 2005-2023 Oracle and/or its affiliates\n\n";
const PROGRESS: &str = "0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n";
const VM: &str = "5d1e0b9a-0c4e-4a7b-9d5e-000000000001";

fn sim() -> Option<Env> {
    let env = Env::new()?;
    if env.real {
        return None;
    }
    env.ok(&["--sim-control", "create-vm", "demo", "--uuid", VM]);
    Some(env)
}

/// One case: argv, then the exact stdout, stderr and exit code.
fn check(env: &Env, args: &[&str], stdout: &str, stderr: &str, code: i32) {
    let r = env.vbm(args);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str(), r.code), (stdout, stderr, code), "VBoxManage {args:?}");
}

fn usage() -> String {
    "Usage:\n\nVBoxManage snapshot <uuid|vmname>\nVBoxManage snapshot <uuid|vmname> take <snapshot-name> [--description=description] [--live] [--uniquename Number,Timestamp,Space,Force]\nVBoxManage snapshot <uuid|vmname> delete <snapshot-name>\nVBoxManage snapshot <uuid|vmname> restore <snapshot-name>\nVBoxManage snapshot <uuid|vmname> restorecurrent\nVBoxManage snapshot <uuid|vmname> edit <snapshot-name | --current> [--description=description] [--name=new-name]\nVBoxManage snapshot <uuid|vmname> list [[--details] | [--machinereadable]]\nVBoxManage snapshot <uuid|vmname> showvminfo <snapshot-name>\n".to_owned()
}

fn syntax(msg: &str) -> String {
    format!("{LOGO}VBoxManage: error: {msg}\n\n{}", usage())
}

/// Item 1 (`VirtualBoxImpl.cpp:2259-2283, 3942-3959`): by UUID (braces optional), by name, by
/// settings path; not found → COM error, exit 1.
#[test]
fn item01_machine_lookup() {
    let Some(env) = sim() else { return };
    let none = "This machine does not have any snapshots\n";
    check(&env, &["snapshot", VM, "list"], none, "", 1);
    check(&env, &["snapshot", &format!("{{{VM}}}"), "list"], none, "", 1);
    check(&env, &["snapshot", "demo", "list"], none, "", 1);
    let cfg = env.cfg_file("demo");
    check(&env, &["snapshot", &cfg.display().to_string(), "list"], none, "", 1);
    check(
        &env,
        &["snapshot", "Demo", "list"],
        "",
        "VBoxManage: error: Could not find a registered machine named 'Demo'\nVBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports\nVBoxManage: error: Context: \"FindMachine(Bstr(a->argv[0]).raw(), pMachine.asOutParam())\" at line 344 of file VBoxManageSnapshot.cpp\n",
        1,
    );
    check(
        &env,
        &["snapshot", "11111111-2222-3333-4444-555555555555", "list"],
        "",
        "VBoxManage: error: Could not find a registered machine with UUID {11111111-2222-3333-4444-555555555555}\nVBoxManage: error: Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component VirtualBoxWrap, interface IVirtualBox, callee nsISupports\nVBoxManage: error: Context: \"FindMachine(Bstr(a->argv[0]).raw(), pMachine.asOutParam())\" at line 344 of file VBoxManageSnapshot.cpp\n",
        1,
    );
}

/// Item 2 (`VBoxManageList.cpp:1966-2045`): registration order, `--sorted`, runningvms.
#[test]
fn item02_list_vms() {
    let Some(env) = sim() else { return };
    env.ok(&["--sim-control", "create-vm", "alpha \"q\"", "--uuid", "5d1e0b9a-0c4e-4a7b-9d5e-000000000002"]);
    check(
        &env,
        &["list", "vms"],
        &format!("\"demo\" {{{VM}}}\n\"alpha \"q\"\" {{5d1e0b9a-0c4e-4a7b-9d5e-000000000002}}\n"),
        "",
        0,
    );
    check(
        &env,
        &["list", "--sorted", "vms"],
        &format!("\"alpha \"q\"\" {{5d1e0b9a-0c4e-4a7b-9d5e-000000000002}}\n\"demo\" {{{VM}}}\n"),
        "",
        0,
    );
    check(&env, &["list", "runningvms"], "", "", 0);
    env.ok(&["--sim-control", "set-state", "demo", "paused"]);
    check(&env, &["list", "runningvms"], &format!("\"demo\" {{{VM}}}\n"), "", 0);
}

/// Item 3 (`VBoxManageInfo.cpp:346-399, 1100-1193, 1405-1425, 2927`): machine-readable keys,
/// escaping, state names, the 7.0 `Encryption:` line, snapshot lines at the end.
#[test]
fn item03_showvminfo_machinereadable() {
    let Some(env) = sim() else { return };
    let dir = env.cfg_file("demo").parent().unwrap().display().to_string();
    let head = format!(
        "name=\"demo\"\nEncryption:     disabled\ngroups=\"/\"\nostype=\"Other/Unknown (64-bit)\"\nUUID=\"{VM}\"\nCfgFile=\"{dir}/demo.vbox\"\nSnapFldr=\"{dir}/Snapshots\"\nLogFldr=\"{dir}/Logs\"\nmemory=128\ncpus=1\n"
    );
    check(
        &env,
        &["showvminfo", "demo", "--machinereadable"],
        &format!("{head}VMState=\"poweroff\"\nVMStateChangeTime=\"2024-03-25T13:40:44.000000000Z\"\n"),
        "",
        0,
    );
    env.ok(&["--sim-control", "set-state", "demo", "saved"]);
    let u = env.take("demo", "s \"1\"");
    check(
        &env,
        &["showvminfo", "demo", "--machinereadable"],
        &format!(
            "{head}VMState=\"saved\"\nVMStateChangeTime=\"2024-03-25T13:40:44.000000000Z\"\nVMStateFile=\"{dir}/Snapshots/2024-03-25T13-40-44-000000000Z.sav\"\nSnapshotName=\"s \"1\"\"\nSnapshotUUID=\"{u}\"\nCurrentSnapshotName=\"s \"1\"\"\nCurrentSnapshotUUID=\"{u}\"\nCurrentSnapshotNode=\"SnapshotName\"\n"
        ),
        "",
        0,
    );
}

/// Item 4 (`VBoxManageInfo.cpp:263-331`; `VBoxManageSnapshot.cpp:206-209`): pre-order, 1-based
/// suffixes, description only if non-empty, Current* after the current node, raw values.
#[test]
fn item04_list_machinereadable() {
    let Some(env) = sim() else { return };
    check(
        &env,
        &["snapshot", "demo", "list", "--machinereadable"],
        "This machine does not have any snapshots\n",
        "",
        1,
    );
    let base = env.take("demo", "base");
    let s1 = env
        .ok(&["snapshot", "demo", "take", "s1", "--description", "fi\"rst\nline"])
        .stdout
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    let s1a = env.take("demo", "s1a");
    env.ok(&["snapshot", "demo", "restore", &base]);
    let s2 = env.take("demo", "s2");
    env.ok(&["snapshot", "demo", "restore", &s1a]);
    check(
        &env,
        &["snapshot", "demo", "list", "--machinereadable"],
        &format!(
            "SnapshotName=\"base\"\nSnapshotUUID=\"{base}\"\nSnapshotName-1=\"s1\"\nSnapshotUUID-1=\"{s1}\"\nSnapshotDescription-1=\"fi\"rst\nline\"\nSnapshotName-1-1=\"s1a\"\nSnapshotUUID-1-1=\"{s1a}\"\nCurrentSnapshotName=\"s1a\"\nCurrentSnapshotUUID=\"{s1a}\"\nCurrentSnapshotNode=\"SnapshotName-1-1\"\nSnapshotName-2=\"s2\"\nSnapshotUUID-2=\"{s2}\"\n"
        ),
        "",
        0,
    );
    // Item 5: human-readable, three spaces per level, ` *`, both description layouts.
    env.ok(&["snapshot", "demo", "edit", &s2, "--description=one line"]);
    let human = format!(
        "   Name: base (UUID: {base})\n      Name: s1 (UUID: {s1})\n      Description:\nfi\"rst\nline\n         Name: s1a (UUID: {s1a}) *\n      Name: s2 (UUID: {s2})\n      Description: one line\n"
    );
    check(&env, &["snapshot", "demo", "list"], &human, "", 0);
    check(&env, &["snapshot", "demo", "list", "--details"], &human, "", 0);
}

/// Items 6 and 17 (`SnapshotImpl.cpp:1619-1720, 2126-2137`; `Settings.cpp`): duplicates allowed,
/// last child of the current, becomes current, progress on stderr, `.vbox` updated in the 7.0
/// format, online snapshots get a state file.
#[test]
fn item06_item17_take_and_settings_file() {
    let Some(env) = sim() else { return };
    let r = env.vbm(&["snapshot", "demo", "take", "dup"]);
    assert_eq!((r.stderr.as_str(), r.code), (PROGRESS, 0));
    assert!(r.stdout.starts_with("Snapshot taken. UUID: ") && r.stdout.len() == "Snapshot taken. UUID: ".len() + 37);
    env.take("demo", "dup");
    env.ok(&["--sim-control", "set-state", "demo", "running"]);
    env.take("demo", "online");
    let vbox = std::fs::read_to_string(env.cfg_file("demo")).unwrap();
    assert!(vbox.starts_with("<?xml version=\"1.0\"?>\n<!--\n** DO NOT EDIT THIS FILE."));
    assert!(vbox.contains("<VirtualBox xmlns=\"http://www.virtualbox.org/\" version=\"1.19-linux\">\n"));
    assert!(
        vbox.contains(&format!("<Machine uuid=\"{{{VM}}}\" name=\"demo\" OSType=\"Other_64\" currentSnapshot=\"{{"))
    );
    assert!(vbox.contains("currentStateModified=\"false\""), "the offline takes set it false");
    assert_eq!(vbox.matches("name=\"dup\"").count(), 2);
    assert!(vbox.contains("name=\"online\" timeStamp=\"") && vbox.contains(".sav\">"));
    assert!(vbox.contains("<Hardware>") && vbox.contains("<StorageControllers>"));
}

/// Item 7 (`VBoxManageSnapshot.cpp:276-318, 369, 414, 421-481`).
#[test]
fn item07_take_options() {
    let Some(env) = sim() else { return };
    check(&env, &["snapshot", "demo", "take"], "", &syntax("Missing snapshot name"), 1);
    check(
        &env,
        &["snapshot", "demo", "take", "s", "--uniquename", "bogus"],
        "",
        "VBoxManage: error: Invalid unique name description 'bogus'\n",
        2,
    );
    env.take("demo", "s");
    let r = env.ok(&["snapshot", "demo", "take", "s", "--uniquename", "Number,Space"]);
    assert!(r.stdout.starts_with("Snapshot taken."));
    env.ok(&["snapshot", "demo", "take", "s", "--uniquename", "num"]);
    env.ok(&["snapshot", "demo", "take", "t", "--uniquename", "n,f", "-desc", "d"]);
    let list = env.ok(&["snapshot", "demo", "list", "--machinereadable"]).stdout;
    for n in ["=\"s\"", "=\"s 2\"", "=\"s2\"", "=\"t1\""] {
        assert!(list.contains(n), "{n} in {list}");
    }
}

/// Item 8 (`SnapshotImpl.cpp:1630`): take in a transient state.
#[test]
fn item08_take_while_changing_state() {
    let Some(env) = sim() else { return };
    env.ok(&["--sim-control", "set-state", "demo", "saving"]);
    check(
        &env,
        &["snapshot", "demo", "take", "x"],
        "",
        "VBoxManage: error: Cannot take a snapshot of the machine while it is changing the state (machine state: Saving)\nVBoxManage: error: Details: code VBOX_E_INVALID_VM_STATE (0x80bb0002), component SessionMachine, interface IMachine, callee nsISupports\nVBoxManage: error: Context: \"TakeSnapshot(Bstr(pszName).raw(), Bstr(pszDescription).raw(), fPause, snapshotId.asOutParam(), progress.asOutParam())\" at line 487 of file VBoxManageSnapshot.cpp\n",
        1,
    );
}

/// Item 9 (`VBoxManageSnapshot.cpp:549`; `SnapshotImpl.cpp:267-325, 2702-2744`).
#[test]
fn item09_delete() {
    let Some(env) = sim() else { return };
    let a = env.take("demo", "A");
    let b = env.take("demo", "B");
    env.ok(&["snapshot", "demo", "restore", "A"]);
    let ctx = "VBoxManage: error: Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component SessionMachine, interface IMachine, callee nsISupports\nVBoxManage: error: Context: \"DeleteSnapshot(bstrSnapGuid.raw(), pProgress.asOutParam())\" at line 554 of file VBoxManageSnapshot.cpp\n";
    check(
        &env,
        &["snapshot", "demo", "delete", "A"],
        &format!("Deleting snapshot 'A' ({a})\n"),
        &format!(
            "VBoxManage: error: Snapshot 'A' of the machine 'demo' cannot be deleted, because it is the current snapshot and has one child snapshot\n{ctx}"
        ),
        1,
    );
    let c = env.take("demo", "C");
    check(
        &env,
        &["snapshot", "demo", "delete", &a],
        &format!("Deleting snapshot 'A' ({a})\n"),
        &format!(
            "VBoxManage: error: Snapshot 'A' of the machine 'demo' cannot be deleted, because it has 2 child snapshots, which is more than the one snapshot allowed for deletion\n{ctx}"
        ),
        1,
    );
    env.ok(&["--sim-control", "set-state", "demo", "running"]);
    check(&env, &["snapshot", "demo", "delete", "C"], &format!("Deleting snapshot 'C' ({c})\n"), PROGRESS, 0);
    // C was current: its parent A becomes current, currentStateModified true (attribute gone).
    let vbox = std::fs::read_to_string(env.cfg_file("demo")).unwrap();
    assert!(vbox.contains(&format!("currentSnapshot=\"{{{a}}}\"")) && !vbox.contains("currentStateModified"));
    env.ok(&["--sim-control", "set-state", "demo", "poweroff"]);
    // A is current again (with the one child B): refused; after restoring B, deleting the
    // root A promotes B to root.
    check(
        &env,
        &["snapshot", "demo", "delete", "A"],
        &format!("Deleting snapshot 'A' ({a})\n"),
        &format!(
            "VBoxManage: error: Snapshot 'A' of the machine 'demo' cannot be deleted, because it is the current snapshot and has one child snapshot\n{ctx}"
        ),
        1,
    );
    env.ok(&["snapshot", "demo", "restore", &b]);
    check(&env, &["snapshot", "demo", "delete", "A"], &format!("Deleting snapshot 'A' ({a})\n"), PROGRESS, 0);
    check(
        &env,
        &["snapshot", "demo", "list", "--machinereadable"],
        &format!(
            "SnapshotName=\"B\"\nSnapshotUUID=\"{b}\"\nCurrentSnapshotName=\"B\"\nCurrentSnapshotUUID=\"{b}\"\nCurrentSnapshotNode=\"SnapshotName\"\n"
        ),
        "",
        0,
    );
}

/// Items 10 and 11 (`SnapshotImpl.cpp:2210-2546`; `VBoxManageSnapshot.cpp:530-531`).
#[test]
fn item10_item11_restore() {
    let Some(env) = sim() else { return };
    check(&env, &["snapshot", "demo", "restorecurrent"], "This machine does not have any snapshots\n", "", 1);
    let off = env.take("demo", "off");
    env.ok(&["--sim-control", "set-state", "demo", "running"]);
    let on = env.take("demo", "on");
    check(
        &env,
        &["snapshot", "demo", "restore", "off"],
        &format!("Restoring snapshot 'off' ({off})\n"),
        "VBoxManage: error: Cannot delete the current state of the running machine (machine state: Running)\nVBoxManage: error: Details: code VBOX_E_INVALID_VM_STATE (0x80bb0002), component SessionMachine, interface IMachine, callee nsISupports\nVBoxManage: error: Context: \"RestoreSnapshot(pSnapshot, pProgress.asOutParam())\" at line 560 of file VBoxManageSnapshot.cpp\n",
        1,
    );
    env.ok(&["--sim-control", "set-state", "demo", "aborted"]);
    check(&env, &["snapshot", "demo", "restore", &on], &format!("Restoring snapshot 'on' ({on})\n"), PROGRESS, 0);
    assert_eq!(env.vm_state("demo"), "saved");
    check(&env, &["snapshot", "demo", "restorecurrent", "x"], "", &syntax("Too many arguments"), 1);
    check(&env, &["snapshot", "demo", "restore", "off"], &format!("Restoring snapshot 'off' ({off})\n"), PROGRESS, 0);
    assert_eq!(env.vm_state("demo"), "poweroff");
    check(&env, &["snapshot", "demo", "restorecurrent"], &format!("Restoring snapshot 'off' ({off})\n"), PROGRESS, 0);
}

/// Item 12 (`MachineImpl.cpp:5645-5666, 9859-9909`): UUID-shaped arguments are UUID lookups
/// only; names are the first DFS pre-order match.
#[test]
fn item12_snapshot_resolution() {
    let Some(env) = sim() else { return };
    let tail = |code: &str, hex: &str| {
        format!(
            "VBoxManage: error: Details: code {code} ({hex}), component SessionMachine, interface IMachine, callee nsISupports\nVBoxManage: error: Context: \"FindSnapshot(Bstr(a->argv[2]).raw(), pSnapshot.asOutParam())\" at line 537 of file VBoxManageSnapshot.cpp\n"
        )
    };
    check(
        &env,
        &["snapshot", "demo", "delete", "x"],
        "",
        &format!(
            "VBoxManage: error: This machine does not have any snapshots\n{}",
            tail("VBOX_E_OBJECT_NOT_FOUND", "0x80bb0001")
        ),
        1,
    );
    let shaped = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    env.take("demo", shaped);
    check(
        &env,
        &["snapshot", "demo", "delete", shaped],
        "",
        &format!(
            "VBoxManage: error: Could not find a snapshot with UUID {{{shaped}}}\n{}",
            tail("NS_ERROR_FAILURE", "0x80004005")
        ),
        1,
    );
    check(
        &env,
        &["snapshot", "demo", "restore", "nope"],
        "",
        &format!(
            "VBoxManage: error: Could not find a snapshot named 'nope'\n{}",
            tail("VBOX_E_OBJECT_NOT_FOUND", "0x80bb0001")
        ),
        1,
    );
}

/// Item 13 (`VBoxManageSnapshot.cpp:604-614`; `SnapshotImpl.cpp:384-402`).
#[test]
fn item13_edit() {
    let Some(env) = sim() else { return };
    check(
        &env,
        &["snapshot", "demo", "edit", "--current", "--name=x"],
        "This machine does not have any snapshots\n",
        "",
        1,
    );
    let u = env.take("demo", "a");
    check(&env, &["snapshot", "demo", "edit", "a", "--name=b", "--description", "d"], "", "", 0);
    check(
        &env,
        &["snapshot", "demo", "edit", "--current", "--name=11111111-2222-3333-4444-555555555555"],
        "",
        "VBoxManage: error: A machine cannot have a UUID as its name\nVBoxManage: error: Details: code NS_ERROR_INVALID_ARG (0x80070057), component Snapshot, interface ISnapshot, callee nsISupports\nVBoxManage: error: Context: \"pSnapshot->COMSETTER(Name)(Bstr(ValueUnion.psz).raw())\" at line 610 of file VBoxManageSnapshot.cpp\n",
        1,
    );
    check(
        &env,
        &["snapshot", "demo", "list", "--machinereadable"],
        &format!(
            "SnapshotName=\"b\"\nSnapshotUUID=\"{u}\"\nSnapshotDescription=\"d\"\nCurrentSnapshotName=\"b\"\nCurrentSnapshotUUID=\"{u}\"\nCurrentSnapshotNode=\"SnapshotName\"\n"
        ),
        "",
        0,
    );
}

/// Items 14 and 15 (`VBoxManageSnapshot.cpp:339, 638, 662`; `VBoxManage.cpp:641-649, 775`).
#[test]
fn item14_item15_general_cli() {
    let Some(env) = sim() else { return };
    env.take("demo", "a");
    check(
        &env,
        &["snapshot", "demo", "showvminfo", "a", "--machinereadable"],
        "",
        &syntax("Expecting snapshot name only"),
        1,
    );
    check(&env, &["snapshot", "demo"], "", &syntax("Not enough parameters"), 2);
    check(&env, &["snapshot"], &usage(), "", 1);
    check(&env, &["snapshot", "demo", "frobnicate"], "", &syntax("Invalid parameter 'frobnicate'"), 1);
    check(&env, &["snapshot", "demo", "delete", "a", "b"], "", &syntax("Expecting snapshot name only"), 1);
    check(&env, &["frobnicate"], "", "VBoxManage: error: Invalid command 'frobnicate'\n", 2);
    check(&env, &["--version"], "7.0.8r156879\n", "", 0);
}
