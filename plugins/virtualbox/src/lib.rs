//! virtplug driver plugin for VirtualBox (URI `vbox:///session[?vboxmanage=/path&timeout=secs]`).
//!
//! Owns: driving `VBoxManage` as a subprocess (argv vectors, `LC_ALL=C`, a timeout then kill;
//! [`runner`]), parsing its output ([`parse`]), reading each machine's `.vbox` file read-only
//! for descriptions, timestamps and online state ([`settings`]), and mapping domains and
//! snapshots to libvirt's records, XML and error codes ([`machine`], [`driver`]).
//!
//! Must not: write `.vbox` files (no REDEFINE, no metadata-only delete by editing them, unlike
//! libvirt's vbox driver), run a shell, retry a VBoxManage command, filter snapshot lists (the
//! host does), or name `abi_stable` (the SDK's `export_plugin!` does the ABI).
//!
//! VBoxManage is found from the URI's `vboxmanage=` parameter, else `$VIRTPLUG_VBOXMANAGE`, else
//! `VBoxManage` on `PATH`; the timeout from `timeout=`, else `$VIRTPLUG_VBOXMANAGE_TIMEOUT`, else
//! 600 s (deleting a snapshot can merge large disks).

pub mod driver;
pub mod machine;
pub mod parse;
pub mod runner;
pub mod settings;
pub mod watch;

use std::{path::PathBuf, sync::atomic::AtomicU64, time::Duration};

use virtplug_plugin_sdk::{
    Capabilities, Driver, Error, Plugin, PluginDescriptor, Result, codes, export_plugin,
    flags::{ops, snapshot_create as c, snapshot_delete as d, snapshot_list},
};

pub use driver::VboxDriver;
use runner::Runner;

/// The plugin type exported by [`export_plugin!`].
#[derive(Debug)]
pub struct VirtualBox;

/// Default per-invocation timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl Plugin for VirtualBox {
    const DESCRIPTOR: PluginDescriptor = PluginDescriptor {
        name: "virtualbox",
        version: env!("CARGO_PKG_VERSION"),
        schemes: &["vbox"],
        ops: ops::DOMAIN_LIST
            | ops::DOMAIN_LOOKUP
            | ops::DOMAIN_START
            | ops::DOMAIN_SHUTDOWN
            | ops::DOMAIN_DESTROY
            | ops::DOMAIN_SUSPEND
            | ops::DOMAIN_RESUME
            | ops::DOMAIN_XML
            | ops::SNAPSHOT_CREATE
            | ops::SNAPSHOT_XML
            | ops::SNAPSHOT_LIST
            | ops::SNAPSHOT_LOOKUP
            | ops::SNAPSHOT_CURRENT
            | ops::SNAPSHOT_REVERT
            | ops::SNAPSHOT_DELETE,
        caps: Capabilities {
            // Not REDEFINE/CURRENT (they would mean rewriting .vbox files), not DISK_ONLY.
            snapshot_create: c::NO_METADATA | c::VALIDATE,
            snapshot_revert: 0,
            snapshot_delete: d::CHILDREN | d::METADATA_ONLY,
            // The host filters the full list; every filter is meaningful on it.
            snapshot_list: snapshot_list::ALL,
            snapshot_xml: 0,
            snapshot_import: 0,
            domain_undefine: 0,
            domain_xml: 0,
        },
    };

    // The generic refusals (read-only, libvirt's flag rules) are not repeated in the driver:
    // the host only ever calls it through the SDK's guard, which applies the rule table first.
    // Called raw (without the guard or `open_checked`), a read-only connection is not refused
    // writes; `read_only` only decides whether the connection is watched (`watch.rs`: a
    // read-write connection of a host that offers services reports what its polling sees).
    fn open(uri: &str, read_only: bool) -> Result<Box<dyn Driver>> {
        let config = Config::from_uri(uri)?;
        let runner = Runner { program: config.program, timeout: config.timeout, count: AtomicU64::new(0) };
        probe(&runner)?;
        let watch = if read_only { None } else { watch::start(&runner.program, runner.timeout) };
        Ok(Box::new(VboxDriver { runner, watch }))
    }
}

export_plugin!(VirtualBox);

/// `VBoxManage --version` must print a version: the one check that VBoxManage is usable.
fn probe(runner: &Runner) -> Result<()> {
    let out = runner.run(&["--version"])?;
    let v = out.stdout.lines().next().unwrap_or("").trim();
    let looks_like_version = v.split('.').count() >= 3 && v.chars().next().is_some_and(|ch| ch.is_ascii_digit());
    if out.code != 0 || !looks_like_version {
        return Err(Error::new(
            codes::OPERATION_FAILED,
            format!(
                "VBoxManage not usable: '{}' --version exited with status {} and printed {:?}",
                runner.program.display(),
                out.code,
                v
            ),
        ));
    }
    Ok(())
}

/// What a `vbox://` URI and the environment say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub program: PathBuf,
    pub timeout: Duration,
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn parse_timeout(v: &str) -> Option<Duration> {
    v.parse::<f64>().ok().filter(|t| t.is_finite() && *t > 0.0).map(Duration::from_secs_f64)
}

impl Config {
    /// Parses `vbox:///session[?vboxmanage=…&timeout=…]`, then the environment.
    pub fn from_uri(uri: &str) -> Result<Self> {
        let (base, query) = uri.split_once('?').unwrap_or((uri, ""));
        if base != "vbox:///session" {
            return Err(Error::new(codes::NO_CONNECT, uri.to_owned()));
        }
        let mut program = None;
        let mut timeout = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v)
                .ok_or_else(|| Error::invalid_arg(format!("invalid percent-encoding in URI parameter '{k}'")))?;
            match k {
                "vboxmanage" if !v.is_empty() => program = Some(PathBuf::from(v)),
                "timeout" => {
                    timeout = Some(
                        parse_timeout(&v).ok_or_else(|| Error::invalid_arg(format!("invalid timeout '{v}' in URI")))?,
                    )
                }
                _ => return Err(Error::invalid_arg(format!("unsupported URI parameter '{k}' in '{uri}'"))),
            }
        }
        let program = program
            .or_else(|| std::env::var_os("VIRTPLUG_VBOXMANAGE").filter(|v| !v.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("VBoxManage"));
        let timeout = match timeout {
            Some(t) => t,
            None => match std::env::var("VIRTPLUG_VBOXMANAGE_TIMEOUT") {
                Ok(v) => parse_timeout(&v)
                    .ok_or_else(|| Error::invalid_arg(format!("invalid VIRTPLUG_VBOXMANAGE_TIMEOUT '{v}'")))?,
                Err(_) => DEFAULT_TIMEOUT,
            },
        };
        Ok(Self { program, timeout })
    }
}
