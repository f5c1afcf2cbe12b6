//! Private plugin folders: the loader refuses group- or world-writable plugin folders, and a
//! test wants only the plugins it names (not every library of target/<profile>).

use std::{os::unix::fs::PermissionsExt, path::Path};

use crate::Artifact;

/// Creates `dir` (mode 0700) holding copies of `plugins` (mode 0755), and returns it. Panics
/// when a plugin is not built: check with [`Artifact::require`] first where skipping is allowed.
///
/// Safe for parallel tests sharing one folder: each copy lands under a unique name first and is
/// renamed into place, so a loader never maps a half-written file.
pub fn private_plugin_dir(dir: &Path, plugins: &[&Artifact]) -> std::path::PathBuf {
    let fail = |what: &str, e: std::io::Error| -> ! { panic!("{what} {}: {e}", dir.display()) };
    std::fs::create_dir_all(dir).unwrap_or_else(|e| fail("creating", e));
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap_or_else(|e| fail("chmod 0700", e));
    for plugin in plugins {
        let target = dir.join(&*plugin.file);
        if target.is_file() {
            continue;
        }
        let tmp = dir.join(format!(".{}-{}-{:?}", plugin.file, std::process::id(), std::thread::current().id()));
        std::fs::copy(plugin.built(), &tmp).unwrap_or_else(|e| fail(&format!("copying {} into", plugin.file), e));
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| fail("chmod 0755 in", e));
        std::fs::rename(&tmp, &target).unwrap_or_else(|e| fail("renaming a plugin copy in", e));
    }
    dir.to_owned()
}
