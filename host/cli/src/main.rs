//! `virtplug`: the virsh-compatible command-line client of virtplug.
//!
//! This file owns process concerns only: parsing argv, printing the command's output, and
//! mapping every error to `error: …` lines on stderr, the empty line virsh then prints on
//! stdout, and exit status 1 (the one place where errors become exit codes). Commands live in the `virtplug_cli`
//! library; it must not print or exit.

use std::{io::Write, process::ExitCode};

use clap::{CommandFactory, FromArgMatches};
use virtplug_cli::{
    args::Cli,
    argv::{self, Misuse, Parsed},
    error::CliError,
};

/// Exit status of every failure, as virsh.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = match parse_argv() {
        Ok(Some(cli)) => cli,
        // --help and --version went to stdout.
        Ok(None) => return ExitCode::SUCCESS,
        Err(m) => return misuse(&m),
    };
    match virtplug_cli::run(cli).map_err(anyhow::Error::from).and_then(print) {
        Ok(()) => ExitCode::SUCCESS,
        // Whoever read our output stopped (`virtplug … | head`): nothing more to say, as virsh
        // with SIGPIPE ignored.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// argv → [`Cli`] through virsh's grammar ([`argv::parse`]); `None` once help was printed.
/// clap's command tree is built once, for both.
fn parse_argv() -> Result<Option<Cli>, Misuse> {
    let words = std::env::args_os()
        .map(|w| {
            w.into_string().map_err(|w| Misuse::one(format!("argument '{}' is not valid UTF-8", w.to_string_lossy())))
        })
        .collect::<Result<Vec<String>, Misuse>>()?;
    let command = Cli::command();
    match argv::parse(&command, &words)? {
        Parsed::Help(words) => {
            match command.try_get_matches_from(words) {
                Err(e) if !e.use_stderr() => {
                    let _ = e.print();
                }
                Err(e) => return Err(clap_misuse(&e)),
                Ok(_) => {}
            }
            Ok(None)
        }
        Parsed::Run { argv, empty } => {
            let mut matches = command.try_get_matches_from(argv).map_err(|e| clap_misuse(&e))?;
            let mut cli = Cli::from_arg_matches_mut(&mut matches).map_err(|e| clap_misuse(&e))?;
            cli.empty_option = empty;
            Ok(Some(cli))
        }
    }
}

/// A clap refusal that [`argv::parse`] let through (it should not): its first line only.
fn clap_misuse(e: &clap::Error) -> Misuse {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    Misuse::one(line.strip_prefix("error: ").unwrap_or(line).to_owned())
}

/// A command line virsh would refuse: its `error:` lines; the empty line on stdout only if a
/// command ran (virsh prints it after each command).
fn misuse(m: &Misuse) -> ExitCode {
    let text: String = m.lines.iter().map(|l| format!("error: {l}\n")).collect();
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    if m.ran {
        let _ = std::io::stdout().lock().write_all(b"\n");
    }
    ExitCode::from(EXIT_FAILURE)
}

fn print(text: String) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Prints an error as virsh does and returns the exit status.
fn report(e: &anyhow::Error) -> ExitCode {
    let lines = match e.downcast_ref::<CliError>() {
        Some(cli) => cli.lines(),
        // A broken stdout pipe or similar: the error and its causes, one per line.
        None => e.chain().map(ToString::to_string).collect(),
    };
    let mut text = String::new();
    for line in lines {
        text.push_str("error: ");
        text.push_str(&line);
        text.push('\n');
    }
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    // virsh ends every command with an empty line on stdout, a failed one too.
    let _ = std::io::stdout().lock().write_all(b"\n");
    ExitCode::from(EXIT_FAILURE)
}
