//! The one error type of the model, SDK and plugins: libvirt's code plus a fixed detail text.

use virtplug_plugin_api::codes;

/// An error with libvirt's `virErrorNumber` and the detail text. `Display` prints it the way
/// libvirt does: the code's fixed prefix (`invalid argument: `), then the detail; without a
/// detail, the code's title alone (`codes::title`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", codes::text(*code, message))]
pub struct Error {
    /// libvirt's error code ([`codes`]).
    pub code: u32,
    /// The detail text.
    pub message: String,
}

/// Result with the model's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a code and a detail text.
    pub fn new(code: u32, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    /// `VIR_ERR_INTERNAL_ERROR`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, message)
    }
    /// `VIR_ERR_INVALID_ARG`.
    pub fn invalid_arg(message: impl Into<String>) -> Self {
        Self::new(codes::INVALID_ARG, message)
    }
    /// `VIR_ERR_OPERATION_INVALID`.
    pub fn operation_invalid(message: impl Into<String>) -> Self {
        Self::new(codes::OPERATION_INVALID, message)
    }
    /// `VIR_ERR_NO_SUPPORT` naming the operation.
    pub fn no_support(operation: &str) -> Self {
        Self::new(codes::NO_SUPPORT, operation)
    }
    /// `VIR_ERR_NO_DOMAIN` for a name.
    pub fn no_domain(name: &str) -> Self {
        Self::new(codes::NO_DOMAIN, format!("no domain with matching name '{name}'"))
    }
    /// `VIR_ERR_NO_DOMAIN_SNAPSHOT` for a name.
    pub fn no_snapshot(name: &str) -> Self {
        Self::new(codes::NO_DOMAIN_SNAPSHOT, format!("no domain snapshot with matching name '{name}'"))
    }
    /// `VIR_ERR_NO_DOMAIN_SNAPSHOT`: the domain has no current snapshot.
    pub fn no_current_snapshot() -> Self {
        Self::new(codes::NO_DOMAIN_SNAPSHOT, "the domain does not have a current snapshot")
    }
}
