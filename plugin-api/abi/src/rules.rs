//! The operation table: one [`OpRules`] per operation, as data. For each operation: its name
//! (taken from `flags::ops::NAMES`, where each operation name is written once),
//! libvirt's public function (named in read-only refusals), whether a read-only connection is
//! refused, the SECURE flag a read-only connection may not use, every defined bit with its public
//! name, the relationship rules between flags, and where the plugin's declared mask is.
//!
//! Constant tables only: nothing here crosses the ABI (no type of this module is `StableAbi`),
//! and the checks that read the tables live in the SDK (`virtplug_plugin_sdk::rules::check`),
//! which both the host and every SDK plugin's guard run.

use crate::{
    Capabilities,
    flags::{
        domain_undefine, domain_xml, ops, snapshot_create, snapshot_delete, snapshot_import, snapshot_list,
        snapshot_revert, snapshot_xml,
    },
};

/// A relationship between two flags of one operation.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// `flag` may only be given together with `required`.
    Requires {
        /// The dependent flag.
        flag: u32,
        /// The flag it needs.
        required: u32,
    },
    /// `a` and `b` may not be given together.
    Exclusive {
        /// First flag.
        a: u32,
        /// Second flag.
        b: u32,
    },
}

/// The generic rules of one operation.
#[derive(Debug, Clone, Copy)]
pub struct OpRules {
    /// The operation name used everywhere (`snapshot_create`): `ops::NAMES`' entry for
    /// [`OpRules::op_bit`], never written here.
    pub operation: &'static str,
    /// libvirt's public function, named in read-only refusals.
    pub function: &'static str,
    /// The operation's bit in [`ops`].
    pub op_bit: u64,
    /// Whether a read-only connection is refused.
    pub refused_read_only: bool,
    /// The flag a read-only connection may not use (SECURE), if any.
    pub secure_flag: u32,
    /// Every bit libvirt defines for the operation.
    pub defined: u32,
    /// Public names of the bits.
    pub names: &'static [(u32, &'static str)],
    /// Relationship rules, checked in order.
    pub rules: &'static [Rule],
    /// The plugin's declared mask for this operation.
    pub mask: fn(&Capabilities) -> u32,
}

const fn no_flags(_: &Capabilities) -> u32 {
    0
}

/// The operation name of `bit`, taken from `ops::NAMES` so that a name is written once. Only
/// called in the `const` tables below, where a bit without a name stops the build (the panic is
/// evaluated by the compiler, never at run time).
const fn op_name(bit: u64) -> &'static str {
    match ops::name(bit) {
        Some(name) => name,
        None => panic!("operation bit without a name in ops::NAMES"),
    }
}

macro_rules! simple_op {
    ($name:ident, $function:literal, $bit:expr, $ro:literal) => {
        /// Rules of a flag-less operation (libvirt's `
        #[doc = $function]
        /// `).
        pub const $name: OpRules = OpRules {
            operation: op_name($bit),
            function: $function,
            op_bit: $bit,
            refused_read_only: $ro,
            secure_flag: 0,
            defined: 0,
            names: &[],
            rules: &[],
            mask: no_flags,
        };
    };
}

/// `snapshot_create` (virDomainSnapshotCreateXML).
pub const SNAPSHOT_CREATE: OpRules = OpRules {
    operation: op_name(ops::SNAPSHOT_CREATE),
    function: "virDomainSnapshotCreateXML",
    op_bit: ops::SNAPSHOT_CREATE,
    refused_read_only: true,
    secure_flag: 0,
    defined: snapshot_create::ALL,
    names: snapshot_create::NAMES,
    rules: &[
        Rule::Requires { flag: snapshot_create::CURRENT, required: snapshot_create::REDEFINE },
        Rule::Exclusive { a: snapshot_create::REDEFINE, b: snapshot_create::NO_METADATA },
        Rule::Exclusive { a: snapshot_create::REDEFINE, b: snapshot_create::HALT },
    ],
    mask: |c| c.snapshot_create,
};

/// `snapshot_edit`: a redefine under a possibly new name; create's flags and rules.
pub const SNAPSHOT_EDIT: OpRules = OpRules {
    operation: op_name(ops::SNAPSHOT_EDIT),
    function: "virDomainSnapshotCreateXML",
    op_bit: ops::SNAPSHOT_EDIT,
    ..SNAPSHOT_CREATE
};

/// `snapshot_revert` (virDomainRevertToSnapshot).
pub const SNAPSHOT_REVERT: OpRules = OpRules {
    operation: op_name(ops::SNAPSHOT_REVERT),
    function: "virDomainRevertToSnapshot",
    op_bit: ops::SNAPSHOT_REVERT,
    refused_read_only: true,
    secure_flag: 0,
    defined: snapshot_revert::ALL,
    names: snapshot_revert::NAMES,
    rules: &[Rule::Exclusive { a: snapshot_revert::RUNNING, b: snapshot_revert::PAUSED }],
    mask: |c| c.snapshot_revert,
};

/// `snapshot_delete` (virDomainSnapshotDelete).
pub const SNAPSHOT_DELETE: OpRules = OpRules {
    operation: op_name(ops::SNAPSHOT_DELETE),
    function: "virDomainSnapshotDelete",
    op_bit: ops::SNAPSHOT_DELETE,
    refused_read_only: true,
    secure_flag: 0,
    defined: snapshot_delete::ALL,
    names: snapshot_delete::NAMES,
    rules: &[Rule::Exclusive { a: snapshot_delete::CHILDREN, b: snapshot_delete::CHILDREN_ONLY }],
    mask: |c| c.snapshot_delete,
};

/// `snapshot_xml` (virDomainSnapshotGetXMLDesc).
pub const SNAPSHOT_XML: OpRules = OpRules {
    operation: op_name(ops::SNAPSHOT_XML),
    function: "virDomainSnapshotGetXMLDesc",
    op_bit: ops::SNAPSHOT_XML,
    refused_read_only: false,
    secure_flag: snapshot_xml::SECURE,
    defined: snapshot_xml::ALL,
    names: snapshot_xml::NAMES,
    rules: &[],
    mask: |c| c.snapshot_xml,
};

/// `snapshot_list` (virDomainListAllSnapshots / virDomainSnapshotListAllChildren).
pub const SNAPSHOT_LIST: OpRules = OpRules {
    operation: op_name(ops::SNAPSHOT_LIST),
    function: "virDomainListAllSnapshots",
    op_bit: ops::SNAPSHOT_LIST,
    refused_read_only: false,
    secure_flag: 0,
    defined: snapshot_list::ALL,
    names: snapshot_list::NAMES,
    rules: &[],
    mask: |c| c.snapshot_list,
};

/// `snapshot_import`: a whole hierarchy redefined in one transaction (virtplug only). A bundle
/// holds secure XML, so it needs a read-write connection.
pub const SNAPSHOT_IMPORT: OpRules = OpRules {
    operation: op_name(ops::SNAPSHOT_IMPORT),
    function: "virtplugDomainSnapshotImport",
    op_bit: ops::SNAPSHOT_IMPORT,
    refused_read_only: true,
    secure_flag: 0,
    defined: snapshot_import::ALL,
    names: snapshot_import::NAMES,
    rules: &[],
    mask: |c| c.snapshot_import,
};

/// `domain_undefine` (virDomainUndefineFlags).
pub const DOMAIN_UNDEFINE: OpRules = OpRules {
    operation: op_name(ops::DOMAIN_UNDEFINE),
    function: "virDomainUndefineFlags",
    op_bit: ops::DOMAIN_UNDEFINE,
    refused_read_only: true,
    secure_flag: 0,
    defined: domain_undefine::ALL,
    names: domain_undefine::NAMES,
    rules: &[],
    mask: |c| c.domain_undefine,
};

/// `domain_xml` (virDomainGetXMLDesc).
pub const DOMAIN_XML: OpRules = OpRules {
    operation: op_name(ops::DOMAIN_XML),
    function: "virDomainGetXMLDesc",
    op_bit: ops::DOMAIN_XML,
    refused_read_only: false,
    secure_flag: domain_xml::SECURE,
    defined: domain_xml::ALL,
    names: domain_xml::NAMES,
    rules: &[],
    mask: |c| c.domain_xml,
};

simple_op!(DOMAIN_LIST, "virConnectListAllDomains", ops::DOMAIN_LIST, false);
simple_op!(DOMAIN_LOOKUP, "virDomainLookupByName", ops::DOMAIN_LOOKUP, false);
simple_op!(DOMAIN_DEFINE, "virDomainDefineXML", ops::DOMAIN_DEFINE, true);
simple_op!(DOMAIN_START, "virDomainCreate", ops::DOMAIN_START, true);
simple_op!(DOMAIN_SHUTDOWN, "virDomainShutdown", ops::DOMAIN_SHUTDOWN, true);
simple_op!(DOMAIN_DESTROY, "virDomainDestroy", ops::DOMAIN_DESTROY, true);
simple_op!(DOMAIN_SUSPEND, "virDomainSuspend", ops::DOMAIN_SUSPEND, true);
simple_op!(DOMAIN_RESUME, "virDomainResume", ops::DOMAIN_RESUME, true);
simple_op!(SNAPSHOT_LOOKUP, "virDomainSnapshotLookupByName", ops::SNAPSHOT_LOOKUP, false);
simple_op!(SNAPSHOT_CURRENT, "virDomainSnapshotCurrent", ops::SNAPSHOT_CURRENT, false);
// A domain job changes who may write the domain, so a read-only connection may not hold one.
// libvirt has no public function for it (its jobs are internal); the refusal names ours.
simple_op!(DOMAIN_JOB, "virtplugDomainJobBegin", ops::DOMAIN_JOB, true);
// Only reads the store; named after virtplug, since libvirt has no such function.
simple_op!(SNAPSHOT_GENERATION, "virtplugDomainSnapshotGeneration", ops::SNAPSHOT_GENERATION, false);
// Where the metadata lives: a read. Named after virtplug (libvirt has no shared store).
simple_op!(SNAPSHOT_STORE, "virtplugDomainSnapshotStore", ops::SNAPSHOT_STORE, false);
// A handover changes who may write the domain's metadata: not on a read-only connection.
simple_op!(SNAPSHOT_HANDOVER, "virtplugDomainSnapshotHandover", ops::SNAPSHOT_HANDOVER, true);

/// Every table, for tests, documentation and the CLI's `plugins` listing.
pub const ALL: &[OpRules] = &[
    SNAPSHOT_CREATE,
    SNAPSHOT_EDIT,
    SNAPSHOT_REVERT,
    SNAPSHOT_DELETE,
    SNAPSHOT_XML,
    SNAPSHOT_LIST,
    SNAPSHOT_IMPORT,
    DOMAIN_UNDEFINE,
    DOMAIN_XML,
    DOMAIN_LIST,
    DOMAIN_LOOKUP,
    DOMAIN_DEFINE,
    DOMAIN_START,
    DOMAIN_SHUTDOWN,
    DOMAIN_DESTROY,
    DOMAIN_SUSPEND,
    DOMAIN_RESUME,
    SNAPSHOT_LOOKUP,
    SNAPSHOT_CURRENT,
    DOMAIN_JOB,
    SNAPSHOT_GENERATION,
    SNAPSHOT_STORE,
    SNAPSHOT_HANDOVER,
];

#[cfg(test)]
mod tests {
    use super::{ALL, ops};

    /// Every operation bit of `ops::ALL` has exactly one name, every name is one declared bit,
    /// and no name is used twice.
    #[test]
    fn every_operation_bit_has_exactly_one_name() {
        for shift in 0..64 {
            let bit = 1u64 << shift;
            let named = ops::NAMES.iter().filter(|(b, _)| *b == bit).count();
            let expected = usize::from(ops::ALL & bit != 0);
            assert_eq!(named, expected, "bit 1 << {shift}: {named} names in ops::NAMES");
        }
        for (i, (bit, name)) in ops::NAMES.iter().enumerate() {
            assert!(bit.is_power_of_two() && ops::ALL & bit != 0, "{name}: 0x{bit:x} is not one declared bit");
            assert!(ops::NAMES[..i].iter().all(|(_, n)| n != name), "{name} is named twice");
            assert_eq!(ops::name(*bit), Some(*name));
        }
        assert_eq!(ops::name(0), None);
    }

    /// Every rule table names one declared bit, carries that bit's name, and every declared bit
    /// has exactly one table.
    #[test]
    fn every_rule_names_a_declared_bit() {
        for op in ALL {
            assert!(op.op_bit.is_power_of_two() && ops::ALL & op.op_bit != 0, "{}: 0x{:x}", op.operation, op.op_bit);
            assert_eq!(ops::name(op.op_bit), Some(op.operation), "{}", op.function);
        }
        for (bit, name) in ops::NAMES {
            let tables = ALL.iter().filter(|op| op.op_bit == *bit).count();
            assert_eq!(tables, 1, "{name}: {tables} rule tables");
        }
    }
}
