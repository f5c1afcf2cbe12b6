//! Parsers for VBoxManage's text output (reference §1.3, §1.4): `list vms`, `showvminfo
//! --machinereadable` (escaped `key="value"` lines, numbers unquoted, non-`key=value` lines such
//! as 7.0's `Encryption:` skipped) and its snapshot section / `snapshot list --machinereadable`
//! (pre-order, 1-based `-i` suffixes of any width, `Current*` lines after the current node,
//! **raw** values that may contain `"` and span several lines).
//!
//! Every structural surprise is a [`ParseError`]; nothing here panics on any input.

use std::collections::HashMap;

/// What was wrong with the output, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

fn perr<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

/// A lower-case UUID if `s` is one (braces optional).
pub fn parse_uuid(s: &str) -> Option<String> {
    let t = s.strip_prefix('{').and_then(|x| x.strip_suffix('}')).unwrap_or(s);
    let b = t.as_bytes();
    let ok = b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { *c == b'-' } else { c.is_ascii_hexdigit() });
    ok.then(|| t.to_ascii_lowercase())
}

/// `list vms`: `"<name>" {<uuid>}` per line; the name is not escaped, so the UUID is taken
/// from the end of the line.
pub fn list_vms(stdout: &str) -> Result<Vec<(String, String)>, ParseError> {
    let mut out = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || ParseError(format!("unexpected line in 'list vms' output: {line:?}"));
        let (left, uuid) = line.rsplit_once(" {").ok_or_else(bad)?;
        let uuid = uuid.strip_suffix('}').and_then(parse_uuid).ok_or_else(bad)?;
        let name = left.strip_prefix('"').and_then(|l| l.strip_suffix('"')).ok_or_else(bad)?;
        out.push((name.to_owned(), uuid));
    }
    Ok(out)
}

/// One snapshot as the CLI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliSnap {
    pub name: String,
    pub uuid: String,
    /// Index of the parent in the pre-order list.
    pub parent: Option<usize>,
    /// The description as printed (raw; may be ambiguous, the `.vbox` file is authoritative).
    pub description: Option<String>,
    /// The `-1-2` suffix.
    pub suffix: String,
}

/// The snapshot tree as the CLI lists it, in pre-order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CliTree {
    pub snaps: Vec<CliSnap>,
    /// Index of the current snapshot.
    pub current: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Name,
    Uuid,
    Description,
    CurName,
    CurUuid,
    CurNode,
}

/// Recognises the start of a snapshot-section line: key, suffix, and the raw rest after `="`.
fn key_line(line: &str) -> Option<(Key, &str, &str)> {
    for (prefix, key) in [
        ("CurrentSnapshotName=\"", Key::CurName),
        ("CurrentSnapshotUUID=\"", Key::CurUuid),
        ("CurrentSnapshotNode=\"", Key::CurNode),
    ] {
        if let Some(rest) = line.strip_prefix(prefix) {
            return Some((key, "", rest));
        }
    }
    for (prefix, key) in
        [("SnapshotName", Key::Name), ("SnapshotUUID", Key::Uuid), ("SnapshotDescription", Key::Description)]
    {
        let Some(rest) = line.strip_prefix(prefix) else { continue };
        let eq = rest.find("=\"")?;
        let suffix = &rest[..eq];
        if valid_suffix(suffix) {
            return Some((key, suffix, &rest[eq + 2..]));
        }
    }
    None
}

/// `""` or `-N-M…` with N, M ≥ 1 and no leading zeros (any width: `-10`, `-123`).
fn valid_suffix(s: &str) -> bool {
    s.is_empty()
        || s.strip_prefix('-').is_some_and(|t| {
            t.split('-').all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
        })
}

/// Incremental state of [`snapshot_section`].
#[derive(Default)]
struct Section {
    tree: CliTree,
    by_suffix: HashMap<String, usize>,
    children: Vec<usize>,
    expect_uuid_for: Option<String>,
    last_has_desc: bool,
    cur_name: Option<String>,
    cur_uuid: Option<String>,
}

impl Section {
    /// The parent index a new `SnapshotName<suffix>` would have, if it is the next node in
    /// pre-order (root first; then a child index one past its parent's last child).
    fn next_node_parent(&self, suffix: &str) -> Option<Option<usize>> {
        match suffix.rfind('-') {
            None => self.tree.snaps.is_empty().then_some(None),
            Some(i) => {
                let pi = *self.by_suffix.get(&suffix[..i])?;
                (suffix[i + 1..].parse::<usize>().ok()? == self.children[pi] + 1).then_some(Some(pi))
            }
        }
    }

    /// Whether a key line can start here; a line that cannot is part of a raw value.
    fn plausible(&self, key: Key, suffix: &str) -> bool {
        let idle = self.expect_uuid_for.is_none() && self.cur_name.is_none();
        match key {
            Key::Name => idle && !self.by_suffix.contains_key(suffix) && self.next_node_parent(suffix).is_some(),
            Key::Uuid => self.expect_uuid_for.as_deref() == Some(suffix),
            Key::Description => {
                idle && !self.last_has_desc
                    && self.tree.snaps.last().is_some_and(|s| s.suffix == suffix)
                    && self.tree.current.is_none_or(|c| c + 1 != self.tree.snaps.len())
            }
            Key::CurName => idle && self.tree.current.is_none() && !self.tree.snaps.is_empty(),
            Key::CurUuid => self.cur_name.is_some() && self.cur_uuid.is_none(),
            Key::CurNode => self.cur_uuid.is_some(),
        }
    }

    /// A key line starts: structural effects now, the value when it is complete.
    fn begin(&mut self, key: Key, suffix: &str) {
        match key {
            Key::Name => {
                let parent = self.next_node_parent(suffix).flatten();
                if let Some(p) = parent {
                    self.children[p] += 1;
                }
                self.by_suffix.insert(suffix.to_owned(), self.tree.snaps.len());
                self.children.push(0);
                self.tree.snaps.push(CliSnap {
                    name: String::new(),
                    uuid: String::new(),
                    parent,
                    description: None,
                    suffix: suffix.to_owned(),
                });
                self.expect_uuid_for = Some(suffix.to_owned());
                self.last_has_desc = false;
            }
            Key::Uuid => self.expect_uuid_for = None,
            Key::Description => self.last_has_desc = true,
            _ => {}
        }
    }

    /// A value is complete (`raw` is everything after `="`, lines joined).
    fn finish(&mut self, key: Key, suffix: &str, raw: &str) -> Result<(), ParseError> {
        let Some(value) = raw.trim_end_matches('\n').strip_suffix('"') else {
            return perr(format!("unterminated value on a snapshot line (suffix '{suffix}')"));
        };
        let value = value.to_owned();
        let last = self.tree.snaps.len().wrapping_sub(1);
        match key {
            Key::Name => self.tree.snaps[last].name = value,
            Key::Description => self.tree.snaps[last].description = Some(value),
            Key::Uuid => {
                let Some(uuid) = parse_uuid(&value) else {
                    return perr(format!("SnapshotUUID{suffix} is not a UUID: {value:?}"));
                };
                if self.tree.snaps.iter().any(|s| s.uuid == uuid) {
                    return perr(format!("snapshot UUID {uuid} listed twice"));
                }
                self.tree.snaps[last].uuid = uuid;
            }
            Key::CurName => self.cur_name = Some(value),
            Key::CurUuid => self.cur_uuid = Some(value),
            Key::CurNode => {
                let i = value.strip_prefix("SnapshotName").and_then(|s| self.by_suffix.get(s).copied());
                let Some(i) = i else {
                    return perr(format!("CurrentSnapshotNode names an unknown node {value:?}"));
                };
                let uuid_ok =
                    self.cur_uuid.as_deref().and_then(parse_uuid).is_some_and(|u| u == self.tree.snaps[i].uuid);
                if !uuid_ok || self.cur_name.as_deref() != Some(self.tree.snaps[i].name.as_str()) {
                    return perr("CurrentSnapshotName/UUID do not match CurrentSnapshotNode");
                }
                self.tree.current = Some(i);
                self.cur_name = None;
                self.cur_uuid = None;
            }
        }
        Ok(())
    }
}

/// Parses the snapshot lines of `snapshot list --machinereadable` or of `showvminfo
/// --machinereadable` (from the first `SnapshotName="` line on).
///
/// Names and descriptions are printed raw, so a value may contain `"` and span lines, and a
/// line inside it may even look like a key. A line starts a new entry only when it is a key
/// line that fits the structure at that point (the next pre-order suffix, the UUID of the name
/// just read, …) and the previous raw value is closed (its last line ends with `"`); otherwise
/// it continues the open name or description. Lines after a complete entry that are not
/// snapshot keys are ignored (showvminfo keys that may follow).
pub fn snapshot_section(text: &str) -> Result<CliTree, ParseError> {
    let mut st = Section::default();
    let mut open: Option<(Key, String, String)> = None;
    for line in text.split('\n') {
        let forced = matches!(&open, Some((Key::Name | Key::Description, _, v)) if !v.ends_with('"'));
        if !forced
            && let Some((key, suffix, rest)) = key_line(line)
            && st.plausible(key, suffix)
        {
            if let Some((k, s, v)) = open.take() {
                st.finish(k, &s, &v)?;
            }
            st.begin(key, suffix);
            if matches!(key, Key::Name | Key::Description) {
                open = Some((key, suffix.to_owned(), rest.to_owned()));
            } else {
                // UUIDs and the Current* lines are single-line values.
                st.finish(key, suffix, rest)?;
            }
            continue;
        }
        if let Some((_, _, v)) = &mut open {
            v.push('\n');
            v.push_str(line);
        } else if key_line(line).is_some() {
            // A snapshot line outside any raw value that does not fit the structure.
            return perr(format!("unexpected snapshot line {line:?}"));
        }
    }
    if let Some((k, s, v)) = open.take() {
        st.finish(k, &s, &v)?;
    }
    if let Some(s) = st.expect_uuid_for {
        return perr(format!("output ends after SnapshotName{s} without its SnapshotUUID line"));
    }
    if st.cur_name.is_some() {
        return perr("CurrentSnapshotName without CurrentSnapshotNode");
    }
    Ok(st.tree)
}

/// `snapshot list --machinereadable`: exit 1 with exactly `This machine does not have any
/// snapshots` on stdout is an empty tree (as Vagrant and Packer read it), not an error.
/// `None` means the invocation failed some other way.
pub fn snapshot_list(code: i32, stdout: &str) -> Option<Result<CliTree, ParseError>> {
    match code {
        0 => Some(snapshot_section(stdout)),
        1 if stdout.trim_end() == "This machine does not have any snapshots" => Some(Ok(CliTree::default())),
        _ => None,
    }
}

/// `showvminfo --machinereadable`, split into its general keys (unescaped) and its snapshot
/// tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmInfo {
    pub keys: HashMap<String, String>,
    pub tree: CliTree,
}

impl VmInfo {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.keys.get(k).map(String::as_str)
    }
}

/// Reads one escaped value starting right after `="`: up to the unescaped closing quote, which
/// may be on a later line. Returns the value and the rest after the closing quote.
fn escaped_value(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => out.push(it.next()?.1),
            '"' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Parses `showvminfo --machinereadable`. Requires `name`, `UUID`, `CfgFile` and `VMState`.
pub fn showvminfo(stdout: &str) -> Result<VmInfo, ParseError> {
    let (general, snaps) = match stdout.find("\nSnapshotName=\"") {
        Some(i) => (&stdout[..=i], &stdout[i + 1..]),
        None if stdout.starts_with("SnapshotName=\"") => ("", stdout),
        None => (stdout, ""),
    };
    let mut keys = HashMap::new();
    let mut rest = general;
    while !rest.is_empty() {
        let line_end = rest.find('\n').unwrap_or(rest.len());
        let line = &rest[..line_end];
        let Some(eq) = line.find('=').filter(|&i| i > 0) else {
            rest = rest.get(line_end + 1..).unwrap_or("");
            continue;
        };
        let key = line[..eq].trim_matches('"').to_owned();
        let after = &rest[eq + 1..];
        if let Some(q) = after.strip_prefix('"') {
            let Some((value, tail)) = escaped_value(q) else {
                return perr(format!("unterminated value for key {key:?}"));
            };
            keys.insert(key, value);
            rest = tail.find('\n').map_or("", |i| &tail[i + 1..]);
        } else {
            keys.insert(key, line[eq + 1..].to_owned());
            rest = rest.get(line_end + 1..).unwrap_or("");
        }
    }
    for k in ["name", "UUID", "CfgFile", "VMState"] {
        if !keys.contains_key(k) {
            return perr(format!("showvminfo output has no {k}= line"));
        }
    }
    if keys.get("UUID").and_then(|u| parse_uuid(u)).is_none() {
        return perr("showvminfo UUID= is not a UUID");
    }
    Ok(VmInfo { keys, tree: snapshot_section(snaps)? })
}

/// `Snapshot taken. UUID: <uuid>` → the UUID.
pub fn taken_uuid(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|l| l.strip_prefix("Snapshot taken. UUID: ")).and_then(|u| parse_uuid(u.trim()))
}
