//! libvirt's own daemon as the reference server of the libvirt interop tests (issue 14): Debian's
//! `libvirtd` with only its built-in test driver, started exactly as
//! ../shared/reference/libvirt-rpc.md §7 describes (a private socket folder, `LIBVIRT_DRIVER_DIR`
//! pointing at an empty folder so no hypervisor module loads, a config with `auth none`), killed
//! on drop. Clients reach `test:///default` through [`Libvirtd::uri`].

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long libvirtd may take to listen before the test fails.
const READY: Duration = Duration::from_secs(20);

/// One libvirtd: its folder (sockets `libvirt-sock`, `libvirt-sock-ro`, `libvirt-admin-sock`,
/// `libvirtd.conf`, `pid`, `log`, the empty driver folder `drivers`) and process.
pub struct Libvirtd {
    pub dir: PathBuf,
    pub child: Child,
}

/// A program found on PATH or in the sbin folders (libvirtd lives in /usr/sbin, which a non-login
/// PATH may lack), or why not.
pub fn find_program(name: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("`{name}` not found on PATH nor in /usr/sbin"))
}

impl Libvirtd {
    /// Starts libvirtd in `dir` (created if missing); `None` under the skip policy
    /// ([`crate::need`], area `area`) when libvirtd is not installed. Returns once it listens.
    pub fn start(area: &str, dir: &Path) -> Option<Self> {
        let program = crate::need(area, find_program("libvirtd"))?;
        let drivers = dir.join("drivers");
        std::fs::create_dir_all(&drivers).unwrap_or_else(|e| panic!("creating {}: {e}", drivers.display()));
        let conf = dir.join("libvirtd.conf");
        // The socket folder's path goes into a quoted config string: refuse what would break it.
        let sockdir = dir.to_str().filter(|s| !s.contains('"')).unwrap_or_else(|| panic!("unusable {}", dir.display()));
        let text = format!(
            "unix_sock_dir = \"{sockdir}\"\nunix_sock_group = \"root\"\nunix_sock_rw_perms = \"0700\"\n\
             auth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\nlisten_tls = 0\nlisten_tcp = 0\n"
        );
        std::fs::write(&conf, text).unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
        let log =
            std::fs::File::create(dir.join("log")).unwrap_or_else(|e| panic!("creating {}/log: {e}", dir.display()));
        let child = Command::new(program)
            .arg("--config")
            .arg(&conf)
            .arg("--pid-file")
            .arg(dir.join("pid"))
            .env("LIBVIRT_DRIVER_DIR", &drivers)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting libvirtd: {e}"));
        let mut d = Self { dir: dir.to_owned(), child };
        d.wait_ready();
        Some(d)
    }
    /// The read-write socket (the read-only one is [`Libvirtd::ro_socket`]).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("libvirt-sock")
    }
    /// The read-only socket.
    pub fn ro_socket(&self) -> PathBuf {
        self.dir.join("libvirt-sock-ro")
    }
    /// The client URI of the test driver on the read-write socket.
    pub fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.socket().display())
    }
    /// The client URI of the test driver on the read-only socket.
    pub fn ro_uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.ro_socket().display())
    }
    /// libvirtd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY;
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() && self.ro_socket().exists() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("libvirtd exited early: {status}; log: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("libvirtd did not listen within 20 s; log: {}", self.log());
    }
}

impl Drop for Libvirtd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
