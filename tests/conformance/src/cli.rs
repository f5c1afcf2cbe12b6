//! The command line: `virtplug-conformance --plugin PATH --uri URI [--format text|json|junit|tap]
//! [--only PATTERN] [--live] [--domain NAME] [--timeout SECS] [--probe CMD]`, or
//! `virtplug-conformance --plugin PATH --list` (every case id for that plugin, one per line).
//!
//! Exit codes: 0 every case passed or was skipped; 1 a case failed; 2 the suite could not run
//! (bad usage, an `--only` part that matches no case id, not a shared library, no root module,
//! ABI mismatch, a plugin that hangs or crashes while loading or opening), with a one-line
//! diagnosis on stderr.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use crate::{
    ctx::Options,
    report::{self, Format},
    runner::{self, Runner},
};

const USAGE: &str = "usage: virtplug-conformance --plugin PATH (--uri URI [--format text|json|junit|tap] [--only PATTERN] [--live] [--domain NAME] [--timeout SECS] [--probe CMD] | --list)";

struct Args {
    opts: Options,
    format: Format,
    only: Option<String>,
    timeout: Duration,
    run_one: Option<(String, PathBuf)>,
    list: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut plugin = None;
    let mut uri = None;
    let mut domain = "test".to_owned();
    let mut live = false;
    let mut format = Format::Text;
    let mut only = None;
    let mut timeout = Duration::from_secs(20);
    let mut run_one = None;
    let mut result_file = None;
    let mut probe = None;
    let mut list = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--plugin" => plugin = Some(PathBuf::from(value("--plugin")?)),
            "--uri" => uri = Some(value("--uri")?),
            "--domain" => domain = value("--domain")?,
            "--live" => live = true,
            "--list" => list = true,
            "--probe" => probe = Some(value("--probe")?),
            "--format" => {
                let v = value("--format")?;
                format = Format::parse(&v).ok_or_else(|| format!("unknown format '{v}' (text, json, junit or tap)"))?;
            }
            "--only" => only = Some(value("--only")?),
            "--timeout" => {
                let v = value("--timeout")?;
                let secs: u64 = v.parse().map_err(|_| format!("--timeout takes whole seconds, not '{v}'"))?;
                timeout = Duration::from_secs(secs.max(1));
            }
            "--run-one" => run_one = Some(value("--run-one")?),
            "--result-file" => result_file = Some(PathBuf::from(value("--result-file")?)),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let plugin = plugin.ok_or("--plugin is required")?;
    let uri = match (uri, list) {
        (Some(u), _) => u,
        (None, true) => String::new(),
        (None, false) => return Err("--uri is required".to_owned()),
    };
    let run_one = match (run_one, result_file) {
        (Some(c), Some(f)) => Some((c, f)),
        (None, None) => None,
        _ => return Err("--run-one and --result-file go together".to_owned()),
    };
    Ok(Args { opts: Options { plugin, uri, domain, live, probe }, format, only, timeout, run_one, list })
}

/// The CLI's entry point.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("virtplug-conformance: {e}");
            if e != USAGE {
                eprintln!("{USAGE}");
            }
            return ExitCode::from(2);
        }
    };
    if let Some((case, result)) = &args.run_one {
        return ExitCode::from(runner::run_one(&args.opts, case, result) as u8);
    }
    if args.list {
        return list(&args.opts.plugin);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("virtplug-conformance: cannot find my own executable: {e}");
            return ExitCode::from(2);
        }
    };
    let text = args.format == Format::Text;
    let runner = Runner {
        spawn: runner::cli_spawner(exe, &args.opts),
        opts: args.opts,
        only: args.only,
        timeout: args.timeout,
        progress: text.then(|| -> Box<dyn Fn(&runner::CaseReport)> {
            Box::new(|c| println!("{}", report::text_line(&c.id, &c.outcome, c.millis)))
        }),
    };
    match runner.run() {
        Err(e) => {
            eprintln!("virtplug-conformance: {e}");
            ExitCode::from(2)
        }
        Ok(report) => {
            if text {
                println!("{}", report::summary(&report));
            } else {
                print!("{}", report::render(&report, args.format));
            }
            if report.counts().1 == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
        }
    }
}

/// `--list`: loads the plugin in this process (no URI is opened) and prints the id of every case
/// the suite has for what it declares, in run order, one per line.
fn list(plugin: &std::path::Path) -> ExitCode {
    match virtplug_host::load_plugin(plugin) {
        Ok(loaded) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for case in crate::cases::all(&loaded.info) {
                // A closed pipe (`| head`) ends the listing quietly.
                if writeln!(out, "{}", case.id).is_err() {
                    break;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("virtplug-conformance: cannot run: {e}");
            ExitCode::from(2)
        }
    }
}
