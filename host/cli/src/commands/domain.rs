//! Domain commands: list, dominfo, domstate, dumpxml, define, undefine and the lifecycle
//! commands, with virsh's messages.

use serde_json::json;
use virtplug_host::{
    DomainInfo, HostError, flags::domain_state as st, flags::domain_undefine as undef, flags::domain_xml,
};

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
    exclusive(("table", a.table), ("name", a.name))?;
    exclusive(("table", a.table), ("uuid", a.uuid))?;
    exclusive(("table", a.table), ("id", a.id))?;
    let mut doms: Vec<DomainInfo> = Vec::new();
    for d in ctx.conn.domain_list()? {
        if listed(ctx, a, &d)? {
            doms.push(d);
        }
    }
    doms.sort_by(|x, y| {
        let key = |d: &DomainInfo| (d.id < 0, if d.id < 0 { 0 } else { d.id }, d.name.to_ascii_lowercase());
        key(x).cmp(&key(y)).then_with(|| x.name.cmp(&y.name))
    });
    if ctx.json {
        return Ok(json_text(&json!(doms.iter().map(domain_json).collect::<Vec<_>>())));
    }
    let id_of = |d: &DomainInfo| if d.id >= 0 { d.id.to_string() } else { "-".to_owned() };
    if a.uuid || a.name || a.id {
        // virsh: the chosen columns in the order uuid, id, name; with the id alone, only
        // domains that have one.
        let mut out = String::new();
        for d in doms.iter().filter(|d| a.uuid || a.name || d.id >= 0) {
            let cells: Vec<String> = [(a.uuid, d.uuid.clone()), (a.id, id_of(d)), (a.name, d.name.clone())]
                .into_iter()
                .filter_map(|(on, cell)| on.then_some(cell))
                .collect();
            out.push_str(&cells.join(" "));
            out.push('\n');
        }
        return Ok(out);
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for d in &doms {
        // No plugin keeps a managed save image, so `--managed-save` never marks one `saved`.
        let mut row = vec![id_of(d), d.name.clone(), domain_state(d.state).to_owned()];
        if a.title {
            row.push(virtplug_host::model::domain::title(&ctx.conn.domain_xml(&d.name, 0)?).unwrap_or_default());
        }
        rows.push(row);
    }
    let headers: &[&str] = if a.title { &["Id", "Name", "State", "Title"] } else { &["Id", "Name", "State"] };
    Ok(table::render(headers, &rows))
}

/// Whether `d` passes `list`'s filters, grouped as `virConnectListAllDomains` groups them: any
/// option of a group (none: the whole group), every group. Without `--all`, active domains
/// only, or inactive ones with `--inactive` or `--state-shutoff`. No plugin keeps autostart,
/// managed save images or checkpoints: every domain is without them.
fn listed(ctx: &Ctx, a: &List, d: &DomainInfo) -> Result<bool> {
    let active = domain_is_active(d.state);
    let wanted = if a.all {
        true
    } else if a.inactive || a.state_shutoff {
        !active
    } else {
        active
    };
    let group = |options: &[(bool, bool)]| -> bool {
        !options.iter().any(|(on, _)| *on) || options.iter().any(|(on, holds)| *on && *holds)
    };
    let state_other = !matches!(d.state, st::RUNNING | st::PAUSED | st::SHUTOFF);
    let ok = wanted
        && group(&[(a.persistent, d.persistent), (a.transient, !d.persistent)])
        && group(&[
            (a.state_running, d.state == st::RUNNING),
            (a.state_paused, d.state == st::PAUSED),
            (a.state_shutoff, d.state == st::SHUTOFF),
            (a.state_other, state_other),
        ])
        && group(&[(a.autostart, false), (a.no_autostart, true)])
        && group(&[(a.with_managed_save, false), (a.without_managed_save, true)])
        && group(&[(a.with_checkpoint, false), (a.without_checkpoint, true)]);
    if !ok || !(a.with_snapshot || a.without_snapshot) {
        return Ok(ok);
    }
    let has = !ctx.conn.snapshot_list(&d.name, 0)?.is_empty();
    Ok(group(&[(a.with_snapshot, has), (a.without_snapshot, !has)]))
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
    // virsh leaves the line out when virDomainGetOSType fails
    let os_type = ctx.conn.domain_xml(&d.name, 0).map(|x| virtplug_host::model::domain::os_type(&x));
    Ok(info::dominfo(&d, os_type.as_deref().ok()))
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

/// What `domname`, `domid` and `domuuid` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convert {
    /// `domname`: from an id or a UUID.
    Name,
    /// `domid`: from a name or a UUID (`-` for an inactive domain).
    Id,
    /// `domuuid`: from a name or an id.
    Uuid,
}

/// `domname`, `domid`, `domuuid`: one property, the domain looked up only by the two other
/// kinds of reference (virsh's `VIRSH_BY*` sets), else "failed to get domain".
pub fn convert(ctx: &Ctx, what: Convert, a: DomOnly) -> Result<String> {
    let command = match what {
        Convert::Name => "domname",
        Convert::Id => "domid",
        Convert::Uuid => "domuuid",
    };
    let given = target(command, a.domain, a.args)?;
    let d = ctx.domain(&given)?;
    let by_id = given.parse::<i32>().is_ok_and(|id| id >= 0 && id == d.id);
    let by_uuid = virtplug_host::model::domain::normalize_uuid(&given).is_some_and(|u| u == d.uuid);
    let by_name = given == d.name;
    let accepted = match what {
        Convert::Name => by_id || by_uuid,
        Convert::Id => by_name || by_uuid,
        Convert::Uuid => by_id || by_name,
    };
    if !accepted {
        return Err(CliError::msg(format!("failed to get domain '{given}'")));
    }
    let id = if d.id >= 0 { d.id.to_string() } else { "-".to_owned() };
    if ctx.json {
        return Ok(json_text(&match what {
            Convert::Name => json!({ "name": d.name }),
            Convert::Id => json!({ "id": (d.id >= 0).then_some(d.id) }),
            Convert::Uuid => json!({ "uuid": d.uuid }),
        }));
    }
    Ok(match what {
        Convert::Name => format!("{}\n", d.name),
        Convert::Id => format!("{id}\n"),
        Convert::Uuid => format!("{}\n", d.uuid),
    })
}

/// `dumpxml`.
pub fn dumpxml(ctx: &Ctx, a: Dumpxml) -> Result<String> {
    let d = ctx.domain(&target("dumpxml", a.domain, a.args)?)?;
    // libvirt's VIR_DOMAIN_XML_UPDATE_CPU: virtplug defines no such bit, so it is passed on and
    // refused as the unknown bit it is (libvirt's drivers without a host CPU refuse it too).
    const UPDATE_CPU: u32 = 1 << 2;
    let flags = flags_of(&[
        (a.inactive, domain_xml::INACTIVE),
        (a.security_info, domain_xml::SECURE),
        (a.update_cpu, UPDATE_CPU),
        (a.migratable, domain_xml::MIGRATABLE),
    ]);
    let mut xml = ctx.conn.domain_xml(&d.name, flags)?;
    if let Some(x) = &a.xpath {
        xml = crate::xpath::select(&xml, x, a.wrap)?;
    }
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
    if a.delete_storage_volume_snapshots && !a.remove_all_storage {
        return Err(CliError::msg(
            "Option --remove-all-storage is required by option --delete-storage-volume-snapshots",
        ));
    }
    if a.wipe_storage && a.storage.is_none() && !a.remove_all_storage {
        return Err(CliError::msg("'--wipe-storage' requires '--storage <string>' or '--remove-all-storage'"));
    }
    let d = ctx.domain(&target("undefine", a.domain, a.args)?)?;
    if a.storage.is_some() || a.remove_all_storage {
        if domain_is_active(d.state) {
            return Err(CliError::msg("Storage volume deletion is supported only on stopped domains"));
        }
        if a.storage.is_some() && a.remove_all_storage {
            return Err(CliError::msg("Specified both --storage and --remove-all-storage"));
        }
        storage_volumes(ctx, &d, a.storage.as_deref())?;
    }
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

/// virsh's storage removal before `undefine --storage/--remove-all-storage` (done by virsh,
/// not the driver), once the domain is known to be stopped: every chosen disk with a source is a storage
/// volume to delete, and no plugin's storage is in a libvirt storage pool, so each is reported
/// as virsh reports an unmanaged volume (on stderr, and the undefine goes on); a `--storage`
/// item that names no disk by target or source fails the command before the undefine.
fn storage_volumes(ctx: &Ctx, d: &DomainInfo, storage: Option<&str>) -> Result<()> {
    let wanted: Option<Vec<String>> = storage.map(crate::xml::split_spec);
    let disks = crate::xpath::rows(
        &ctx.conn.domain_xml(&d.name, domain_xml::INACTIVE)?,
        "/domain/devices/disk",
        &["./target/@dev", "./source/@file|./source/@dev|./source/@dir|./source/@name|./source/@volume|./source/@path"],
    )?;
    let mut matched = vec![false; wanted.as_ref().map_or(0, Vec::len)];
    let mut stderr = std::io::stderr().lock();
    for disk in &disks {
        let (target, Some(source)) = (disk[0].as_deref().unwrap_or_default(), &disk[1]) else { continue };
        let chosen = match &wanted {
            None => true,
            Some(items) => {
                let mut hit = false;
                for (i, item) in items.iter().enumerate() {
                    if item == target || item == source {
                        matched[i] = true;
                        hit = true;
                    }
                }
                hit
            }
        };
        if chosen {
            // virsh's message ends in a newline of its own: an empty line follows it.
            let _ = std::io::Write::write_all(
                &mut stderr,
                format!(
                    "error: Storage volume '{target}'({source}) is not managed by libvirt. Remove it manually.\n\n"
                )
                .as_bytes(),
            );
        }
    }
    if let Some(missing) = wanted.iter().flatten().zip(&matched).find(|(_, m)| !**m).map(|(item, _)| item) {
        return Err(CliError::msg(format!("Volume '{missing}' was not found in domain's definition.\n")));
    }
    Ok(())
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
