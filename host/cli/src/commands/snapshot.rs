//! Snapshot commands other than listing and editing: create, create-as, current, delete,
//! dumpxml, info, parent, revert.

use serde_json::json;
use virtplug_host::{
    HostError, SnapshotInfo, codes,
    flags::{snapshot_create as create, snapshot_delete as del, snapshot_list, snapshot_revert as rev, snapshot_xml},
};

use super::{Ctx, Positional, exclusive, flags_of, is_no_support, json_text};
use crate::{
    args::{
        CreateFlags, SnapshotCreate, SnapshotCreateAs, SnapshotCurrent, SnapshotDelete, SnapshotDumpxml,
        SnapshotRevert, SnapshotTarget,
    },
    error::{CliError, Result, failed, read_xml_file},
    output::{domain_is_active, info, snapshot_state, time},
    xml,
};

/// The shared create options → `snapshot_create` flags.
pub fn create_flags(f: &CreateFlags) -> u32 {
    flags_of(&[
        (f.no_metadata, create::NO_METADATA),
        (f.halt, create::HALT),
        (f.disk_only, create::DISK_ONLY),
        (f.reuse_external, create::REUSE_EXT),
        (f.quiesce, create::QUIESCE),
        (f.atomic, create::ATOMIC),
        (f.live, create::LIVE),
        (f.validate, create::VALIDATE),
    ])
}

/// A snapshot as JSON (list and info).
pub fn snapshot_json(s: &SnapshotInfo) -> serde_json::Value {
    json!({
        "name": s.name,
        "parent": s.parent,
        "creation_time": s.creation_time,
        "creation_time_text": time::format_utc(s.creation_time),
        "state": snapshot_state(s.state),
        "current": s.current,
        "has_metadata": s.has_metadata,
        "location": if info::is_external(s) { "external" } else { "internal" },
        "disk_only": s.disk_only,
    })
}

/// virsh's `virshSnapshotCreate`: the call, its two client-side fallbacks (VALIDATE
/// unsupported without a file; HALT refused → create, then destroy), and the message.
fn create_and_report(ctx: &Ctx, dom: &str, xml: &str, mut flags: u32, from: Option<&str>) -> Result<String> {
    let mut result = ctx.conn.snapshot_create(dom, xml, flags);
    if from.is_none() && flags & create::VALIDATE != 0 && result.as_ref().is_err_and(is_no_support) {
        flags &= !create::VALIDATE;
        result = ctx.conn.snapshot_create(dom, xml, flags);
    }
    let mut halt = false;
    if flags & create::HALT != 0 && result.as_ref().is_err_and(|e| e.code() == codes::INVALID_ARG) {
        let d = ctx.domain(dom)?;
        if !d.persistent {
            return Err(CliError::msg("cannot halt after snapshot of transient domain"));
        }
        halt = domain_is_active(d.state);
        flags &= !create::HALT;
        result = ctx.conn.snapshot_create(dom, xml, flags);
    }
    let name = result?;
    if halt {
        ctx.conn.domain_destroy(dom)?;
    }
    Ok(match from {
        Some(f) => format!("Domain snapshot {name} created from '{f}'"),
        None => format!("Domain snapshot {name} created"),
    })
}

/// `snapshot-create`.
pub fn create(ctx: &Ctx, a: SnapshotCreate) -> Result<String> {
    ctx.no_json("snapshot-create")?;
    let flags = flags_of(&[(a.redefine, create::REDEFINE), (a.current, create::CURRENT)]) | create_flags(&a.flags);
    let mut pos = Positional::new("snapshot-create", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let file = pos.take(a.xmlfile);
    pos.done()?;
    let d = ctx.domain(&dom)?;
    let xml = match &file {
        Some(f) => read_xml_file(f)?,
        None => "<domainsnapshot/>".to_owned(),
    };
    create_and_report(ctx, &d.name, &xml, flags, file.as_deref())
}

/// `snapshot-create-as`.
pub fn create_as(ctx: &Ctx, a: SnapshotCreateAs) -> Result<String> {
    if !a.print_xml {
        ctx.no_json("snapshot-create-as")?;
    }
    let flags = create_flags(&a.flags);
    let mut pos = Positional::new("snapshot-create-as", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let name = pos.take(a.name);
    let description = pos.take(a.description);
    let mut disks = a.diskspec;
    disks.extend(pos.rest());
    let d = ctx.domain(&dom)?;
    let doc = xml::create_as(name.as_deref(), description.as_deref(), a.memspec.as_deref(), &disks)?;
    if a.print_xml {
        if ctx.json {
            return Ok(json_text(&json!({ "xml": doc })));
        }
        return Ok(format!("{doc}\n"));
    }
    create_and_report(ctx, &d.name, &doc, flags, None)
}

/// `snapshot-current`: print the current snapshot, or make one current (lookup, secure XML,
/// redefine with CURRENT — setting "current" has no API of its own).
pub fn current(ctx: &Ctx, a: SnapshotCurrent) -> Result<String> {
    let mut pos = Positional::new("snapshot-current", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let set = pos.take(a.snapshotname);
    pos.done()?;
    exclusive(("name", a.name), ("snapshotname", set.is_some()))?;
    let d = ctx.domain(&dom)?;
    if let Some(snap) = set {
        ctx.no_json("snapshot-current --snapshotname")?;
        let info = ctx.conn.snapshot_lookup(&d.name, &snap)?;
        let xml = ctx.conn.snapshot_xml(&d.name, &info.name, snapshot_xml::SECURE)?;
        let mut flags = create::REDEFINE | create::CURRENT;
        if xml.contains("<state>disk-snapshot</state>") {
            flags |= create::DISK_ONLY;
        }
        ctx.conn.snapshot_create(&d.name, &xml, flags)?;
        return Ok(format!("Snapshot {snap} set as current"));
    }
    let cur = ctx.current_snapshot(&d.name)?;
    if a.name {
        if ctx.json {
            return Ok(json_text(&json!({ "name": cur.name })));
        }
        return Ok(cur.name);
    }
    let flags = flags_of(&[(a.security_info, snapshot_xml::SECURE)]);
    let xml = ctx.conn.snapshot_xml(&d.name, &cur.name, flags)?;
    if ctx.json {
        return Ok(json_text(&json!({ "name": cur.name, "xml": xml })));
    }
    Ok(xml)
}

/// `snapshot-delete`.
pub fn delete(ctx: &Ctx, a: SnapshotDelete) -> Result<String> {
    ctx.no_json("snapshot-delete")?;
    let mut pos = Positional::new("snapshot-delete", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let snap = pos.take(a.snapshotname);
    pos.done()?;
    let d = ctx.domain(&dom)?;
    let info = ctx.lookup_snapshot(&d.name, "snapshotname", snap.as_deref(), a.current, true)?;
    let flags = flags_of(&[
        (a.children, del::CHILDREN),
        (a.children_only, del::CHILDREN_ONLY),
        (a.metadata, del::METADATA_ONLY),
    ]);
    failed(
        || format!("Failed to delete snapshot {}", info.name),
        ctx.conn.snapshot_delete(&d.name, &info.name, flags),
    )?;
    if flags & del::CHILDREN_ONLY != 0 {
        return Ok(format!("Domain snapshot {} children deleted\n", info.name));
    }
    Ok(format!("Domain snapshot {} deleted\n", info.name))
}

/// `snapshot-dumpxml`.
pub fn dumpxml(ctx: &Ctx, a: SnapshotDumpxml) -> Result<String> {
    let mut pos = Positional::new("snapshot-dumpxml", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let snap = pos.require(a.snapshotname, "snapshotname")?;
    pos.done()?;
    let d = ctx.domain(&dom)?;
    let flags = flags_of(&[(a.security_info, snapshot_xml::SECURE)]);
    // virsh holds the snapshot before asking for its XML: on a read-only connection an unknown
    // snapshot is reported as such, before the refusal of the secure flag.
    if a.security_info && ctx.conn.is_read_only() {
        ctx.conn.snapshot_lookup(&d.name, &snap)?;
    }
    let mut xml = ctx.conn.snapshot_xml(&d.name, &snap, flags)?;
    if let Some(x) = &a.xpath {
        xml = crate::xpath::select(&xml, x, a.wrap)?;
    }
    if ctx.json {
        return Ok(json_text(&json!({ "name": snap, "xml": xml })));
    }
    Ok(xml)
}

fn target(ctx: &Ctx, command: &'static str, a: SnapshotTarget) -> Result<(String, SnapshotInfo)> {
    let mut pos = Positional::new(command, a.args);
    let dom = pos.require(a.domain, "domain")?;
    let snap = pos.take(a.snapshotname);
    pos.done()?;
    let d = ctx.domain(&dom)?;
    let info = ctx.lookup_snapshot(&d.name, "snapshotname", snap.as_deref(), a.current, true)?;
    Ok((d.name, info))
}

/// Children and descendants of `snap`; `None` when the plugin cannot list.
fn counts(ctx: &Ctx, dom: &str, snap: &str) -> Result<Option<info::Counts>> {
    let children = match ctx.conn.snapshot_list_children(dom, snap, 0) {
        Ok(list) => list.len(),
        Err(e) if is_no_support(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let descendants = ctx.conn.snapshot_list_children(dom, snap, snapshot_list::DESCENDANTS)?.len();
    Ok(Some(info::Counts { children, descendants }))
}

/// `snapshot-info`.
pub fn info(ctx: &Ctx, a: SnapshotTarget) -> Result<String> {
    let (dom, snap) = target(ctx, "snapshot-info", a)?;
    let counts = counts(ctx, &dom, &snap.name)?;
    if ctx.json {
        let mut v = snapshot_json(&snap);
        v["domain"] = json!(dom);
        if let Some(c) = counts {
            v["children"] = json!(c.children);
            v["descendants"] = json!(c.descendants);
        }
        return Ok(json_text(&v));
    }
    Ok(info::snapshot_info(&dom, &snap, counts))
}

/// `snapshot-parent`.
pub fn parent(ctx: &Ctx, a: SnapshotTarget) -> Result<String> {
    let (_, snap) = target(ctx, "snapshot-parent", a)?;
    let Some(parent) = snap.parent else {
        return Err(CliError::msg(format!("snapshot '{}' has no parent", snap.name)));
    };
    if ctx.json {
        return Ok(json_text(&json!({ "parent": parent })));
    }
    Ok(parent)
}

/// `snapshot-revert`. Like virsh, `--force` is only sent after a revert failed as risky.
pub fn revert(ctx: &Ctx, a: SnapshotRevert) -> Result<String> {
    ctx.no_json("snapshot-revert")?;
    let mut flags = flags_of(&[(a.running, rev::RUNNING), (a.paused, rev::PAUSED), (a.reset_nvram, rev::RESET_NVRAM)]);
    let mut pos = Positional::new("snapshot-revert", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let snap = pos.take(a.snapshotname);
    pos.done()?;
    let d = ctx.domain(&dom)?;
    let info = ctx.lookup_snapshot(&d.name, "snapshotname", snap.as_deref(), a.current, true)?;
    let mut result = ctx.conn.snapshot_revert(&d.name, &info.name, flags);
    if a.force && result.as_ref().is_err_and(|e: &HostError| e.code() == codes::SNAPSHOT_REVERT_RISKY) {
        flags |= rev::FORCE;
        result = ctx.conn.snapshot_revert(&d.name, &info.name, flags);
    }
    failed(|| format!("Failed to revert snapshot {}", info.name), result)?;
    Ok(format!("Domain snapshot {} reverted\n", info.name))
}
