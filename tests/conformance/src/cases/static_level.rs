//! Static level: what can be checked without a hypervisor doing real work — loading, the ABI
//! version, `info()` determinism, mask consistency, stdout silence, thread safety, and the panic
//! probe with poisoning.

use std::{sync::Barrier, time::Instant};

use virtplug_host::{PluginInfo, codes};
use virtplug_plugin_api::{
    ABI_MAJOR, ABI_MINOR,
    flags::{
        domain_undefine, domain_xml, ops, snapshot_create, snapshot_delete, snapshot_import, snapshot_list,
        snapshot_revert, snapshot_xml,
    },
};

use crate::{
    case::{Case, CaseResult, Failure, Level, Outcome},
    ctx::{Ctx, describe_abi, raw, s},
};

/// Diagnosis when the panic probe kills the child.
pub const ABORT_DIAGNOSIS: &str = "the process died when the plugin panicked: the plugin was built with panic = \"abort\" (or lets a panic cross the ABI), so any bug in it kills the host";

fn load(c: &Ctx) -> CaseResult {
    Ok(Outcome::Pass { note: Some(format!("loaded in {:.1} ms", c.load_time.as_secs_f64() * 1000.0)) })
}

fn abi_version(c: &Ctx) -> CaseResult {
    let i = &c.info;
    if i.abi_major != ABI_MAJOR {
        return Err(Failure::new(
            "the plugin reports another ABI major",
            format!("{ABI_MAJOR}.x"),
            format!("{}.{}", i.abi_major, i.abi_minor),
        ));
    }
    let relation = match i.abi_minor.cmp(&ABI_MINOR) {
        std::cmp::Ordering::Less => "older than the host",
        std::cmp::Ordering::Equal => "same as the host",
        std::cmp::Ordering::Greater => "newer than the host",
    };
    Ok(Outcome::Pass {
        note: Some(format!("plugin ABI {}.{} ({relation}, host {ABI_MAJOR}.{ABI_MINOR})", i.abi_major, i.abi_minor)),
    })
}

fn info_stable(c: &Ctx) -> CaseResult {
    let module = &c.registry.plugins()[0].module;
    for n in 0..100 {
        let again: PluginInfo = (module.info())();
        if again != c.info {
            return Err(Failure::new(
                format!("info() changed on call {}", n + 2),
                format!("{:?}", c.info),
                format!("{again:?}"),
            ));
        }
    }
    if c.info.name.is_empty() || c.info.version.is_empty() || c.info.schemes.is_empty() {
        return Err(Failure::new(
            "info() must name the plugin, its version and at least one scheme",
            "non-empty name, version, schemes",
            format!("{:?}", c.info),
        ));
    }
    Ok(Outcome::pass())
}

fn masks(c: &Ctx) -> CaseResult {
    let i = &c.info;
    let caps = &i.caps;
    let mut problems = Vec::new();
    let defined: [(&str, u32, u32, u64); 8] = [
        ("snapshot_create", caps.snapshot_create, snapshot_create::ALL, ops::SNAPSHOT_CREATE),
        ("snapshot_revert", caps.snapshot_revert, snapshot_revert::ALL, ops::SNAPSHOT_REVERT),
        ("snapshot_delete", caps.snapshot_delete, snapshot_delete::ALL, ops::SNAPSHOT_DELETE),
        ("snapshot_list", caps.snapshot_list, snapshot_list::ALL, ops::SNAPSHOT_LIST),
        ("snapshot_xml", caps.snapshot_xml, snapshot_xml::ALL, ops::SNAPSHOT_XML),
        ("snapshot_import", caps.snapshot_import, snapshot_import::ALL, ops::SNAPSHOT_IMPORT),
        ("domain_undefine", caps.domain_undefine, domain_undefine::ALL, ops::DOMAIN_UNDEFINE),
        ("domain_xml", caps.domain_xml, domain_xml::ALL, ops::DOMAIN_XML),
    ];
    for (name, mask, all, op) in defined {
        if mask & !all != 0 {
            problems.push(format!("{name} mask 0x{mask:x} has bits libvirt does not define (0x{:x})", mask & !all));
        }
        if mask != 0 && i.ops & op == 0 {
            problems.push(format!("{name} mask 0x{mask:x} declared but the operation is not"));
        }
    }
    if caps.snapshot_create & snapshot_create::CURRENT != 0 && caps.snapshot_create & snapshot_create::REDEFINE == 0 {
        problems
            .push("snapshot_create declares CURRENT without REDEFINE (CURRENT is only valid with REDEFINE)".to_owned());
    }
    if i.ops & ops::SNAPSHOT_EDIT != 0 && caps.snapshot_create & snapshot_create::REDEFINE == 0 {
        problems.push("snapshot_edit declared without snapshot_create REDEFINE (an edit is a redefine)".to_owned());
    }
    if i.ops & ops::SNAPSHOT_IMPORT != 0 && caps.snapshot_create & snapshot_create::REDEFINE == 0 {
        problems.push(
            "snapshot_import declared without snapshot_create REDEFINE (an import is a series of redefines)".to_owned(),
        );
    }
    if caps.snapshot_delete & snapshot_delete::CHILDREN_ONLY != 0
        && caps.snapshot_delete & snapshot_delete::CHILDREN == 0
    {
        problems.push("snapshot_delete declares CHILDREN_ONLY without CHILDREN".to_owned());
    }
    if i.ops & ops::SNAPSHOT_LIST != 0 && i.ops & ops::SNAPSHOT_LOOKUP == 0 {
        problems.push("snapshot_list declared without snapshot_lookup".to_owned());
    }
    let unknown_ops = i.ops & !ops::ALL;
    if problems.is_empty() {
        let note =
            (unknown_ops != 0).then(|| format!("operation bits unknown to this host ignored: 0x{unknown_ops:x}"));
        Ok(Outcome::Pass { note })
    } else {
        Err(Failure::new("inconsistent capability masks", "consistent masks", problems.join("; ")))
    }
}

/// The calls made while stdout is captured (the capture itself is done by the runner for every
/// case; this case only makes sure there is something to capture).
fn no_stdout(c: &Ctx) -> CaseResult {
    let module = &c.registry.plugins()[0].module;
    let _ = (module.info())();
    let ro = c.connect(true)?;
    read_calls(c, &ro);
    read_calls(c, &c.conn);
    Ok(Outcome::pass())
}

/// One round of every declared read-only call, results ignored.
fn read_calls(c: &Ctx, conn: &virtplug_host::Connection) -> String {
    let dom = c.dom();
    let mut out = String::new();
    if c.has_op(ops::DOMAIN_LIST) {
        out.push_str(&format!("{:?}", conn.domain_list().map(|l| l.len())));
    }
    if c.has_op(ops::DOMAIN_LOOKUP) {
        out.push_str(&format!("{:?}", conn.domain_lookup(dom).map(|d| d.name)));
    }
    if c.has_op(ops::SNAPSHOT_LIST) {
        out.push_str(&format!(
            "{:?}",
            conn.snapshot_list(dom, 0).map(|l| l.into_iter().map(|s| s.name).collect::<Vec<_>>())
        ));
    }
    if c.has_op(ops::SNAPSHOT_CURRENT) {
        out.push_str(&format!("{:?}", conn.snapshot_current(dom).map(|s| s.map(|s| s.name))));
    }
    if c.has_op(ops::SNAPSHOT_LOOKUP) {
        out.push_str(&format!("{:?}", conn.snapshot_lookup(dom, "vpconf-nosuch").map(|s| s.name)));
    }
    out
}

fn concurrency(c: &Ctx) -> CaseResult {
    const THREADS: usize = 8;
    const ROUNDS: usize = 25;
    let baseline = read_calls(c, &c.conn);
    let module = &c.registry.plugins()[0].module;
    let barrier = Barrier::new(THREADS);
    let t = Instant::now();
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let barrier = &barrier;
                let baseline = &baseline;
                scope.spawn(move || {
                    barrier.wait();
                    for _ in 0..ROUNDS {
                        if (module.info())() != c.info {
                            return Err("info() differs under concurrency".to_owned());
                        }
                        let got = read_calls(c, &c.conn);
                        if &got != baseline {
                            return Err(format!("results differ under concurrency: {got}"));
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".to_owned()))).collect()
    });
    for r in results {
        if let Err(got) = r {
            return Err(Failure::new(
                "concurrent calls from 8 threads on one connection disagree",
                baseline.clone(),
                got,
            ));
        }
    }
    Ok(Outcome::Pass {
        note: Some(format!("{THREADS} threads x {ROUNDS} rounds in {:.0} ms", t.elapsed().as_secs_f64() * 1000.0)),
    })
}

fn panic_probe(c: &Ctx) -> CaseResult {
    match raw(c.raw().selftest_panic()) {
        Err(e) if e.code == codes::INTERNAL_ERROR && e.message.contains("panic") => {
            Ok(Outcome::Pass { note: Some(format!("panic came back as: {}", describe_abi(&e))) })
        }
        Err(e) => Err(Failure::new(
            "the panic probe came back as another error",
            "VIR_ERR_INTERNAL_ERROR (1) naming the panic",
            describe_abi(&e),
        )),
        Ok(()) => Err(Failure::new(
            "selftest_panic returned success: the plugin's entry points do not panic inside a guard",
            "VIR_ERR_INTERNAL_ERROR (1) naming the panic",
            "success",
        )),
    }
}

fn poison(c: &Ctx) -> CaseResult {
    let first = raw(c.raw().selftest_panic());
    if first.is_ok() {
        return Err(Failure::new(
            "no panic was reported by the probe, so nothing can be poisoned",
            "VIR_ERR_INTERNAL_ERROR (1)",
            "success",
        ));
    }
    let after = if c.has_op(ops::DOMAIN_LIST) {
        raw(c.raw().domain_list()).map(drop)
    } else if c.has_op(ops::SNAPSHOT_CURRENT) {
        raw(c.raw().snapshot_current(s(c.dom()))).map(drop)
    } else {
        raw(c.raw().selftest_panic())
    };
    match after {
        Err(e) if e.code == codes::INTERNAL_ERROR => {}
        Err(e) => {
            return Err(Failure::new(
                "after a panic the connection answered with another error",
                "VIR_ERR_INTERNAL_ERROR (1): poisoned",
                describe_abi(&e),
            ));
        }
        Ok(()) => {
            return Err(Failure::new(
                "after a panic the connection still runs plugin code",
                "VIR_ERR_INTERNAL_ERROR (1): poisoned",
                "success",
            ));
        }
    }
    // A fresh connection is not poisoned.
    let fresh = c.connect(false)?;
    if c.has_op(ops::DOMAIN_LIST) {
        fresh.domain_list().map_err(|e| {
            Failure::new("a fresh connection after a panic does not work", "success", crate::ctx::describe_host(&e))
        })?;
    }
    Ok(Outcome::pass())
}

fn read_only_refuses(c: &Ctx) -> CaseResult {
    // Called directly (no host check), a read-only connection must refuse a change itself.
    let ro = c.connect(true)?;
    let xml = "<domainsnapshot><name>vpconf-readonly</name></domainsnapshot>";
    let Some(driver) = ro.raw_driver() else {
        return Err(Failure::msg("the read-only connection has no local driver"));
    };
    let r = raw(driver.snapshot_create(s(c.dom()), s(xml), 0));
    let verdict = match r {
        Err(e) if e.code == codes::OPERATION_DENIED => Ok(Outcome::pass()),
        Err(e) => Err(Failure::new(
            "a read-only connection refused a change with another error",
            "VIR_ERR_OPERATION_DENIED (29)",
            describe_abi(&e),
        )),
        Ok(name) => Err(Failure::new(
            "a read-only connection created a snapshot",
            "VIR_ERR_OPERATION_DENIED (29)",
            format!("success: {name}"),
        )),
    };
    c.cleanup()?;
    verdict
}

/// Every static case.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new("static.load", Level::Static, "the plugin loads through the host's loader", load),
        Case::new(
            "static.abi_version",
            Level::Static,
            "the plugin's ABI version is one this host implements",
            abi_version,
        ),
        Case::new("static.info_stable", Level::Static, "info() returns the same value on every call", info_stable),
        Case::new("static.masks_consistent", Level::Static, "capability masks are consistent", masks),
        Case::new(
            "static.no_stdout",
            Level::Static,
            "loading, opening and calling the plugin print nothing on stdout",
            no_stdout,
        ),
        Case::new(
            "static.concurrency",
            Level::Static,
            "8 threads calling one connection at once get consistent answers",
            concurrency,
        ),
        Case::new(
            "static.panic_probe",
            Level::Static,
            "a panic inside the plugin comes back as INTERNAL_ERROR",
            panic_probe,
        )
        .on_crash(ABORT_DIAGNOSIS),
        Case::new(
            "static.poison_after_panic",
            Level::Static,
            "after a panic the connection is poisoned; a new one works",
            poison,
        )
        .on_crash(ABORT_DIAGNOSIS),
        Case::new(
            "static.read_only_direct",
            Level::Static,
            "called directly, a read-only connection refuses a change",
            read_only_refuses,
        )
        .ops(ops::SNAPSHOT_CREATE),
    ]
}
