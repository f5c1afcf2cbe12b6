//! The bounds every XML input obeys, in one place so the CLI, the daemon and the plugins read
//! files and bodies with the same numbers the parser enforces.
//!
//! Modelled on libvirt: libxml2 refuses documents nested deeper than 256 elements unless
//! `XML_PARSE_HUGE` is given (libvirt never gives it), virsh reads at most 10 MiB from
//! `--xmlfile` (`VSH_MAX_XML_FILE`), and the qemu driver reads each snapshot metadata file with
//! a 1 MiB limit. A bundle carries a whole hierarchy, so it gets its own size and element
//! bounds while every snapshot inside it still obeys the per-document ones.
//!
//! Exceeding a bound is a one-line `XML_DETAIL` (35) error naming the document, e.g.
//! `(domain_snapshot):1: document too large: 10485761 bytes, more than 10485760`.

/// Largest snapshot or domain XML document, in bytes (virsh's `VSH_MAX_XML_FILE`, 10 MiB).
/// Also the most the CLI reads from `--xmlfile` or stdin for one document.
pub const MAX_XML_BYTES: usize = 10 * 1024 * 1024;

/// Deepest element nesting (the root is depth 1), libxml2's default `xmlParserMaxDepth`.
pub const MAX_XML_DEPTH: usize = 256;

/// Most attributes on one element. libvirt's widest elements carry about twenty.
pub const MAX_XML_ATTRIBUTES: usize = 256;

/// Most elements in one snapshot or domain document (embedded documents included).
pub const MAX_XML_ELEMENTS: usize = 100_000;

/// Largest snapshot `<description>` text, in bytes, after entity expansion (libvirt's qemu
/// driver could not reload a metadata file over 1 MiB anyway).
pub const MAX_DESCRIPTION_BYTES: usize = 1024 * 1024;

/// Largest snapshot metadata file read from a libvirt metadata directory (the qemu driver's
/// own limit, `virFileReadAll(…, 1024 * 1024)`).
pub const MAX_LIBVIRT_METADATA_FILE_BYTES: usize = 1024 * 1024;

/// Largest export/import bundle, in bytes (the daemon's import body limit, 512 MiB: room for a
/// 16,000-snapshot hierarchy with 30 KiB of XML per snapshot).
pub const MAX_BUNDLE_BYTES: usize = 512 * 1024 * 1024;

/// Most elements in one bundle, all snapshots together (one per 32 bytes of the size limit).
pub const MAX_BUNDLE_ELEMENTS: usize = MAX_BUNDLE_BYTES / 32;
