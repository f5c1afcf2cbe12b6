//! Plugin directories from the environment and the config file. One test in its own binary,
//! because it changes the process environment.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed expectation is the failure")]

use std::path::Path;

use virtplug_host::{Connection, PluginDirs, Registry, codes};
use virtplug_test_support::fixture;

fn set(key: &str, value: Option<&Path>) {
    // SAFETY: this binary holds a single test, so no other thread reads the environment.
    unsafe {
        match value {
            Some(v) => std::env::set_var(key, v),
            None => std::env::remove_var(key),
        }
    }
}

#[test]
fn plugin_dirs_come_from_the_environment_or_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(fixture("panicky").built(), plugins.join("libpanicky.so")).unwrap();

    // VIRTPLUG_PLUGIN_DIR: only those directories, each must exist.
    set("VIRTPLUG_PLUGIN_DIR", Some(&plugins));
    let registry = Registry::from_env().unwrap();
    assert_eq!(registry.plugins().len(), 1);
    Connection::open(&registry, "panicky:///", true).unwrap();
    let missing = dir.path().join("nowhere");
    set("VIRTPLUG_PLUGIN_DIR", Some(&missing));
    let e = PluginDirs::from_env().unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (
            codes::INTERNAL_ERROR,
            format!("plugin directory {} (from VIRTPLUG_PLUGIN_DIR) does not exist", missing.display())
        )
    );
    set("VIRTPLUG_PLUGIN_DIR", None);

    // The config file's plugin_dir lines, comments allowed; typos refused with file and line.
    let config = dir.path().join("virtplug.conf");
    std::fs::write(&config, format!("# plugins of this host\nplugin_dir = \"{}\"\n", plugins.display())).unwrap();
    set("VIRTPLUG_CONFIG", Some(&config));
    let dirs = PluginDirs::from_env().unwrap();
    assert_eq!(dirs.dirs, vec![plugins.clone()]);
    assert!(Registry::discover(&dirs).for_scheme("panicky").is_some());

    std::fs::write(&config, "plugin_dri = /usr/lib\n").unwrap();
    let e = PluginDirs::from_env().unwrap_err();
    assert_eq!(e.to_string(), format!("config file {}:1: unknown setting 'plugin_dri = /usr/lib'", config.display()));

    std::fs::write(&config, format!("plugin_dir = {}\n", missing.display())).unwrap();
    let e = PluginDirs::from_env().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("plugin directory {} (from {}:1) does not exist", missing.display(), config.display())
    );

    // A world-writable plugin file is refused: loading a plugin runs its code.
    std::fs::write(&config, format!("plugin_dir = {}\n", plugins.display())).unwrap();
    let so = plugins.join("libpanicky.so");
    std::fs::set_permissions(&so, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let registry = Registry::from_env().unwrap();
    assert!(registry.for_scheme("panicky").is_none());
    let refused: Vec<String> = registry.refused().iter().map(ToString::to_string).collect();
    assert!(
        refused.contains(&format!(
            "cannot load plugin {}: group- and world-writable (mode 0666); a plugin must not be writable by group or others",
            so.display()
        )),
        "{refused:?}"
    );
    set("VIRTPLUG_CONFIG", None);
}
