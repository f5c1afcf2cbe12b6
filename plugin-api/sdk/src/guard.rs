//! The exported side: the root module's thunks and the guarded driver wrapper. Every call runs
//! inside `catch_unwind` (`panics::guarded`, which keeps the panic text off stderr); a panic
//! poisons the connection.

use std::sync::atomic::{AtomicBool, Ordering};

use virtplug_model::{self as model, codes};
use virtplug_plugin_api::{
    self as abi, AbiError, DriverBox, HostServicesBox, PluginMod, PluginMod_Ref,
    abi_stable::{
        prefix_type::PrefixTypeTrait,
        sabi_trait::TD_Opaque,
        std_types::{ROption, RResult, RStr, RString, RVec},
    },
};

use crate::{
    Plugin,
    checked::Checked,
    convert,
    driver::{Driver, PluginDescriptor},
    host::{self, Host, Level},
    panics::{self, Caught},
    rules::{self, OpRules},
};

/// Builds the root module for `P`; called once per loaded library by abi_stable.
pub fn root_module<P: Plugin>() -> PluginMod_Ref {
    PluginMod { info: info::<P>, open: open::<P>, open_with_host: open_with_host::<P> }.leak_into_prefix()
}

extern "C" fn info<P: Plugin>() -> abi::PluginInfo {
    let d = P::DESCRIPTOR;
    abi::PluginInfo {
        name: d.name.into(),
        version: d.version.into(),
        abi_major: abi::ABI_MAJOR,
        abi_minor: abi::ABI_MINOR,
        schemes: d.schemes.iter().map(|s| RString::from(*s)).collect(),
        ops: d.ops,
        caps: d.caps,
    }
}

/// `open` from a 1.0 host: the connection has no host services ([`Host::none`]).
extern "C" fn open<P: Plugin>(uri: RStr<'_>, read_only: bool) -> RResult<DriverBox, AbiError> {
    open_guarded::<P>(uri, read_only, Host::none())
}

/// `open_with_host` (ABI 1.1): the connection keeps the host's services.
extern "C" fn open_with_host<P: Plugin>(
    uri: RStr<'_>,
    read_only: bool,
    services: HostServicesBox,
) -> RResult<DriverBox, AbiError> {
    open_guarded::<P>(uri, read_only, Host::from_abi(services))
}

fn open_guarded<P: Plugin>(uri: RStr<'_>, read_only: bool, host: Host) -> RResult<DriverBox, AbiError> {
    let descriptor = P::DESCRIPTOR;
    match panics::guarded(|| host::enter(&host, || P::open(uri.as_str(), read_only))) {
        Ok(Ok(inner)) => {
            let inner = Checked::new(descriptor, read_only, inner);
            let guarded = Guarded { descriptor, inner, poisoned: AtomicBool::new(false), host };
            RResult::ROk(DriverBox::from_value(guarded, TD_Opaque))
        }
        Ok(Err(e)) => RResult::RErr(convert::error(e)),
        Err(caught) => RResult::RErr(panicked(descriptor.name, "open", &caught, &host)),
    }
}

/// The error for a caught panic (its message only: location and backtrace go to the log, and
/// to the host's log when it offered one).
fn panicked(plugin: &str, operation: &str, caught: &Caught, host: &Host) -> AbiError {
    panics::log(plugin, operation, caught);
    let what = panics::payload_text(caught.payload.as_ref());
    let record = caught.record.as_deref().unwrap_or(&what);
    host.log(Level::Error, "virtplug_plugin_sdk::panic", &format!("panicked in {operation} {record}"));
    AbiError::new(codes::INTERNAL_ERROR, format!("plugin '{plugin}' panicked in {operation}: {what}"))
}

/// A plugin's connection as exported: calls the checked native driver (`Checked`: the host's
/// generic checks, then the plugin's code) inside `catch_unwind`.
struct Guarded {
    descriptor: PluginDescriptor,
    inner: Checked,
    poisoned: AtomicBool,
    /// The host's services for this connection (none from a 1.0 host); current during calls.
    host: Host,
}

/// The operation the panic probe runs under: declared by every plugin that declares anything,
/// no flags, allowed on a read-only connection.
const SELFTEST_PANIC: OpRules = OpRules {
    operation: "selftest_panic",
    function: "selftest_panic",
    op_bit: u64::MAX,
    refused_read_only: false,
    secure_flag: 0,
    defined: 0,
    names: &[],
    rules: &[],
    mask: |_| 0,
};

impl Guarded {
    /// Runs `call` on the checked driver, whose methods run the host's generic checks
    /// (`rules::check`: read-only, SECURE, unknown bits, relationship rules, the declared mask,
    /// the declared operation) before the plugin's code; `op` names the operation in a panic's
    /// error. Converts the result and any panic.
    fn call<T, R>(
        &self,
        op: &OpRules,
        call: impl FnOnce(&Checked) -> model::Result<T>,
        convert: impl FnOnce(T) -> R,
    ) -> RResult<R, AbiError> {
        let name = self.descriptor.name;
        if self.poisoned.load(Ordering::Acquire) {
            return RResult::RErr(AbiError::new(
                codes::INTERNAL_ERROR,
                format!("plugin '{name}' is poisoned by an earlier panic and refuses further calls"),
            ));
        }
        match panics::guarded(|| host::enter(&self.host, || call(&self.inner))) {
            Ok(Ok(value)) => RResult::ROk(convert(value)),
            Ok(Err(e)) => RResult::RErr(convert::error(e)),
            Err(caught) => {
                self.poisoned.store(true, Ordering::Release);
                RResult::RErr(panicked(name, op.operation, &caught, &self.host))
            }
        }
    }
}

fn same<T>(v: T) -> T {
    v
}

impl abi::Driver for Guarded {
    fn domain_list(&self) -> RResult<RVec<abi::DomainInfo>, AbiError> {
        self.call(&rules::DOMAIN_LIST, |d| d.domain_list(), |v| v.into_iter().map(convert::domain).collect())
    }
    fn domain_lookup_by_name(&self, name: RStr<'_>) -> RResult<abi::DomainInfo, AbiError> {
        self.call(&rules::DOMAIN_LOOKUP, |d| d.domain_lookup_by_name(name.as_str()), convert::domain)
    }
    fn domain_lookup_by_uuid(&self, uuid: RStr<'_>) -> RResult<abi::DomainInfo, AbiError> {
        self.call(&rules::DOMAIN_LOOKUP, |d| d.domain_lookup_by_uuid(uuid.as_str()), convert::domain)
    }
    fn domain_define(&self, xml: RStr<'_>) -> RResult<abi::DomainInfo, AbiError> {
        self.call(&rules::DOMAIN_DEFINE, |d| d.domain_define(xml.as_str()), convert::domain)
    }
    fn domain_undefine(&self, dom: RStr<'_>, flags: u32) -> RResult<(), AbiError> {
        self.call(&rules::DOMAIN_UNDEFINE, |d| d.domain_undefine(dom.as_str(), flags), same)
    }
    fn domain_start(&self, dom: RStr<'_>) -> RResult<(), AbiError> {
        self.call(&rules::DOMAIN_START, |d| d.domain_start(dom.as_str()), same)
    }
    fn domain_shutdown(&self, dom: RStr<'_>) -> RResult<(), AbiError> {
        self.call(&rules::DOMAIN_SHUTDOWN, |d| d.domain_shutdown(dom.as_str()), same)
    }
    fn domain_destroy(&self, dom: RStr<'_>) -> RResult<(), AbiError> {
        self.call(&rules::DOMAIN_DESTROY, |d| d.domain_destroy(dom.as_str()), same)
    }
    fn domain_suspend(&self, dom: RStr<'_>) -> RResult<(), AbiError> {
        self.call(&rules::DOMAIN_SUSPEND, |d| d.domain_suspend(dom.as_str()), same)
    }
    fn domain_resume(&self, dom: RStr<'_>) -> RResult<(), AbiError> {
        self.call(&rules::DOMAIN_RESUME, |d| d.domain_resume(dom.as_str()), same)
    }
    fn domain_xml(&self, dom: RStr<'_>, flags: u32) -> RResult<RString, AbiError> {
        self.call(&rules::DOMAIN_XML, |d| d.domain_xml(dom.as_str(), flags), RString::from)
    }
    fn snapshot_create(&self, dom: RStr<'_>, xml: RStr<'_>, flags: u32) -> RResult<RString, AbiError> {
        self.call(&rules::SNAPSHOT_CREATE, |d| d.snapshot_create(dom.as_str(), xml.as_str(), flags), RString::from)
    }
    fn snapshot_xml(&self, dom: RStr<'_>, snap: RStr<'_>, flags: u32) -> RResult<RString, AbiError> {
        self.call(&rules::SNAPSHOT_XML, |d| d.snapshot_xml(dom.as_str(), snap.as_str(), flags), RString::from)
    }
    fn snapshot_list(&self, dom: RStr<'_>, flags: u32) -> RResult<RVec<abi::SnapshotInfo>, AbiError> {
        self.call(
            &rules::SNAPSHOT_LIST,
            |d| d.snapshot_list(dom.as_str(), flags),
            |v| v.into_iter().map(convert::snapshot).collect(),
        )
    }
    fn snapshot_lookup(&self, dom: RStr<'_>, snap: RStr<'_>) -> RResult<abi::SnapshotInfo, AbiError> {
        self.call(&rules::SNAPSHOT_LOOKUP, |d| d.snapshot_lookup(dom.as_str(), snap.as_str()), convert::snapshot)
    }
    fn snapshot_current(&self, dom: RStr<'_>) -> RResult<ROption<abi::SnapshotInfo>, AbiError> {
        self.call(&rules::SNAPSHOT_CURRENT, |d| d.snapshot_current(dom.as_str()), convert::option_snapshot)
    }
    fn snapshot_revert(&self, dom: RStr<'_>, snap: RStr<'_>, flags: u32) -> RResult<(), AbiError> {
        self.call(&rules::SNAPSHOT_REVERT, |d| d.snapshot_revert(dom.as_str(), snap.as_str(), flags), same)
    }
    fn snapshot_delete(&self, dom: RStr<'_>, snap: RStr<'_>, flags: u32) -> RResult<(), AbiError> {
        self.call(&rules::SNAPSHOT_DELETE, |d| d.snapshot_delete(dom.as_str(), snap.as_str(), flags), same)
    }
    fn snapshot_import(
        &self,
        dom: RStr<'_>,
        xmls: RVec<RString>,
        current: ROption<RString>,
        flags: u32,
    ) -> RResult<(), AbiError> {
        let xmls: Vec<String> = xmls.into_iter().map(String::from).collect();
        let current: Option<String> = current.into_option().map(String::from);
        self.call(&rules::SNAPSHOT_IMPORT, |d| d.snapshot_import(dom.as_str(), &xmls, current.as_deref(), flags), same)
    }
    fn snapshot_edit(&self, dom: RStr<'_>, snap: RStr<'_>, xml: RStr<'_>, flags: u32) -> RResult<RString, AbiError> {
        self.call(
            &rules::SNAPSHOT_EDIT,
            |d| d.snapshot_edit(dom.as_str(), snap.as_str(), xml.as_str(), flags),
            RString::from,
        )
    }
    fn selftest_panic(&self) -> RResult<(), AbiError> {
        // Declared by every SDK plugin: proves the wrapper turns a panic into an error.
        self.call(
            &SELFTEST_PANIC,
            |d| -> model::Result<()> {
                d.check(&SELFTEST_PANIC, 0)?;
                panic!("selftest_panic probe")
            },
            same,
        )
    }
    fn domain_job_begin(&self, dom: RStr<'_>, job: RStr<'_>, flags: u32) -> RResult<RString, AbiError> {
        self.call(&rules::DOMAIN_JOB, |d| d.job_begin(dom.as_str(), job.as_str(), flags), RString::from)
    }
    fn domain_job_end(&self, dom: RStr<'_>, job: RStr<'_>, flags: u32) -> RResult<(), AbiError> {
        self.call(&rules::DOMAIN_JOB, |d| d.job_end(dom.as_str(), job.as_str(), flags), same)
    }
    fn snapshot_generation(&self, dom: RStr<'_>, flags: u32) -> RResult<u64, AbiError> {
        self.call(&rules::SNAPSHOT_GENERATION, |d| d.generation(dom.as_str(), flags), same)
    }
    fn snapshot_store(&self, dom: RStr<'_>, flags: u32) -> RResult<RString, AbiError> {
        self.call(&rules::SNAPSHOT_STORE, |d| d.store(dom.as_str(), flags), RString::from)
    }
    fn snapshot_handover(&self, dom: RStr<'_>, to: RStr<'_>, flags: u32) -> RResult<(), AbiError> {
        self.call(&rules::SNAPSHOT_HANDOVER, |d| d.handover(dom.as_str(), to.as_str(), flags), same)
    }
}

#[cfg(test)]
mod tests;
