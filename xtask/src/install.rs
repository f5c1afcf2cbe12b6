//! `cargo xtask install --prefix DIR`: a release build of the CLI, the daemon and the four real
//! plugins, copied into the layout the host searches:
//!
//! ```text
//! DIR/bin/virtplug
//! DIR/bin/virtplugd
//! DIR/lib/virtplug/plugins/libvirtplug_plugin_{mock,qemu,vsphere,virtualbox}.so
//! ```
//!
//! The host looks in `<its own folder>/../lib/virtplug/plugins`, so the installed programs find
//! the plugins without configuration. Test fixtures are never built or copied.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

/// The plugins that ship; never a fixture.
pub const PLUGINS: &[&str] = &["mock", "qemu", "vsphere", "virtualbox"];

/// The programs that ship: (package, binary).
const PROGRAMS: &[(&str, &str)] = &[("virtplug-cli", "virtplug"), ("virtplug-daemon", "virtplugd")];

/// Parses `--prefix DIR [--debug]` and installs (`--debug`: the debug build, for development).
pub fn run(args: &[String]) -> Result<()> {
    let mut prefix = None;
    let mut debug = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--prefix" => prefix = it.next().map(PathBuf::from),
            "--debug" => debug = true,
            _ => bail!("usage: cargo xtask install --prefix DIR [--debug]"),
        }
    }
    let Some(prefix) = prefix else { bail!("usage: cargo xtask install --prefix DIR [--debug]") };
    let mut cmd = crate::cargo();
    cmd.args(["build", "--quiet"]);
    if !debug {
        cmd.arg("--release");
    }
    for (package, _) in PROGRAMS {
        cmd.args(["-p", package]);
    }
    for p in PLUGINS {
        cmd.args(["-p", &format!("virtplug-plugin-{p}")]);
    }
    crate::run(cmd)?;
    let built = crate::target_dir().join(if debug { "debug" } else { "release" });
    install_from(&built, &prefix)?;
    println!(
        "installed into {}: bin/virtplug, bin/virtplugd, lib/virtplug/plugins/ ({})",
        prefix.display(),
        PLUGINS.join(", ")
    );
    Ok(())
}

/// Copies the built programs and plugins from `built` (a `target/<profile>` folder) into the
/// layout under `prefix`.
pub fn install_from(built: &Path, prefix: &Path) -> Result<()> {
    let bin = prefix.join("bin");
    let plugins = prefix.join("lib/virtplug/plugins");
    for dir in [&bin, &plugins] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (_, program) in PROGRAMS {
        copy(&built.join(program), &bin.join(program), 0o755)?;
    }
    for p in PLUGINS {
        let file = format!("libvirtplug_plugin_{p}.so");
        copy(&built.join(&file), &plugins.join(&file), 0o644)?;
    }
    Ok(())
}

/// Copies through a temporary name and renames, so a running host never loads half a file.
fn copy(from: &Path, to: &Path, mode: u32) -> Result<()> {
    let tmp = to.with_extension("part");
    std::fs::copy(from, &tmp).with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))
}
