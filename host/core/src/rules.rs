//! The generic checks every public entry point runs before dispatch. The operation table is data
//! in the ABI crate (`virtplug_plugin_api::rules`: one [`OpRules`] per operation) and the checks
//! are one function in the SDK (`virtplug_plugin_sdk::rules::check`), which every SDK plugin's
//! guard runs too; here they are re-exported and their refusal becomes a [`HostError`]:
//!
//! 1. read-only connection → `OPERATION_DENIED` (`read only access prevents <function>`);
//! 2. SECURE on a read-only connection → `OPERATION_DENIED` (`<function> with secure flag`);
//! 3. bits libvirt does not define → `unsupported flags (0x…) in function <op>`;
//! 4. relationship rules (requires, mutually exclusive) → `INVALID_ARG`, libvirt's sentences;
//! 5. the plugin's declared mask → `unsupported flags (0x…) in function <op>`, rejected bits only;
//! 6. the plugin does not implement the operation → `NO_SUPPORT`.

use virtplug_plugin_api::Capabilities;
use virtplug_plugin_sdk::rules::Refusal;
pub use virtplug_plugin_sdk::rules::{
    ALL, DOMAIN_DEFINE, DOMAIN_DESTROY, DOMAIN_JOB, DOMAIN_LIST, DOMAIN_LOOKUP, DOMAIN_RESUME, DOMAIN_SHUTDOWN,
    DOMAIN_START, DOMAIN_SUSPEND, DOMAIN_UNDEFINE, DOMAIN_XML, OpRules, Rule, SNAPSHOT_CREATE, SNAPSHOT_CURRENT,
    SNAPSHOT_DELETE, SNAPSHOT_EDIT, SNAPSHOT_GENERATION, SNAPSHOT_HANDOVER, SNAPSHOT_IMPORT, SNAPSHOT_LIST,
    SNAPSHOT_LOOKUP, SNAPSHOT_REVERT, SNAPSHOT_STORE, SNAPSHOT_XML, name_of,
};

use crate::error::{HostError, Result};

impl From<Refusal> for HostError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::ReadOnly { function } => Self::ReadOnly { function },
            Refusal::SecureOnReadOnly { function } => Self::SecureOnReadOnly { function },
            Refusal::UnsupportedFlags { flags, operation } => Self::UnsupportedFlags { flags, operation },
            Refusal::FlagRule { message } => Self::FlagRule { message },
            Refusal::NoSupport { operation } => Self::NoSupport { operation },
        }
    }
}

/// All six steps of `op`, in order, for a connection that is `read_only` to a plugin declaring
/// `ops_declared` and `caps`.
pub fn check(op: &OpRules, read_only: bool, ops_declared: u64, caps: &Capabilities, flags: u32) -> Result<()> {
    Ok(virtplug_plugin_sdk::rules::check(op, read_only, ops_declared, caps, flags)?)
}

#[cfg(test)]
mod tests;
