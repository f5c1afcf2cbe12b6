//! A small namespace-aware element tree over quick-xml for SOAP answers, and escaping for the
//! requests we write.
//!
//! Element names are kept as local names (vim25 answers put everything in `urn:vim25`, under
//! varying prefixes). `xsi:type` is looked up by namespace URI, not by prefix: the simulator
//! writes it as `XMLSchema-instance:type`, real servers as `xsi:type`.

use std::borrow::Cow;

use quick_xml::{
    Reader,
    events::{BytesStart, Event},
};
pub use virtplug_plugin_sdk::model::xml::escape;

/// The XML Schema instance namespace (`xsi`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// An attribute's namespace, as far as the plugin cares: none, `xsi`, or another one (kept
/// apart so that `foo:type` is never taken for the unqualified `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns {
    /// No namespace (an unprefixed attribute).
    None,
    /// The XML Schema instance namespace ([`XSI`]).
    Xsi,
    /// Any other namespace.
    Other,
}

/// One element: local name, attributes (namespace, local name, value), children, text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (no prefix).
    pub name: String,
    /// Attributes as (namespace, local name, unescaped value). Per attribute, only what is
    /// needed is kept (an answer has one attribute on most elements; issue 19 counts this).
    pub attrs: Vec<(Ns, String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated text content directly inside this element.
    pub text: String,
}

impl Element {
    /// An unqualified attribute (`type="VirtualMachine"`).
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs.iter().find(|(ns, n, _)| *ns == Ns::None && n == local).map(|(_, _, v)| v.as_str())
    }

    /// The `xsi:type` attribute, whatever prefix it was written with, without any `xsd:`
    /// style prefix in the value.
    pub fn xsi_type(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, n, _)| *ns == Ns::Xsi && n == "type")
            .map(|(_, _, v)| v.rsplit(':').next().unwrap_or(v.as_str()))
    }

    /// The first child with this local name.
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == local)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == local)
    }

    /// The text of the first child with this local name.
    pub fn child_text(&self, local: &str) -> Option<&str> {
        self.child(local).map(|c| c.text.as_str())
    }

    /// Removes and returns the first child with this local name (an answer's parts are moved
    /// out of its tree, not copied).
    pub fn take_child(&mut self, local: &str) -> Option<Element> {
        let at = self.children.iter().position(|c| c.name == local)?;
        Some(self.children.remove(at))
    }

    /// Follows a path of local names (`["returnval", "about", "apiVersion"]`).
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        names.iter().try_fold(self, |el, n| el.child(n))
    }
}

/// A prefix declared on an open element (`xmlns:P="uri"`), with what it is bound to.
struct Binding {
    depth: usize,
    prefix: Vec<u8>,
    ns: Ns,
}

/// What `prefix` is bound to in the open elements (the innermost declaration wins).
fn resolve(bindings: &[Binding], prefix: &[u8]) -> Ns {
    bindings.iter().rev().find(|b| b.prefix == prefix).map_or(Ns::Other, |b| b.ns)
}

/// One step through a document (see [`Doc::next`]).
pub enum Step<'a> {
    /// A start tag; `true` for an empty element (`<x/>`), which no [`Step::Close`] follows.
    Open(BytesStart<'a>, bool),
    /// The end of the innermost open element.
    Close,
    /// Text inside an element, unescaped (or a CDATA section's content).
    Text(Cow<'a, str>),
}

/// A document read step by step, with the namespace declarations of the open elements.
///
/// [`parse`] builds a whole tree with it; the answers read most often (`props.rs`) are read
/// straight from its steps instead, and build elements only for the parts they keep (issue 19:
/// building and freeing the tree of an answer was about half of a request's own cost). Both
/// check the same things: every step checks its markup and every attribute and text escape, and
/// the root's end is the last step read (what follows it is not read).
pub struct Doc<'a> {
    reader: Reader<&'a [u8]>,
    bindings: Vec<Binding>,
    /// Elements open.
    depth: usize,
    /// The depth of the empty element returned last: its declarations end at the next step.
    emptied: Option<usize>,
}

/// An element's local name.
pub fn local<'t>(tag: &'t BytesStart<'_>) -> Result<&'t str, String> {
    std::str::from_utf8(tag.local_name().into_inner()).map_err(|e| e.to_string())
}

impl<'a> Doc<'a> {
    /// A reader at the start of `src`.
    pub fn new(src: &'a str) -> Self {
        let mut reader = Reader::from_str(src);
        let cfg = reader.config_mut();
        cfg.trim_text_start = false;
        cfg.trim_text_end = false;
        cfg.check_end_names = true;
        Self { reader, bindings: Vec::new(), depth: 0, emptied: None }
    }

    /// The next start tag, end tag or text inside an element; `Err` carries the parser's one-line
    /// message (the end of the input before the root's end is one).
    pub fn next(&mut self) -> Result<Step<'a>, String> {
        if let Some(depth) = self.emptied.take() {
            self.end_scope(depth);
        }
        loop {
            match self.reader.read_event().map_err(|e| e.to_string())? {
                Event::Start(e) => {
                    self.declare(&e)?;
                    self.depth += 1;
                    return Ok(Step::Open(e, false));
                }
                Event::Empty(e) => {
                    self.declare(&e)?;
                    self.emptied = Some(self.depth);
                    return Ok(Step::Open(e, true));
                }
                Event::End(_) => {
                    self.depth = self.depth.checked_sub(1).ok_or_else(|| "unexpected end tag".to_owned())?;
                    self.end_scope(self.depth);
                    return Ok(Step::Close);
                }
                Event::Text(t) if self.depth > 0 => return Ok(Step::Text(t.unescape().map_err(|e| e.to_string())?)),
                Event::CData(t) if self.depth > 0 => {
                    return Ok(Step::Text(Cow::Owned(String::from_utf8_lossy(&t).into_owned())));
                }
                Event::Eof => return Err("premature end of document".to_owned()),
                _ => {}
            }
        }
    }

    /// Drops the declarations of the element at `depth` that ends (most declare nothing).
    fn end_scope(&mut self, depth: usize) {
        if self.bindings.last().is_some_and(|b| b.depth >= depth) {
            self.bindings.retain(|b| b.depth < depth);
        }
    }

    /// Checks every attribute of a start tag and records its namespace declarations.
    fn declare(&mut self, tag: &BytesStart<'_>) -> Result<(), String> {
        // Duplicate names are checked here rather than by the parser's checked iterator, which
        // allocates a list per element (issue 19); the first few names are kept on the stack.
        let (mut first, mut more): ([&[u8]; 4], Vec<&[u8]>) = ([&[]; 4], Vec::new());
        for (i, a) in tag.attributes().with_checks(false).enumerate() {
            let a = a.map_err(|e| e.to_string())?;
            let key = a.key.into_inner();
            if first[..i.min(4)].contains(&key) || more.contains(&key) {
                return Err(format!("duplicated attribute '{}'", String::from_utf8_lossy(key)));
            }
            match first.get_mut(i) {
                Some(slot) => *slot = key,
                None => more.push(key),
            }
            if key == b"xmlns" {
                continue; // the default namespace: not used for attributes
            }
            if let Some(prefix) = key.strip_prefix(b"xmlns:") {
                let ns = if &*a.value == XSI.as_bytes() { Ns::Xsi } else { Ns::Other };
                self.bindings.push(Binding { depth: self.depth, prefix: prefix.to_vec(), ns });
                continue;
            }
            // Only an escape can make a value wrong (the text is UTF-8 already).
            if a.value.contains(&b'&') {
                a.unescape_value().map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// The element a start tag just returned by [`Doc::next`] opens, without its content.
    pub fn element(&self, tag: &BytesStart<'_>) -> Result<Element, String> {
        let mut el = Element { name: local(tag)?.to_owned(), ..Element::default() };
        // Checked for duplicates when the step was read.
        for a in tag.attributes().with_checks(false) {
            let a = a.map_err(|e| e.to_string())?;
            let key = a.key.into_inner();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let value = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
            match a.key.prefix() {
                // An unprefixed attribute is in no namespace (XML Namespaces §6.2).
                None => el.attrs.push((Ns::None, String::from_utf8_lossy(key).into_owned(), value)),
                Some(p) => {
                    let local = String::from_utf8_lossy(a.key.local_name().into_inner()).into_owned();
                    el.attrs.push((resolve(&self.bindings, p.into_inner()), local, value));
                }
            }
        }
        Ok(el)
    }

    /// The whole element a start tag just returned by [`Doc::next`] opens (`empty` as returned).
    pub fn subtree(&mut self, tag: &BytesStart<'_>, empty: bool) -> Result<Element, String> {
        let top = self.element(tag)?;
        if empty {
            return Ok(top);
        }
        let mut stack = vec![top];
        loop {
            match self.next()? {
                Step::Open(tag, empty) => {
                    let el = self.element(&tag)?;
                    match stack.last_mut() {
                        Some(parent) if empty => parent.children.push(el),
                        _ => stack.push(el),
                    }
                }
                Step::Text(t) => {
                    if let Some(top) = stack.last_mut() {
                        // Most elements have one text step: take it whole rather than copy it.
                        if top.text.is_empty() {
                            top.text = t.into_owned();
                        } else {
                            top.text.push_str(&t);
                        }
                    }
                }
                Step::Close => {
                    let el = stack.pop().ok_or_else(|| "unexpected end tag".to_owned())?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return Ok(el),
                    }
                }
            }
        }
    }

    /// Reads past the end of the element a start tag just returned by [`Doc::next`] opens
    /// (`empty` as returned), checking what it skips.
    pub fn skip(&mut self, empty: bool) -> Result<(), String> {
        let mut open = usize::from(!empty);
        while open > 0 {
            match self.next()? {
                Step::Open(_, false) => open += 1,
                Step::Close => open -= 1,
                Step::Open(_, true) | Step::Text(_) => {}
            }
        }
        Ok(())
    }
}

/// Parses a document; `Err` carries the parser's one-line message.
///
/// Namespaces are resolved here, for attributes only and only as far as [`Ns`] goes: the
/// reader's own namespace tracking reads every element's attributes a second time, and element
/// names are kept as local names anyway.
pub fn parse(src: &str) -> Result<Element, String> {
    let mut doc = Doc::new(src);
    loop {
        if let Step::Open(tag, empty) = doc.next()? {
            return doc.subtree(&tag, empty);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn xsi_type_under_any_prefix_and_untyped_array_items() {
        let doc = r#"<a xmlns="urn:vim25"><val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="VirtualMachineSnapshot">snapshot-71</ManagedObjectReference></val><f xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="xsd:string">x &amp; y</f><e></e><g/></a>"#;
        let root = parse(doc).unwrap();
        let val = root.child("val").unwrap();
        assert_eq!(val.xsi_type(), Some("ArrayOfManagedObjectReference"));
        let item = val.child("ManagedObjectReference").unwrap();
        assert_eq!(item.xsi_type(), None);
        assert_eq!(item.attr("type"), Some("VirtualMachineSnapshot"));
        assert_eq!(item.text, "snapshot-71");
        let f = root.child("f").unwrap();
        assert_eq!(f.xsi_type(), Some("string"));
        assert_eq!(f.text, "x & y");
        assert_eq!(root.child("e").unwrap().text, "");
        assert!(root.child("g").is_some());
    }

    #[test]
    fn xsi_prefixes_are_scoped() {
        // Declared after its use on the same element; rebound inside; gone after its element;
        // an undeclared prefix is neither xsi nor unqualified.
        let doc = r#"<a><b p:type="one" xmlns:p="http://www.w3.org/2001/XMLSchema-instance"><c xmlns:p="urn:other" p:type="two"/><d p:type="xsd:three"/></b><e p:type="four" type="plain"/><f xmlns:q="http://www.w3.org/2001/XMLSchema-instance" q:type="five"/></a>"#;
        let root = parse(doc).unwrap();
        let b = root.child("b").unwrap();
        assert_eq!(b.xsi_type(), Some("one"));
        assert_eq!(b.child("c").unwrap().xsi_type(), None);
        assert_eq!(b.child("d").unwrap().xsi_type(), Some("three"));
        let e = root.child("e").unwrap();
        assert_eq!((e.xsi_type(), e.attr("type")), (None, Some("plain")));
        assert_eq!(root.child("f").unwrap().xsi_type(), Some("five"));
        assert_eq!(b.child("c").unwrap().attr("type"), None);
    }

    #[test]
    fn broken_documents_are_errors() {
        assert!(parse("<a><b></a>").is_err());
        // Duplicate attributes, among the first four and after them.
        assert!(parse(r#"<a x="1" x="2"/>"#).is_err());
        assert!(parse(r#"<a p="1" q="2" r="3" s="4" t="5" q="6"/>"#).is_err());
        assert!(parse(r#"<a p="1" q="2" r="3" s="4" t="5" u="6"/>"#).is_ok());
        assert!(parse(r#"<a p="&bogus;"/>"#).is_err());
        assert!(parse("<html><body>Bad gateway").is_err());
        assert!(parse("").is_err());
    }
}
