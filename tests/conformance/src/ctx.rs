//! The context a case runs in (one child process): the loaded plugin, a read-write connection,
//! the domain under test, and helpers that keep cases short.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use virtplug_host::{Connection, HostError, LoadedPlugin, PluginInfo, Registry, SnapshotInfo, codes, load_plugin};
use virtplug_plugin_api::{
    AbiError, Capabilities, DriverBox,
    abi_stable::std_types::{RResult, RStr},
    flags::{ops, snapshot_create, snapshot_delete, snapshot_list},
};

use crate::case::{Failure, FlagNeed};

/// Every resource the suite creates starts with this; only those are ever cleaned up.
pub const PREFIX: &str = "vpconf-";

/// Options shared by the parent and every child.
#[derive(Debug, Clone)]
pub struct Options {
    /// The plugin file.
    pub plugin: PathBuf,
    /// The URI to open.
    pub uri: String,
    /// The domain the behavioural cases use.
    pub domain: String,
    /// The URI is a real host: never change the state of a domain the suite did not define.
    pub live: bool,
    /// The author's `--probe` command: run as `CMD <uri> <domain> <snapshot>`, it prints
    /// `present` or `absent` (whether the hypervisor still holds that snapshot's payload).
    pub probe: Option<String>,
}

/// One case's world.
pub struct Ctx {
    /// Options.
    pub opts: Options,
    /// The registry holding the one plugin under test.
    pub registry: Registry,
    /// A read-write connection.
    pub conn: Connection,
    /// `info()` as read at load.
    pub info: PluginInfo,
    /// How long loading took.
    pub load_time: Duration,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("opts", &self.opts).finish_non_exhaustive()
    }
}

/// Why the suite could not run at all (exit code 2).
#[derive(Debug, Clone)]
pub struct CannotRun(pub String);

impl Ctx {
    /// Loads the plugin and opens the URI. Errors are one line.
    pub fn open(opts: &Options) -> Result<Self, CannotRun> {
        let t = Instant::now();
        let plugin: LoadedPlugin = load_plugin(&opts.plugin).map_err(|e| CannotRun(e.to_string()))?;
        let load_time = t.elapsed();
        let info = plugin.info.clone();
        let scheme = opts.uri.split([':', '+']).next().unwrap_or("");
        if !info.schemes.iter().any(|s| s.as_str() == scheme) {
            let served: Vec<&str> = info.schemes.iter().map(|s| s.as_str()).collect();
            return Err(CannotRun(format!(
                "plugin {} does not serve the URI scheme '{scheme}' of {} (it serves: {})",
                opts.plugin.display(),
                opts.uri,
                served.join(", ")
            )));
        }
        let mut registry = Registry::default();
        registry.add(plugin);
        let conn = Connection::open(&registry, &opts.uri, false)
            .map_err(|e| CannotRun(format!("cannot open {}: {e}", opts.uri)))?;
        if conn.raw_driver().is_none() {
            return Err(CannotRun(format!("{} is not served by the plugin in this process (a remote URI?)", opts.uri)));
        }
        Ok(Self { opts: opts.clone(), registry, conn, info, load_time })
    }

    /// The plugin file.
    pub fn plugin_path(&self) -> &Path {
        &self.opts.plugin
    }

    /// The raw driver (no host checks).
    pub fn raw(&self) -> &DriverBox {
        // Checked in `Ctx::open`: the connection is served by the plugin in this process.
        self.conn.raw_driver().unwrap_or_else(|| unreachable!("a local connection has a driver"))
    }

    /// The domain under test.
    pub fn dom(&self) -> &str {
        &self.opts.domain
    }

    /// Whether an operation is declared.
    pub fn has_op(&self, op: u64) -> bool {
        self.info.ops & op != 0
    }

    /// Whether a flag is declared.
    pub fn has_flag(&self, f: FlagNeed) -> bool {
        (f.mask)(&self.info.caps) & f.bit != 0
    }

    /// Opens another connection (read-only or not) to the same URI.
    pub fn connect(&self, read_only: bool) -> Result<Connection, Failure> {
        Connection::open(&self.registry, &self.opts.uri, read_only)
            .map_err(|e| Failure::msg(format!("cannot open a second connection: {e}")))
    }

    /// Every snapshot of `dom` as listed with flags 0.
    pub fn list(&self, dom: &str) -> Result<Vec<SnapshotInfo>, Failure> {
        self.conn.snapshot_list(dom, 0).map_err(|e| op_failed("snapshot_list", &e))
    }

    /// Names of our snapshots, as `list` with `flags` returns them, in the returned order.
    pub fn list_ours(&self, flags: u32) -> Result<Vec<String>, Failure> {
        let l = self.conn.snapshot_list(self.dom(), flags).map_err(|e| op_failed("snapshot_list", &e))?;
        Ok(l.into_iter().map(|s| s.name).filter(|n| n.starts_with(PREFIX)).collect())
    }

    /// Creates `name` with flags 0 (parent = current, becomes current).
    pub fn create(&self, name: &str) -> Result<(), Failure> {
        self.create_on(self.dom(), name, 0).map(drop)
    }

    /// Creates `name` on `dom` with `flags`; returns the name the plugin reports.
    pub fn create_on(&self, dom: &str, name: &str, flags: u32) -> Result<String, Failure> {
        let xml = format!(
            "<domainsnapshot><name>{name}</name><description>virtplug conformance</description></domainsnapshot>"
        );
        self.conn.snapshot_create(dom, &xml, flags).map_err(|e| op_failed(&format!("snapshot_create {name}"), &e))
    }

    /// Looks a snapshot up.
    pub fn lookup(&self, name: &str) -> Result<SnapshotInfo, Failure> {
        self.conn.snapshot_lookup(self.dom(), name).map_err(|e| op_failed(&format!("snapshot_lookup {name}"), &e))
    }

    /// The current snapshot's name.
    pub fn current(&self) -> Result<Option<String>, Failure> {
        Ok(self.conn.snapshot_current(self.dom()).map_err(|e| op_failed("snapshot_current", &e))?.map(|s| s.name))
    }

    /// The parent of `name` as the plugin reports it (lookup, or the listing).
    pub fn parent_of(&self, name: &str) -> Result<Option<String>, Failure> {
        if self.has_op(ops::SNAPSHOT_LOOKUP) {
            return Ok(self.lookup(name)?.parent);
        }
        let all = self.list(self.dom())?;
        all.into_iter()
            .find(|s| s.name == name)
            .map(|s| s.parent)
            .ok_or_else(|| Failure::new(format!("snapshot {name} is not listed"), format!("{name} listed"), "absent"))
    }

    /// Whether `name` exists (lookup, or the listing).
    pub fn exists(&self, name: &str) -> Result<bool, Failure> {
        if self.has_op(ops::SNAPSHOT_LOOKUP) {
            return match self.conn.snapshot_lookup(self.dom(), name) {
                Ok(_) => Ok(true),
                Err(e) if e.code() == codes::NO_DOMAIN_SNAPSHOT => Ok(false),
                Err(e) => Err(op_failed(&format!("snapshot_lookup {name}"), &e)),
            };
        }
        Ok(self.list(self.dom())?.iter().any(|s| s.name == name))
    }

    /// Makes `name` current: a redefine with CURRENT of its own XML when declared, else a revert.
    pub fn make_current(&self, name: &str) -> Result<(), Failure> {
        if self.has_flag(CREATE_REDEFINE) && self.has_flag(CREATE_CURRENT) && self.has_op(ops::SNAPSHOT_XML) {
            let xml =
                self.conn.snapshot_xml(self.dom(), name, self.secure()).map_err(|e| op_failed("snapshot_xml", &e))?;
            self.conn
                .snapshot_create(self.dom(), &xml, snapshot_create::REDEFINE | snapshot_create::CURRENT)
                .map_err(|e| op_failed("snapshot_create REDEFINE|CURRENT", &e))?;
            return Ok(());
        }
        if self.has_op(ops::SNAPSHOT_REVERT) && !self.opts.live {
            return self.conn.snapshot_revert(self.dom(), name, 0).map_err(|e| op_failed("snapshot_revert", &e));
        }
        Err(Failure::msg(
            "cannot make a snapshot current: needs REDEFINE|CURRENT with snapshot_xml, or snapshot_revert",
        ))
    }

    /// `SECURE` when declared, else 0.
    pub fn secure(&self) -> u32 {
        self.info.caps.snapshot_xml & virtplug_plugin_api::flags::snapshot_xml::SECURE
    }

    /// Asks the `--probe` hook whether the hypervisor still holds the payload of `snap` (the
    /// domain under test): `true` for `present`, `false` for `absent`, a failure for anything
    /// else (another answer, a non-zero exit, no hook).
    pub fn probe(&self, snap: &str) -> Result<bool, Failure> {
        let Some(cmd) = &self.opts.probe else { return Err(Failure::msg("no --probe hook was given")) };
        crate::trace::note(&format!("the --probe hook for {snap}"));
        // `sh -c 'CMD "$@"'`: the author's command may carry its own arguments ("python3 p.py").
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{cmd} \"$@\""))
            .arg("sh")
            .args([self.opts.uri.as_str(), self.dom(), snap])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Failure::msg(format!("cannot run the --probe hook '{cmd}': {e}")))?;
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        match (out.status.success(), answer.as_str()) {
            (true, "present") => Ok(true),
            (true, "absent") => Ok(false),
            _ => Err(Failure::new(
                format!("the --probe hook gave no answer for {snap}"),
                "`present` or `absent` on stdout, exit code 0",
                format!(
                    "{answer:?}, {}; stderr: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).lines().next().unwrap_or("")
                ),
            )),
        }
    }

    /// Deletes every snapshot of `dom` whose name starts with [`PREFIX`], leaves first; never
    /// touches anything else. Best effort: errors are returned, not hidden.
    pub fn cleanup_on(&self, dom: &str) -> Result<(), Failure> {
        if !self.has_op(ops::SNAPSHOT_LIST) || !self.has_op(ops::SNAPSHOT_DELETE) {
            return Ok(());
        }
        let all = match self.conn.snapshot_list(dom, 0) {
            Ok(l) => l,
            Err(e) if e.code() == codes::NO_DOMAIN => return Ok(()),
            Err(e) => return Err(op_failed("snapshot_list (cleanup)", &e)),
        };
        // Children before parents, so no reparenting moves one of ours under someone else's.
        let mut ours: Vec<SnapshotInfo> = all.into_iter().filter(|s| s.name.starts_with(PREFIX)).collect();
        let depth = |s: &SnapshotInfo, all: &[SnapshotInfo]| {
            let mut d = 0;
            let mut p = s.parent.clone();
            while let Some(name) = p {
                d += 1;
                p = all.iter().find(|x| x.name == name).and_then(|x| x.parent.clone());
                if d > all.len() {
                    break;
                }
            }
            d
        };
        let snapshot = ours.clone();
        ours.sort_by_key(|s| std::cmp::Reverse(depth(s, &snapshot)));
        // A real delete, so that nothing of ours stays in the hypervisor (a qcow2 tag would make a
        // later create of the same name fail); metadata only when the real delete is refused.
        let metadata_only = self.info.caps.snapshot_delete & snapshot_delete::METADATA_ONLY;
        for s in ours {
            let deleted = self.conn.snapshot_delete(dom, &s.name, 0).or_else(|e| {
                // Without metadata of the plugin's own, METADATA_ONLY is a no-op (esx) that would
                // report success and leave the snapshot behind.
                if metadata_only != 0 && s.has_metadata && e.code() != codes::NO_DOMAIN_SNAPSHOT {
                    self.conn.snapshot_delete(dom, &s.name, metadata_only)
                } else {
                    Err(e)
                }
            });
            match deleted {
                Ok(()) => {}
                Err(e) if e.code() == codes::NO_DOMAIN_SNAPSHOT => {}
                Err(e) => return Err(op_failed(&format!("snapshot_delete {} (cleanup)", s.name), &e)),
            }
        }
        Ok(())
    }

    /// [`Ctx::cleanup_on`] the domain under test.
    pub fn cleanup(&self) -> Result<(), Failure> {
        self.cleanup_on(self.dom())
    }

    /// Restores `current` to `name` when it changed (so cases leave a foreign current alone).
    pub fn restore_current(&self, before: &Option<String>) -> Result<(), Failure> {
        if let Some(name) = before
            && !name.starts_with(PREFIX)
            && self.current()?.as_ref() != Some(name)
            && self.exists(name)?
        {
            self.make_current(name)?;
        }
        Ok(())
    }
}

/// Who keeps a plugin's snapshot metadata (libvirt-snapshot-semantics.md §4.3): libvirt itself
/// (qemu, test: `HasMetadata` 1) or the hypervisor (esx, vbox: `HasMetadata` 0, `NO_METADATA`
/// trivially true, list `METADATA` → nothing, `DELETE_METADATA_ONLY` a no-op).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataModel {
    /// The plugin keeps metadata of its own beside the hypervisor's snapshot (libvirt's qemu and
    /// test drivers): every snapshot it creates reports `has_metadata`.
    Plugin,
    /// The hypervisor keeps the only record (libvirt's esx and vbox drivers): no snapshot reports
    /// `has_metadata`, and there is nothing of the plugin's own to drop or redefine.
    Hypervisor,
}

impl MetadataModel {
    /// A phrase for notes and messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Plugin => "the plugin keeps snapshot metadata (libvirt qemu/test model)",
            Self::Hypervisor => "the hypervisor keeps the snapshot metadata (libvirt esx/vbox model)",
        }
    }
}

impl Ctx {
    /// The metadata model, decided from what the plugin reports for `sample` — a snapshot the
    /// suite created (without NO_METADATA) — and cross-checked against the declared masks: snapshots
    /// without metadata leave nothing for REDEFINE to recreate, so a plugin whose snapshots
    /// carry none must not declare it (esx declares `NO_METADATA` without `REDEFINE`).
    pub fn metadata_model(&self, sample: &str) -> Result<MetadataModel, Failure> {
        let has = if self.has_op(ops::SNAPSHOT_LOOKUP) {
            let by_lookup = self.lookup(sample)?.has_metadata;
            if self.has_op(ops::SNAPSHOT_LIST) {
                let listed = self.list(self.dom())?.into_iter().find(|s| s.name == sample).map(|s| s.has_metadata);
                if listed != Some(by_lookup) {
                    return Err(Failure::new(
                        format!("has_metadata of {sample}: lookup and listing disagree"),
                        format!("listed with has_metadata = {by_lookup}, as the lookup says"),
                        format!("{listed:?}"),
                    ));
                }
            }
            by_lookup
        } else {
            self.list(self.dom())?.into_iter().find(|s| s.name == sample).map(|s| s.has_metadata).ok_or_else(|| {
                Failure::new(format!("snapshot {sample} is not listed"), format!("{sample} listed"), "absent")
            })?
        };
        if has {
            return Ok(MetadataModel::Plugin);
        }
        if self.has_flag(CREATE_REDEFINE) {
            return Err(Failure::new(
                "a snapshot the suite created reports no metadata, yet snapshot_create declares REDEFINE",
                "has_metadata true (the plugin keeps metadata it can redefine), or REDEFINE not declared (the hypervisor keeps it, as esx)",
                format!("{sample}: has_metadata false; snapshot_create mask 0x{:x}", self.info.caps.snapshot_create),
            ));
        }
        Ok(MetadataModel::Hypervisor)
    }
}

/// A host call that should have worked.
pub fn op_failed(what: &str, e: &HostError) -> Failure {
    let panicked = e.code() == codes::INTERNAL_ERROR && e.to_string().contains("panicked in");
    let poisoned = e.to_string().contains("poisoned");
    let message = if panicked {
        format!("the plugin panicked during {what}")
    } else if poisoned {
        format!("the connection is poisoned by an earlier panic ({what})")
    } else {
        format!("{what} failed")
    };
    Failure::new(message, "success", describe_host(e))
}

/// `CODE_NAME (n): message`.
pub fn describe_host(e: &HostError) -> String {
    format!("{} ({}): {e}", codes::name(e.code()), e.code())
}

/// `CODE_NAME (n): message` for an ABI error.
pub fn describe_abi(e: &AbiError) -> String {
    format!("{} ({}): {}", codes::name(e.code), e.code, e.message)
}

/// Converts a raw driver result.
pub fn raw<T>(r: RResult<T, AbiError>) -> Result<T, AbiError> {
    r.into_result()
}

/// `RStr` from `&str`.
pub fn s(v: &str) -> RStr<'_> {
    RStr::from_str(v)
}

/// Asserts a host error with `code` and the exact `text`.
pub fn expect_error<T: std::fmt::Debug>(
    what: &str,
    r: Result<T, HostError>,
    code: u32,
    text: &str,
) -> Result<(), Failure> {
    let expected = format!("{} ({code}): {text}", codes::name(code));
    match r {
        Ok(v) => Err(Failure::new(format!("{what} succeeded"), expected, format!("success: {v:?}"))),
        Err(e) if e.code() == code && e.to_string() == text => Ok(()),
        Err(e) => Err(Failure::new(format!("{what}: wrong error"), expected, describe_host(&e))),
    }
}

/// Compares two values.
pub fn check_eq<T: PartialEq + std::fmt::Debug>(what: &str, expected: T, got: T) -> Result<(), Failure> {
    if expected == got { Ok(()) } else { Err(Failure::new(what, format!("{expected:?}"), format!("{got:?}"))) }
}

macro_rules! flag_need {
    ($name:ident, $op:literal, $module:ident, $bit:ident, $field:ident) => {
        /// A flag need.
        pub const $name: FlagNeed = FlagNeed {
            op: $op,
            bit: virtplug_plugin_api::flags::$module::$bit,
            name: concat!(stringify!($bit)),
            mask: |c: &Capabilities| c.$field,
        };
    };
}

flag_need!(CREATE_REDEFINE, "snapshot_create", snapshot_create, REDEFINE, snapshot_create);
flag_need!(CREATE_CURRENT, "snapshot_create", snapshot_create, CURRENT, snapshot_create);
flag_need!(CREATE_NO_METADATA, "snapshot_create", snapshot_create, NO_METADATA, snapshot_create);
flag_need!(CREATE_HALT, "snapshot_create", snapshot_create, HALT, snapshot_create);
flag_need!(CREATE_DISK_ONLY, "snapshot_create", snapshot_create, DISK_ONLY, snapshot_create);
flag_need!(DELETE_CHILDREN, "snapshot_delete", snapshot_delete, CHILDREN, snapshot_delete);
flag_need!(DELETE_CHILDREN_ONLY, "snapshot_delete", snapshot_delete, CHILDREN_ONLY, snapshot_delete);
flag_need!(DELETE_METADATA_ONLY, "snapshot_delete", snapshot_delete, METADATA_ONLY, snapshot_delete);
flag_need!(REVERT_PAUSED, "snapshot_revert", snapshot_revert, PAUSED, snapshot_revert);
flag_need!(REVERT_RUNNING, "snapshot_revert", snapshot_revert, RUNNING, snapshot_revert);
flag_need!(XML_SECURE, "snapshot_xml", snapshot_xml, SECURE, snapshot_xml);
flag_need!(UNDEFINE_SNAPSHOTS_METADATA, "domain_undefine", domain_undefine, SNAPSHOTS_METADATA, domain_undefine);

/// A list flag need for `bit`.
pub fn list_flag(bit: u32) -> FlagNeed {
    let name = snapshot_list::NAMES.iter().find(|(b, _)| *b == bit).map_or("?", |(_, n)| n);
    FlagNeed {
        op: "snapshot_list",
        bit,
        name: name.trim_start_matches("VIR_DOMAIN_SNAPSHOT_LIST_"),
        mask: |c| c.snapshot_list,
    }
}
