//! The capability-driven matrix: for every operation and flag the plugin does NOT declare, one
//! case shows the host refuses it without calling the plugin (the refusal is the host's own
//! error, not one the plugin produced), and one calls the plugin directly and expects
//! `NO_SUPPORT` / `INVALID_ARG` rather than silent acceptance. Declared flags are covered by the
//! behavioural cases, and by one `accepted` case each: a declared flag must not be refused as
//! unsupported.

use virtplug_host::{HostError, codes};
use virtplug_plugin_api::{
    AbiError, Capabilities,
    abi_stable::std_types::{ROption, RString, RVec},
    flags::{
        domain_undefine, domain_xml, ops, snapshot_create, snapshot_delete, snapshot_import, snapshot_list,
        snapshot_revert, snapshot_xml,
    },
};

use crate::{
    case::{Case, CaseResult, Failure, Level, Outcome},
    ctx::{Ctx, PREFIX, describe_abi, describe_host, raw, s},
};

/// A domain name that never exists: state-changing probes only ever target it.
pub const NOSUCH_DOMAIN: &str = "vpconf-nosuch-domain";
/// The snapshot the direct probes aim at.
const PROBE: &str = "vpconf-probe";

/// One operation of the ABI, as the matrix sees it.
pub struct OpSpec {
    /// Name.
    pub name: &'static str,
    /// Bit in `ops`.
    pub bit: u64,
    /// Every bit libvirt defines (0 for flag-less operations).
    pub defined: u32,
    /// Public names of the bits.
    pub names: &'static [(u32, &'static str)],
    /// The declared mask.
    pub mask: fn(&Capabilities) -> u32,
    /// Whether the direct call needs the probe snapshot to exist.
    pub needs_probe: bool,
    /// The call through the host.
    pub host: fn(&Ctx, u32) -> Result<(), HostError>,
    /// The call straight to the plugin.
    pub direct: fn(&Ctx, u32) -> Result<(), AbiError>,
}

fn none(_: &Capabilities) -> u32 {
    0
}

fn redefine_xml(name: &str) -> String {
    format!("<domainsnapshot><name>{name}</name><state>running</state><creationTime>1</creationTime></domainsnapshot>")
}

fn create_xml(flags: u32) -> String {
    let name = format!("{PREFIX}probe-0x{flags:x}-{}", std::process::id());
    if flags & snapshot_create::REDEFINE != 0 {
        redefine_xml(&name)
    } else {
        format!("<domainsnapshot><name>{name}</name></domainsnapshot>")
    }
}

/// Every operation (in `ops::NAMES` order).
pub static OPS: &[OpSpec] = &[
    OpSpec {
        name: "domain_list",
        bit: ops::DOMAIN_LIST,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_list().map(drop),
        direct: |c, _| raw(c.raw().domain_list()).map(drop),
    },
    OpSpec {
        name: "domain_lookup",
        bit: ops::DOMAIN_LOOKUP,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_lookup(c.dom()).map(drop),
        direct: |c, _| raw(c.raw().domain_lookup_by_name(s(c.dom()))).map(drop),
    },
    OpSpec {
        name: "domain_define",
        bit: ops::DOMAIN_DEFINE,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_define(&probe_domain_xml()).map(drop),
        direct: |c, _| raw(c.raw().domain_define(s(&probe_domain_xml()))).map(drop),
    },
    OpSpec {
        name: "domain_undefine",
        bit: ops::DOMAIN_UNDEFINE,
        defined: domain_undefine::ALL,
        names: domain_undefine::NAMES,
        mask: |c| c.domain_undefine,
        needs_probe: false,
        host: |c, f| c.conn.domain_undefine(NOSUCH_DOMAIN, f),
        direct: |c, f| raw(c.raw().domain_undefine(s(NOSUCH_DOMAIN), f)),
    },
    OpSpec {
        name: "domain_start",
        bit: ops::DOMAIN_START,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_start(NOSUCH_DOMAIN),
        direct: |c, _| raw(c.raw().domain_start(s(NOSUCH_DOMAIN))),
    },
    OpSpec {
        name: "domain_shutdown",
        bit: ops::DOMAIN_SHUTDOWN,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_shutdown(NOSUCH_DOMAIN),
        direct: |c, _| raw(c.raw().domain_shutdown(s(NOSUCH_DOMAIN))),
    },
    OpSpec {
        name: "domain_destroy",
        bit: ops::DOMAIN_DESTROY,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_destroy(NOSUCH_DOMAIN),
        direct: |c, _| raw(c.raw().domain_destroy(s(NOSUCH_DOMAIN))),
    },
    OpSpec {
        name: "domain_suspend",
        bit: ops::DOMAIN_SUSPEND,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_suspend(NOSUCH_DOMAIN),
        direct: |c, _| raw(c.raw().domain_suspend(s(NOSUCH_DOMAIN))),
    },
    OpSpec {
        name: "domain_resume",
        bit: ops::DOMAIN_RESUME,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_resume(NOSUCH_DOMAIN),
        direct: |c, _| raw(c.raw().domain_resume(s(NOSUCH_DOMAIN))),
    },
    OpSpec {
        name: "domain_xml",
        bit: ops::DOMAIN_XML,
        defined: domain_xml::ALL,
        names: domain_xml::NAMES,
        mask: |c| c.domain_xml,
        needs_probe: false,
        host: |c, f| c.conn.domain_xml(c.dom(), f).map(drop),
        direct: |c, f| raw(c.raw().domain_xml(s(c.dom()), f)).map(drop),
    },
    OpSpec {
        name: "snapshot_create",
        bit: ops::SNAPSHOT_CREATE,
        defined: snapshot_create::ALL,
        names: snapshot_create::NAMES,
        mask: |c| c.snapshot_create,
        needs_probe: false,
        host: |c, f| c.conn.snapshot_create(c.dom(), &create_xml(f), f).map(drop),
        direct: |c, f| raw(c.raw().snapshot_create(s(c.dom()), s(&create_xml(f)), f)).map(drop),
    },
    OpSpec {
        name: "snapshot_xml",
        bit: ops::SNAPSHOT_XML,
        defined: snapshot_xml::ALL,
        names: snapshot_xml::NAMES,
        mask: |c| c.snapshot_xml,
        needs_probe: true,
        host: |c, f| c.conn.snapshot_xml(c.dom(), PROBE, f).map(drop),
        direct: |c, f| raw(c.raw().snapshot_xml(s(c.dom()), s(PROBE), f)).map(drop),
    },
    OpSpec {
        name: "snapshot_list",
        bit: ops::SNAPSHOT_LIST,
        defined: snapshot_list::ALL,
        names: snapshot_list::NAMES,
        mask: |c| c.snapshot_list,
        needs_probe: false,
        host: |c, f| c.conn.snapshot_list(c.dom(), f).map(drop),
        direct: |c, f| raw(c.raw().snapshot_list(s(c.dom()), f)).map(drop),
    },
    OpSpec {
        name: "snapshot_lookup",
        bit: ops::SNAPSHOT_LOOKUP,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: true,
        host: |c, _| c.conn.snapshot_lookup(c.dom(), PROBE).map(drop),
        direct: |c, _| raw(c.raw().snapshot_lookup(s(c.dom()), s(PROBE))).map(drop),
    },
    OpSpec {
        name: "snapshot_current",
        bit: ops::SNAPSHOT_CURRENT,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.snapshot_current(c.dom()).map(drop),
        direct: |c, _| raw(c.raw().snapshot_current(s(c.dom()))).map(drop),
    },
    OpSpec {
        name: "snapshot_revert",
        bit: ops::SNAPSHOT_REVERT,
        defined: snapshot_revert::ALL,
        names: snapshot_revert::NAMES,
        mask: |c| c.snapshot_revert,
        needs_probe: true,
        host: |c, f| c.conn.snapshot_revert(c.dom(), PROBE, f),
        direct: |c, f| raw(c.raw().snapshot_revert(s(c.dom()), s(PROBE), f)),
    },
    OpSpec {
        name: "snapshot_delete",
        bit: ops::SNAPSHOT_DELETE,
        defined: snapshot_delete::ALL,
        names: snapshot_delete::NAMES,
        mask: |c| c.snapshot_delete,
        needs_probe: true,
        host: |c, f| c.conn.snapshot_delete(c.dom(), PROBE, f),
        direct: |c, f| raw(c.raw().snapshot_delete(s(c.dom()), s(PROBE), f)),
    },
    OpSpec {
        name: "snapshot_import",
        bit: ops::SNAPSHOT_IMPORT,
        defined: snapshot_import::ALL,
        names: snapshot_import::NAMES,
        mask: |c| c.snapshot_import,
        needs_probe: false,
        host: |c, f| c.conn.snapshot_import(c.dom(), &[], None, f),
        direct: |c, f| raw(c.raw().snapshot_import(s(c.dom()), RVec::<RString>::new(), ROption::RNone, f)),
    },
    OpSpec {
        name: "snapshot_edit",
        bit: ops::SNAPSHOT_EDIT,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: true,
        host: |c, _| c.conn.snapshot_edit(c.dom(), PROBE, &redefine_xml(PROBE), 0).map(drop),
        direct: |c, _| raw(c.raw().snapshot_edit(s(c.dom()), s(PROBE), s(&redefine_xml(PROBE)), 0)).map(drop),
    },
    OpSpec {
        name: "domain_job",
        bit: ops::DOMAIN_JOB,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        host: |c, _| c.conn.domain_job_begin(NOSUCH_DOMAIN, "conformance probe").map(drop),
        direct: |c, _| raw(c.raw().domain_job_begin(s(NOSUCH_DOMAIN), s("conformance probe"), 0)).map(drop),
    },
    OpSpec {
        name: "snapshot_generation",
        bit: ops::SNAPSHOT_GENERATION,
        defined: 0,
        names: &[],
        mask: none,
        needs_probe: false,
        // The host answers `None` for NO_SUPPORT (callers fall back to reading the tree); the
        // matrix wants the refusal itself, which is the host's own for an undeclared operation
        // (it checks before calling) and the plugin's answer in the direct probe.
        host: |c, _| match c.conn.snapshot_generation(c.dom()) {
            Ok(None) => Err(HostError::NoSupport { operation: "snapshot_generation" }),
            other => other.map(drop),
        },
        direct: |c, _| raw(c.raw().snapshot_generation(s(c.dom()), 0)).map(drop),
    },
];

/// A minimal domain the probes may define (never expected to succeed).
pub fn probe_domain_xml() -> String {
    format!(
        "<domain type='test'><name>{NOSUCH_DOMAIN}</name><uuid>00000000-0000-4000-8000-00000000c0f1</uuid><memory>1024</memory><os><type>hvm</type></os></domain>"
    )
}

/// The short public name of a bit (`NO_METADATA`).
fn short(names: &[(u32, &'static str)], bit: u32) -> &'static str {
    let full = names.iter().find(|(b, _)| *b == bit).map_or("?", |(_, n)| n);
    let cut = [
        "VIR_DOMAIN_SNAPSHOT_CREATE_",
        "VIR_DOMAIN_SNAPSHOT_LIST_",
        "VIR_DOMAIN_SNAPSHOT_REVERT_",
        "VIR_DOMAIN_SNAPSHOT_DELETE_",
        "VIR_DOMAIN_SNAPSHOT_XML_",
        "VIR_DOMAIN_UNDEFINE_",
        "VIR_DOMAIN_XML_",
        "VIRTPLUG_SNAPSHOT_IMPORT_",
    ];
    cut.iter().find_map(|p| full.strip_prefix(p)).unwrap_or(full)
}

/// Flags the generic rules need beside `bit`, so that the mask check (not a relationship
/// rule) is what decides.
fn companions(op: &str, bit: u32) -> u32 {
    if op == "snapshot_create" && bit == snapshot_create::CURRENT { snapshot_create::REDEFINE } else { 0 }
}

fn setup_probe(c: &Ctx, spec: &OpSpec) {
    // Through a second connection: if the plugin panics here, the connection under test stays
    // unpoisoned and the probe still shows what the plugin answers.
    if spec.needs_probe
        && c.has_op(ops::SNAPSHOT_CREATE)
        && let Ok(other) = c.connect(false)
    {
        // A real create under the fixed probe name; removed again by the suite's cleanup.
        let xml = format!("<domainsnapshot><name>{PROBE}</name></domainsnapshot>");
        let _ = other.snapshot_create(c.dom(), &xml, 0);
    }
}

fn finish(c: &Ctx, r: CaseResult) -> CaseResult {
    // Anything a lying plugin created is ours (prefixed) and goes away.
    c.cleanup()?;
    r
}

fn host_refuses(c: &Ctx, spec: &OpSpec, flags: u32, expected: HostError) -> CaseResult {
    match (spec.host)(c, flags) {
        Err(e) if e == expected => Ok(Outcome::pass()),
        Err(e @ HostError::Driver(_)) => Err(Failure::new(
            format!("the host dispatched {} to the plugin", spec.name),
            format!("the host's own refusal: {}", describe_host(&expected)),
            format!("an error from the plugin: {}", describe_host(&e)),
        )),
        Err(e) => Err(Failure::new("the host refused with another error", describe_host(&expected), describe_host(&e))),
        Ok(()) => Err(Failure::new(format!("the host accepted {}", spec.name), describe_host(&expected), "success")),
    }
}

fn direct_refuses(c: &Ctx, spec: &OpSpec, flags: u32, what: &str) -> CaseResult {
    setup_probe(c, spec);
    crate::trace::note(&format!("{} (flags 0x{flags:x}) called directly", spec.name));
    let r = (spec.direct)(c, flags);
    let verdict = match r {
        Err(e) if e.code == codes::NO_SUPPORT || e.code == codes::INVALID_ARG => Ok(Outcome::pass()),
        Err(e) => Err(Failure::new(
            format!("called directly with {what}, the plugin answered with another error"),
            "VIR_ERR_NO_SUPPORT (3) or VIR_ERR_INVALID_ARG (8)",
            describe_abi(&e),
        )),
        Ok(()) => Err(Failure::new(
            format!("called directly with {what}, the plugin silently accepted it"),
            "VIR_ERR_NO_SUPPORT (3) or VIR_ERR_INVALID_ARG (8)",
            "success",
        )),
    };
    finish(c, verdict)
}

fn declared_flag_accepted(c: &Ctx, spec: &OpSpec, bit: u32) -> CaseResult {
    setup_probe(c, spec);
    let flags = bit | companions(spec.name, bit);
    let r = (spec.host)(c, flags);
    let verdict = match r {
        Err(HostError::Driver(e)) if e.code == codes::INVALID_ARG && e.message.starts_with("unsupported flags") => {
            Err(Failure::new(
                format!("{} refuses a flag it declares", spec.name),
                "the flag accepted",
                format!("{}: {}", codes::name(e.code), e.message),
            ))
        }
        Err(HostError::Driver(e)) if e.code == codes::NO_SUPPORT => Err(Failure::new(
            format!("{} answers NO_SUPPORT for a flag it declares", spec.name),
            "the flag accepted",
            format!("{}: {}", codes::name(e.code), e.message),
        )),
        // Other errors are about the probe's arguments, not the flag.
        _ => Ok(Outcome::pass()),
    };
    finish(c, verdict)
}

/// Whether a declared-flag probe is safe to run: it must not change a domain's state.
fn safe_to_accept(op: &str, bit: u32) -> bool {
    match op {
        "snapshot_create" => {
            !matches!(bit, snapshot_create::HALT | snapshot_create::REDEFINE | snapshot_create::CURRENT)
        }
        "snapshot_list" | "snapshot_xml" | "domain_xml" | "snapshot_delete" => true,
        "snapshot_import" => bit == snapshot_import::DRY_RUN,
        _ => false,
    }
}

/// The matrix cases for `info`.
pub fn cases(info: &virtplug_host::PluginInfo) -> Vec<Case> {
    let mut out = Vec::new();
    for spec in OPS {
        let declared = info.ops & spec.bit != 0;
        if !declared {
            let expected = HostError::NoSupport { operation: spec.name };
            // The host serves an undeclared import itself through REDEFINE when the plugin
            // redefines (host/core/src/import_fallback.rs): nothing to refuse then.
            let served_by_host = spec.bit == ops::SNAPSHOT_IMPORT
                && info.ops & ops::SNAPSHOT_CREATE != 0
                && info.caps.snapshot_create & snapshot_create::REDEFINE != 0;
            if !served_by_host {
                out.push(Case::new(
                    format!("matrix.{}.undeclared.host_refuses", spec.name),
                    Level::Static,
                    format!("the host refuses the undeclared operation {} without calling the plugin", spec.name),
                    move |c| host_refuses(c, spec, 0, expected.clone()),
                ));
            }
            out.push(Case::new(
                format!("matrix.{}.undeclared.direct_refuses", spec.name),
                Level::Static,
                format!("called directly, {} answers NO_SUPPORT", spec.name),
                move |c| direct_refuses(c, spec, 0, "an undeclared operation"),
            ));
            continue;
        }
        let mask = (spec.mask)(&info.caps);
        for &(bit, _) in spec.names {
            let name = short(spec.names, bit);
            if mask & bit == 0 {
                let flags = bit | companions(spec.name, bit);
                let expected = HostError::UnsupportedFlags { flags: flags & !mask, operation: spec.name };
                out.push(Case::new(
                    format!("matrix.{}.{name}.host_refuses", spec.name),
                    Level::Static,
                    format!("the host refuses the undeclared flag {name} of {} without calling the plugin", spec.name),
                    move |c| host_refuses(c, spec, flags, expected.clone()),
                ));
                out.push(Case::new(
                    format!("matrix.{}.{name}.direct_refuses", spec.name),
                    Level::Static,
                    format!("called directly with the undeclared flag {name}, {} refuses it", spec.name),
                    move |c| direct_refuses(c, spec, flags, &format!("the undeclared flag {name} (0x{bit:x})")),
                ));
            } else if safe_to_accept(spec.name, bit) {
                out.push(Case::new(
                    format!("matrix.{}.{name}.accepted", spec.name),
                    Level::Behaviour,
                    format!("{} does not refuse its declared flag {name}", spec.name),
                    move |c| declared_flag_accepted(c, spec, bit),
                ));
            }
        }
        if spec.defined != 0 {
            // A bit libvirt does not define at all: the host refuses it; so must the plugin.
            let unknown = (spec.defined + 1).next_power_of_two();
            let expected = HostError::UnsupportedFlags { flags: unknown, operation: spec.name };
            out.push(Case::new(
                format!("matrix.{}.unknown_bit.host_refuses", spec.name),
                Level::Static,
                format!("the host refuses bit 0x{unknown:x}, which libvirt does not define for {}", spec.name),
                move |c| host_refuses(c, spec, unknown, expected.clone()),
            ));
            out.push(Case::new(
                format!("matrix.{}.unknown_bit.direct_refuses", spec.name),
                Level::Static,
                format!("called directly with the undefined bit 0x{unknown:x}, {} refuses it", spec.name),
                move |c| direct_refuses(c, spec, unknown, &format!("the undefined bit 0x{unknown:x}")),
            ));
        }
    }
    out
}
