//! List filters over [`SnapshotInfo`] records (`virDomainSnapshotListFlags`), with the
//! documented group rule: bits inside a group are alternatives (OR), groups combine with AND, and
//! a group with no bit or with every bit set does not filter.
//!
//! libvirt 9.0 deviates for `LEAVES|NO_LEAVES` (it returns nothing, because it converts the two
//! bits before clearing full groups); virtplug deliberately follows the documented rule and
//! returns everything (reference §5.1/§5.2).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::{Error, Result, SnapshotInfo, flags::domain_state as st, flags::snapshot_list as fl};

const METADATA_GROUP: u32 = fl::METADATA | fl::NO_METADATA;
const LEAVES_GROUP: u32 = fl::LEAVES | fl::NO_LEAVES;
const STATUS_GROUP: u32 = fl::INACTIVE | fl::ACTIVE | fl::DISK_ONLY;
const LOCATION_GROUP: u32 = fl::INTERNAL | fl::EXTERNAL;

/// The bits of `group` that filter: none when the group is empty or full.
fn active_bits(flags: u32, group: u32) -> u32 {
    let bits = flags & group;
    if bits == group { 0 } else { bits }
}

fn matches(info: &SnapshotInfo, flags: u32, has_children: bool) -> bool {
    let m = active_bits(flags, METADATA_GROUP);
    if m != 0 && !((m & fl::METADATA != 0 && info.has_metadata) || (m & fl::NO_METADATA != 0 && !info.has_metadata)) {
        return false;
    }
    let l = active_bits(flags, LEAVES_GROUP);
    if l != 0 && !((l & fl::LEAVES != 0 && !has_children) || (l & fl::NO_LEAVES != 0 && has_children)) {
        return false;
    }
    let s = active_bits(flags, STATUS_GROUP);
    if s != 0 {
        let inactive = info.state == st::SHUTOFF;
        let disk_only = info.state == st::DISK_SNAPSHOT;
        let active = !inactive && !disk_only;
        if !((s & fl::INACTIVE != 0 && inactive)
            || (s & fl::ACTIVE != 0 && active)
            || (s & fl::DISK_ONLY != 0 && disk_only))
        {
            return false;
        }
    }
    let loc = active_bits(flags, LOCATION_GROUP);
    if loc != 0 && !((loc & fl::INTERNAL != 0 && !info.external) || (loc & fl::EXTERNAL != 0 && info.external)) {
        return false;
    }
    true
}

fn parents_with_children(all: &[SnapshotInfo]) -> HashSet<&str> {
    all.iter().filter_map(|i| i.parent.as_deref()).collect()
}

fn finish(mut selected: Vec<SnapshotInfo>, flags: u32) -> Vec<SnapshotInfo> {
    if flags & fl::TOPOLOGICAL != 0 {
        topological(&selected)
    } else {
        selected.sort_by(|a, b| a.name.cmp(&b.name));
        selected
    }
}

/// Domain-level listing (bit 0 = ROOTS: only snapshots without a parent). Without TOPOLOGICAL
/// the result is sorted by name; with it, parents come before children.
///
/// Group rule: within a group bits OR, groups AND, an empty or full group does not filter —
/// so `LEAVES|NO_LEAVES` returns everything (libvirt 9.0 returns nothing; see module docs).
pub fn list_domain(all: &[SnapshotInfo], flags: u32) -> Vec<SnapshotInfo> {
    let parents = parents_with_children(all);
    let known: HashSet<&str> = all.iter().map(|i| i.name.as_str()).collect();
    let selected = all
        .iter()
        .filter(|i| flags & fl::ROOTS == 0 || i.parent.as_deref().is_none_or(|p| !known.contains(p)))
        .filter(|i| matches(i, flags, parents.contains(i.name.as_str())))
        .cloned()
        .collect();
    finish(selected, flags)
}

/// Snapshot-level listing of `from`'s children (bit 0 = DESCENDANTS: all descendants), with the
/// same group rule and ordering as [`list_domain`]. `from` missing → NO_DOMAIN_SNAPSHOT.
pub fn list_children(all: &[SnapshotInfo], from: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
    if !all.iter().any(|i| i.name == from) {
        return Err(Error::no_snapshot(from));
    }
    let mut kids: HashMap<&str, Vec<&SnapshotInfo>> = HashMap::new();
    for i in all {
        if let Some(p) = &i.parent {
            kids.entry(p.as_str()).or_default().push(i);
        }
    }
    let mut picked: Vec<&SnapshotInfo> = Vec::new();
    let mut stack: Vec<&str> = vec![from];
    let mut seen: HashSet<&str> = HashSet::from([from]);
    while let Some(n) = stack.pop() {
        for c in kids.get(n).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(c.name.as_str()) {
                picked.push(c);
                if flags & fl::DESCENDANTS != 0 {
                    stack.push(c.name.as_str());
                }
            }
        }
    }
    let selected =
        picked.into_iter().filter(|i| matches(i, flags, kids.contains_key(i.name.as_str()))).cloned().collect();
    Ok(finish(selected, flags))
}

/// Parents before children, siblings by name (pre-order from the roots, roots by name). A
/// record whose parent is not in `all` counts as a root. O(n log n).
pub fn topological(all: &[SnapshotInfo]) -> Vec<SnapshotInfo> {
    let names: HashSet<&str> = all.iter().map(|i| i.name.as_str()).collect();
    let mut kids: HashMap<&str, BTreeMap<&str, &SnapshotInfo>> = HashMap::new();
    let mut roots: BTreeMap<&str, &SnapshotInfo> = BTreeMap::new();
    for i in all {
        match i.parent.as_deref().filter(|p| names.contains(p) && *p != i.name) {
            Some(p) => {
                kids.entry(p).or_default().insert(i.name.as_str(), i);
            }
            None => {
                roots.insert(i.name.as_str(), i);
            }
        }
    }
    let mut out = Vec::with_capacity(all.len());
    let mut seen: HashSet<&str> = HashSet::new();
    let mut stack: Vec<&SnapshotInfo> = roots.values().rev().copied().collect();
    while let Some(i) = stack.pop() {
        if !seen.insert(i.name.as_str()) {
            continue;
        }
        out.push(i.clone());
        if let Some(k) = kids.get(i.name.as_str()) {
            stack.extend(k.values().rev().copied());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn info(name: &str, parent: Option<&str>, state: u32, external: bool, meta: bool) -> SnapshotInfo {
        SnapshotInfo {
            name: name.into(),
            parent: parent.map(Into::into),
            creation_time: 1,
            state,
            current: false,
            has_metadata: meta,
            external,
            disk_only: state == st::DISK_SNAPSHOT,
        }
    }

    /// s1 → {1795681679, s2}; off (shutoff, root) → ext (disk-only, external, no metadata).
    fn data() -> Vec<SnapshotInfo> {
        vec![
            info("s2", Some("s1"), st::RUNNING, false, true),
            info("s1", None, st::RUNNING, false, true),
            info("1795681679", Some("s1"), st::RUNNING, false, true),
            info("off", None, st::SHUTOFF, false, true),
            info("ext", Some("off"), st::DISK_SNAPSHOT, true, false),
        ]
    }

    fn names(v: &[SnapshotInfo]) -> String {
        v.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(",")
    }

    #[test]
    fn domain_level_table() {
        let all = data();
        let table: &[(u32, &str)] = &[
            (0, "1795681679,ext,off,s1,s2"),
            (fl::ROOTS, "off,s1"),
            (fl::LEAVES, "1795681679,ext,s2"),
            (fl::NO_LEAVES, "off,s1"),
            // documented rule: a full group does not filter (libvirt 9.0 returns nothing here)
            (fl::LEAVES | fl::NO_LEAVES, "1795681679,ext,off,s1,s2"),
            (fl::ROOTS | fl::LEAVES, ""),
            (fl::METADATA, "1795681679,off,s1,s2"),
            (fl::NO_METADATA, "ext"),
            (fl::METADATA | fl::NO_METADATA, "1795681679,ext,off,s1,s2"),
            (fl::INACTIVE, "off"),
            (fl::ACTIVE, "1795681679,s1,s2"),
            (fl::DISK_ONLY, "ext"),
            (fl::INACTIVE | fl::DISK_ONLY, "ext,off"),
            (fl::INACTIVE | fl::ACTIVE | fl::DISK_ONLY, "1795681679,ext,off,s1,s2"),
            (fl::INTERNAL, "1795681679,off,s1,s2"),
            (fl::EXTERNAL, "ext"),
            (fl::INTERNAL | fl::EXTERNAL, "1795681679,ext,off,s1,s2"),
            (fl::LEAVES | fl::INTERNAL, "1795681679,s2"),
            (fl::TOPOLOGICAL, "off,ext,s1,1795681679,s2"),
            (fl::TOPOLOGICAL | fl::LEAVES, "1795681679,ext,s2"),
            (fl::ROOTS | fl::ACTIVE | fl::TOPOLOGICAL, "s1"),
        ];
        for (flags, want) in table {
            assert_eq!(names(&list_domain(&all, *flags)), *want, "flags {flags:#x}");
        }
    }

    #[test]
    fn child_level_table() {
        let mut all = data();
        all.push(info("deep", Some("s2"), st::RUNNING, false, true));
        let table: &[(&str, u32, &str)] = &[
            ("s1", 0, "1795681679,s2"),
            ("s1", fl::DESCENDANTS, "1795681679,deep,s2"),
            ("s1", fl::DESCENDANTS | fl::TOPOLOGICAL, "1795681679,s2,deep"),
            ("s1", fl::DESCENDANTS | fl::LEAVES, "1795681679,deep"),
            ("s1", fl::DESCENDANTS | fl::LEAVES | fl::NO_LEAVES, "1795681679,deep,s2"),
            ("off", fl::DESCENDANTS | fl::EXTERNAL, "ext"),
            ("deep", fl::DESCENDANTS, ""),
        ];
        for (from, flags, want) in table {
            assert_eq!(names(&list_children(&all, from, *flags).unwrap()), *want, "{from} {flags:#x}");
        }
        let e = list_children(&all, "nosuch", 0).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (crate::codes::NO_DOMAIN_SNAPSHOT, "no domain snapshot with matching name 'nosuch'")
        );
    }

    #[test]
    fn topological_chain_is_not_name_order() {
        let mut all = Vec::new();
        for i in 0..12 {
            let parent = (i > 0).then(|| format!("snap-{}", i - 1));
            all.push(info(&format!("snap-{i}"), parent.as_deref(), st::RUNNING, false, true));
        }
        all.reverse();
        let topo = topological(&all);
        let want: Vec<String> = (0..12).map(|i| format!("snap-{i}")).collect();
        assert_eq!(topo.iter().map(|i| i.name.clone()).collect::<Vec<_>>(), want);
    }
}
