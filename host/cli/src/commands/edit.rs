//! `snapshot-edit`: secure XML → `$VISUAL`/`$EDITOR` → one atomic host call.
//!
//! virsh composes an edit from a redefine plus a metadata-only delete and can leave both
//! names behind (reference §11.6). virtplug decides before changing anything:
//! - same name → `snapshot_edit` (atomic);
//! - new name with `--rename` → `snapshot_edit` (atomic rename);
//! - new name with `--clone` → `snapshot_create` with REDEFINE (the original stays);
//! - new name without either → refused, nothing changed.
//!
//! The domain is held by a domain job from the dump to the redefine (on connections whose
//! plugin keeps job records), so no other writer changes the snapshot while the editor runs;
//! a domain already held by another job is refused at once.

use std::{io::Write, process::Command};

use virtplug_host::flags::{snapshot_create as create, snapshot_xml};

use super::{Ctx, Positional, exclusive};
use crate::{
    args::SnapshotEdit,
    error::{CliError, Result, io_text},
    xml,
};

/// The editor command: `$VISUAL`, else `$EDITOR`, else `vi` (may contain arguments).
fn editor() -> String {
    ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned())
}

/// Writes `text` to a temporary file, runs the editor on it through `sh -c` (so that an
/// editor setting with arguments works, as in virsh), and returns the edited text.
fn edit_text(text: &str) -> Result<String> {
    let fail = |what: String| CliError::msg(what);
    let mut file = tempfile::Builder::new()
        .prefix("virtplug")
        .suffix(".xml")
        .tempfile()
        .map_err(|e| fail(format!("cannot create temporary file: {}", io_text(&e))))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| fail(format!("cannot write temporary file: {}", io_text(&e))))?;
    let editor = editor();
    let path = file.path().to_owned();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .map_err(|e| fail(format!("{editor}: cannot run editor: {}", io_text(&e))))?;
    if !status.success() {
        return Err(fail(format!("{editor} {}: command failed: {status}", path.display())));
    }
    std::fs::read_to_string(&path)
        .map_err(|e| fail(format!("Failed to open file '{}': {}", path.display(), io_text(&e))))
}

/// The edit's domain job, ended when dropped (the connection's end would end it too).
struct Held<'a> {
    ctx: &'a Ctx,
    dom: String,
    id: Option<String>,
}

impl<'a> Held<'a> {
    /// Holds `dom` for editing `snap`; holds nothing where the plugin keeps no job record.
    fn new(ctx: &'a Ctx, dom: &str, snap: &str) -> Result<Self> {
        let id = match ctx.conn.domain_job_begin(dom, &format!("snapshot-edit of {snap} (virtplug CLI)")) {
            Ok(id) => Some(id),
            Err(e) if e.code() == virtplug_host::codes::NO_SUPPORT => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Self { ctx, dom: dom.to_owned(), id })
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = self.ctx.conn.domain_job_end(&self.dom, &id);
        }
    }
}

/// `snapshot-edit`.
pub fn run(ctx: &Ctx, a: SnapshotEdit) -> Result<String> {
    ctx.no_json("snapshot-edit")?;
    exclusive(("rename", a.rename), ("clone", a.clone))?;
    let mut pos = Positional::new("snapshot-edit", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let snap = pos.take(a.snapshotname);
    pos.done()?;
    let mut flags = create::REDEFINE;
    if a.current && snap.is_some() {
        flags |= create::CURRENT;
    }
    let d = ctx.domain(&dom)?;
    let info = ctx.lookup_snapshot(&d.name, "snapshotname", snap.as_deref(), a.current, false)?;
    let name = info.name;
    let update_failed =
        |cause: CliError| CliError::Then { cause: Box::new(cause), then: format!("Failed to update {name}") };

    let _held = Held::new(ctx, &d.name, &name)?;
    let original = ctx.conn.snapshot_xml(&d.name, &name, snapshot_xml::SECURE).map_err(|e| update_failed(e.into()))?;
    let edited = edit_text(&original).map_err(update_failed)?;
    if edited == original && flags & create::CURRENT == 0 {
        return Ok(format!("Snapshot {name} XML configuration not changed.\n"));
    }
    if edited.contains("<state>disk-snapshot</state>") {
        flags |= create::DISK_ONLY;
    }
    let new_name = xml::snapshot_name(&edited).unwrap_or_else(|| name.clone());
    if new_name == name {
        ctx.conn.snapshot_edit(&d.name, &name, &edited, flags).map_err(|e| update_failed(e.into()))?;
        return Ok(format!("Snapshot {name} edited.\n"));
    }
    if a.clone {
        let created = ctx.conn.snapshot_create(&d.name, &edited, flags).map_err(|e| update_failed(e.into()))?;
        return Ok(format!("Snapshot {name} cloned to {created}.\n"));
    }
    if !a.rename {
        return Err(update_failed(CliError::msg(format!(
            "Must use --rename or --clone to change {name} to {new_name}"
        ))));
    }
    ctx.conn.snapshot_edit(&d.name, &name, &edited, flags).map_err(|e| update_failed(e.into()))?;
    // virsh prints nothing after a rename.
    Ok(String::new())
}
