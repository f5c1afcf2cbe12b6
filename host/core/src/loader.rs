//! Loading one plugin file: dlopen through abi_stable, our own layout check accepted in either
//! direction, explicit initialisation, and a one-line reason when a file is refused.
//!
//! The one `unsafe` call of the host lives in [`load_plugin`].

use std::{
    os::unix::fs::PermissionsExt,
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

/// Refuses files that anyone could have replaced: loading a plugin runs its code.
fn check_trusted(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| refuse(path, format!("cannot read file: {e}")))?;
    if !meta.is_file() {
        return Err(refuse(path, "not a regular file"));
    }
    if meta.permissions().mode() & 0o002 != 0 {
        return Err(refuse(path, "file is world-writable"));
    }
    if let Some(dir) = path.parent()
        && let Ok(dmeta) = std::fs::metadata(dir)
    {
        // A sticky world-writable directory (like /tmp) still protects files of other users.
        let mode = dmeta.permissions().mode();
        if mode & 0o002 != 0 && mode & 0o1000 == 0 {
            return Err(refuse(path, "directory is world-writable"));
        }
    }
    Ok(())
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
/// Checks, in order: the file is a regular file nobody else can write; dlopen; the root module
/// symbol; abi_stable's header; the ABI crate version (same major); the root module's layout,
/// accepted when the plugin is newer *or* older than the host (methods appended later have
/// default bodies); the plugin's own `info()` ABI major.
pub fn load_plugin(path: &Path) -> Result<LoadedPlugin> {
    check_trusted(path)?;
    let header = lib_header_from_path(path).map_err(|e| {
        tracing::debug!(path = %path.display(), error = %e, "plugin refused");
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
