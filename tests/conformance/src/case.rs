//! What a case is and what it returns: pass, fail (expected vs got) or skip (the capability
//! that was not declared).

use serde::{Deserialize, Serialize};
use virtplug_plugin_api::{Capabilities, PluginInfo, flags::ops};

use crate::ctx::Ctx;

/// Which level a case belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// No hypervisor needed: loading, ABI, `info()`, masks, robustness probes, refusals.
    Static,
    /// Snapshot semantics against the URI's host.
    Behaviour,
}

/// The verdict of one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// The plugin behaved as the contract says; `note` may carry a measurement.
    Pass {
        /// Optional detail (a timing, a version).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The plugin did not.
    Fail {
        /// One line: what went wrong.
        message: String,
        /// What the contract expects.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expected: Option<String>,
        /// What the plugin did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        got: Option<String>,
    },
    /// Not applicable: the capability was not declared (or the run mode forbids it).
    Skip {
        /// The capability that was not declared, or why the case cannot run.
        reason: String,
    },
}

impl Outcome {
    /// A pass without a note.
    pub fn pass() -> Self {
        Self::Pass { note: None }
    }
    /// A failure with expected and got.
    pub fn fail(message: impl Into<String>, expected: impl Into<String>, got: impl Into<String>) -> Self {
        Self::Fail { message: message.into(), expected: Some(expected.into()), got: Some(got.into()) }
    }
    /// Short status word.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Pass { .. } => "pass",
            Self::Fail { .. } => "fail",
            Self::Skip { .. } => "skip",
        }
    }
}

/// A failure inside a case body; `?` turns it into [`Outcome::Fail`].
#[derive(Debug, Clone)]
pub struct Failure {
    /// One line.
    pub message: String,
    /// Expected.
    pub expected: Option<String>,
    /// Got.
    pub got: Option<String>,
}

impl Failure {
    /// A failure with expected vs got.
    pub fn new(message: impl Into<String>, expected: impl Into<String>, got: impl Into<String>) -> Self {
        Self { message: message.into(), expected: Some(expected.into()), got: Some(got.into()) }
    }
    /// A failure with only a message.
    pub fn msg(message: impl Into<String>) -> Self {
        Self { message: message.into(), expected: None, got: None }
    }
}

impl From<Failure> for Outcome {
    fn from(f: Failure) -> Self {
        Outcome::Fail { message: f.message, expected: f.expected, got: f.got }
    }
}

/// Result of a case body.
pub type CaseResult = Result<Outcome, Failure>;

/// A flag a case needs: operation name, the mask accessor and the bit.
#[derive(Debug, Clone, Copy)]
pub struct FlagNeed {
    /// Operation name (`snapshot_delete`).
    pub op: &'static str,
    /// The bit.
    pub bit: u32,
    /// Its public name.
    pub name: &'static str,
    /// Reads the operation's mask.
    pub mask: fn(&Capabilities) -> u32,
}

/// What a case needs declared to be applicable.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// Operations (`flags::ops` bits).
    pub ops: u64,
    /// Flags.
    pub flags: Vec<FlagNeed>,
    /// The case changes domain state or defines domains: under `--live` it needs a domain the
    /// suite defined itself.
    pub touches_domain: bool,
    /// The case asks the author's `--probe` hook what the hypervisor holds.
    pub probe: bool,
}

impl Needs {
    /// `None` when applicable, else the missing capability, named.
    pub fn missing(&self, info: &PluginInfo) -> Option<String> {
        let missing_ops = self.ops & !info.ops;
        if missing_ops != 0 {
            let names: Vec<&str> = ops::NAMES.iter().filter(|(b, _)| missing_ops & b != 0).map(|(_, n)| *n).collect();
            return Some(format!("operation not declared: {}", names.join(", ")));
        }
        for f in &self.flags {
            if (f.mask)(&info.caps) & f.bit == 0 {
                return Some(format!("flag not declared: {} {}", f.op, f.name));
            }
        }
        None
    }
}

/// One conformance case.
pub struct Case {
    /// Stable identifier, e.g. `static.panic_probe` or `matrix.snapshot_create.NO_METADATA.direct`.
    pub id: String,
    /// Level.
    pub level: Level,
    /// One line: what it checks.
    pub title: String,
    /// What must be declared.
    pub needs: Needs,
    /// The diagnosis when the child process dies instead of answering.
    pub on_crash: Option<&'static str>,
    /// The body, run in a child process.
    pub run: Box<dyn Fn(&Ctx) -> CaseResult + Send + Sync>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("id", &self.id).field("level", &self.level).finish_non_exhaustive()
    }
}

impl Case {
    /// A case with no needs.
    pub fn new(
        id: impl Into<String>,
        level: Level,
        title: impl Into<String>,
        run: impl Fn(&Ctx) -> CaseResult + Send + Sync + 'static,
    ) -> Self {
        Self { id: id.into(), level, title: title.into(), needs: Needs::default(), on_crash: None, run: Box::new(run) }
    }
    /// Adds needed operations.
    pub fn ops(mut self, ops: u64) -> Self {
        self.needs.ops |= ops;
        self
    }
    /// Adds a needed flag.
    pub fn flag(mut self, f: FlagNeed) -> Self {
        self.needs.flags.push(f);
        self
    }
    /// Marks the case as changing domain state.
    pub fn touches_domain(mut self) -> Self {
        self.needs.touches_domain = true;
        self
    }
    /// Marks the case as needing the `--probe` hook.
    pub fn probe(mut self) -> Self {
        self.needs.probe = true;
        self
    }
    /// Sets the diagnosis used when the child dies.
    pub fn on_crash(mut self, diagnosis: &'static str) -> Self {
        self.on_crash = Some(diagnosis);
        self
    }
}
