//! `snapshot-export` / `snapshot-import`: the founding replication workflow as two commands.
//! The bundle format, its checksum and the ordering are the model's; the all-or-nothing
//! import is the plugin's one transaction. virtplug only (virsh has no equivalent).

use std::path::Path;

use virtplug_host::model::bundle::Bundle;

use super::{Ctx, Positional, exclusive};
use crate::{
    args::{SnapshotExport, SnapshotImport},
    error::{CliError, Result, io_text, read_file},
};

/// `snapshot-export`: the bundle on stdout, or in `--file` (created mode 0600: secure XML).
pub fn export(ctx: &Ctx, a: SnapshotExport) -> Result<String> {
    ctx.no_json("snapshot-export")?;
    let mut pos = Positional::new("snapshot-export", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let file = pos.take(a.file);
    pos.done()?;
    let d = ctx.domain(&dom)?;
    let bundle = ctx.conn.snapshot_export(&d.name)?;
    let text = bundle.to_string();
    let Some(file) = file else {
        // The caller ends every command's output with virsh's newline; the bundle already
        // ends with one, so stdout carries exactly the bytes --file writes.
        return Ok(text.strip_suffix('\n').unwrap_or(&text).to_owned());
    };
    write_private(Path::new(&file), &text)
        .map_err(|e| CliError::msg(format!("Failed to write file '{file}': {}", io_text(&e))))?;
    Ok(format!("Domain '{}' snapshots exported to {file} ({} snapshots)\n", d.name, bundle.snapshots.len()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.flush()
}

/// `snapshot-import`.
pub fn import(ctx: &Ctx, a: SnapshotImport) -> Result<String> {
    ctx.no_json("snapshot-import")?;
    let mut pos = Positional::new("snapshot-import", a.args);
    let dom = pos.require(a.domain, "domain")?;
    let file = pos.take(a.bundle);
    pos.done()?;
    exclusive(("bundle", file.is_some()), ("libvirt-dir", a.libvirt_dir.is_some()))?;
    let bundle = match (&file, &a.libvirt_dir) {
        (Some(f), _) => Bundle::parse(&read_file(f)?).map_err(virtplug_host::HostError::from)?,
        (None, Some(dir)) => Bundle::from_libvirt_dir(Path::new(dir)).map_err(virtplug_host::HostError::from)?,
        (None, None) => return Err(CliError::msg("command 'snapshot-import' requires <bundle> option")),
    };
    let d = ctx.domain(&dom)?;
    ctx.conn.snapshot_import_bundle(&d.name, &bundle, a.dry_run)?;
    let n = bundle.snapshots.len();
    if a.dry_run {
        return Ok(format!("Domain '{}': {n} snapshots can be imported (dry run, nothing changed)\n", d.name));
    }
    Ok(format!("Domain '{}': {n} snapshots imported\n", d.name))
}
