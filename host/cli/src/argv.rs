//! virsh's command-line grammar, applied before clap sees argv, so that every misuse is one
//! `error:` line in virsh's words instead of clap's usage block.
//!
//! The options themselves are declared once, with clap (`args.rs`); this module reads them from
//! clap's command tree and parses argv the way virsh 9.0 does:
//! - before the command, getopt style: `-c URI`, `-cURI`, `--connect[=]URI`, `-r`, `--json`;
//!   anything else is `unsupported option '…'. See --help.`;
//! - the command name, else `unknown command: '…'`;
//! - after it, `--name[=value]` options (a word is an option when `--` is followed by a letter
//!   or digit), `--` (only data after it), and bare words, which fill the command's string
//!   options in declaration order, skipping those already given;
//! - at the end, every required option that is missing, one line each, in declaration order.
//!
//! A well-formed command line is rewritten with every option named (`--opt=value`), so clap
//! parses it without guessing (a value may start with `-`). Errors found here are reported
//! before anything is connected, and, as in virsh, without the empty line a command ends with.

use clap::ArgAction;

use crate::args;

/// What `main` does with argv.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A well-formed command, rewritten for clap.
    Run {
        /// argv with every option named.
        argv: Vec<String>,
        /// The first option (in declaration order) given an empty value; virsh refuses it
        /// when the command reads it, after connecting.
        empty: Option<String>,
    },
    /// `--help`, `-h`, `help [command]`, `--version`: clap prints it from this argv.
    Help(Vec<String>),
}

/// A misuse of the command line: virsh's `error:` lines, without the prefix.
#[derive(Debug, PartialEq, Eq)]
pub struct Misuse {
    /// The lines.
    pub lines: Vec<String>,
    /// virsh ran a command (`help`) before failing, so its empty line follows on stdout.
    pub ran: bool,
}

impl Misuse {
    /// One line, found before any command ran.
    pub fn one(line: String) -> Self {
        Self { lines: vec![line], ran: false }
    }
}

/// How an option takes its value (virsh's option types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A flag (`VSH_OT_BOOL`).
    Bool,
    /// A string a bare word may fill (`VSH_OT_DATA`, `VSH_OT_STRING`).
    Data,
    /// A string given by name only (`VSH_OFLAG_REQ_OPT`).
    Named,
    /// Repeatable; takes every bare word left over (`VSH_OT_ARGV`).
    Argv,
}

#[derive(Debug)]
struct Opt {
    name: String,
    kind: Kind,
    required: bool,
}

/// The command's options in declaration order, from its clap definition.
fn options(command: &clap::Command) -> Vec<Opt> {
    let name = command.get_name();
    command
        .get_arguments()
        .filter_map(|a| {
            // `--help` is clap's own (added by the build) and handled before options are read.
            let long = a.get_long().filter(|l| *l != "help")?;
            let kind = if !a.get_action().takes_values() {
                Kind::Bool
            } else if matches!(a.get_action(), ArgAction::Append) {
                Kind::Argv
            } else if a.is_required_set() || args::NAMED_ONLY.contains(&(name, long)) {
                Kind::Named
            } else {
                Kind::Data
            };
            let required = a.is_required_set() || args::is_required(name, long);
            Some(Opt { name: long.to_owned(), kind, required })
        })
        .collect()
}

/// The global options, given before the command or (long form) after it.
#[derive(Debug, Default)]
struct Globals {
    connect: Option<String>,
    readonly: bool,
    json: bool,
}

impl Globals {
    /// Applies a long global option (`word` as given); `None` if it is not one.
    fn long(&mut self, word: &str, rest: &mut impl Iterator<Item = String>) -> Option<Result<(), Misuse>> {
        let (name, value) = split_value(word.strip_prefix("--")?);
        // getopt names a flag given a value by its short letter when it has one, and virsh
        // prints what getopt names.
        let flag = |slot: &mut bool, short: Option<&str>| match value {
            Some(_) => Err(unsupported(short.unwrap_or(word))),
            None => {
                *slot = true;
                Ok(())
            }
        };
        Some(match name {
            "connect" => match value.clone().or_else(|| rest.next()) {
                Some(uri) => {
                    self.connect = Some(uri);
                    Ok(())
                }
                None => Err(connect_needs_value()),
            },
            "readonly" => flag(&mut self.readonly, Some("-r")),
            "json" => flag(&mut self.json, None),
            _ => return None,
        })
    }

    fn argv(self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(uri) = self.connect {
            out.push(format!("--connect={uri}"));
        }
        if self.readonly {
            out.push("--readonly".to_owned());
        }
        if self.json {
            out.push("--json".to_owned());
        }
        out
    }
}

fn connect_needs_value() -> Misuse {
    Misuse::one("option '-c'/'--connect' requires an argument".to_owned())
}

fn unsupported(option: &str) -> Misuse {
    Misuse::one(format!("unsupported option '{option}'. See --help."))
}

/// Parses argv (program name first) as virsh would, with the options `cli` (the [`args::Cli`]
/// command tree) declares.
pub fn parse(cli: &clap::Command, argv: &[String]) -> Result<Parsed, Misuse> {
    let program = argv.first().cloned().unwrap_or_else(|| "virtplug".to_owned());
    let help = |words: &[&str]| {
        Parsed::Help(std::iter::once(program.clone()).chain(words.iter().map(|w| (*w).to_owned())).collect())
    };
    let mut globals = Globals::default();
    let mut words = argv.iter().skip(1).cloned();
    // Options before the command.
    let command = loop {
        let Some(word) = words.next() else { return Err(Misuse::one("no command given. See --help.".to_owned())) };
        if word == "--" {
            match words.next() {
                Some(w) => break w,
                None => return Err(Misuse::one("no command given. See --help.".to_owned())),
            }
        }
        if let Some(long) = word.strip_prefix("--") {
            match split_value(long).0 {
                "help" => return Ok(help(&["--help"])),
                "version" => return Ok(help(&["--version"])),
                _ => {}
            }
            match globals.long(&word, &mut words) {
                Some(done) => {
                    done?;
                    continue;
                }
                None => return Err(unsupported(&word)),
            }
        }
        if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (i, c) in shorts.char_indices() {
                match c {
                    'h' => return Ok(help(&["--help"])),
                    'V' => return Ok(help(&["--version"])),
                    'r' => globals.readonly = true,
                    'c' => {
                        let attached = &shorts[i + 1..];
                        let uri = if attached.is_empty() { words.next() } else { Some(attached.to_owned()) };
                        globals.connect = Some(uri.ok_or_else(connect_needs_value)?);
                        break;
                    }
                    other => return Err(unsupported(&format!("-{other}"))),
                }
            }
            continue;
        }
        break word;
    };
    if command == "help" {
        return match words.next() {
            None => Ok(help(&["--help"])),
            Some(name) if cli.find_subcommand(&name).is_some() => Ok(help(&[&name, "--help"])),
            Some(name) => {
                Err(Misuse { lines: vec![format!("command or command group '{name}' doesn't exist")], ran: true })
            }
        };
    }
    let Some(sub) = cli.find_subcommand(&command) else {
        return Err(Misuse::one(format!("unknown command: '{command}'")));
    };
    // Options are declared when a command is built (`defer` in args.rs): build this one only.
    let mut sub = sub.clone();
    sub.build();
    let opts = options(&sub);
    let mut seen = vec![false; opts.len()];
    let mut given: Vec<(usize, String)> = Vec::new();
    let mut flags: Vec<usize> = Vec::new();
    let mut data_only = false;
    while let Some(word) = words.next() {
        let option =
            word.strip_prefix("--").filter(|rest| !data_only && rest.starts_with(|c: char| c.is_ascii_alphanumeric()));
        if let Some(long) = option {
            let (name, value) = split_value(long);
            if name == "help" {
                return Ok(help(&[&command, "--help"]));
            }
            if let Some(done) = globals.long(&word, &mut words) {
                done?;
                continue;
            }
            let Some(i) = opts.iter().position(|o| o.name == name) else {
                return Err(Misuse::one(format!("command '{command}' doesn't support option --{name}")));
            };
            let opt = &opts[i];
            if seen[i] && opt.kind != Kind::Argv {
                return Err(Misuse::one(format!("option --{name} already seen")));
            }
            seen[i] = true;
            if opt.kind == Kind::Bool {
                if value.is_some() {
                    return Err(Misuse::one(format!("invalid '=' after option --{name}")));
                }
                flags.push(i);
                continue;
            }
            match value.or_else(|| words.next()) {
                Some(v) => given.push((i, v)),
                None => return Err(Misuse::one(format!("expected syntax: --{name} <string>"))),
            }
            continue;
        }
        if word == "--" && !data_only {
            data_only = true;
            continue;
        }
        if !data_only && (word == "-h") {
            return Ok(help(&[&command, "--help"]));
        }
        // A bare word: the first string option not given yet, else the repeatable one.
        let slot = opts.iter().enumerate().position(|(i, o)| match o.kind {
            Kind::Data => !seen[i],
            Kind::Argv => true,
            Kind::Bool | Kind::Named => false,
        });
        match slot {
            Some(i) => {
                seen[i] = true;
                given.push((i, word));
            }
            None => return Err(Misuse::one(format!("unexpected data '{word}'"))),
        }
    }
    let missing: Vec<String> = opts
        .iter()
        .zip(&seen)
        .filter(|(o, seen)| o.required && !**seen)
        .map(|(o, _)| match o.kind {
            Kind::Named => format!("command '{command}' requires --{} option", o.name),
            _ => format!("command '{command}' requires <{}> option", o.name),
        })
        .collect();
    if !missing.is_empty() {
        return Err(Misuse { lines: missing, ran: false });
    }
    // virsh refuses an empty value when the command reads the option (an ARGV list is exempt).
    let empty = opts
        .iter()
        .enumerate()
        .find(|(i, o)| o.kind != Kind::Argv && given.iter().any(|(j, v)| j == i && v.is_empty()))
        .map(|(_, o)| o.name.clone());
    let mut out = vec![program];
    out.extend(globals.argv());
    out.push(command);
    flags.sort_unstable();
    out.extend(flags.into_iter().map(|i| format!("--{}", opts[i].name)));
    out.extend(given.into_iter().map(|(i, v)| format!("--{}={v}", opts[i].name)));
    Ok(Parsed::Run { argv: out, empty })
}

/// `name=value` → (`name`, `Some(value)`); `name` → (`name`, `None`).
fn split_value(option: &str) -> (&str, Option<String>) {
    match option.split_once('=') {
        Some((name, value)) => (name, Some(value.to_owned())),
        None => (option, None),
    }
}
