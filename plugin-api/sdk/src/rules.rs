//! The generic checks, in libvirt's order, over the ABI's operation table
//! ([`virtplug_plugin_api::rules`]). One function, [`check`], run by the host before it calls a
//! plugin and by the SDK's guard before it calls the plugin's code, so an SDK plugin refuses
//! exactly what the host refuses even when it is called without the host:
//!
//! 1. read-only connection → `OPERATION_DENIED` (`read only access prevents <function>`);
//! 2. SECURE on a read-only connection → `OPERATION_DENIED` (`<function> with secure flag`);
//! 3. bits libvirt does not define → `unsupported flags (0x…) in function <op>`;
//! 4. relationship rules (requires, mutually exclusive) → `INVALID_ARG`, libvirt's sentences;
//! 5. the plugin's declared mask → `unsupported flags (0x…) in function <op>`, rejected bits only;
//! 6. the plugin does not implement the operation → `NO_SUPPORT`.

use std::fmt;

pub use virtplug_plugin_api::rules::*;
use virtplug_plugin_api::{Capabilities, codes};

use crate::Error;

/// Why [`check`] refused a call. `Display` prints the detail text (without libvirt's per-code
/// prefix); [`Refusal::code`] is libvirt's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Step 1: the operation changes state and the connection is read-only.
    ReadOnly {
        /// libvirt's public function, e.g. `virDomainSnapshotCreateXML`.
        function: &'static str,
    },
    /// Step 2: SECURE asked on a read-only connection.
    SecureOnReadOnly {
        /// libvirt's public function.
        function: &'static str,
    },
    /// Steps 3 and 5: bits libvirt does not define, or the plugin did not declare.
    UnsupportedFlags {
        /// Only the rejected bits.
        flags: u32,
        /// The operation name, e.g. `snapshot_create`.
        operation: &'static str,
    },
    /// Step 4: a relationship rule; the message is libvirt's sentence with the flags' names.
    FlagRule {
        /// `Flag 'A' is required by flag 'B'` or `Flags 'A' and 'B' are mutually exclusive`.
        message: String,
    },
    /// Step 6: the plugin does not implement the operation.
    NoSupport {
        /// The operation name.
        operation: &'static str,
    },
}

impl Refusal {
    /// libvirt's `virErrorNumber` for this refusal.
    pub fn code(&self) -> u32 {
        match self {
            Self::ReadOnly { .. } | Self::SecureOnReadOnly { .. } => codes::OPERATION_DENIED,
            Self::UnsupportedFlags { .. } | Self::FlagRule { .. } => codes::INVALID_ARG,
            Self::NoSupport { .. } => codes::NO_SUPPORT,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadOnly { function } => write!(f, "read only access prevents {function}"),
            Self::SecureOnReadOnly { function } => write!(f, "{function} with secure flag"),
            Self::UnsupportedFlags { flags, operation } => {
                write!(f, "unsupported flags (0x{flags:x}) in function {operation}")
            }
            Self::FlagRule { message } => f.write_str(message),
            Self::NoSupport { operation } => f.write_str(operation),
        }
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::new(r.code(), r.to_string())
    }
}

/// The public name of one bit of `op` (`VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE`).
pub fn name_of(op: &OpRules, bit: u32) -> &'static str {
    op.names.iter().find(|(b, _)| *b == bit).map_or("?", |(_, n)| n)
}

/// The six checks of `op` for a call with `flags` on a connection that is `read_only`, to a
/// plugin that declares the operations `ops_declared` and the masks `caps`; the first that
/// fails is the refusal.
pub fn check(op: &OpRules, read_only: bool, ops_declared: u64, caps: &Capabilities, flags: u32) -> Result<(), Refusal> {
    if read_only && op.refused_read_only {
        return Err(Refusal::ReadOnly { function: op.function });
    }
    if read_only && flags & op.secure_flag != 0 {
        return Err(Refusal::SecureOnReadOnly { function: op.function });
    }
    let unknown = flags & !op.defined;
    if unknown != 0 {
        return Err(Refusal::UnsupportedFlags { flags: unknown, operation: op.operation });
    }
    for rule in op.rules {
        match *rule {
            Rule::Requires { flag, required } if flags & flag != 0 && flags & required == 0 => {
                return Err(Refusal::FlagRule {
                    message: format!("Flag '{}' is required by flag '{}'", name_of(op, required), name_of(op, flag)),
                });
            }
            Rule::Exclusive { a, b } if flags & a != 0 && flags & b != 0 => {
                return Err(Refusal::FlagRule {
                    message: format!("Flags '{}' and '{}' are mutually exclusive", name_of(op, a), name_of(op, b)),
                });
            }
            _ => {}
        }
    }
    // An operation the plugin does not declare is refused by name, before its (empty) flag
    // mask could turn the refusal into "unsupported flags": libvirt reports a missing driver
    // function as NO_SUPPORT before any driver-side flag check.
    if ops_declared & op.op_bit == 0 {
        return Err(Refusal::NoSupport { operation: op.operation });
    }
    let rejected = flags & !(op.mask)(caps);
    if rejected != 0 {
        return Err(Refusal::UnsupportedFlags { flags: rejected, operation: op.operation });
    }
    Ok(())
}
