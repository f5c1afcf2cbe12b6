//! Domain commands: list, dominfo, domstate, dumpxml, define, undefine and the lifecycle
//! commands, with virsh's messages.

use serde_json::json;
use virtplug_host::{DomainInfo, HostError, flags::domain_undefine as undef, flags::domain_xml};

use super::{Ctx, Positional, exclusive, flags_of, json_text};
use crate::{
    args::{Define, DomOnly, Domstate, Dumpxml, List, Undefine},
    error::{CliError, Result, failed, read_xml_file},
    output::{domain_is_active, domain_state, info, state_reason, table},
};

fn domain_json(d: &DomainInfo) -> serde_json::Value {
    json!({
        "id": (d.id >= 0).then_some(d.id),
        "name": d.name,
        "uuid": d.uuid,
        "state": domain_state(d.state),
        "state_code": d.state,
        "reason": d.reason,
        "vcpus": d.vcpus,
        "max_memory_kib": d.max_memory_kib,
        "memory_kib": d.memory_kib,
        "persistent": d.persistent,
    })
}

/// `list`: active domains by id, then (with `--all`) inactive ones by name.
pub fn list(ctx: &Ctx, a: &List) -> Result<String> {
    let mut doms: Vec<DomainInfo> =
        ctx.conn.domain_list()?.into_iter().filter(|d| a.all || domain_is_active(d.state)).collect();
    doms.sort_by(|x, y| {
        let key = |d: &DomainInfo| (d.id < 0, if d.id < 0 { 0 } else { d.id }, d.name.to_ascii_lowercase());
        key(x).cmp(&key(y)).then_with(|| x.name.cmp(&y.name))
    });
    if ctx.json {
        return Ok(json_text(&json!(doms.iter().map(domain_json).collect::<Vec<_>>())));
    }
    if a.name {
        return Ok(doms.iter().map(|d| format!("{}\n", d.name)).collect());
    }
    let rows: Vec<Vec<String>> = doms
        .iter()
        .map(|d| {
            let id = if d.id >= 0 { d.id.to_string() } else { "-".to_owned() };
            vec![id, d.name.clone(), domain_state(d.state).to_owned()]
        })
        .collect();
    Ok(table::render(&["Id", "Name", "State"], &rows))
}

fn target(command: &'static str, domain: Option<String>, args: Vec<String>) -> Result<String> {
    let mut pos = Positional::new(command, args);
    let dom = pos.require(domain, "domain")?;
    pos.done()?;
    Ok(dom)
}

/// `dominfo`.
pub fn dominfo(ctx: &Ctx, a: DomOnly) -> Result<String> {
    let d = ctx.domain(&target("dominfo", a.domain, a.args)?)?;
    if ctx.json {
        return Ok(json_text(&domain_json(&d)));
    }
    Ok(info::dominfo(&d))
}

/// `domstate`.
pub fn domstate(ctx: &Ctx, a: Domstate) -> Result<String> {
    let d = ctx.domain(&target("domstate", a.domain, a.args)?)?;
    if ctx.json {
        return Ok(json_text(&json!({ "state": domain_state(d.state), "state_code": d.state, "reason": d.reason })));
    }
    if a.reason {
        return Ok(format!("{} ({})\n", domain_state(d.state), state_reason(d.state, d.reason)));
    }
    Ok(format!("{}\n", domain_state(d.state)))
}

/// `dumpxml`.
pub fn dumpxml(ctx: &Ctx, a: Dumpxml) -> Result<String> {
    let d = ctx.domain(&target("dumpxml", a.domain, a.args)?)?;
    let flags = flags_of(&[(a.inactive, domain_xml::INACTIVE), (a.security_info, domain_xml::SECURE)]);
    let xml = ctx.conn.domain_xml(&d.name, flags)?;
    if ctx.json {
        return Ok(json_text(&json!({ "xml": xml })));
    }
    Ok(xml)
}

/// `define FILE`.
pub fn define(ctx: &Ctx, a: Define) -> Result<String> {
    ctx.no_json("define")?;
    let mut pos = Positional::new("define", a.args);
    let file = pos.require(a.file, "file")?;
    pos.done()?;
    let xml = read_xml_file(&file)?;
    let d = failed(|| format!("Failed to define domain from {file}"), ctx.conn.domain_define(&xml))?;
    Ok(format!("Domain '{}' defined from {file}\n", d.name))
}

/// `undefine`.
pub fn undefine(ctx: &Ctx, a: Undefine) -> Result<String> {
    ctx.no_json("undefine")?;
    exclusive(("nvram", a.nvram), ("keep-nvram", a.keep_nvram))?;
    exclusive(("tpm", a.tpm), ("keep-tpm", a.keep_tpm))?;
    let d = ctx.domain(&target("undefine", a.domain, a.args)?)?;
    let flags = flags_of(&[
        (a.managed_save, undef::MANAGED_SAVE),
        (a.snapshots_metadata, undef::SNAPSHOTS_METADATA),
        (a.checkpoints_metadata, undef::CHECKPOINTS_METADATA),
        (a.nvram, undef::NVRAM),
        (a.keep_nvram, undef::KEEP_NVRAM),
        (a.tpm, undef::TPM),
        (a.keep_tpm, undef::KEEP_TPM),
    ]);
    failed(|| format!("Failed to undefine domain '{}'", d.name), ctx.conn.domain_undefine(&d.name, flags))?;
    Ok(format!("Domain '{}' has been undefined\n", d.name))
}

/// A lifecycle command: its name, the host call, virsh's verb for failure and for success.
struct Lifecycle {
    command: &'static str,
    call: fn(&virtplug_host::Connection, &str) -> Result<(), HostError>,
    fail_verb: &'static str,
    done: &'static str,
}

const LIFECYCLE: &[Lifecycle] = &[
    Lifecycle { command: "start", call: |c, d| c.domain_start(d), fail_verb: "start", done: "started" },
    Lifecycle {
        command: "shutdown",
        call: |c, d| c.domain_shutdown(d),
        fail_verb: "shutdown",
        done: "is being shutdown",
    },
    Lifecycle { command: "destroy", call: |c, d| c.domain_destroy(d), fail_verb: "destroy", done: "destroyed" },
    Lifecycle { command: "suspend", call: |c, d| c.domain_suspend(d), fail_verb: "suspend", done: "suspended" },
    Lifecycle { command: "resume", call: |c, d| c.domain_resume(d), fail_verb: "resume", done: "resumed" },
];

/// `start`, `shutdown`, `destroy`, `suspend`, `resume`.
pub fn lifecycle(ctx: &Ctx, command: &str, a: DomOnly) -> Result<String> {
    let op = LIFECYCLE
        .iter()
        .find(|l| l.command == command)
        .ok_or_else(|| CliError::msg(format!("unknown command: '{command}'")))?;
    ctx.no_json(op.command)?;
    let d = ctx.domain(&target(op.command, a.domain, a.args)?)?;
    if op.command == "start" && domain_is_active(d.state) {
        return Err(CliError::msg("Domain is already active"));
    }
    failed(|| format!("Failed to {} domain '{}'", op.fail_verb, d.name), (op.call)(&ctx.conn, &d.name))?;
    Ok(format!("Domain '{}' {}\n", d.name, op.done))
}
