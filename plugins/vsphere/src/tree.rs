//! The snapshot tree of one VM, read from `VirtualMachine.snapshot` (rootSnapshotList and
//! currentSnapshot in one value), name resolution (names are not unique in vSphere: identity
//! is the snapshot moid), and the snapshot XML libvirt's esx driver writes.

use virtplug_plugin_sdk::{
    Error, Result, SnapshotInfo,
    flags::domain_state as st,
    model::xml::{self, FormatFlags, SnapshotDef},
};

use crate::xmldom::Element;

/// One snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Snapshot moid (`snapshot-69`): the identity.
    pub moid: String,
    /// Name (not unique).
    pub name: String,
    /// Description (empty when none).
    pub description: String,
    /// Per-VM numeric id.
    pub id: i64,
    /// Creation time, epoch seconds.
    pub creation_time: i64,
    /// libvirt state (`running`, `shutoff`, `paused`).
    pub state: u32,
    /// Index of the parent node.
    pub parent: Option<usize>,
    /// Indexes of the children, in creation order.
    pub children: Vec<usize>,
}

/// A VM's snapshot tree in depth-first pre-order (libvirt's listing order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// Nodes in pre-order.
    pub nodes: Vec<Node>,
    /// Index of the current snapshot. A `currentSnapshot` that is not in the tree (simulator
    /// quirk F.6 #3, after removing an ancestor's subtree) counts as no current snapshot.
    pub current: Option<usize>,
    /// The moid `currentSnapshot` names when it is not in the tree (that quirk): the simulator
    /// then crashes on `CreateSnapshot_Task` (a nil dereference that closes the connection).
    pub dangling_current: Option<String>,
}

/// vSphere power state → libvirt state.
pub fn power_state(s: &str) -> u32 {
    match s {
        "poweredOn" => st::RUNNING,
        "suspended" => st::PAUSED,
        "poweredOff" => st::SHUTOFF,
        _ => st::NOSTATE,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an `xsd:dateTime` (`2026-11-26T08:26:44.25610525Z`, or with `±hh:mm`) to epoch
/// seconds, truncating fractions.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    let num = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" || s.get(13..14)? != ":" || s.get(16..17)? != ":" {
        return None;
    }
    let (y, mo, d, h, mi, se) = (num(0, 4)?, num(5, 7)?, num(8, 10)?, num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "" | "Z" => 0,
        tz => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let hh: i64 = tz.get(1..3)?.parse().ok()?;
            let mm: i64 = tz.get(4..6)?.parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

impl Tree {
    /// Builds the tree from a `VirtualMachineSnapshotInfo` value; `None` (no `snapshot`
    /// property) is an empty tree.
    pub fn parse(info: Option<&Element>) -> Self {
        let mut tree = Self::default();
        let Some(info) = info else { return tree };
        for root in info.children_named("rootSnapshotList") {
            tree.add(root, None);
        }
        let current = info.child("currentSnapshot").map(|c| c.text.trim().to_owned());
        tree.current = current.as_ref().and_then(|c| tree.nodes.iter().position(|n| n.moid == *c));
        if tree.current.is_none() {
            tree.dangling_current = current.filter(|c| !c.is_empty());
        }
        tree
    }

    fn add(&mut self, el: &Element, parent: Option<usize>) {
        let idx = self.nodes.len();
        self.nodes.push(Node {
            moid: el.child_text("snapshot").unwrap_or("").trim().to_owned(),
            name: el.child_text("name").unwrap_or("").to_owned(),
            description: el.child_text("description").unwrap_or("").to_owned(),
            id: el.child_text("id").and_then(|i| i.trim().parse().ok()).unwrap_or(0),
            creation_time: el.child_text("createTime").and_then(parse_datetime).unwrap_or(0),
            state: power_state(el.child_text("state").unwrap_or("").trim()),
            parent,
            children: Vec::new(),
        });
        if let Some(pn) = parent.and_then(|p| self.nodes.get_mut(p)) {
            pn.children.push(idx);
        }
        for child in el.children_named("childSnapshotList") {
            self.add(child, Some(idx));
        }
    }

    /// The index of the snapshot with this moid.
    pub fn by_moid(&self, moid: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.moid == moid)
    }

    /// Whether a snapshot is named `name`.
    pub fn has_name(&self, name: &str) -> bool {
        self.nodes.iter().any(|n| n.name == name)
    }

    /// Resolves a user-supplied name to exactly one node. A name shared by several snapshots
    /// is an error listing their ids; a snapshot moid (`snapshot-74`) is accepted too, so a
    /// duplicate can still be addressed.
    pub fn resolve(&self, name: &str) -> Result<usize> {
        let hits: Vec<usize> = (0..self.nodes.len()).filter(|i| self.nodes[*i].name == name).collect();
        match hits.as_slice() {
            [one] => Ok(*one),
            [] => self.nodes.iter().position(|n| n.moid == name).ok_or_else(|| Error::no_snapshot(name)),
            many => {
                let ids: Vec<&str> = many.iter().map(|i| self.nodes[*i].moid.as_str()).collect();
                Err(Error::invalid_arg(format!(
                    "snapshot name '{name}' is ambiguous: it names {} snapshots ({}); use one of these ids instead",
                    many.len(),
                    ids.join(", ")
                )))
            }
        }
    }

    /// The listing record of node `idx`.
    pub fn info(&self, idx: usize) -> SnapshotInfo {
        let n = &self.nodes[idx];
        SnapshotInfo {
            name: n.name.clone(),
            parent: n.parent.map(|p| self.nodes[p].name.clone()),
            creation_time: n.creation_time,
            state: n.state,
            current: self.current == Some(idx),
            // vSphere keeps the metadata itself: virtplug keeps none (libvirt's esx driver
            // reports HasMetadata 0 as well).
            has_metadata: false,
            external: false,
            disk_only: false,
        }
    }

    /// Every node's record, in pre-order.
    pub fn list(&self) -> Vec<SnapshotInfo> {
        (0..self.nodes.len()).map(|i| self.info(i)).collect()
    }

    /// The snapshot XML as libvirt's esx driver writes it: name, description (always, possibly
    /// empty), state, parent, creationTime, `<domain><uuid>`.
    pub fn xml(&self, idx: usize, domain_uuid: &str) -> String {
        let n = &self.nodes[idx];
        let def = SnapshotDef {
            name: n.name.clone(),
            description: Some(n.description.clone()),
            state: n.state,
            parent: n.parent.map(|p| self.nodes[p].name.clone()),
            creation_time: n.creation_time,
            ..SnapshotDef::default()
        };
        xml::format(&def, Some(domain_uuid), FormatFlags::default())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::xmldom;
    use virtplug_plugin_sdk::codes;

    /// The tree of the reference's §B.16: s1 → {s2, second "s1"}, current = the second "s1".
    const B16: &str = r#"<val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="VirtualMachineSnapshotInfo"><currentSnapshot type="VirtualMachineSnapshot">snapshot-74</currentSnapshot><rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-69</snapshot><vm type="VirtualMachine">vm-57</vm><name>s1</name><description>first snapshot</description><id>1</id><createTime>2026-11-26T08:26:44.25610525Z</createTime><state>poweredOn</state><quiesced>false</quiesced><childSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-71</snapshot><vm type="VirtualMachine">vm-57</vm><name>s2</name><description>second</description><id>2</id><createTime>2026-11-26T08:26:48.977847333Z</createTime><state>poweredOff</state><quiesced>true</quiesced><replaySupported>false</replaySupported></childSnapshotList><childSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-74</snapshot><vm type="VirtualMachine">vm-57</vm><name>s1</name><description></description><id>3</id><createTime>2026-11-26T08:26:49.015486313Z</createTime><state>suspended</state><quiesced>false</quiesced></childSnapshotList></rootSnapshotList></val>"#;

    #[test]
    fn tree_from_reference_b16() {
        let tree = Tree::parse(Some(&xmldom::parse(B16).unwrap()));
        let names: Vec<_> = tree.nodes.iter().map(|n| (n.moid.as_str(), n.name.as_str(), n.parent)).collect();
        assert_eq!(
            names,
            [("snapshot-69", "s1", None), ("snapshot-71", "s2", Some(0)), ("snapshot-74", "s1", Some(0))]
        );
        assert_eq!(tree.current, Some(2));
        assert_eq!(tree.nodes[1].state, st::SHUTOFF);
        assert_eq!(tree.nodes[2].state, st::PAUSED);
        let e = tree.resolve("s1").unwrap_err();
        assert_eq!(e.code, codes::INVALID_ARG);
        assert!(e.message.contains("snapshot-69, snapshot-74"), "{e}");
        assert_eq!(tree.resolve("s2").unwrap(), 1);
        assert_eq!(tree.resolve("snapshot-74").unwrap(), 2);
        assert_eq!(tree.resolve("nosuch").unwrap_err().code, codes::NO_DOMAIN_SNAPSHOT);
        assert_eq!(tree.nodes[0].children, [1, 2]);
        assert_eq!(
            tree.xml(1, "265104de-1472-547c-b873-6dc7883fb6cb"),
            "<domainsnapshot>\n  <name>s2</name>\n  <description>second</description>\n  <state>shutoff</state>\n  <parent>\n    <name>s1</name>\n  </parent>\n  <creationTime>1795681608</creationTime>\n  <domain>\n    <uuid>265104de-1472-547c-b873-6dc7883fb6cb</uuid>\n  </domain>\n</domainsnapshot>\n"
        );
    }

    #[test]
    fn dangling_current_is_no_current() {
        // Simulator quirk F.6 #3 (reference §B.27): currentSnapshot names a removed snapshot.
        let doc = r#"<val><currentSnapshot type="VirtualMachineSnapshot">snapshot-79</currentSnapshot><rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-74</snapshot><name>s1</name><description></description><createTime>2026-11-26T08:26:49Z</createTime><state>poweredOn</state></rootSnapshotList></val>"#;
        let tree = Tree::parse(Some(&xmldom::parse(doc).unwrap()));
        assert_eq!(tree.current, None);
        assert_eq!(tree.dangling_current.as_deref(), Some("snapshot-79"));
        assert!(Tree::parse(None).nodes.is_empty());
    }

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("2026-11-26T08:32:29.5Z"), Some(1_795_681_949));
        assert_eq!(parse_datetime("2026-11-26T09:32:29+01:00"), Some(1_795_681_949));
        assert_eq!(parse_datetime("garbage"), None);
    }
}
