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

/// Whether `pid` is a live (not zombie) process whose command line names `uuid`, or a
/// process on its way out. An exiting process drops its memory (its command line reads empty)
/// before it closes its files, so for that window it still holds qemu's image locks; counting
/// it as gone let a merge run right after a kill fail on a lock the dying qemu still held.
pub fn alive(pid: i32, uuid: &str) -> bool {
    let proc = Path::new("/proc").join(pid.to_string());
    let Ok(cmdline) = fs::read(proc.join("cmdline")) else { return false };
    let stat = fs::read_to_string(proc.join("stat")).unwrap_or_default();
    // after the parenthesised comm: field 3 is the state (Z = zombie, X = dead), field 9 the flags
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let state = fields.first().copied().unwrap_or("X");
    if state == "Z" || state == "X" {
        return false;
    }
    if cmdline.is_empty() {
        // kernel threads (PF_KTHREAD) have no command line either
        const PF_KTHREAD: u64 = 0x0020_0000;
        return fields.get(6).and_then(|f| f.parse::<u64>().ok()).is_some_and(|f| f & PF_KTHREAD == 0);
    }
    String::from_utf8_lossy(&cmdline).contains(uuid)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly")]
    use super::*;
    use std::process::{Command, Stdio};

    /// A killed process with a large memory image spends a while tearing it down before it
    /// closes its files: all that time it must count as alive, so that whoever waits for it
    /// to be gone finds its locks released.
    #[test]
    fn a_process_is_gone_only_once_its_locks_are_released() {
        let dir = std::env::temp_dir().join(format!("virtplug-alive-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("image");
        fs::write(&file, b"x").unwrap();
        let tag = "0b5e7c1e-aaaa-4bbb-8ccc-alive-test";
        // holds a POSIX write lock on the file, then dirties 1 GiB and reports ready
        let script = "import fcntl,sys\nf=open(sys.argv[1],'r+')\nfcntl.lockf(f,fcntl.LOCK_EX)\n\
                      m=b'x'*(1<<30)\nprint('ready',flush=True)\nsys.stdin.read()\n";
        for _ in 0..2 {
            let mut child = Command::new("python3")
                .args(["-c", script, file.to_str().unwrap(), tag])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
            assert_eq!(line, "ready\n");
            let pid = i32::try_from(child.id()).unwrap();
            assert!(alive(pid, tag));
            assert!(!alive(pid, "some-other-uuid"));
            signal(pid, libc::SIGKILL);
            assert!(wait_gone(pid, tag, Duration::from_secs(10)));
            // the lock must be free now: a non-blocking write lock from this process succeeds
            let f = fs::OpenOptions::new().read(true).write(true).open(&file).unwrap();
            let mut lk: libc::flock = unsafe { std::mem::zeroed() };
            lk.l_type = libc::F_WRLCK as _;
            lk.l_whence = libc::SEEK_SET as _;
            // SAFETY: a valid descriptor and a fully initialised flock
            let rc = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&f), libc::F_SETLK, &lk) };
            assert_eq!(rc, 0, "gone, but its lock is still held: {}", std::io::Error::last_os_error());
            drop(f);
            child.wait().unwrap();
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_pids_and_other_processes_are_not_alive() {
        assert!(!alive(i32::MAX, "x"));
        // this test process is alive but does not name the uuid
        assert!(!alive(i32::try_from(std::process::id()).unwrap(), "0b5e7c1e-not-in-the-cmdline"));
    }
}
