//! `virtplug`: the virsh-compatible command-line client of virtplug.
//!
//! This file owns process concerns only: parsing argv, printing the command's output, and
//! mapping every error to `error: …` lines on stderr, the empty line virsh then prints on
//! stdout, and exit status 1 (the one place where errors become exit codes). Commands live in the `virtplug_cli`
//! library; it must not print or exit.

use std::{io::Write, process::ExitCode};

use clap::Parser;
use virtplug_cli::{args::Cli, error::CliError};

/// Exit status of every failure, as virsh.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version go to stdout and succeed.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match virtplug_cli::run(cli).map_err(anyhow::Error::from).and_then(print) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

fn print(text: String) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
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
