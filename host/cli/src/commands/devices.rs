//! `domblklist` and `domiflist`: a domain's disks and interfaces, read from its XML with the
//! XPath expressions virsh uses, printed in virsh's tables.

use serde_json::json;
use virtplug_host::flags::domain_xml;

use super::{Ctx, Positional, flags_of, json_text};
use crate::{
    args::{Domblklist, Domiflist},
    error::{CliError, Result},
    output::table,
    xpath,
};

/// The XML virsh reads: the live definition, or with `--inactive` the persistent one.
fn domain_xml(
    ctx: &Ctx,
    command: &'static str,
    domain: Option<String>,
    args: Vec<String>,
    inactive: bool,
) -> Result<String> {
    let mut pos = Positional::new(command, args);
    let dom = pos.require(domain, "domain")?;
    pos.done()?;
    let d = ctx.domain(&dom)?;
    Ok(ctx.conn.domain_xml(&d.name, flags_of(&[(inactive, domain_xml::INACTIVE)]))?)
}

fn dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".to_owned())
}

/// `--json`: each row as an object with `keys` (null for a missing value).
fn objects(rows: &[Vec<Option<String>>], keys: &[&str]) -> String {
    let list: Vec<serde_json::Map<String, serde_json::Value>> =
        rows.iter().map(|r| keys.iter().zip(r).map(|(k, v)| ((*k).to_owned(), json!(v))).collect()).collect();
    json_text(&json!(list))
}

/// `domblklist [--inactive] [--details]`.
pub fn domblklist(ctx: &Ctx, a: Domblklist) -> Result<String> {
    let xml = domain_xml(ctx, "domblklist", a.domain, a.args, a.inactive)?;
    let disks = xpath::rows(
        &xml,
        "/domain/devices/disk",
        &[
            "./@type",
            "./@device",
            "./target/@dev",
            "./source/@file|./source/@dev|./source/@dir|./source/@name|./source/@volume",
        ],
    )?;
    let mut rows = Vec::new();
    for d in &disks {
        let [kind, device, target, source] = [&d[0], &d[1], &d[2], &d[3]];
        if a.details && (kind.is_none() || device.is_none()) {
            return Err(CliError::msg("unable to query block list details"));
        }
        let Some(target) = target else { return Err(CliError::msg("unable to query block list")) };
        rows.push(if a.details {
            vec![dash(kind), dash(device), target.clone(), dash(source)]
        } else {
            vec![target.clone(), dash(source)]
        });
    }
    if ctx.json {
        return Ok(objects(&disks, &["type", "device", "target", "source"]));
    }
    let headers: &[&str] = if a.details { &["Type", "Device", "Target", "Source"] } else { &["Target", "Source"] };
    Ok(table::render(headers, &rows))
}

/// `domiflist [--inactive]`.
pub fn domiflist(ctx: &Ctx, a: Domiflist) -> Result<String> {
    let xml = domain_xml(ctx, "domiflist", a.domain, a.args, a.inactive)?;
    let nics = xpath::rows(
        &xml,
        "/domain/devices/interface",
        &[
            "./target/@dev",
            "./@type",
            "./source/@bridge|./source/@dev|./source/@network|./source/@name|./source/@path",
            "./model/@type",
            "./mac/@address",
        ],
    )?;
    if ctx.json {
        return Ok(objects(&nics, &["interface", "type", "source", "model", "mac"]));
    }
    let rows: Vec<Vec<String>> = nics.iter().map(|n| n.iter().map(dash).collect()).collect();
    Ok(table::render(&["Interface", "Type", "Source", "Model", "MAC"], &rows))
}
