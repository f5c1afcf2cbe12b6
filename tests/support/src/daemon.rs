//! A `virtplugd` child process on its own socket, state and mock host folders, killed on drop.
//! Used by the daemon's own tests and by the CLI's daemon-to-daemon tests; it speaks only paths
//! and URIs, so this crate needs no host types (connecting is the caller's business).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// virtplugd's option for libvirt's RPC protocol.
const LIBVIRT_SOCKET: &str = "--libvirt-socket";

/// How long a daemon may take to listen before the test fails.
const READY: Duration = Duration::from_secs(20);

/// One daemon: its folder (socket `sock`, `state`, mock `host`, `log`), process and arguments.
pub struct Daemon {
    pub dir: PathBuf,
    pub child: Child,
    pub plugins: PathBuf,
    pub extra: Vec<String>,
    /// Environment variables set for the daemon beyond the plugin folder and the log level.
    pub env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts the built `virtplugd` (see [`crate::VIRTPLUGD`]) in `dir` with `VIRTPLUG_PLUGIN_DIR=plugins`
    /// and `extra` arguments, serving `mock://<dir>/host` by default; returns once it listens.
    pub fn start(dir: &Path, plugins: &Path, extra: &[String]) -> Self {
        Self::start_with_env(dir, plugins, extra, &[])
    }
    /// [`Daemon::start`] with `env` set for the daemon (a fault to inject, say).
    pub fn start_with_env(dir: &Path, plugins: &Path, extra: &[String], env: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(dir.join("host")).unwrap_or_else(|e| panic!("creating {}/host: {e}", dir.display()));
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let mut d = Self {
            dir: dir.to_owned(),
            child: spawn(dir, plugins, extra, &env),
            plugins: plugins.to_owned(),
            extra: extra.to_vec(),
            env,
        };
        d.wait_ready();
        d
    }
    /// Starts like [`Daemon::start`] with `--libvirt-socket <dir>/libvirt-sock` added (libvirt's RPC
    /// protocol, issue 14); returns once the HTTP and both libvirt sockets listen.
    pub fn start_libvirt(dir: &Path, plugins: &Path, extra: &[String]) -> Self {
        Self::start_libvirt_with_env(dir, plugins, extra, &[])
    }
    /// [`Daemon::start_libvirt`] with `env` set for the daemon.
    pub fn start_libvirt_with_env(dir: &Path, plugins: &Path, extra: &[String], env: &[(&str, &str)]) -> Self {
        let mut all = vec![LIBVIRT_SOCKET.to_owned(), dir.join("libvirt-sock").display().to_string()];
        all.extend_from_slice(extra);
        Self::start_with_env(dir, plugins, &all, env)
    }
    /// The libvirt RPC socket (read-write; the read-only one is `<it>-ro`), when started with
    /// [`Daemon::start_libvirt`].
    pub fn libvirt_socket(&self) -> PathBuf {
        self.dir.join("libvirt-sock")
    }
    /// The name a libvirt client sends in CONNECT_OPEN for this daemon's mock host.
    pub fn libvirt_name(&self) -> String {
        format!("mock://{}", self.host().display())
    }
    /// The libvirt client URI of the mock host on the read-write libvirt socket.
    pub fn libvirt_uri(&self) -> String {
        format!("mock+unix://{}?socket={}", self.host().display(), self.libvirt_socket().display())
    }
    /// The libvirt client URI of the mock host on the read-only libvirt socket.
    pub fn libvirt_ro_uri(&self) -> String {
        format!("mock+unix://{}?socket={}-ro", self.host().display(), self.libvirt_socket().display())
    }
    /// The unix socket (read-write; the read-only one is `<socket>-ro`).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock")
    }
    /// The mock host directory this daemon serves.
    pub fn host(&self) -> PathBuf {
        self.dir.join("host")
    }
    /// The remote URI a client uses.
    pub fn uri(&self) -> String {
        format!("mock+unix://{}?socket={}", self.host().display(), self.socket().display())
    }
    /// The remote URI of the read-only socket.
    pub fn ro_uri(&self) -> String {
        format!("mock+unix://{}?socket={}-ro", self.host().display(), self.socket().display())
    }
    /// SIGKILL, then start again on the same sockets and state.
    pub fn kill_and_restart(&mut self) {
        self.child.kill().unwrap_or_else(|e| panic!("killing virtplugd: {e}"));
        self.child.wait().unwrap_or_else(|e| panic!("reaping virtplugd: {e}"));
        self.child = spawn(&self.dir, &self.plugins, &self.extra, &self.env);
        self.wait_ready();
    }
    /// The daemon's log so far (stderr, `VIRTPLUGD_LOG=info`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY;
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() && self.libvirt_ready() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("virtplugd exited early: {status}; log: {}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("virtplugd did not listen within 20 s");
    }
    /// Whether the libvirt sockets listen, when asked for (`--libvirt-socket` among the arguments).
    fn libvirt_ready(&self) -> bool {
        let Some(at) = self.extra.iter().position(|a| a == LIBVIRT_SOCKET) else { return true };
        let Some(path) = self.extra.get(at + 1) else { return true };
        std::os::unix::net::UnixStream::connect(path).is_ok() && Path::new(&format!("{path}-ro")).exists()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, plugins: &Path, extra: &[String], env: &[(String, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("log"))
        .unwrap_or_else(|e| panic!("opening {}/log: {e}", dir.display()));
    Command::new(crate::VIRTPLUGD.built())
        .arg("--socket")
        .arg(dir.join("sock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--default-uri")
        .arg(format!("mock://{}", dir.join("host").display()))
        .args(extra)
        .env("VIRTPLUG_PLUGIN_DIR", plugins)
        .env("VIRTPLUGD_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting virtplugd: {e}"))
}
