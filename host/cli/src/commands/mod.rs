//! Command implementations. Each returns its stdout text (without virsh's end-of-command
//! newline, which [`crate::run`] adds) or a [`CliError`].

pub mod bundle;
pub mod devices;
pub mod domain;
pub mod edit;
pub mod migrate;
pub mod plugins;
pub mod snapshot;
pub mod snapshot_list;

use virtplug_host::{Connection, DomainInfo, HostError, SnapshotInfo, codes};

use crate::error::{CliError, Result};

/// ORs the flags whose option was given: the option → flag tables of every command.
pub fn flags_of(table: &[(bool, u32)]) -> u32 {
    table.iter().filter(|(given, _)| *given).fold(0, |acc, (_, flag)| acc | flag)
}

/// virsh's "Options --a and --b are mutually exclusive" check.
pub fn exclusive(a: (&str, bool), b: (&str, bool)) -> Result<()> {
    if a.1 && b.1 {
        return Err(CliError::msg(format!("Options --{} and --{} are mutually exclusive", a.0, b.0)));
    }
    Ok(())
}

/// Assigns a command's positional words to its string options, like virsh: in declaration
/// order, skipping options given by name.
#[derive(Debug)]
pub struct Positional {
    command: &'static str,
    words: std::collections::VecDeque<String>,
}

impl Positional {
    /// The positional words of `command`.
    pub fn new(command: &'static str, words: Vec<String>) -> Self {
        Self { command, words: words.into() }
    }

    /// The option's value: given by name, else the next positional word.
    pub fn take(&mut self, named: Option<String>) -> Option<String> {
        named.or_else(|| self.words.pop_front())
    }

    /// Like [`Positional::take`], but the option is required.
    pub fn require(&mut self, named: Option<String>, option: &str) -> Result<String> {
        self.take(named).ok_or_else(|| CliError::msg(format!("command '{}' requires <{option}> option", self.command)))
    }

    /// The words left over (an `ARGV` option such as `--diskspec` takes them).
    pub fn rest(&mut self) -> Vec<String> {
        self.words.drain(..).collect()
    }

    /// Fails on a word no option took.
    pub fn done(mut self) -> Result<()> {
        match self.words.pop_front() {
            Some(w) => Err(CliError::msg(format!("unexpected data '{w}'"))),
            None => Ok(()),
        }
    }
}

/// What every command runs against.
#[derive(Debug)]
pub struct Ctx {
    /// The open connection.
    pub conn: Connection,
    /// `--json` was given.
    pub json: bool,
}

impl Ctx {
    /// Looks a domain up by name, UUID or id, with virsh's message when it does not exist.
    pub fn domain(&self, name: &str) -> Result<DomainInfo> {
        self.conn.domain_lookup(name).map_err(|e| match e.code() {
            codes::NO_DOMAIN => CliError::msg(format!("failed to get domain '{name}'")),
            _ => CliError::Host(e),
        })
    }

    /// The current snapshot, or virsh's "has no current snapshot" error.
    pub fn current_snapshot(&self, dom: &str) -> Result<SnapshotInfo> {
        self.conn.snapshot_current(dom)?.ok_or_else(|| CliError::msg(format!("domain '{dom}' has no current snapshot")))
    }

    /// virsh's `virshLookupSnapshot`: `--<arg> NAME` or `--current`; with `exclusive`,
    /// both together are refused.
    pub fn lookup_snapshot(
        &self,
        dom: &str,
        arg: &str,
        name: Option<&str>,
        current: bool,
        exclusive: bool,
    ) -> Result<SnapshotInfo> {
        if exclusive && current && name.is_some() {
            return Err(CliError::msg(format!("--{arg} and --current are mutually exclusive")));
        }
        match (name, current) {
            (Some(n), _) => Ok(self.conn.snapshot_lookup(dom, n)?),
            (None, true) => self.current_snapshot(dom),
            (None, false) => Err(CliError::msg(format!("--{arg} or --current is required"))),
        }
    }

    /// Refuses `--json` on a command that changes state.
    pub fn no_json(&self, command: &str) -> Result<()> {
        if self.json {
            return Err(CliError::msg(format!("command '{command}' does not support --json")));
        }
        Ok(())
    }
}

/// Pretty JSON text for `--json` output.
pub fn json_text(value: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    s.push('\n');
    s
}

/// Whether a host error is `NO_SUPPORT` (the plugin lacks the operation).
pub fn is_no_support(e: &HostError) -> bool {
    e.code() == codes::NO_SUPPORT
}
