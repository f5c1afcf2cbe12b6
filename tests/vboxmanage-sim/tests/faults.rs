//! Bad input and faults (issue 7): hung, garbled, truncated or failing VBoxManage, a missing or
//! malformed `.vbox` file, a machine that disappears between two calls — each one clear error
//! with a libvirt code, no retry. Also: invocations per operation (at most two per snapshot
//! operation), and the host refusing REDEFINE/CURRENT before dispatch.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

mod common;

use common::Env;
use virtplug_plugin_sdk::{codes, flags::snapshot_delete as del};
use virtplug_test_support::VIRTUALBOX;

fn xml(name: &str) -> String {
    format!("<domainsnapshot><name>{name}</name><description>d</description></domainsnapshot>")
}

/// Injects a one-shot fault (simulator only).
fn fault(env: &Env, cmd: &str, kind: &str, arg: &str) {
    env.ok(&["--sim-control", "fault", cmd, kind, arg]);
}

#[test]
fn faults_are_clear_errors_and_nothing_is_retried() {
    let Some(env) = Env::new() else { return };
    if env.real {
        return; // Fault injection exists only in the simulator.
    }
    env.create_vm("f");
    let d = env.driver();
    d.snapshot_create("f", &xml("s1"), 0).unwrap();

    // garbled showvminfo
    fault(&env, "showvminfo", "garble", "");
    let e = d.snapshot_list("f", 0).unwrap_err();
    assert_eq!(e.code, codes::INTERNAL_ERROR);
    assert!(e.message.starts_with("VBoxManage printed unparseable output for showvminfo: "), "{}", e.message);

    // truncated showvminfo (cut inside the general keys or the snapshot section)
    fault(&env, "showvminfo", "truncate", "");
    let e = d.snapshot_list("f", 0).unwrap_err();
    assert!(e.code == codes::INTERNAL_ERROR || e.code == codes::OPERATION_FAILED, "{e:?}");

    // unknown non-zero exit
    fault(
        &env,
        "snapshot",
        "exit",
        "1 VBoxManage: error: Something odd happened\nVBoxManage: error: Details: code NS_ERROR_UNEXPECTED (0x8000ffff), component X, interface Y",
    );
    let uuid = uuid_of(&env, "f");
    let before = env.invocations();
    let e = d.snapshot_create("f", &xml("s2"), 0).unwrap_err();
    assert_eq!(e.code, codes::OPERATION_FAILED);
    assert_eq!(
        e.message,
        format!("VBoxManage snapshot {uuid} take exited with status 1: Something odd happened (NS_ERROR_UNEXPECTED)")
    );
    assert_eq!(env.invocations() - before, 2, "no retry");
    assert_eq!(d.snapshot_list("f", 0).unwrap().len(), 1, "no snapshot taken");

    // exit 0 but an error line on stderr is a failure (as Packer and Vagrant treat it)
    fault(&env, "snapshot", "exit", "0 VBoxManage: error: Half-done");
    assert_eq!(d.snapshot_revert("f", "s1", 0).unwrap_err().code, codes::OPERATION_FAILED);

    // hung VBoxManage: killed after the timeout
    let fast: Box<dyn virtplug_plugin_sdk::Driver> =
        <virtplug_plugin_virtualbox::VirtualBox as virtplug_plugin_sdk::Plugin>::open(
            &format!("vbox:///session?vboxmanage={}&timeout=0.5", env.wrapper.display()),
            false,
        )
        .unwrap();
    fault(&env, "showvminfo", "hang", "");
    let t = std::time::Instant::now();
    let e = fast.snapshot_current("f").unwrap_err();
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(e.code, codes::OPERATION_FAILED);
    assert_eq!(e.message, "VBoxManage showvminfo did not finish within 0.5 s and was killed");

    // the machine disappears between showvminfo and the snapshot command
    fault(&env, "showvminfo", "vanish", "");
    let e = d.snapshot_delete("f", "s1", 0).unwrap_err();
    assert_eq!(e.code, codes::NO_DOMAIN);
    assert!(e.message.starts_with("Could not find a registered machine with UUID {"), "{}", e.message);
}

fn uuid_of(env: &Env, vm: &str) -> String {
    let out = env.ok(&["showvminfo", vm, "--machinereadable"]).stdout;
    out.lines().find_map(|l| l.strip_prefix("UUID=\"")).unwrap().trim_end_matches('"').to_owned()
}

#[test]
fn missing_and_malformed_settings_files() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("cfg");
    let d = env.driver();
    d.snapshot_create(&vm, &xml("s"), 0).unwrap();
    let cfg = env.cfg_file(&vm);
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, &good[..good.len() / 2]).unwrap();
    let e = d.snapshot_list(&vm, 0).unwrap_err();
    // The simulator cannot read it either, so showvminfo fails first — still one clear error.
    assert!(e.code == codes::INTERNAL_ERROR || e.code == codes::OPERATION_FAILED, "{e:?}");
    // Parsed by the plugin alone:
    let e = virtplug_plugin_virtualbox::settings::parse("x.vbox", &good[..good.len() / 2]).unwrap_err();
    assert_eq!(e.code, codes::INTERNAL_ERROR);
    assert!(e.message.starts_with("malformed VirtualBox settings file 'x.vbox': "), "{}", e.message);
    let e = virtplug_plugin_virtualbox::settings::load("/nonexistent/x.vbox").unwrap_err();
    assert_eq!(e.code, codes::OPERATION_FAILED);
    assert!(e.message.starts_with("cannot read VirtualBox settings file '/nonexistent/x.vbox': "));
    std::fs::write(&cfg, good).unwrap();
    assert_eq!(d.snapshot_list(&vm, 0).unwrap().len(), 1);
}

/// Invocations per operation; each snapshot operation at most two (CHILDREN: 1 + subtree size).
#[test]
fn invocation_counts() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("count");
    let d = env.driver();
    let count = |f: &dyn Fn()| {
        let before = env.invocations();
        f();
        env.invocations() - before
    };
    assert_eq!(count(&|| assert_eq!(d.snapshot_create(&vm, &xml("a"), 0).unwrap(), "a")), 2);
    assert_eq!(count(&|| drop(d.snapshot_create(&vm, &xml("b"), 0).unwrap())), 2);
    assert_eq!(count(&|| drop(d.snapshot_list(&vm, 0).unwrap())), 1);
    assert_eq!(count(&|| drop(d.snapshot_lookup(&vm, "a").unwrap())), 1);
    assert_eq!(count(&|| drop(d.snapshot_current(&vm).unwrap())), 1);
    assert_eq!(count(&|| drop(d.snapshot_xml(&vm, "a", 0).unwrap())), 1);
    assert_eq!(count(&|| d.snapshot_revert(&vm, "a", 0).unwrap()), 2);
    assert_eq!(count(&|| d.snapshot_delete(&vm, "b", del::METADATA_ONLY).unwrap()), 1);
    assert_eq!(count(&|| d.snapshot_delete(&vm, "b", 0).unwrap()), 2);
    assert_eq!(count(&|| drop(d.snapshot_create(&vm, &xml("c"), 0).unwrap())), 2);
    assert_eq!(count(&|| d.snapshot_delete(&vm, "a", del::CHILDREN).unwrap()), 3);
    assert_eq!(count(&|| drop(d.domain_list().unwrap())), 2);
}

#[test]
fn domains_list_lookup_and_lifecycle() {
    let Some(env) = Env::new() else { return };
    let vm = env.create_vm("life");
    let d = env.driver();
    let info = d.domain_lookup_by_name(&vm).unwrap();
    assert_eq!(
        (info.state, info.id, info.memory_kib > 0),
        (virtplug_plugin_sdk::flags::domain_state::SHUTOFF, -1, true)
    );
    assert_eq!(d.domain_lookup_by_uuid(&info.uuid).unwrap().name, vm);
    assert_eq!(d.domain_lookup_by_name("no-such-vm").unwrap_err().code, codes::NO_DOMAIN);
    assert!(d.domain_list().unwrap().iter().any(|x| x.name == vm));
    use virtplug_plugin_sdk::flags::domain_state as st;
    d.domain_start(&vm).unwrap();
    assert_eq!(d.domain_lookup_by_name(&vm).unwrap().state, st::RUNNING);
    assert!(d.domain_lookup_by_name(&vm).unwrap().id >= 1);
    assert_eq!(d.domain_start(&vm).unwrap_err().code, codes::OPERATION_INVALID);
    d.domain_suspend(&vm).unwrap();
    assert_eq!(d.domain_lookup_by_name(&vm).unwrap().state, st::PAUSED);
    d.domain_resume(&vm).unwrap();
    d.domain_destroy(&vm).unwrap();
    assert_eq!(d.domain_lookup_by_name(&vm).unwrap().state, st::SHUTOFF);
    assert_eq!(d.domain_resume(&vm).unwrap_err().code, codes::OPERATION_INVALID);
    assert!(d.domain_xml(&vm, 0).unwrap().starts_with("<domain type='vbox'>\n"));
    // Behind the SDK's checks, as the host calls it.
    let ro = virtplug_plugin_sdk::open_checked::<virtplug_plugin_virtualbox::VirtualBox>(&env.uri(), true).unwrap();
    assert_eq!(ro.snapshot_create(&vm, &xml("x"), 0).unwrap_err().code, codes::OPERATION_DENIED);
}

/// Through the host, loading the built plugin `.so`: REDEFINE and CURRENT are refused with
/// `unsupported flags (0x…)` before dispatch, and nothing reaches VBoxManage.
#[test]
fn host_refuses_undeclared_flags_before_dispatch() {
    let Some(env) = Env::new() else { return };
    let so = virtplug_test_support::require!(VIRTUALBOX.require("the host-through VirtualBox test"));
    let vm = env.create_vm("host");
    let mut registry = virtplug_host::Registry::default();
    registry.add(virtplug_host::load_plugin(&so).unwrap());
    let conn = virtplug_host::Connection::open(&registry, &env.uri(), false).unwrap();
    use virtplug_plugin_sdk::flags::snapshot_create as c;
    let before = env.invocations();
    for (flags, text) in [
        (c::REDEFINE, "unsupported flags (0x1) in function snapshot_create"),
        (c::REDEFINE | c::CURRENT, "unsupported flags (0x3) in function snapshot_create"),
        (c::DISK_ONLY, "unsupported flags (0x10) in function snapshot_create"),
    ] {
        let e = conn
            .snapshot_create(
                &vm,
                "<domainsnapshot><name>x</name><state>shutoff</state><creationTime>1</creationTime></domainsnapshot>",
                flags,
            )
            .unwrap_err();
        assert_eq!((e.code(), e.to_string()), (codes::INVALID_ARG, text.to_owned()));
    }
    assert_eq!(
        conn.snapshot_revert(&vm, "x", 1).unwrap_err().to_string(),
        "unsupported flags (0x1) in function snapshot_revert"
    );
    assert_eq!(env.invocations(), before, "nothing dispatched");
    // NO_METADATA is accepted and a no-op; LIST_METADATA then selects nothing, NO_METADATA all.
    conn.snapshot_create(&vm, "<domainsnapshot><name>nm</name></domainsnapshot>", c::NO_METADATA).unwrap();
    use virtplug_plugin_sdk::flags::snapshot_list as l;
    assert!(conn.snapshot_list(&vm, l::METADATA).unwrap().is_empty());
    assert_eq!(conn.snapshot_list(&vm, l::NO_METADATA).unwrap().len(), 1);
    conn.snapshot_delete(&vm, "nm", del::METADATA_ONLY).unwrap();
    assert_eq!(conn.snapshot_list(&vm, 0).unwrap().len(), 1, "METADATA_ONLY is a no-op");
}
