//! `plugins`: what the registry loaded (name, version, file, ABI, schemes, operations with
//! the flags each accepts by their public names) and what it refused, with the reason.
//! Needs no connection.

use serde_json::json;
use virtplug_host::{HostError, LoadedPlugin, Registry, flags::ops, rules};

use super::json_text;
use crate::error::Result;

/// One operation of a plugin: its name and the public names of the flags it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// `snapshot_create`, …
    pub name: &'static str,
    /// `VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`, …
    pub flags: Vec<&'static str>,
}

/// The operations `plugin` declares, in [`ops::NAMES`] order.
pub fn operations(plugin: &LoadedPlugin) -> Vec<Operation> {
    let info = &plugin.info;
    ops::NAMES
        .iter()
        .filter(|(bit, _)| info.ops & bit != 0)
        .map(|&(bit, name)| {
            let flags = rules::ALL
                .iter()
                .find(|r| r.op_bit == bit)
                .map(|r| {
                    let accepted = (r.mask)(&info.caps) & r.defined;
                    (0..32).map(|i| 1u32 << i).filter(|b| accepted & b != 0).map(|b| rules::name_of(r, b)).collect()
                })
                .unwrap_or_default();
            Operation { name, flags }
        })
        .collect()
}

fn refused_parts(e: &HostError) -> (Option<String>, String) {
    match e {
        HostError::Load { path, reason } => (Some(path.display().to_string()), reason.clone()),
        other => (None, other.to_string()),
    }
}

/// A refusal stays one line of text: a file name may hold a newline or other control
/// characters, shown escaped (`\n`). (JSON output escapes them itself.)
fn one_line(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// `plugins`.
pub fn run(registry: &Registry, as_json: bool) -> Result<String> {
    if as_json {
        let plugins: Vec<_> = registry
            .plugins()
            .iter()
            .map(|p| {
                json!({
                    "name": p.info.name.as_str(),
                    "version": p.info.version.as_str(),
                    "file": p.path.display().to_string(),
                    "abi": format!("{}.{}", p.info.abi_major, p.info.abi_minor),
                    "schemes": p.info.schemes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "operations": operations(p).iter().map(|o| json!({ "name": o.name, "flags": o.flags })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let refused: Vec<_> = registry
            .refused()
            .iter()
            .map(|e| {
                let (file, reason) = refused_parts(e);
                json!({ "file": file, "reason": reason })
            })
            .collect();
        return Ok(json_text(&json!({ "plugins": plugins, "refused": refused })));
    }
    let mut out = String::new();
    for p in registry.plugins() {
        let schemes: Vec<&str> = p.info.schemes.iter().map(|s| s.as_str()).collect();
        out.push_str(&format!("{} {}\n", p.info.name, p.info.version));
        out.push_str(&format!("  File:       {}\n", p.path.display()));
        out.push_str(&format!("  ABI:        {}.{}\n", p.info.abi_major, p.info.abi_minor));
        out.push_str(&format!("  Schemes:    {}\n", schemes.join(", ")));
        out.push_str("  Operations:\n");
        for op in operations(p) {
            if op.flags.is_empty() {
                out.push_str(&format!("    {}\n", op.name));
            } else {
                out.push_str(&format!("    {:<18} {}\n", op.name, op.flags.join(" ")));
            }
        }
    }
    if registry.plugins().is_empty() {
        out.push_str("No plugins loaded.\n");
    }
    for e in registry.refused() {
        match refused_parts(e) {
            (Some(file), reason) => out.push_str(&format!("Refused {}: {}\n", one_line(&file), one_line(&reason))),
            (None, reason) => out.push_str(&format!("Refused: {}\n", one_line(&reason))),
        }
    }
    Ok(out)
}
