//! `--xpath` and `--wrap` of `dumpxml` and `snapshot-dumpxml`: the nodes an XPath 1.0
//! expression selects in the XML, printed as virsh prints them (libxml2's `xmlNodeDump` with
//! formatting, of a document parsed without its indentation).
//!
//! - each element re-indented from column 0, two spaces a level, attributes in double quotes;
//! - an attribute as ` name="value"`, a text node as its escaped text, a comment as itself;
//! - the document itself (`/`) with its XML declaration;
//! - `--wrap`: all of them as the children of one `<nodes>` element (attributes become its own).
//!
//! An expression that selects no nodes (a number, a string, a boolean) is virsh's internal
//! error `Incorrect xpath '…'`; one that does not parse selects nothing, as libxml2's failed
//! evaluation does for virsh. Evaluation is sxd-xpath's; only the printing is here. sxd's tree
//! does not keep the order of an element's attributes, so it is read from the text itself.

use quick_xml::{Reader, events::Event};
use sxd_document::{
    dom::{Attribute, ChildOfElement, ChildOfRoot, Element},
    parser,
};
use sxd_xpath::{Context, Factory, Value, nodeset::Node};

use crate::error::CliError;

/// The longest expression evaluated; a longer one selects nothing. The parser and evaluator
/// recurse once per level of nesting (brackets, operators, unary minus), so an expression's
/// depth is bounded by its length, and [`STACK`] holds that depth.
const MAX_XPATH: usize = 4096;

/// The stack of the thread that compiles and evaluates an expression.
const STACK: usize = 256 << 20;

/// `f` on a thread with a [`STACK`]-sized stack (reserved, touched only as deep as it goes).
fn deep<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match std::thread::Builder::new().stack_size(STACK).spawn_scoped(s, f) {
        Ok(h) => h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
        Err(e) => panic!("cannot start the XPath thread: {e}"),
    })
}

/// What virsh prints for `xpath` over `xml` (before the empty line it prints after every
/// command's output).
pub fn select(xml: &str, xpath: &str, wrap: bool) -> Result<String, CliError> {
    deep(|| select_here(xml, xpath, wrap))
}

fn select_here(xml: &str, xpath: &str, wrap: bool) -> Result<String, CliError> {
    let package = parser::parse(xml).map_err(|e| CliError::msg(format!("XML error: {e}")))?;
    let doc = package.as_document();
    let compiled = if xpath.len() <= MAX_XPATH { Factory::new().build(xpath).ok() } else { None };
    let nodes = match compiled {
        Some(Some(x)) => match x.evaluate(&Context::new(), doc.root()) {
            Ok(Value::Nodeset(set)) => set.document_order(),
            Ok(_) => return Err(CliError::msg(format!("internal error: Incorrect xpath '{xpath}'"))),
            Err(_) => Vec::new(),
        },
        _ => Vec::new(),
    };
    let p = Printer { elements: elements(doc.root()), attr_order: attribute_order(xml) };
    let mut out = String::new();
    if wrap {
        let (mut attrs, children): (Vec<Node<'_>>, Vec<Node<'_>>) =
            nodes.iter().copied().partition(|n| matches!(n, Node::Attribute(_)));
        p.order_attributes(&mut attrs);
        out.push_str("<nodes");
        for a in attrs {
            p.dump(&mut out, a, 0);
        }
        if children.is_empty() {
            out.push_str("/>");
        } else {
            let inline = children.iter().any(|n| matches!(n, Node::Text(_)));
            out.push('>');
            for n in children {
                if !inline {
                    out.push('\n');
                    indent(&mut out, 1);
                }
                p.dump(&mut out, n, 1);
            }
            if !inline {
                out.push('\n');
            }
            out.push_str("</nodes>");
        }
        out.push('\n');
    } else {
        let mut nodes = nodes;
        p.order_attributes(&mut nodes);
        for n in nodes {
            p.dump(&mut out, n, 0);
            out.push('\n');
        }
    }
    Ok(out)
}

/// For each node `nodes` selects in `xml`, the string value of each of `fields` evaluated from
/// that node (libvirt's `virXPathString`: `None` for an empty string), as virsh reads device
/// lists (`domblklist`, `domiflist`, `undefine --storage`). A union of attributes gives the
/// first one written, as libxml2 orders them.
pub fn rows(xml: &str, nodes: &str, fields: &[&str]) -> Result<Vec<Vec<Option<String>>>, CliError> {
    let package = parser::parse(xml).map_err(|e| CliError::msg(format!("XML error: {e}")))?;
    let doc = package.as_document();
    let compile = |x: &str| {
        Factory::new()
            .build(x)
            .ok()
            .flatten()
            .ok_or_else(|| CliError::msg(format!("internal error: Incorrect xpath '{x}'")))
    };
    let list = compile(nodes)?;
    let fields: Vec<_> = fields.iter().map(|f| compile(f)).collect::<Result<_, _>>()?;
    let context = Context::new();
    let Ok(Value::Nodeset(set)) = list.evaluate(&context, doc.root()) else { return Ok(Vec::new()) };
    let p = Printer { elements: elements(doc.root()), attr_order: attribute_order(xml) };
    let string = |value: Value<'_>| match value {
        Value::Nodeset(set) => {
            let mut nodes = set.document_order();
            p.order_attributes(&mut nodes);
            nodes.first().map(Node::string_value).unwrap_or_default()
        }
        other => other.string(),
    };
    Ok(set
        .document_order()
        .into_iter()
        .map(|n| fields.iter().map(|f| f.evaluate(&context, n).ok().map(string).filter(|s| !s.is_empty())).collect())
        .collect())
}

/// Every element of the document in document order.
fn elements(root: sxd_document::dom::Root<'_>) -> Vec<Element<'_>> {
    fn walk<'d>(e: Element<'d>, out: &mut Vec<Element<'d>>) {
        out.push(e);
        for c in e.children() {
            if let ChildOfElement::Element(child) = c {
                walk(child, out);
            }
        }
    }
    let mut out = Vec::new();
    for c in root.children() {
        if let ChildOfRoot::Element(e) = c {
            walk(e, &mut out);
        }
    }
    out
}

/// The attribute names of each element, in document order, as written.
fn attribute_order(xml: &str) -> Vec<Vec<String>> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e) | Event::Empty(e)) => out.push(
                e.attributes()
                    .flatten()
                    .map(|a| String::from_utf8_lossy(a.key.as_ref()).into_owned())
                    .filter(|k| k != "xmlns" && !k.starts_with("xmlns:"))
                    .collect(),
            ),
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
    }
    out
}

/// What printing needs beyond sxd's tree.
struct Printer<'d> {
    elements: Vec<Element<'d>>,
    attr_order: Vec<Vec<String>>,
}

impl<'d> Printer<'d> {
    /// Where attribute `a` stands: its element's place in the document, then its own.
    fn rank(&self, a: Attribute<'d>) -> (usize, usize) {
        let Some(k) = a.parent().and_then(|e| self.elements.iter().position(|x| *x == e)) else { return (0, 0) };
        let name = qualified(a.preferred_prefix(), a.name().local_part());
        let at = self.attr_order.get(k).and_then(|names| names.iter().position(|n| *n == name));
        (k, at.unwrap_or(usize::MAX))
    }

    /// `nodes` (in sxd's document order) with each run of one element's attributes put in
    /// their written order; everything else stays where it is.
    fn order_attributes(&self, nodes: &mut [Node<'d>]) {
        let owner = |n: &Node<'d>| match n {
            Node::Attribute(a) => a.parent(),
            _ => None,
        };
        let mut start = 0;
        while start < nodes.len() {
            let mut end = start + 1;
            if owner(&nodes[start]).is_some() {
                while end < nodes.len() && owner(&nodes[end]) == owner(&nodes[start]) {
                    end += 1;
                }
                nodes[start..end].sort_by_key(|n| if let Node::Attribute(a) = n { self.rank(*a) } else { (0, 0) });
            }
            start = end;
        }
    }

    /// `e`'s attributes in their written order.
    fn attributes(&self, e: Element<'d>) -> Vec<Attribute<'d>> {
        let mut all = e.attributes();
        all.sort_by_key(|a| self.rank(*a));
        all
    }

    /// One node at indentation `level` (its first line already indented by the caller).
    fn dump(&self, out: &mut String, node: Node<'d>, level: usize) {
        match node {
            Node::Root(root) => {
                out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
                for child in root.children() {
                    match child {
                        ChildOfRoot::Element(e) => self.element(out, e, 0),
                        ChildOfRoot::Comment(c) => out.push_str(&format!("<!--{}-->", c.text())),
                        ChildOfRoot::ProcessingInstruction(p) => pi(out, p.target(), p.value()),
                    }
                    out.push('\n');
                }
            }
            Node::Element(e) => self.element(out, e, level),
            Node::Attribute(a) => {
                out.push_str(&format!(
                    " {}=\"{}\"",
                    qualified(a.preferred_prefix(), a.name().local_part()),
                    attr_text(a.value())
                ));
            }
            Node::Text(t) => out.push_str(&text(t.text())),
            Node::Comment(c) => out.push_str(&format!("<!--{}-->", c.text())),
            Node::ProcessingInstruction(p) => pi(out, p.target(), p.value()),
            Node::Namespace(_) => {}
        }
    }

    /// An element with its subtree. Whitespace-only text beside child elements was indentation
    /// (libvirt parses without it); an element holding other text keeps its content as it is.
    fn element(&self, out: &mut String, e: Element<'d>, level: usize) {
        let name = qualified(e.preferred_prefix(), e.name().local_part());
        out.push('<');
        out.push_str(&name);
        for ns in e.namespaces_in_scope().iter().filter(|ns| ns.prefix() != "xml" && declared_here(e, ns.prefix())) {
            out.push_str(&format!(" xmlns:{}=\"{}\"", ns.prefix(), attr_text(ns.uri())));
        }
        if let Some(uri) = e.default_namespace_uri() {
            out.push_str(&format!(" xmlns=\"{}\"", attr_text(uri)));
        }
        for a in self.attributes(e) {
            out.push_str(&format!(
                " {}=\"{}\"",
                qualified(a.preferred_prefix(), a.name().local_part()),
                attr_text(a.value())
            ));
        }
        let all = e.children();
        let has_elements = all.iter().any(|c| matches!(c, ChildOfElement::Element(_)));
        let children: Vec<_> = all
            .into_iter()
            .filter(|c| !(has_elements && matches!(c, ChildOfElement::Text(t) if t.text().trim().is_empty())))
            .collect();
        if children.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        // libxml2 formats only an element whose children hold no text
        let format = !children.iter().any(|c| matches!(c, ChildOfElement::Text(_)));
        for c in children {
            if format {
                out.push('\n');
                indent(out, level + 1);
            }
            match c {
                ChildOfElement::Element(child) => self.element(out, child, level + 1),
                ChildOfElement::Text(t) => out.push_str(&text(t.text())),
                ChildOfElement::Comment(k) => out.push_str(&format!("<!--{}-->", k.text())),
                ChildOfElement::ProcessingInstruction(p) => pi(out, p.target(), p.value()),
            }
        }
        if format {
            out.push('\n');
            indent(out, level);
        }
        out.push_str(&format!("</{name}>"));
    }
}

fn indent(out: &mut String, level: usize) {
    out.extend(std::iter::repeat_n("  ", level));
}

fn pi(out: &mut String, target: &str, value: Option<&str>) {
    match value {
        Some(v) => out.push_str(&format!("<?{target} {v}?>")),
        None => out.push_str(&format!("<?{target}?>")),
    }
}

fn qualified(prefix: Option<&str>, local: &str) -> String {
    match prefix {
        Some(p) => format!("{p}:{local}"),
        None => local.to_owned(),
    }
}

/// Whether `prefix` is declared on `e` itself rather than inherited from its parent.
fn declared_here(e: Element<'_>, prefix: &str) -> bool {
    let parent = e.parent().and_then(|p| p.element());
    let mine = e.namespace_uri_for_prefix(prefix);
    parent.is_none_or(|p| p.namespace_uri_for_prefix(prefix) != mine)
}

/// Element content as libxml2 escapes it.
fn text(s: &str) -> String {
    escape(s, false)
}

/// An attribute value as libxml2 escapes it inside double quotes.
fn attr_text(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '"' if attribute => out.push_str("&quot;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "<domainsnapshot>\n  <name>s2</name>\n  <description>a &amp; b &lt;c&gt; \"d\" 'e'</description>\n  \
                       <parent>\n    <name>s1</name>\n  </parent>\n  <memory snapshot='no'/>\n  <disks>\n    \
                       <disk name='vda' snapshot='internal'/>\n  </disks>\n</domainsnapshot>\n";

    fn ok(xpath: &str, wrap: bool) -> String {
        select(DOC, xpath, wrap).unwrap()
    }

    /// Each as virsh 9.0 printed it for the same document (before its closing empty line).
    #[test]
    fn nodes_print_as_virsh_prints_them() {
        assert_eq!(ok("/domainsnapshot/parent", false), "<parent>\n  <name>s1</name>\n</parent>\n");
        assert_eq!(ok("//name", false), "<name>s2</name>\n<name>s1</name>\n");
        assert_eq!(ok("//name", true), "<nodes>\n  <name>s2</name>\n  <name>s1</name>\n</nodes>\n");
        assert_eq!(ok("//name/text()", false), "s2\ns1\n");
        assert_eq!(ok("//description", false), "<description>a &amp; b &lt;c&gt; \"d\" 'e'</description>\n");
        assert_eq!(ok("//disk/@name", false), " name=\"vda\"\n");
        assert_eq!(ok("//disk/@name", true), "<nodes name=\"vda\"/>\n");
        assert_eq!(ok("//description/text()", true), "<nodes>a &amp; b &lt;c&gt; \"d\" 'e'</nodes>\n");
        assert_eq!(ok("//memory|//name", false), "<name>s2</name>\n<name>s1</name>\n<memory snapshot=\"no\"/>\n");
        // attributes in their written order, each run where its element stands
        assert_eq!(
            ok("//disk/@* | //memory | //disk/@name", false),
            "<memory snapshot=\"no\"/>\n name=\"vda\"\n snapshot=\"internal\"\n"
        );
        assert_eq!(ok("//disk", false), "<disk name=\"vda\" snapshot=\"internal\"/>\n");
        assert_eq!(ok("//nosuch", false), "");
        assert_eq!(ok("//nosuch", true), "<nodes/>\n");
        assert_eq!(ok("//disk[", false), "");
        assert!(
            ok("/", false)
                .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<domainsnapshot>\n  <name>s2</name>\n")
        );
        assert!(ok("/", false).ends_with("  </disks>\n</domainsnapshot>\n\n"));
    }

    /// The deepest expressions of the longest length evaluate (the stack holds them); longer
    /// ones select nothing.
    #[test]
    fn deep_expressions_do_not_exhaust_the_stack() {
        let nested = |n: usize| format!("{}//name{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(ok(&nested((MAX_XPATH - 6) / 2), false), "<name>s2</name>\n<name>s1</name>\n");
        assert_eq!(ok(&nested(MAX_XPATH), false), "");
        for chain in [format!("{}1", "-".repeat(MAX_XPATH - 1)), format!("1{}", "+1".repeat(MAX_XPATH / 2 - 1))] {
            let e = select(DOC, &chain, false).unwrap_err();
            assert_eq!(e.lines(), vec![format!("internal error: Incorrect xpath '{chain}'")]);
        }
    }

    /// A union of attributes gives the first one written (sxd's own order is not it).
    #[test]
    fn rows_take_the_first_attribute_written() {
        let xml = "<d><s b='1' a='2'/><s a='3' b='4'/><s/></d>";
        let got = rows(xml, "/d/s", &["./@b|./@a", "./@a"]).unwrap();
        assert_eq!(
            got,
            vec![vec![Some("1".into()), Some("2".into())], vec![Some("3".into()), Some("3".into())], vec![None, None]]
        );
    }

    #[test]
    fn other_values_are_refused() {
        for x in ["count(//disk)", "string(//name)", "1 = 1"] {
            let e = select(DOC, x, false).unwrap_err();
            assert_eq!(e.lines(), vec![format!("internal error: Incorrect xpath '{x}'")]);
        }
    }

    #[test]
    fn attribute_values_are_escaped_in_double_quotes() {
        let doc = "<a v='x&quot;y&lt;z&#10;t&#9;'>  </a>";
        assert_eq!(select(doc, "/a", false).unwrap(), "<a v=\"x&quot;y&lt;z&#10;t&#9;\">  </a>\n");
    }
}
