//! `RetrievePropertiesEx` answers read straight from the parser's steps (issue 19): elements
//! are built only for the parts an [`ObjectContent`] keeps (an object's reference, its
//! property values, its missing properties), and a VM's `snapshot` value is read into its
//! [`Tree`] without an element tree at all. The envelope around them is checked, not kept.
//!
//! This reads only the answers it recognises: a 200 whose Body's first element is a
//! `RetrievePropertiesExResponse` (or its `Continue…` form). Anything else (a fault, an error
//! page, a document the parser refuses, an answer of another shape) gives `None`, and the caller
//! reads it as before ([`Soap::parse_response`](crate::soap::Soap::parse_response)), which
//! gives the same fault or error it always did. What this reads equals what
//! [`page_of`] makes of the element tree (tests below).

use crate::{
    fault::Fault,
    soap::{CallError, CallResult},
    tree::Tree,
    vim::{MoRef, ObjectContent, missing_of},
    xmldom::{Doc, Element, Step, local},
};
use quick_xml::events::BytesStart;

/// One answer of `RetrievePropertiesEx` or `ContinueRetrievePropertiesEx`.
#[derive(Debug, Default)]
pub struct Page {
    /// The token for the next page (non-empty), if any.
    pub token: Option<String>,
    /// The objects with a usable reference, in order.
    pub objects: Vec<ObjectContent>,
}

/// The page of an answer's response element (the element tree path).
pub fn page_of(mut resp: Element) -> Page {
    let Some(rv) = resp.take_child("returnval") else { return Page::default() };
    let token = rv.child_text("token").map(str::to_owned).filter(|t| !t.is_empty());
    let mut objects = Vec::new();
    crate::vim::parse_objects(rv, &mut objects);
    Page { token, objects }
}

/// Reads a 200 answer's text; `None` when it is not a `RetrievePropertiesEx` answer this
/// reads (see the module header). A missing property whose fault is `NotAuthenticated` is that
/// fault (simulator quirk F.6 #6, as `Soap::parse_response` has it).
pub fn read(text: &str) -> Option<CallResult<Page>> {
    let mut reader = Reader { doc: Doc::new(text), not_authenticated: None };
    let page = reader.envelope().ok()??;
    Some(match reader.not_authenticated {
        Some(f) => Err(CallError::Fault(f)),
        None => Ok(page),
    })
}

struct Reader<'a> {
    doc: Doc<'a>,
    /// The first `NotAuthenticated` of a missing property.
    not_authenticated: Option<Fault>,
}

/// A child's start tag and its local name.
#[derive(Clone, Copy)]
struct Tag<'t, 'a> {
    /// Compared as bytes: only a kept element's name is made a `str`.
    name: &'t [u8],
    tag: &'t BytesStart<'a>,
}

/// `Ok(None)`: not an answer this reads.
type Read<T> = Result<Option<T>, String>;

impl Reader<'_> {
    /// Calls `child` for every child element of the element just opened (not empty), up to
    /// its end; `child` reads or skips the whole child. Text between children is checked only.
    fn children(&mut self, mut child: impl FnMut(&mut Self, Tag<'_, '_>, bool) -> Read<()>) -> Read<()> {
        loop {
            match self.doc.next()? {
                Step::Open(tag, empty) => {
                    let name = tag.local_name();
                    if child(self, Tag { name: name.as_ref(), tag: &tag }, empty)?.is_none() {
                        return Ok(None);
                    }
                }
                Step::Close => return Ok(Some(())),
                Step::Text(_) => {}
            }
        }
    }

    /// The whole element `tag` (just opened) opens.
    fn content(&mut self, tag: Tag<'_, '_>, empty: bool) -> Result<Element, String> {
        self.doc.subtree(tag.tag, empty)
    }

    /// The text of the element `tag` (just opened) opens: its own text, not its children's (as
    /// [`Element::text`]), without making the element.
    fn text_of(&mut self, empty: bool) -> Result<String, String> {
        let (mut text, mut open) = (String::new(), usize::from(!empty));
        while open > 0 {
            match self.doc.next()? {
                Step::Open(_, false) => open += 1,
                Step::Open(_, true) => {}
                Step::Close => open -= 1,
                Step::Text(t) if open == 1 => {
                    if text.is_empty() {
                        text = t.into_owned();
                    } else {
                        text.push_str(&t);
                    }
                }
                Step::Text(_) => {}
            }
        }
        Ok(text)
    }

    fn envelope(&mut self) -> Read<Page> {
        let empty = loop {
            if let Step::Open(tag, empty) = self.doc.next()? {
                if local(&tag)? != "Envelope" {
                    return Ok(None);
                }
                break empty;
            }
        };
        if empty {
            return Ok(None);
        }
        let mut page = None;
        let mut body_met = false;
        let done = self.children(|r, t, empty| {
            if t.name == b"Body" && !body_met {
                body_met = true;
                if empty {
                    return Ok(None);
                }
                page = r.body()?;
                return Ok(page.as_ref().map(drop));
            }
            r.doc.skip(empty).map(Some)
        })?;
        Ok(done.and(page))
    }

    fn body(&mut self) -> Read<Page> {
        let mut page = None;
        let mut first = true;
        let done = self.children(|r, t, empty| {
            if !std::mem::take(&mut first) {
                return r.doc.skip(empty).map(Some);
            }
            if t.name != b"RetrievePropertiesExResponse" && t.name != b"ContinueRetrievePropertiesExResponse" {
                return Ok(None);
            }
            let mut p = Page::default();
            if !empty {
                let mut rv_met = false;
                let read = r.children(|r, t, empty| {
                    if t.name == b"returnval" && !rv_met {
                        rv_met = true;
                        return r.returnval(&mut p, empty);
                    }
                    r.doc.skip(empty).map(Some)
                })?;
                if read.is_none() {
                    return Ok(None);
                }
            }
            page = Some(p);
            Ok(Some(()))
        })?;
        // A Body without elements is not an answer.
        Ok(done.and(page))
    }

    fn returnval(&mut self, page: &mut Page, empty: bool) -> Read<()> {
        if empty {
            return Ok(Some(()));
        }
        let mut token: Option<String> = None;
        let done = self.children(|r, t, empty| {
            match t.name {
                b"token" if token.is_none() => token = Some(r.text_of(empty)?),
                b"objects" => r.object(&mut page.objects, empty)?,
                _ => r.doc.skip(empty)?,
            }
            Ok(Some(()))
        })?;
        page.token = token.filter(|t| !t.is_empty());
        Ok(done)
    }

    /// One `objects`: kept when its first `obj` is a reference (as `vim::parse_objects`).
    fn object(&mut self, out: &mut Vec<ObjectContent>, empty: bool) -> Result<(), String> {
        if empty {
            return Ok(());
        }
        let (mut obj, mut obj_met) = (None, false);
        let (mut props, mut missing, mut snapshot) = (Vec::new(), Vec::new(), None);
        self.children(|r, t, empty| {
            match t.name {
                b"obj" if !obj_met => {
                    obj_met = true;
                    obj = MoRef::from_element(&r.content(t, empty)?);
                }
                b"missingSet" => {
                    let ms = r.content(t, empty)?;
                    let (path, fault) = missing_of(&ms);
                    // The quirk looks at the inner fault only (a missing one is not it).
                    if r.not_authenticated.is_none()
                        && ms.child("fault").and_then(|f| f.child("fault")).is_some()
                        && fault.is("NotAuthenticated")
                    {
                        r.not_authenticated = Some(fault.clone());
                    }
                    missing.push((path, fault));
                }
                b"propSet" => r.prop_set(&mut props, &mut snapshot, empty)?,
                _ => r.doc.skip(empty)?,
            }
            Ok(Some(()))
        })?;
        if let Some(obj) = obj {
            out.push(ObjectContent { obj, props, missing, snapshot });
        }
        Ok(())
    }

    /// One `propSet`: its first `name` and first `val`; the object's first `snapshot` value
    /// is read into a tree (straight from the steps when its name comes first, as vSphere
    /// writes it).
    fn prop_set(
        &mut self,
        props: &mut Vec<(String, Element)>,
        snapshot: &mut Option<Tree>,
        empty: bool,
    ) -> Result<(), String> {
        if empty {
            return Ok(());
        }
        enum Val {
            El(Element),
            Tree(Tree),
        }
        let (mut name, mut val): (Option<String>, Option<Val>) = (None, None);
        self.children(|r, t, empty| {
            match t.name {
                b"name" if name.is_none() => name = Some(r.text_of(empty)?),
                b"val" if val.is_none() => {
                    val = Some(if name.as_deref() == Some("snapshot") && snapshot.is_none() {
                        Val::Tree(if empty { Tree::default() } else { Tree::read(&mut r.doc)? })
                    } else {
                        Val::El(r.content(t, empty)?)
                    });
                }
                _ => r.doc.skip(empty)?,
            }
            Ok(Some(()))
        })?;
        match (name, val) {
            (Some(n), Some(v)) if n == "snapshot" && snapshot.is_none() => {
                *snapshot = Some(match v {
                    Val::Tree(t) => t,
                    Val::El(e) => Tree::parse(Some(&e)),
                });
            }
            (Some(n), Some(Val::El(e))) => props.push((n, e)),
            // A tree is only read for the first snapshot value (the arm above).
            (Some(_), Some(Val::Tree(_))) | (_, None) | (None, _) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::xmldom;

    const HEAD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#;
    const TAIL: &str = "</soapenv:Body></soapenv:Envelope>";

    /// The page the element tree path makes of `text`, or `None` where it gives no page.
    fn via_dom(text: &str) -> Option<Page> {
        let mut doc = xmldom::parse(text).ok()?;
        let inner = doc.take_child("Body")?.children.into_iter().next()?;
        let mine =
            inner.name.starts_with("RetrievePropertiesEx") || inner.name.starts_with("ContinueRetrievePropertiesEx");
        mine.then(|| page_of(inner))
    }

    fn same(a: &Page, b: &Page) -> bool {
        a.token == b.token
            && a.objects.len() == b.objects.len()
            && a.objects.iter().zip(&b.objects).all(|(x, y)| {
                x.obj == y.obj
                    && x.props == y.props
                    && x.snapshot == y.snapshot
                    && x.missing
                        .iter()
                        .map(|(p, f)| (p, &f.kind, &f.message))
                        .eq(y.missing.iter().map(|(p, f)| (p, &f.kind, &f.message)))
            })
    }

    #[test]
    fn answers_read_from_the_steps_are_the_element_trees_pages() {
        let snap = r#"<val xsi:type="VirtualMachineSnapshotInfo"><currentSnapshot type="VirtualMachineSnapshot">snapshot-2</currentSnapshot><rootSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-1</snapshot><name>a &amp; b</name><description></description><id>1</id><createTime>2026-11-26T08:26:44Z</createTime><state>poweredOff</state><childSnapshotList><snapshot type="VirtualMachineSnapshot">snapshot-2</snapshot><name>c</name><state>poweredOn</state></childSnapshotList></rootSnapshotList></val>"#;
        let bodies = [
            // What `snapshot_current` reads.
            format!(
                r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-57</obj><propSet><name>config.uuid</name><val xsi:type="xsd:string">4216 ab</val></propSet><propSet><name>snapshot</name>{snap}</propSet></objects></returnval></RetrievePropertiesExResponse>"#
            ),
            // A token, several objects, one without a usable reference, a missing property,
            // a second snapshot value, a value before its name, unknown elements.
            format!(
                r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token>t1</token><token>t2</token><objects><obj>no-type</obj><propSet><name>name</name><val>x</val></propSet></objects><objects><obj type="VirtualMachine">vm-1</obj><obj type="VirtualMachine">vm-2</obj><x><name>snapshot</name></x><propSet><val>early</val><name>name</name></propSet><propSet><name>snapshot</name>{snap}</propSet><propSet><name>snapshot</name><val/></propSet><propSet><name>lonely</name></propSet><propSet><name>na<i>x</i>me</name><val>v<i>w</i></val></propSet><missingSet><path>config</path><fault><fault xsi:type="NoPermission"><privilegeId>System.Read</privilegeId></fault><localizedMessage>no</localizedMessage></fault></missingSet><missingSet><path>other</path></missingSet></objects><objects><obj type="VirtualMachine">vm-3</obj><propSet>{snap}<name>snapshot</name></propSet><propSet><name>snapshot</name><val/></propSet></objects></returnval><returnval><objects><obj type="VirtualMachine">vm-9</obj></objects></returnval></RetrievePropertiesExResponse><Extra/>"#
            ),
            r#"<ContinueRetrievePropertiesExResponse xmlns="urn:vim25"><returnval><token></token><objects><obj type="VirtualMachine">vm-4</obj><propSet><name>snapshot</name><val/></propSet></objects></returnval></ContinueRetrievePropertiesExResponse>"#.to_owned(),
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"/>"#.to_owned(),
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval/></RetrievePropertiesExResponse>"#.to_owned(),
        ];
        for body in &bodies {
            let text = format!("{HEAD}{body}{TAIL}");
            let streamed = read(&text).expect("read").expect("a page");
            let dom = via_dom(&text).expect("a page");
            assert!(same(&streamed, &dom), "{body}\n{streamed:?}\n{dom:?}");
        }
        let page = read(&format!("{HEAD}{}{TAIL}", bodies[1])).unwrap().unwrap();
        assert_eq!(page.token.as_deref(), Some("t1"));
        let objs: Vec<_> = page.objects.iter().map(|o| o.obj.value.as_str()).collect();
        assert_eq!(objs, ["vm-1", "vm-3"]);
        assert_eq!(page.objects[0].text("name"), Some("early"));
        assert_eq!(page.objects[0].snapshot.as_ref().map(|t| t.nodes.len()), Some(2));
        assert_eq!(page.objects[0].missing[0].1.kind, "NoPermission");
        assert_eq!(page.objects[0].missing[1].1.kind, "Unknown");
        assert_eq!(page.objects[1].snapshot.as_ref().map(|t| t.current), Some(Some(1)));
    }

    #[test]
    fn anything_else_is_left_to_the_element_tree() {
        let not_mine = [
            format!(
                "{HEAD}<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>x</faultstring><detail><NotAuthenticatedFault xmlns=\"urn:vim25\" xsi:type=\"NotAuthenticated\"/></detail></soapenv:Fault>{TAIL}"
            ),
            format!("{HEAD}<CreateContainerViewResponse xmlns=\"urn:vim25\"/>{TAIL}"),
            format!("{HEAD}{TAIL}"),
            "<html><body>Bad gateway</body></html>".to_owned(),
            format!(
                "{HEAD}<RetrievePropertiesExResponse><returnval><objects><obj type=\"a\">x</obj></objects></returnval></RetrievePropertiesExResponse>"
            ),
            format!(
                "{HEAD}<RetrievePropertiesExResponse><returnval><token>&bogus;</token></returnval></RetrievePropertiesExResponse>{TAIL}"
            ),
        ];
        for text in &not_mine {
            assert!(read(text).is_none(), "{text}");
        }
        // Simulator quirk F.6 #6: a 200 whose missing property is NotAuthenticated is that fault.
        let quirk = format!(
            r#"{HEAD}<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="VirtualMachine">vm-1</obj><missingSet><path>name</path><fault><fault xsi:type="NotAuthenticated"><object type="VirtualMachine">vm-1</object></fault></fault></missingSet></objects></returnval></RetrievePropertiesExResponse>{TAIL}"#
        );
        assert!(matches!(read(&quirk), Some(Err(CallError::Fault(f))) if f.is("NotAuthenticated")));
    }
}
