//! Rewrites a domain definition so that disks point at new overlays: the `<source file>` and
//! `<driver type>` of the named disks change, every other byte of the document stays as it was
//! (the definition is the user's text; only the two start tags are rebuilt).

use std::path::PathBuf;

use quick_xml::{Reader, events::Event};
use virtplug_plugin_sdk::{Error, Result, codes};

/// One disk switch: target, new source path, new format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// Disk target (`vda`).
    pub target: String,
    /// The new `<source file>`.
    pub source: PathBuf,
    /// The new `<driver type>`.
    pub format: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;").replace('"', "&quot;")
}

/// The start tag of `e` with attribute `key` set to `value` (others kept, single quotes).
fn retag(e: &quick_xml::events::BytesStart<'_>, key: &str, value: &str, empty: bool) -> String {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut out = format!("<{name}");
    let mut seen = false;
    for a in e.attributes().flatten() {
        let k = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let v = if k == key {
            seen = true;
            value.to_owned()
        } else {
            a.unescape_value().map(|v| v.into_owned()).unwrap_or_default()
        };
        out.push_str(&format!(" {k}='{}'", esc(&v)));
    }
    if !seen {
        out.push_str(&format!(" {key}='{}'", esc(value)));
    }
    out.push_str(if empty { "/>" } else { ">" });
    out
}

/// `xml` with each switch applied. A switch naming no disk is an internal error (the caller
/// aligned the switches against this very definition).
pub fn switch_disks(xml: &str, switches: &[Switch]) -> Result<String> {
    let bad = |e: quick_xml::Error| Error::new(codes::XML_DETAIL, format!("domain XML: {e}"));
    let mut r = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    // (start, end, replacement) byte ranges, in document order
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    // per disk being read: its target and the pending tag rewrites (range, element, empty)
    let mut target: Option<String> = None;
    let mut tags: Vec<(usize, usize, quick_xml::events::BytesStart<'static>, bool)> = Vec::new();
    let mut done = 0usize;
    loop {
        let start = usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
        let ev = r.read_event().map_err(bad)?;
        let end = usize::try_from(r.buffer_position()).unwrap_or(usize::MAX);
        let (e, empty) = match ev {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                if path.pop().as_deref() == Some("disk") && path.len() == 2 {
                    finish_disk(&mut target, &mut tags, switches, &mut edits, &mut done);
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let in_disk = path.len() == 3 && path[1] == "devices" && path[2] == "disk";
        if in_disk {
            match name.as_str() {
                "target" => {
                    target = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == b"dev")
                        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
                }
                "source" | "driver" => tags.push((start, end, e.into_owned(), empty)),
                _ => {}
            }
        }
        if !empty {
            path.push(name);
        }
    }
    if done != switches.len() {
        return Err(Error::internal("a disk to switch is missing from the domain definition"));
    }
    let mut out = String::with_capacity(xml.len() + 64);
    let mut at = 0;
    for (s, e, text) in edits {
        out.push_str(&xml[at..s]);
        out.push_str(&text);
        at = e;
    }
    out.push_str(&xml[at..]);
    Ok(out)
}

fn finish_disk(
    target: &mut Option<String>,
    tags: &mut Vec<(usize, usize, quick_xml::events::BytesStart<'static>, bool)>,
    switches: &[Switch],
    edits: &mut Vec<(usize, usize, String)>,
    done: &mut usize,
) {
    let t = target.take();
    let found = std::mem::take(tags);
    let Some(sw) = switches.iter().find(|s| Some(&s.target) == t.as_ref()) else { return };
    *done += 1;
    for (s, e, el, empty) in found {
        let text = if el.name().as_ref() == b"source" {
            retag(&el, "file", &sw.source.to_string_lossy(), empty)
        } else {
            retag(&el, "type", &sw.format, empty)
        };
        edits.push((s, e, text));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn only_the_named_disk_changes() {
        let x = "<domain type='qemu'>\n  <devices>\n    <disk type=\"file\" device='disk'>\n      <driver name='qemu' type='raw'/>\n      <source file='/a.raw'/>\n      <target dev='vda'/>\n    </disk>\n    <disk type='file'>\n      <driver name='qemu' type='qcow2'/>\n      <source file='/b.qcow2'/>\n      <target dev='vdb'/>\n    </disk>\n  </devices>\n</domain>";
        let sw = [Switch { target: "vda".into(), source: "/a.s1".into(), format: "qcow2".into() }];
        let y = switch_disks(x, &sw).unwrap();
        assert_eq!(y, x.replace("type='raw'", "type='qcow2'").replace("/a.raw", "/a.s1"));
        let missing = [Switch { target: "vdz".into(), source: "/z".into(), format: "qcow2".into() }];
        assert!(switch_disks(x, &missing).is_err());
    }
}
