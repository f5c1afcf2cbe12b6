//! List filters over [`SnapshotInfo`] records (`virDomainSnapshotListFlags`), with the
//! documented group rule: bits inside a group are alternatives (OR), groups combine with AND, and
//! a group with no bit or with every bit set does not filter.
//!
//! libvirt 9.0 deviates for `LEAVES|NO_LEAVES` (it returns nothing, because it converts the two
//! bits before clearing full groups); virtplug deliberately follows the documented rule and
//! returns everything (reference §5.1/§5.2).
//!
//! Order, as libvirt's `virDomainMomentObjListGetNames` walks its children lists: the input's
//! order is taken as the driver's sibling order (a store lists each snapshot's children newest
//! first, see [`crate::tree`]), and
//! - ROOTS (with or without TOPOLOGICAL): the roots in that order (the metaroot's children);
//! - a snapshot's children: in that order; DESCENDANTS (with or without TOPOLOGICAL): depth
//!   first, pre-order, siblings in that order;
//! - every snapshot with TOPOLOGICAL: the same walk from the roots;
//! - every snapshot without TOPOLOGICAL: libvirt's order is its hash table's (unspecified), so
//!   virtplug sorts by name.

use std::collections::{HashMap, HashSet};

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

/// Domain-level listing (bit 0 = ROOTS: only snapshots without a parent). ROOTS keeps the
/// input's order; otherwise TOPOLOGICAL gives [`topological`] order and no TOPOLOGICAL sorts by
/// name (see the module docs).
///
/// Group rule: within a group bits OR, groups AND, an empty or full group does not filter —
/// so `LEAVES|NO_LEAVES` returns everything (libvirt 9.0 returns nothing; see module docs).
/// Takes the records by value: a driver's list is usually in topological order already (the
/// model's stores list so), and is then filtered in place instead of copied.
pub fn list_domain(all: Vec<SnapshotInfo>, flags: u32) -> Vec<SnapshotInfo> {
    let kept: Vec<bool> = {
        // Which snapshots have children matters only to the leaf filters.
        let parents = if active_bits(flags, LEAVES_GROUP) != 0 { parents_with_children(&all) } else { HashSet::new() };
        all.iter().map(|i| matches(i, flags, parents.contains(i.name.as_str()))).collect()
    };
    if flags & fl::ROOTS != 0 {
        let roots: Vec<bool> = {
            let known: HashSet<&str> = all.iter().map(|i| i.name.as_str()).collect();
            all.iter().map(|i| i.parent.as_deref().is_none_or(|p| !known.contains(p) || p == i.name)).collect()
        };
        return only(all, |k| roots[k] && kept[k]);
    }
    if flags & fl::TOPOLOGICAL != 0 {
        if !in_topological_order(&all) {
            let parents = parents_with_children(&all);
            return topological(&all)
                .into_iter()
                .filter(|i| matches(i, flags, parents.contains(i.name.as_str())))
                .collect();
        }
        return only(all, |k| kept[k]);
    }
    let mut selected = only(all, |k| kept[k]);
    selected.sort_by(|a, b| a.name.cmp(&b.name));
    selected
}

/// The records of `all` whose index `keep` accepts, in their order, moved out.
fn only(all: Vec<SnapshotInfo>, keep: impl Fn(usize) -> bool) -> Vec<SnapshotInfo> {
    all.into_iter().enumerate().filter(|(k, _)| keep(*k)).map(|(_, i)| i).collect()
}

/// Each name's children in the input's order (a self-parent is no link).
fn children_map(all: &[SnapshotInfo]) -> HashMap<&str, Vec<&SnapshotInfo>> {
    let mut kids: HashMap<&str, Vec<&SnapshotInfo>> = HashMap::new();
    for i in all {
        if let Some(p) = i.parent.as_deref().filter(|p| *p != i.name) {
            kids.entry(p).or_default().push(i);
        }
    }
    kids
}

/// Depth first, pre-order from `start` (siblings in the given order); each record once.
fn walk<'a>(
    start: &[&'a SnapshotInfo],
    kids: &HashMap<&str, Vec<&'a SnapshotInfo>>,
    deep: bool,
    seen: &mut HashSet<&'a str>,
) -> Vec<&'a SnapshotInfo> {
    let mut out = Vec::new();
    let mut stack: Vec<&SnapshotInfo> = start.iter().rev().copied().collect();
    while let Some(i) = stack.pop() {
        if !seen.insert(i.name.as_str()) {
            continue;
        }
        out.push(i);
        if deep {
            if let Some(k) = kids.get(i.name.as_str()) {
                stack.extend(k.iter().rev().copied());
            }
        }
    }
    out
}

/// Snapshot-level listing of `from`'s children (bit 0 = DESCENDANTS: all descendants, depth
/// first, pre-order), siblings in the input's order whatever TOPOLOGICAL says, as libvirt walks
/// its children lists; same group rule as [`list_domain`]. `from` missing → NO_DOMAIN_SNAPSHOT.
pub fn list_children(all: &[SnapshotInfo], from: &str, flags: u32) -> Result<Vec<SnapshotInfo>> {
    if !all.iter().any(|i| i.name == from) {
        return Err(Error::no_snapshot(from));
    }
    let kids = children_map(all);
    let start = kids.get(from).cloned().unwrap_or_default();
    let mut seen = HashSet::from([from]);
    let picked = walk(&start, &kids, flags & fl::DESCENDANTS != 0, &mut seen);
    Ok(picked.into_iter().filter(|i| matches(i, flags, kids.contains_key(i.name.as_str()))).cloned().collect())
}

/// libvirt's topological walk: from the roots, depth first, pre-order, siblings (roots too) in
/// the input's order, so that a driver's newest-first children lists come out as libvirt lists
/// them. A record whose parent is not in `all` (or is itself) counts as a root; records on a
/// parent cycle are never reached and are left out. O(n).
pub fn topological(all: &[SnapshotInfo]) -> Vec<SnapshotInfo> {
    // A driver that lists in this order already (the model's stores do) is checked, not walked.
    if in_topological_order(all) {
        return all.to_vec();
    }
    let names: HashSet<&str> = all.iter().map(|i| i.name.as_str()).collect();
    walk_from_roots(all, &names).into_iter().cloned().collect()
}

/// Whether [`topological`] gives `all` back as it is: names unique, and already the walk's order.
fn in_topological_order(all: &[SnapshotInfo]) -> bool {
    let names: HashSet<&str> = all.iter().map(|i| i.name.as_str()).collect();
    names.len() == all.len() && is_preorder(all, &names)
}

/// Whether a record counts as a root: no parent, a parent not listed, or itself as parent.
fn is_root(i: &SnapshotInfo, names: &HashSet<&str>) -> bool {
    i.parent.as_deref().is_none_or(|p| !names.contains(p) || p == i.name)
}

/// [`topological`]'s walk: from the roots, children from [`children_map`].
fn walk_from_roots<'a>(all: &'a [SnapshotInfo], names: &HashSet<&str>) -> Vec<&'a SnapshotInfo> {
    let roots: Vec<&SnapshotInfo> = all.iter().filter(|i| is_root(i, names)).collect();
    let kids = children_map(all);
    let mut seen = HashSet::new();
    walk(&roots, &kids, true, &mut seen)
}

/// Whether `all` (names unique) is already what [`walk_from_roots`] gives: every record's parent
/// is on the path from a root to the record before it, so each subtree is one contiguous run.
/// Such an order is the pre-order walk with siblings in the input's order, i.e. the walk's own
/// output. Records on a parent cycle never have their parent on the path: they fail it. O(n).
fn is_preorder(all: &[SnapshotInfo], names: &HashSet<&str>) -> bool {
    let mut path: Vec<&str> = Vec::new();
    for i in all {
        if is_root(i, names) {
            path.clear();
        } else {
            let Some(parent) = i.parent.as_deref() else { return false };
            while path.last().is_some_and(|top| *top != parent) {
                path.pop();
            }
            if path.is_empty() {
                return false;
            }
        }
        path.push(i.name.as_str());
    }
    true
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

    /// s1 → {1795681679, s2}; off (shutoff, root) → ext (disk-only, external, no metadata). The
    /// driver's sibling order is the relative order here: s2 is s1's newest child and s1 the
    /// newest root (as in the reference's §5.3 session), though children come before parents.
    fn data() -> Vec<SnapshotInfo> {
        vec![
            info("s2", Some("s1"), st::RUNNING, false, true),
            info("s1", None, st::RUNNING, false, true),
            info("1795681679", Some("s1"), st::RUNNING, false, true),
            info("off", None, st::SHUTOFF, false, true),
            info("ext", Some("off"), st::DISK_SNAPSHOT, true, false),
        ]
    }

    /// Random forests in random orders (some already topological, some with cycles, orphans,
    /// self-parents or repeated names): the checked order is taken as it is exactly when the
    /// walk gives it back unchanged, so `topological` is the walk's answer either way.
    #[test]
    fn an_order_taken_as_it_is_is_the_walks_own() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |m: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % m as u64) as usize
        };
        let (mut taken, mut walked) = (0, 0);
        for round in 0..3000 {
            let n = 1 + next(12);
            let mut all: Vec<SnapshotInfo> = (0..n)
                .map(|k| {
                    let parent = match next(8) {
                        0 => None,
                        1 => Some(format!("gone{k}")),
                        2 => Some(format!("n{k}")),
                        _ => Some(format!("n{}", next(n))),
                    };
                    let name = if round % 17 == 0 && k == 1 { "n0".to_owned() } else { format!("n{k}") };
                    info(&name, parent.as_deref(), st::RUNNING, false, true)
                })
                .collect();
            // half the rounds: the walk's own order (with random sibling orders), else shuffled
            if round % 2 == 0 {
                all = walk_reference(&all);
            } else {
                for k in (1..all.len()).rev() {
                    all.swap(k, next(k + 1));
                }
            }
            let want = walk_reference(&all);
            let names_set: HashSet<&str> = all.iter().map(|i| i.name.as_str()).collect();
            let fast = names_set.len() == all.len() && is_preorder(&all, &names_set);
            assert_eq!(fast, want == all, "round {round}: {}", names(&all));
            if fast {
                taken += 1;
            } else {
                walked += 1;
            }
            assert_eq!(topological(&all), want, "round {round}: {}", names(&all));
        }
        assert!(taken > 500 && walked > 500, "both paths exercised: {taken} taken, {walked} walked");
    }

    /// The walk alone, as `topological` was before it checked the input's order.
    fn walk_reference(all: &[SnapshotInfo]) -> Vec<SnapshotInfo> {
        let names: HashSet<&str> = all.iter().map(|i| i.name.as_str()).collect();
        walk_from_roots(all, &names).into_iter().cloned().collect()
    }

    fn names(v: &[SnapshotInfo]) -> String {
        v.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(",")
    }

    #[test]
    fn domain_level_table() {
        let all = data();
        let table: &[(u32, &str)] = &[
            (0, "1795681679,ext,off,s1,s2"),
            (fl::ROOTS, "s1,off"),
            (fl::ROOTS | fl::TOPOLOGICAL, "s1,off"),
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
            // reference §5.3: `--topological --name` printed s1, s2, 1795681679
            (fl::TOPOLOGICAL, "s1,s2,1795681679,off,ext"),
            (fl::TOPOLOGICAL | fl::LEAVES, "s2,1795681679,ext"),
            (fl::TOPOLOGICAL | fl::NO_LEAVES, "s1,off"),
            (fl::ROOTS | fl::ACTIVE | fl::TOPOLOGICAL, "s1"),
        ];
        // the same from a list in topological order already (a store's), filtered in place
        let ordered = topological(&all);
        assert_eq!(names(&ordered), "s1,s2,1795681679,off,ext");
        for (flags, want) in table {
            assert_eq!(names(&list_domain(all.clone(), *flags)), *want, "flags {flags:#x}");
            if flags & fl::ROOTS == 0 {
                assert_eq!(names(&list_domain(ordered.clone(), *flags)), *want, "ordered, flags {flags:#x}");
            }
        }
    }

    #[test]
    fn child_level_table() {
        let mut all = data();
        all.push(info("deep", Some("s2"), st::RUNNING, false, true));
        let table: &[(&str, u32, &str)] = &[
            // libvirt walks the children lists (newest first) with or without TOPOLOGICAL
            ("s1", 0, "s2,1795681679"),
            ("s1", fl::TOPOLOGICAL, "s2,1795681679"),
            ("s1", fl::DESCENDANTS, "s2,deep,1795681679"),
            ("s1", fl::DESCENDANTS | fl::TOPOLOGICAL, "s2,deep,1795681679"),
            ("s1", fl::DESCENDANTS | fl::LEAVES, "deep,1795681679"),
            ("s1", fl::DESCENDANTS | fl::LEAVES | fl::NO_LEAVES, "s2,deep,1795681679"),
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

    /// Sibling order is the input's, at every level; parents still come first.
    #[test]
    fn topological_keeps_the_drivers_sibling_order() {
        let r = st::RUNNING;
        let all = vec![
            info("c", Some("b"), r, false, true),
            info("z", None, r, false, true),
            info("b", None, r, false, true),
            info("y", Some("b"), r, false, true),
            info("a", None, r, false, true),
            info("x", Some("y"), r, false, true),
            info("w", Some("y"), r, false, true),
            info("self", Some("self"), r, false, true),
        ];
        assert_eq!(names(&topological(&all)), "z,b,c,y,x,w,a,self");
        assert_eq!(names(&list_domain(all.clone(), fl::ROOTS)), "z,b,a,self");
        assert_eq!(names(&list_children(&all, "b", fl::DESCENDANTS).unwrap()), "c,y,x,w");
        // a parent cycle is never reached from a root
        let cyc = vec![info("p", Some("q"), r, false, true), info("q", Some("p"), r, false, true)];
        assert_eq!(names(&topological(&cyc)), "");
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
