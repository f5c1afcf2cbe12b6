//! Test harness shared by the simulator's integration tests: one state directory per test, a
//! small wrapper script that pins `VBOXSIM_HOME` and logs every invocation (so tests run in
//! parallel and can count invocations), and the plugin opened on it through its native SDK API.
//!
//! `VIRTPLUG_VBOX_REAL=/usr/bin/VBoxManage` points the same tests at a real VBoxManage: machines
//! are then created with `createvm` (uniquely named, deleted afterwards) and states are set with
//! `startvm`/`controlvm`, since `--sim-control` is simulator-only.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, reason = "test helpers")]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use virtplug_plugin_sdk::{Driver, Plugin};
use virtplug_plugin_virtualbox::VirtualBox;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub wrapper: PathBuf,
    pub log: PathBuf,
    pub real: bool,
    created: std::cell::RefCell<Vec<String>>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The simulator built by cargo for this package, or the real VBoxManage when opted in.
fn binary() -> Option<(PathBuf, bool)> {
    if let Some(real) = std::env::var_os("VIRTPLUG_VBOX_REAL").filter(|v| !v.is_empty()) {
        return Some((PathBuf::from(real), true));
    }
    let sim = PathBuf::from(env!("CARGO_BIN_EXE_VBoxManage"));
    if sim.is_file() {
        return Some((sim, false));
    }
    virtplug_test_support::missing(
        "VBoxManage simulator tests",
        format!("the VBoxManage simulator {} is not built and VIRTPLUG_VBOX_REAL is unset", sim.display()),
    )
}

impl Env {
    /// `None` (after saying why, once per test) when no backend is available outside CI.
    pub fn new() -> Option<Self> {
        let (bin, real) = binary()?;
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let log = dir.path().join("invocations.log");
        let wrapper = dir.path().join("VBoxManage");
        let env =
            if real { String::new() } else { format!("VBOXSIM_HOME='{}' VBOXSIM_NOW=1711374044 ", home.display()) };
        std::fs::write(
            &wrapper,
            format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\n{env}exec '{}' \"$@\"\n", log.display(), bin.display()),
        )
        .unwrap();
        let mut perm = std::fs::metadata(&wrapper).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(&wrapper, perm).unwrap();
        Some(Self { dir, wrapper, log, real, created: std::cell::RefCell::new(Vec::new()) })
    }

    pub fn uri(&self) -> String {
        format!("vbox:///session?vboxmanage={}&timeout=20", self.wrapper.display())
    }

    pub fn driver(&self) -> Box<dyn Driver> {
        VirtualBox::open(&self.uri(), false).map_err(|e| e.to_string()).unwrap()
    }

    /// Runs the wrapped VBoxManage directly (counts as an invocation in the log).
    pub fn vbm(&self, args: &[&str]) -> Run {
        let run = || Command::new(&self.wrapper).args(args).env("LC_ALL", "C").output();
        let mut o = run();
        for _ in 0..5 {
            match &o {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    o = run();
                }
                _ => break,
            }
        }
        let o = o.unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Runs and requires exit 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.vbm(args);
        assert_eq!(r.code, 0, "VBoxManage {args:?}: {} {}", r.stdout, r.stderr);
        r
    }

    /// Invocations logged so far.
    pub fn invocations(&self) -> usize {
        std::fs::read_to_string(&self.log).map(|t| t.lines().count()).unwrap_or(0)
    }

    /// Creates and registers a machine named `name` (prefixed uniquely on a real host) and
    /// returns the name to use.
    pub fn create_vm(&self, name: &str) -> String {
        if self.real {
            let unique = format!("virtplug-it-{}-{name}", std::process::id());
            self.ok(&[
                "createvm",
                "--name",
                &unique,
                "--register",
                "--basefolder",
                &self.dir.path().display().to_string(),
            ]);
            self.created.borrow_mut().push(unique.clone());
            unique
        } else {
            self.ok(&["--sim-control", "create-vm", name]);
            name.to_owned()
        }
    }

    /// Puts the machine into `state` (poweroff, running, paused, saved).
    pub fn set_state(&self, vm: &str, state: &str) {
        if !self.real {
            self.ok(&["--sim-control", "set-state", vm, state]);
            return;
        }
        let current = self.vm_state(vm);
        let step = |args: &[&str]| {
            self.vbm(args);
        };
        match state {
            "running" if current == "paused" => step(&["controlvm", vm, "resume"]),
            "running" => step(&["startvm", vm, "--type", "headless"]),
            "paused" => {
                if current != "running" {
                    step(&["startvm", vm, "--type", "headless"]);
                }
                step(&["controlvm", vm, "pause"]);
            }
            "saved" => {
                if current != "running" && current != "paused" {
                    step(&["startvm", vm, "--type", "headless"]);
                }
                step(&["controlvm", vm, "savestate"]);
            }
            _ => step(&["controlvm", vm, "poweroff"]),
        }
    }

    /// `VMState=` of showvminfo.
    pub fn vm_state(&self, vm: &str) -> String {
        let r = self.ok(&["showvminfo", vm, "--machinereadable"]);
        r.stdout
            .lines()
            .find_map(|l| l.strip_prefix("VMState=\""))
            .map(|s| s.trim_end_matches('"').to_owned())
            .unwrap_or_default()
    }

    /// The machine's `.vbox` path.
    pub fn cfg_file(&self, vm: &str) -> PathBuf {
        let r = self.ok(&["showvminfo", vm, "--machinereadable"]);
        let line = r.stdout.lines().find_map(|l| l.strip_prefix("CfgFile=\"")).unwrap();
        PathBuf::from(line.trim_end_matches('"'))
    }

    /// `snapshot <vm> take <name>` directly; returns the new UUID.
    pub fn take(&self, vm: &str, name: &str) -> String {
        let r = self.ok(&["snapshot", vm, "take", name]);
        r.stdout.trim_end().rsplit(' ').next().unwrap().to_owned()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for vm in self.created.borrow().iter() {
            let _ = Command::new(&self.wrapper).args(["controlvm", vm, "poweroff"]).output();
            let _ = Command::new(&self.wrapper).args(["unregistervm", vm, "--delete"]).output();
        }
    }
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
