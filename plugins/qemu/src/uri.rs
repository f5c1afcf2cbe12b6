//! `qemu:` URI → where state lives, plus the driver options a URI may carry.
//!
//! - `qemu:///session`: metadata under `$XDG_CONFIG_HOME/virtplug/qemu` (else
//!   `~/.config/virtplug/qemu`), runtime files under `$XDG_RUNTIME_DIR/virtplug/qemu` (else
//!   `~/.cache/virtplug/qemu/run`);
//! - `qemu:///system`: `/var/lib/virtplug/qemu` and `/run/virtplug/qemu`;
//! - `qemu:///embed?root=DIR`: `DIR/lib/qemu` and `DIR/run/qemu` (DIR absolute).
//!
//! Options (query parameters, any URI): `accel=tcg|kvm|auto` (default auto: KVM when
//! `/dev/kvm` opens read-write, else TCG) and `qmp_timeout_ms=N` (default 30000): how long a
//! QMP peer may stay silent before the call fails; `shutdown_timeout_ms=N` (default 10000): how
//! long `shutdown` waits for the guest after `system_powerdown` before it sends `quit`;
//! `store=etcd://h1:p1,h2:p2/PREFIX`: the snapshot metadata on that fleet store (else
//! `VIRTPLUG_STORE`, else beside the domains in the local store; see `crate::meta`), its config
//! from `VIRTPLUG_STORE_CONFIG`, else `<lib dir>/store.conf`.

use std::path::PathBuf;

use virtplug_plugin_sdk::{Error, Result, codes};

/// Which accelerator qemu gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// KVM when usable, else TCG.
    Auto,
    /// Always TCG.
    Tcg,
    /// Always KVM.
    Kvm,
}

/// Everything a `qemu:` URI decides.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory of the metadata store.
    pub lib_dir: PathBuf,
    /// Directory of runtime files (pidfiles, QMP sockets, runtime records, logs).
    pub run_dir: PathBuf,
    /// Accelerator choice.
    pub accel: Accel,
    /// QMP silence limit in milliseconds.
    pub qmp_timeout_ms: u64,
    /// How long `shutdown` waits for the guest after `system_powerdown` before `quit`.
    pub shutdown_timeout_ms: u64,
    /// The fleet store keeping the snapshot metadata, if any.
    pub store: Option<virtplug_store_etcd::StoreUri>,
}

fn env_dir(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

fn home(uri: &str) -> Result<PathBuf> {
    env_dir("HOME").ok_or_else(|| Error::new(codes::NO_CONNECT, format!("{uri}: HOME is not set")))
}

/// Parses `uri`; anything but the three forms above is NO_CONNECT, a malformed `store=`
/// INVALID_ARG.
pub fn parse(uri: &str) -> Result<Config> {
    let (rest, store) = virtplug_store_etcd::fleet::split_store(uri)?;
    let mut cfg = parse_local(uri, &rest)?;
    cfg.store = store;
    Ok(cfg)
}

/// `rest` (`uri` without `store=`) as a local configuration.
fn parse_local(uri: &str, rest: &str) -> Result<Config> {
    let refuse = |why: &str| {
        Error::new(
            codes::NO_CONNECT,
            format!("{uri} ({why}; the qemu driver accepts qemu:///session, qemu:///system or qemu:///embed?root=DIR)"),
        )
    };
    let rest = rest.strip_prefix("qemu://").ok_or_else(|| refuse("not a qemu URI"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut root = None;
    let mut accel = Accel::Auto;
    let mut qmp_timeout_ms = 30_000;
    let mut shutdown_timeout_ms = 10_000;
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "root" => root = Some(PathBuf::from(v)),
            "accel" => {
                accel = match v {
                    "auto" => Accel::Auto,
                    "tcg" => Accel::Tcg,
                    "kvm" => Accel::Kvm,
                    _ => return Err(refuse("accel must be tcg, kvm or auto")),
                }
            }
            "qmp_timeout_ms" => {
                qmp_timeout_ms = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| refuse("bad qmp_timeout_ms"))?;
            }
            "shutdown_timeout_ms" => {
                shutdown_timeout_ms = v.parse().ok().ok_or_else(|| refuse("bad shutdown_timeout_ms"))?;
            }
            _ => return Err(refuse("unknown parameter")),
        }
    }
    if path != "/embed" && root.is_some() {
        return Err(refuse("root is only for qemu:///embed"));
    }
    let (lib_dir, run_dir) = match path {
        "/session" => {
            let cfg = env_dir("XDG_CONFIG_HOME").map_or_else(|| home(uri).map(|h| h.join(".config")), Ok)?;
            let run = match env_dir("XDG_RUNTIME_DIR") {
                Some(r) => r.join("virtplug/qemu"),
                None => home(uri)?.join(".cache/virtplug/qemu/run"),
            };
            (cfg.join("virtplug/qemu"), run)
        }
        "/system" => (PathBuf::from("/var/lib/virtplug/qemu"), PathBuf::from("/run/virtplug/qemu")),
        "/embed" => {
            let root = root.ok_or_else(|| refuse("embed needs root=DIR"))?;
            if !root.is_absolute() {
                return Err(refuse("root must be an absolute directory"));
            }
            (root.join("lib/qemu"), root.join("run/qemu"))
        }
        _ => return Err(refuse("unknown path")),
    };
    Ok(Config { lib_dir, run_dir, accel, qmp_timeout_ms, shutdown_timeout_ms, store: None })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let c = parse("qemu:///embed?root=/tmp/x&accel=tcg&qmp_timeout_ms=500").unwrap();
        assert_eq!(c.lib_dir, PathBuf::from("/tmp/x/lib/qemu"));
        assert_eq!(c.run_dir, PathBuf::from("/tmp/x/run/qemu"));
        assert_eq!((c.accel, c.qmp_timeout_ms), (Accel::Tcg, 500));
        let s = parse("qemu:///system").unwrap();
        assert_eq!(s.lib_dir, PathBuf::from("/var/lib/virtplug/qemu"));
        for bad in [
            "qemu:///embed",
            "qemu:///embed?root=rel",
            "qemu:///other",
            "mock:///default",
            "qemu:///system?root=/x",
            "qemu:///session?accel=xen",
            "qemu:///session?x=1",
        ] {
            assert_eq!(parse(bad).unwrap_err().code, codes::NO_CONNECT, "{bad}");
        }
        let f = parse("qemu:///embed?root=/tmp/x&store=etcd://127.0.0.1:2379,127.0.0.1:2381/fleet&accel=tcg").unwrap();
        let s = f.store.unwrap();
        assert_eq!((s.endpoints.len(), s.prefix.as_str(), f.accel), (2, "/fleet", Accel::Tcg));
        assert_eq!(parse("qemu:///session?store=etcd://a/p").unwrap_err().code, codes::INVALID_ARG);
    }
}
