//! Plugin discovery and the URI-scheme → plugin registry. Knows no driver by name.

use std::{
    collections::{BTreeMap, btree_map::Entry},
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    error::{HostError, Result},
    loader::{LoadedPlugin, load_plugin},
    services::{EventSink, EventSlot},
};

/// The file-name prefix of the plugins the host finds beside its executable.
pub const PLUGIN_PREFIX: &str = "libvirtplug_plugin_";

/// The file-name prefix of the project's test fixtures (plugins that lie, panic or hang on
/// purpose): never loaded from a directory, only by path from their tests.
pub const FIXTURE_PREFIX: &str = "libvirtplug_fixture_";

/// Where plugins are looked for, in order.
#[derive(Debug, Clone, Default)]
pub struct PluginDirs {
    /// Plugin directories: every `*.so` in them is loaded (whatever its name; a file without
    /// the root module is refused and listed by `virtplug plugins`), except test fixtures
    /// ([`FIXTURE_PREFIX`]).
    pub dirs: Vec<PathBuf>,
    /// Directories where only `libvirtplug_plugin_*.so` files are considered (the folder of
    /// the executable, which also holds other build products).
    pub beside_executable: Vec<PathBuf>,
}

impl PluginDirs {
    /// The standard search path:
    /// - `VIRTPLUG_PLUGIN_DIR` (colon-separated) when set: only those, each must exist;
    /// - else the `plugin_dir = …` lines of the config file (`VIRTPLUG_CONFIG`, else
    ///   `$XDG_CONFIG_HOME/virtplug/virtplug.conf` or `~/.config/virtplug/virtplug.conf`,
    ///   else `/etc/virtplug/virtplug.conf`), then the plugin directories of the executable
    ///   (`<exe dir>/plugins/` and the install layout's `<exe dir>/../lib/virtplug/plugins/`),
    ///   then the `libvirtplug_plugin_*.so` files of the executable's own folder.
    pub fn from_env() -> Result<Self> {
        if let Some(value) = std::env::var_os("VIRTPLUG_PLUGIN_DIR") {
            let dirs: Vec<PathBuf> = std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()).collect();
            for dir in &dirs {
                if !dir.is_dir() {
                    return Err(HostError::Config {
                        message: format!(
                            "plugin directory {} (from VIRTPLUG_PLUGIN_DIR) does not exist",
                            dir.display()
                        ),
                    });
                }
            }
            return Ok(Self { dirs, beside_executable: Vec::new() });
        }
        let mut dirs = Vec::new();
        if let Some(config) = config_file() {
            dirs = read_config(&config)?;
        }
        let mut beside_executable = Vec::new();
        if let Some(exe_dir) = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_owned)) {
            // `cargo xtask install --prefix DIR` puts the programs in DIR/bin and the plugins in
            // DIR/lib/virtplug/plugins.
            let installed = exe_dir.parent().map(|prefix| prefix.join("lib/virtplug/plugins"));
            for dir in [Some(exe_dir.join("plugins")), installed].into_iter().flatten() {
                if dir.is_dir() {
                    dirs.push(dir);
                }
            }
            beside_executable.push(exe_dir.clone());
            // `cargo test` binaries live in target/<profile>/deps; plugins one level up.
            if exe_dir.ends_with("deps")
                && let Some(up) = exe_dir.parent()
            {
                beside_executable.push(up.to_owned());
            }
        }
        Ok(Self { dirs, beside_executable })
    }
}

fn config_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VIRTPLUG_CONFIG") {
        return Some(PathBuf::from(p));
    }
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("virtplug/virtplug.conf"));
    [user, Some(PathBuf::from("/etc/virtplug/virtplug.conf"))].into_iter().flatten().find(|p| p.is_file())
}

/// Reads `plugin_dir = /path` lines; `#` starts a comment. Unknown keys are refused so that a
/// typo is not silently ignored.
fn read_config(path: &Path) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| HostError::Config { message: format!("cannot read config file {}: {e}", path.display()) })?;
    let mut dirs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once('=').map(|(k, v)| (k.trim(), v.trim().trim_matches('"'))) {
            Some(("plugin_dir", dir)) => {
                let dir = PathBuf::from(dir);
                if !dir.is_dir() {
                    return Err(HostError::Config {
                        message: format!(
                            "plugin directory {} (from {}:{}) does not exist",
                            dir.display(),
                            path.display(),
                            n + 1
                        ),
                    });
                }
                dirs.push(dir);
            }
            _ => {
                return Err(HostError::Config {
                    message: format!("config file {}:{}: unknown setting '{line}'", path.display(), n + 1),
                });
            }
        }
    }
    Ok(dirs)
}

/// The loaded plugins, keyed by URI scheme.
#[derive(Debug, Default)]
pub struct Registry {
    plugins: Vec<Arc<LoadedPlugin>>,
    by_scheme: BTreeMap<String, Arc<LoadedPlugin>>,
    refused: Vec<HostError>,
    /// Where plugin events go (shared with every connection opened through this registry).
    events: Arc<EventSlot>,
}

impl Registry {
    /// Loads every plugin in `dirs`. A file that is refused does not stop the others; it is
    /// kept in [`Registry::refused`]. A scheme goes to the first plugin (in discovery order)
    /// whose file is named for it and claims it, else to the first plugin that claims it
    /// ([`Registry::add`]).
    pub fn discover(dirs: &PluginDirs) -> Self {
        Self::discover_until(candidates(dirs), |_| false)
    }

    /// Loads only what a command that opens one URI needs: the plugin files of `dirs` named for
    /// `scheme` (`libvirtplug_plugin_<scheme>.so` or `lib<scheme>.so`; the scheme is `qemu`
    /// for `qemu:///system` and `qemu+unix:///system`) first, then the others in
    /// [`Registry::discover`]'s order, until one claims it. The plugin found is the one
    /// [`Registry::discover`] would give the scheme; when none claims it, every plugin was
    /// loaded and refused files are listed as with [`Registry::discover`].
    pub fn discover_for_scheme(dirs: &PluginDirs, scheme: &str) -> Self {
        let (mut order, others): (Vec<PathBuf>, Vec<PathBuf>) =
            candidates(dirs).into_iter().partition(|path| named_for(path, scheme));
        order.extend(others);
        Self::discover_until(order, |registry| registry.for_scheme(scheme).is_some())
    }

    /// [`Registry::discover_for_scheme`] on the standard search path, for the driver part of
    /// `uri`'s scheme (the text before `:`, then before `+`); a URI without a scheme loads
    /// every plugin.
    pub fn from_env_for_uri(uri: &str) -> Result<Self> {
        let dirs = PluginDirs::from_env()?;
        Ok(match uri.split_once(':') {
            Some((scheme, _)) => Self::discover_for_scheme(&dirs, scheme.split('+').next().unwrap_or(scheme)),
            None => Self::discover(&dirs),
        })
    }

    /// Loads the plugin files of `candidates` in turn, stopping once `done` holds.
    fn discover_until(candidates: Vec<PathBuf>, done: impl Fn(&Self) -> bool) -> Self {
        let mut registry = Self::default();
        let mut seen = std::collections::BTreeSet::new();
        for path in candidates {
            let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if !seen.insert(key) {
                continue;
            }
            match load_plugin(&path) {
                Ok(plugin) => registry.add(plugin),
                Err(e) => {
                    tracing::warn!("{}", one_line(&e.to_string()));
                    registry.refused.push(e);
                }
            }
            if done(&registry) {
                break;
            }
        }
        registry
    }

    /// The standard search path ([`PluginDirs::from_env`]).
    pub fn from_env() -> Result<Self> {
        Ok(Self::discover(&PluginDirs::from_env()?))
    }

    /// Adds one loaded plugin. It gets each scheme it claims that no plugin holds yet, and
    /// takes one from a plugin whose file is not named for it when its own file is: so a
    /// command that loads the file named for its scheme first ([`Registry::discover_for_scheme`])
    /// gets the plugin that loading everything would give it.
    pub fn add(&mut self, plugin: LoadedPlugin) {
        let plugin = Arc::new(plugin);
        for scheme in plugin.info.schemes.iter() {
            match self.by_scheme.entry(scheme.to_string()) {
                Entry::Vacant(slot) => {
                    slot.insert(Arc::clone(&plugin));
                }
                Entry::Occupied(mut slot) => {
                    if named_for(&plugin.path, scheme) && !named_for(&slot.get().path, scheme) {
                        slot.insert(Arc::clone(&plugin));
                    }
                }
            }
        }
        self.plugins.push(plugin);
    }

    /// Every loaded plugin, in discovery order.
    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    /// Files that were refused, each with its one-line reason.
    pub fn refused(&self) -> &[HostError] {
        &self.refused
    }

    /// The refusal of a plugin file whose name says it serves `scheme`
    /// (`libvirtplug_plugin_<scheme>.so` or `lib<scheme>.so`, `-` written `_`): what a command
    /// that found no plugin for the scheme reports.
    pub fn refused_for_scheme(&self, scheme: &str) -> Option<&HostError> {
        self.refused.iter().find(|e| match e {
            HostError::Load { path, .. } => named_for(path, scheme),
            _ => false,
        })
    }

    /// Sets (or with `None` removes) the subscriber of the events that plugins report through
    /// connections opened from this registry, including connections opened before this call.
    /// The sink runs on the plugin's thread: it must only hand the event on.
    pub fn set_event_sink(&self, sink: Option<EventSink>) {
        self.events.set(sink);
    }

    pub(crate) fn event_slot(&self) -> &Arc<EventSlot> {
        &self.events
    }

    /// The plugin for a URI scheme (the part before `:` or `+`).
    pub fn for_scheme(&self, scheme: &str) -> Option<&Arc<LoadedPlugin>> {
        self.by_scheme.get(scheme)
    }
}

/// A refusal as one log line: control characters (a newline in a file name) shown escaped.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// Whether a plugin file's name says it serves `scheme`: `libvirtplug_plugin_<scheme>.so` or
/// `lib<scheme>.so`, a `-` in the scheme written `_`.
fn named_for(path: &Path, scheme: &str) -> bool {
    let ident = scheme.replace('-', "_");
    path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".so")).is_some_and(|stem| {
        stem.strip_prefix(PLUGIN_PREFIX) == Some(ident.as_str()) || stem.strip_prefix("lib") == Some(ident.as_str())
    })
}

/// Every plugin file of the search path, in discovery order: the plugin directories, each
/// sorted by name, then `libvirtplug_plugin_*.so` beside the executable.
fn candidates(dirs: &PluginDirs) -> Vec<PathBuf> {
    dirs.dirs
        .iter()
        .flat_map(|d| so_files(d, |name| !name.starts_with(FIXTURE_PREFIX)))
        .chain(dirs.beside_executable.iter().flat_map(|d| so_files(d, |name| name.starts_with(PLUGIN_PREFIX))))
        .collect()
}

fn so_files(dir: &Path, accept: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "so") && p.file_name().and_then(|n| n.to_str()).is_some_and(&accept)
        })
        .collect();
    files.sort();
    files
}
