//! The CLI's error: what virsh prints as one or more `error: …` lines. The binary turns it
//! into stderr text and an exit code in one place (`main.rs`).

use virtplug_host::{HostError, model::limits};

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

/// The most an XML file named on the command line may hold: virsh's `VSH_MAX_XML_FILE`
/// (10 MiB), the model's [`limits::MAX_XML_BYTES`].
pub const MAX_XML_FILE_BYTES: u64 = limits::MAX_XML_BYTES as u64;

/// The most a snapshot bundle file may hold: the model's [`limits::MAX_BUNDLE_BYTES`] (512 MiB,
/// the daemon's import body limit), so what one host exports another can import from a file.
pub const MAX_BUNDLE_FILE_BYTES: u64 = limits::MAX_BUNDLE_BYTES as u64;

/// strerror(EOVERFLOW): what libvirt's `virFileReadAll` reports for a file over its limit.
const TOO_LARGE: &str = "Value too large for defined data type";

/// strerror(EILSEQ): the text is not UTF-8, so it cannot be XML we accept.
const NOT_UTF8: &str = "Invalid or incomplete multibyte or wide character";

/// Reads an XML file the user named (`--xmlfile`, `define --file`), at most
/// [`MAX_XML_FILE_BYTES`], with virsh's messages on failure.
pub fn read_xml_file(path: &str) -> Result<String> {
    read_limited(path, MAX_XML_FILE_BYTES)
}

/// Reads a snapshot bundle file, at most [`MAX_BUNDLE_FILE_BYTES`] (the largest input the CLI
/// reads), with virsh's messages on failure.
pub fn read_file(path: &str) -> Result<String> {
    read_limited(path, MAX_BUNDLE_FILE_BYTES)
}

/// Reads the file at `path` (a device or `/dev/stdin` too) as UTF-8 text of at most `limit`
/// bytes, never holding more than `limit + 1`: `/dev/zero` fails once past the limit instead of
/// exhausting memory, and a regular file larger than the limit fails before it is read.
/// Errors are virsh's one line: `Failed to open file '…': …` when it cannot be opened,
/// `Failed to read file '…': …` when reading fails or the file is too large.
pub fn read_limited(path: &str, limit: u64) -> Result<String> {
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::msg(format!("Failed to open file '{path}': {}", io_text(&e))))?;
    if file.metadata().is_ok_and(|m| m.is_file() && m.len() > limit) {
        return Err(CliError::msg(format!("Failed to read file '{path}': {TOO_LARGE}")));
    }
    read_bounded(file, path, limit)
}

/// [`read_limited`] for an open reader (stdin, say); `name` is what the message calls it.
pub fn read_bounded(mut reader: impl std::io::Read, name: &str, limit: u64) -> Result<String> {
    let failed = |why: &str| CliError::msg(format!("Failed to read file '{name}': {why}"));
    // One byte past the limit tells "exactly at the limit" from "over it", as virFileReadLimFD.
    let most = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    while bytes.len() < most {
        let want = chunk.len().min(most - bytes.len());
        let n = match reader.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(&io_text(&e))),
        };
        // Grow by doubling, but never past `most`: a stream at the limit holds limit + 1
        // bytes, not twice that.
        if bytes.capacity() - bytes.len() < n {
            let grow = bytes.len().max(n).min(most - bytes.len());
            bytes.reserve_exact(grow);
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    if bytes.len() >= most {
        return Err(failed(TOO_LARGE));
    }
    String::from_utf8(bytes).map_err(|_| failed(NOT_UTF8))
}
