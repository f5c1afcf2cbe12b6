//! virtplug's fuzz targets: one plain `fn target(data: &[u8])` per parser that reads untrusted
//! input (snapshot XML, domain XML, hierarchy bundles, the daemon's JSON request bodies and libvirt RPC
//! packets) and a
//! dump -> redefine round trip.
//!
//! A target returns normally for every input, valid or not (an `Err` from the parser is a correct
//! answer); a panic or a stack overflow is a bug. Targets assert only properties that must hold
//! for every input (the round trips), never particular error texts.
//!
//! The same functions are driven by the stable replay/mutation driver (`tests/replay.rs`, run by
//! `cargo test -p virtplug-fuzz` and so in CI) and by the optional cargo-fuzz layout in `fuzz/`
//! (libFuzzer, nightly, local only). This crate holds no product logic and is never a dependency.

use std::borrow::Cow;

pub mod bundle;
pub mod domain_xml;
pub mod libvirt_packet;
pub mod mutate;
pub mod request;
pub mod roundtrip;
pub mod snapshot_xml;

/// A named fuzz target; `name` is also its directory under `corpus/` and `regressions/`.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Directory name and the name the drivers accept.
    pub name: &'static str,
    /// The target function.
    pub run: fn(&[u8]),
}

/// Every target, in the order the driver runs them.
pub const TARGETS: &[Target] = &[
    Target { name: "snapshot_xml", run: snapshot_xml::target },
    Target { name: "domain_xml", run: domain_xml::target },
    Target { name: "bundle", run: bundle::target },
    Target { name: "request", run: request::target },
    Target { name: "roundtrip", run: roundtrip::target },
    Target { name: "libvirt_packet", run: libvirt_packet::target },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// The input as the text a parser sees. The parsers take `&str` because every caller has one
/// (the CLI reads files as UTF-8, the daemon gets strings out of JSON); invalid UTF-8 becomes
/// U+FFFD rather than being thrown away, so those inputs still exercise the parser.
pub fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}
