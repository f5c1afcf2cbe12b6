//! One libvirt client connection: what it opened (driver URI, read-only or not), its event
//! callbacks, and the dispatch of each call to the handlers in `calls_domain` and
//! `calls_snapshot`. Host errors become libvirt error replies here, with libvirt's code, error
//! domain and text.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::mpsc;
use virtplug_host::{Connection, HostError, codes};
use virtplug_libvirt_rpc::{
    packet::{self, Header},
    proto::*,
    xdr::{self, Xdr, XdrError},
};

use super::{Out, lifecycle::Callback};
use crate::state::AppState;

/// libvirt's error domains (`virErrorDomain`) this server reports.
pub mod from {
    pub const NONE: i32 = 0;
    pub const XML: i32 = 5;
    pub const RPC: i32 = 7;
    pub const QEMU: i32 = 10;
    pub const TEST: i32 = 12;
    pub const DOMAIN: i32 = 20;
    pub const VBOX: i32 = 25;
    pub const ESX: i32 = 28;
    pub const DOMAIN_SNAPSHOT: i32 = 35;
}

/// libvirt's `VIR_ERR_RPC`.
pub const ERR_RPC: i32 = 39;

/// The answer to a call that panicked (a bug in the daemon; a plugin's panics are answered by the
/// SDK): libvirtd's internal error, so its client is not left waiting for a reply.
pub fn panicked() -> RemoteError {
    *fail(codes::INTERNAL_ERROR, from::RPC, "the call failed unexpectedly (see the daemon's log)").0
}

/// A failed call: the error reply's body.
#[derive(Debug)]
pub struct Fail(pub Box<RemoteError>);

impl Fail {
    /// Wraps an error body.
    pub fn from_error(e: RemoteError) -> Self {
        Self(Box::new(e))
    }
}

/// What a handler returns: the encoded reply payload, or the error.
pub type Reply = Result<Vec<u8>, Fail>;

/// Encodes a reply payload.
pub fn ok<T: Xdr>(v: &T) -> Reply {
    Ok(xdr::to_bytes(v))
}

/// An error with `code`'s libvirt prefix before `detail`.
pub fn fail(code: u32, domain: i32, detail: &str) -> Fail {
    Fail::from_error(packet::error(code as i32, domain, format!("{}{detail}", codes::prefix(code))))
}

impl From<XdrError> for Fail {
    fn from(_: XdrError) -> Self {
        // libvirtd's text for any payload its XDR routines refuse.
        Fail::from_error(packet::error(ERR_RPC, from::RPC, "Unable to decode message payload"))
    }
}

/// What CONNECT_OPEN opened.
#[derive(Debug, Clone)]
pub struct Opened {
    pub uri: String,
    pub conn: Arc<Connection>,
    /// The plugin's error domain.
    pub from: i32,
}

/// One client connection.
pub struct Session {
    pub state: AppState,
    /// Came in on the read-only socket.
    socket_read_only: bool,
    opened: Mutex<Option<Opened>>,
    /// Event callbacks by callback id.
    pub callbacks: Mutex<HashMap<i32, Callback>>,
    pub out: mpsc::Sender<Out>,
    events: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Session {
    pub fn new(state: AppState, socket_read_only: bool, out: mpsc::Sender<Out>) -> Arc<Self> {
        Arc::new(Self {
            state,
            socket_read_only,
            opened: Mutex::new(None),
            callbacks: Mutex::default(),
            out,
            events: Mutex::new(None),
        })
    }

    /// Stops the event forwarder.
    pub fn close(&self) {
        if let Some(task) = self.events.lock().ok().and_then(|mut t| t.take()) {
            task.abort();
        }
    }

    /// The opened connection, or libvirtd's "connection not open".
    pub fn opened(&self) -> Result<Opened, Fail> {
        self.opened
            .lock()
            .ok()
            .and_then(|o| o.clone())
            .ok_or_else(|| fail(codes::INTERNAL_ERROR, from::RPC, "connection not open"))
    }

    /// Runs `f` on the opened connection; host errors become replies. Calls already run on a
    /// thread of their own (see the module `conn`), so the host call runs right here: no hand-off
    /// to another thread per call. For a domain API (errors of shared code: `VIR_FROM_DOMAIN`).
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, HostError> + Send + 'static,
    ) -> Result<T, Fail> {
        self.run_in(Area::Domain, f).await
    }

    /// [`Session::run`] for a snapshot API (errors of shared code: `VIR_FROM_DOMAIN_SNAPSHOT`).
    pub async fn run_snapshot<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, HostError> + Send + 'static,
    ) -> Result<T, Fail> {
        self.run_in(Area::Snapshot, f).await
    }

    async fn run_in<T: Send + 'static>(
        &self,
        area: Area,
        f: impl FnOnce(&Connection) -> Result<T, HostError> + Send + 'static,
    ) -> Result<T, Fail> {
        let o = self.opened()?;
        crate::observe::plugin_call("libvirt", &o.conn, f).map_err(|e| host_error_in(&e, o.from, area))
    }

    /// Answers one call (never fails: errors become error replies).
    pub async fn call(self: &Arc<Self>, h: &Header, payload: &[u8]) -> Vec<u8> {
        if crate::faults::panics_in_procedure(h.proc_) {
            panic!("VIRTPLUGD_FAULT: a panic in procedure {}", h.proc_);
        }
        let result = match h.proc_ {
            REMOTE_PROC_AUTH_LIST => ok(&RemoteAuthListRet { types: vec![REMOTE_AUTH_NONE] }),
            REMOTE_PROC_CONNECT_SUPPORTS_FEATURE => self.supports_feature(payload),
            REMOTE_PROC_CONNECT_OPEN => self.open(payload).await,
            REMOTE_PROC_CONNECT_CLOSE => {
                self.close();
                ok(&())
            }
            p => match self.opened() {
                Err(e) => Err(e),
                Ok(o) => super::calls_domain::call(self, &o, p, payload).await,
            },
        };
        match result {
            Ok(bytes) => packet::reply_encoded(h, &bytes),
            Err(Fail(err)) => packet::reply_error(h, &err),
        }
    }

    fn supports_feature(&self, payload: &[u8]) -> Reply {
        let a: RemoteConnectSupportsFeatureArgs = packet::args(payload)?;
        // 10 PROGRAM_KEEPALIVE (answered before open), 14 REMOTE_EVENT_CALLBACK and
        // 15 REMOTE_CLOSE_CALLBACK; FD passing, typed string params and migration are not served.
        const PROGRAM_KEEPALIVE: i32 = 10;
        const REMOTE_EVENT_CALLBACK: i32 = 14;
        const REMOTE_CLOSE_CALLBACK: i32 = 15;
        if a.feature != PROGRAM_KEEPALIVE {
            self.opened().map_err(|_| fail(codes::INTERNAL_ERROR, from::RPC, "hypervisor connection not open"))?;
        }
        let yes = matches!(a.feature, PROGRAM_KEEPALIVE | REMOTE_EVENT_CALLBACK | REMOTE_CLOSE_CALLBACK);
        ok(&RemoteConnectSupportsFeatureRet { supported: i32::from(yes) })
    }

    async fn open(self: &Arc<Self>, payload: &[u8]) -> Reply {
        let a: RemoteConnectOpenArgs = packet::args(payload)?;
        if self.opened().is_ok() {
            return Err(fail(codes::INTERNAL_ERROR, from::RPC, "connection already open"));
        }
        // `remote+unix:///…` sends an empty name: the daemon's default URI.
        let uri =
            match a.name.as_deref() {
                None | Some("") => self.state.default_uri.clone().ok_or_else(|| {
                    fail(codes::NO_CONNECT, from::NONE, "(no URI given and no default URI configured)")
                })?,
                Some(n) => n.to_owned(),
            };
        // The same allow-list as the HTTP API: nothing else is ever opened.
        if let Err(e) = self.state.check_served(&uri) {
            return Err(Fail::from_error(packet::error(e.body.code as i32, from::NONE, e.body.message)));
        }
        // Bit 0 is VIR_CONNECT_RO; the client's other bits (USER, AUTOSTART) mean nothing here.
        let read_only = self.socket_read_only || a.flags & 1 != 0;
        let state = Arc::clone(&self.state);
        let u = uri.clone();
        let conn = crate::runtime::spawn_blocking(move || state.connection(&u, read_only))
            .await
            .map_err(|e| fail(codes::INTERNAL_ERROR, from::RPC, &format!("open failed: {e}")))?
            .map_err(|e| host_error(&e, from::NONE))?;
        let from = plugin_domain(&conn.plugin_info().name);
        let opened = Opened { uri: uri.clone(), conn, from };
        if let Ok(mut o) = self.opened.lock() {
            if o.is_some() {
                return Err(fail(codes::INTERNAL_ERROR, from::RPC, "connection already open"));
            }
            *o = Some(opened);
        }
        let task = super::lifecycle::forward(Arc::clone(self), uri);
        if let Ok(mut t) = self.events.lock() {
            *t = Some(task);
        }
        ok(&())
    }
}

/// The error domain of a plugin's own errors: the libvirt driver it stands for.
fn plugin_domain(plugin: &str) -> i32 {
    match plugin {
        // The mock is virtplug's counterpart of libvirt's test driver.
        "mock" => from::TEST,
        "qemu" => from::QEMU,
        "vsphere" => from::ESX,
        "virtualbox" | "vbox" => from::VBOX,
        _ => from::NONE,
    }
}

/// A host error as libvirt reports it: read-only refusals in the public API's domain, XML
/// errors in the XML domain, everything else in the driver's.
pub fn host_error(e: &HostError, driver: i32) -> Fail {
    host_error_in(e, driver, Area::Domain)
}

/// Which public API family a call belongs to: libvirt reports the errors of its shared code
/// (the flag rules of the public API, XML parsing, the snapshot list) from that family's
/// source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `src/libvirt-domain.c`, `domain_conf.c`: `VIR_FROM_DOMAIN`.
    Domain,
    /// `src/libvirt-domain-snapshot.c`, `snapshot_conf.c`: `VIR_FROM_DOMAIN_SNAPSHOT`.
    Snapshot,
}

/// The libvirt error domain of `text`, an error of code `code` a plugin or the host reported,
/// when libvirt raises that error in shared code rather than in the driver (measured with
/// python3-libvirt on `test:///default`): the XML parser's own checks (`VIR_FROM_XML`), the
/// document parsers and the snapshot definition's checks (snapshot or domain file), the moment
/// list (`virdomainmomentobjlist.c`) and the domain object checks (`VIR_FROM_DOMAIN`). `None`:
/// the driver's own error.
fn shared_origin(code: u32, text: &str, area: Area) -> Option<i32> {
    let family = if area == Area::Snapshot { from::DOMAIN_SNAPSHOT } else { from::DOMAIN };
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    match code {
        codes::XML_ERROR
            if has(&["expecting root element of", "Invalid value for attribute", "for element or attribute"]) =>
        {
            Some(from::XML)
        }
        codes::XML_ERROR => Some(family),
        codes::XML_DETAIL if text.starts_with("(domain_snapshot)") => Some(from::DOMAIN_SNAPSHOT),
        codes::XML_DETAIL if text.starts_with("(domain_definition)") => Some(from::DOMAIN),
        codes::NO_NAME => Some(from::DOMAIN),
        codes::OPERATION_FAILED
            if has(&["domain moment ", "is already defined with uuid", "already exists with uuid"]) =>
        {
            Some(from::DOMAIN)
        }
        codes::OPERATION_INVALID if text.ends_with("domain is not running") => Some(from::DOMAIN),
        codes::INVALID_ARG if has(&[" for moment ", "cannot set moment "]) => Some(from::DOMAIN),
        codes::INVALID_ARG if has(&["cannot change between online and offline"]) => Some(from::DOMAIN_SNAPSHOT),
        // The public API's flag rules ("Flag 'A' is required by flag 'B'", "Flags … are
        // mutually exclusive").
        codes::INVALID_ARG if text.starts_with("Flag") => Some(family),
        // The domain definition's parser (`domain_conf.c`).
        codes::INTERNAL_ERROR
            if has(&["malformed uuid element", "missing domain type attribute", "CPU IDs in <numa> exceed"]) =>
        {
            Some(from::DOMAIN)
        }
        codes::CONFIG_UNSUPPORTED
            if has(&["invalid domain type ", "unknown OS type ", "maximum vCPU count must not be less than"]) =>
        {
            Some(from::DOMAIN)
        }
        codes::INTERNAL_ERROR
            if area == Area::Snapshot
                && has(&[
                    "missing creationTime from existing snapshot",
                    "missing domain in snapshot",
                    "missing name from disk snapshot element",
                ]) =>
        {
            Some(from::DOMAIN_SNAPSHOT)
        }
        codes::CONFIG_UNSUPPORTED
            if area == Area::Snapshot
                && has(&[
                    "no disk named",
                    "too many disk snapshot requests",
                    "Invalid state '",
                    "specified twice",
                    "must use snapshot mode",
                ]) =>
        {
            Some(from::DOMAIN_SNAPSHOT)
        }
        _ => None,
    }
}

/// [`host_error`] for a call of `area`.
pub fn host_error_in(e: &HostError, driver: i32, area: Area) -> Fail {
    let text = e.to_string();
    let domain = match e {
        HostError::ReadOnly { function } | HostError::SecureOnReadOnly { function } => {
            if function.starts_with("virDomainSnapshot") {
                from::DOMAIN_SNAPSHOT
            } else if function.starts_with("virDomain") {
                from::DOMAIN
            } else {
                from::NONE
            }
        }
        HostError::NoConnect { .. } => from::NONE,
        _ => shared_origin(e.code(), &text, area).unwrap_or(driver),
    };
    Fail::from_error(packet::error(e.code() as i32, domain, text))
}

/// A domain handle from the host's view of a domain.
pub fn domain_handle(d: &virtplug_host::model::DomainInfo) -> RemoteNonnullDomain {
    RemoteNonnullDomain { name: d.name.clone(), uuid: uuid_bytes(&d.uuid), id: d.id }
}

/// `6695eb01-f6a4-…` → 16 bytes (zeros where the text is not hex: plugins report valid UUIDs).
pub fn uuid_bytes(uuid: &str) -> [u8; 16] {
    let hex: Vec<u8> = uuid.bytes().filter(u8::is_ascii_hexdigit).collect();
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).take(16).enumerate() {
        let s = std::str::from_utf8(pair).unwrap_or("0");
        out[i] = u8::from_str_radix(s, 16).unwrap_or(0);
    }
    out
}

/// 16 bytes → the lower-case dashed form.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_round_trip() {
        let u = "6695eb01-f6a4-8304-79aa-97f2502e193f";
        assert_eq!(uuid_bytes(u)[..4], [0x66, 0x95, 0xeb, 0x01]);
        assert_eq!(uuid_text(&uuid_bytes(u)), u);
    }
}
