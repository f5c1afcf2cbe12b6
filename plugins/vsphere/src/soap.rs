//! SOAP 1.1 transport to one vSphere endpoint: the plugin's blocking HTTP/1.1 client (`http.rs`:
//! keep-alive pool, TCP_NODELAY, rustls) on the calling thread, the `vmware_soap_session` cookie
//! kept by hand, a round-trip counter, answers read as an element tree or by a caller's reader
//! ([`Soap::call_with`]),
//! and one transparent re-login when the server answers `NotAuthenticated`.
//!
//! Nothing here formats the password: it only goes into the Login body, and no error carries a
//! request body.

use std::{
    sync::{
        Mutex, MutexGuard, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use virtplug_plugin_sdk::{Error, codes};

use crate::{
    fault::{Fault, Subject, to_error},
    http::{Client, HttpError},
    uri::{Credentials, Target},
    xmldom::{self, Element, escape},
};

const ENVELOPE_HEAD: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
    "\n",
    r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#
);
const ENVELOPE_TAIL: &str = "</soapenv:Body></soapenv:Envelope>";
const COOKIE_NAME: &str = "vmware_soap_session";

/// A failure of one SOAP call: a vSphere fault (to be mapped with context) or a finished error.
#[derive(Debug, Clone)]
pub enum CallError {
    /// The server answered with a fault.
    Fault(Fault),
    /// Transport, HTTP or parse failure, already a libvirt error.
    Error(Error),
}

impl CallError {
    /// Maps to a libvirt error for `method` acting on `subject`.
    pub fn into_error(self, method: &str, subject: Subject<'_>) -> Error {
        match self {
            Self::Fault(f) => to_error(method, &f, subject),
            Self::Error(e) => e,
        }
    }
}

impl From<Error> for CallError {
    fn from(e: Error) -> Self {
        Self::Error(e)
    }
}

/// Result of one call.
pub type CallResult<T> = std::result::Result<T, CallError>;

struct Session {
    /// The cookie value exactly as the server set it.
    cookie: Option<String>,
    /// The `Cookie` header value sending it, built once per session rather than per request.
    cookie_header: Option<String>,
    /// `SOAPAction` header value (`"urn:vim25/<apiVersion>"` once known), built once.
    action: String,
    /// SessionManager moid and credentials, once logged in.
    login: Option<(String, Credentials)>,
}

/// The transport. Safe to share between threads.
pub struct Soap {
    /// The blocking HTTP/1.1 client (`http.rs`): requests run on the calling thread.
    http: Client,
    authority: String,
    session: Mutex<Session>,
    /// Serialises re-logins so two threads seeing `NotAuthenticated` log in once.
    relogin: Mutex<()>,
    trips: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Soap {
    /// A transport for `target` (no request is sent yet).
    pub fn new(target: &Target) -> Result<Self, Error> {
        let http = Client::new(
            target,
            "/sdk",
            concat!("virtplug-vsphere/", env!("CARGO_PKG_VERSION")),
            Duration::from_secs(15),
            Duration::from_secs(120),
        )
        .map_err(|e| Error::internal(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            authority: target.authority(),
            session: Mutex::new(Session {
                cookie: None,
                cookie_header: None,
                action: "\"urn:vim25\"".to_owned(),
                login: None,
            }),
            relogin: Mutex::new(()),
            trips: AtomicU64::new(0),
        })
    }

    /// SOAP requests sent so far (every HTTP request, failed or not).
    pub fn round_trips(&self) -> u64 {
        self.trips.load(Ordering::Relaxed)
    }

    /// Sets the API version used in `SOAPAction`.
    pub fn set_api_version(&self, version: &str) {
        // A version that cannot go into a header line (never seen) keeps the plain `urn:vim25`.
        if !version.contains(['\r', '\n', '"']) {
            lock(&self.session).action = format!("\"urn:vim25/{version}\"");
        }
    }

    fn transport_error(&self, method: &str, e: HttpError) -> Error {
        let cause = match e {
            HttpError::Certificate(c) => {
                return Error::new(
                    codes::AUTH_FAILED,
                    format!(
                        "TLS certificate of {} does not verify ({c}); add no_verify=1 to the URI to skip the check",
                        self.authority
                    ),
                );
            }
            HttpError::Timeout => {
                return Error::new(
                    codes::OPERATION_FAILED,
                    format!("operation failed: no answer from {} to '{method}' in time", self.authority),
                );
            }
            HttpError::Connect(cause) => {
                return Error::new(
                    codes::OPERATION_FAILED,
                    format!("operation failed: cannot connect to {}: {cause}", self.authority),
                );
            }
            HttpError::Other(cause) => cause,
        };
        // A task call is never sent again: the server may have started it before the
        // connection dropped (the simulator closes it when its handler crashes).
        let unknown = if method.ends_with("_Task") { "; the server may have acted on it: not sent again" } else { "" };
        Error::new(
            codes::OPERATION_FAILED,
            format!("operation failed: connection to {} failed during '{method}': {cause}{unknown}", self.authority),
        )
    }

    /// One HTTP request, no retry. Returns the answer as `read` reads it from its status and text
    /// (the response element with [`Soap::parse_response`]), and the cookie that was sent.
    fn invoke_once<T>(
        &self,
        method: &str,
        body: &str,
        read: &impl Fn(u16, &str) -> CallResult<T>,
    ) -> (CallResult<T>, Option<String>) {
        let (cookie, cookie_header, action) = {
            let s = lock(&self.session);
            (s.cookie.clone(), s.cookie_header.clone(), s.action.clone())
        };
        self.trips.fetch_add(1, Ordering::Relaxed);
        // The envelope goes straight into the request buffer (no copy of its own).
        let resp = match self.http.post(&action, cookie_header.as_deref(), &[ENVELOPE_HEAD, body, ENVELOPE_TAIL]) {
            Ok(r) => r,
            Err(e) => return (Err(CallError::Error(self.transport_error(method, e))), cookie),
        };
        let set = resp.set_cookies.iter().rev().find_map(|v| {
            let val = v.trim().strip_prefix(COOKIE_NAME)?.strip_prefix('=')?;
            Some(val.split(';').next().unwrap_or("").trim().to_owned())
        });
        if let Some(val) = set {
            let mut s = lock(&self.session);
            s.cookie_header = Some(format!("{COOKIE_NAME}={val}"));
            s.cookie = Some(val);
        }
        // The answer's text as it was sent (checked once, without copying), or its lossy form.
        let text = match std::str::from_utf8(&resp.body) {
            Ok(t) => std::borrow::Cow::Borrowed(t),
            Err(_) => String::from_utf8_lossy(&resp.body),
        };
        let result = read(resp.status, &text);
        drop(text);
        self.http.recycle(resp.body);
        (result, cookie)
    }

    /// The response element (the Body's child) of an answer, or its fault or error.
    pub fn parse_response(&self, method: &str, status: u16, text: &str) -> CallResult<Element> {
        let not_soap = || {
            CallError::Error(Error::internal(format!(
                "HTTP response code {status} for call to '{method}' from {}: not a SOAP answer",
                self.authority
            )))
        };
        if status != 200 && status != 500 {
            return Err(CallError::Error(Error::internal(format!(
                "HTTP response code {status} for call to '{method}' from {}",
                self.authority
            ))));
        }
        let mut doc = xmldom::parse(text).map_err(|_| not_soap())?;
        if doc.name != "Envelope" {
            return Err(not_soap());
        }
        // The Body's first child, moved out of the document (not copied).
        let inner = doc.take_child("Body").and_then(|b| b.children.into_iter().next()).ok_or_else(not_soap)?;
        if inner.name == "Fault" {
            return Err(CallError::Fault(Fault::from_soap(&inner)));
        }
        if status != 200 {
            return Err(not_soap());
        }
        // Simulator quirk F.6 #6: without a session, RetrievePropertiesEx answers 200 with a
        // missingSet carrying NotAuthenticated instead of a fault.
        let is_retrieve =
            inner.name.starts_with("RetrievePropertiesEx") || inner.name.starts_with("ContinueRetrievePropertiesEx");
        if let Some(rv) = inner.child("returnval").filter(|_| is_retrieve) {
            for ms in rv.children_named("objects").flat_map(|o| o.children_named("missingSet")) {
                if let Some(f) = ms.child("fault").and_then(|f| f.child("fault")) {
                    let fault = Fault::from_detail(f, String::new());
                    if fault.is("NotAuthenticated") {
                        return Err(CallError::Fault(fault));
                    }
                }
            }
        }
        Ok(inner)
    }

    /// One call: on `NotAuthenticated`, logs in again once and retries once.
    pub fn call(&self, method: &str, body: &str) -> CallResult<Element> {
        self.call_with(method, body, |status, text| self.parse_response(method, status, text))
    }

    /// [`Soap::call`], the answer read by `read` from its status and text (`vim::retrieve` reads
    /// its answers without an element tree).
    pub fn call_with<T>(&self, method: &str, body: &str, read: impl Fn(u16, &str) -> CallResult<T>) -> CallResult<T> {
        let (result, used) = self.invoke_once(method, body, &read);
        match result {
            Err(CallError::Fault(f)) if f.is("NotAuthenticated") && lock(&self.session).login.is_some() => {
                self.relogin(used)?;
                let (again, _) = self.invoke_once(method, body, &read);
                again
            }
            other => other,
        }
    }

    fn relogin(&self, failed_cookie: Option<String>) -> CallResult<()> {
        let _guard = lock(&self.relogin);
        let (current, login) = {
            let s = lock(&self.session);
            (s.cookie.clone(), s.login.clone())
        };
        if current.is_some() && current != failed_cookie {
            return Ok(()); // another thread already logged in again
        }
        let Some((sm, creds)) = login else {
            return Err(CallError::Error(Error::new(codes::AUTH_FAILED, "authentication failed: not logged in")));
        };
        self.login(&sm, &creds).map_err(CallError::Error)
    }

    /// `SessionManager.Login`. Clears the cookie first (simulator quirk F.6 #11: Login on a
    /// connection that already has a session fails with InvalidLogin).
    pub fn login(&self, session_manager: &str, creds: &Credentials) -> Result<(), Error> {
        {
            let mut s = lock(&self.session);
            s.cookie = None;
            s.cookie_header = None;
        }
        let body = format!(
            r#"<Login xmlns="urn:vim25"><_this type="SessionManager">{}</_this><userName>{}</userName><password>{}</password></Login>"#,
            escape(session_manager),
            escape(&creds.user),
            escape(creds.password())
        );
        let (result, _) = self.invoke_once("Login", &body, &|status, text| self.parse_response("Login", status, text));
        match result {
            Ok(_) => {
                let mut s = lock(&self.session);
                if s.cookie.is_none() {
                    return Err(Error::new(
                        codes::AUTH_FAILED,
                        format!("{} sent no session cookie after Login", self.authority),
                    ));
                }
                s.login = Some((session_manager.to_owned(), creds.clone()));
                Ok(())
            }
            Err(CallError::Fault(f)) if f.is("InvalidLogin") => Err(Error::new(
                codes::AUTH_FAILED,
                format!(
                    "cannot log in to {} as '{}': {}",
                    self.authority,
                    creds.user,
                    if f.message.is_empty() { "Login failure" } else { &f.message }
                ),
            )),
            Err(e) => Err(e.into_error("Login", Subject::None)),
        }
    }

    /// `SessionManager.Logout`, best effort; forgets the session either way.
    pub fn logout(&self) {
        let sm = {
            let mut s = lock(&self.session);
            let sm = s.login.take().map(|(sm, _)| sm);
            if s.cookie.is_none() {
                return;
            }
            sm
        };
        if let Some(sm) = sm {
            let body =
                format!(r#"<Logout xmlns="urn:vim25"><_this type="SessionManager">{}</_this></Logout>"#, escape(&sm));
            let _ = self.invoke_once("Logout", &body, &|status, text| self.parse_response("Logout", status, text));
        }
        let mut s = lock(&self.session);
        s.cookie = None;
        s.cookie_header = None;
    }

    /// Ends the server-side session but keeps the credentials, as an expired session would
    /// (tests use it to exercise the re-login path).
    pub fn expire_session_for_tests(&self) {
        let sm = lock(&self.session).login.as_ref().map(|(sm, _)| sm.clone());
        if let Some(sm) = sm {
            let body =
                format!(r#"<Logout xmlns="urn:vim25"><_this type="SessionManager">{}</_this></Logout>"#, escape(&sm));
            let _ = self.invoke_once("Logout", &body, &|status, text| self.parse_response("Logout", status, text));
        }
    }
}
