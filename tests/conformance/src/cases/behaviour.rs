//! Behavioural level: libvirt's snapshot semantics (reference §5, §7, §8, §10) on the URI's host,
//! one case per rule, each driven by what the plugin declares. Every case works only on
//! `vpconf-` snapshots and removes them before and after.

use virtplug_host::{HostError, codes};
use virtplug_plugin_api::flags::{domain_state as st, ops, snapshot_create, snapshot_delete, snapshot_list as fl};

use super::lifecycle::{
    disk_only, edit_rename, generation, halt, import, revert_state, undefine_guard, unknown_domain, unknown_snapshot,
};
use crate::{
    case::{Case, CaseResult, Failure, Level, Outcome},
    ctx::{self, Ctx, MetadataModel, PREFIX, check_eq, describe_host, expect_error, list_flag, op_failed},
};

/// A snapshot name for this case: the prefix, a short name, and the case process's id, so that
/// what a case leaves behind without metadata (NO_METADATA, METADATA_ONLY — e.g. a tag in a
/// qcow2 image) never collides with a later case or run.
pub(super) fn n(short: &str) -> String {
    format!("{PREFIX}{short}-{}", std::process::id())
}

/// Runs `body` between two clean-ups, restoring a foreign current snapshot afterwards.
pub(super) fn guarded(c: &Ctx, body: impl FnOnce(&Ctx) -> Result<(), Failure>) -> CaseResult {
    guarded_note(c, |c| body(c).map(|()| None))
}

/// [`guarded`] for a body that returns a note for the pass (what the plugin chose where libvirt
/// lets the driver or the hypervisor decide).
pub(super) fn guarded_note(c: &Ctx, body: impl FnOnce(&Ctx) -> Result<Option<String>, Failure>) -> CaseResult {
    c.cleanup()?;
    let before = if c.has_op(ops::SNAPSHOT_CURRENT) { c.current()? } else { None };
    let r = body(c);
    let cleaned = c.cleanup();
    let restored = c.restore_current(&before);
    let note = r?;
    cleaned?;
    restored?;
    Ok(Outcome::Pass { note })
}

/// Accepts an error whose code and text match one of `allowed`.
pub(super) fn expect_error_any<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, HostError>,
    allowed: &[(u32, String)],
) -> Result<(), Failure> {
    let expected = allowed
        .iter()
        .map(|(code, text)| format!("{} ({code}): {text}", codes::name(*code)))
        .collect::<Vec<_>>()
        .join(" or ");
    match r {
        Ok(v) => Err(Failure::new(format!("{what} succeeded"), expected, format!("success: {v:?}"))),
        Err(e) if allowed.iter().any(|(code, text)| e.code() == *code && e.to_string() == *text) => Ok(()),
        Err(e) => Err(Failure::new(format!("{what}: wrong error"), expected, describe_host(&e))),
    }
}

pub(super) fn current_before(c: &Ctx) -> Result<Option<String>, Failure> {
    if c.has_op(ops::SNAPSHOT_CURRENT) { c.current() } else { Ok(None) }
}

fn hierarchy(c: &Ctx) -> CaseResult {
    guarded_note(c, |c| {
        let before = current_before(c)?;
        for s in ["a", "b", "c"] {
            c.create(&n(s))?;
        }
        check_eq("parent of the first snapshot is the previous current snapshot", before, c.parent_of(&n("a"))?)?;
        check_eq("parent of vpconf-b", Some(n("a")), c.parent_of(&n("b"))?)?;
        check_eq("parent of vpconf-c", Some(n("b")), c.parent_of(&n("c"))?)?;
        check_eq("current after three creates", Some(n("c")), c.current()?)?;
        let info = c.lookup(&n("c"))?;
        check_eq("vpconf-c reports itself current", true, info.current)?;
        // Either every snapshot carries the plugin's metadata (qemu, test) or none does (esx, vbox).
        let model = c.metadata_model(&n("c"))?;
        for s in ["a", "b"] {
            check_eq(
                &format!("has_metadata of {} (the same as vpconf-c's)", n(s)),
                model == MetadataModel::Plugin,
                c.lookup(&n(s))?.has_metadata,
            )?;
        }
        let dup =
            c.conn.snapshot_create(c.dom(), &format!("<domainsnapshot><name>{}</name></domainsnapshot>", n("a")), 0);
        let generic = (codes::OPERATION_FAILED, format!("operation failed: domain moment {} already exists", n("a")));
        match model {
            MetadataModel::Plugin => expect_error("creating an existing name again", dup, generic.0, &generic.1)?,
            // libvirt's esx driver checks the whole tree itself (esx_driver.c:4008-4029).
            MetadataModel::Hypervisor => expect_error_any(
                "creating an existing name again",
                dup,
                &[
                    generic,
                    (
                        codes::OPERATION_INVALID,
                        format!("Requested operation is not valid: Snapshot '{}' already exists", n("a")),
                    ),
                ],
            )?,
        }
        Ok(Some(model.describe().to_owned()))
    })
}

fn create_plain(c: &Ctx) -> CaseResult {
    if c.opts.live && !c.has_op(ops::SNAPSHOT_DELETE) {
        return Ok(Outcome::Skip {
            reason: "--live: snapshot_delete is not declared, so the snapshot could not be removed".to_owned(),
        });
    }
    let r = c
        .create_on(c.dom(), &n("plain"), 0)
        .and_then(|got| check_eq("name returned by snapshot_create", n("plain"), got));
    c.cleanup()?;
    r.map(|()| Outcome::pass())
}

/// Cases that build a branching tree need a way to make an older snapshot current.
pub(super) fn branchable(c: &Ctx) -> Option<Outcome> {
    let redefine = c.has_flag(ctx::CREATE_REDEFINE) && c.has_flag(ctx::CREATE_CURRENT) && c.has_op(ops::SNAPSHOT_XML);
    let revert = c.has_op(ops::SNAPSHOT_REVERT) && !c.opts.live;
    (!redefine && !revert).then(|| Outcome::Skip {
        reason:
            "needs snapshot_create REDEFINE|CURRENT with snapshot_xml, or snapshot_revert, to build a branching tree"
                .to_owned(),
    })
}

pub(super) fn dump(c: &Ctx, name: &str) -> Result<String, Failure> {
    c.conn.snapshot_xml(c.dom(), name, c.secure()).map_err(|e| op_failed(&format!("snapshot_xml {name}"), &e))
}

fn redefine_roundtrip(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        c.create(&n("a"))?;
        c.create(&n("b"))?;
        let xa = dump(c, &n("a"))?;
        let xb = dump(c, &n("b"))?;
        let md = snapshot_delete::METADATA_ONLY;
        c.conn.snapshot_delete(c.dom(), &n("b"), md).map_err(|e| op_failed("snapshot_delete METADATA_ONLY", &e))?;
        c.conn.snapshot_delete(c.dom(), &n("a"), md).map_err(|e| op_failed("snapshot_delete METADATA_ONLY", &e))?;
        check_eq("vpconf-a listed after its metadata was dropped", false, c.exists(&n("a"))?)?;
        for x in [&xa, &xb] {
            c.conn
                .snapshot_create(c.dom(), x, snapshot_create::REDEFINE)
                .map_err(|e| op_failed("redefine from the dumped XML", &e))?;
        }
        check_eq("XML of vpconf-a after the round trip", xa.clone(), dump(c, &n("a"))?)?;
        check_eq("XML of vpconf-b after the round trip", xb.clone(), dump(c, &n("b"))?)?;
        check_eq("parent of vpconf-b after the round trip", Some(n("a")), c.parent_of(&n("b"))?)?;
        // Redefining the identical XML again is accepted and changes nothing.
        c.conn
            .snapshot_create(c.dom(), &xb, snapshot_create::REDEFINE)
            .map_err(|e| op_failed("identical re-redefine", &e))?;
        check_eq("XML after an identical re-redefine", xb, dump(c, &n("b"))?)
    })
}

fn redefine_current(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        c.create(&n("a"))?;
        c.create(&n("b"))?;
        let xa = dump(c, &n("a"))?;
        let xb = dump(c, &n("b"))?;
        c.conn
            .snapshot_create(c.dom(), &xa, snapshot_create::REDEFINE | snapshot_create::CURRENT)
            .map_err(|e| op_failed("redefine REDEFINE|CURRENT", &e))?;
        check_eq("current after a redefine with CURRENT", Some(n("a")), c.current()?)?;
        c.conn
            .snapshot_create(c.dom(), &xb, snapshot_create::REDEFINE)
            .map_err(|e| op_failed("redefine without CURRENT", &e))?;
        check_eq("current after a redefine without CURRENT (unchanged)", Some(n("a")), c.current()?)?;
        check_eq("vpconf-b reports itself not current", false, c.lookup(&n("b"))?.current)
    })
}

fn no_metadata(c: &Ctx) -> CaseResult {
    guarded_note(c, |c| {
        // A plain snapshot first: it tells who keeps the metadata, and is the current one.
        c.create(&n("meta"))?;
        let model = c.metadata_model(&n("meta"))?;
        let name = c.create_on(c.dom(), &n("nometa"), snapshot_create::NO_METADATA)?;
        check_eq("name returned by a NO_METADATA create", n("nometa"), name.clone())?;
        let listed = c.list(c.dom())?;
        let record = listed.iter().find(|s| s.name == name);
        if let Some(s) = record.filter(|s| s.has_metadata) {
            return Err(Failure::new(
                "a NO_METADATA snapshot is listed with metadata",
                "not listed (or listed without metadata)",
                format!("{s:?}"),
            ));
        }
        match model {
            MetadataModel::Plugin => {
                check_eq("current after a NO_METADATA create (unchanged)", Some(n("meta")), c.current()?)?;
                Ok(Some(format!(
                    "{}: the snapshot is taken, nothing listed with metadata, current unchanged",
                    model.describe()
                )))
            }
            // esx/vbox: "libvirt tracks no snapshot metadata so supporting that flag is trivial"
            // (§4.3): the create is a plain one — the snapshot is on the host, a child of the
            // current one, and becomes current, like any snapshot the hypervisor takes.
            MetadataModel::Hypervisor => {
                let Some(s) = record else {
                    return Err(Failure::new(
                        "the hypervisor keeps the metadata, yet the NO_METADATA snapshot is not on the host",
                        format!("{name} listed (NO_METADATA is a no-op)"),
                        "not listed",
                    ));
                };
                check_eq(
                    "parent of the NO_METADATA snapshot (the previous current one)",
                    Some(n("meta")),
                    s.parent.clone(),
                )?;
                check_eq(
                    "current after a NO_METADATA create (the new snapshot, as a plain create)",
                    Some(name.clone()),
                    c.current()?,
                )?;
                Ok(Some(format!(
                    "{}: NO_METADATA is a no-op, the snapshot is listed without metadata and is current",
                    model.describe()
                )))
            }
        }
    })
}

fn delete_reparent(c: &Ctx) -> CaseResult {
    guarded(c, |c| {
        let before = current_before(c)?;
        for s in ["a", "b", "c"] {
            c.create(&n(s))?;
        }
        c.conn.snapshot_delete(c.dom(), &n("b"), 0).map_err(|e| op_failed("snapshot_delete vpconf-b", &e))?;
        check_eq("vpconf-b exists after delete", false, c.exists(&n("b"))?)?;
        check_eq("parent of vpconf-c after its parent was deleted", Some(n("a")), c.parent_of(&n("c"))?)?;
        check_eq("current after deleting a non-current snapshot (unchanged)", Some(n("c")), c.current()?)?;
        c.conn.snapshot_delete(c.dom(), &n("c"), 0).map_err(|e| op_failed("snapshot_delete vpconf-c", &e))?;
        check_eq("current after deleting the current snapshot (its parent)", Some(n("a")), c.current()?)?;
        c.conn.snapshot_delete(c.dom(), &n("a"), 0).map_err(|e| op_failed("snapshot_delete vpconf-a", &e))?;
        check_eq("current after deleting the current snapshot (its parent)", before, c.current()?)
    })
}

/// r → m → l1, r → l2 (current l2). Returns r's parent.
pub(super) fn tree(c: &Ctx) -> Result<Option<String>, Failure> {
    let before = current_before(c)?;
    c.create(&n("r"))?;
    c.create(&n("m"))?;
    c.create(&n("l1"))?;
    c.make_current(&n("r"))?;
    c.create(&n("l2"))?;
    check_eq("parent of vpconf-l2 (created while vpconf-r was current)", Some(n("r")), c.parent_of(&n("l2"))?)?;
    Ok(before)
}

pub(super) fn set(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| n(s)).collect();
    v.sort();
    v
}

pub(super) fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn delete_children(c: &Ctx) -> CaseResult {
    if let Some(skip) = branchable(c) {
        return Ok(skip);
    }
    guarded(c, |c| {
        let before = tree(c)?;
        c.conn
            .snapshot_delete(c.dom(), &n("r"), snapshot_delete::CHILDREN)
            .map_err(|e| op_failed("delete CHILDREN", &e))?;
        check_eq("our snapshots after delete CHILDREN of the root", Vec::<String>::new(), c.list_ours(0)?)?;
        check_eq("current after delete CHILDREN removed the current one", before, c.current()?)
    })
}

fn delete_children_only(c: &Ctx) -> CaseResult {
    if let Some(skip) = branchable(c) {
        return Ok(skip);
    }
    guarded(c, |c| {
        tree(c)?;
        c.conn
            .snapshot_delete(c.dom(), &n("r"), snapshot_delete::CHILDREN_ONLY)
            .map_err(|e| op_failed("delete CHILDREN_ONLY", &e))?;
        check_eq("our snapshots after delete CHILDREN_ONLY of the root", set(&["r"]), sorted(c.list_ours(0)?))?;
        check_eq("current after delete CHILDREN_ONLY removed the current one", Some(n("r")), c.current()?)
    })
}

fn delete_metadata_only(c: &Ctx) -> CaseResult {
    guarded_note(c, |c| {
        let before = current_before(c)?;
        c.create(&n("a"))?;
        c.create(&n("b"))?;
        let model = c.metadata_model(&n("a"))?;
        c.conn
            .snapshot_delete(c.dom(), &n("a"), snapshot_delete::METADATA_ONLY)
            .map_err(|e| op_failed("delete METADATA_ONLY", &e))?;
        let ours = sorted(c.list_ours(0)?);
        match model {
            MetadataModel::Plugin => {}
            // esx: "success without doing anything, once the snapshot is found" (§4.3): the
            // snapshot stays, with its child and current untouched. (libvirt's vbox instead edits
            // the .vbox file, which drops the snapshot: that is checked as for the other model.)
            MetadataModel::Hypervisor if ours == set(&["a", "b"]) => {
                check_eq(
                    "parent of vpconf-b after a no-op METADATA_ONLY delete of its parent",
                    Some(n("a")),
                    c.parent_of(&n("b"))?,
                )?;
                check_eq("current after a no-op METADATA_ONLY delete", Some(n("b")), c.current()?)?;
                return Ok(Some(format!("{}: METADATA_ONLY is a no-op, the snapshot stays", model.describe())));
            }
            MetadataModel::Hypervisor => {}
        }
        check_eq("our snapshots after delete METADATA_ONLY", set(&["b"]), ours)?;
        check_eq(
            "parent of vpconf-b after its parent's metadata was dropped (vpconf-a's parent)",
            before,
            c.parent_of(&n("b"))?,
        )?;
        Ok(Some(format!("{}: METADATA_ONLY drops the snapshot from the tree", model.describe())))
    })
}

/// Domain-level list filter `flags` on the tree: what the plugin's records say vs the oracle.
fn list_filter(c: &Ctx, flags: u32) -> CaseResult {
    if let Some(skip) = branchable(c) {
        return Ok(skip);
    }
    guarded(c, |c| {
        let before = tree(c)?;
        let model = c.metadata_model(&n("r"))?;
        let all = c.list(c.dom())?;
        let ours: Vec<_> = all.iter().filter(|s| s.name.starts_with(PREFIX)).collect();
        let group = |bits: u32| {
            let b = flags & bits;
            if b == bits { 0 } else { b }
        };
        let expected: Vec<String> = ours
            .iter()
            .filter(|s| {
                let is_root = s.parent.is_none();
                let has_children = all.iter().any(|o| o.parent.as_deref() == Some(s.name.as_str()));
                let inactive = s.state == st::SHUTOFF;
                let disk = s.state == st::DISK_SNAPSHOT;
                let m = group(fl::METADATA | fl::NO_METADATA);
                let l = group(fl::LEAVES | fl::NO_LEAVES);
                let stt = group(fl::INACTIVE | fl::ACTIVE | fl::DISK_ONLY);
                let loc = group(fl::INTERNAL | fl::EXTERNAL);
                (flags & fl::ROOTS == 0 || is_root)
                    && (m == 0
                        || (m & fl::METADATA != 0 && s.has_metadata)
                        || (m & fl::NO_METADATA != 0 && !s.has_metadata))
                    && (l == 0 || (l & fl::LEAVES != 0 && !has_children) || (l & fl::NO_LEAVES != 0 && has_children))
                    && (stt == 0
                        || (stt & fl::INACTIVE != 0 && inactive)
                        || (stt & fl::DISK_ONLY != 0 && disk)
                        || (stt & fl::ACTIVE != 0 && !inactive && !disk))
                    && (loc == 0 || (loc & fl::INTERNAL != 0 && !s.external) || (loc & fl::EXTERNAL != 0 && s.external))
            })
            .map(|s| s.name.clone())
            .collect();
        // The oracle itself must agree with the tree we built.
        let structural = match flags {
            f if f == fl::ROOTS => Some(if before.is_none() { set(&["r"]) } else { vec![] }),
            f if f == fl::LEAVES => Some(set(&["l1", "l2"])),
            f if f == fl::NO_LEAVES => Some(set(&["m", "r"])),
            f if f == fl::LEAVES | fl::NO_LEAVES => Some(set(&["l1", "l2", "m", "r"])),
            // The plugin's metadata on every snapshot (qemu, test); none at all when the
            // hypervisor keeps it: METADATA lists nothing (esx, vbox, §4.3), NO_METADATA all.
            f if f == fl::METADATA => {
                Some(if model == MetadataModel::Plugin { set(&["l1", "l2", "m", "r"]) } else { vec![] })
            }
            f if f == fl::NO_METADATA => {
                Some(if model == MetadataModel::Plugin { vec![] } else { set(&["l1", "l2", "m", "r"]) })
            }
            _ => None,
        };
        if let Some(structural) = structural {
            check_eq(
                "the plugin's records do not describe the tree that was built",
                structural,
                sorted(expected.clone()),
            )?;
        }
        let got = c.list_ours(flags)?;
        check_eq(&format!("snapshot_list with flags 0x{flags:x}"), sorted(expected), sorted(got.clone()))?;
        if flags & fl::TOPOLOGICAL != 0 {
            let pos = |s: &str| got.iter().position(|g| g == &n(s));
            for (p, ch) in [("r", "m"), ("m", "l1"), ("r", "l2")] {
                if pos(p) > pos(ch) {
                    return Err(Failure::new(
                        "TOPOLOGICAL listed a child before its parent",
                        format!("{} before {}", n(p), n(ch)),
                        format!("{got:?}"),
                    ));
                }
            }
        }
        Ok(())
    })
}

fn list_children(c: &Ctx) -> CaseResult {
    if let Some(skip) = branchable(c) {
        return Ok(skip);
    }
    guarded(c, |c| {
        tree(c)?;
        let kids = c.conn.snapshot_list_children(c.dom(), &n("r"), 0).map_err(|e| op_failed("list children", &e))?;
        check_eq("children of vpconf-r", set(&["l2", "m"]), sorted(kids.into_iter().map(|s| s.name).collect()))?;
        if c.has_flag(list_flag(fl::DESCENDANTS)) {
            let all = c
                .conn
                .snapshot_list_children(c.dom(), &n("r"), fl::DESCENDANTS)
                .map_err(|e| op_failed("list DESCENDANTS", &e))?;
            check_eq(
                "descendants of vpconf-r",
                set(&["l1", "l2", "m"]),
                sorted(all.into_iter().map(|s| s.name).collect()),
            )?;
        }
        Ok(())
    })
}

impl Ctx {
    pub(super) fn create_raw(&self, dom: &str) -> Result<String, HostError> {
        self.conn.snapshot_create(dom, &format!("<domainsnapshot><name>{}</name></domainsnapshot>", n("x")), 0)
    }
}

const CREATE_READ: u64 =
    ops::SNAPSHOT_CREATE | ops::SNAPSHOT_LOOKUP | ops::SNAPSHOT_CURRENT | ops::SNAPSHOT_LIST | ops::SNAPSHOT_DELETE;

/// Every behavioural case.
pub fn cases() -> Vec<Case> {
    let b = Level::Behaviour;
    let mut v = vec![
        Case::new(
            "behaviour.create_plain",
            b,
            "a plain create with a name succeeds and returns that name",
            create_plain,
        )
        .ops(ops::SNAPSHOT_CREATE),
        Case::new(
            "behaviour.create_hierarchy",
            b,
            "plain creates chain: parent = previous current; the new one becomes current; duplicate names refused",
            hierarchy,
        )
        .ops(CREATE_READ),
        Case::new(
            "behaviour.redefine_roundtrip",
            b,
            "dump, drop metadata, redefine: identical XML and hierarchy",
            redefine_roundtrip,
        )
        .ops(CREATE_READ | ops::SNAPSHOT_XML)
        .flag(ctx::CREATE_REDEFINE)
        .flag(ctx::DELETE_METADATA_ONLY),
        Case::new(
            "behaviour.redefine_current",
            b,
            "REDEFINE|CURRENT makes current; REDEFINE alone leaves current alone",
            redefine_current,
        )
        .ops(CREATE_READ | ops::SNAPSHOT_XML)
        .flag(ctx::CREATE_REDEFINE)
        .flag(ctx::CREATE_CURRENT),
        Case::new(
            "behaviour.no_metadata",
            b,
            "NO_METADATA: the snapshot is taken, nothing listed, current unchanged",
            no_metadata,
        )
        .ops(CREATE_READ)
        .flag(ctx::CREATE_NO_METADATA),
        Case::new(
            "behaviour.delete_reparent",
            b,
            "delete reparents children and moves current to the parent",
            delete_reparent,
        )
        .ops(CREATE_READ),
        Case::new("behaviour.delete_children", b, "delete CHILDREN removes the whole subtree", delete_children)
            .ops(CREATE_READ)
            .flag(ctx::DELETE_CHILDREN),
        Case::new(
            "behaviour.delete_children_only",
            b,
            "delete CHILDREN_ONLY keeps the snapshot, current moves to it",
            delete_children_only,
        )
        .ops(CREATE_READ)
        .flag(ctx::DELETE_CHILDREN_ONLY),
        Case::new(
            "behaviour.delete_metadata_only",
            b,
            "delete METADATA_ONLY drops the snapshot from the tree and reparents",
            delete_metadata_only,
        )
        .ops(CREATE_READ)
        .flag(ctx::DELETE_METADATA_ONLY),
        Case::new("behaviour.list_children", b, "children and DESCENDANTS listings", list_children).ops(CREATE_READ),
        Case::new(
            "behaviour.revert_state",
            b,
            "revert restores the recorded domain state and sets current",
            revert_state,
        )
        .ops(CREATE_READ | ops::SNAPSHOT_REVERT | ops::DOMAIN_LOOKUP | ops::DOMAIN_START | ops::DOMAIN_DESTROY)
        .touches_domain(),
        Case::new("behaviour.create_halt", b, "create HALT stops the domain after the snapshot", halt)
            .ops(CREATE_READ | ops::DOMAIN_LOOKUP | ops::DOMAIN_START | ops::DOMAIN_DESTROY)
            .flag(ctx::CREATE_HALT)
            .touches_domain(),
        Case::new("behaviour.create_disk_only", b, "create DISK_ONLY records a disk-snapshot", disk_only)
            .ops(CREATE_READ)
            .flag(ctx::CREATE_DISK_ONLY),
        Case::new(
            "behaviour.undefine_guard",
            b,
            "undefining an inactive domain with snapshots is refused unless SNAPSHOTS_METADATA",
            undefine_guard,
        )
        .ops(ops::DOMAIN_DEFINE | ops::DOMAIN_UNDEFINE | ops::SNAPSHOT_CREATE),
        Case::new(
            "behaviour.error_unknown_domain",
            b,
            "every operation names an unknown domain with NO_DOMAIN",
            unknown_domain,
        ),
        Case::new(
            "behaviour.error_unknown_snapshot",
            b,
            "every operation names an unknown snapshot with NO_DOMAIN_SNAPSHOT",
            unknown_snapshot,
        ),
        Case::new("behaviour.snapshot_import", b, "import redefines a hierarchy in one step and marks current", import)
            .ops(CREATE_READ | ops::SNAPSHOT_XML | ops::SNAPSHOT_IMPORT)
            .flag(ctx::DELETE_METADATA_ONLY),
        Case::new(
            "behaviour.snapshot_edit_rename",
            b,
            "edit renames a snapshot and keeps its children attached",
            edit_rename,
        )
        .ops(CREATE_READ | ops::SNAPSHOT_XML | ops::SNAPSHOT_EDIT),
        Case::new(
            "behaviour.snapshot_generation",
            b,
            "the snapshot tree generation is stable across reads and changes after a create and after a delete",
            generation,
        )
        .ops(ops::SNAPSHOT_GENERATION | ops::SNAPSHOT_CREATE | ops::SNAPSHOT_DELETE),
    ];
    let filters: &[(u32, &str)] = &[
        (fl::ROOTS, "ROOTS"),
        (fl::METADATA, "METADATA"),
        (fl::NO_METADATA, "NO_METADATA"),
        (fl::LEAVES, "LEAVES"),
        (fl::NO_LEAVES, "NO_LEAVES"),
        (fl::LEAVES | fl::NO_LEAVES, "LEAVES_NO_LEAVES_full_group"),
        (fl::METADATA | fl::NO_METADATA, "METADATA_NO_METADATA_full_group"),
        (fl::INACTIVE, "INACTIVE"),
        (fl::ACTIVE, "ACTIVE"),
        (fl::DISK_ONLY, "DISK_ONLY"),
        (fl::INACTIVE | fl::ACTIVE | fl::DISK_ONLY, "status_full_group"),
        (fl::INTERNAL, "INTERNAL"),
        (fl::EXTERNAL, "EXTERNAL"),
        (fl::INTERNAL | fl::EXTERNAL, "location_full_group"),
        (fl::TOPOLOGICAL, "TOPOLOGICAL"),
        (fl::ROOTS | fl::LEAVES, "ROOTS_LEAVES"),
    ];
    for &(flags, name) in filters {
        let mut case = Case::new(
            format!("behaviour.list.{name}"),
            b,
            format!("snapshot_list filter {name} (documented group rule)"),
            move |c| list_filter(c, flags),
        )
        .ops(CREATE_READ);
        let mut bits = flags;
        while bits != 0 {
            let bit = bits & bits.wrapping_neg();
            case = case.flag(list_flag(bit));
            bits &= !bit;
        }
        v.push(case);
    }
    v
}
