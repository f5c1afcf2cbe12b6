//! The daemon's request decoding: every JSON body type it deserialises (the `virtplug-wire` types,
//! reached as `virtplug_host::remote::wire`, read by axum's `Json` extractor, i.e.
//! `serde_json::from_slice`), followed by the validation the host
//! runs on a decoded body before any plugin sees it (the XML parse of `snapshot_create`,
//! `snapshot_import` and `define`).

use serde::de::DeserializeOwned;
use virtplug_host::remote::wire::{CreateRequest, DefineRequest, FlagsRequest, ImportRequest, MigrationRequest};
use virtplug_model::{
    domain::DomainDef,
    flags::snapshot_create,
    xml::{self, ParseFlags},
};

fn decode<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    serde_json::from_slice(data).ok()
}

/// The host's step 4 of `snapshot_create`: the parse mode the flags ask for.
fn parse_mode(flags: u32) -> ParseFlags {
    ParseFlags {
        redefine: flags & snapshot_create::REDEFINE != 0,
        internal: false,
        offline: flags & snapshot_create::DISK_ONLY != 0,
    }
}

/// The fuzz target.
pub fn target(data: &[u8]) {
    if let Some(r) = decode::<CreateRequest>(data) {
        let _ = xml::parse(&r.xml, parse_mode(r.flags));
    }
    if let Some(r) = decode::<ImportRequest>(data) {
        for x in &r.xmls {
            let _ = xml::parse(x, parse_mode(snapshot_create::REDEFINE));
        }
    }
    if let Some(r) = decode::<DefineRequest>(data) {
        let _ = DomainDef::parse(&r.xml);
    }
    let _ = decode::<FlagsRequest>(data);
    let _ = decode::<MigrationRequest>(data);
    // A generic body (what a handler's error path may echo).
    let _ = decode::<serde_json::Value>(data);
}
