//! The hierarchy bundle reader (`Bundle::parse`, what `snapshot-import` and a migration read),
//! and the export -> import round trip of every bundle it accepts.
//!
//! A mutated bundle almost never keeps a valid checksum, so each input is tried twice: as given
//! (the checksum and framing checks) and re-sealed with a correct checksum (everything behind
//! them: the XML, the snapshots, the tree rules).

use sha2::{Digest, Sha256};
use virtplug_model::bundle::Bundle;

const CHECKSUM_OPEN: &str = "\n  <checksum type='sha256'>";
const CLOSE: &str = "</virtplugSnapshotBundle>\n";

/// `text` with its checksum line and closing tag replaced by correct ones: everything before the
/// last checksum line (or all of `text` when there is none) is the checksummed body, as in the
/// bundle format.
pub fn reseal(text: &str) -> String {
    let mut body = match text.rfind(CHECKSUM_OPEN) {
        Some(pos) => text[..=pos].to_owned(),
        None => text.to_owned(),
    };
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut sum = String::with_capacity(64);
    for byte in Sha256::digest(body.as_bytes()).iter() {
        sum.push_str(&format!("{byte:02x}"));
    }
    format!("{body}  <checksum type='sha256'>{sum}</checksum>\n{CLOSE}")
}

/// The fuzz target.
pub fn target(data: &[u8]) {
    let text = crate::text(data);
    let _ = Bundle::parse(&text);
    let Ok(bundle) = Bundle::parse(&reseal(&text)) else { return };
    // Export of what was imported must import again and export identically.
    let exported = bundle.to_string();
    let again = match Bundle::parse(&exported) {
        Ok(b) => b,
        Err(e) => panic!("a bundle written by Bundle's Display does not parse: {e}\n--- bundle\n{exported}"),
    };
    let exported_again = again.to_string();
    assert!(
        exported == exported_again,
        "bundle export -> import -> export changed the document\n--- first\n{exported}\n--- second\n{exported_again}"
    );
}
