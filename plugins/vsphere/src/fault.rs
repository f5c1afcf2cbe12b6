//! vSphere faults (SOAP faults and failed tasks) and their mapping to libvirt error codes.

use virtplug_plugin_sdk::{Error, codes};

use crate::xmldom::Element;

/// `VIR_ERR_OPERATION_ABORTED` (not among the ABI crate's named codes).
const OPERATION_ABORTED: u32 = 78;
/// `VIR_ERR_ACCESS_DENIED` (not among the ABI crate's named codes).
const ACCESS_DENIED: u32 = 88;

/// A vSphere fault: its type (`InvalidLogin`, `ManagedObjectNotFound`, …) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The fault type, from `xsi:type` or the detail element's name without `Fault`.
    pub kind: String,
    /// `faultstring`, or a task's `localizedMessage`; may be empty.
    pub message: String,
}

impl Fault {
    /// Reads a fault from a `detail` child or a `LocalizedMethodFault` element's `fault`.
    pub fn from_detail(el: &Element, message: String) -> Self {
        let kind = el
            .xsi_type()
            .map(str::to_owned)
            .unwrap_or_else(|| el.name.strip_suffix("Fault").unwrap_or(&el.name).to_owned());
        Self { kind, message }
    }

    /// Reads a SOAP `Fault` element (`faultstring`, `detail/<XFault xsi:type="X">`).
    pub fn from_soap(fault: &Element) -> Self {
        let message = fault.child_text("faultstring").unwrap_or("").trim().to_owned();
        match fault.child("detail").and_then(|d| d.children.first()) {
            Some(detail) => Self::from_detail(detail, message),
            None => Self { kind: "SOAPFault".to_owned(), message },
        }
    }

    /// Reads a task's `info.error` (`LocalizedMethodFault`).
    pub fn from_task_error(err: &Element) -> Self {
        let message = err.child_text("localizedMessage").unwrap_or("").trim().to_owned();
        match err.child("fault") {
            Some(f) => Self::from_detail(f, message),
            None => Self { kind: "TaskError".to_owned(), message },
        }
    }

    /// Whether the fault is `kind`.
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

/// What an operation was working on, so `ManagedObjectNotFound` names the right thing.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A domain (VM), by name.
    Domain(&'a str),
    /// A snapshot of a domain, by name.
    Snapshot(&'a str),
    /// Nothing in particular (session, inventory).
    None,
}

/// Maps a fault raised by `method` to libvirt's error codes (see the vSphere reference, §A.8).
pub fn to_error(method: &str, f: &Fault, subject: Subject<'_>) -> Error {
    let text = if f.message.is_empty() {
        format!("{method}: {}", f.kind)
    } else {
        format!("{method}: {} - {}", f.kind, f.message)
    };
    match f.kind.as_str() {
        "InvalidLogin" => Error::new(codes::AUTH_FAILED, text),
        "NotAuthenticated" => {
            Error::new(codes::AUTH_FAILED, format!("{text} (the session expired and logging in again did not help)"))
        }
        "NoPermission" => Error::new(ACCESS_DENIED, format!("access denied: {text}")),
        "ManagedObjectNotFound" => match subject {
            Subject::Domain(d) => Error::new(codes::NO_DOMAIN, format!("no domain with matching name '{d}' ({text})")),
            Subject::Snapshot(s) => {
                Error::new(codes::NO_DOMAIN_SNAPSHOT, format!("no domain snapshot with matching name '{s}' ({text})"))
            }
            Subject::None => Error::internal(text),
        },
        "NotFound" => match subject {
            Subject::Domain(_) => Error::no_current_snapshot(),
            Subject::Snapshot(s) => Error::no_snapshot(s),
            Subject::None => Error::internal(text),
        },
        "InvalidState" | "InvalidPowerState" | "TaskInProgress" | "InvalidDatastoreState" | "InvalidHostState" => {
            Error::operation_invalid(text)
        }
        "NotSupported" | "MethodNotFound" => Error::new(codes::OPERATION_UNSUPPORTED, text),
        "InvalidArgument" | "InvalidName" => Error::invalid_arg(text),
        "RequestCanceled" => Error::new(OPERATION_ABORTED, format!("operation aborted: {text}")),
        k if k.starts_with("Snapshot")
            || matches!(
                k,
                "TooManySnapshotLevels"
                    | "InvalidSnapshotFormat"
                    | "MultipleSnapshotsNotSupported"
                    | "FileFault"
                    | "FileNotFound"
                    | "FileLocked"
                    | "InsufficientResourcesFault"
                    | "VmConfigFault"
                    | "ApplicationQuiesceFault"
                    | "ToolsUnavailable"
            ) =>
        {
            Error::new(codes::OPERATION_FAILED, text)
        }
        _ => Error::internal(text),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use super::*;
    use crate::xmldom;

    fn check(kind: &str, subject: Subject<'_>, code: u32) {
        let f = Fault { kind: kind.to_owned(), message: "m".to_owned() };
        assert_eq!(to_error("X", &f, subject).code, code, "{kind}");
    }

    #[test]
    fn mapping_table() {
        check("InvalidLogin", Subject::None, codes::AUTH_FAILED);
        check("NotAuthenticated", Subject::None, codes::AUTH_FAILED);
        check("ManagedObjectNotFound", Subject::Domain("d"), codes::NO_DOMAIN);
        check("ManagedObjectNotFound", Subject::Snapshot("s"), codes::NO_DOMAIN_SNAPSHOT);
        check("NotFound", Subject::Snapshot("s"), codes::NO_DOMAIN_SNAPSHOT);
        check("InvalidState", Subject::None, codes::OPERATION_INVALID);
        check("InvalidPowerState", Subject::None, codes::OPERATION_INVALID);
        check("TaskInProgress", Subject::None, codes::OPERATION_INVALID);
        check("MethodNotFound", Subject::None, codes::OPERATION_UNSUPPORTED);
        check("SnapshotLocked", Subject::None, codes::OPERATION_FAILED);
        check("InvalidRequest", Subject::None, codes::INTERNAL_ERROR);
        check("SystemError", Subject::None, codes::INTERNAL_ERROR);
        let f = Fault { kind: "InvalidRequest".into(), message: "no vmomi type defined for 'FooBar'".into() };
        assert_eq!(
            to_error("FooBar", &f, Subject::None).to_string(),
            "internal error: FooBar: InvalidRequest - no vmomi type defined for 'FooBar'"
        );
    }

    #[test]
    fn soap_and_task_faults_parse() {
        let soap = xmldom::parse(r#"<soapenv:Fault xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault>"#).unwrap();
        assert_eq!(Fault::from_soap(&soap), Fault { kind: "InvalidLogin".into(), message: "Login failure".into() });
        let task = xmldom::parse(r#"<val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="LocalizedMethodFault"><fault XMLSchema-instance:type="InvalidPowerState"><requestedState>poweredOff</requestedState></fault><localizedMessage>*types.InvalidPowerState</localizedMessage></val>"#).unwrap();
        assert_eq!(Fault::from_task_error(&task).kind, "InvalidPowerState");
        let bare =
            xmldom::parse(r#"<Fault><faultstring>x</faultstring><detail><NotFoundFault/></detail></Fault>"#).unwrap();
        assert_eq!(Fault::from_soap(&bare).kind, "NotFound");
    }
}
