//! The command line: `virtplug-conformance --plugin PATH --uri URI [--format text|json|junit|tap]
//! [--only PATTERN] [--live] [--domain NAME] [--timeout SECS]`.
//!
//! Exit codes: 0 every case passed or was skipped; 1 a case failed; 2 the suite could not run
//! (bad usage, not a shared library, no root module, ABI mismatch, a plugin that hangs or crashes
//! while loading or opening), with a one-line diagnosis on stderr.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use crate::{
    ctx::Options,
    report::{self, Format},
    runner::{self, Runner},
};

const USAGE: &str = "usage: virtplug-conformance --plugin PATH --uri URI [--format text|json|junit|tap] [--only PATTERN] [--live] [--domain NAME] [--timeout SECS]";

struct Args {
    opts: Options,
    format: Format,
    only: Option<String>,
    timeout: Duration,
    run_one: Option<(String, PathBuf)>,
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
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--plugin" => plugin = Some(PathBuf::from(value("--plugin")?)),
            "--uri" => uri = Some(value("--uri")?),
            "--domain" => domain = value("--domain")?,
            "--live" => live = true,
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
    let uri = uri.ok_or("--uri is required")?;
    let run_one = match (run_one, result_file) {
        (Some(c), Some(f)) => Some((c, f)),
        (None, None) => None,
        _ => return Err("--run-one and --result-file go together".to_owned()),
    };
    Ok(Args { opts: Options { plugin, uri, domain, live }, format, only, timeout, run_one })
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
        Err(reason) => {
            eprintln!("virtplug-conformance: cannot run: {reason}");
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
