//! Command-line definitions (clap derive): virsh's command names, options and help texts.
//!
//! Like virsh, a string option may also be given positionally: the words that are not
//! options fill the command's string options in declaration order, skipping those given by
//! name (`snapshot-revert test s1` = `snapshot-revert --domain test --snapshotname s1`).
//! The `virtplug` binary applies virsh's grammar first ([`crate::argv`]), which names every
//! option before clap parses; each command still collects positional words in `args` (argv
//! parsed by clap directly, as in tests), and [`crate::commands::Positional`] assigns them.

use clap::{Args, Parser, Subcommand};

/// String options a bare word never fills (virsh's `VSH_OFLAG_REQ_OPT`), by command. Options
/// clap requires (`--from`/`--to` of `migrate-snapshots`) are named-only too.
pub const NAMED_ONLY: &[(&str, &str)] = &[
    ("snapshot-create-as", "memspec"),
    ("snapshot-import", "libvirt-dir"),
    ("dumpxml", "xpath"),
    ("snapshot-dumpxml", "xpath"),
];

/// Whether virsh requires the option before the command runs (`VSH_OFLAG_REQ`): the domain of
/// every command that has one, `define`'s file and `snapshot-dumpxml`'s snapshot name.
pub fn is_required(command: &str, option: &str) -> bool {
    matches!((command, option), (_, "domain") | ("define", "file") | ("snapshot-dumpxml", "snapshotname"))
}

/// virtplug: manage hypervisor domains and their snapshots through driver plugins, with
/// virsh's commands and output.
#[derive(Debug, Parser)]
#[command(name = "virtplug", version, disable_help_subcommand = true)]
#[command(after_help = "\
Connection URI: -c/--connect, else $VIRTPLUG_DEFAULT_URI, else mock:///default.
JSON: --json (before or after the command) prints the result of a read command as JSON:
  plugins, list, dominfo, domstate, domname, domid, domuuid, dumpxml, domblklist, domiflist,
  snapshot-current, snapshot-dumpxml, snapshot-info, snapshot-list, snapshot-parent.
  Other commands refuse it.
Errors: `error: <message>` lines on stderr and exit status 1, as virsh; a command that ran
  also ends with virsh's empty line on stdout. A closed stdout ends a command quietly.")]
pub struct Cli {
    /// hypervisor connection URI
    #[arg(short = 'c', long = "connect", value_name = "URI", global = true)]
    pub connect: Option<String>,
    /// connect readonly
    #[arg(short = 'r', long = "readonly", global = true)]
    pub readonly: bool,
    /// print the result of a read command as JSON
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// An option given an empty value (see [`crate::argv::Parsed::Run`]): refused once
    /// connected, as virsh does when the command reads it.
    #[arg(skip)]
    pub empty_option: Option<String>,
}

/// Every command. Each command's options are declared only when it is the one parsed or asked
/// for help (`defer`): declaring all of them cost every start about a quarter of a millisecond.
/// The option structs below therefore carry plain comments, not doc comments: clap applies a
/// struct's doc comment as `about` when the deferred part runs, after the variant's own, and
/// it would replace the command's description in its help.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// list the loaded plugins, their schemes, operations and accepted flags, and refused files
    Plugins(Plugins),
    /// list domains
    List(List),
    /// domain information
    Dominfo(DomOnly),
    /// domain state
    Domstate(Domstate),
    /// convert a domain id or UUID to domain name
    Domname(DomOnly),
    /// convert a domain name or UUID to domain id
    Domid(DomOnly),
    /// convert a domain name or id to domain UUID
    Domuuid(DomOnly),
    /// domain information in XML
    Dumpxml(Dumpxml),
    /// list all domain blocks
    Domblklist(Domblklist),
    /// list all domain virtual interfaces
    Domiflist(Domiflist),
    /// define (but don't start) a domain from an XML file
    Define(Define),
    /// undefine a domain
    Undefine(Undefine),
    /// start a (previously defined) inactive domain
    Start(DomOnly),
    /// gracefully shutdown a domain
    Shutdown(DomOnly),
    /// destroy (stop) a domain
    Destroy(DomOnly),
    /// suspend a domain
    Suspend(DomOnly),
    /// resume a domain
    Resume(DomOnly),
    /// Create a snapshot from XML
    SnapshotCreate(SnapshotCreate),
    /// Create a snapshot from a set of args
    SnapshotCreateAs(SnapshotCreateAs),
    /// Get or set the current snapshot
    SnapshotCurrent(SnapshotCurrent),
    /// Delete a domain snapshot
    SnapshotDelete(SnapshotDelete),
    /// Dump XML for a domain snapshot
    SnapshotDumpxml(SnapshotDumpxml),
    /// edit XML for a snapshot
    SnapshotEdit(SnapshotEdit),
    /// snapshot information
    SnapshotInfo(SnapshotTarget),
    /// List snapshots for a domain
    SnapshotList(SnapshotList),
    /// Get the name of the parent of a snapshot
    SnapshotParent(SnapshotTarget),
    /// Revert a domain to a snapshot
    SnapshotRevert(SnapshotRevert),
    /// Export a domain's snapshot hierarchy as a checksummed bundle (virtplug)
    SnapshotExport(SnapshotExport),
    /// Redefine a whole snapshot hierarchy from a bundle in one transaction (virtplug)
    SnapshotImport(SnapshotImport),
    /// Move a domain's snapshot hierarchy to another host, supervised: all or nothing (virtplug)
    MigrateSnapshots(MigrateSnapshots),
}

// `plugins`.
#[derive(Debug, Args)]
pub struct Plugins {}

// `list`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug list [--all] [--name]")]
pub struct List {
    /// list inactive domains
    #[arg(long)]
    pub inactive: bool,
    /// list inactive & active domains
    #[arg(long)]
    pub all: bool,
    /// list transient domains
    #[arg(long)]
    pub transient: bool,
    /// list persistent domains
    #[arg(long)]
    pub persistent: bool,
    /// list domains with existing snapshot
    #[arg(long)]
    pub with_snapshot: bool,
    /// list domains without a snapshot
    #[arg(long)]
    pub without_snapshot: bool,
    /// list domains with existing checkpoint
    #[arg(long)]
    pub with_checkpoint: bool,
    /// list domains without a checkpoint
    #[arg(long)]
    pub without_checkpoint: bool,
    /// list domains in running state
    #[arg(long)]
    pub state_running: bool,
    /// list domains in paused state
    #[arg(long)]
    pub state_paused: bool,
    /// list domains in shutoff state
    #[arg(long)]
    pub state_shutoff: bool,
    /// list domains in other states
    #[arg(long)]
    pub state_other: bool,
    /// list domains with autostart enabled
    #[arg(long)]
    pub autostart: bool,
    /// list domains with autostart disabled
    #[arg(long)]
    pub no_autostart: bool,
    /// list domains with managed save state
    #[arg(long)]
    pub with_managed_save: bool,
    /// list domains without managed save
    #[arg(long)]
    pub without_managed_save: bool,
    /// list uuid's only
    #[arg(long)]
    pub uuid: bool,
    /// list domain names only
    #[arg(long)]
    pub name: bool,
    /// list domain IDs only
    #[arg(long)]
    pub id: bool,
    /// list table (default)
    #[arg(long)]
    pub table: bool,
    /// mark inactive domains with managed save state
    #[arg(long)]
    pub managed_save: bool,
    /// show domain title
    #[arg(long)]
    pub title: bool,
}

// Commands whose only argument is the domain.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug <command> [--domain] <string>")]
pub struct DomOnly {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `domstate`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug domstate [--domain] <string> [--reason]")]
pub struct Domstate {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// also print reason for the state
    #[arg(long)]
    pub reason: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `domblklist`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug domblklist [--domain] <string> [--inactive] [--details]")]
pub struct Domblklist {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// get inactive rather than running configuration
    #[arg(long)]
    pub inactive: bool,
    /// additionally display the type and device value
    #[arg(long)]
    pub details: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `domiflist`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug domiflist [--domain] <string> [--inactive]")]
pub struct Domiflist {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// get inactive rather than running configuration
    #[arg(long)]
    pub inactive: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `dumpxml`.
#[derive(Debug, Args)]
#[command(
    override_usage = "virtplug dumpxml [--domain] <string> [--inactive] [--security-info] [--update-cpu] [--migratable] [--xpath <string>] [--wrap]"
)]
pub struct Dumpxml {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// show inactive defined XML
    #[arg(long)]
    pub inactive: bool,
    /// include security sensitive information in XML dump
    #[arg(long)]
    pub security_info: bool,
    /// update guest CPU according to host CPU
    #[arg(long)]
    pub update_cpu: bool,
    /// provide XML suitable for migrations
    #[arg(long)]
    pub migratable: bool,
    /// xpath expression to filter the XML document
    #[arg(long, value_name = "string")]
    pub xpath: Option<String>,
    /// wrap xpath results in an common root element
    #[arg(long)]
    pub wrap: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `define`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug define [--file] <string>")]
pub struct Define {
    /// file containing an XML domain description
    #[arg(long, value_name = "string")]
    pub file: Option<String>,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `undefine`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug undefine [--domain] <string> [--managed-save] [--snapshots-metadata] \
[--checkpoints-metadata] [--nvram] [--keep-nvram] [--tpm] [--keep-tpm]")]
pub struct Undefine {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// remove domain managed state file
    #[arg(long)]
    pub managed_save: bool,
    /// remove all domain snapshot metadata (vm must be inactive)
    #[arg(long)]
    pub snapshots_metadata: bool,
    /// remove all domain checkpoint metadata (vm must be inactive)
    #[arg(long)]
    pub checkpoints_metadata: bool,
    /// remove nvram file
    #[arg(long)]
    pub nvram: bool,
    /// keep nvram file
    #[arg(long)]
    pub keep_nvram: bool,
    /// remove TPM state
    #[arg(long)]
    pub tpm: bool,
    /// keep TPM state
    #[arg(long)]
    pub keep_tpm: bool,
    /// remove associated storage volumes (comma separated list of targets or source paths)
    #[arg(long, value_name = "string")]
    pub storage: Option<String>,
    /// remove all associated storage volumes (use with caution)
    #[arg(long)]
    pub remove_all_storage: bool,
    /// delete snapshots associated with volume(s)
    #[arg(long)]
    pub delete_storage_volume_snapshots: bool,
    /// wipe data on the removed volumes
    #[arg(long)]
    pub wipe_storage: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// The flags shared by `snapshot-create` and `snapshot-create-as`.
#[derive(Debug, Args)]
pub struct CreateFlags {
    /// take snapshot but create no metadata
    #[arg(long)]
    pub no_metadata: bool,
    /// halt domain after snapshot is created
    #[arg(long)]
    pub halt: bool,
    /// capture disk state but not vm state
    #[arg(long)]
    pub disk_only: bool,
    /// reuse any existing external files
    #[arg(long)]
    pub reuse_external: bool,
    /// quiesce guest's file systems
    #[arg(long)]
    pub quiesce: bool,
    /// require atomic operation
    #[arg(long)]
    pub atomic: bool,
    /// take a live snapshot
    #[arg(long)]
    pub live: bool,
    /// validate the XML against the schema
    #[arg(long)]
    pub validate: bool,
}

// `snapshot-create`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug snapshot-create [--domain] <string> [--xmlfile <string>] [--redefine] \
[--current] [--no-metadata] [--halt] [--disk-only] [--reuse-external] [--quiesce] [--atomic] [--live] [--validate]")]
pub struct SnapshotCreate {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// domain snapshot XML
    #[arg(long, value_name = "string")]
    pub xmlfile: Option<String>,
    /// redefine metadata for existing snapshot
    #[arg(long)]
    pub redefine: bool,
    /// with redefine, set current snapshot
    #[arg(long)]
    pub current: bool,
    #[command(flatten)]
    pub flags: CreateFlags,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-create-as`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug snapshot-create-as [--domain] <string> [--name <string>] \
[--description <string>] [--print-xml] [--no-metadata] [--halt] [--disk-only] [--reuse-external] \
[--quiesce] [--atomic] [--live] [--validate] [--memspec <string>] [[--diskspec] <string>]...")]
pub struct SnapshotCreateAs {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// name of snapshot
    #[arg(long, value_name = "string")]
    pub name: Option<String>,
    /// description of snapshot
    #[arg(long, value_name = "string")]
    pub description: Option<String>,
    /// print XML document rather than create
    #[arg(long)]
    pub print_xml: bool,
    #[command(flatten)]
    pub flags: CreateFlags,
    /// memory attributes: [file=]name[,snapshot=type]
    #[arg(long, value_name = "string")]
    pub memspec: Option<String>,
    /// disk attributes: disk[,snapshot=type][,driver=type][,stype=type][,file=name]
    #[arg(long, value_name = "string")]
    pub diskspec: Vec<String>,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-current`.
#[derive(Debug, Args)]
#[command(
    override_usage = "virtplug snapshot-current [--domain] <string> [--name] [--security-info] [--snapshotname <string>]"
)]
pub struct SnapshotCurrent {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// list the name, rather than the full xml
    #[arg(long)]
    pub name: bool,
    /// include security sensitive information in XML dump
    #[arg(long)]
    pub security_info: bool,
    /// name of existing snapshot to make current
    #[arg(long, value_name = "string")]
    pub snapshotname: Option<String>,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-delete`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug snapshot-delete [--domain] <string> [--snapshotname <string>] [--current] \
[--children] [--children-only] [--metadata]")]
pub struct SnapshotDelete {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// snapshot name
    #[arg(long, value_name = "string")]
    pub snapshotname: Option<String>,
    /// delete current snapshot
    #[arg(long)]
    pub current: bool,
    /// delete snapshot and all children
    #[arg(long)]
    pub children: bool,
    /// delete children but not snapshot
    #[arg(long)]
    pub children_only: bool,
    /// delete only libvirt metadata, leaving snapshot contents behind
    #[arg(long)]
    pub metadata: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-dumpxml`.
#[derive(Debug, Args)]
#[command(
    override_usage = "virtplug snapshot-dumpxml [--domain] <string> [--snapshotname] <string> [--security-info] [--xpath <string>] [--wrap]"
)]
pub struct SnapshotDumpxml {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// snapshot name
    #[arg(long, value_name = "string")]
    pub snapshotname: Option<String>,
    /// include security sensitive information in XML dump
    #[arg(long)]
    pub security_info: bool,
    /// xpath expression to filter the XML document
    #[arg(long, value_name = "string")]
    pub xpath: Option<String>,
    /// wrap xpath results in an common root element
    #[arg(long)]
    pub wrap: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-edit`.
#[derive(Debug, Args)]
#[command(
    override_usage = "virtplug snapshot-edit [--domain] <string> [--snapshotname <string>] [--current] [--rename] [--clone]"
)]
pub struct SnapshotEdit {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// snapshot name
    #[arg(long, value_name = "string")]
    pub snapshotname: Option<String>,
    /// also set edited snapshot as current
    #[arg(long)]
    pub current: bool,
    /// allow renaming an existing snapshot
    #[arg(long)]
    pub rename: bool,
    /// allow cloning to new name
    #[arg(long)]
    pub clone: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-info` and `snapshot-parent`: one snapshot, by name or `--current`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug <command> [--domain] <string> [--snapshotname <string>] [--current]")]
pub struct SnapshotTarget {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// snapshot name
    #[arg(long, value_name = "string")]
    pub snapshotname: Option<String>,
    /// use the current snapshot
    #[arg(long)]
    pub current: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-list`.
#[derive(Debug, Args, Default)]
#[command(override_usage = "virtplug snapshot-list [--domain] <string> [--parent] [--roots] [--leaves] \
[--no-leaves] [--metadata] [--no-metadata] [--inactive] [--active] [--disk-only] [--internal] \
[--external] [--tree] [--from <string>] [--current] [--descendants] [--name] [--topological]")]
pub struct SnapshotList {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// add a column showing parent snapshot
    #[arg(long)]
    pub parent: bool,
    /// list only snapshots without parents
    #[arg(long)]
    pub roots: bool,
    /// list only snapshots without children
    #[arg(long)]
    pub leaves: bool,
    /// list only snapshots that are not leaves (with children)
    #[arg(long)]
    pub no_leaves: bool,
    /// list only snapshots that have metadata that would prevent undefine
    #[arg(long)]
    pub metadata: bool,
    /// list only snapshots that have no metadata managed by libvirt
    #[arg(long)]
    pub no_metadata: bool,
    /// filter by snapshots taken while inactive
    #[arg(long)]
    pub inactive: bool,
    /// filter by snapshots taken while active (full system snapshots)
    #[arg(long)]
    pub active: bool,
    /// filter by disk-only snapshots
    #[arg(long)]
    pub disk_only: bool,
    /// filter by internal snapshots
    #[arg(long)]
    pub internal: bool,
    /// filter by external snapshots
    #[arg(long)]
    pub external: bool,
    /// list snapshots in a tree
    #[arg(long)]
    pub tree: bool,
    /// limit list to children of given snapshot
    #[arg(long, value_name = "string")]
    pub from: Option<String>,
    /// limit list to children of current snapshot
    #[arg(long)]
    pub current: bool,
    /// with --from, list all descendants
    #[arg(long)]
    pub descendants: bool,
    /// list snapshot names only
    #[arg(long)]
    pub name: bool,
    /// sort list topologically rather than by name
    #[arg(long)]
    pub topological: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-revert`.
#[derive(Debug, Args)]
#[command(override_usage = "virtplug snapshot-revert [--domain] <string> [--snapshotname <string>] [--current] \
[--running] [--paused] [--force] [--reset-nvram]")]
pub struct SnapshotRevert {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// snapshot name
    #[arg(long, value_name = "string")]
    pub snapshotname: Option<String>,
    /// revert to current snapshot
    #[arg(long)]
    pub current: bool,
    /// after reverting, change state to running
    #[arg(long)]
    pub running: bool,
    /// after reverting, change state to paused
    #[arg(long)]
    pub paused: bool,
    /// try harder on risky reverts
    #[arg(long)]
    pub force: bool,
    /// re-initialize NVRAM from its pristine template
    #[arg(long)]
    pub reset_nvram: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-export` (virtplug only).
#[derive(Debug, Args)]
#[command(override_usage = "virtplug snapshot-export [--domain] <string> [--file <string>]")]
pub struct SnapshotExport {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// write the bundle to this file instead of stdout (it holds secure XML)
    #[arg(long, value_name = "string")]
    pub file: Option<String>,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `snapshot-import` (virtplug only).
#[derive(Debug, Args)]
#[command(
    override_usage = "virtplug snapshot-import [--domain] <string> {[--bundle] <string> | --libvirt-dir <string>} [--dry-run]"
)]
pub struct SnapshotImport {
    /// domain name, id or uuid
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// bundle file written by snapshot-export
    #[arg(long, value_name = "string")]
    pub bundle: Option<String>,
    /// import libvirt's snapshot metadata directory (/var/lib/libvirt/qemu/snapshot/<domain>)
    #[arg(long, value_name = "string")]
    pub libvirt_dir: Option<String>,
    /// check everything against this host and change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}

// `migrate-snapshots` (virtplug only).
#[derive(Debug, Args)]
#[command(
    override_usage = "virtplug migrate-snapshots [--domain] <string> --from <uri> --to <uri> [--dry-run] [--json]"
)]
pub struct MigrateSnapshots {
    /// domain name
    #[arg(long, value_name = "string")]
    pub domain: Option<String>,
    /// source URI (a daemon URI such as mock+unix:///default?socket=PATH runs it as a task there)
    #[arg(long, value_name = "uri")]
    pub from: String,
    /// destination URI
    #[arg(long, value_name = "uri")]
    pub to: String,
    /// check everything on the destination and change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(hide = true)]
    pub args: Vec<String>,
}
