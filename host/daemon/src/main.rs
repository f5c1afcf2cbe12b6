//! `virtplugd`: parses options, sets up logging and runs the daemon until SIGINT or SIGTERM.
//! Everything else lives in the `virtplug_daemon` library.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

/// The host's lists and trees are many small strings, made and freed on every call; on many
/// threads (a thread per connection) glibc's malloc spends more on them than on the work itself.
/// mimalloc keeps a heap per thread. Plugins keep their own allocator: whatever crosses the ABI
/// is freed by the side that made it (abi_stable's types carry their allocator). The CLI, one
/// thread and one call, keeps glibc's: mimalloc's set-up would cost it about 0.5 ms of its 3.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use virtplug_daemon::{Config, TlsSettings, listen::ConnLimits};

/// virtplug's management daemon.
#[derive(Debug, Parser)]
#[command(name = "virtplugd", version)]
struct Args {
    /// Read-write unix socket (default: $XDG_RUNTIME_DIR/virtplug/virtplugd-sock).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Read-only unix socket (default: the read-write one with `-ro`).
    #[arg(long)]
    ro_socket: Option<PathBuf>,
    /// Serve no read-only socket.
    #[arg(long)]
    no_ro_socket: bool,
    /// Mode of the read-write socket, octal.
    #[arg(long, default_value = "600")]
    socket_mode: String,
    /// State directory (migration journals).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Driver URI served when a request names none (always served).
    #[arg(long)]
    default_uri: Option<String>,
    /// Also serve this driver URI (repeatable). Requests naming any other URI are refused.
    #[arg(long = "allow-uri", alias = "uri", value_name = "URI")]
    allow_uris: Vec<String>,
    /// Also serve libvirt's RPC protocol on this unix socket (mode 0600) and a read-only twin
    /// `PATH-ro`: libvirt clients connect with `DRIVER+unix:///…?socket=PATH`.
    #[arg(long, value_name = "PATH")]
    libvirt_socket: Option<PathBuf>,
    /// Listen on TCP with TLS at this address.
    #[arg(long, requires_all = ["tls_cert", "tls_key", "tokens"])]
    listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Bearer tokens file: `rw TOKEN` or `ro TOKEN` per line.
    #[arg(long)]
    tokens: Option<PathBuf>,
    /// Largest request body in bytes on small JSON routes.
    #[arg(long, default_value_t = virtplug_daemon::DEFAULT_MAX_BODY)]
    max_body: usize,
    /// Largest request body in bytes on routes carrying one XML document.
    #[arg(long, default_value_t = virtplug_daemon::DEFAULT_MAX_XML_BODY)]
    max_xml_body: usize,
    /// Largest request body in bytes on hierarchy import.
    #[arg(long, default_value_t = virtplug_daemon::DEFAULT_MAX_IMPORT_BODY)]
    max_import_body: usize,
    /// Seconds a request head may take from its first byte (and a TLS handshake from accept).
    #[arg(long, default_value_t = ConnLimits::default().header_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a request body may send nothing before the request fails (408).
    #[arg(long, default_value_t = virtplug_daemon::DEFAULT_BODY_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout: u64,
    /// Seconds a connection with no request in progress may stay silent before it is closed.
    #[arg(long, default_value_t = ConnLimits::default().idle_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Most connections served at once per listener; more wait until one closes.
    #[arg(long, default_value_t = ConnLimits::default().max_connections, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// Fault injection for tests: tracked imports wait this many milliseconds before committing.
    #[arg(long, hide = true, default_value_t = 0)]
    fault_import_delay_ms: u64,
    /// Log line format on stderr: `text` (one readable line per event) or `json` (one JSON object
    /// per line, for log collectors).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    print_openapi: bool,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"))
        .join("virtplug/virtplugd")
}

fn config(args: Args) -> anyhow::Result<Config> {
    let mut c = Config::new(args.state_dir.unwrap_or_else(state_dir));
    if let Some(socket) = args.socket {
        c.ro_socket = Some(PathBuf::from(format!("{}-ro", socket.display())));
        c.socket = Some(socket);
    }
    if let Some(ro) = args.ro_socket {
        c.ro_socket = Some(ro);
    }
    if args.no_ro_socket {
        c.ro_socket = None;
    }
    c.socket_mode =
        u32::from_str_radix(&args.socket_mode, 8).map_err(|_| anyhow::anyhow!("--socket-mode must be octal"))?;
    c.default_uri = args.default_uri;
    c.libvirt_socket = args.libvirt_socket;
    c.allowed_uris = args.allow_uris;
    c.max_body = args.max_body;
    c.max_xml_body = args.max_xml_body;
    c.max_import_body = args.max_import_body;
    c.body_timeout = Duration::from_secs(args.body_timeout);
    c.conn = ConnLimits {
        header_timeout: Duration::from_secs(args.header_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        max_connections: args.max_connections,
    };
    c.fault_import_delay = Duration::from_millis(args.fault_import_delay_ms);
    if let (Some(addr), Some(cert), Some(key), Some(tokens)) = (args.listen, args.tls_cert, args.tls_key, args.tokens) {
        c.tls = Some(TlsSettings { addr, cert, key, tokens });
    }
    Ok(c)
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

/// Turns off glibc's fastbins. Each connection thread frees a request's small allocations into
/// them, and the next allocation of over 1 KiB (a buffer) then merges them all back
/// (`malloc_consolidate`): that was a quarter of the daemon's CPU when clients kept the machine
/// busy (`cargo xtask bench daemon`, the 1,000-snapshot list row). Without fastbins, small
/// blocks still come from each thread's cache (tcache) and are merged as they are freed.
fn no_fastbins() {
    #[cfg(target_env = "gnu")]
    // SAFETY: a plain setting of the allocator, made before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MXFAST, 0);
    }
}

fn main() -> ExitCode {
    no_fastbins();
    // A plugin logs a caught panic (location, backtrace) on stderr only when asked, so that the
    // CLI's user sees one error line; the daemon's log is its stderr, so it asks.
    if std::env::var_os("VIRTPLUG_PLUGIN_LOG").is_none() {
        // SAFETY: no other thread exists yet; the runtime and the plugins start below.
        unsafe { std::env::set_var("VIRTPLUG_PLUGIN_LOG", "stderr") };
    }
    let args = Args::parse();
    if args.print_openapi {
        print!("{}", virtplug_daemon::openapi::document());
        return ExitCode::SUCCESS;
    }
    let logger = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VIRTPLUGD_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logger.init(),
        LogFormat::Json => logger.json().init(),
    }
    let result = (|| -> anyhow::Result<()> {
        let config = config(args)?;
        let registry = virtplug_host::Registry::from_env()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(virtplug_daemon::serve(config, registry, shutdown_signal()))
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("virtplugd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
