//! virtplug's command-line client (binary `virtplug`): virsh's command names, options and
//! output text byte for byte, plus `--json` on read commands.
//!
//! It owns argument parsing, the option → flag tables, client-side option checks virsh does
//! itself, and all terminal formatting. It must not implement generic semantics (flag rules,
//! list filtering, XML validation): those live in `virtplug-host` and `virtplug-model`.
//! The library part exists so that the pure formatting can be tested without a plugin.

pub mod args;
pub mod argv;
pub mod commands;
pub mod error;
pub mod output;
pub mod xml;
pub mod xpath;

use virtplug_host::{Connection, Registry};

use crate::{
    args::{Cli, Command},
    commands::{Ctx, bundle, devices, domain, edit, plugins, snapshot, snapshot_list},
    error::{CliError, Result},
};

/// The URI used without `-c`: `$VIRTPLUG_DEFAULT_URI`, else `mock:///default`.
pub fn default_uri() -> String {
    std::env::var("VIRTPLUG_DEFAULT_URI").ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "mock:///default".to_owned())
}

/// Runs one command and returns its complete stdout text (virsh's end-of-command newline
/// included, except for JSON).
pub fn run(cli: Cli) -> Result<String> {
    // A command on one URI loads only the plugins up to the one that serves it (cold start);
    // `plugins` and `migrate-snapshots` (two URIs) load every plugin.
    let registry = match &cli.command {
        Command::Plugins(_) | Command::MigrateSnapshots(_) => Registry::from_env()?,
        _ => Registry::from_env_for_uri(cli.connect.clone().unwrap_or_else(default_uri).as_str())?,
    };
    let json = cli.json;
    // virsh refuses an empty option value when the command reads it, after connecting.
    let empty =
        cli.empty_option.map(|name| CliError::msg(format!("Failed to get option '{name}': Option argument is empty")));
    let body = if let Command::Plugins(_) = cli.command {
        plugins::run(&registry, json)?
    } else if let Command::MigrateSnapshots(a) = cli.command {
        if let Some(e) = empty {
            return Err(e);
        }
        // Two connections of its own (--from, --to): -c is not used.
        let mut words = commands::Positional::new("migrate-snapshots", a.args);
        let dom = words.require(a.domain, "domain")?;
        words.done()?;
        commands::migrate::migrate_snapshots(&registry, &dom, &a.from, &a.to, a.dry_run, json)?
    } else {
        let uri = cli.connect.unwrap_or_else(default_uri);
        let conn = Connection::open(&registry, &uri, cli.readonly).map_err(|cause| CliError::Failed {
            what: "failed to connect to the hypervisor".to_owned(),
            cause: name_refused_plugin(&registry, cause),
        })?;
        if let Some(e) = empty {
            return Err(e);
        }
        dispatch(&Ctx { conn, json }, cli.command)?
    };
    Ok(if json { body } else { output::finish(&body) })
}

/// "No connection driver" while a plugin file for that scheme was refused at load: say which
/// file and why, not only in `virtplug plugins`.
fn name_refused_plugin(registry: &Registry, cause: virtplug_host::HostError) -> virtplug_host::HostError {
    use virtplug_host::HostError;
    let HostError::NoConnect { uri } = &cause else { return cause };
    let scheme = uri.split([':', '+']).next().unwrap_or("");
    match registry.refused_for_scheme(scheme) {
        Some(HostError::Load { path, reason }) => {
            HostError::NoConnect { uri: format!("{uri} (plugin {} was refused: {reason})", path.display()) }
        }
        _ => cause,
    }
}

fn dispatch(ctx: &Ctx, command: Command) -> Result<String> {
    match command {
        Command::Plugins(_) => Err(CliError::msg("plugins needs no connection")),
        Command::List(a) => domain::list(ctx, &a),
        Command::Dominfo(a) => domain::dominfo(ctx, a),
        Command::Domstate(a) => domain::domstate(ctx, a),
        Command::Domblklist(a) => devices::domblklist(ctx, a),
        Command::Domiflist(a) => devices::domiflist(ctx, a),
        Command::Domname(a) => domain::convert(ctx, domain::Convert::Name, a),
        Command::Domid(a) => domain::convert(ctx, domain::Convert::Id, a),
        Command::Domuuid(a) => domain::convert(ctx, domain::Convert::Uuid, a),
        Command::Dumpxml(a) => domain::dumpxml(ctx, a),
        Command::Define(a) => domain::define(ctx, a),
        Command::Undefine(a) => domain::undefine(ctx, a),
        Command::Start(a) => domain::lifecycle(ctx, "start", a),
        Command::Shutdown(a) => domain::lifecycle(ctx, "shutdown", a),
        Command::Destroy(a) => domain::lifecycle(ctx, "destroy", a),
        Command::Suspend(a) => domain::lifecycle(ctx, "suspend", a),
        Command::Resume(a) => domain::lifecycle(ctx, "resume", a),
        Command::SnapshotCreate(a) => snapshot::create(ctx, a),
        Command::SnapshotCreateAs(a) => snapshot::create_as(ctx, a),
        Command::SnapshotCurrent(a) => snapshot::current(ctx, a),
        Command::SnapshotDelete(a) => snapshot::delete(ctx, a),
        Command::SnapshotDumpxml(a) => snapshot::dumpxml(ctx, a),
        Command::SnapshotEdit(a) => edit::run(ctx, a),
        Command::SnapshotInfo(a) => snapshot::info(ctx, a),
        Command::SnapshotList(a) => snapshot_list::run(ctx, a),
        Command::SnapshotParent(a) => snapshot::parent(ctx, a),
        Command::SnapshotRevert(a) => snapshot::revert(ctx, a),
        Command::SnapshotExport(a) => bundle::export(ctx, a),
        Command::SnapshotImport(a) => bundle::import(ctx, a),
        Command::MigrateSnapshots(_) => Err(CliError::msg("migrate-snapshots opens its own connections")),
    }
}
