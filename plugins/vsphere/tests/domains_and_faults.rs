//! Domains, sessions, URIs and faults against the real simulator (both models), plus non-SOAP
//! servers and a connection cut mid-call.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;

use std::{io::Write, net::TcpListener};

use common::{Model, PASSWORD, Sim, USER, each_model, fake_http, trips};
use virtplug_plugin_sdk::{Plugin, codes, flags::domain_state as st, flags::snapshot_create as cf};
use virtplug_plugin_vsphere::{Connection, Vsphere, uri::Credentials};

#[test]
fn list_lookup_state_and_xml() {
    each_model(|m, _sim, c| {
        let (vm, uuid) = m.vm();
        let (list, n) = trips(c, || c.domain_list().unwrap());
        assert_eq!(n, 2, "{m:?}: first listing = CreateContainerView + one RetrievePropertiesEx");
        let (_, n) = trips(c, || c.domain_list().unwrap());
        assert_eq!(n, 1, "{m:?}: later listings are one RetrievePropertiesEx");
        assert_eq!(list.len(), if m == Model::Esx { 2 } else { 4 });
        let d = list.iter().find(|d| d.name == vm).unwrap();
        assert_eq!((d.uuid.as_str(), d.state), (uuid, st::RUNNING));
        assert!(d.id > 0 && d.vcpus > 0 && d.memory_kib > 0, "{d:?}");
        let (by_name, n) = trips(c, || c.domain_lookup_by_name(vm).unwrap());
        assert_eq!((by_name.uuid.as_str(), n), (uuid, 1));
        assert_eq!(c.domain_lookup_by_uuid(uuid).unwrap().name, vm);
        assert_eq!(c.domain_lookup_by_uuid("00000000-0000-0000-0000-000000000000").unwrap_err().code, codes::NO_DOMAIN);
        assert_eq!(c.domain_lookup_by_name("nosuch").unwrap_err().code, codes::NO_DOMAIN);
        let x = c.domain_xml(vm).unwrap();
        assert!(x.contains(&format!("<name>{vm}</name>")) && x.contains(&format!("<uuid>{uuid}</uuid>")), "{x}");
    });
}

#[test]
fn power_operations() {
    each_model(|m, _sim, c| {
        let (vm, _) = m.vm();
        let state = || c.domain_lookup_by_name(vm).unwrap();
        c.domain_destroy(vm).unwrap();
        assert_eq!((state().state, state().id), (st::SHUTOFF, -1));
        // The task fails with InvalidPowerState (reference §B.31/§B.32).
        let e = c.domain_destroy(vm).unwrap_err();
        assert_eq!(e.code, codes::OPERATION_INVALID, "{e}");
        assert!(e.message.contains("InvalidPowerState"), "{e}");
        c.domain_start(vm).unwrap();
        assert_eq!(state().state, st::RUNNING);
        c.domain_suspend(vm).unwrap();
        assert_eq!(state().state, st::PAUSED);
        c.domain_resume(vm).unwrap();
        assert_eq!(state().state, st::RUNNING);
        assert_eq!(c.domain_resume(vm).unwrap_err().code, codes::OPERATION_INVALID);
    });
}

#[test]
fn wrong_password_is_auth_failed_without_the_secret() {
    for m in common::MODELS {
        let Some(sim) = Sim::start(m) else { return };
        let e =
            Connection::open_with(&sim.target("", ""), &Credentials::new(USER, "hunter2-wrong"), false).err().unwrap();
        assert_eq!(e.code, codes::AUTH_FAILED, "{e}");
        assert!(!e.to_string().contains("hunter2") && !e.to_string().contains('\n'), "{e}");
        assert!(e.to_string().starts_with("authentication failed: cannot log in to 127.0.0.1:"), "{e}");
    }
}

#[test]
fn expired_session_logs_in_again_once() {
    // Simulator quirk F.6 #6: without a session RetrievePropertiesEx answers HTTP 200 with a
    // missingSet (NotAuthenticated) instead of a fault; quirk #11: Login on a connection that
    // still has a (dead) cookie fails, so the cookie is dropped before logging in again.
    each_model(|m, _sim, c| {
        let (vm, _) = m.vm();
        c.snapshot_create(vm, "<domainsnapshot><name>e1</name></domainsnapshot>", 0).unwrap();
        c.expire_session_for_tests();
        let (list, n) = trips(c, || c.snapshot_list(vm).unwrap());
        assert_eq!(list.len(), 1);
        assert_eq!(n, 3, "failed read + Login + retried read");
        c.expire_session_for_tests();
        // A fault-style NotAuthenticated (HTTP 500) on a task method, then the container view
        // (session-scoped) must be recreated too.
        c.snapshot_create(vm, "<domainsnapshot><name>e2</name></domainsnapshot>", 0).unwrap();
        c.expire_session_for_tests();
        assert!(!c.domain_list().unwrap().is_empty());
    });
}

#[test]
fn read_only_connection_refuses_changes() {
    let Some(sim) = Sim::start(Model::Esx) else { return };
    // Behind the SDK's checks, as the host calls it.
    let raw = Connection::open_with(&sim.target("", ""), &Credentials::new(USER, PASSWORD), true).unwrap();
    let c = virtplug_plugin_sdk::with_checks::<Vsphere>(Box::new(raw), true);
    let (vm, _) = Model::Esx.vm();
    assert_eq!(c.snapshot_create(vm, "<domainsnapshot/>", 0).unwrap_err().code, codes::OPERATION_DENIED);
    assert_eq!(c.domain_destroy(vm).unwrap_err().code, codes::OPERATION_DENIED);
    assert!(c.snapshot_list(vm, 0).unwrap().is_empty());
}

#[test]
fn vcenter_inventory_path_scopes_the_domains() {
    let Some(sim) = Sim::start(Model::Vpx) else { return };
    let creds = Credentials::new(USER, PASSWORD);
    let host = Connection::open_with(&sim.target("DC0/DC0_H0", ""), &creds, false).unwrap();
    let names: Vec<_> = host.domain_list().unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("DC0_H0_")), "{names:?}");
    let (_, other_uuid) = ("DC0_C0_RP0_VM0", "cd0681bf-2f18-5c00-9b9b-8197c0095348");
    assert_eq!(host.domain_lookup_by_uuid(other_uuid).unwrap_err().code, codes::NO_DOMAIN);
    let dc = Connection::open_with(&sim.target("DC0", ""), &creds, false).unwrap();
    assert_eq!(dc.domain_list().unwrap().len(), 4);
    let e = Connection::open_with(&sim.target("NODC", ""), &creds, false).err().unwrap();
    assert_eq!(e.code, codes::INVALID_ARG);
    let esx = Sim::start(Model::Esx).unwrap();
    assert!(Connection::open_with(&esx.target("DC0", ""), &creds, false).is_err());
}

#[test]
fn tls_certificate_must_verify_unless_no_verify() {
    let Some(sim) = Sim::start_with(Model::Esx, true) else { return };
    let creds = Credentials::new(USER, PASSWORD);
    let e = Connection::open_with(&sim.target("", ""), &creds, false).err().unwrap();
    assert_eq!(e.code, codes::AUTH_FAILED, "{e}");
    assert!(e.message.contains("TLS certificate") && e.message.contains("no_verify=1"), "{e}");
    let c = Connection::open_with(&sim.target("", "&no_verify=1"), &creds, false).unwrap();
    assert_eq!(c.domain_list().unwrap().len(), 2);
}

#[test]
fn non_soap_answers_are_one_line_errors() {
    let creds = Credentials::new(USER, PASSWORD);
    let port = fake_http("502 Bad Gateway", "text/html", "<html><body>Bad gateway</body></html>", 1);
    let t = virtplug_plugin_vsphere::uri::parse(&format!("vsphere://127.0.0.1:{port}/?transport=http")).unwrap();
    let e = Connection::open_with(&t, &creds, false).err().unwrap();
    assert_eq!(e.code, codes::INTERNAL_ERROR);
    assert_eq!(e.message, format!("HTTP response code 502 for call to 'RetrieveServiceContent' from 127.0.0.1:{port}"));
    let port = fake_http("200 OK", "text/html", "<html><body>hello</body></html>", 1);
    let t = virtplug_plugin_vsphere::uri::parse(&format!("vsphere://127.0.0.1:{port}/?transport=http")).unwrap();
    let e = Connection::open_with(&t, &creds, false).err().unwrap();
    assert!(e.message.contains("not a SOAP answer") && !e.message.contains('\n'), "{e}");
    // Nothing listening.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let t = virtplug_plugin_vsphere::uri::parse(&format!("vsphere://127.0.0.1:{port}/?transport=http")).unwrap();
    let e = Connection::open_with(&t, &creds, false).err().unwrap();
    assert_eq!(e.code, codes::OPERATION_FAILED, "{e}");
}

/// A loopback proxy in front of the simulator that closes the client connection, without an
/// answer, on the first request whose body contains `trigger`; every other request is passed on.
fn cutting_proxy(upstream: u16, trigger: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut cut = false;
        for s in l.incoming().take(64) {
            let Ok(mut s) = s else { continue };
            // One request per client connection: the proxy answers with Connection: close.
            let req = common::read_request(&mut s);
            if req.is_empty() {
                continue;
            }
            if !cut && req.contains(trigger) {
                cut = true;
                continue; // drop the connection without an answer
            }
            let req = req.replacen("\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1);
            let Ok(mut up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else { continue };
            let _ = up.write_all(req.as_bytes());
            let mut resp = Vec::new();
            let _ = std::io::Read::read_to_end(&mut up, &mut resp);
            let _ = s.write_all(&resp);
        }
    });
    port
}

#[test]
fn connection_cut_mid_call_is_an_error_and_the_plugin_recovers() {
    let Some(sim) = Sim::start(Model::Esx) else { return };
    let port = cutting_proxy(sim.port, "CreateSnapshot_Task");
    let t = virtplug_plugin_vsphere::uri::parse(&format!("vsphere://127.0.0.1:{port}/?transport=http")).unwrap();
    let c = Connection::open_with(&t, &Credentials::new(USER, PASSWORD), false).unwrap();
    let (vm, _) = Model::Esx.vm();
    let e = c.snapshot_create(vm, "<domainsnapshot><name>cut</name></domainsnapshot>", 0).unwrap_err();
    assert_eq!(e.code, codes::OPERATION_FAILED, "{e}");
    assert!(e.message.contains("CreateSnapshot_Task") && !e.message.contains('\n'), "{e}");
    c.snapshot_create(vm, "<domainsnapshot><name>after</name></domainsnapshot>", 0).unwrap();
    assert_eq!(c.snapshot_list(vm).unwrap().iter().filter(|s| s.name == "after").count(), 1);
}

#[test]
fn declared_masks_leave_out_redefine_and_current() {
    let caps = <Vsphere as Plugin>::DESCRIPTOR.caps;
    assert_eq!(caps.snapshot_create & (cf::REDEFINE | cf::CURRENT), 0);
    assert_eq!(caps.snapshot_create, 0x254);
    assert_eq!(caps.snapshot_delete, 0x7);
    assert_eq!(caps.snapshot_revert, 0x3);
}

#[test]
fn plugin_open_reads_the_password_from_the_environment() {
    let Some(sim) = Sim::start(Model::Esx) else { return };
    // SAFETY: the only test in this binary that reads or writes the environment (the others
    // pass credentials explicitly), so no other thread reads it concurrently.
    unsafe { std::env::set_var(virtplug_plugin_vsphere::uri::PASSWORD_ENV, PASSWORD) };
    let d = <Vsphere as Plugin>::open(&sim.uri("", ""), false).unwrap();
    assert_eq!(d.domain_list().unwrap().len(), 2);
    // SAFETY: as above.
    unsafe { std::env::remove_var(virtplug_plugin_vsphere::uri::PASSWORD_ENV) };
}
