//! What one invocation prints, and VirtualBox's error formats (reference §1.5): every error line
//! on stderr prefixed `VBoxManage: error: `, COM errors with `Details:` and `Context:` lines,
//! syntax errors with the logo and the usage. Checklist item 16.

/// Buffered output of one invocation (faults may rewrite it before it is written).
#[derive(Debug, Default)]
pub struct Out {
    pub stdout: String,
    pub stderr: String,
}

/// A COM error as `GlueHandleComError` prints it.
#[derive(Debug, Clone)]
pub struct Com {
    pub text: String,
    /// Symbolic HRESULT, e.g. `VBOX_E_OBJECT_NOT_FOUND`.
    pub code: &'static str,
    pub component: &'static str,
    pub interface: &'static str,
    /// The stringified C++ call and where it is.
    pub context: &'static str,
    pub line: u32,
    pub file: &'static str,
}

/// HRESULT values (`VirtualBox.xidl:364-400`; XPCOM's NS_ERROR_*).
pub fn hresult(name: &str) -> u32 {
    match name {
        "VBOX_E_OBJECT_NOT_FOUND" => 0x80bb_0001,
        "VBOX_E_INVALID_VM_STATE" => 0x80bb_0002,
        "VBOX_E_INVALID_OBJECT_STATE" => 0x80bb_0007,
        "E_INVALIDARG" | "NS_ERROR_INVALID_ARG" => 0x8007_0057,
        _ => 0x8000_4005, // NS_ERROR_FAILURE (E_FAIL on XPCOM hosts)
    }
}

pub const LOGO: &str = "Oracle VM VirtualBox Command Line Management Interface Version 7.0.8\nCopyright (C) 2005-2023 Oracle and/or its affiliates\n\n";

/// The `snapshot` usage ([MAN] synopsis; exact 7.0 help layout is [U]).
pub const SNAPSHOT_USAGE: &str = "Usage:\n\nVBoxManage snapshot <uuid|vmname>\nVBoxManage snapshot <uuid|vmname> take <snapshot-name> [--description=description] [--live] [--uniquename Number,Timestamp,Space,Force]\nVBoxManage snapshot <uuid|vmname> delete <snapshot-name>\nVBoxManage snapshot <uuid|vmname> restore <snapshot-name>\nVBoxManage snapshot <uuid|vmname> restorecurrent\nVBoxManage snapshot <uuid|vmname> edit <snapshot-name | --current> [--description=description] [--name=new-name]\nVBoxManage snapshot <uuid|vmname> list [[--details] | [--machinereadable]]\nVBoxManage snapshot <uuid|vmname> showvminfo <snapshot-name>\n";

impl Out {
    pub fn out(&mut self, s: &str) {
        self.stdout.push_str(s);
    }
    /// `RTMsgError`: every line of the message prefixed.
    pub fn error(&mut self, msg: &str) {
        for line in msg.split('\n') {
            self.stderr.push_str("VBoxManage: error: ");
            self.stderr.push_str(line);
            self.stderr.push('\n');
        }
    }
    /// `GlueHandleComError`; returns exit code 1.
    pub fn com(&mut self, e: &Com) -> u8 {
        self.error(&e.text);
        self.stderr.push_str(&format!(
            "VBoxManage: error: Details: code {} ({:#x}), component {}, interface {}, callee nsISupports\n",
            e.code,
            hresult(e.code),
            e.component,
            e.interface
        ));
        self.stderr.push_str(&format!(
            "VBoxManage: error: Context: \"{}\" at line {} of file {}\n",
            e.context, e.line, e.file
        ));
        1
    }
    /// `errorSyntax`: logo, error, empty line, usage, all on stderr.
    pub fn syntax(&mut self, msg: &str, usage: &str) {
        self.stderr.push_str(LOGO);
        self.error(msg);
        self.stderr.push('\n');
        self.stderr.push_str(usage);
    }
    /// The progress line of a successful operation (`VBoxManage.cpp:373, 490`).
    pub fn progress(&mut self) {
        self.stderr.push_str("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%\n");
    }
}
