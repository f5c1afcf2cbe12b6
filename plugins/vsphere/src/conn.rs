//! One connection to an ESXi host or a vCenter: login, the scope of VMs it sees (the whole
//! inventory, or a datacenter / cluster / host named in the URI path), the VM name cache, and
//! the domain operations.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use virtplug_plugin_sdk::{DomainInfo, Error, Result, codes, flags::domain_state as st};

use crate::{
    fault::Subject,
    soap::{CallError, CallResult, Soap},
    tree::power_state,
    uri::{self, Credentials},
    vim::{self, MoRef, ObjSpec, ObjectContent, PropSpec, ServiceContent},
    watch,
    xmldom::escape,
};

/// Properties read for every domain listing or lookup.
pub(crate) const VM_PATHS: &[&str] =
    &["name", "config.uuid", "runtime.powerState", "config.hardware.memoryMB", "config.hardware.numCPU"];

/// A VM known by name.
#[derive(Debug, Clone)]
pub(crate) struct VmRef {
    pub moref: MoRef,
    pub uuid: String,
}

/// An open connection.
pub struct Connection {
    pub(crate) soap: Soap,
    pub(crate) sc: ServiceContent,
    container: MoRef,
    datacenter: Option<MoRef>,
    view: Mutex<Option<String>>,
    vms: Mutex<HashMap<String, VmRef>>,
    /// Per VM name: its moref and snapshot tree as this connection last read them (a read, or
    /// the read that took a task's outcome), where create, revert and delete start from
    /// (`snap.rs`).
    /// Shared, not copied: a read hands out the tree it keeps.
    pub(crate) trees: Mutex<HashMap<String, (MoRef, Arc<crate::tree::Tree>)>>,
    /// Shared with the connection's watcher (`watch.rs`), when one runs.
    watch: Option<Arc<watch::Shared>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// libvirt's `virVMXUnescapeHexPercent` for VM names (`%2f` → `/`, `%25` → `%`, `%5c` → `\`).
pub(crate) fn unescape_vm_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let code = rest.get(pos + 1..pos + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
        match code {
            Some(b) if b.is_ascii() => {
                out.push(char::from(b));
                rest = &rest[pos + 3..];
            }
            _ => {
                out.push('%');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Builds a domain record from a VM's properties.
pub(crate) fn domain_info(o: &ObjectContent) -> DomainInfo {
    let state = power_state(o.text("runtime.powerState").unwrap_or(""));
    let id = if state == st::SHUTOFF {
        -1
    } else {
        o.obj.value.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(-1)
    };
    let mem_kib = o.text("config.hardware.memoryMB").and_then(|m| m.trim().parse::<u64>().ok()).unwrap_or(0) * 1024;
    DomainInfo {
        name: unescape_vm_name(o.text("name").unwrap_or("")),
        uuid: o.text("config.uuid").unwrap_or("").trim().to_lowercase(),
        id,
        state,
        reason: 0,
        max_memory_kib: mem_kib,
        memory_kib: mem_kib,
        vcpus: o.text("config.hardware.numCPU").and_then(|n| n.trim().parse().ok()).unwrap_or(0),
        persistent: true,
    }
}

impl Connection {
    /// Connects and logs in: `RetrieveServiceContent` + `Login` (plus one `FindByInventoryPath`
    /// per URI path level on vCenter).
    /// A read-write connection opened by a host that offers services (ABI 1.1) also starts its
    /// watcher (`watch.rs`), which reports power state changes made elsewhere as events.
    pub fn open(uri_text: &str, read_only: bool) -> Result<Self> {
        let target = uri::parse(uri_text)?;
        let creds = uri::credentials(&target)?;
        let mut conn = Self::open_with(&target, &creds, read_only)?;
        if !read_only {
            conn.watch = watch::start(&target, &creds, &conn.container);
        }
        Ok(conn)
    }

    /// Connects with explicit credentials. `read_only` is not enforced here: the SDK's rule
    /// table refuses changes on a read-only connection before they reach this connection (the
    /// host always calls through the SDK's guard; tests through `open_checked`/`with_checks`).
    pub fn open_with(target: &uri::Target, creds: &Credentials, _read_only: bool) -> Result<Self> {
        let soap = Soap::new(target)?;
        let sc = vim::service_content(&soap).map_err(|e| e.into_error("RetrieveServiceContent", Subject::None))?;
        if sc.api_type != "HostAgent" && sc.api_type != "VirtualCenter" {
            return Err(Error::internal(format!(
                "{} is neither an ESX host nor a vCenter (apiType '{}')",
                target.authority(),
                sc.api_type
            )));
        }
        if !sc.api_version.is_empty() {
            soap.set_api_version(&sc.api_version);
        }
        soap.login(&sc.session_manager.value, creds)?;
        let mut conn = Self {
            container: sc.root_folder.clone(),
            datacenter: None,
            soap,
            sc,
            view: Mutex::new(None),
            vms: Mutex::new(HashMap::new()),
            trees: Mutex::new(HashMap::new()),
            watch: None,
        };
        if let Err(e) = conn.resolve_scope(&target.path) {
            conn.soap.logout();
            return Err(e);
        }
        Ok(conn)
    }

    fn resolve_scope(&mut self, path: &[String]) -> Result<()> {
        let Some(dc) = path.first() else { return Ok(()) };
        if self.sc.api_type != "VirtualCenter" {
            return Err(Error::invalid_arg("an inventory path in the URI needs a vCenter; this server is an ESX host"));
        }
        let find = |p: &str| {
            vim::find_by_inventory_path(&self.soap, &self.sc.search_index, p)
                .map_err(|e| e.into_error("FindByInventoryPath", Subject::None))
        };
        let dc_ref = find(dc)?
            .filter(|m| m.kind == "Datacenter")
            .ok_or_else(|| Error::invalid_arg(format!("datacenter '{dc}' not found")))?;
        self.container = dc_ref.clone();
        self.datacenter = Some(dc_ref);
        if path.len() > 1 {
            let rest: Vec<&str> = path[1..].iter().map(String::as_str).collect();
            let inv = format!("{dc}/host/{}", rest.join("/"));
            self.container = find(&inv)?.ok_or_else(|| {
                Error::invalid_arg(format!(
                    "compute resource or host '{}' not found in datacenter '{dc}'",
                    rest.join("/")
                ))
            })?;
        }
        Ok(())
    }

    /// SOAP round trips made so far on this connection (login included).
    pub fn round_trips(&self) -> u64 {
        self.soap.round_trips()
    }

    /// Ends the session on the server as if it had expired (tests of the re-login path).
    pub fn expire_session_for_tests(&self) {
        self.soap.expire_session_for_tests();
    }

    /// Sends a raw vim25 request body on this session (tests use it to make states virtplug
    /// itself refuses to create, such as duplicate snapshot names). Returns the answer's
    /// element name.
    #[doc(hidden)]
    pub fn raw_call_for_tests(&self, method: &str, body: &str) -> Result<String> {
        self.soap.call(method, body).map(|e| e.name).map_err(|e| e.into_error(method, Subject::None))
    }

    /// The moid of the VM named `dom` (tests build raw requests with it).
    #[doc(hidden)]
    pub fn vm_moid_for_tests(&self, dom: &str) -> Result<String> {
        self.cached(dom).map(|v| v.moref.value)
    }

    pub(crate) fn pc(&self) -> &MoRef {
        &self.sc.property_collector
    }

    fn view(&self) -> Result<String> {
        if let Some(v) = lock(&self.view).clone() {
            return Ok(v);
        }
        let v = vim::create_vm_view(&self.soap, &self.sc.view_manager, &self.container)
            .map_err(|e| e.into_error("CreateContainerView", Subject::None))?;
        *lock(&self.view) = Some(v.clone());
        Ok(v)
    }

    /// Every VM in scope with [`VM_PATHS`]: one `RetrievePropertiesEx` through a container
    /// view (created once per session). Refreshes the name cache.
    pub fn list_vms(&self) -> Result<Vec<ObjectContent>> {
        let mut retried = false;
        loop {
            let view = self.view()?;
            let props = [PropSpec { kind: "VirtualMachine", paths: VM_PATHS }];
            match vim::retrieve(&self.soap, self.pc(), &props, &[ObjSpec::View(&view)]) {
                Ok(objs) => {
                    let mut cache = lock(&self.vms);
                    cache.clear();
                    for o in &objs {
                        let d = domain_info(o);
                        cache.insert(d.name, VmRef { moref: o.obj.clone(), uuid: d.uuid });
                    }
                    return Ok(objs);
                }
                // The view belongs to the session: after a re-login it is gone.
                Err(CallError::Fault(f)) if f.is("ManagedObjectNotFound") && !retried => {
                    retried = true;
                    *lock(&self.view) = None;
                }
                Err(e) => return Err(e.into_error("RetrievePropertiesEx", Subject::None)),
            }
        }
    }

    fn cached(&self, dom: &str) -> Result<VmRef> {
        if let Some(v) = lock(&self.vms).get(dom).cloned() {
            return Ok(v);
        }
        self.list_vms()?;
        lock(&self.vms).get(dom).cloned().ok_or_else(|| Error::no_domain(dom))
    }

    /// Reads `paths` (plus `name`) of the VM named `dom` in one call. The name → moid cache is
    /// checked by the same call: a renamed or vanished VM refreshes the cache and retries once.
    pub(crate) fn read_vm(&self, dom: &str, paths: &[&str]) -> Result<(VmRef, ObjectContent)> {
        let mut all: Vec<&str> = vec!["name"];
        all.extend(paths.iter().filter(|p| **p != "name"));
        for attempt in 0..2 {
            let vm = self.cached(dom)?;
            let res = vim::retrieve(
                &self.soap,
                self.pc(),
                &[PropSpec { kind: "VirtualMachine", paths: &all }],
                &[ObjSpec::Obj(&vm.moref)],
            );
            let stale = match res {
                Ok(mut objs) => match objs.pop() {
                    Some(o) if o.text("name").map(unescape_vm_name).as_deref() == Some(dom) => return Ok((vm, o)),
                    _ => true,
                },
                Err(CallError::Fault(f)) if f.is("ManagedObjectNotFound") => true,
                Err(e) => return Err(e.into_error("RetrievePropertiesEx", Subject::Domain(dom))),
            };
            if stale && attempt == 0 {
                lock(&self.vms).remove(dom);
            }
        }
        Err(Error::no_domain(dom))
    }

    /// `domain_list`.
    pub fn domain_list(&self) -> Result<Vec<DomainInfo>> {
        Ok(self.list_vms()?.iter().map(domain_info).collect())
    }

    /// `domain_lookup_by_name`: one call when the name is cached.
    pub fn domain_lookup_by_name(&self, name: &str) -> Result<DomainInfo> {
        let (_, o) = self.read_vm(name, VM_PATHS)?;
        Ok(domain_info(&o))
    }

    /// `domain_lookup_by_uuid` through `SearchIndex.FindByUuid`.
    pub fn domain_lookup_by_uuid(&self, uuid: &str) -> Result<DomainInfo> {
        let not_found = || Error::new(codes::NO_DOMAIN, format!("no domain with matching uuid '{uuid}'"));
        let vm = vim::find_by_uuid(&self.soap, &self.sc.search_index, self.datacenter.as_ref(), uuid)
            .map_err(|e| e.into_error("FindByUuid", Subject::None))?
            .ok_or_else(not_found)?;
        if self.container != self.sc.root_folder && self.datacenter.as_ref() != Some(&self.container) {
            // Scoped to a cluster or host: the VM must be in the view.
            let in_scope = lock(&self.vms).values().any(|v| v.moref == vm) || {
                self.list_vms()?;
                lock(&self.vms).values().any(|v| v.moref == vm)
            };
            if !in_scope {
                return Err(not_found());
            }
        }
        let objs = vim::retrieve(
            &self.soap,
            self.pc(),
            &[PropSpec { kind: "VirtualMachine", paths: VM_PATHS }],
            &[ObjSpec::Obj(&vm)],
        )
        .map_err(|e| e.into_error("RetrievePropertiesEx", Subject::None))?;
        let info = objs.first().map(domain_info).ok_or_else(not_found)?;
        lock(&self.vms).insert(info.name.clone(), VmRef { moref: vm, uuid: info.uuid.clone() });
        Ok(info)
    }

    /// Runs `call`, which brings `vm` to the power state `method` leads to, telling the watcher
    /// first so that it does not report this connection's own change.
    fn own_change<T>(&self, vm: &MoRef, method: &str, call: impl FnOnce() -> CallResult<T>) -> CallResult<T> {
        let expect = self.watch.as_ref().zip(watch::target_state(method));
        if let Some((w, state)) = expect {
            w.expect(vm, state);
        }
        let result = call();
        if let (Some((w, state)), Err(_)) = (expect, &result) {
            w.forget(vm, state);
        }
        result
    }

    fn power_task(&self, vm: &MoRef, method: &str) -> CallResult<()> {
        let body = format!(r#"<{method} xmlns="urn:vim25">{}</{method}>"#, vm.xml("_this"));
        self.own_change(vm, method, || vim::run_task(&self.soap, self.pc(), method, &body, None).map(drop))
    }

    /// Runs a power task on the VM named `dom`.
    fn power(&self, dom: &str, method: &str) -> Result<()> {
        let vm = self.cached(dom)?;
        match self.power_task(&vm.moref, method) {
            Ok(()) => Ok(()),
            Err(CallError::Fault(f)) if f.is("ManagedObjectNotFound") => {
                lock(&self.vms).remove(dom);
                let vm = self.cached(dom)?;
                self.power_task(&vm.moref, method).map_err(|e| e.into_error(method, Subject::Domain(dom)))
            }
            Err(e) => Err(e.into_error(method, Subject::Domain(dom))),
        }
    }

    /// Power operation on a VM already resolved (revert's RUNNING / PAUSED).
    pub(crate) fn power_moref(&self, dom: &str, vm: &MoRef, method: &str) -> Result<()> {
        self.power_task(vm, method).map_err(|e| e.into_error(method, Subject::Domain(dom)))
    }

    /// `domain_start`: `PowerOnVM_Task`.
    pub fn domain_start(&self, dom: &str) -> Result<()> {
        self.power(dom, "PowerOnVM_Task")
    }
    /// `domain_destroy`: `PowerOffVM_Task`.
    pub fn domain_destroy(&self, dom: &str) -> Result<()> {
        self.power(dom, "PowerOffVM_Task")
    }
    /// `domain_suspend`: `SuspendVM_Task`.
    pub fn domain_suspend(&self, dom: &str) -> Result<()> {
        self.power(dom, "SuspendVM_Task")
    }
    /// `domain_resume`: `PowerOnVM_Task` from the suspended state.
    pub fn domain_resume(&self, dom: &str) -> Result<()> {
        let (vm, o) = self.read_vm(dom, &["runtime.powerState"])?;
        if o.text("runtime.powerState") != Some("suspended") {
            return Err(Error::operation_invalid("domain is not suspended"));
        }
        self.power_moref(dom, &vm.moref, "PowerOnVM_Task")
    }
    /// `domain_shutdown`: `ShutdownGuest` (needs VMware Tools in the guest; not a task).
    pub fn domain_shutdown(&self, dom: &str) -> Result<()> {
        let vm = self.cached(dom)?;
        let body = format!(r#"<ShutdownGuest xmlns="urn:vim25">{}</ShutdownGuest>"#, vm.moref.xml("_this"));
        self.own_change(&vm.moref, "ShutdownGuest", || self.soap.call("ShutdownGuest", &body).map(drop))
            .map_err(|e| e.into_error("ShutdownGuest", Subject::Domain(dom)))
    }

    /// `domain_xml`: name, uuid, memory, vcpus.
    pub fn domain_xml(&self, dom: &str) -> Result<String> {
        let d = self.domain_lookup_by_name(dom)?;
        Ok(format!(
            "<domain type='vmware'>\n  <name>{}</name>\n  <uuid>{}</uuid>\n  <memory unit='KiB'>{}</memory>\n  <currentMemory unit='KiB'>{}</currentMemory>\n  <vcpu placement='static'>{}</vcpu>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>\n</domain>\n",
            escape(&d.name),
            escape(&d.uuid),
            d.max_memory_kib,
            d.memory_kib,
            d.vcpus
        ))
    }
}

impl Drop for Connection {
    /// Logs out (best effort) and ends the watcher.
    fn drop(&mut self) {
        if let Some(w) = &self.watch {
            w.stop();
        }
        self.soap.logout();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;

    #[test]
    fn vm_names_unescape() {
        assert_eq!(unescape_vm_name("a%2fb%25c%5cd"), "a/b%c\\d");
        assert_eq!(unescape_vm_name("100%"), "100%");
        assert_eq!(unescape_vm_name("plain"), "plain");
    }
}
