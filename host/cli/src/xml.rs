//! The XML the CLI writes itself (`snapshot-create-as`, reference §6.2) and the one thing it
//! reads from XML (the snapshot name of an edited document).

use quick_xml::{Reader, events::Event};

pub use virtplug_host::model::xml::escape;

use crate::error::{CliError, Result};

/// virsh's `vshStringToArray`: comma-separated, `,,` is a literal comma.
pub fn split_spec(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ',' if chars.peek() == Some(&',') => {
                chars.next();
                item.push(',');
            }
            ',' => items.push(std::mem::take(&mut item)),
            c => item.push(c),
        }
    }
    items.push(item);
    items
}

/// `--memspec [file=]name[,snapshot=type]` → `<memory …/>` line (indented by 2).
pub fn memspec(spec: &str) -> Result<String> {
    let bad = || CliError::msg(format!("unable to parse memspec: {spec}"));
    let (mut snapshot, mut file) = (None, None);
    for item in split_spec(spec) {
        if let (None, Some(v)) = (&snapshot, item.strip_prefix("snapshot=")) {
            snapshot = Some(v.to_owned());
        } else if let (None, Some(v)) = (&file, item.strip_prefix("file=")) {
            file = Some(v.to_owned());
        } else if file.is_none() && item.starts_with('/') {
            file = Some(item);
        } else {
            return Err(bad());
        }
    }
    let mut out = String::from("  <memory");
    if let Some(s) = snapshot {
        out.push_str(&format!(" snapshot='{}'", escape(&s)));
    }
    if let Some(f) = file {
        out.push_str(&format!(" file='{}'", escape(&f)));
    }
    out.push_str("/>\n");
    Ok(out)
}

/// `--diskspec disk[,snapshot=type][,driver=type][,stype=type][,file=name]` → `<disk>`
/// lines (indented by 4).
pub fn diskspec(spec: &str) -> Result<String> {
    let bad = |first: Option<String>| {
        let last = format!("unable to parse diskspec: {spec}");
        match first {
            Some(f) => CliError::Then { cause: Box::new(CliError::msg(f)), then: last },
            None => CliError::msg(last),
        }
    };
    let items = split_spec(spec);
    let Some((name, rest)) = items.split_first() else { return Err(bad(None)) };
    let (mut snapshot, mut driver, mut stype, mut file) = (None, None, None, None);
    for item in rest {
        let slot =
            [("snapshot=", &mut snapshot), ("driver=", &mut driver), ("stype=", &mut stype), ("file=", &mut file)]
                .into_iter()
                .find_map(|(prefix, slot)| match (slot.is_none(), item.strip_prefix(prefix)) {
                    (true, Some(v)) => Some((slot, v.to_owned())),
                    _ => None,
                });
        match slot {
            Some((slot, v)) => *slot = Some(v),
            None => return Err(bad(None)),
        }
    }
    let mut out = format!("    <disk name='{}'", escape(name));
    if let Some(s) = &snapshot {
        out.push_str(&format!(" snapshot='{}'", escape(s)));
    }
    let mut is_file = true;
    if let Some(t) = &stype {
        match t.as_str() {
            "block" => is_file = false,
            "file" => {}
            other => return Err(bad(Some(format!("Unknown storage type: '{other}'")))),
        }
        out.push_str(&format!(" type='{}'", escape(t)));
    }
    if driver.is_none() && file.is_none() {
        out.push_str("/>\n");
        return Ok(out);
    }
    out.push_str(">\n");
    if let Some(d) = &driver {
        out.push_str(&format!("      <driver type='{}'/>\n", escape(d)));
    }
    if let Some(f) = &file {
        let attr = if is_file { "file" } else { "dev" };
        out.push_str(&format!("      <source {attr}='{}'/>\n", escape(f)));
    }
    out.push_str("    </disk>\n");
    Ok(out)
}

/// The document `snapshot-create-as` sends (and prints with `--print-xml`).
pub fn create_as(
    name: Option<&str>,
    description: Option<&str>,
    memory: Option<&str>,
    disks: &[String],
) -> Result<String> {
    let mut out = String::from("<domainsnapshot>\n");
    if let Some(n) = name {
        out.push_str(&format!("  <name>{}</name>\n", escape(n)));
    }
    if let Some(d) = description {
        out.push_str(&format!("  <description>{}</description>\n", escape(d)));
    }
    if let Some(m) = memory {
        out.push_str(&memspec(m)?);
    }
    if !disks.is_empty() {
        out.push_str("  <disks>\n");
        for d in disks {
            out.push_str(&diskspec(d)?);
        }
        out.push_str("  </disks>\n");
    }
    out.push_str("</domainsnapshot>\n");
    Ok(out)
}

/// The text of `/domainsnapshot/name`, if the document has one. `None` also for a document
/// that does not parse: the host then reports the real XML error.
pub fn snapshot_name(xml: &str) -> Option<String> {
    let mut reader = Reader::from_str(xml);
    let mut depth = 0usize;
    let mut in_name = false;
    let mut name = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                depth += 1;
                if depth == 1 && e.name().as_ref() != b"domainsnapshot" {
                    return None;
                }
                in_name = depth == 2 && e.name().as_ref() == b"name";
            }
            Event::End(_) => {
                if in_name {
                    return Some(name);
                }
                depth = depth.saturating_sub(1);
            }
            Event::Empty(e) if depth == 1 && e.name().as_ref() == b"name" => return Some(String::new()),
            Event::Text(t) if in_name => name.push_str(&t.unescape().ok()?),
            Event::CData(t) if in_name => name.push_str(std::str::from_utf8(&t).ok()?),
            Event::Eof => return None,
            _ => {}
        }
    }
}
