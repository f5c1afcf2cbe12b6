//! A minimal read-only XML element tree on top of quick-xml, with byte spans so that embedded
//! documents (`<domain>`, `<cookie>`) can be kept verbatim. Crate-private.
//!
//! Names, attribute values and text borrow from the source (unescaped copies only where the
//! source has entity references): a snapshot with its embedded domain is parsed on every
//! create and redefine, so per-node allocations matter.

use std::{
    borrow::Cow,
    collections::{HashMap, hash_map::Entry},
};

use quick_xml::{
    Reader,
    escape::unescape,
    events::{Event, attributes::AttrError},
};

use crate::{Error, Result, codes, limits, xml_errors, xml_verified};

/// One element: name, attributes (unescaped), children, and its byte span in the source.
#[derive(Debug)]
pub(crate) struct Element<'a> {
    pub name: &'a str,
    pub attrs: Vec<(&'a str, Cow<'a, str>)>,
    pub children: Vec<Node<'a>>,
    /// Byte offset of `<` of the start tag.
    pub start: usize,
    /// Byte offset just after the end tag's `>` (or the empty tag's `/>`).
    pub end: usize,
}

/// A child node.
#[derive(Debug)]
pub(crate) enum Node<'a> {
    Elem(Element<'a>),
    Text(Cow<'a, str>),
}

impl Drop for Element<'_> {
    /// Tears the tree down with a heap stack: the derived, recursive drop would need one stack
    /// frame per level of nesting.
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.children);
        while let Some(node) = pending.pop() {
            if let Node::Elem(mut e) = node {
                pending.append(&mut e.children);
            }
        }
    }
}

impl<'a> Element<'a> {
    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_ref())
    }
    /// The first child element named `name`.
    pub fn child(&self, name: &str) -> Option<&Element<'a>> {
        self.elements().find(|e| e.name == name)
    }
    /// Child elements in document order.
    pub fn elements(&self) -> impl Iterator<Item = &Element<'a>> {
        self.children.iter().filter_map(|n| match n {
            Node::Elem(e) => Some(e),
            Node::Text(_) => None,
        })
    }
    /// Concatenated direct text content.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }
    /// The text of child `name`, if that child exists (XPath `string(./name)` semantics, except
    /// that an absent child is `None`, and an empty one is `None` too, like libvirt).
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text()).filter(|t| !t.is_empty())
    }
    /// The element's verbatim source text.
    pub fn raw<'s>(&self, src: &'s str) -> &'s str {
        src.get(self.start..self.end).unwrap_or("")
    }
    /// The element as libvirt formats its own elements, `indent` spaces in and ending with a
    /// newline: attributes in document order, single-quoted and escaped; no content gives
    /// `<x/>`; only text gives `<x>text</x>`; child elements one per line, two spaces further
    /// in (text between them dropped). Formatting the result again gives the same text.
    pub fn write_canonical(&self, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        out.push_str(&pad);
        out.push('<');
        out.push_str(self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            out.push_str(&escape(v));
            out.push('\'');
        }
        if self.elements().next().is_some() {
            out.push_str(">\n");
            // Recursion is bounded by the parser's depth limit.
            for child in self.elements() {
                child.write_canonical(indent + 2, out);
            }
            out.push_str(&pad);
        } else {
            let text = self.text();
            if text.trim().is_empty() {
                out.push_str("/>\n");
                return;
            }
            out.push('>');
            out.push_str(&escape(&text));
        }
        out.push_str("</");
        out.push_str(self.name);
        out.push_str(">\n");
    }
}

fn line_of(src: &str, pos: usize) -> usize {
    let pos = pos.min(src.len());
    src.as_bytes()[..pos].iter().filter(|b| **b == b'\n').count() + 1
}

fn detail(what: &str, src: &str, pos: usize, msg: impl std::fmt::Display) -> Error {
    let one_line = msg.to_string().replace('\n', " ");
    Error::new(codes::XML_DETAIL, format!("({what}):{}: {one_line}", line_of(src, pos)))
}

/// The part of `src` that `bytes` is (quick-xml hands out slices of the source it reads from a
/// `&str`), or `None` when `bytes` lies elsewhere.
fn within<'a>(src: &'a str, bytes: &[u8]) -> Option<&'a str> {
    let offset = (bytes.as_ptr() as usize).checked_sub(src.as_ptr() as usize)?;
    src.get(offset..offset.checked_add(bytes.len())?)
}

/// `raw` unescaped, borrowed when it holds no entity reference. `raw` is a slice of `src`
/// (`pos`: where its markup starts, when it is not).
fn unescaped<'a>(raw: &'a str, what: &str, src: &str, pos: usize) -> Result<Cow<'a, str>> {
    if !raw.contains('&') {
        return Ok(Cow::Borrowed(raw));
    }
    let raw_at = || offset_in(src, raw).unwrap_or(pos);
    let text = unescape(raw).map_err(|err| {
        let (at, message) = xml_errors::escape_error(raw, raw_at(), &err);
        detail(what, src, at, message)
    })?;
    if raw.contains("&#")
        && let Some((at, message)) = xml_errors::char_refs(raw)
    {
        return Err(detail(what, src, raw_at() + at, message));
    }
    Ok(text)
}

/// Where `part` (a slice of `src`) starts in `src`.
fn offset_in(src: &str, part: &str) -> Option<usize> {
    let offset = (part.as_ptr() as usize).checked_sub(src.as_ptr() as usize)?;
    (offset <= src.len()).then_some(offset)
}

/// libxml2's verdict on a text node's raw content (control characters, `]]>`), at its place
/// in `src`.
fn check_text(raw: &str, what: &str, src: &str, pos: usize) -> Result<()> {
    match xml_errors::text(raw) {
        Some((at, message)) => Err(detail(what, src, offset_in(src, raw).unwrap_or(pos) + at, message)),
        None => Ok(()),
    }
}

/// `src` without a leading UTF-8 byte order mark. Every entry point that keeps text of the
/// document (spans, the stored domain XML, the bundle checksum) strips it first, so that all
/// positions index one and the same string.
pub(crate) fn strip_bom(src: &str) -> &str {
    src.strip_prefix('\u{feff}').unwrap_or(src)
}

/// The bounds one parse enforces ([`crate::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Document size in bytes.
    pub bytes: usize,
    /// Element nesting; the root is at depth 1.
    pub depth: usize,
    /// Attributes on one element.
    pub attributes: usize,
    /// Elements in the document, those of verbatim (opaque) children included.
    pub elements: usize,
}

impl Limits {
    /// One snapshot or domain document.
    pub const DOCUMENT: Self = Self {
        bytes: limits::MAX_XML_BYTES,
        depth: limits::MAX_XML_DEPTH,
        attributes: limits::MAX_XML_ATTRIBUTES,
        elements: limits::MAX_XML_ELEMENTS,
    };
    /// A whole export bundle: each snapshot in it is then parsed with [`Limits::DOCUMENT`], so
    /// the bundle allows one level more than a snapshot at the depth limit needs.
    pub const BUNDLE: Self = Self {
        bytes: limits::MAX_BUNDLE_BYTES,
        depth: limits::MAX_XML_DEPTH + 1,
        elements: limits::MAX_BUNDLE_ELEMENTS,
        ..Self::DOCUMENT
    };
}

/// Below this many attributes duplicates are found by a scan; from here on by a hash map, so
/// that one element with many attributes costs linear, not quadratic, time.
const HASHED_ATTRIBUTES: usize = 16;

/// The raw (still escaped) attributes of a start tag, checked: well-formed, no duplicate
/// (quick-xml's own message, with its positions), at most `max` of them. Each value is the raw
/// one, borrowed: the element unescapes them in place (one vector per element).
fn raw_attributes<'a>(
    e: &quick_xml::events::BytesStart<'_>,
    pos: usize,
    (what, src): (&str, &'a str),
    max: usize,
    suspicious: bool,
) -> Result<Vec<(&'a str, Cow<'a, str>)>> {
    let not_utf8 = || detail(what, src, pos, "attribute is not in the document's text");
    let tag: &[u8] = e;
    let tag_text = within(src, tag).ok_or_else(not_utf8)?;
    let attr_error = |err: &AttrError| {
        let (at, message) = xml_errors::attr_error(pos, tag_text, err);
        detail(what, src, at, message)
    };
    // Offset of a key in the tag, as quick-xml reports positions.
    let at = |key: &str| (key.as_ptr() as usize).saturating_sub(tag.as_ptr() as usize);
    let mut out: Vec<(&'a str, Cow<'a, str>)> = Vec::new();
    let mut seen: Option<HashMap<&'a str, usize>> = None;
    let mut attrs = e.attributes();
    // quick-xml's duplicate check compares each attribute with every earlier one.
    attrs.with_checks(false);
    for a in attrs {
        let a = a.map_err(|err| attr_error(&err))?;
        let key = within(src, a.key.as_ref()).ok_or_else(not_utf8)?;
        let raw = within(src, &a.value).ok_or_else(not_utf8)?;
        let spaced =
            offset_in(tag_text, key).is_some_and(|k| k > 0 && tag_text.as_bytes()[k - 1].is_ascii_whitespace());
        if let Some(message) = xml_errors::attribute(key, raw, spaced, suspicious) {
            return Err(detail(what, src, pos, message));
        }
        let previous = match &mut seen {
            Some(map) => match map.entry(key) {
                Entry::Occupied(o) => Some(*o.get()),
                Entry::Vacant(v) => {
                    v.insert(at(key));
                    None
                }
            },
            None => out.iter().find(|(k, _)| *k == key).map(|(k, _)| at(k)),
        };
        if let Some(previous) = previous {
            return Err(attr_error(&AttrError::Duplicated(at(key), previous)));
        }
        if out.len() == max {
            let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
            return Err(detail(what, src, pos, format!("too many attributes on element {name}: more than {max}")));
        }
        out.push((key, Cow::Borrowed(raw)));
        if seen.is_none() && out.len() == HASHED_ATTRIBUTES {
            seen = Some(out.iter().map(|(k, _)| (*k, at(k))).collect());
        }
    }
    Ok(out)
}

fn element_from<'a>(
    e: &quick_xml::events::BytesStart<'_>,
    start: usize,
    (what, src): (&str, &'a str),
    limits: Limits,
    suspicious: bool,
) -> Result<Element<'a>> {
    let name = element_name(e, start, what, src)?;
    let mut attrs = raw_attributes(e, start, (what, src), limits.attributes, suspicious)?;
    // Unescaped only once every attribute of the tag passed its checks: the tag's own faults
    // are reported before an escape fault in one of its values.
    for (_, value) in &mut attrs {
        if let Cow::Borrowed(raw) = *value {
            *value = unescaped(raw, what, src, start)?;
        }
    }
    Ok(Element { name, attrs, children: Vec::new(), start, end: start })
}

/// libxml2's verdict on a comment (`--` inside), at its place in `src`.
fn check_comment(content: &[u8], what: &str, src: &str, pos: usize) -> Result<()> {
    let Some(text) = within(src, content) else { return Ok(()) };
    match xml_errors::comment(text) {
        Some((at, message)) => Err(detail(what, src, offset_in(src, text).unwrap_or(pos) + at, message)),
        None => Ok(()),
    }
}

/// A start tag's name, checked as libxml2 checks it.
fn element_name<'a>(e: &quick_xml::events::BytesStart<'_>, start: usize, what: &str, src: &'a str) -> Result<&'a str> {
    let name = within(src, e.name().as_ref())
        .ok_or_else(|| detail(what, src, start, "element name is not in the document's text"))?;
    match xml_errors::element_name(name) {
        Some(message) => Err(detail(what, src, start, message)),
        None => Ok(name),
    }
}

/// Parses a whole document and returns its root element. `what` names the document in
/// parser-detail errors, like libvirt's `(domain_snapshot)`.
pub(crate) fn parse_document<'a>(src: &'a str, what: &str) -> Result<Element<'a>> {
    parse_document_limited(src, what, Limits::DOCUMENT, |_| false)
}

/// [`parse_document`], except that the root's children for which `opaque` is true are only
/// checked (well-formed, attributes and entities valid) and kept as a span: their content is not
/// built. Embedded documents that are kept verbatim (`<domain>`, `<cookie>`) need no tree.
pub(crate) fn parse_document_with<'a>(
    src: &'a str,
    what: &str,
    opaque: impl Fn(&Element<'a>) -> bool,
) -> Result<Element<'a>> {
    parse_document_limited(src, what, Limits::DOCUMENT, opaque)
}

/// [`parse_document_with`] under explicit bounds. A leading byte order mark is skipped; spans
/// still index `src`.
pub(crate) fn parse_document_limited<'a>(
    src: &'a str,
    what: &str,
    limits: Limits,
    opaque: impl Fn(&Element<'a>) -> bool,
) -> Result<Element<'a>> {
    if src.len() > limits.bytes {
        return Err(detail(
            what,
            src,
            0,
            format!("document too large: {} bytes, more than {}", src.len(), limits.bytes),
        ));
    }
    // quick-xml drops a leading byte order mark without counting it in its positions: hand it
    // the text after the mark and shift every position back onto `src`.
    let body = strip_bom(src);
    let shift = src.len() - body.len();
    if body.starts_with('\u{feff}') {
        return Err(detail(what, src, 0, "Start tag expected, '<' not found"));
    }
    let mut reader = Reader::from_str(body);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text_start = false;
    cfg.trim_text_end = false;
    // Bytes of a verified embedded document the reader was moved past (`xml_verified`): its
    // positions lag behind by that much.
    let skipped = std::cell::Cell::new(0usize);
    let at = |p: u64| usize::try_from(p).map_or(usize::MAX, |p| p.saturating_add(shift).saturating_add(skipped.get()));
    let mut stack: Vec<Element<'a>> = Vec::new();
    let mut root: Option<Element<'a>> = None;
    // Depth inside an opaque element (0: building the tree).
    let mut skip = 0usize;
    let mut elements = 0usize;
    // The element count when the open opaque element started; `None` when its content was not
    // read (the same bytes were verified before), so that it is not recorded again.
    let mut opaque_from: Option<usize> = None;
    // Where each open element starts, opaque ones included (a mismatched end tag names its line).
    let mut opened: Vec<usize> = Vec::new();
    // Without control characters or `]]>` anywhere, no text or value needs checking for them.
    let suspicious = xml_errors::suspicious(body);
    loop {
        let before = at(reader.buffer_position());
        let ev = match reader.read_event() {
            Ok(ev) => ev,
            Err(err) => {
                let line = |p: usize| line_of(src, p);
                let (pos, message) = match &err {
                    quick_xml::Error::Syntax(e) => xml_errors::syntax_error(src, before, line, e),
                    quick_xml::Error::IllFormed(e) => {
                        let root_done = root.is_some() && stack.is_empty();
                        xml_errors::ill_formed(before, opened.last().copied(), root_done, line, e)
                    }
                    other => (at(reader.error_position()), other.to_string()),
                };
                return Err(detail(what, src, pos, message));
            }
        };
        match &ev {
            Event::Start(_) => opened.push(before),
            Event::End(_) => {
                opened.pop();
            }
            _ => {}
        }
        let after = at(reader.buffer_position());
        if let Event::Start(_) | Event::Empty(_) = &ev {
            elements += 1;
            if elements > limits.elements {
                return Err(detail(
                    what,
                    src,
                    before,
                    format!("too many elements in document: more than {}", limits.elements),
                ));
            }
            // The new element's depth: one below the open element (or, inside an opaque
            // element, `skip` levels below the opaque one on the stack).
            if stack.len() + skip.max(1) > limits.depth {
                return Err(detail(
                    what,
                    src,
                    before,
                    format!("Excessive depth in document: more than {} nested elements", limits.depth),
                ));
            }
        }
        if skip > 0 {
            match &ev {
                Event::Start(e) | Event::Empty(e) => {
                    element_name(e, before, what, src)?;
                    for (_, raw) in raw_attributes(e, before, (what, src), limits.attributes, suspicious)? {
                        unescaped(&raw, what, src, before)?;
                    }
                    if matches!(ev, Event::Start(_)) {
                        skip += 1;
                    }
                    continue;
                }
                Event::Text(t) => {
                    let raw = within(src, t).ok_or_else(|| detail(what, src, before, "text is not in the document"))?;
                    if suspicious {
                        check_text(raw, what, src, before)?;
                    }
                    unescaped(raw, what, src, before)?;
                    continue;
                }
                Event::End(_) if skip > 1 => {
                    skip -= 1;
                    continue;
                }
                Event::End(_) => {
                    skip = 0;
                    if let (Some(from), Some(el)) = (opaque_from.take(), stack.last()) {
                        let text = src.get(el.start..after).unwrap_or("");
                        xml_verified::record(text, before.saturating_sub(el.start), elements - from, limits);
                    }
                }
                Event::Comment(c) => {
                    check_comment(c, what, src, before)?;
                    continue;
                }
                Event::Eof => {}
                _ => continue,
            }
        }
        match ev {
            Event::Start(e) => {
                if root.is_some() && stack.is_empty() {
                    return Err(detail(what, src, before, "Extra content at the end of the document"));
                }
                let el = element_from(&e, before, (what, src), limits, suspicious)?;
                if stack.len() == 1 && opaque(&el) {
                    skip = 1;
                    opaque_from = Some(elements);
                    let verified = src.get(before..).and_then(|rest| xml_verified::lookup(rest, limits));
                    if let Some((close, inner)) = verified.filter(|(_, inner)| elements + inner <= limits.elements) {
                        // Move the reader to the element's end tag, which it then reads and
                        // matches against the start tag as usual.
                        *reader.get_mut() = &body.as_bytes()[before - shift + close..];
                        skipped.set(skipped.get() + (before + close).saturating_sub(after));
                        elements += inner;
                        opaque_from = None;
                    }
                }
                stack.push(el);
            }
            Event::Empty(e) => {
                if root.is_some() && stack.is_empty() {
                    return Err(detail(what, src, before, "Extra content at the end of the document"));
                }
                let mut el = element_from(&e, before, (what, src), limits, suspicious)?;
                el.end = after;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Elem(el)),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let Some(mut el) = stack.pop() else {
                    return Err(detail(what, src, before, "unexpected end tag"));
                };
                el.end = after;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Elem(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let raw = within(src, &t).ok_or_else(|| detail(what, src, before, "text is not in the document"))?;
                if stack.is_empty() {
                    // Outside the root only blanks may stand; libxml2 names the first other
                    // character's line.
                    if let Some(first) = raw.find(|c: char| !c.is_ascii_whitespace()) {
                        let message = if root.is_some() {
                            "Extra content at the end of the document"
                        } else {
                            "Start tag expected, '<' not found"
                        };
                        return Err(detail(what, src, before + first, message));
                    }
                    continue;
                }
                if suspicious {
                    check_text(raw, what, src, before)?;
                }
                let text = unescaped(raw, what, src, before)?;
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(Node::Text(text));
                }
            }
            Event::CData(t) => {
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(Node::Text(Cow::Owned(String::from_utf8_lossy(&t).into_owned())));
                }
            }
            Event::Comment(c) => check_comment(&c, what, src, before)?,
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => {
                if let Some(open) = stack.last() {
                    // libxml2 reports where the input ended, trailing blank lines included.
                    return Err(detail(
                        what,
                        src,
                        src.len(),
                        format!("Premature end of data in tag {} line {}", open.name, line_of(src, open.start)),
                    ));
                }
                return root.ok_or_else(|| match body.is_empty() {
                    true => detail(what, src, 0, "Document is empty"),
                    false => detail(what, src, src.len(), "Start tag expected, '<' not found"),
                });
            }
        }
    }
}

/// libvirt's `virBufferEscapeString` escaping, for text and single-quoted attribute values:
/// the five markup characters as entities, and the control characters XML cannot carry (all
/// below U+0020 but tab, newline and return) dropped, as libvirt drops them.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' => {}
            c => out.push(c),
        }
    }
    out
}

/// Removes the indentation an embedded element had in its source: `raw` starts at the element's
/// `<`, and `column` is how many whitespace characters preceded it on its line. Every later line
/// loses up to `column` leading spaces. The result has no trailing newline.
pub(crate) fn dedent(raw: &str, column: usize) -> String {
    // An embedded domain definition is dedented on every parse of every snapshot embedding it.
    if let Some(done) = xml_verified::dedented(raw, column) {
        return done;
    }
    let out = dedent_uncached(raw, column);
    xml_verified::keep_dedented(raw, column, &out);
    out
}

fn dedent_uncached(raw: &str, column: usize) -> String {
    let mut out = String::with_capacity(raw.len());
    for (i, line) in raw.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            let strip = line.bytes().take(column).take_while(|b| *b == b' ' || *b == b'\t').count();
            out.push_str(&line[strip..]);
        } else {
            out.push_str(line);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// The column (leading-whitespace count) of byte offset `pos` on its line.
pub(crate) fn column_of(src: &str, pos: usize) -> usize {
    let pos = pos.min(src.len());
    let line_start = src[..pos].rfind('\n').map_or(0, |i| i + 1);
    pos - line_start
}

/// Appends `block` to `out`, every line prefixed by `indent`, ending with a newline.
pub(crate) fn push_indented(out: &mut String, block: &str, indent: &str) {
    for line in block.split('\n') {
        if !line.is_empty() {
            out.push_str(indent);
        }
        out.push_str(line);
        out.push('\n');
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    fn leaf(name: &str) -> Element<'_> {
        Element { name, attrs: Vec::new(), children: Vec::new(), start: 0, end: 0 }
    }

    /// A tree far deeper than the parser allows (built by hand) is dropped without recursion:
    /// the derived drop overflowed the stack at this depth (the CLI aborted at 200,000 levels).
    #[test]
    fn deep_tree_teardown_is_iterative() {
        let mut root = leaf("a");
        for _ in 0..1_000_000 {
            let mut parent = leaf("a");
            parent.children.push(Node::Elem(root));
            root = parent;
        }
        drop(root);
    }

    #[test]
    fn spans_index_the_given_text_after_a_byte_order_mark() {
        let src = "\u{feff}<r>\n  <d type='x'><a/></d>\n</r>";
        let root = parse_document_with(src, "t", |e| e.name == "d").unwrap();
        assert_eq!(root.raw(src), &src[3..]);
        assert_eq!(root.child("d").unwrap().raw(src), "<d type='x'><a/></d>");
        let twice = parse_document("\u{feff}\u{feff}<r/>", "t").unwrap_err();
        assert_eq!(twice.message, "(t):1: Start tag expected, '<' not found");
    }

    #[test]
    fn canonical_form_is_stable() {
        let src = "<s a=\"1\" b='x&apos;y'>\n  <c>  t&lt; </c><e>\n</e>text<f g='&amp;'><h/></f></s>";
        let root = parse_document(src, "t").unwrap();
        let mut once = String::new();
        root.write_canonical(2, &mut once);
        assert_eq!(
            once,
            "  <s a='1' b='x&apos;y'>\n    <c>  t&lt; </c>\n    <e/>\n    <f g='&amp;'>\n      <h/>\n    </f>\n  </s>\n"
        );
        let again_src = once.trim_start().to_owned();
        let again = parse_document(&again_src, "t").unwrap();
        let mut twice = String::new();
        again.write_canonical(2, &mut twice);
        assert_eq!(twice, once);
    }
}
