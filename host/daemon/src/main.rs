//! `virtplugd`: parses options, sets up logging and runs the daemon until SIGINT or SIGTERM.
//! Everything else lives in the `virtplug_daemon` library.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;
use virtplug_daemon::{Config, TlsSettings};

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
    /// Driver URI served when a request names none; repeat `--uri` to restrict the URIs served.
    #[arg(long)]
    default_uri: Option<String>,
    /// Only serve these driver URIs (repeatable).
    #[arg(long = "uri")]
    uris: Vec<String>,
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
    /// Largest request body in bytes (imports have their own limit).
    #[arg(long, default_value_t = 1 << 20)]
    max_body: usize,
    /// Fault injection for tests: tracked imports wait this many milliseconds before committing.
    #[arg(long, hide = true, default_value_t = 0)]
    fault_import_delay_ms: u64,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    print_openapi: bool,
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
    c.allowed_uris = args.uris;
    c.max_body = args.max_body;
    c.fault_import_delay = std::time::Duration::from_millis(args.fault_import_delay_ms);
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

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_openapi {
        print!("{}", virtplug_daemon::openapi::document());
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("VIRTPLUGD_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
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
