//! Where `mock:///default` keeps its state. One test in its own binary: it changes the
//! process environment.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::path::PathBuf;

use virtplug_plugin_mock::{MockPlugin, state_dir};
use virtplug_plugin_sdk::Plugin;

#[test]
fn default_uri_state_dir_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let explicit = dir.path().join("explicit");
    // SAFETY: this binary holds this single test, so no other thread reads the environment.
    unsafe { std::env::set_var("VIRTPLUG_MOCK_STATE_DIR", &explicit) };
    assert_eq!(state_dir("mock:///default").unwrap(), explicit);
    let d = MockPlugin::open("mock:///default", false).unwrap();
    assert_eq!(d.domain_list().unwrap().len(), 1);
    assert!(explicit.join("mock.db").is_file());

    // SAFETY: as above.
    unsafe {
        std::env::remove_var("VIRTPLUG_MOCK_STATE_DIR");
        std::env::set_var("XDG_STATE_HOME", dir.path().join("xdg"));
    }
    assert_eq!(state_dir("mock:///default").unwrap(), dir.path().join("xdg/virtplug/mock/default"));

    // SAFETY: as above.
    unsafe {
        std::env::remove_var("XDG_STATE_HOME");
        std::env::set_var("HOME", dir.path().join("home"));
    }
    assert_eq!(state_dir("mock:///default").unwrap(), dir.path().join("home/.local/state/virtplug/mock/default"));
    assert_eq!(state_dir("mock:///tmp/hostA").unwrap(), PathBuf::from("/tmp/hostA"));

    // The durability setting: normal by default, full on request, anything else refused.
    let synced = dir.path().join("synced");
    let uri = format!("mock://{}", synced.display());
    // SAFETY: as above.
    unsafe { std::env::set_var("VIRTPLUG_MOCK_SYNC", "full") };
    assert_eq!(MockPlugin::open(&uri, false).unwrap().domain_list().unwrap().len(), 1);
    // SAFETY: as above.
    unsafe { std::env::set_var("VIRTPLUG_MOCK_SYNC", "sometimes") };
    let e = MockPlugin::open(&uri, false).err().unwrap();
    assert_eq!((e.code, e.message.as_str()), (5, "VIRTPLUG_MOCK_SYNC must be 'normal' or 'full', not 'sometimes'"));
    // SAFETY: as above.
    unsafe { std::env::remove_var("VIRTPLUG_MOCK_SYNC") };
}
