//! A connection to one plugin instance, and the dispatch step shared by every entry point.

use std::sync::Arc;

use virtplug_model::{self as model, DomainInfo, SnapshotInfo};
use virtplug_plugin_api::{
    self as abi, AbiError, DriverBox,
    abi_stable::std_types::{RResult, RStr},
    codes,
};

use crate::{
    error::{HostError, Result},
    loader::LoadedPlugin,
    registry::Registry,
    rules::OpRules,
};

/// An open connection: a URI served by one plugin, read-write or read-only.
pub struct Connection {
    uri: String,
    read_only: bool,
    plugin: Arc<LoadedPlugin>,
    driver: DriverBox,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("uri", &self.uri)
            .field("read_only", &self.read_only)
            .field("plugin", &self.plugin.info.name)
            .finish()
    }
}

/// The driver part of a URI's scheme: `qemu+unix` → `qemu`.
fn scheme_of(uri: &str) -> Option<(&str, Option<&str>)> {
    let (scheme, rest) = uri.split_once(':')?;
    if scheme.is_empty() || !rest.starts_with("//") {
        return None;
    }
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match scheme.split_once('+') {
        Some((driver, transport)) if valid(driver) && valid(transport) => Some((driver, Some(transport))),
        None if valid(scheme) => Some((scheme, None)),
        _ => None,
    }
}

impl Connection {
    /// Opens `uri` with the plugin that claims its scheme.
    pub fn open(registry: &Registry, uri: &str, read_only: bool) -> Result<Self> {
        let no_connect = || HostError::NoConnect { uri: uri.to_owned() };
        let (scheme, transport) = scheme_of(uri).ok_or_else(no_connect)?;
        if transport.is_some() {
            // Remote transports (`mock+unix://`) reach a daemon; this build has none.
            return Err(no_connect());
        }
        let plugin = Arc::clone(registry.for_scheme(scheme).ok_or_else(no_connect)?);
        let driver = match (plugin.module.open())(RStr::from_str(uri), read_only) {
            RResult::ROk(d) => d,
            RResult::RErr(e) => return Err(HostError::Driver(native_error(e))),
        };
        Ok(Self { uri: uri.to_owned(), read_only, plugin, driver })
    }

    /// The URI this connection was opened with.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether the connection is read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The serving plugin's self-description.
    pub fn plugin_info(&self) -> &abi::PluginInfo {
        &self.plugin.info
    }

    /// The plugin's driver object without any host check. Only for the conformance suite,
    /// which must show what a plugin does when called directly.
    #[doc(hidden)]
    pub fn raw_driver(&self) -> &DriverBox {
        &self.driver
    }

    /// Runs the generic checks of `rules` for `flags`, then `call` on the driver.
    pub(crate) fn dispatch<T>(
        &self,
        rules: &OpRules,
        flags: u32,
        call: impl FnOnce(&DriverBox) -> RResult<T, AbiError>,
    ) -> Result<T> {
        self.check(rules, flags)?;
        self.call(call)
    }

    /// Steps 1–6 of `rules` (read-only, flag rules, the plugin's mask and operations).
    pub(crate) fn check(&self, rules: &OpRules, flags: u32) -> Result<()> {
        tracing::debug!(op = rules.operation, flags, uri = %self.uri, "check");
        rules.check(self.read_only, self.plugin.info.ops, &self.plugin.info.caps, flags)
    }

    /// Calls the driver; only after [`Connection::check`] passed for this operation.
    pub(crate) fn call<T>(&self, call: impl FnOnce(&DriverBox) -> RResult<T, AbiError>) -> Result<T> {
        call(&self.driver).into_result().map_err(|e| HostError::Driver(native_error(e)))
    }
}

/// Names (domain and snapshot) are data: any UTF-8 without control characters, not empty,
/// at most this many bytes.
pub const MAX_NAME_BYTES: usize = 4096;

/// Validates a name the caller gave before it reaches a plugin.
pub(crate) fn check_name(kind: &str, name: &str) -> Result<()> {
    let message = if name.is_empty() {
        format!("{kind} name must not be empty")
    } else if name.len() > MAX_NAME_BYTES {
        format!("{kind} name is longer than {MAX_NAME_BYTES} bytes")
    } else if name.chars().any(char::is_control) {
        format!("{kind} name must not contain control characters")
    } else {
        return Ok(());
    };
    Err(HostError::Driver(model::Error::new(codes::INVALID_ARG, message)))
}

pub(crate) fn native_error(e: AbiError) -> model::Error {
    model::Error::new(e.code, e.message.into_string())
}

pub(crate) fn native_domain(d: abi::DomainInfo) -> DomainInfo {
    DomainInfo {
        name: d.name.into_string(),
        uuid: d.uuid.into_string(),
        id: d.id,
        state: d.state,
        reason: d.reason,
        max_memory_kib: d.max_memory_kib,
        memory_kib: d.memory_kib,
        vcpus: d.vcpus,
        persistent: d.persistent,
    }
}

pub(crate) fn native_snapshot(s: abi::SnapshotInfo) -> SnapshotInfo {
    SnapshotInfo {
        name: s.name.into_string(),
        parent: s.parent.into_option().map(|p| p.into_string()),
        creation_time: s.creation_time,
        state: s.state,
        current: s.current,
        has_metadata: s.has_metadata,
        external: s.external,
        disk_only: s.disk_only,
    }
}

#[cfg(test)]
mod tests {
    use super::scheme_of;

    #[test]
    fn scheme_parsing() {
        let cases: &[(&str, Option<(&str, Option<&str>)>)] = &[
            ("mock:///default", Some(("mock", None))),
            ("qemu+unix:///system", Some(("qemu", Some("unix")))),
            ("vsphere://root@host/?no_verify=1", Some(("vsphere", None))),
            ("mock", None),
            ("mock:/default", None),
            (":///x", None),
            ("mo ck:///x", None),
            ("+unix:///x", None),
        ];
        for (uri, expect) in cases {
            assert_eq!(scheme_of(uri), *expect, "{uri}");
        }
    }
}
