//! `<domainsnapshot>` parsing in every mode the host and the plugins use, and formatting of
//! whatever parses: plain create (with and without DISK_ONLY's offline rule), redefine, and the
//! driver's internal metadata form; plus the schema check and the secret stripper, which see the
//! same untrusted text.

use virtplug_model::xml::{self, FormatFlags, ParseFlags};

/// The parse modes: plain create, create `--disk-only` (offline), redefine, redefine from the
/// driver's own metadata files (internal, reads `<active>`).
pub const MODES: [ParseFlags; 4] = [
    ParseFlags { redefine: false, internal: false, offline: false },
    ParseFlags { redefine: false, internal: false, offline: true },
    ParseFlags { redefine: true, internal: false, offline: false },
    ParseFlags { redefine: true, internal: true, offline: false },
];

/// The fuzz target.
pub fn target(data: &[u8]) {
    let text = crate::text(data);
    for mode in MODES {
        let parsed = xml::parse(&text, mode);
        // The parser skips an embedded document whose bytes it has verified before on this
        // thread (earlier inputs, earlier modes): a thread that has verified nothing must agree.
        let cold = std::thread::scope(|s| s.spawn(|| xml::parse(&text, mode)).join());
        assert!(cold.is_ok_and(|cold| cold == parsed), "a parse differs after earlier parses on the thread");
        let Ok(mut def) = parsed else { continue };
        if !mode.redefine {
            // What a plain create does next (libvirt's post-parse defaults).
            def.fill_defaults(1_555_419_243);
        }
        let _ = (def.is_external(), def.is_disk_only(), def.is_online());
        let uuid = def.legacy_uuid.clone();
        for secure in [false, true] {
            let flags = FormatFlags { secure, internal: mode.internal, current: def.active == Some(true) };
            let _ = xml::format(&def, uuid.as_deref(), flags);
        }
    }
    let _ = xml::validate_schema(&text);
    let _ = xml::strip_secrets(&text);
}
