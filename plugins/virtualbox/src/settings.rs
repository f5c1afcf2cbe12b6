//! Read-only reader of a machine's `.vbox` settings file (reference §3): per snapshot its
//! `timeStamp`, `stateFile` (online or not) and `<Description>` (the CLI prints descriptions
//! unescaped, so they are taken from here), plus `Machine/@currentSnapshot`. Namespace-agnostic:
//! VirtualBox 7.0 (`http://www.virtualbox.org/`) and older innotek files read alike. This
//! module never writes the file.

use std::collections::HashMap;

use quick_xml::{Reader, events::Event};
use virtplug_plugin_sdk::{Error, Result, codes};

use crate::parse::parse_uuid;

/// What the file says about one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnap {
    pub name: String,
    pub parent: Option<String>,
    /// Epoch seconds.
    pub time: i64,
    pub online: bool,
    pub description: String,
}

/// The snapshot part of a `.vbox` file, keyed by lower-case UUID.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Settings {
    pub machine_uuid: String,
    pub current: Option<String>,
    pub snaps: HashMap<String, FileSnap>,
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` → epoch seconds.
pub fn parse_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || !s.ends_with('Z')
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (H. Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?)
}

fn malformed(path: &str, why: impl std::fmt::Display) -> Error {
    Error::internal(format!("malformed VirtualBox settings file '{path}': {why}"))
}

/// Parses the text of a `.vbox` file (`path` only names it in errors).
pub fn parse(path: &str, text: &str) -> Result<Settings> {
    let mut r = Reader::from_str(text);
    let mut s = Settings::default();
    // Stack of open snapshot UUIDs; the innermost `<Description>` owner.
    let mut stack: Vec<String> = Vec::new();
    let mut in_desc: Option<String> = None;
    let mut saw_machine = false;
    let mut depth_desc = 0usize;
    let mut open: Vec<String> = Vec::new();
    loop {
        let ev = r.read_event().map_err(|e| malformed(path, e))?;
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            let mut attrs = HashMap::new();
            for a in e.attributes() {
                let a = a.map_err(|x| malformed(path, x))?;
                let v = a.unescape_value().map_err(|x| malformed(path, x))?.into_owned();
                attrs.insert(String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(), v);
            }
            match name.as_str() {
                "Machine" => {
                    saw_machine = true;
                    s.machine_uuid = attrs
                        .get("uuid")
                        .and_then(|u| parse_uuid(u))
                        .ok_or_else(|| malformed(path, "Machine without a valid uuid"))?;
                    s.current = attrs.get("currentSnapshot").and_then(|u| parse_uuid(u));
                }
                "Snapshot" => {
                    let uuid = attrs
                        .get("uuid")
                        .and_then(|u| parse_uuid(u))
                        .ok_or_else(|| malformed(path, "Snapshot without a valid uuid"))?;
                    let sname = attrs
                        .get("name")
                        .cloned()
                        .ok_or_else(|| malformed(path, format!("snapshot {uuid} without a name")))?;
                    let time = attrs
                        .get("timeStamp")
                        .and_then(|t| parse_stamp(t))
                        .ok_or_else(|| malformed(path, format!("snapshot {uuid} without a valid timeStamp")))?;
                    let snap = FileSnap {
                        name: sname,
                        parent: stack.last().cloned(),
                        time,
                        online: attrs.contains_key("stateFile"),
                        description: String::new(),
                    };
                    if s.snaps.insert(uuid.clone(), snap).is_some() {
                        return Err(malformed(path, format!("snapshot {uuid} appears twice")));
                    }
                    if !empty {
                        stack.push(uuid);
                    }
                }
                "Description" if !empty && open.last().map(String::as_str) == Some("Snapshot") => {
                    in_desc = stack.last().cloned();
                    depth_desc = open.len() + 1;
                }
                _ => {}
            }
            if !empty {
                open.push(name);
            }
            continue;
        }
        match ev {
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if open.len() == depth_desc {
                    in_desc = None;
                    depth_desc = 0;
                }
                open.pop();
                if name == "Snapshot" {
                    stack.pop();
                }
            }
            Event::Text(t) => {
                if let Some(u) = &in_desc {
                    let text = t.unescape().map_err(|x| malformed(path, x))?;
                    if let Some(snap) = s.snaps.get_mut(u) {
                        snap.description.push_str(&text);
                    }
                }
            }
            Event::CData(t) => {
                if let Some(u) = &in_desc
                    && let Some(snap) = s.snaps.get_mut(u)
                {
                    snap.description.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(malformed(path, "unexpected end of file"));
    }
    if !saw_machine {
        return Err(malformed(path, "no <Machine> element"));
    }
    Ok(s)
}

/// Reads and parses the file at `path`.
pub fn load(path: &str) -> Result<Settings> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::new(codes::OPERATION_FAILED, format!("cannot read VirtualBox settings file '{path}': {e}"))
    })?;
    parse(path, &text)
}
