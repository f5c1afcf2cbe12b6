//! The label/value blocks of `snapshot-info` and `dominfo`: labels left-aligned in 15
//! columns plus one space (virsh's `"%-15s %s\n"`).

use virtplug_host::{DomainInfo, SnapshotInfo, flags::domain_state};

use super::{domain_state as domain_state_name, snapshot_state};

fn line(out: &mut String, label: &str, value: &str) {
    out.push_str(&format!("{label:<15} {value}\n"));
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Whether virsh would call the snapshot external: disk-only snapshots always are.
pub fn is_external(info: &SnapshotInfo) -> bool {
    info.external || info.state == domain_state::DISK_SNAPSHOT
}

/// Children and descendants counts; `None` when the plugin cannot list children (virsh then
/// stops after `Parent:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Direct children.
    pub children: usize,
    /// All descendants.
    pub descendants: usize,
}

/// `snapshot-info` for `info` of domain `domain`.
pub fn snapshot_info(domain: &str, info: &SnapshotInfo, counts: Option<Counts>) -> String {
    let mut out = String::new();
    line(&mut out, "Name:", &info.name);
    line(&mut out, "Domain:", domain);
    line(&mut out, "Current:", yes_no(info.current));
    line(&mut out, "State:", snapshot_state(info.state));
    line(&mut out, "Location:", if is_external(info) { "external" } else { "internal" });
    line(&mut out, "Parent:", info.parent.as_deref().unwrap_or("-"));
    if let Some(c) = counts {
        line(&mut out, "Children:", &c.children.to_string());
        line(&mut out, "Descendants:", &c.descendants.to_string());
        line(&mut out, "Metadata:", yes_no(info.has_metadata));
    }
    out
}

/// `dominfo` of `d`, whose definition has OS type `os_type` (none when it could not be read): the lines virsh prints for the same
/// domain through the daemon's libvirt socket. No plugin reports CPU time (virsh leaves the line
/// out when it is 0), autostart (always "disable") or managed save images (always "no"), and
/// there is no security driver (virsh then prints no security lines).
pub fn dominfo(d: &DomainInfo, os_type: Option<&str>) -> String {
    let mut out = String::new();
    line(&mut out, "Id:", &if d.id >= 0 { d.id.to_string() } else { "-".to_owned() });
    line(&mut out, "Name:", &d.name);
    line(&mut out, "UUID:", &d.uuid);
    if let Some(t) = os_type {
        line(&mut out, "OS Type:", t);
    }
    line(&mut out, "State:", domain_state_name(d.state));
    line(&mut out, "CPU(s):", &d.vcpus.to_string());
    line(&mut out, "Max memory:", &format!("{} KiB", d.max_memory_kib));
    line(&mut out, "Used memory:", &format!("{} KiB", d.memory_kib));
    line(&mut out, "Persistent:", yes_no(d.persistent));
    line(&mut out, "Autostart:", "disable");
    line(&mut out, "Managed save:", "no");
    out
}
