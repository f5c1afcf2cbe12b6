//! Dump -> redefine: a snapshot that parses in redefine mode, dumped as secure XML, must redefine
//! again (parse in redefine mode) and dump to the same bytes. The same for the driver's internal
//! metadata form (redefine + internal, `<active>` kept). This is the founding replication
//! workflow: what one host dumps, another host redefines.

use virtplug_model::xml::{self, FormatFlags, ParseFlags};

fn dump(def: &xml::SnapshotDef, internal: bool) -> String {
    // The domain's uuid as the dumping driver would pass it: the one the snapshot names.
    let flags = FormatFlags { secure: true, internal, current: internal && def.active == Some(true) };
    xml::format(def, def.legacy_uuid.as_deref(), flags)
}

/// The fuzz target.
pub fn target(data: &[u8]) {
    let text = crate::text(data);
    for internal in [false, true] {
        let mode = ParseFlags { redefine: true, internal, offline: false };
        let Ok(def) = xml::parse(&text, mode) else { continue };
        let first = dump(&def, internal);
        let again = match xml::parse(&first, mode) {
            Ok(d) => d,
            Err(e) => panic!("a dumped snapshot does not redefine (internal={internal}): {e}\n--- dump\n{first}"),
        };
        let second = dump(&again, internal);
        assert!(
            first == second,
            "dump -> redefine -> dump changed the snapshot (internal={internal})\n--- first\n{first}\n--- second\n{second}"
        );
    }
}
