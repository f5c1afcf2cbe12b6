//! A plugin's log records reach this process's tracing with the target `plugin::<name>`, at the
//! plugin's level, with its module as a field: the mock logs each committed change at debug.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed expectation is the failure")]

use std::sync::{Arc, Mutex};

use tracing::{
    Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
};
use virtplug_test_support::MOCK;

use super::{EventSlot, Services};
use crate::{Connection, Registry, load_plugin};
use virtplug_plugin_api::HostServices;

/// (target, level, message, module) of every event seen.
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

struct Capture(Seen);

#[derive(Default)]
struct Fields {
    message: String,
    module: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "module" => self.module = value.to_owned(),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        if !meta.target().starts_with("plugin::") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.lock().unwrap().push((
            meta.target().to_owned(),
            meta.level().to_string(),
            fields.message,
            fields.module,
        ));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn plugin_records_go_through_tracing_with_the_plugins_target() {
    let seen = Seen::default();
    let mut registry = Registry::default();
    registry.add(load_plugin(&MOCK.built()).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("mock://{}", dir.path().display());
    tracing::subscriber::with_default(Capture(Arc::clone(&seen)), || {
        let conn = Connection::open(&registry, &uri, false).unwrap();
        conn.snapshot_create("test", "<domainsnapshot><name>s1</name></domainsnapshot>", 0).unwrap();
        conn.domain_suspend("test").unwrap();
        // A refused change logs nothing.
        conn.domain_suspend("test").unwrap_err();
        conn.snapshot_list("test", 0).unwrap();
    });
    let line = |m: &str| {
        ("plugin::mock".to_owned(), "DEBUG".to_owned(), m.to_owned(), "virtplug_plugin_mock::driver".to_owned())
    };
    assert_eq!(*seen.lock().unwrap(), [line("create snapshot s1 of test (flags 0x0)"), line("suspend domain test")]);
}

#[test]
fn levels_map_to_tracings_and_unknown_finer_levels_are_trace() {
    use super::tracing_level;
    use tracing::Level;
    let got: Vec<Level> = (0..=7).map(tracing_level).collect();
    assert_eq!(
        got,
        [Level::TRACE, Level::ERROR, Level::WARN, Level::INFO, Level::DEBUG, Level::TRACE, Level::TRACE, Level::TRACE]
    );
}

#[test]
fn plugins_are_told_whether_anyone_reads_their_events() {
    let events = Arc::new(EventSlot::default());
    let services =
        Services { plugin: "p".into(), uri: "p:///".into(), events: Arc::clone(&events), progress: Arc::default() };
    // A CLI command: no sink, so a plugin starts no watcher.
    assert!(!services.wants_events());
    events.set(Some(Arc::new(|_| {})));
    assert!(services.wants_events());
}
