//! What libvirt's `VIR_DOMAIN_XML_SECURE` hides, removed from a domain definition by reading
//! it with the XML parser: the `passwd` attribute of any element (libvirt writes it on
//! `<graphics>` only with SECURE) and the `<cookies>` of a disk `<source>` (HTTP cookies, also
//! SECURE-only). Everything else is kept byte for byte.

use quick_xml::{Reader, events::Event};

use crate::xmltree::strip_bom;

/// The attribute libvirt formats only with `VIR_DOMAIN_DEF_FORMAT_SECURE`.
const SECRET_ATTRIBUTE: &[u8] = b"passwd";
/// The `<source>` child libvirt formats only with `VIR_DOMAIN_DEF_FORMAT_SECURE`.
const SECRET_SOURCE_CHILD: &[u8] = b"cookies";

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// `dom` without its secrets (see the module header). A definition the parser cannot read
/// (the model stores none) falls back to a lexical scan that still removes every
/// `passwd = '…'` however it is spaced, so a broken document never leaks more.
pub(crate) fn strip_secrets(dom: &str) -> String {
    let body = strip_bom(dom);
    match secret_spans(body) {
        Some(spans) => cut(body, &spans),
        None => cut(body, &lexical_spans(body)),
    }
}

/// `text` without the byte ranges `spans` (sorted, not overlapping).
fn cut(text: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    for &(start, end) in spans {
        if start >= from {
            out.push_str(text.get(from..start).unwrap_or(""));
            from = end;
        }
    }
    out.push_str(text.get(from..).unwrap_or(""));
    out
}

/// Where a removed attribute starts: the whitespace before its name goes with it.
fn back_over_space(text: &[u8], mut at: usize) -> usize {
    while at > 0 && is_space(text[at - 1]) {
        at -= 1;
    }
    at
}

/// Where a removed element starts: when only indentation precedes it on its line, the line
/// break and the indentation go with it.
fn back_over_indent(text: &[u8], at: usize) -> usize {
    let mut i = at;
    while i > 0 && matches!(text[i - 1], b' ' | b'\t') {
        i -= 1;
    }
    if i > 0 && text[i - 1] == b'\n' {
        i -= 1;
        if i > 0 && text[i - 1] == b'\r' {
            i -= 1;
        }
        return i;
    }
    at
}

/// The byte ranges of every secret in `text`, or `None` when it is not well-formed XML.
fn secret_spans(text: &str) -> Option<Vec<(usize, usize)>> {
    let bytes = text.as_bytes();
    let base = text.as_ptr() as usize;
    let mut reader = Reader::from_str(text);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    let mut spans = Vec::new();
    // Names of the open elements, to find a <cookies> whose parent is a <source>.
    let mut open: Vec<Vec<u8>> = Vec::new();
    // Inside a removed element: its start and its depth below it.
    let mut removing: Option<(usize, usize)> = None;
    loop {
        let before = usize::try_from(reader.buffer_position()).ok()?;
        let ev = reader.read_event().ok()?;
        let after = usize::try_from(reader.buffer_position()).ok()?;
        if let Some((start, depth)) = removing {
            match ev {
                Event::Start(_) => removing = Some((start, depth + 1)),
                Event::End(_) if depth == 0 => {
                    spans.push((start, after));
                    removing = None;
                    open.pop();
                }
                Event::End(_) => removing = Some((start, depth - 1)),
                Event::Eof => return None,
                _ => {}
            }
            continue;
        }
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = e.name().as_ref().to_vec();
                let is_start = matches!(ev, Event::Start(_));
                if name == SECRET_SOURCE_CHILD && open.last().is_some_and(|p| p == b"source") {
                    let start = back_over_indent(bytes, before);
                    if is_start {
                        removing = Some((start, 0));
                        open.push(name);
                    } else {
                        spans.push((start, after));
                    }
                    continue;
                }
                let mut attrs = e.attributes();
                attrs.with_checks(false);
                for a in attrs {
                    let a = a.ok()?;
                    if a.key.as_ref() != SECRET_ATTRIBUTE {
                        continue;
                    }
                    // Slices of `text` (the reader borrows from it): offsets by address.
                    let key_at = (a.key.as_ref().as_ptr() as usize).checked_sub(base)?;
                    let value_end = (a.value.as_ref().as_ptr() as usize).checked_sub(base)? + a.value.len();
                    // The closing quote follows the value.
                    spans.push((back_over_space(bytes, key_at), value_end + 1));
                }
                if is_start {
                    open.push(name);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Eof => return Some(spans),
            _ => {}
        }
    }
}

/// The fallback for text the parser refuses: every `passwd` preceded by whitespace and followed
/// by `=` and a quoted value (any whitespace around `=`), up to the closing quote or the end.
fn lexical_spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(i) = text.get(from..).and_then(|t| t.find("passwd")).map(|i| i + from) {
        from = i + SECRET_ATTRIBUTE.len();
        if i == 0 || !is_space(bytes[i - 1]) {
            continue;
        }
        let mut j = from;
        while j < bytes.len() && is_space(bytes[j]) {
            j += 1;
        }
        if bytes.get(j) != Some(&b'=') {
            continue;
        }
        j += 1;
        while j < bytes.len() && is_space(bytes[j]) {
            j += 1;
        }
        let Some(&quote) = bytes.get(j).filter(|q| **q == b'\'' || **q == b'"') else { continue };
        let end = bytes[j + 1..].iter().position(|b| *b == quote).map_or(bytes.len(), |p| j + 1 + p + 1);
        spans.push((back_over_space(bytes, i), end));
        from = end;
    }
    spans
}
