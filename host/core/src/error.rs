//! The host's error type. Every variant carries libvirt's error code ([`HostError::code`]) and
//! prints exactly the message libvirt would print. The variant says who refused: the serving
//! plugin ([`HostError::Driver`]), the way to a remote plugin ([`HostError::Remote`]: socket,
//! HTTP, the daemon's JSON), or the host itself (every other variant). Backends report with
//! [`BackendError`], which keeps the first two apart.

use std::path::PathBuf;

use virtplug_model as model;
use virtplug_plugin_api::codes;

/// libvirt's `VIR_ERR_SYSTEM_ERROR` (socket-level failures, "Failed to connect socket …"), now in
/// the ABI's code table; re-exported here for existing callers (`remote::SYSTEM_ERROR`).
pub use codes::SYSTEM_ERROR;

/// Names (domain and snapshot) are data: any UTF-8 without control characters, not empty,
/// at most this many bytes.
pub const MAX_NAME_BYTES: usize = 4096;

/// Result with [`HostError`].
pub type Result<T, E = HostError> = std::result::Result<T, E>;

/// Everything that can go wrong in the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// A change (or secure read) was asked of a read-only connection.
    #[error("operation forbidden: read only access prevents {function}")]
    ReadOnly {
        /// libvirt's public function name, e.g. `virDomainSnapshotCreateXML`.
        function: &'static str,
    },
    /// SECURE asked on a read-only connection.
    #[error("operation forbidden: {function} with secure flag")]
    SecureOnReadOnly {
        /// libvirt's public function name.
        function: &'static str,
    },
    /// A generic flag rule (requires / mutually exclusive) was broken; no `invalid argument: `
    /// prefix, as in libvirt.
    #[error("{message}")]
    FlagRule {
        /// The rule's fixed sentence with the flags' public names.
        message: String,
    },
    /// Flags outside what libvirt defines or what the plugin declares.
    #[error("unsupported flags (0x{flags:x}) in function {operation}")]
    UnsupportedFlags {
        /// Only the rejected bits.
        flags: u32,
        /// The operation name, e.g. `snapshot_create`.
        operation: &'static str,
    },
    /// The plugin does not implement the operation.
    #[error("this function is not supported by the connection driver: {operation}")]
    NoSupport {
        /// The operation name.
        operation: &'static str,
    },
    /// No plugin serves the URI's scheme, or the URI is malformed.
    #[error("no connection driver available for {uri}")]
    NoConnect {
        /// The URI as given.
        uri: String,
    },
    /// A plugin file was refused at load time; `reason` is one line.
    #[error("cannot load plugin {}: {reason}", path.display())]
    Load {
        /// The plugin file.
        path: PathBuf,
        /// Why, in one line (the full abi_stable report goes to debug logs).
        reason: String,
    },
    /// A plugin directory or config file problem.
    #[error("{message}")]
    Config {
        /// One line naming the path.
        message: String,
    },
    /// A domain or snapshot name the caller gave, refused before it reached a plugin.
    #[error("invalid argument: {kind} name {problem}")]
    InvalidName {
        /// `domain` or `snapshot`.
        kind: &'static str,
        /// What is wrong with it.
        problem: NameProblem,
    },
    /// Input refused by the host's own validation with the model's parsers and rules (snapshot
    /// XML, bundles); printed with libvirt's prefix for its code.
    #[error("{0}")]
    Invalid(#[source] model::Error),
    /// A bundle for another domain than the one it is imported into.
    #[error(
        "invalid argument: snapshot bundle is for domain uuid {bundle_uuid}, but domain '{domain}' has uuid {domain_uuid}"
    )]
    BundleDomainMismatch {
        /// The UUID the bundle names.
        bundle_uuid: String,
        /// The domain imported into.
        domain: String,
        /// Its UUID.
        domain_uuid: String,
    },
    /// A root snapshot asked for its parent (libvirt's GetParent).
    #[error("Domain snapshot not found: snapshot '{snapshot}' does not have a parent")]
    NoParent {
        /// The root snapshot.
        snapshot: String,
    },
    /// The migration engine stopped: a step the host runs (verify, wait for an import, its own
    /// lock) failed; the sentence says which.
    #[error("operation failed: {message}")]
    MigrationFailed {
        /// One line.
        message: String,
    },
    /// The destination already holds a same-named snapshot with another definition.
    #[error(
        "Requested operation is not valid: snapshot {snapshot} already exists on the destination with a different definition"
    )]
    MigrationConflict {
        /// The snapshot's name.
        snapshot: String,
    },
    /// The remote client could not be set up (a token file, TLS); libvirt's system error.
    #[error("{what}: {reason}")]
    ClientSetup {
        /// What was being done, e.g. `cannot set up TLS`.
        what: String,
        /// The I/O error's text.
        reason: String,
    },
    /// The way to a remote plugin failed: the socket or TLS stream (libvirt's system error), the
    /// HTTP exchange, or the daemon's answer (not JSON, or no error body); printed with
    /// libvirt's prefix for its code. Not a refusal of the plugin behind the daemon.
    #[error("{}", codes::text(*code, message))]
    Remote {
        /// libvirt's code: [`SYSTEM_ERROR`] for the socket and HTTP, `INTERNAL_ERROR` for an
        /// answer the client cannot read.
        code: u32,
        /// The detail, without the code's prefix.
        message: String,
    },
    /// An error reported by the serving plugin (in this process, or behind a daemon); printed
    /// with libvirt's prefix for its code.
    #[error("{0}")]
    Driver(#[source] model::Error),
}

/// Result of a [`Backend`](crate::Backend) call.
pub type BackendResult<T> = std::result::Result<T, BackendError>;

/// What a [`Backend`](crate::Backend) reports: the serving plugin's refusal, or (remote backends)
/// a failure of the way to it. `Connection` turns it into [`HostError::Driver`] or
/// [`HostError::Remote`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The serving plugin refused (in this process, or a daemon reported its plugin's error).
    #[error("{0}")]
    Driver(#[source] model::Error),
    /// The transport to a daemon failed; see [`HostError::Remote`].
    #[error("{}", codes::text(*code, message))]
    Remote {
        /// libvirt's code.
        code: u32,
        /// The detail, without the code's prefix.
        message: String,
    },
}

impl BackendError {
    /// A transport failure with libvirt's `code` and `message` (without the code's prefix).
    pub fn remote(code: u32, message: impl Into<String>) -> Self {
        Self::Remote { code, message: message.into() }
    }

    /// libvirt's `virErrorNumber` for this error.
    pub fn code(&self) -> u32 {
        match self {
            Self::Driver(e) => e.code,
            Self::Remote { code, .. } => *code,
        }
    }
}

/// What a plugin returns is its refusal.
impl From<model::Error> for BackendError {
    fn from(e: model::Error) -> Self {
        Self::Driver(e)
    }
}

impl From<BackendError> for HostError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Driver(e) => Self::Driver(e),
            BackendError::Remote { code, message } => Self::Remote { code, message },
        }
    }
}

/// What is wrong with a name (see [`HostError::InvalidName`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    /// The empty string.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_NAME_BYTES`](MAX_NAME_BYTES).
    #[error("is longer than {} bytes", MAX_NAME_BYTES)]
    TooLong,
    /// A control character anywhere.
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl HostError {
    /// libvirt's `virErrorNumber` for this error.
    pub fn code(&self) -> u32 {
        match self {
            Self::ReadOnly { .. } | Self::SecureOnReadOnly { .. } => codes::OPERATION_DENIED,
            Self::FlagRule { .. } | Self::UnsupportedFlags { .. } => codes::INVALID_ARG,
            Self::NoSupport { .. } => codes::NO_SUPPORT,
            Self::NoConnect { .. } => codes::NO_CONNECT,
            Self::Load { .. } | Self::Config { .. } => codes::INTERNAL_ERROR,
            Self::InvalidName { .. } | Self::BundleDomainMismatch { .. } => codes::INVALID_ARG,
            Self::NoParent { .. } => codes::NO_DOMAIN_SNAPSHOT,
            Self::MigrationFailed { .. } => codes::OPERATION_FAILED,
            Self::MigrationConflict { .. } => codes::OPERATION_INVALID,
            Self::ClientSetup { .. } => SYSTEM_ERROR,
            Self::Remote { code, .. } => *code,
            Self::Invalid(e) | Self::Driver(e) => e.code,
        }
    }
}

/// A model error met inside the host (its parsers and rules, run before any plugin call) is the
/// host's refusal; what a backend returns becomes [`HostError::Driver`] or [`HostError::Remote`]
/// explicitly, from its [`BackendError`], in `Connection::call`.
impl From<model::Error> for HostError {
    fn from(e: model::Error) -> Self {
        Self::Invalid(e)
    }
}

#[cfg(test)]
mod tests {
    use super::{BackendError, HostError, NameProblem, SYSTEM_ERROR};
    use virtplug_model as model;
    use virtplug_plugin_api::codes;

    /// Every host-raised variant prints and numbers exactly what the model error it replaced
    /// (`HostError::Driver(model::Error::new(code, detail))`) printed and numbered.
    #[test]
    fn host_variants_keep_libvirt_texts_and_codes() {
        let s = |v: &str| v.to_owned();
        let cases: Vec<(HostError, u32, String)> = vec![
            (
                HostError::InvalidName { kind: "domain", problem: NameProblem::Empty },
                codes::INVALID_ARG,
                s("domain name must not be empty"),
            ),
            (
                HostError::InvalidName { kind: "snapshot", problem: NameProblem::TooLong },
                codes::INVALID_ARG,
                s("snapshot name is longer than 4096 bytes"),
            ),
            (
                HostError::InvalidName { kind: "domain", problem: NameProblem::ControlCharacter },
                codes::INVALID_ARG,
                s("domain name must not contain control characters"),
            ),
            (
                HostError::BundleDomainMismatch { bundle_uuid: s("u1"), domain: s("vm"), domain_uuid: s("u2") },
                codes::INVALID_ARG,
                s("snapshot bundle is for domain uuid u1, but domain 'vm' has uuid u2"),
            ),
            (
                HostError::NoParent { snapshot: s("s1") },
                codes::NO_DOMAIN_SNAPSHOT,
                s("snapshot 's1' does not have a parent"),
            ),
            (HostError::MigrationFailed { message: s("it broke") }, codes::OPERATION_FAILED, s("it broke")),
            (
                HostError::MigrationConflict { snapshot: s("s1") },
                codes::OPERATION_INVALID,
                s("snapshot s1 already exists on the destination with a different definition"),
            ),
            (
                HostError::ClientSetup { what: s("cannot set up TLS"), reason: s("no roots") },
                SYSTEM_ERROR,
                s("cannot set up TLS: no roots"),
            ),
            (
                HostError::Remote { code: SYSTEM_ERROR, message: s("cannot talk to virtplugd: refused") },
                SYSTEM_ERROR,
                s("cannot talk to virtplugd: refused"),
            ),
            (
                HostError::Remote { code: codes::INTERNAL_ERROR, message: s("malformed daemon response: eof") },
                codes::INTERNAL_ERROR,
                s("malformed daemon response: eof"),
            ),
        ];
        for (e, code, detail) in cases {
            let before = model::Error::new(code, detail);
            assert_eq!(e.to_string(), before.to_string(), "{e:?}");
            assert_eq!(e.code(), code, "{e:?}");
        }
    }

    /// Who refused: a model error met in the host is the host's; only backend results are the
    /// plugin's, and a backend's transport failure is neither.
    #[test]
    fn model_errors_in_the_host_are_the_hosts() {
        let e = HostError::from(model::Error::invalid_arg("bad xml"));
        assert!(matches!(e, HostError::Invalid(_)), "{e:?}");
        assert_eq!(e.to_string(), "invalid argument: bad xml");
        assert_eq!(e.code(), codes::INVALID_ARG);
        let e = HostError::from(BackendError::from(model::Error::invalid_arg("bad xml")));
        assert!(matches!(e, HostError::Driver(_)), "{e:?}");
        let e = HostError::from(BackendError::remote(SYSTEM_ERROR, "cannot talk to virtplugd: refused"));
        assert_eq!(e, HostError::Remote { code: SYSTEM_ERROR, message: "cannot talk to virtplugd: refused".into() });
    }
}
