//! A connection to one plugin instance, and the dispatch step shared by every entry point.

use std::sync::Arc;

use virtplug_plugin_api::{
    self as abi, DriverBox, HostServicesBox,
    abi_stable::{
        sabi_trait::TD_Opaque,
        std_types::{RResult, RStr},
    },
};

use crate::{
    backend::{AbiBackend, Backend, native_error},
    error::{BackendResult, HostError, MAX_NAME_BYTES, NameProblem, Result},
    registry::Registry,
    rules::OpRules,
    services::{Progress, ProgressSlot, Services},
};

/// Who serves a connection: a plugin loaded in this process, or another backend (a daemon
/// client) speaking the same native driver interface.
enum Transport {
    Local(AbiBackend),
    Other(Box<dyn Backend>),
}

/// An open connection: a URI served by one plugin, read-write or read-only.
pub struct Connection {
    uri: String,
    read_only: bool,
    info: abi::PluginInfo,
    transport: Transport,
    /// The reporter of the running long call ([`Connection::with_progress`]), which the
    /// plugin's progress reports and cancellation checks reach through its host services.
    progress: Arc<ProgressSlot>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("uri", &self.uri)
            .field("read_only", &self.read_only)
            .field("plugin", &self.info.name)
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
            // Remote transports (`mock+unix://`, `qemu+https://`) reach a virtplugd daemon.
            let remote = crate::remote::open(uri, read_only)?;
            let info = remote.info().clone();
            return Ok(Self::from_backend(uri, read_only, info, Box::new(remote)));
        }
        let plugin = registry.for_scheme(scheme).ok_or_else(no_connect)?;
        let progress = Arc::new(ProgressSlot::default());
        // ABI 1.1 plugins get the host's services; a 1.0 plugin has no `open_with_host` field
        // (its accessor is `None`) and is opened as before, without them.
        let opened = match plugin.module.open_with_host() {
            Some(open_with_host) => {
                let services = Services {
                    plugin: plugin.info.name.to_string(),
                    uri: uri.to_owned(),
                    events: Arc::clone(registry.event_slot()),
                    progress: Arc::clone(&progress),
                };
                open_with_host(RStr::from_str(uri), read_only, HostServicesBox::from_value(services, TD_Opaque))
            }
            None => (plugin.module.open())(RStr::from_str(uri), read_only),
        };
        let driver = match opened {
            RResult::ROk(d) => d,
            RResult::RErr(e) => return Err(HostError::Driver(open_refused(uri, native_error(e)))),
        };
        let info = plugin.info.clone();
        Ok(Self { uri: uri.to_owned(), read_only, info, transport: Transport::Local(AbiBackend(driver)), progress })
    }

    /// Runs `call` with `reporter` receiving the plugin's progress reports and answering its
    /// cancellation checks; the reporter is this connection's until `call` returns (a concurrent
    /// long call on the same connection replaces it: give each its own connection). Connections
    /// not served by a plugin in this process report nothing.
    pub fn with_progress<R>(&self, reporter: Arc<dyn Progress>, call: impl FnOnce(&Self) -> R) -> R {
        struct Clear<'a>(&'a ProgressSlot, Option<Arc<dyn Progress>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                if let Ok(mut slot) = self.0.lock() {
                    *slot = self.1.take();
                }
            }
        }
        let previous = self.progress.lock().ok().and_then(|mut slot| slot.replace(reporter));
        let _clear = Clear(&self.progress, previous);
        call(self)
    }

    /// A connection served by `backend` (e.g. a daemon client) that declares `info`. Every
    /// entry point still runs the generic checks here, before the backend is called.
    pub fn from_backend(uri: &str, read_only: bool, info: abi::PluginInfo, backend: Box<dyn Backend>) -> Self {
        Self { uri: uri.to_owned(), read_only, info, transport: Transport::Other(backend), progress: Arc::default() }
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
        &self.info
    }

    /// The plugin's ABI driver object without any host check (`None` when the connection is
    /// not served by a plugin in this process). Only for the conformance suite, which must
    /// show what a plugin does when called directly.
    #[doc(hidden)]
    pub fn raw_driver(&self) -> Option<&DriverBox> {
        match &self.transport {
            Transport::Local(local) => Some(&local.0),
            Transport::Other(_) => None,
        }
    }

    fn backend(&self) -> &dyn Backend {
        match &self.transport {
            Transport::Local(local) => local,
            Transport::Other(other) => other.as_ref(),
        }
    }

    /// Runs the generic checks of `rules` for `flags`, then `call` on the backend.
    pub(crate) fn dispatch<T>(
        &self,
        rules: &OpRules,
        flags: u32,
        call: impl FnOnce(&dyn Backend) -> BackendResult<T>,
    ) -> Result<T> {
        self.check(rules, flags)?;
        self.call(call)
    }

    /// Steps 1–6 of `rules` (read-only, flag rules, the plugin's mask and operations).
    pub(crate) fn check(&self, rules: &OpRules, flags: u32) -> Result<()> {
        tracing::debug!(op = rules.operation, flags, uri = %self.uri, "check");
        crate::rules::check(rules, self.read_only, self.info.ops, &self.info.caps, flags)
    }

    /// Calls the backend; only after [`Connection::check`] passed for this operation. What the
    /// plugin refused stays the plugin's (`Driver`), a transport failure is `Remote`.
    pub(crate) fn call<T>(&self, call: impl FnOnce(&dyn Backend) -> BackendResult<T>) -> Result<T> {
        call(self.backend()).map_err(HostError::from)
    }
}

/// libvirt's NO_CONNECT text is "no connection driver available for <uri>": a plugin's detail
/// that does not start with the URI goes in parentheses after it, so the prefix never runs
/// into the plugin's own sentence ("… available for toyvmm URIs are …").
fn open_refused(uri: &str, mut e: virtplug_model::Error) -> virtplug_model::Error {
    if e.code == virtplug_plugin_api::codes::NO_CONNECT && !e.message.starts_with(uri) {
        e.message = format!("{uri} ({})", e.message);
    }
    e
}

/// Validates a name the caller gave before it reaches a plugin.
pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        NameProblem::Empty
    } else if name.len() > MAX_NAME_BYTES {
        NameProblem::TooLong
    } else if name.chars().any(char::is_control) {
        NameProblem::ControlCharacter
    } else {
        return Ok(());
    };
    Err(HostError::InvalidName { kind, problem })
}

#[cfg(test)]
mod tests {
    use super::scheme_of;

    #[test]
    fn scheme_parsing() {
        type Parsed = Option<(&'static str, Option<&'static str>)>;
        let cases: &[(&str, Parsed)] = &[
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
