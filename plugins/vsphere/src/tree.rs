//! The snapshot tree of one VM, read from `VirtualMachine.snapshot` (rootSnapshotList and
//! currentSnapshot in one value), name resolution (names are not unique in vSphere: identity
//! is the snapshot moid), and the snapshot XML libvirt's esx driver writes.

use virtplug_plugin_sdk::{
    Error, Result, SnapshotInfo,
    flags::domain_state as st,
    model::xml::{self, FormatFlags, SnapshotDef},
};

use crate::xmldom::{Doc, Element, Step};

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

/// A snapshot's field, by its element's name in a `VirtualMachineSnapshotTree`.
#[derive(Debug, Clone, Copy)]
enum Field {
    Moid,
    Name,
    Description,
    Id,
    CreateTime,
    State,
}

impl Field {
    fn of(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"snapshot" => Self::Moid,
            b"name" => Self::Name,
            b"description" => Self::Description,
            b"id" => Self::Id,
            b"createTime" => Self::CreateTime,
            b"state" => Self::State,
            _ => return None,
        })
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// What an open element below a snapshot info value is, while [`Tree::read`] reads it.
#[derive(Debug, Clone, Copy)]
enum Open {
    /// A snapshot (`rootSnapshotList`, `childSnapshotList`): its node.
    Node(usize),
    /// A node's first child of that name.
    Field(usize, Field),
    /// The value's first `currentSnapshot`.
    Current,
    /// Anything else (its content is checked, not kept).
    Other,
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
        tree.set_current(info.child("currentSnapshot").map(|c| c.text.trim().to_owned()));
        tree
    }

    /// Sets the current snapshot from the moid `currentSnapshot` names, if any.
    fn set_current(&mut self, current: Option<String>) {
        self.current = current.as_ref().and_then(|c| self.nodes.iter().position(|n| n.moid == *c));
        if self.current.is_none() {
            self.dangling_current = current.filter(|c| !c.is_empty());
        }
    }

    /// Reads the tree straight from a document, just after the start tag of a non-empty
    /// `VirtualMachineSnapshotInfo` value, up to and including its end tag: the same tree as
    /// [`Tree::parse`] of that value (the same first-child and direct-text rules), without the
    /// value's element tree (issue 19).
    pub fn read(doc: &mut Doc<'_>) -> Result<Self, String> {
        // Sized for a usual tree up front (each growth is one more allocation per request).
        let mut tree = Self { nodes: Vec::with_capacity(16), ..Self::default() };
        // Per node, the fields met (the first child of a name is the one read).
        let mut met: Vec<u8> = Vec::with_capacity(16);
        let mut current: Option<String> = None;
        let mut current_met = false;
        let mut stack: Vec<Open> = Vec::with_capacity(16);
        let mut text = String::with_capacity(64);
        loop {
            match doc.next()? {
                Step::Open(tag, empty) => {
                    // Names compared as bytes: only a kept element's name is made a `str`.
                    let name = tag.local_name();
                    let open = match (stack.last(), name.as_ref()) {
                        (None, b"rootSnapshotList") => Open::Node(tree.push(None, &mut met)),
                        (None, b"currentSnapshot") if !current_met => {
                            current_met = true;
                            Open::Current
                        }
                        (Some(Open::Node(p)), b"childSnapshotList") => Open::Node(tree.push(Some(*p), &mut met)),
                        (Some(Open::Node(p)), field) => match Field::of(field) {
                            Some(f) if met[*p] & f.bit() == 0 => {
                                met[*p] |= f.bit();
                                Open::Field(*p, f)
                            }
                            _ => Open::Other,
                        },
                        _ => Open::Other,
                    };
                    if matches!(open, Open::Field(..) | Open::Current) {
                        text.clear();
                    }
                    if empty {
                        tree.close(open, "", &mut current);
                    } else {
                        stack.push(open);
                    }
                }
                // Only a field's own text counts (not its children's), as in the element tree.
                Step::Text(t) => {
                    if matches!(stack.last(), Some(Open::Field(..) | Open::Current)) {
                        text.push_str(&t);
                    }
                }
                Step::Close => match stack.pop() {
                    Some(open) => tree.close(open, &text, &mut current),
                    None => break,
                },
            }
        }
        tree.set_current(current);
        Ok(tree)
    }

    /// A node with every field at its default (as [`Tree::add`] gives a node without them).
    fn push(&mut self, parent: Option<usize>, met: &mut Vec<u8>) -> usize {
        let idx = self.nodes.len();
        self.nodes.push(Node {
            moid: String::new(),
            name: String::new(),
            description: String::new(),
            id: 0,
            creation_time: 0,
            state: power_state(""),
            parent,
            children: Vec::new(),
        });
        met.push(0);
        if let Some(pn) = parent.and_then(|p| self.nodes.get_mut(p)) {
            pn.children.push(idx);
        }
        idx
    }

    /// Takes a field's text when its element ends.
    fn close(&mut self, open: Open, text: &str, current: &mut Option<String>) {
        match open {
            Open::Field(i, f) => {
                let n = &mut self.nodes[i];
                match f {
                    Field::Moid => n.moid = text.trim().to_owned(),
                    Field::Name => n.name = text.to_owned(),
                    Field::Description => n.description = text.to_owned(),
                    Field::Id => n.id = text.trim().parse().unwrap_or(0),
                    Field::CreateTime => n.creation_time = parse_datetime(text).unwrap_or(0),
                    Field::State => n.state = power_state(text.trim()),
                }
            }
            Open::Current => *current = Some(text.trim().to_owned()),
            Open::Node(_) | Open::Other => {}
        }
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

    /// [`Tree::read`] of a value's document, read straight from its steps.
    fn read_streamed(doc: &str) -> Result<Tree, String> {
        let mut d = xmldom::Doc::new(doc);
        loop {
            if let xmldom::Step::Open(_, empty) = d.next()? {
                return if empty { Ok(Tree::default()) } else { Tree::read(&mut d) };
            }
        }
    }

    #[test]
    fn a_tree_read_from_the_parsers_steps_is_the_tree_of_the_element_tree() {
        // Issue 19: the tree is read straight from the parser's steps; it must be the tree the
        // element tree gives, for the answers vSphere writes and for odd ones: first child of a
        // name wins, only a field's own text counts, escapes and CDATA, empty elements, names
        // nested where they are not fields, a second currentSnapshot, a dangling current.
        let docs = [
            B16,
            r#"<val><currentSnapshot>snapshot-79</currentSnapshot><rootSnapshotList><snapshot>snapshot-74</snapshot><name>s1</name></rootSnapshotList></val>"#,
            r#"<val><rootSnapshotList><name>a<x>hidden</x>b</name><name>second</name><id> 7 </id><id>8</id><vm><name>not me</name></vm><state> poweredOn </state><createTime>bad</createTime><snapshot> snapshot-1 </snapshot><childSnapshotList/><childSnapshotList><name/><description>d &amp; e<![CDATA[ <raw> ]]></description><snapshot>snapshot-3</snapshot><childSnapshotList><name>deep</name><snapshot>snapshot-4</snapshot></childSnapshotList></childSnapshotList></rootSnapshotList><other><rootSnapshotList><name>nested root</name></rootSnapshotList></other><rootSnapshotList><name>second root</name><snapshot>snapshot-5</snapshot></rootSnapshotList><currentSnapshot> snapshot-3 </currentSnapshot><currentSnapshot>snapshot-5</currentSnapshot></val>"#,
            r#"<val><currentSnapshot><x>snapshot-1</x></currentSnapshot><rootSnapshotList><snapshot>snapshot-1</snapshot></rootSnapshotList></val>"#,
            r#"<val><currentSnapshot/><rootSnapshotList/></val>"#,
            r#"<val/>"#,
            r#"<val></val>"#,
        ];
        for doc in docs {
            let dom = Tree::parse(Some(&xmldom::parse(doc).unwrap()));
            assert_eq!(read_streamed(doc).unwrap(), dom, "{doc}");
        }
        let odd = read_streamed(docs[2]).unwrap();
        let names: Vec<_> = odd.nodes.iter().map(|n| (n.name.as_str(), n.parent)).collect();
        assert_eq!(names, [("ab", None), ("", Some(0)), ("", Some(0)), ("deep", Some(2)), ("second root", None)]);
        assert_eq!((odd.nodes[0].id, odd.nodes[0].moid.as_str(), odd.current), (7, "snapshot-1", Some(2)));
        assert_eq!(odd.nodes[2].description, "d & e <raw> ");
        // A document the element tree refuses is refused.
        for bad in [
            "<val><rootSnapshotList><name>x</nam></rootSnapshotList></val>",
            "<val><name>&bogus;</name></val>",
            "<val>",
        ] {
            assert!(xmldom::parse(bad).is_err() && read_streamed(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("2026-11-26T08:32:29.5Z"), Some(1_795_681_949));
        assert_eq!(parse_datetime("2026-11-26T09:32:29+01:00"), Some(1_795_681_949));
        assert_eq!(parse_datetime("garbage"), None);
    }
}
