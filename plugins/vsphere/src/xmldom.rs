//! A small namespace-aware element tree over quick-xml for SOAP answers, and escaping for the
//! requests we write.
//!
//! Element names are kept as local names (vim25 answers put everything in `urn:vim25`, under
//! varying prefixes). `xsi:type` is looked up by namespace URI, not by prefix: the simulator
//! writes it as `XMLSchema-instance:type`, real servers as `xsi:type`.

use quick_xml::{
    NsReader,
    events::Event,
    name::{Namespace, ResolveResult},
};
pub use virtplug_plugin_sdk::model::xml::escape;

/// The XML Schema instance namespace (`xsi`).
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// One element: local name, attributes (namespace URI, local name, value), children, text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Local name (no prefix).
    pub name: String,
    /// Attributes as (namespace URI or empty, local name, unescaped value).
    pub attrs: Vec<(String, String, String)>,
    /// Child elements in document order.
    pub children: Vec<Element>,
    /// Concatenated text content directly inside this element.
    pub text: String,
}

impl Element {
    /// An unqualified attribute (`type="VirtualMachine"`).
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs.iter().find(|(ns, n, _)| ns.is_empty() && n == local).map(|(_, _, v)| v.as_str())
    }

    /// The `xsi:type` attribute, whatever prefix it was written with, without any `xsd:`
    /// style prefix in the value.
    pub fn xsi_type(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(ns, n, _)| ns == XSI && n == "type")
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

/// Parses a document; `Err` carries the parser's one-line message.
pub fn parse(src: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(src);
    let cfg = reader.config_mut();
    cfg.trim_text_start = false;
    cfg.trim_text_end = false;
    cfg.check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    loop {
        // Element names are kept as local names: resolving their namespace (as
        // `read_resolved_event` does for every element) is work thrown away; only attributes
        // with a prefix are resolved below. The reader still tracks the bindings.
        let ev = reader.read_event().map_err(|e| e.to_string())?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                let mut el = Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| e.to_string())?;
                    if a.key.as_namespace_binding().is_some() {
                        continue;
                    }
                    let (ns, local) = if a.key.prefix().is_some() {
                        let (res, local) = reader.resolve_attribute(a.key);
                        let ns = match res {
                            ResolveResult::Bound(Namespace(n)) => String::from_utf8_lossy(n).into_owned(),
                            _ => String::new(),
                        };
                        (ns, local)
                    } else {
                        // An unprefixed attribute is in no namespace (XML Namespaces §6.2).
                        (String::new(), a.key.local_name())
                    };
                    let value = a.unescape_value().map_err(|e| e.to_string())?.into_owned();
                    el.attrs.push((ns, String::from_utf8_lossy(local.as_ref()).into_owned(), value));
                }
                stack.push(el);
                if empty {
                    close(&mut stack)?;
                }
            }
            Event::End(_) => {
                if let Some(done) = close(&mut stack)? {
                    return Ok(done);
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.unescape().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => return Err("premature end of document".to_owned()),
            _ => {}
        }
    }
}

/// Pops the top element into its parent; returns it when it was the root.
fn close(stack: &mut Vec<Element>) -> Result<Option<Element>, String> {
    let el = stack.pop().ok_or_else(|| "unexpected end tag".to_owned())?;
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(el);
            Ok(None)
        }
        None => Ok(Some(el)),
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
    fn broken_documents_are_errors() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<html><body>Bad gateway").is_err());
        assert!(parse("").is_err());
    }
}
