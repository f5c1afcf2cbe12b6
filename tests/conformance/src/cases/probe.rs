//! Cases that ask the author's `--probe` hook what the hypervisor holds, for what the plugin's
//! answers cannot show: a METADATA_ONLY delete must leave the snapshot's payload (disk and
//! memory state) in the hypervisor, a plain delete must remove it. Without `--probe` they are
//! skipped; with a hook that says `absent` right after a create (a hypervisor that keeps no
//! payload, like the mock) they are skipped with that reason.

use virtplug_plugin_api::flags::{ops, snapshot_create, snapshot_delete};

use super::behaviour::{current_before, n};
use crate::{
    case::{Case, CaseResult, Failure, Level, Outcome},
    ctx::{self, Ctx, op_failed},
};

/// The skip reason when the hypervisor holds no payload for a fresh snapshot.
pub const NO_PAYLOAD: &str =
    "the --probe hook says the hypervisor holds no payload for a snapshot just created: nothing to keep or remove";

/// Runs `body` between two clean-ups, restoring a foreign current snapshot afterwards.
fn around(c: &Ctx, body: impl FnOnce(&Ctx) -> Result<Outcome, Failure>) -> CaseResult {
    c.cleanup()?;
    let before = current_before(c)?;
    let r = body(c);
    let cleaned = c.cleanup();
    let restored = c.restore_current(&before);
    let outcome = r?;
    cleaned?;
    restored?;
    Ok(outcome)
}

fn delete_removes_payload(c: &Ctx) -> CaseResult {
    around(c, |c| {
        let a = n("payload");
        c.create(&a)?;
        if !c.probe(&a)? {
            return Ok(Outcome::Skip { reason: NO_PAYLOAD.to_owned() });
        }
        c.conn.snapshot_delete(c.dom(), &a, 0).map_err(|e| op_failed("snapshot_delete", &e))?;
        if c.probe(&a)? {
            return Err(Failure::new(
                format!("a plain delete of {a} left its payload in the hypervisor"),
                "absent",
                "present",
            ));
        }
        Ok(Outcome::pass())
    })
}

fn metadata_only_keeps_payload(c: &Ctx) -> CaseResult {
    around(c, |c| {
        let a = n("payload");
        c.create(&a)?;
        if !c.probe(&a)? {
            return Ok(Outcome::Skip { reason: NO_PAYLOAD.to_owned() });
        }
        // Kept to redefine the metadata afterwards, so the clean-up's real delete removes the
        // payload this case leaves behind.
        let xml = if c.has_flag(ctx::CREATE_REDEFINE) && c.has_op(ops::SNAPSHOT_XML) {
            Some(c.conn.snapshot_xml(c.dom(), &a, c.secure()).map_err(|e| op_failed("snapshot_xml", &e))?)
        } else {
            None
        };
        c.conn
            .snapshot_delete(c.dom(), &a, snapshot_delete::METADATA_ONLY)
            .map_err(|e| op_failed("snapshot_delete METADATA_ONLY", &e))?;
        let present = c.probe(&a)?;
        if let Some(xml) = &xml
            && !c.exists(&a)?
        {
            c.conn
                .snapshot_create(c.dom(), xml, snapshot_create::REDEFINE)
                .map_err(|e| op_failed("snapshot_create REDEFINE (clean-up)", &e))?;
        }
        if !present {
            return Err(Failure::new(
                format!(
                    "delete METADATA_ONLY of {a} removed its payload from the hypervisor (it must drop only the metadata)"
                ),
                "present",
                "absent",
            ));
        }
        Ok(match xml {
            Some(_) => Outcome::pass(),
            None => Outcome::Pass {
                note: Some(format!(
                    "{a}'s payload stays in the hypervisor: without REDEFINE the suite cannot delete it"
                )),
            },
        })
    })
}

const CREATE_READ: u64 =
    ops::SNAPSHOT_CREATE | ops::SNAPSHOT_LOOKUP | ops::SNAPSHOT_CURRENT | ops::SNAPSHOT_LIST | ops::SNAPSHOT_DELETE;

/// The cases that use `--probe`.
pub fn cases() -> Vec<Case> {
    let b = Level::Behaviour;
    vec![
        Case::new(
            "behaviour.probe.delete_removes_payload",
            b,
            "a plain delete removes the snapshot's payload from the hypervisor (--probe)",
            delete_removes_payload,
        )
        .ops(CREATE_READ)
        .probe(),
        Case::new(
            "behaviour.probe.metadata_only_keeps_payload",
            b,
            "delete METADATA_ONLY leaves the snapshot's payload in the hypervisor (--probe)",
            metadata_only_keeps_payload,
        )
        .ops(CREATE_READ)
        .flag(ctx::DELETE_METADATA_ONLY)
        .probe(),
    ]
}
