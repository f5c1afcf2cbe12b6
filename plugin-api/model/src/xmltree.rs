//! A minimal read-only XML element tree on top of quick-xml, with byte spans so that embedded
//! documents (`<domain>`, `<cookie>`) can be kept verbatim. Crate-private.
//!
//! Names, attribute values and text borrow from the source (unescaped copies only where the
//! source has entity references): a snapshot with its embedded domain is parsed on every
//! create and redefine, so per-node allocations matter.

use std::borrow::Cow;

use quick_xml::{Reader, escape::unescape, events::Event};

use crate::{Error, Result, codes};

/// One element: name, attributes (unescaped), children, and its byte span in the source.
#[derive(Debug, Clone)]
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
#[derive(Debug, Clone)]
pub(crate) enum Node<'a> {
    Elem(Element<'a>),
    Text(Cow<'a, str>),
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

/// `raw` unescaped, borrowed when it holds no entity reference.
fn unescaped<'a>(raw: &'a str, what: &str, src: &str, pos: usize) -> Result<Cow<'a, str>> {
    if raw.contains('&') { unescape(raw).map_err(|err| detail(what, src, pos, err)) } else { Ok(Cow::Borrowed(raw)) }
}

fn element_from<'a>(
    e: &quick_xml::events::BytesStart<'_>,
    start: usize,
    what: &str,
    src: &'a str,
) -> Result<Element<'a>> {
    let not_utf8 = || detail(what, src, start, "element name is not in the document's text");
    let name = within(src, e.name().as_ref()).ok_or_else(not_utf8)?;
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| detail(what, src, start, err))?;
        let key = within(src, a.key.as_ref()).ok_or_else(not_utf8)?;
        let raw = within(src, &a.value).ok_or_else(not_utf8)?;
        attrs.push((key, unescaped(raw, what, src, start)?));
    }
    Ok(Element { name, attrs, children: Vec::new(), start, end: start })
}

/// Parses a whole document and returns its root element. `what` names the document in
/// parser-detail errors, like libvirt's `(domain_snapshot)`.
pub(crate) fn parse_document<'a>(src: &'a str, what: &str) -> Result<Element<'a>> {
    parse_document_with(src, what, |_| false)
}

/// [`parse_document`], except that the root's children for which `opaque` is true are only
/// checked (well-formed, attributes and entities valid) and kept as a span: their content is not
/// built. Embedded documents that are kept verbatim (`<domain>`, `<cookie>`) need no tree.
pub(crate) fn parse_document_with<'a>(
    src: &'a str,
    what: &str,
    opaque: impl Fn(&Element<'a>) -> bool,
) -> Result<Element<'a>> {
    let mut reader = Reader::from_str(src);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text_start = false;
    cfg.trim_text_end = false;
    let mut stack: Vec<Element<'a>> = Vec::new();
    let mut root: Option<Element<'a>> = None;
    // Depth inside an opaque element (0: building the tree).
    let mut skip = 0usize;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let ev = reader.read_event().map_err(|err| {
            let pos = usize::try_from(reader.error_position()).unwrap_or(before);
            detail(what, src, pos, err)
        })?;
        let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        if skip > 0 {
            match &ev {
                Event::Start(e) | Event::Empty(e) => {
                    for a in e.attributes() {
                        a.map_err(|err| detail(what, src, before, err))?;
                    }
                    if matches!(ev, Event::Start(_)) {
                        skip += 1;
                    }
                    continue;
                }
                Event::Text(t) => {
                    let raw = within(src, t).ok_or_else(|| detail(what, src, before, "text is not in the document"))?;
                    unescaped(raw, what, src, before)?;
                    continue;
                }
                Event::End(_) if skip > 1 => {
                    skip -= 1;
                    continue;
                }
                Event::End(_) => skip = 0,
                Event::Eof => {}
                _ => continue,
            }
        }
        match ev {
            Event::Start(e) => {
                if root.is_some() && stack.is_empty() {
                    return Err(detail(what, src, before, "Extra content at the end of the document"));
                }
                let el = element_from(&e, before, what, src)?;
                if stack.len() == 1 && opaque(&el) {
                    skip = 1;
                }
                stack.push(el);
            }
            Event::Empty(e) => {
                if root.is_some() && stack.is_empty() {
                    return Err(detail(what, src, before, "Extra content at the end of the document"));
                }
                let mut el = element_from(&e, before, what, src)?;
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
                let text = unescaped(raw, what, src, before)?;
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(Node::Text(text));
                } else if !text.trim().is_empty() {
                    return Err(detail(what, src, before, "Start tag expected, '<' not found"));
                }
            }
            Event::CData(t) => {
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(Node::Text(Cow::Owned(String::from_utf8_lossy(&t).into_owned())));
                }
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(detail(
                        what,
                        src,
                        src.trim_end().len(),
                        format!("Premature end of data in tag {} line {}", open.name, line_of(src, open.start)),
                    ));
                }
                return root.ok_or_else(|| detail(what, src, 0, "Document is empty"));
            }
        }
    }
}

/// libvirt's `virBufferEscapeString` escaping, for text and single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Removes the indentation an embedded element had in its source: `raw` starts at the element's
/// `<`, and `column` is how many whitespace characters preceded it on its line. Every later line
/// loses up to `column` leading spaces. The result has no trailing newline.
pub(crate) fn dedent(raw: &str, column: usize) -> String {
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
    out.trim_end().to_owned()
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
