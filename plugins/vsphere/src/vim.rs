//! The vim25 calls the plugin makes, as typed helpers over [`Soap`]: service content, the
//! property collector (with paging and several objects per call), search index, container
//! views, and task waiting through the property collector.

use crate::{
    fault::Fault,
    props,
    soap::{CallError, CallResult, Soap},
    tree::Tree,
    xmldom::{Element, escape},
};
use virtplug_plugin_sdk::Error;

/// A managed object reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MoRef {
    /// Managed object type (`VirtualMachine`).
    pub kind: String,
    /// Its moid (`vm-57`).
    pub value: String,
}

impl MoRef {
    /// A reference.
    pub fn new(kind: &str, value: &str) -> Self {
        Self { kind: kind.to_owned(), value: value.to_owned() }
    }
    /// Reads `<tag type="T">moid</tag>`.
    pub fn from_element(el: &Element) -> Option<Self> {
        let kind = el.attr("type")?;
        let value = el.text.trim();
        (!value.is_empty()).then(|| Self::new(kind, value))
    }
    /// Writes `<tag type="T">moid</tag>`.
    pub fn xml(&self, tag: &str) -> String {
        let mut out = String::with_capacity(tag.len() * 2 + self.kind.len() + self.value.len() + 16);
        self.write_xml(&mut out, tag);
        out
    }

    /// Appends `<tag type="T">moid</tag>` to `out` (a request body is written in one buffer).
    pub fn write_xml(&self, out: &mut String, tag: &str) {
        out.push('<');
        out.push_str(tag);
        out.push_str(" type=\"");
        push_escaped(out, &self.kind);
        out.push_str("\">");
        push_escaped(out, &self.value);
        out.push_str("</");
        out.push_str(tag);
        out.push('>');
    }
}

/// Appends `s` escaped as [`escape`] escapes it, without a string of its own when nothing
/// needs escaping (morefs never do).
fn push_escaped(out: &mut String, s: &str) {
    if s.contains(['<', '>', '&', '\'', '"']) {
        out.push_str(&escape(s));
    } else {
        out.push_str(s);
    }
}

/// The parts of `ServiceContent` the plugin uses.
#[derive(Debug, Clone)]
pub struct ServiceContent {
    /// Root folder.
    pub root_folder: MoRef,
    /// Property collector.
    pub property_collector: MoRef,
    /// Session manager.
    pub session_manager: MoRef,
    /// Search index.
    pub search_index: MoRef,
    /// View manager.
    pub view_manager: MoRef,
    /// `about.apiType` (`HostAgent` or `VirtualCenter`).
    pub api_type: String,
    /// `about.apiVersion`.
    pub api_version: String,
}

fn missing(what: &str) -> CallError {
    CallError::Error(Error::internal(format!("malformed answer from the server: missing {what}")))
}

/// `ServiceInstance.RetrieveServiceContent` (needs no session).
pub fn service_content(soap: &Soap) -> CallResult<ServiceContent> {
    let rv = soap.call(
        "RetrieveServiceContent",
        r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#,
    )?;
    let rv = rv.child("returnval").ok_or_else(|| missing("returnval"))?;
    let get = |name: &str| rv.child(name).and_then(MoRef::from_element).ok_or_else(|| missing(name));
    let about = rv.child("about").ok_or_else(|| missing("about"))?;
    Ok(ServiceContent {
        root_folder: get("rootFolder")?,
        property_collector: get("propertyCollector")?,
        session_manager: get("sessionManager")?,
        search_index: get("searchIndex")?,
        view_manager: get("viewManager")?,
        api_type: about.child_text("apiType").unwrap_or("").to_owned(),
        api_version: about.child_text("apiVersion").unwrap_or("").to_owned(),
    })
}

/// One object's properties from the property collector.
#[derive(Debug, Clone)]
pub struct ObjectContent {
    /// The object.
    pub obj: MoRef,
    /// `(path, val)` pairs; unset properties are absent.
    pub props: Vec<(String, Element)>,
    /// Paths that could not be read, with their fault.
    pub missing: Vec<(String, Fault)>,
    /// The first `snapshot` property (a VM's snapshot tree), read into its tree; it is not in
    /// `props`.
    pub snapshot: Option<Tree>,
}

impl ObjectContent {
    /// The value element of `path`.
    pub fn prop(&self, path: &str) -> Option<&Element> {
        self.props.iter().find(|(n, _)| n == path).map(|(_, v)| v)
    }
    /// The text of `path`.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.prop(path).map(|v| v.text.as_str())
    }
}

/// What to read: a managed object type and property paths.
#[derive(Debug, Clone, Copy)]
pub struct PropSpec<'a> {
    /// Managed object type.
    pub kind: &'a str,
    /// Property paths.
    pub paths: &'a [&'a str],
}

/// Where to read: one object, or every object of a container view.
#[derive(Debug, Clone, Copy)]
pub enum ObjSpec<'a> {
    /// One object.
    Obj(&'a MoRef),
    /// The objects of a `ContainerView`.
    View(&'a str),
}

/// Writes one `<objectSet>` of a property filter spec (a view's objects through its `view`).
pub(crate) fn object_set(b: &mut String, o: &ObjSpec<'_>) {
    match o {
        ObjSpec::Obj(m) => {
            b.push_str("<objectSet>");
            m.write_xml(b, "obj");
            b.push_str("</objectSet>");
        }
        ObjSpec::View(v) => {
            b.push_str("<objectSet>");
            MoRef::new("ContainerView", v).write_xml(b, "obj");
            b.push_str(r#"<skip>true</skip><selectSet xsi:type="TraversalSpec"><name>traverseEntities</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet>"#);
        }
    }
}

fn retrieve_body(pc: &MoRef, props: &[PropSpec<'_>], objs: &[ObjSpec<'_>]) -> String {
    let mut b = String::with_capacity(512);
    b.push_str(r#"<RetrievePropertiesEx xmlns="urn:vim25">"#);
    pc.write_xml(&mut b, "_this");
    b.push_str("<specSet>");
    for p in props {
        b.push_str("<propSet><type>");
        b.push_str(p.kind);
        b.push_str("</type><all>false</all>");
        for path in p.paths {
            b.push_str("<pathSet>");
            b.push_str(path);
            b.push_str("</pathSet>");
        }
        b.push_str("</propSet>");
    }
    for o in objs {
        object_set(&mut b, o);
    }
    b.push_str("</specSet><options><maxObjects>1000</maxObjects></options></RetrievePropertiesEx>");
    b
}

/// A `missingSet`'s path and fault.
pub(crate) fn missing_of(m: &Element) -> (String, Fault) {
    let path = m.child_text("path").unwrap_or("").to_owned();
    let fault = match m.child("fault").and_then(|f| f.child("fault")) {
        Some(f) => Fault::from_detail(f, String::new()),
        None => Fault { kind: "Unknown".to_owned(), message: String::new() },
    };
    (path, fault)
}

/// The objects of a `returnval` element (the element tree path; `props.rs` reads the same from
/// the parser's steps).
pub(crate) fn parse_objects(rv: Element, out: &mut Vec<ObjectContent>) {
    for o in rv.children.into_iter().filter(|c| c.name == "objects") {
        let Some(obj) = o.child("obj").and_then(MoRef::from_element) else { continue };
        let missing = o.children_named("missingSet").map(missing_of).collect();
        // The values are moved out of the answer, not copied.
        let mut props: Vec<(String, Element)> = o
            .children
            .into_iter()
            .filter(|p| p.name == "propSet")
            .filter_map(|mut p| Some((p.child_text("name")?.to_owned(), p.take_child("val")?)))
            .collect();
        let snapshot = props.iter().position(|(n, _)| n == "snapshot").map(|i| Tree::parse(Some(&props.remove(i).1)));
        out.push(ObjectContent { obj, props, missing, snapshot });
    }
}

/// `PropertyCollector.RetrievePropertiesEx`, following paging tokens.
pub fn retrieve(
    soap: &Soap,
    pc: &MoRef,
    props: &[PropSpec<'_>],
    objs: &[ObjSpec<'_>],
) -> CallResult<Vec<ObjectContent>> {
    // Answers are read straight from the parser's steps (`props.rs`); what that does not read
    // (faults, errors) is read as an element tree, as every other answer.
    let call = |method: &str, body: &str| {
        soap.call_with(method, body, |status, text| match (status == 200).then(|| props::read(text)).flatten() {
            Some(page) => page,
            None => soap.parse_response(method, status, text).map(props::page_of),
        })
    };
    let mut page = call("RetrievePropertiesEx", &retrieve_body(pc, props, objs))?;
    let mut out = std::mem::take(&mut page.objects);
    while let Some(token) = page.token.take() {
        let body = format!(
            r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25">{}<token>{}</token></ContinueRetrievePropertiesEx>"#,
            pc.xml("_this"),
            escape(&token)
        );
        page = call("ContinueRetrievePropertiesEx", &body)?;
        out.append(&mut page.objects);
    }
    Ok(out)
}

/// A method whose answer is `<returnval type="T">moid</returnval>` or nothing.
pub fn call_moref(soap: &Soap, method: &str, body: &str) -> CallResult<Option<MoRef>> {
    Ok(soap.call(method, body)?.child("returnval").and_then(MoRef::from_element))
}

/// `SearchIndex.FindByUuid` for a VM's BIOS uuid; `None` when not found (not a fault).
pub fn find_by_uuid(soap: &Soap, si: &MoRef, datacenter: Option<&MoRef>, uuid: &str) -> CallResult<Option<MoRef>> {
    let dc = datacenter.map(|d| d.xml("datacenter")).unwrap_or_default();
    let body = format!(
        r#"<FindByUuid xmlns="urn:vim25">{}{dc}<uuid>{}</uuid><vmSearch>true</vmSearch></FindByUuid>"#,
        si.xml("_this"),
        escape(uuid)
    );
    call_moref(soap, "FindByUuid", &body)
}

/// `SearchIndex.FindByInventoryPath`; `None` when not found.
pub fn find_by_inventory_path(soap: &Soap, si: &MoRef, path: &str) -> CallResult<Option<MoRef>> {
    let body = format!(
        r#"<FindByInventoryPath xmlns="urn:vim25">{}<inventoryPath>{}</inventoryPath></FindByInventoryPath>"#,
        si.xml("_this"),
        escape(path)
    );
    call_moref(soap, "FindByInventoryPath", &body)
}

/// `ViewManager.CreateContainerView` of every VirtualMachine under `container`, recursively.
pub fn create_vm_view(soap: &Soap, view_manager: &MoRef, container: &MoRef) -> CallResult<String> {
    let body = format!(
        r#"<CreateContainerView xmlns="urn:vim25">{}{}<type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"#,
        view_manager.xml("_this"),
        container.xml("container")
    );
    call_moref(soap, "CreateContainerView", &body)?.map(|m| m.value).ok_or_else(|| missing("returnval"))
}

/// A finished task: the extra object read in the same call as its outcome, if asked.
#[derive(Debug, Clone)]
pub struct TaskDone {
    /// The extra object's properties, read after the task finished.
    pub extra: Option<ObjectContent>,
}

const TASK_PATHS: &[&str] = &["info.state", "info.error"];

/// Waits for `tasks` through the property collector. The first read asks for every task's
/// state (and `extra`'s properties) in one call; tasks still queued or running are then
/// watched with a private property collector (`CreateFilter` + `WaitForUpdatesEx`), never by
/// sleeping. The first failed task's fault is returned as [`CallError::Fault`].
pub fn wait_tasks(
    soap: &Soap,
    pc: &MoRef,
    tasks: &[MoRef],
    extra: Option<(&MoRef, &[&str])>,
) -> CallResult<Vec<TaskDone>> {
    let mut props = vec![PropSpec { kind: "Task", paths: TASK_PATHS }];
    let mut objs: Vec<ObjSpec<'_>> = tasks.iter().map(ObjSpec::Obj).collect();
    if let Some((obj, paths)) = extra {
        props.push(PropSpec { kind: &obj.kind, paths });
        objs.push(ObjSpec::Obj(obj));
    }
    let mut read = retrieve(soap, pc, &props, &objs)?;
    let mut pending = Vec::new();
    for t in tasks {
        let state = read.iter().find(|o| &o.obj == t).and_then(|o| o.text("info.state")).unwrap_or("");
        if state != "success" && state != "error" {
            pending.push(t.clone());
        }
    }
    if !pending.is_empty() {
        watch_until_done(soap, pc, &pending)?;
        read = retrieve(soap, pc, &props, &objs)?;
    }
    let extra_obj = extra.and_then(|(obj, _)| read.iter().find(|o| &o.obj == obj).cloned());
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        let o = read.iter().find(|o| &o.obj == t).ok_or_else(|| missing("task info"))?;
        if o.text("info.state") == Some("error") {
            let fault = o
                .prop("info.error")
                .map(Fault::from_task_error)
                .unwrap_or(Fault { kind: "TaskError".to_owned(), message: String::new() });
            return Err(CallError::Fault(fault));
        }
        out.push(TaskDone { extra: extra_obj.clone() });
    }
    Ok(out)
}

/// Blocks until every task in `tasks` reaches `success` or `error`.
fn watch_until_done(soap: &Soap, pc: &MoRef, tasks: &[MoRef]) -> CallResult<()> {
    let body = format!(r#"<CreatePropertyCollector xmlns="urn:vim25">{}</CreatePropertyCollector>"#, pc.xml("_this"));
    let own = call_moref(soap, "CreatePropertyCollector", &body)?.ok_or_else(|| missing("property collector"))?;
    let result = watch_with(soap, &own, tasks);
    let body =
        format!(r#"<DestroyPropertyCollector xmlns="urn:vim25">{}</DestroyPropertyCollector>"#, own.xml("_this"));
    let _ = soap.call("DestroyPropertyCollector", &body);
    result
}

fn watch_with(soap: &Soap, own: &MoRef, tasks: &[MoRef]) -> CallResult<()> {
    let objs: String = tasks.iter().map(|t| format!("<objectSet>{}</objectSet>", t.xml("obj"))).collect();
    let body = format!(
        r#"<CreateFilter xmlns="urn:vim25">{}<spec><propSet><type>Task</type><pathSet>info.state</pathSet><pathSet>info.progress</pathSet></propSet>{objs}</spec><partialUpdates>false</partialUpdates></CreateFilter>"#,
        own.xml("_this")
    );
    soap.call("CreateFilter", &body)?;
    let mut open: Vec<&MoRef> = tasks.iter().collect();
    let mut version = String::new();
    while !open.is_empty() {
        let body = format!(
            r#"<WaitForUpdatesEx xmlns="urn:vim25">{}<version>{}</version><options><maxWaitSeconds>60</maxWaitSeconds></options></WaitForUpdatesEx>"#,
            own.xml("_this"),
            escape(&version)
        );
        let resp = soap.call("WaitForUpdatesEx", &body)?;
        let Some(rv) = resp.child("returnval") else { continue };
        if let Some(v) = rv.child_text("version") {
            version = v.to_owned();
        }
        for fs in rv.children_named("filterSet") {
            for os in fs.children_named("objectSet") {
                let Some(obj) = os.child("obj").and_then(MoRef::from_element) else { continue };
                // One task's percentage goes to the caller's progress reporter (ABI 1.1; a no-op
                // without host services). Several tasks have no single percentage.
                if let (Some(p), [_]) = (progress_of(os), tasks) {
                    virtplug_plugin_sdk::host::progress(p, 100);
                }
                let done = os.children_named("changeSet").any(|c| {
                    c.child_text("name") == Some("info.state")
                        && matches!(c.child("val").map(|v| v.text.as_str()), Some("success" | "error"))
                });
                if done {
                    open.retain(|t| **t != obj);
                }
            }
        }
    }
    Ok(())
}

/// A task's `info.progress` (percent) in one object update, if it changed.
fn progress_of(os: &Element) -> Option<u64> {
    os.children_named("changeSet")
        .filter(|c| c.child_text("name") == Some("info.progress"))
        .find_map(|c| c.child("val")?.text.trim().parse::<u64>().ok())
        .map(|p| p.min(100))
}

/// Starts a `*_Task` method and waits for it; `extra` as in [`wait_tasks`].
pub fn run_task(
    soap: &Soap,
    pc: &MoRef,
    method: &str,
    body: &str,
    extra: Option<(&MoRef, &[&str])>,
) -> CallResult<TaskDone> {
    let task = call_moref(soap, method, body)?.ok_or_else(|| missing("task reference"))?;
    let mut done = wait_tasks(soap, pc, std::slice::from_ref(&task), extra)?;
    done.pop().ok_or_else(|| missing("task result"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn a_moref_is_written_as_before() {
        for (kind, value) in [("VirtualMachine", "vm-57"), ("A\"<b>", "x&'y")] {
            let m = MoRef::new(kind, value);
            let old = format!(r#"<_this type="{}">{}</_this>"#, escape(kind), escape(value));
            assert_eq!(m.xml("_this"), old);
        }
    }

    #[test]
    fn task_progress_is_read_from_an_update() {
        let os = |body: &str| {
            crate::xmldom::parse(&format!(
                "<objectSet><kind>modify</kind><obj type=\"Task\">task-1</obj>{body}</objectSet>"
            ))
            .unwrap()
        };
        let progress = "<changeSet><name>info.progress</name><op>assign</op><val>42</val></changeSet>";
        let state = "<changeSet><name>info.state</name><op>assign</op><val>running</val></changeSet>";
        assert_eq!(progress_of(&os(&format!("{state}{progress}"))), Some(42));
        assert_eq!(progress_of(&os(state)), None);
        // Unset (the task has not reported any) or out of range.
        assert_eq!(progress_of(&os("<changeSet><name>info.progress</name><op>assign</op></changeSet>")), None);
        assert_eq!(
            progress_of(&os("<changeSet><name>info.progress</name><op>assign</op><val>250</val></changeSet>")),
            Some(100)
        );
    }
}
