//! The host's error type. Every variant carries libvirt's error code ([`HostError::code`]) and
//! prints exactly the message libvirt would print.

use std::path::PathBuf;

use virtplug_model as model;
use virtplug_plugin_api::codes;

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
    /// Input refused by the host's validation (names, XML, bundles) or an error reported by
    /// the plugin; printed with libvirt's prefix for its code.
    #[error("{0}")]
    Driver(#[source] model::Error),
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
            Self::Driver(e) => e.code,
        }
    }
}

impl From<model::Error> for HostError {
    fn from(e: model::Error) -> Self {
        Self::Driver(e)
    }
}
