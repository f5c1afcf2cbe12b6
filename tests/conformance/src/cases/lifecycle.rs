//! Behavioural level, second half: domain state around snapshots (revert, HALT, DISK_ONLY),
//! the undefine guard, error codes for unknown names, hierarchy import and atomic rename. The
//! shared helpers and the case list live in [`super::behaviour`].

use virtplug_host::codes;
use virtplug_plugin_api::flags::{
    domain_state as st, domain_undefine, ops, snapshot_create, snapshot_delete, snapshot_revert,
};

use super::behaviour::{current_before, dump, expect_error_any, guarded, guarded_note, n};
use crate::{
    case::{CaseResult, Failure, Outcome},
    ctx::{self, Ctx, MetadataModel, check_eq, describe_host, expect_error, op_failed},
};

fn domain_state(c: &Ctx) -> Result<u32, Failure> {
    Ok(c.conn.domain_lookup(c.dom()).map_err(|e| op_failed("domain_lookup", &e))?.state)
}

fn state_name(state: u32) -> &'static str {
    match state {
        st::RUNNING => "running",
        st::PAUSED => "paused",
        st::SHUTOFF => "shut off",
        st::SHUTDOWN => "shutting down",
        st::DISK_SNAPSHOT => "disk-snapshot",
        _ => "another state",
    }
}

fn destroy_if_active(c: &Ctx) -> Result<(), Failure> {
    if domain_state(c)? != st::SHUTOFF {
        c.conn.domain_destroy(c.dom()).map_err(|e| op_failed("domain_destroy", &e))?;
    }
    Ok(())
}

/// Flagless reverts when the hypervisor keeps the metadata (§4.5): esx calls
/// `RevertToSnapshot_Task` and the power state is whatever ESX does; vbox refuses while the
/// domain runs and otherwise restores. Asserted: a revert of a shut-off domain succeeds and
/// sets current; to a shut-off snapshot it leaves the domain shut off (nothing starts it); a
/// revert while running either succeeds or is refused with OPERATION_INVALID, changing nothing.
/// The power state after reverting to a running snapshot is only reported.
fn hypervisor_reverts(c: &Ctx, notes: &mut Vec<String>) -> Result<(), Failure> {
    c.conn
        .snapshot_revert(c.dom(), &n("on"), 0)
        .map_err(|e| op_failed("revert a shut-off domain to a running snapshot", &e))?;
    check_eq("current after revert", Some(n("on")), c.current()?)?;
    notes.push(format!(
        "flagless revert to a running snapshot leaves the domain {} (the hypervisor decides)",
        state_name(domain_state(c)?)
    ));
    destroy_if_active(c)?;
    c.conn
        .snapshot_revert(c.dom(), &n("off"), 0)
        .map_err(|e| op_failed("revert a shut-off domain to a shut-off snapshot", &e))?;
    check_eq("domain state after reverting a shut-off domain to a shut-off snapshot", st::SHUTOFF, domain_state(c)?)?;
    check_eq("current after revert", Some(n("off")), c.current()?)?;
    c.conn.domain_start(c.dom()).map_err(|e| op_failed("domain_start", &e))?;
    match c.conn.snapshot_revert(c.dom(), &n("on"), 0) {
        Ok(()) => {
            check_eq("current after a revert while running", Some(n("on")), c.current()?)?;
            notes.push(format!(
                "a revert while running is accepted, leaving the domain {}",
                state_name(domain_state(c)?)
            ));
        }
        Err(e) if e.code() == codes::OPERATION_INVALID => {
            check_eq("current after a refused revert (unchanged)", Some(n("off")), c.current()?)?;
            check_eq("domain state after a refused revert (unchanged)", st::RUNNING, domain_state(c)?)?;
            notes.push(format!("a revert while running is refused ({e})"));
            // Flagged reverts below may need a shut-off domain too.
            destroy_if_active(c)?;
        }
        Err(e) => {
            return Err(Failure::new(
                "a revert while running: neither done nor refused as an invalid operation",
                "success, or VIR_ERR_OPERATION_INVALID (55) as libvirt's vbox driver",
                describe_host(&e),
            ));
        }
    }
    Ok(())
}

pub(super) fn revert_state(c: &Ctx) -> CaseResult {
    guarded_note(c, |c| {
        let initial = domain_state(c)?;
        if initial != st::RUNNING {
            c.conn.domain_start(c.dom()).map_err(|e| op_failed("domain_start", &e))?;
        }
        let mut notes = Vec::new();
        let mut body = || -> Result<(), Failure> {
            c.create(&n("on"))?;
            check_eq("state recorded in a snapshot of a running domain", st::RUNNING, c.lookup(&n("on"))?.state)?;
            let model = c.metadata_model(&n("on"))?;
            c.conn.domain_destroy(c.dom()).map_err(|e| op_failed("domain_destroy", &e))?;
            check_eq("domain state after destroy", st::SHUTOFF, domain_state(c)?)?;
            c.create(&n("off"))?;
            check_eq("state recorded in a snapshot of a shut-off domain", st::SHUTOFF, c.lookup(&n("off"))?.state)?;
            if model == MetadataModel::Hypervisor {
                hypervisor_reverts(c, &mut notes)?;
            } else {
                c.conn
                    .snapshot_revert(c.dom(), &n("on"), 0)
                    .map_err(|e| op_failed("revert to a running snapshot", &e))?;
                check_eq("domain state after reverting to a running snapshot", st::RUNNING, domain_state(c)?)?;
                check_eq("current after revert", Some(n("on")), c.current()?)?;
                c.conn
                    .snapshot_revert(c.dom(), &n("off"), 0)
                    .map_err(|e| op_failed("revert to a shut-off snapshot", &e))?;
                check_eq("domain state after reverting to a shut-off snapshot", st::SHUTOFF, domain_state(c)?)?;
                check_eq("current after revert", Some(n("off")), c.current()?)?;
            }
            if c.has_flag(ctx::REVERT_PAUSED) {
                c.conn
                    .snapshot_revert(c.dom(), &n("on"), snapshot_revert::PAUSED)
                    .map_err(|e| op_failed("revert PAUSED", &e))?;
                check_eq("domain state after revert PAUSED", st::PAUSED, domain_state(c)?)?;
            }
            if c.has_flag(ctx::REVERT_RUNNING) {
                c.conn
                    .snapshot_revert(c.dom(), &n("off"), snapshot_revert::RUNNING)
                    .map_err(|e| op_failed("revert RUNNING", &e))?;
                check_eq("domain state after revert RUNNING to a shut-off snapshot", st::RUNNING, domain_state(c)?)?;
            }
            Ok(())
        };
        let r = body();
        let note = (!notes.is_empty()).then(|| notes.join("; "));
        // Put the domain back the way it was.
        let now = domain_state(c)?;
        if now != st::SHUTOFF && initial == st::SHUTOFF {
            let _ = c.conn.domain_destroy(c.dom());
        } else if now != st::RUNNING && initial == st::RUNNING {
            if now == st::PAUSED && c.has_op(ops::DOMAIN_RESUME) {
                let _ = c.conn.domain_resume(c.dom());
            } else {
                if now != st::SHUTOFF {
                    let _ = c.conn.domain_destroy(c.dom());
                }
                let _ = c.conn.domain_start(c.dom());
            }
        }
        r.map(|()| note)
    })
}

pub(super) fn halt(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        let initial = domain_state(c)?;
        if initial != st::RUNNING {
            c.conn.domain_start(c.dom()).map_err(|e| op_failed("domain_start", &e))?;
        }
        let r = (|| {
            c.create_on(c.dom(), &n("halt"), snapshot_create::HALT)?;
            check_eq("domain state after create HALT", st::SHUTOFF, domain_state(c)?)?;
            check_eq("state recorded by create HALT", st::RUNNING, c.lookup(&n("halt"))?.state)
        })();
        if domain_state(c)? != initial {
            let _ = if initial == st::RUNNING { c.conn.domain_start(c.dom()) } else { c.conn.domain_destroy(c.dom()) };
        }
        r
    })
}

pub(super) fn disk_only(c: &Ctx) -> CaseResult {
    guarded_note(c, |c| {
        let before = current_before(c)?;
        let state_before = if c.has_op(ops::DOMAIN_LOOKUP) { Some(domain_state(c)?) } else { None };
        c.create_on(c.dom(), &n("disk"), snapshot_create::DISK_ONLY)?;
        let model = c.metadata_model(&n("disk"))?;
        let info = c.lookup(&n("disk"))?;
        // libvirt records a DISK_ONLY snapshot of a shut-off domain as `shutoff` (external
        // overlays made offline, qemu_snapshot.c:1554-1561); `disk-snapshot` is accepted there too
        if model == MetadataModel::Plugin && info.state == st::SHUTOFF && state_before == Some(st::SHUTOFF) {
            check_eq("disk_only of a DISK_ONLY snapshot recorded shut off", false, info.disk_only)?;
            return Ok(Some("shut off: recorded with state shutoff, as libvirt's qemu driver".to_owned()));
        }
        if model == MetadataModel::Plugin || info.state == st::DISK_SNAPSHOT {
            check_eq("state of a DISK_ONLY snapshot", st::DISK_SNAPSHOT, info.state)?;
            check_eq("disk_only of a DISK_ONLY snapshot", true, info.disk_only)?;
            return Ok(None);
        }
        // esx (ESX `memory=false`): the state is the power state the hypervisor recorded; a
        // snapshot without memory may record the domain as it was or as shut off.
        let allowed: Vec<u32> = match state_before {
            Some(s) => {
                let mut v = vec![s, st::SHUTOFF];
                v.dedup();
                v
            }
            None => vec![st::RUNNING, st::PAUSED, st::SHUTOFF],
        };
        if !allowed.contains(&info.state) {
            return Err(Failure::new(
                "state of a DISK_ONLY snapshot taken by a hypervisor that keeps the metadata",
                format!(
                    "disk-snapshot, or a power state the hypervisor recorded: {}",
                    allowed.iter().map(|s| state_name(*s)).collect::<Vec<_>>().join(" or ")
                ),
                format!("{} ({})", state_name(info.state), info.state),
            ));
        }
        check_eq("parent of the DISK_ONLY snapshot (the previous current one)", before, info.parent.clone())?;
        Ok(Some(format!(
            "{}: the DISK_ONLY snapshot records the power state '{}', disk_only {}",
            model.describe(),
            state_name(info.state),
            info.disk_only
        )))
    })
}

pub(super) fn undefine_guard(c: &Ctx) -> CaseResult {
    let dom = n("undef");
    let uuid = "00000000-0000-4000-8000-00000000c0f2";
    let xml = match c.has_op(ops::DOMAIN_XML).then(|| c.conn.domain_xml(c.dom(), 0)) {
        Some(Ok(x)) => retarget_domain_xml(&x, &dom, uuid),
        _ => format!(
            "<domain type='test'><name>{dom}</name><uuid>{uuid}</uuid><memory>1024</memory><os><type>hvm</type></os></domain>"
        ),
    };
    // Leftovers of an earlier, interrupted run.
    let _ = c.cleanup_on(&dom);
    let _ = c.conn.domain_undefine(&dom, 0);
    c.conn.domain_define(&xml).map_err(|e| op_failed(&format!("domain_define {dom}"), &e))?;
    let r = (|| {
        c.create_on(&dom, &n("u1"), 0)?;
        expect_error(
            "undefine of an inactive domain with snapshots",
            c.conn.domain_undefine(&dom, 0),
            codes::OPERATION_INVALID,
            "Requested operation is not valid: cannot delete inactive domain with 1 snapshots",
        )?;
        if c.has_flag(ctx::UNDEFINE_SNAPSHOTS_METADATA) {
            c.conn
                .domain_undefine(&dom, domain_undefine::SNAPSHOTS_METADATA)
                .map_err(|e| op_failed("undefine SNAPSHOTS_METADATA", &e))?;
            if c.has_op(ops::DOMAIN_LOOKUP) {
                expect_error_any(
                    "lookup of the undefined domain",
                    c.conn.domain_lookup(&dom).map(|d| d.name),
                    &lookup_refusals(&dom),
                )?;
            }
        }
        Ok(())
    })();
    let _ = c.cleanup_on(&dom);
    let _ = c.conn.domain_undefine(&dom, 0);
    r.map(|()| Outcome::pass())
}

/// The domain XML with another name and uuid.
fn retarget_domain_xml(xml: &str, name: &str, uuid: &str) -> String {
    let swap = |x: &str, tag: &str, value: &str| -> String {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        match (x.find(&open), x.find(&close)) {
            (Some(a), Some(b)) if a < b => format!("{}{open}{value}{}", &x[..a], &x[b..]),
            _ => x.to_owned(),
        }
    };
    swap(&swap(xml, "name", name), "uuid", uuid)
}

/// What libvirt's drivers answer to a lookup of a domain that does not exist: qemu's text, or
/// the test driver's bare "Domain not found" (NO_DOMAIN reported without a detail).
fn lookup_refusals(name: &str) -> [(u32, String); 2] {
    [
        (codes::NO_DOMAIN, format!("Domain not found: no domain with matching name '{name}'")),
        (codes::NO_DOMAIN, "Domain not found".to_owned()),
    ]
}

pub(super) fn unknown_domain(c: &Ctx) -> CaseResult {
    let d = crate::cases::matrix::NOSUCH_DOMAIN;
    let text = format!("Domain not found: no domain with matching name '{d}'");
    if c.has_op(ops::DOMAIN_LOOKUP) {
        expect_error_any(
            "domain_lookup of an unknown domain",
            c.conn.domain_lookup(d).map(|x| x.name),
            &lookup_refusals(d),
        )?;
    }
    if c.has_op(ops::SNAPSHOT_LIST) {
        expect_error(
            "snapshot_list of an unknown domain",
            c.conn.snapshot_list(d, 0).map(|l| l.len()),
            codes::NO_DOMAIN,
            &text,
        )?;
    }
    if c.has_op(ops::SNAPSHOT_CURRENT) {
        expect_error(
            "snapshot_current of an unknown domain",
            c.conn.snapshot_current(d).map(|x| x.map(|s| s.name)),
            codes::NO_DOMAIN,
            &text,
        )?;
    }
    if c.has_op(ops::SNAPSHOT_CREATE) {
        expect_error("snapshot_create on an unknown domain", c.create_raw(d), codes::NO_DOMAIN, &text)?;
    }
    Ok(Outcome::pass())
}

pub(super) fn unknown_snapshot(c: &Ctx) -> CaseResult {
    let s = n("nosuch");
    let text = format!("Domain snapshot not found: no domain snapshot with matching name '{s}'");
    let code = codes::NO_DOMAIN_SNAPSHOT;
    if c.has_op(ops::SNAPSHOT_LOOKUP) {
        expect_error(
            "snapshot_lookup of an unknown snapshot",
            c.conn.snapshot_lookup(c.dom(), &s).map(|x| x.name),
            code,
            &text,
        )?;
    }
    if c.has_op(ops::SNAPSHOT_XML) {
        expect_error("snapshot_xml of an unknown snapshot", c.conn.snapshot_xml(c.dom(), &s, 0), code, &text)?;
    }
    if c.has_op(ops::SNAPSHOT_DELETE) {
        expect_error("snapshot_delete of an unknown snapshot", c.conn.snapshot_delete(c.dom(), &s, 0), code, &text)?;
    }
    if c.has_op(ops::SNAPSHOT_REVERT) {
        expect_error("snapshot_revert to an unknown snapshot", c.conn.snapshot_revert(c.dom(), &s, 0), code, &text)?;
    }
    if c.has_op(ops::SNAPSHOT_LIST) {
        expect_error(
            "listing the children of an unknown snapshot",
            c.conn.snapshot_list_children(c.dom(), &s, 0).map(|l| l.len()),
            code,
            &text,
        )?;
    }
    Ok(Outcome::pass())
}

pub(super) fn import(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        c.create(&n("a"))?;
        c.create(&n("b"))?;
        let (xa, xb) = (dump(c, &n("a"))?, dump(c, &n("b"))?);
        for s in ["b", "a"] {
            c.conn
                .snapshot_delete(c.dom(), &n(s), snapshot_delete::METADATA_ONLY)
                .map_err(|e| op_failed("delete METADATA_ONLY", &e))?;
        }
        c.conn
            .snapshot_import(c.dom(), &[xa.clone(), xb.clone()], Some(&n("b")), 0)
            .map_err(|e| op_failed("snapshot_import", &e))?;
        check_eq("parent of vpconf-b after import", Some(n("a")), c.parent_of(&n("b"))?)?;
        check_eq("current after import", Some(n("b")), c.current()?)?;
        check_eq("XML of vpconf-a after import", xa, dump(c, &n("a"))?)
    })
}

pub(super) fn edit_rename(c: &Ctx) -> CaseResult {
    let mut refused = None;
    let result = guarded(c, |c| {
        c.create(&n("a"))?;
        c.create(&n("b"))?;
        let xa = dump(c, &n("a"))?;
        let renamed = xa.replacen(&format!("<name>{}</name>", n("a")), &format!("<name>{}</name>", n("a2")), 1);
        let got = match c.conn.snapshot_edit(c.dom(), &n("a"), &renamed, 0) {
            Ok(got) => got,
            // A backend that cannot rename (qcow2 tags) says so; a capability, not a bug.
            Err(e) if e.code() == codes::OPERATION_UNSUPPORTED => {
                refused = Some(format!("the plugin refuses renames: {e}"));
                return Ok(());
            }
            Err(e) => return Err(op_failed("snapshot_edit (rename)", &e)),
        };
        check_eq("name returned by snapshot_edit", n("a2"), got)?;
        check_eq("vpconf-a exists after the rename", false, c.exists(&n("a"))?)?;
        check_eq("parent of vpconf-b after its parent was renamed", Some(n("a2")), c.parent_of(&n("b"))?)
    });
    match (result, refused) {
        (Ok(_), Some(reason)) => Ok(Outcome::Skip { reason }),
        (result, _) => result,
    }
}

/// The domain's snapshot tree generation: the same across two reads without a change, a new
/// value after a create, and after a delete one that neither earlier read gave (values never
/// repeat).
pub(super) fn generation(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        let read = |what: &str| -> Result<u64, Failure> {
            match c.conn.snapshot_generation(c.dom()) {
                Ok(Some(g)) => Ok(g),
                Ok(None) => Err(Failure::new(
                    format!("snapshot_generation {what}: the plugin declares it but answered NO_SUPPORT"),
                    "a generation",
                    "none",
                )),
                Err(e) => Err(op_failed(&format!("snapshot_generation {what}"), &e)),
            }
        };
        let before = read("before any change")?;
        check_eq("the generation read twice without a change", before, read("read again")?)?;
        c.create(&n("gen"))?;
        let created = read("after a create")?;
        if created == before {
            return Err(Failure::new(
                "the generation did not change after a create",
                format!("not {before}"),
                created.to_string(),
            ));
        }
        c.conn.snapshot_delete(c.dom(), &n("gen"), 0).map_err(|e| op_failed("snapshot_delete", &e))?;
        let deleted = read("after a delete")?;
        if deleted == created || deleted == before {
            return Err(Failure::new(
                "the generation after a delete repeats an earlier value",
                format!("neither {before} nor {created}"),
                deleted.to_string(),
            ));
        }
        Ok(())
    })
}
