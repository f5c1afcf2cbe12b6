//! The CLI's error: what virsh prints as one or more `error: …` lines. The binary turns it
//! into stderr text and an exit code in one place (`main.rs`).

use virtplug_host::HostError;

/// A failed command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An error from the host library or a plugin; its Display is libvirt's full text.
    #[error("{0}")]
    Host(#[from] HostError),
    /// A refusal by the CLI itself (option combinations, missing arguments, files).
    #[error("{0}")]
    Message(String),
    /// A failure virsh announces with its own line first (`Failed to revert snapshot s1`),
    /// then the cause.
    #[error("{what}")]
    Failed {
        /// virsh's failure line.
        what: String,
        /// The cause, printed on the next line.
        #[source]
        cause: HostError,
    },
    /// A cause followed by virsh's closing line (`Failed to update s2`).
    #[error("{cause}")]
    Then {
        /// Printed first.
        cause: Box<CliError>,
        /// Printed last.
        then: String,
    },
}

impl CliError {
    /// A refusal by the CLI.
    pub fn msg(text: impl Into<String>) -> Self {
        Self::Message(text.into())
    }

    /// The `error: ` lines, in the order virsh prints them.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::Host(e) => vec![e.to_string()],
            Self::Message(m) => vec![m.clone()],
            Self::Failed { what, cause } => vec![what.clone(), cause.to_string()],
            Self::Then { cause, then } => {
                let mut lines = cause.lines();
                lines.push(then.clone());
                lines
            }
        }
    }

    /// The libvirt error code, when the error came from the host.
    pub fn code(&self) -> Option<u32> {
        match self {
            Self::Host(e) | Self::Failed { cause: e, .. } => Some(e.code()),
            Self::Then { cause, .. } => cause.code(),
            Self::Message(_) => None,
        }
    }
}

/// Result with [`CliError`].
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// Wraps a host result with virsh's failure line.
pub fn failed<T>(what: impl FnOnce() -> String, r: Result<T, HostError>) -> Result<T> {
    r.map_err(|cause| CliError::Failed { what: what(), cause })
}

/// An I/O error text without Rust's ` (os error N)` suffix, as libvirt prints strerror.
pub fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Reads a file the user named, with libvirt's message on failure.
pub fn read_file(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| CliError::msg(format!("Failed to open file '{path}': {}", io_text(&e))))
}
