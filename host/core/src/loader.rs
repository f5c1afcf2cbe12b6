//! Loading one plugin file: ownership and permission rules ([`trust`]), the ELF headers against
//! the file's size ([`elf_check`]), dlopen through abi_stable of that same open file, our own
//! layout check accepted in either direction, explicit initialisation, and a one-line reason
//! when a file is refused.
//!
//! The one `unsafe` call of the host lives in [`load_plugin`].

mod elf_check;
mod trust;

use std::{
    os::fd::{AsRawFd, IntoRawFd},
    path::{Path, PathBuf},
};

use virtplug_plugin_api::{
    ABI_MAJOR, PluginInfo, PluginMod_Ref, ROOT_MODULE_SYMBOL,
    abi_stable::{
        StableAbi,
        abi_stability::abi_checking::{AbiInstability, check_layout_compatibility},
        library::{LibraryError, RootModule, lib_header_from_path},
    },
};

use crate::error::{HostError, Result};

/// A plugin that passed every load-time check. Libraries are never unloaded.
pub struct LoadedPlugin {
    /// The file it came from.
    pub path: PathBuf,
    /// Its self-description, read once at load (masks are constant).
    pub info: PluginInfo,
    /// The root module.
    pub module: PluginMod_Ref,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin").field("path", &self.path).field("info", &self.info).finish_non_exhaustive()
    }
}

fn refuse(path: &Path, reason: impl Into<String>) -> HostError {
    HostError::Load { path: path.to_owned(), reason: reason.into() }
}

/// The name to dlopen: the checked open file itself through `/proc/self/fd`, so the file cannot
/// be swapped between the checks and the mapping; its real path where `/proc` is not mounted
/// (the trust rules then still guarantee that only root or this user could swap it).
fn load_path(opened: &trust::Opened) -> PathBuf {
    let fds = Path::new("/proc/self/fd");
    if fds.is_dir() {
        fds.join(opened.file.as_raw_fd().to_string())
    } else {
        tracing::debug!(path = %opened.real.display(), "no /proc/self/fd: loading by path");
        opened.real.clone()
    }
}

/// Same ABI major as the host (abi_stable would say so too, but only after its layout check,
/// whose message is less telling).
fn check_version(path: &Path, plugin_version: &str) -> Result<()> {
    let host_version = <PluginMod_Ref as RootModule>::VERSION_STRINGS.version.as_str();
    let major = |v: &str| v.split('.').next().unwrap_or("").to_owned();
    if major(plugin_version) != major(host_version) {
        return Err(refuse(
            path,
            format!(
                "ABI version mismatch: host implements virtplug-plugin-api {host_version}, plugin was built against {plugin_version}"
            ),
        ));
    }
    Ok(())
}

/// Summarises abi_stable's (very long) error in one line.
fn summarize(err: &LibraryError) -> String {
    match err {
        LibraryError::OpenError { err, .. } => {
            let text = err.to_string();
            let last = text.rsplit(": ").next().unwrap_or(&text).trim().to_owned();
            format!("not a loadable shared library ({last})")
        }
        LibraryError::GetSymbolError { .. } => {
            format!("not a virtplug plugin (no root module symbol {ROOT_MODULE_SYMBOL})")
        }
        LibraryError::InvalidAbiHeader(found) => format!(
            "built with an incompatible abi_stable (abi_major {} abi_minor {}; the host uses 0.11)",
            found.abi_major, found.abi_minor
        ),
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "ABI version mismatch: host implements virtplug-plugin-api {expected_version}, plugin was built against {actual_version}"
        ),
        LibraryError::ParseVersionError(e) => format!("unreadable ABI version: {e}"),
        LibraryError::RootModule { err, .. } => format!("the plugin's root module failed to initialise: {err}"),
        LibraryError::AbiInstability(_) => "ABI layout mismatch".to_owned(),
        LibraryError::InvalidCAbi { .. } => "C ABI self-test failed".to_owned(),
        LibraryError::Many(errors) => errors.iter().map(summarize).collect::<Vec<_>>().join("; "),
    }
}

/// Loads and checks one plugin file.
///
/// Checks, in order: the file, its directory and every parent pass the ownership and permission
/// rules of [`trust`] (symbolic links resolved) and the file is opened once; its ELF headers fit
/// its size ([`elf_check`]); dlopen of that open file; the root module symbol; abi_stable's
/// header; the ABI crate version (same major); the root module's layout, accepted when the
/// plugin is newer *or* older than the host (methods appended later have default bodies); the
/// plugin's own `info()` ABI major.
pub fn load_plugin(path: &Path) -> Result<LoadedPlugin> {
    let opened = trust::open_trusted(path).map_err(|reason| refuse(path, reason))?;
    elf_check::check(&opened.file, opened.len).map_err(|reason| refuse(path, reason))?;
    let header = lib_header_from_path(&load_path(&opened));
    // The dynamic loader knows the library by the name it was opened under; were the descriptor
    // closed, its number (so that name) could come back for another file, and dlopen would
    // hand out the library already loaded under it. Libraries are never unloaded, so neither is
    // the descriptor (one per plugin file seen; it also lets a backtrace read the file's symbols).
    let _kept_open = opened.file.into_raw_fd();
    let header = header.map_err(|e| {
        tracing::debug!(path = %path.display(), real = %opened.real.display(), error = %e, "plugin refused");
        refuse(path, summarize(&e))
    })?;
    check_version(path, header.version_strings().version.as_str())?;
    let ours = <PluginMod_Ref as StableAbi>::LAYOUT;
    let Some(theirs) = header.layout() else {
        return Err(refuse(path, "the plugin exports no layout to check"));
    };
    if let Err(newer) = check_layout_compatibility(ours, theirs)
        && let Err(older) = check_layout_compatibility(theirs, ours)
    {
        tracing::debug!(path = %path.display(), newer = %newer, older = %older, "ABI layout mismatch");
        // A plugin older than the host always fails the host→plugin check with field-count
        // mismatches on the prefix types it predates; its real break is then in the reverse check.
        let only_counts =
            newer.errors.iter().all(|e| e.errs.iter().all(|x| matches!(x, AbiInstability::FieldCountMismatch(_))));
        let telling = if only_counts { &older } else { &newer };
        let first = telling
            .errors
            .iter()
            .flat_map(|e| {
                let place = e.stack_trace.last().map(|s| s.expected.to_string()).unwrap_or_default();
                e.errs.iter().map(move |err| format!("{err:?} at {place}"))
            })
            .next()
            .unwrap_or_else(|| "layout differs".to_owned());
        let first = first.split_whitespace().collect::<Vec<_>>().join(" ");
        return Err(refuse(path, format!("ABI layout mismatch: {first}")));
    }
    // SAFETY: the layout of the plugin's root module was checked just above against ours, in
    // the direction that applies (plugin newer: its prefix is a superset; plugin older: ours is,
    // and the fields it lacks are reached only through accessors that return `None` or panic
    // inside the host). `init_root_module_with_unchecked_layout` still checks the version.
    let module = unsafe { header.init_root_module_with_unchecked_layout::<PluginMod_Ref>() }
        .map_err(|e| refuse(path, summarize(&e)))?;
    let info = (module.info())();
    if info.abi_major != ABI_MAJOR {
        return Err(refuse(
            path,
            format!("plugin reports ABI {}.{}, host implements {ABI_MAJOR}.x", info.abi_major, info.abi_minor),
        ));
    }
    Ok(LoadedPlugin { path: path.to_owned(), info, module })
}
