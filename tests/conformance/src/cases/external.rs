//! Behavioural cases for external (disk-only) snapshots, run for any plugin that declares
//! `snapshot_create` DISK_ONLY: create, the `--external` / `--internal` / `--disk-only` listing
//! filters, REDEFINE of a dumped external snapshot, revert (libvirt 9.0 refuses it; a plugin that
//! declares revert does it, or refuses as 9.0 with nothing changed), delete of a middle snapshot, and CHILDREN / CHILDREN_ONLY over
//! external descendants (libvirt 9.0 refuses those too). Every case creates `vpconf-` snapshots
//! with DISK_ONLY only and removes them before and after; none starts or stops the domain.

use virtplug_host::codes;
use virtplug_plugin_api::flags::{domain_state as st, ops, snapshot_create, snapshot_delete, snapshot_list as fl};

use super::behaviour::{current_before, guarded, guarded_note, n};
use crate::{
    case::{Case, CaseResult, Failure, Level},
    ctx::{self, Ctx, MetadataModel, check_eq, list_flag, op_failed},
};

const CREATE_READ: u64 =
    ops::SNAPSHOT_CREATE | ops::SNAPSHOT_LOOKUP | ops::SNAPSHOT_CURRENT | ops::SNAPSHOT_LIST | ops::SNAPSHOT_DELETE;

/// Creates `short` with DISK_ONLY.
fn ext(c: &Ctx, short: &str) -> Result<(), Failure> {
    c.create_on(c.dom(), &n(short), snapshot_create::DISK_ONLY).map(drop)
}

fn create(c: &Ctx) -> CaseResult {
    guarded_note(c, |c| {
        let before = current_before(c)?;
        ext(c, "e1")?;
        let info = c.lookup(&n("e1"))?;
        check_eq("parent of the DISK_ONLY snapshot (the previous current one)", before, info.parent.clone())?;
        check_eq("the DISK_ONLY snapshot is current", Some(n("e1")), c.current()?)?;
        if c.metadata_model(&n("e1"))? == MetadataModel::Hypervisor {
            return Ok(Some("the hypervisor keeps the metadata: external and state as it records them".into()));
        }
        check_eq("external of a DISK_ONLY snapshot", true, info.external)?;
        // libvirt: disk-snapshot when taken of an active domain, shutoff when taken shut off
        if ![st::DISK_SNAPSHOT, st::SHUTOFF].contains(&info.state) {
            return Err(Failure::new(
                "state of a DISK_ONLY snapshot",
                "disk-snapshot or shutoff",
                info.state.to_string(),
            ));
        }
        check_eq("disk_only follows the disk-snapshot state", info.state == st::DISK_SNAPSHOT, info.disk_only)?;
        Ok(None)
    })
}

fn listing(c: &Ctx) -> CaseResult {
    guarded_note(c, |c| {
        ext(c, "e1")?;
        let info = c.lookup(&n("e1"))?;
        if c.metadata_model(&n("e1"))? == MetadataModel::Hypervisor {
            // esx: what the hypervisor records decides; the filters must agree with lookup
            let want = if info.external { vec![n("e1")] } else { Vec::new() };
            check_eq("--external agrees with the snapshot's external flag", want, c.list_ours(fl::EXTERNAL)?)?;
            return Ok(Some(format!("the hypervisor records it as external={}", info.external)));
        }
        check_eq("--external lists the DISK_ONLY snapshot", vec![n("e1")], c.list_ours(fl::EXTERNAL)?)?;
        check_eq("--internal does not list it", Vec::<String>::new(), c.list_ours(fl::INTERNAL)?)?;
        let disk_only = if info.state == st::DISK_SNAPSHOT { vec![n("e1")] } else { Vec::new() };
        check_eq("--disk-only lists it iff its state is disk-snapshot", disk_only, c.list_ours(fl::DISK_ONLY)?)?;
        Ok(None)
    })
}

fn redefine(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        ext(c, "e1")?;
        let secure = c.secure();
        let xml = c.conn.snapshot_xml(c.dom(), &n("e1"), secure).map_err(|e| op_failed("snapshot_xml", &e))?;
        c.conn
            .snapshot_delete(c.dom(), &n("e1"), snapshot_delete::METADATA_ONLY)
            .map_err(|e| op_failed("snapshot_delete METADATA_ONLY", &e))?;
        check_eq("exists after METADATA_ONLY delete", false, c.exists(&n("e1"))?)?;
        c.conn
            .snapshot_create(c.dom(), &xml, snapshot_create::REDEFINE | snapshot_create::CURRENT)
            .map_err(|e| op_failed("snapshot_create REDEFINE|CURRENT of the dumped XML", &e))?;
        let again = c.conn.snapshot_xml(c.dom(), &n("e1"), secure).map_err(|e| op_failed("snapshot_xml", &e))?;
        check_eq("the redefined external snapshot's XML", xml, again)
    })
}

fn revert(c: &Ctx) -> CaseResult {
    guarded_note(c, |c| {
        ext(c, "e1")?;
        ext(c, "e2")?;
        match c.conn.snapshot_revert(c.dom(), &n("e1"), 0) {
            Ok(()) => {}
            // libvirt 9.0's answer (qemu_snapshot.c:1816-1819): allowed, if nothing changed
            Err(e)
                if e.code() == codes::CONFIG_UNSUPPORTED
                    && e.to_string() == "unsupported configuration: revert to external snapshot not supported yet" =>
            {
                check_eq("current after a refused revert", Some(n("e2")), c.current()?)?;
                return Ok(Some("refused as libvirt 9.0 does".to_owned()));
            }
            Err(e) => return Err(op_failed("snapshot_revert e1", &e)),
        }
        check_eq("current after the revert", Some(n("e1")), c.current()?)?;
        ext(c, "e3")?;
        check_eq("parent of a snapshot taken after the revert", Some(n("e1")), c.parent_of(&n("e3"))?)?;
        // the branch left by the revert stays revertible
        c.conn.snapshot_revert(c.dom(), &n("e2"), 0).map_err(|e| op_failed("snapshot_revert e2", &e))?;
        check_eq("current after reverting to the other branch", Some(n("e2")), c.current()?)?;
        check_eq("e3 survives", true, c.exists(&n("e3"))?)?;
        Ok(None)
    })
}

fn delete_middle(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        ext(c, "e1")?;
        ext(c, "e2")?;
        ext(c, "e3")?;
        c.conn.snapshot_delete(c.dom(), &n("e2"), 0).map_err(|e| op_failed("snapshot_delete e2", &e))?;
        check_eq("e2 is gone", false, c.exists(&n("e2"))?)?;
        check_eq("e3 reparented to e1", Some(n("e1")), c.parent_of(&n("e3"))?)?;
        check_eq("current stays e3", Some(n("e3")), c.current()?)?;
        c.conn.snapshot_delete(c.dom(), &n("e3"), 0).map_err(|e| op_failed("snapshot_delete e3 (the newest)", &e))?;
        check_eq("current after deleting the current snapshot", Some(n("e1")), c.current()?)
    })
}

fn children(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        ext(c, "e1")?;
        ext(c, "e2")?;
        ext(c, "e3")?;
        c.conn
            .snapshot_delete(c.dom(), &n("e1"), snapshot_delete::CHILDREN_ONLY)
            .map_err(|e| op_failed("snapshot_delete e1 CHILDREN_ONLY", &e))?;
        check_eq("after CHILDREN_ONLY", vec![n("e1")], c.list_ours(0)?)?;
        if c.metadata_model(&n("e1"))? == MetadataModel::Plugin {
            // libvirt: the deleted current snapshot's surviving ancestor becomes current
            check_eq("current after CHILDREN_ONLY (the current one was a child)", Some(n("e1")), c.current()?)?;
        }
        // (a create right here, after the CHILDREN_ONLY delete, fails against the vSphere
        // simulator: 'connection closed before message completed' during CreateSnapshot_Task)
        c.conn
            .snapshot_delete(c.dom(), &n("e1"), snapshot_delete::CHILDREN)
            .map_err(|e| op_failed("snapshot_delete e1 CHILDREN", &e))?;
        check_eq("after CHILDREN", Vec::<String>::new(), c.list_ours(0)?)
    })
}

/// The external-snapshot cases.
pub fn cases() -> Vec<Case> {
    let b = Level::Behaviour;
    vec![
        Case::new("external.create", b, "create DISK_ONLY: external, disk-only state, current, parent", create)
            .ops(CREATE_READ)
            .flag(ctx::CREATE_DISK_ONLY),
        Case::new(
            "external.list_filters",
            b,
            "--external / --internal / --disk-only list a DISK_ONLY snapshot",
            listing,
        )
        .ops(CREATE_READ)
        .flag(ctx::CREATE_DISK_ONLY)
        .flag(list_flag(fl::EXTERNAL))
        .flag(list_flag(fl::INTERNAL))
        .flag(list_flag(fl::DISK_ONLY)),
        Case::new("external.redefine", b, "a dumped external snapshot redefines to the same XML", redefine)
            .ops(CREATE_READ | ops::SNAPSHOT_XML)
            .flag(ctx::CREATE_DISK_ONLY)
            .flag(ctx::CREATE_REDEFINE)
            .flag(ctx::CREATE_CURRENT)
            .flag(ctx::DELETE_METADATA_ONLY),
        Case::new("external.revert", b, "revert to external snapshots, both branches stay revertible", revert)
            .ops(CREATE_READ | ops::SNAPSHOT_REVERT)
            .flag(ctx::CREATE_DISK_ONLY)
            .touches_domain(),
        Case::new("external.delete", b, "delete a middle and the newest external snapshot", delete_middle)
            .ops(CREATE_READ)
            .flag(ctx::CREATE_DISK_ONLY),
        Case::new("external.delete_children", b, "delete CHILDREN_ONLY and CHILDREN over external snapshots", children)
            .ops(CREATE_READ)
            .flag(ctx::CREATE_DISK_ONLY)
            .flag(ctx::DELETE_CHILDREN)
            .flag(ctx::DELETE_CHILDREN_ONLY),
    ]
}
