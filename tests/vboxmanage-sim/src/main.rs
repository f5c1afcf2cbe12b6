//! `VBoxManage` simulator: reproduces VirtualBox 7.0's `VBoxManage` for the commands the
//! virtualbox plugin uses (`list vms|runningvms`, `showvminfo`, `snapshot …`, `startvm`,
//! `controlvm`, `createvm`, `unregistervm`, `--version`) byte for byte on stdout and stderr, with
//! VirtualBox's exit codes, keeping a machine registry and one real 7.0 `.vbox` file per machine
//! under `$VBOXSIM_HOME` (reference `virtualbox-backend.md` §8).
//!
//! `VBoxManage --sim-control …` ([`control`]) is a test-only interface (create machines, set
//! states, inject faults) and **not part of VBoxManage**.
//!
//! This crate must not depend on the plugin's code (its tests use the plugin, never the other
//! way round), and must not invent behaviour the reference marks as unknown without saying so.

mod control;
mod home;
mod out;
mod snapshot;
mod time;
mod vbox;
mod vm;

use std::io::Write;
use std::process::ExitCode;

use home::Home;
use out::Out;

const VERSION: &str = "7.0.8r156879";

fn dispatch(home: &Home, args: &[String], out: &mut Out) -> Result<u8, String> {
    let rest = args.get(1..).unwrap_or(&[]);
    match args.first().map(String::as_str) {
        None => {
            out.out("Usage:\n\nVBoxManage [<general option>] <command>\n");
            Ok(2)
        }
        Some("--version" | "-version" | "-v" | "-V") => {
            out.out(&format!("{VERSION}\n"));
            Ok(0)
        }
        Some("--sim-control") => control::run(home, rest, out),
        Some("list") => vm::list(home, rest, out),
        Some("showvminfo") => vm::showvminfo(home, rest, out),
        Some("snapshot") => snapshot::handle(home, rest, out),
        Some("createvm") => vm::createvm(home, rest, out),
        Some("unregistervm") => vm::unregistervm(home, rest, out),
        Some("startvm") => vm::startvm(home, rest, out),
        Some("controlvm") => vm::controlvm(home, rest, out),
        Some(other) => {
            // VBoxManage.cpp:775.
            out.error(&format!("Invalid command '{other}'"));
            Ok(2)
        }
    }
}

fn run(args: &[String], out: &mut Out) -> Result<u8, String> {
    let home = Home::from_env()?;
    let fault = args.first().and_then(|c| control::take_fault(&home, c));
    match fault.as_ref().map(|(k, a)| (k.as_str(), a.as_str())) {
        Some(("hang", _)) => {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            return Ok(1);
        }
        Some(("garble", _)) => {
            out.out("\u{1}\u{2}garbage\nnot a key=value line \"\n");
            return Ok(0);
        }
        Some(("exit", a)) => {
            let (code, text) = a.split_once(' ').unwrap_or((a, ""));
            out.stderr.push_str(&text.replace("\\n", "\n"));
            out.stderr.push('\n');
            return Ok(code.parse().unwrap_or(1));
        }
        _ => {}
    }
    let code = dispatch(&home, args, out)?;
    match fault.as_ref().map(|(k, _)| k.as_str()) {
        Some("truncate") => {
            let mut n = out.stdout.len() / 2;
            while !out.stdout.is_char_boundary(n) {
                n -= 1;
            }
            out.stdout.truncate(n);
        }
        Some("vanish") => {
            if let Some(vm) = args.get(1)
                && let Ok(Ok((e, _))) = home.find(vm, "", 0, "sim")
            {
                let left: Vec<_> = home.entries()?.into_iter().filter(|x| x.uuid != e.uuid).collect();
                home.save_entries(&left)?;
            }
        }
        _ => {}
    }
    Ok(code)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    while matches!(args.first().map(String::as_str), Some("-q" | "--nologo" | "-nologo")) {
        args.remove(0);
    }
    let mut out = Out::default();
    let code = match run(&args, &mut out) {
        Ok(c) => c,
        Err(e) => {
            out.error(&format!("vboxmanage-sim: {e}"));
            1
        }
    };
    // Write errors (a closed pipe) cannot be reported anywhere useful.
    let _ = std::io::stdout().write_all(out.stdout.as_bytes());
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    ExitCode::from(code)
}
