//! Table-driven tests of every generic rule: exact code and text.

use virtplug_plugin_api::{Capabilities, codes, flags::*};

use super::*;

const ALL_CAPS: Capabilities = Capabilities {
    snapshot_create: snapshot_create::ALL,
    snapshot_revert: snapshot_revert::ALL,
    snapshot_delete: snapshot_delete::ALL,
    snapshot_list: snapshot_list::ALL,
    snapshot_xml: snapshot_xml::ALL,
    snapshot_import: snapshot_import::ALL,
    domain_undefine: domain_undefine::ALL,
    domain_xml: domain_xml::ALL,
};

/// Test driver's masks (libvirt's test driver: create 0x3cb, revert 0x7, delete 0x5).
const TEST_CAPS: Capabilities = Capabilities {
    snapshot_create: 0x3cb,
    snapshot_revert: 0x7,
    snapshot_delete: 0x5,
    snapshot_list: 0x7ff,
    snapshot_xml: 0x1,
    snapshot_import: 0,
    domain_undefine: 0x7f,
    domain_xml: 0x3,
};

/// The expected outcome: `None` = accepted, else libvirt's code and exact text.
type Expect = Option<(u32, &'static str)>;

fn check(op: OpRules, read_only: bool, caps: Capabilities, ops_declared: u64, flags: u32, expect: Expect) {
    let got = super::check(&op, read_only, ops_declared, &caps, flags);
    match (got, expect) {
        (Ok(()), None) => {}
        (Err(e), Some((code, text))) => {
            assert_eq!((e.code(), e.to_string().as_str()), (code, text), "{} flags 0x{flags:x}", op.operation)
        }
        (got, expect) => panic!("{} flags 0x{flags:x} ro={read_only}: got {got:?}, expected {expect:?}", op.operation),
    }
}

#[test]
fn generic_rules_give_libvirt_codes_and_texts() {
    use snapshot_create as c;
    let cases: &[(OpRules, bool, u32, Expect)] = &[
        (SNAPSHOT_CREATE, false, 0, None),
        (SNAPSHOT_CREATE, false, c::REDEFINE | c::CURRENT, None),
        (
            SNAPSHOT_CREATE,
            true,
            0,
            Some((
                codes::OPERATION_DENIED,
                "operation forbidden: read only access prevents virDomainSnapshotCreateXML",
            )),
        ),
        (
            SNAPSHOT_CREATE,
            true,
            c::CURRENT,
            Some((
                codes::OPERATION_DENIED,
                "operation forbidden: read only access prevents virDomainSnapshotCreateXML",
            )),
        ),
        (
            SNAPSHOT_CREATE,
            false,
            0x400,
            Some((codes::INVALID_ARG, "unsupported flags (0x400) in function snapshot_create")),
        ),
        (
            SNAPSHOT_CREATE,
            false,
            0xc00 | c::REDEFINE,
            Some((codes::INVALID_ARG, "unsupported flags (0xc00) in function snapshot_create")),
        ),
        (
            SNAPSHOT_CREATE,
            false,
            c::CURRENT,
            Some((
                codes::INVALID_ARG,
                "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'",
            )),
        ),
        // libvirt checks REQUIRE before EXCLUSIVE, so CURRENT|NO_METADATA reports the require rule.
        (
            SNAPSHOT_CREATE,
            false,
            c::CURRENT | c::NO_METADATA,
            Some((
                codes::INVALID_ARG,
                "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'",
            )),
        ),
        (
            SNAPSHOT_CREATE,
            false,
            c::REDEFINE | c::NO_METADATA,
            Some((
                codes::INVALID_ARG,
                "Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' and 'VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA' are mutually exclusive",
            )),
        ),
        (
            SNAPSHOT_CREATE,
            false,
            c::REDEFINE | c::HALT,
            Some((
                codes::INVALID_ARG,
                "Flags 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' and 'VIR_DOMAIN_SNAPSHOT_CREATE_HALT' are mutually exclusive",
            )),
        ),
        (
            SNAPSHOT_REVERT,
            false,
            snapshot_revert::RUNNING | snapshot_revert::PAUSED,
            Some((
                codes::INVALID_ARG,
                "Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' and 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' are mutually exclusive",
            )),
        ),
        (
            SNAPSHOT_REVERT,
            true,
            0,
            Some((codes::OPERATION_DENIED, "operation forbidden: read only access prevents virDomainRevertToSnapshot")),
        ),
        (
            SNAPSHOT_REVERT,
            false,
            0x10,
            Some((codes::INVALID_ARG, "unsupported flags (0x10) in function snapshot_revert")),
        ),
        (
            SNAPSHOT_DELETE,
            false,
            snapshot_delete::CHILDREN | snapshot_delete::CHILDREN_ONLY,
            Some((
                codes::INVALID_ARG,
                "Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' are mutually exclusive",
            )),
        ),
        (
            SNAPSHOT_DELETE,
            true,
            0,
            Some((codes::OPERATION_DENIED, "operation forbidden: read only access prevents virDomainSnapshotDelete")),
        ),
        (SNAPSHOT_DELETE, false, snapshot_delete::CHILDREN | snapshot_delete::METADATA_ONLY, None),
        (SNAPSHOT_XML, true, 0, None),
        (
            SNAPSHOT_XML,
            true,
            snapshot_xml::SECURE,
            Some((codes::OPERATION_DENIED, "operation forbidden: virDomainSnapshotGetXMLDesc with secure flag")),
        ),
        (SNAPSHOT_XML, false, 0x4, Some((codes::INVALID_ARG, "unsupported flags (0x4) in function snapshot_xml"))),
        (
            DOMAIN_XML,
            true,
            domain_xml::SECURE,
            Some((codes::OPERATION_DENIED, "operation forbidden: virDomainGetXMLDesc with secure flag")),
        ),
        (SNAPSHOT_LIST, true, snapshot_list::LEAVES | snapshot_list::NO_LEAVES, None),
        (
            SNAPSHOT_LIST,
            false,
            0x800,
            Some((codes::INVALID_ARG, "unsupported flags (0x800) in function snapshot_list")),
        ),
        (
            DOMAIN_UNDEFINE,
            true,
            0,
            Some((codes::OPERATION_DENIED, "operation forbidden: read only access prevents virDomainUndefineFlags")),
        ),
        (DOMAIN_UNDEFINE, false, domain_undefine::SNAPSHOTS_METADATA, None),
        (
            DOMAIN_START,
            true,
            0,
            Some((codes::OPERATION_DENIED, "operation forbidden: read only access prevents virDomainCreate")),
        ),
        (
            DOMAIN_DESTROY,
            true,
            0,
            Some((codes::OPERATION_DENIED, "operation forbidden: read only access prevents virDomainDestroy")),
        ),
        (
            DOMAIN_DEFINE,
            true,
            0,
            Some((codes::OPERATION_DENIED, "operation forbidden: read only access prevents virDomainDefineXML")),
        ),
        (
            SNAPSHOT_IMPORT,
            true,
            0,
            Some((
                codes::OPERATION_DENIED,
                "operation forbidden: read only access prevents virtplugDomainSnapshotImport",
            )),
        ),
        (SNAPSHOT_LOOKUP, true, 0, None),
        (SNAPSHOT_CURRENT, true, 0, None),
    ];
    for &(op, ro, flags, expect) in cases {
        check(op, ro, ALL_CAPS, ops::ALL, flags, expect);
    }
}

#[test]
fn plugin_mask_reports_only_rejected_bits() {
    use snapshot_create as c;
    let cases: &[(OpRules, u32, Expect)] = &[
        (
            SNAPSHOT_CREATE,
            c::NO_METADATA,
            Some((codes::INVALID_ARG, "unsupported flags (0x4) in function snapshot_create")),
        ),
        (
            SNAPSHOT_CREATE,
            c::DISK_ONLY | c::QUIESCE,
            Some((codes::INVALID_ARG, "unsupported flags (0x10) in function snapshot_create")),
        ),
        (SNAPSHOT_CREATE, c::REDEFINE | c::CURRENT, None),
        (
            SNAPSHOT_REVERT,
            snapshot_revert::RESET_NVRAM | snapshot_revert::FORCE,
            Some((codes::INVALID_ARG, "unsupported flags (0x8) in function snapshot_revert")),
        ),
        (
            SNAPSHOT_DELETE,
            snapshot_delete::METADATA_ONLY,
            Some((codes::INVALID_ARG, "unsupported flags (0x2) in function snapshot_delete")),
        ),
        (
            SNAPSHOT_IMPORT,
            0,
            Some((codes::NO_SUPPORT, "this function is not supported by the connection driver: snapshot_import")),
        ),
    ];
    let declared = ops::ALL & !ops::SNAPSHOT_IMPORT;
    for &(op, flags, expect) in cases {
        check(op, false, TEST_CAPS, declared, flags, expect);
    }
}

/// libvirt's relationship rules written out as predicates, independently of the tables.
fn refused_by_libvirt(op: &str, f: u32) -> bool {
    use snapshot_create as c;
    let has = |bit: u32| f & bit != 0;
    match op {
        "snapshot_create" | "snapshot_edit" => {
            (has(c::CURRENT) && !has(c::REDEFINE))
                || (has(c::REDEFINE) && has(c::NO_METADATA))
                || (has(c::REDEFINE) && has(c::HALT))
        }
        "snapshot_revert" => has(snapshot_revert::RUNNING) && has(snapshot_revert::PAUSED),
        "snapshot_delete" => has(snapshot_delete::CHILDREN) && has(snapshot_delete::CHILDREN_ONLY),
        _ => false,
    }
}

#[test]
fn every_pair_of_defined_flags_follows_libvirts_rules() {
    for op in ALL {
        let bits: Vec<u32> = (0..32).map(|i| 1u32 << i).filter(|b| op.defined & b != 0).collect();
        for &a in &bits {
            for &b in &bits {
                let flags = a | b;
                // With every operation declared and every mask full, only steps 1–4 can refuse.
                match super::check(op, false, ops::ALL, &ALL_CAPS, flags) {
                    Ok(()) => {
                        assert!(!refused_by_libvirt(op.operation, flags), "{} 0x{flags:x} accepted", op.operation)
                    }
                    Err(HostError::FlagRule { .. }) => {
                        assert!(refused_by_libvirt(op.operation, flags), "{} 0x{flags:x} refused", op.operation)
                    }
                    Err(e) => panic!("{}: 0x{flags:x} gave {e}", op.operation),
                }
            }
        }
    }
}
