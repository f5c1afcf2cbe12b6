//! qemu processes: spawning (`-daemonize`, so a guest outlives the host process that started
//! it), the runtime record (`<run_dir>/<uuid>/runtime.json`: pid, QMP socket), liveness checks
//! for reconnecting after a host restart, and killing.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::json;
use virtplug_plugin_sdk::{Error, Result, codes};

use crate::{
    domain::QemuDef,
    img,
    uri::{Accel, Config},
};

/// The runtime record of a started domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// qemu's pid.
    pub pid: i32,
    /// QMP socket path.
    pub socket: PathBuf,
    /// The domain's UUID (checked against `/proc/<pid>/cmdline`).
    pub uuid: String,
}

/// The qemu system emulator (`$VIRTPLUG_QEMU_SYSTEM`, else `qemu-system-x86_64` on PATH).
pub fn qemu_system() -> String {
    std::env::var("VIRTPLUG_QEMU_SYSTEM").unwrap_or_else(|_| "qemu-system-x86_64".into())
}

/// The runtime directory of domain `uuid`.
pub fn dir(cfg: &Config, uuid: &str) -> PathBuf {
    cfg.run_dir.join(uuid)
}

fn kvm_usable() -> bool {
    fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_ok()
}

fn failed(msg: String) -> Error {
    Error::new(codes::OPERATION_FAILED, msg)
}

/// Starts qemu for `def` paused (`-S`) and returns once its QMP socket listens.
pub fn spawn(cfg: &Config, def: &QemuDef) -> Result<Runtime> {
    spawn_with(cfg, def, &[])
}

/// [`spawn`] with `extra` arguments appended (`-incoming defer` for a memory restore).
pub fn spawn_with(cfg: &Config, def: &QemuDef, extra: &[&str]) -> Result<Runtime> {
    for d in &def.disks {
        fs::metadata(&d.path).map_err(|e| img::missing(&d.path, &e))?;
    }
    let dir = dir(cfg, &def.def.uuid);
    fs::create_dir_all(&dir).map_err(|e| failed(format!("cannot create '{}': {e}", dir.display())))?;
    let socket = dir.join("monitor.sock");
    let pidfile = dir.join("qemu.pid");
    let _ = fs::remove_file(&socket);
    let _ = fs::remove_file(&pidfile);
    let kvm = match cfg.accel {
        Accel::Kvm => true,
        Accel::Tcg => false,
        Accel::Auto => kvm_usable(),
    };
    let bin = qemu_system();
    let out = Command::new(&bin)
        .args(def.argv(kvm, &socket, &pidfile))
        .args(extra)
        .output()
        .map_err(|e| Error::internal(format!("cannot run {bin}: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().replace('\n', " ");
        let code = if err.contains("lock") { codes::OPERATION_INVALID } else { codes::OPERATION_FAILED };
        return Err(Error::new(code, format!("process exited while connecting to monitor: {err}")));
    }
    let pid: i32 = fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| failed(format!("qemu wrote no pidfile '{}'", pidfile.display())))?;
    let rt = Runtime { pid, socket, uuid: def.def.uuid.clone() };
    let rec = json!({ "pid": pid, "socket": rt.socket.display().to_string(), "uuid": rt.uuid });
    let tmp = dir.join("runtime.json.new");
    fs::write(&tmp, rec.to_string())
        .and_then(|()| fs::rename(&tmp, dir.join("runtime.json")))
        .map_err(|e| failed(format!("cannot write runtime record: {e}")))?;
    Ok(rt)
}

/// The runtime record of `uuid`, if one exists.
pub fn load(cfg: &Config, uuid: &str) -> Option<Runtime> {
    let text = fs::read_to_string(dir(cfg, uuid).join("runtime.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(Runtime {
        pid: i32::try_from(v["pid"].as_i64()?).ok()?,
        socket: PathBuf::from(v["socket"].as_str()?),
        uuid: v["uuid"].as_str()?.to_owned(),
    })
}

/// Removes the runtime record, pidfile and socket of `uuid`.
pub fn clear(cfg: &Config, uuid: &str) {
    let _ = fs::remove_dir_all(dir(cfg, uuid));
}

/// Whether `pid` is a live (not zombie) process whose command line names `uuid`.
pub fn alive(pid: i32, uuid: &str) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    let Ok(cmdline) = fs::read(proc.join("cmdline")) else { return false };
    if !String::from_utf8_lossy(&cmdline).contains(uuid) {
        return false;
    }
    let stat = fs::read_to_string(proc.join("stat")).unwrap_or_default();
    // field 3 (after the parenthesised comm) is the state; Z = zombie, X = dead
    let state = stat.rsplit_once(')').and_then(|(_, r)| r.split_whitespace().next()).unwrap_or("X");
    state != "Z" && state != "X"
}

/// Waits up to `limit` for `pid` to be gone.
pub fn wait_gone(pid: i32, uuid: &str, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while alive(pid, uuid) {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    true
}

/// Sends `sig` to `pid`.
pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions; a stale pid only yields ESRCH.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Kills the process: SIGTERM, then SIGKILL after a second; true once it is gone.
pub fn kill(rt: &Runtime) -> bool {
    if !alive(rt.pid, &rt.uuid) {
        return true;
    }
    signal(rt.pid, libc::SIGTERM);
    if wait_gone(rt.pid, &rt.uuid, Duration::from_secs(1)) {
        return true;
    }
    signal(rt.pid, libc::SIGKILL);
    wait_gone(rt.pid, &rt.uuid, Duration::from_secs(5))
}
