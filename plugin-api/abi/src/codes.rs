//! libvirt's `virErrorNumber` values used by virtplug (same numbers as libvirt 9.0).

/// Internal error (`internal error: %s`); also a panic caught inside a plugin.
pub const INTERNAL_ERROR: u32 = 1;
/// The driver does not implement this function.
pub const NO_SUPPORT: u32 = 3;
/// Unknown URI scheme or driver (`no connection driver available for %s`).
pub const NO_CONNECT: u32 = 5;
/// Invalid connection object.
pub const INVALID_CONN: u32 = 6;
/// Invalid domain object.
pub const INVALID_DOMAIN: u32 = 7;
/// Invalid argument; also the flag rules and unsupported flags.
pub const INVALID_ARG: u32 = 8;
/// A command to the hypervisor failed.
pub const OPERATION_FAILED: u32 = 9;
/// `VIR_ERR_NO_NAME`: a definition without a name.
pub const NO_NAME: u32 = 21;
/// Malformed or inconsistent XML.
pub const XML_ERROR: u32 = 27;
/// Read-only connection, or a forbidden operation.
pub const OPERATION_DENIED: u32 = 29;
/// XML parser detail.
pub const XML_DETAIL: u32 = 35;
/// A system call failed (`VIR_ERR_SYSTEM_ERROR`, no message prefix): the remote client's
/// socket-level failures (libvirt's `Failed to connect socket …`) and its setup (token file,
/// TLS). Raised by the host only. [`name`] does not map it yet (it reports `VIR_ERR_UNKNOWN`, as
/// before the code moved here): naming it changes the daemon's JSON, left to an issue that
/// changes error output.
pub const SYSTEM_ERROR: u32 = 38;
/// Domain not found.
pub const NO_DOMAIN: u32 = 42;
/// Authentication failed.
pub const AUTH_FAILED: u32 = 45;
/// Operation not valid in the current state.
pub const OPERATION_INVALID: u32 = 55;
/// Unsupported configuration.
pub const CONFIG_UNSUPPORTED: u32 = 67;
/// The domain is busy: another job holds it (`cannot acquire state change lock`).
pub const OPERATION_TIMEOUT: u32 = 68;
/// Invalid snapshot object.
pub const INVALID_DOMAIN_SNAPSHOT: u32 = 71;
/// Snapshot not found.
pub const NO_DOMAIN_SNAPSHOT: u32 = 72;
/// Revert needs FORCE.
pub const SNAPSHOT_REVERT_RISKY: u32 = 77;
/// Operation not supported.
pub const OPERATION_UNSUPPORTED: u32 = 84;
/// XML refused by schema validation (`VALIDATE`).
pub const XML_INVALID_SCHEMA: u32 = 92;

/// libvirt's message template for a code: the fixed prefix put before the detail text.
/// Codes without a template return `""`.
pub fn prefix(code: u32) -> &'static str {
    match code {
        INTERNAL_ERROR => "internal error: ",
        NO_SUPPORT => "this function is not supported by the connection driver: ",
        NO_CONNECT => "no connection driver available for ",
        INVALID_ARG => "invalid argument: ",
        OPERATION_FAILED => "operation failed: ",
        XML_ERROR => "XML error: ",
        OPERATION_DENIED => "operation forbidden: ",
        NO_DOMAIN => "Domain not found: ",
        AUTH_FAILED => "authentication failed: ",
        OPERATION_INVALID => "Requested operation is not valid: ",
        CONFIG_UNSUPPORTED => "unsupported configuration: ",
        OPERATION_TIMEOUT => "Timed out during operation: ",
        INVALID_DOMAIN_SNAPSHOT => "Invalid domain snapshot: ",
        NO_DOMAIN_SNAPSHOT => "Domain snapshot not found: ",
        SNAPSHOT_REVERT_RISKY => "revert requires force: ",
        OPERATION_UNSUPPORTED => "Operation not supported: ",
        XML_INVALID_SCHEMA => "XML document failed to validate against schema: ",
        _ => "",
    }
}

/// libvirt's text for a code reported without a detail (`virErrorMsg` given no info: a domain
/// lookup's "Domain not found", a definition's "missing name information"): the prefix without
/// its separator for the others.
pub fn title(code: u32) -> &'static str {
    match code {
        NO_NAME => "missing name information",
        _ => prefix(code).trim_end_matches(' ').trim_end_matches(':'),
    }
}

/// The whole text of an error: the code's prefix and the detail, or the code's [`title`]
/// alone when there is no detail.
pub fn text(code: u32, detail: &str) -> String {
    if detail.is_empty() { title(code).to_owned() } else { format!("{}{detail}", prefix(code)) }
}

/// libvirt's symbolic name for a code (`VIR_ERR_…`), for JSON output and reports.
pub fn name(code: u32) -> &'static str {
    match code {
        INTERNAL_ERROR => "VIR_ERR_INTERNAL_ERROR",
        NO_SUPPORT => "VIR_ERR_NO_SUPPORT",
        NO_CONNECT => "VIR_ERR_NO_CONNECT",
        INVALID_CONN => "VIR_ERR_INVALID_CONN",
        INVALID_DOMAIN => "VIR_ERR_INVALID_DOMAIN",
        INVALID_ARG => "VIR_ERR_INVALID_ARG",
        OPERATION_FAILED => "VIR_ERR_OPERATION_FAILED",
        NO_NAME => "VIR_ERR_NO_NAME",
        XML_ERROR => "VIR_ERR_XML_ERROR",
        OPERATION_DENIED => "VIR_ERR_OPERATION_DENIED",
        XML_DETAIL => "VIR_ERR_XML_DETAIL",
        NO_DOMAIN => "VIR_ERR_NO_DOMAIN",
        AUTH_FAILED => "VIR_ERR_AUTH_FAILED",
        OPERATION_INVALID => "VIR_ERR_OPERATION_INVALID",
        CONFIG_UNSUPPORTED => "VIR_ERR_CONFIG_UNSUPPORTED",
        OPERATION_TIMEOUT => "VIR_ERR_OPERATION_TIMEOUT",
        INVALID_DOMAIN_SNAPSHOT => "VIR_ERR_INVALID_DOMAIN_SNAPSHOT",
        NO_DOMAIN_SNAPSHOT => "VIR_ERR_NO_DOMAIN_SNAPSHOT",
        SNAPSHOT_REVERT_RISKY => "VIR_ERR_SNAPSHOT_REVERT_RISKY",
        OPERATION_UNSUPPORTED => "VIR_ERR_OPERATION_UNSUPPORTED",
        XML_INVALID_SCHEMA => "VIR_ERR_XML_INVALID_SCHEMA",
        _ => "VIR_ERR_UNKNOWN",
    }
}
