//! The hierarchy export/import document: one domain's snapshots as libvirt's secure snapshot
//! XML, parents before children, the current snapshot's name, and a SHA-256 checksum.
//!
//! ```text
//! <virtplugSnapshotBundle version='1'>
//!   <domain uuid='6695eb01-f6a4-8304-79aa-97f2502e193f'/>
//!   <current name='s2'/>
//!   <domainsnapshot>
//!     …
//!   </domainsnapshot>
//!   <checksum type='sha256'>…64 hex digits…</checksum>
//! </virtplugSnapshotBundle>
//! ```
//!
//! The checksum covers every byte before the `  <checksum` line. The bundle contains secure
//! XML (secrets of the embedded domains): treat it as sensitive.

use std::{collections::HashSet, fmt, path::Path};

use crate::{
    Error, Result, SnapshotInfo, codes, domain, filter, limits,
    sha256::hex_digest,
    tree::info_from_def,
    xml::{self, FormatFlags, ParseFlags, SnapshotDef},
    xmltree::{self, push_indented},
};

const ROOT: &str = "virtplugSnapshotBundle";
const CHECKSUM_OPEN: &str = "  <checksum type='sha256'>";
const CLOSE: &str = "</virtplugSnapshotBundle>\n";

/// One domain's snapshot hierarchy, ordered parents first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The domain's UUID.
    pub domain_uuid: String,
    /// The current snapshot's name.
    pub current: Option<String>,
    /// Every snapshot, parents before children (siblings by name).
    pub snapshots: Vec<SnapshotDef>,
}

fn xml_error(msg: impl Into<String>) -> Error {
    Error::new(codes::XML_ERROR, msg)
}

/// XML's whitespace (`S` in the grammar).
fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// A metadata file's text, refused past libvirt's own 1 MiB limit before it is read whole.
fn read_metadata_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let limit = limits::MAX_LIBVIRT_METADATA_FILE_BYTES;
    let mut text = String::new();
    // One byte more than the limit tells an oversized file from one exactly at it.
    std::fs::File::open(path)?.take(limit as u64 + 1).read_to_string(&mut text)?;
    if text.len() > limit {
        return Err(std::io::Error::other(format!("file is larger than {limit} bytes")));
    }
    Ok(text)
}

/// Checks names, parents, cycles and the current marker, and returns the definitions in
/// topological order.
fn order(snapshots: Vec<SnapshotDef>, current: Option<&str>) -> Result<Vec<SnapshotDef>> {
    let mut names = HashSet::new();
    for s in &snapshots {
        if !names.insert(s.name.as_str()) {
            return Err(Error::new(codes::OPERATION_FAILED, format!("domain moment {} already exists", s.name)));
        }
    }
    for s in &snapshots {
        if let Some(p) = &s.parent {
            if *p == s.name {
                return Err(Error::invalid_arg(format!("cannot set moment {p} as its own parent")));
            }
            if !names.contains(p.as_str()) {
                return Err(Error::invalid_arg(format!("parent {p} for moment {} not found", s.name)));
            }
        }
    }
    if let Some(c) = current {
        if !names.contains(c) {
            return Err(Error::invalid_arg(format!("current snapshot {c} is not in the bundle")));
        }
    }
    let infos: Vec<SnapshotInfo> = snapshots.iter().map(info_from_def).collect();
    let topo = filter::topological(&infos);
    if topo.len() != snapshots.len() {
        let reached: HashSet<&str> = topo.iter().map(|i| i.name.as_str()).collect();
        let stuck = snapshots
            .iter()
            .find(|s| !reached.contains(s.name.as_str()))
            .ok_or_else(|| Error::internal("bundle ordering failed"))?;
        return Err(Error::invalid_arg(format!(
            "parent {} would create cycle to {}",
            stuck.parent.as_deref().unwrap_or(""),
            stuck.name
        )));
    }
    let mut by_name: std::collections::HashMap<String, SnapshotDef> =
        snapshots.into_iter().map(|s| (s.name.clone(), s)).collect();
    Ok(topo.iter().filter_map(|i| by_name.remove(&i.name)).collect())
}

fn check_uuid(def: &SnapshotDef, uuid: &str) -> Result<()> {
    let embedded = def
        .domain
        .as_deref()
        .and_then(|d| xmltree::parse_document(d, "domain_definition").ok())
        .and_then(|root| root.child_text("uuid"))
        .or_else(|| def.legacy_uuid.clone());
    if let Some(u) = embedded {
        if domain::normalize_uuid(&u).as_deref() != Some(uuid) {
            return Err(Error::invalid_arg(format!("definition for snapshot {} must use uuid {uuid}", def.name)));
        }
    }
    Ok(())
}

impl Bundle {
    /// A bundle from definitions in any order; validates and orders them.
    pub fn new(domain_uuid: &str, current: Option<&str>, snapshots: Vec<SnapshotDef>) -> Result<Self> {
        let uuid = domain::normalize_uuid(domain_uuid)
            .ok_or_else(|| xml_error(format!("malformed domain uuid '{domain_uuid}' in snapshot bundle")))?;
        for s in &snapshots {
            check_uuid(s, &uuid)?;
        }
        let snapshots = order(snapshots, current)?;
        Ok(Self { domain_uuid: uuid, current: current.map(str::to_owned), snapshots })
    }

    /// Each snapshot's secure XML, in bundle (topological) order, as `snapshot_import` takes it.
    pub fn snapshot_xmls(&self) -> Vec<String> {
        self.snapshots
            .iter()
            .map(|s| xml::format(s, Some(&self.domain_uuid), FormatFlags { secure: true, ..Default::default() }))
            .collect()
    }

    /// Parses and verifies a bundle: refuses truncated input, a bad checksum, two current
    /// markers, duplicates, missing parents and cycles. A leading byte order mark and XML
    /// whitespace after the root element are accepted (an editor or a shell may add them);
    /// the bundle obeys [`limits::MAX_BUNDLE_BYTES`] and each snapshot in it the per-document
    /// limits.
    pub fn parse(text: &str) -> Result<Self> {
        let text = xmltree::strip_bom(text);
        if text.len() > limits::MAX_BUNDLE_BYTES {
            return Err(xml_error(format!(
                "snapshot bundle too large: {} bytes, more than {}",
                text.len(),
                limits::MAX_BUNDLE_BYTES
            )));
        }
        let Some(pos) = text.rfind(&format!("\n{CHECKSUM_OPEN}")) else {
            return Err(xml_error("snapshot bundle is truncated: no checksum found"));
        };
        let body = &text[..=pos];
        let tail = &text[pos + 1 + CHECKSUM_OPEN.len()..];
        let Some((sum, rest)) = tail.split_once("</checksum>\n") else {
            return Err(xml_error("snapshot bundle is truncated inside the checksum"));
        };
        // XML allows whitespace after the root element; `> file` of the CLI's stdout once added
        // a newline.
        if rest.trim_end_matches(is_xml_space) != CLOSE.trim_end() {
            return Err(xml_error(format!(
                "snapshot bundle is truncated or has trailing data after the checksum (expected {})",
                CLOSE.trim_end()
            )));
        }
        let computed = hex_digest(body.as_bytes());
        if sum != computed {
            return Err(xml_error(format!("snapshot bundle checksum mismatch: recorded {sum}, computed {computed}")));
        }
        // The snapshots are only checked here (kept as spans), then parsed one by one with the
        // per-document limits.
        let root = xmltree::parse_document_limited(text, "snapshot_bundle", xmltree::Limits::BUNDLE, |e| {
            e.name == "domainsnapshot"
        })?;
        if root.name != ROOT {
            return Err(xml_error(format!("expecting root element of '{ROOT}', not '{}'", root.name)));
        }
        if root.attr("version") != Some("1") {
            return Err(xml_error(format!(
                "unsupported snapshot bundle version '{}'",
                root.attr("version").unwrap_or("")
            )));
        }
        let uuid = root
            .child("domain")
            .and_then(|d| d.attr("uuid"))
            .ok_or_else(|| xml_error("snapshot bundle lacks the domain uuid"))?
            .to_owned();
        let currents: Vec<&str> =
            root.elements().filter(|e| e.name == "current").filter_map(|e| e.attr("name")).collect();
        if currents.len() > 1 {
            return Err(xml_error("snapshot bundle has more than one current snapshot marker"));
        }
        let mut snapshots = Vec::new();
        for el in root.elements().filter(|e| e.name == "domainsnapshot") {
            let one = xmltree::dedent(el.raw(text), xmltree::column_of(text, el.start));
            snapshots.push(xml::parse(&one, ParseFlags { redefine: true, ..Default::default() })?);
        }
        Self::new(&uuid, currents.first().copied(), snapshots)
    }

    /// Reads libvirt's qemu snapshot metadata directory (`<name>.xml` files with the warning
    /// header and `<active>`): only `*.xml` files, each file's name must match its `<name>`,
    /// at most one `<active>1`, ordered by parent links (not by file name).
    pub fn from_libvirt_dir(path: &Path) -> Result<Self> {
        let io =
            |e: std::io::Error| Error::new(codes::OPERATION_FAILED, format!("cannot read '{}': {e}", path.display()));
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "xml"))
            .collect();
        files.sort();
        let mut defs = Vec::new();
        let mut current: Option<String> = None;
        let mut uuid: Option<String> = None;
        for f in files {
            let text = read_metadata_file(&f)
                .map_err(|e| Error::new(codes::OPERATION_FAILED, format!("cannot read '{}': {e}", f.display())))?;
            let def = xml::parse(&text, ParseFlags { redefine: true, internal: true, offline: false })
                .map_err(|e| Error::new(e.code, format!("{}: {}", f.display(), e.message)))?;
            let stem = f.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            if stem != def.name {
                return Err(xml_error(format!("file '{}' holds snapshot '{}', not '{stem}'", f.display(), def.name)));
            }
            if def.active == Some(true) {
                if let Some(c) = &current {
                    return Err(xml_error(format!(
                        "more than one snapshot claims to be current ('{c}' and '{}')",
                        def.name
                    )));
                }
                current = Some(def.name.clone());
            }
            if uuid.is_none() {
                uuid = def
                    .domain
                    .as_deref()
                    .and_then(|d| xmltree::parse_document(d, "domain_definition").ok())
                    .and_then(|r| r.child_text("uuid"))
                    .or_else(|| def.legacy_uuid.clone());
            }
            let mut def = def;
            def.active = None;
            defs.push(def);
        }
        let uuid =
            uuid.ok_or_else(|| xml_error(format!("no snapshot in '{}' names its domain's uuid", path.display())))?;
        Self::new(&uuid, current.as_deref(), defs)
    }
}

impl fmt::Display for Bundle {
    /// The bundle document, checksum included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = format!("<{ROOT} version='1'>\n  <domain uuid='{}'/>\n", self.domain_uuid);
        if let Some(c) = &self.current {
            body.push_str(&format!("  <current name='{}'/>\n", xmltree::escape(c)));
        }
        for x in self.snapshot_xmls() {
            push_indented(&mut body, x.trim_end(), "  ");
        }
        let sum = hex_digest(body.as_bytes());
        write!(f, "{body}{CHECKSUM_OPEN}{sum}</checksum>\n{CLOSE}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]
#[path = "bundle_tests.rs"]
mod tests;
