//! Loading only what one URI needs (issue 19, cold start): `Registry::discover_for_scheme`
//! loads the files named for the scheme first, then the others in discovery order until one
//! claims it, and gives the scheme the same plugin, and an unknown scheme the same refusals, as
//! loading every plugin.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed expectation is the failure")]

use virtplug_host::{PluginDirs, Registry};
use virtplug_test_support::fixture;

fn names(registry: &Registry) -> Vec<String> {
    registry.plugins().iter().map(|p| p.info.name.to_string()).collect()
}

#[test]
fn a_scheme_loads_the_plugins_up_to_the_one_that_claims_it() {
    let dir = tempfile::tempdir().unwrap();
    // Discovery order is by file name: a, b, c (c is refused: not a plugin at all).
    std::fs::copy(fixture("panicky").built(), dir.path().join("liba_panicky.so")).unwrap();
    std::fs::copy(fixture("lying").built(), dir.path().join("libb_lying.so")).unwrap();
    std::fs::write(dir.path().join("libc_broken.so"), b"not an ELF file").unwrap();
    let dirs = PluginDirs { dirs: vec![dir.path().to_owned()], beside_executable: Vec::new() };
    let all = Registry::discover(&dirs);
    assert_eq!(all.plugins().len(), 2);
    assert_eq!(all.refused().len(), 1);

    let first = Registry::discover_for_scheme(&dirs, "panicky");
    assert_eq!(names(&first), names(&all)[..1]);
    assert!(first.refused().is_empty());
    assert!(first.for_scheme("panicky").is_some());

    let second = Registry::discover_for_scheme(&dirs, "lying");
    assert_eq!(names(&second), names(&all));
    assert!(second.refused().is_empty());
    assert!(second.for_scheme("lying").is_some());

    // No plugin claims it: everything was tried, as `discover` does, refusals included.
    let none = Registry::discover_for_scheme(&dirs, "nosuch");
    assert_eq!(names(&none), names(&all));
    let text = |r: &Registry| r.refused().iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(text(&none), text(&all));
    assert!(none.for_scheme("nosuch").is_none());
}

#[test]
fn the_file_named_for_a_scheme_is_loaded_first_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    // Two files claim `panicky`; the one named for it sorts last.
    std::fs::copy(fixture("panicky").built(), dir.path().join("liba_panicky.so")).unwrap();
    std::fs::copy(fixture("lying").built(), dir.path().join("libb_lying.so")).unwrap();
    std::fs::copy(fixture("panicky").built(), dir.path().join("libpanicky.so")).unwrap();
    // Named for `lying` but claims `panicky`: its name does not make it the holder of `lying`.
    std::fs::copy(fixture("panicky").built(), dir.path().join("liblying.so")).unwrap();
    let dirs = PluginDirs { dirs: vec![dir.path().to_owned()], beside_executable: Vec::new() };
    let file = |r: &Registry, scheme: &str| {
        r.for_scheme(scheme).map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
    };

    let all = Registry::discover(&dirs);
    assert_eq!(all.plugins().len(), 4);
    assert_eq!(file(&all, "panicky").as_deref(), Some("libpanicky.so"));
    assert_eq!(file(&all, "lying").as_deref(), Some("libb_lying.so"));

    // Only the named file is loaded, and it is the plugin `discover` gives the scheme.
    let panicky = Registry::discover_for_scheme(&dirs, "panicky");
    assert_eq!(panicky.plugins().len(), 1);
    assert_eq!(file(&panicky, "panicky").as_deref(), Some("libpanicky.so"));

    // The file named `lying` is tried first and does not claim it; the others follow in
    // discovery order until one does.
    let lying = Registry::discover_for_scheme(&dirs, "lying");
    let loaded: Vec<String> =
        lying.plugins().iter().map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(loaded, ["liblying.so", "liba_panicky.so", "libb_lying.so"]);
    assert_eq!(file(&lying, "lying"), file(&all, "lying"));
}
