//! `<domain>` parsing (`DomainDef::parse`), what `define` runs on a client's document.

use virtplug_model::domain::{self, DomainDef};

/// The fuzz target.
pub fn target(data: &[u8]) {
    let text = crate::text(data);
    if let Ok(def) = DomainDef::parse(&text) {
        // A parsed definition's uuid is already normalised: normalising again must agree.
        assert_eq!(domain::normalize_uuid(&def.uuid).as_deref(), Some(def.uuid.as_str()), "uuid not normalised");
    }
    let _ = domain::normalize_uuid(&text);
}
