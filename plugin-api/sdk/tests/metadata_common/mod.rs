//! Shared by the metadata tests: definitions, a deterministic operation sequence, a digest.
#![allow(dead_code, reason = "each test binary uses a part")]

use virtplug_plugin_sdk::{
    MetadataStore,
    flags::{domain_state as st, snapshot_delete},
    model::{tree::RedefineFlags, xml::SnapshotDef},
};

/// The domain's UUID (the store key).
pub const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// A complete shut-off snapshot definition.
pub fn snap(name: &str, parent: Option<&str>) -> SnapshotDef {
    SnapshotDef {
        name: name.into(),
        state: st::SHUTOFF,
        parent: parent.map(str::to_owned),
        creation_time: 1_700_000_000,
        ..SnapshotDef::default()
    }
}

/// Its redefine XML.
pub fn redefine_xml(name: &str, parent: Option<&str>) -> String {
    let parent = parent.map_or(String::new(), |p| format!("<parent><name>{p}</name></parent>"));
    format!(
        "<domainsnapshot><name>{name}</name><state>shutoff</state>{parent}<creationTime>1700000000</creationTime></domainsnapshot>"
    )
}

/// SplitMix64 keyed by the step.
pub fn rng(step: u64, salt: u64) -> u64 {
    let mut z = step.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Applies step `k`: the operation depends only on `k` and the stored state. Returns the
/// outcome (`ok` or the error as printed).
pub fn apply(s: &mut dyn MetadataStore, k: u64) -> String {
    let list = s.list(VM).unwrap();
    let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
    let pick = |salt| names.get((rng(k, salt) as usize) % names.len().max(1)).copied();
    let mut kind = rng(k, 0) % 10;
    if names.len() > 120 {
        kind = 5;
    }
    let r = match kind {
        0..=2 => s.create_def(VM, &snap(&format!("c{k}"), None)),
        3 => match pick(1) {
            Some(n) => {
                let parent = list.iter().find(|i| i.name == n).and_then(|i| i.parent.clone());
                let def = SnapshotDef { description: Some(format!("d{k}")), ..snap(n, parent.as_deref()) };
                s.redefine_def(VM, def, RedefineFlags { current: rng(k, 8).is_multiple_of(2), disk_only: false })
            }
            None => Ok(()),
        },
        4 => pick(2).map_or(Ok(()), |n| s.delete(VM, n, 0)),
        5 => pick(3).map_or(Ok(()), |n| s.delete(VM, n, snapshot_delete::CHILDREN)),
        6 => pick(4).map_or(Ok(()), |n| s.delete(VM, n, snapshot_delete::CHILDREN_ONLY)),
        7 => {
            let base = pick(5).map(str::to_owned);
            let xmls: Vec<String> = (0..12)
                .map(|j| {
                    let parent = if j == 0 { base.clone() } else { Some(format!("i{k}-{}", j - 1)) };
                    redefine_xml(&format!("i{k}-{j}"), parent.as_deref())
                })
                .collect();
            s.import(VM, &xmls, Some(&format!("i{k}-11")), false)
        }
        8 => pick(6).map_or(Ok(()), |n| s.set_current(VM, n)),
        _ => match pick(7) {
            // a redefine that must fail (its parent does not exist), changing nothing
            Some(n) => s.redefine_def(VM, snap(n, Some("no-such-parent")), RedefineFlags::default()),
            None => Ok(()),
        },
    };
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

/// Everything the operations change: the listing (order, parents, current) and every XML.
pub fn digest(s: &mut dyn MetadataStore) -> String {
    let mut out = String::new();
    for i in s.list(VM).unwrap() {
        out.push_str(&format!("{} {:?} {}\n{}", i.name, i.parent, i.current, s.xml(VM, &i.name, 1).unwrap()));
    }
    out
}
