//! Built artifacts: binaries and plugin files cargo puts in target/<profile>, found from the
//! running test executable (target/<profile>/deps/<test>), so `CARGO_TARGET_DIR` needs no care.

use std::{
    borrow::Cow,
    path::{Path, PathBuf},
};

/// A file cargo builds into target/<profile>, and the command that builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The file name in target/<profile>, e.g. `libvirtplug_plugin_mock.so`.
    pub file: Cow<'static, str>,
    /// The command that builds it, named in every "not built" message.
    pub build: Cow<'static, str>,
}

/// The mock plugin.
pub const MOCK: Artifact = Artifact::new("libvirtplug_plugin_mock.so", "cargo build -p virtplug-plugin-mock");
/// The qemu plugin.
pub const QEMU: Artifact = Artifact::new("libvirtplug_plugin_qemu.so", "cargo build -p virtplug-plugin-qemu");
/// The vSphere plugin.
pub const VSPHERE: Artifact = Artifact::new("libvirtplug_plugin_vsphere.so", "cargo build -p virtplug-plugin-vsphere");
/// The VirtualBox plugin.
pub const VIRTUALBOX: Artifact =
    Artifact::new("libvirtplug_plugin_virtualbox.so", "cargo build -p virtplug-plugin-virtualbox");
/// The `virtplug` CLI.
pub const VIRTPLUG: Artifact = Artifact::new("virtplug", "cargo build -p virtplug-cli");
/// The `virtplugd` daemon.
pub const VIRTPLUGD: Artifact = Artifact::new("virtplugd", "cargo build -p virtplug-daemon");

/// The test fixture plugin `libvirtplug_fixture_<name>.so` (tests/fixtures).
pub fn fixture(name: &str) -> Artifact {
    Artifact { file: format!("libvirtplug_fixture_{name}.so").into(), build: "cargo build --workspace".into() }
}

/// Any plugin library `lib<name>.so` of the workspace.
pub fn plugin(name: &str) -> Artifact {
    Artifact { file: format!("lib{name}.so").into(), build: "cargo build --workspace".into() }
}

impl Artifact {
    /// An artifact named `file`, built by `build`.
    pub const fn new(file: &'static str, build: &'static str) -> Self {
        Self { file: Cow::Borrowed(file), build: Cow::Borrowed(build) }
    }

    /// Where it is (or would be) built.
    pub fn path(&self) -> PathBuf {
        target_dir().join(&*self.file)
    }

    /// Its path when built; otherwise the one-line message saying how to build it.
    pub fn find(&self) -> Result<PathBuf, String> {
        let path = self.path();
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{} is not built: run `{}` first", path.display(), self.build))
        }
    }

    /// Its path; panics with [`Artifact::find`]'s message when it is not built (for tests that
    /// have no skip: their artifacts come with `cargo build --workspace`).
    pub fn built(&self) -> PathBuf {
        self.find().unwrap_or_else(|why| panic!("{why}"))
    }

    /// Its path, or `None` under the skip policy ([`crate::need`]) with `area` naming the tests.
    pub fn require(&self, area: &str) -> Option<PathBuf> {
        crate::need(area, self.find())
    }
}

/// target/<profile>: the folder holding `deps/`, where the running test executable lives.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("the test executable's path: {e}"));
    match exe.parent().and_then(Path::parent) {
        Some(dir) => dir.to_owned(),
        None => panic!("{} is not in target/<profile>/deps", exe.display()),
    }
}

/// The target folder itself (target/<profile>/..), home of non-cargo builds such as the vSphere
/// simulator.
pub fn target_root() -> PathBuf {
    let dir = target_dir();
    match dir.parent() {
        Some(root) => root.to_owned(),
        None => panic!("{} has no parent folder", dir.display()),
    }
}
