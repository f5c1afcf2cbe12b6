//! The `<domainsnapshot>` document: [`SnapshotDef`], [`parse`] with libvirt's plain-create /
//! redefine / internal modes and cross-field rules, and [`format`] with libvirt's exact output
//! (element order, two-space indentation, single-quoted attributes, verbatim `<domain>`).

use crate::{
    Error, Result, codes,
    flags::domain_state as st,
    limits,
    xmltree::{self, Element, column_of, dedent, push_indented},
};

/// libvirt's escaping of text and single-quoted attribute values, for anyone writing XML.
pub use crate::xmltree::escape;

/// Where a memory or disk snapshot lives (`snapshot='…'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotMode {
    /// `no`: not saved.
    No,
    /// `internal`: inside the image.
    Internal,
    /// `external`: in a separate file.
    External,
    /// `manual`: left to the user (disks only).
    Manual,
}

impl SnapshotMode {
    /// The XML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Internal => "internal",
            Self::External => "external",
            Self::Manual => "manual",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "no" => Self::No,
            "internal" => Self::Internal,
            "external" => Self::External,
            "manual" => Self::Manual,
            _ => return None,
        })
    }
}

/// A disk's storage type (`type='…'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskType {
    /// A file path (`<source file=…>`).
    File,
    /// A block device (`<source dev=…>`).
    Block,
    /// A network volume (`<source protocol=… name=…>` with hosts).
    Network,
}

impl DiskType {
    /// The XML spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Block => "block",
            Self::Network => "network",
        }
    }
}

/// One `<host>` of a network disk source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkHost {
    /// `name`.
    pub name: Option<String>,
    /// `port`.
    pub port: Option<String>,
    /// `transport` (tcp, unix, rdma).
    pub transport: Option<String>,
    /// `socket` (unix transport).
    pub socket: Option<String>,
}

/// `<memory snapshot='…' file='…'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySpec {
    /// The mode.
    pub mode: SnapshotMode,
    /// The memory file (external mode).
    pub file: Option<String>,
}

/// One `<disk>` of `<disks>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskSpec {
    /// Target name (`vda`) or absolute path.
    pub name: String,
    /// `snapshot='…'`, if given or implied.
    pub snapshot: Option<SnapshotMode>,
    /// Storage type, when a source or driver is present.
    pub disk_type: Option<DiskType>,
    /// File or device path (file/block), or volume name (network).
    pub source: Option<String>,
    /// Network protocol.
    pub protocol: Option<String>,
    /// Network hosts.
    pub hosts: Vec<NetworkHost>,
    /// `<driver type='…'/>`.
    pub driver_type: Option<String>,
    /// `<driver><metadata_cache><max_size unit='bytes'>N</max_size>` in bytes.
    pub metadata_cache_max_size: Option<u64>,
    /// The other children of `<source>` that libvirt keeps and formats (`<seclabel>`,
    /// `<auth>`, `<encryption>`, `<reservations>`, `<slices>`; for network sources also
    /// `<snapshot>`, `<config>`, `<initiator>`, `<ssl>`, `<readahead>`, `<timeout>`,
    /// `<identity>`), in libvirt's output order, each as one element in libvirt's formatting
    /// without indentation. Set by the parser only when the disk has a source path or driver
    /// (libvirt formats `<source>` only then).
    pub source_children: Vec<String>,
}

/// A parsed `<domainsnapshot>`. Strings are unescaped; `state` and `creation_time` are 0 when
/// unset; embedded documents are kept verbatim with their indentation removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotDef {
    /// Name (empty when not given on a plain create; see [`SnapshotDef::fill_defaults`]).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Snapshot state (`flags::domain_state`, 0 = none).
    pub state: u32,
    /// Parent name.
    pub parent: Option<String>,
    /// Creation time, epoch seconds (0 = none).
    pub creation_time: i64,
    /// `<memory>`.
    pub memory: Option<MemorySpec>,
    /// `<disks>`.
    pub disks: Vec<DiskSpec>,
    /// The full `<domain …>…</domain>` element, verbatim, indentation removed.
    pub domain: Option<String>,
    /// The UUID of an old-style `<domain><uuid>…</uuid></domain>` (no full definition).
    pub legacy_uuid: Option<String>,
    /// The full `<inactiveDomain …>…</inactiveDomain>` element, verbatim.
    pub inactive_domain: Option<String>,
    /// The full `<cookie>…</cookie>` element, verbatim.
    pub cookie: Option<String>,
    /// `<active>` as read in internal mode.
    pub active: Option<bool>,
}

/// How to parse (libvirt's `VIR_DOMAIN_SNAPSHOT_PARSE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseFlags {
    /// Redefine: name, state and creationTime required; parent, domain, state are read.
    pub redefine: bool,
    /// The driver's own metadata: `<active>` required and read.
    pub internal: bool,
    /// Treat as an offline snapshot (memory state forbidden). On redefine the XML's state
    /// decides instead, as in libvirt.
    pub offline: bool,
}

/// How to format (libvirt's `VIR_DOMAIN_SNAPSHOT_FORMAT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FormatFlags {
    /// Include secure parts of the embedded domain (passwords).
    pub secure: bool,
    /// Emit `<active>`.
    pub internal: bool,
    /// With `internal`: `<active>1</active>`.
    pub current: bool,
}

/// The XML name of a snapshot state, `None` for values outside libvirt's table.
pub fn state_name(state: u32) -> Option<&'static str> {
    Some(match state {
        st::NOSTATE => "nostate",
        st::RUNNING => "running",
        st::BLOCKED => "blocked",
        st::PAUSED => "paused",
        st::SHUTDOWN => "shutdown",
        st::SHUTOFF => "shutoff",
        st::CRASHED => "crashed",
        st::PMSUSPENDED => "pmsuspended",
        st::DISK_SNAPSHOT => "disk-snapshot",
        _ => return None,
    })
}

/// The state value of an XML state name.
pub fn state_from_name(name: &str) -> Option<u32> {
    (0..=8).find(|s| state_name(*s) == Some(name))
}

fn xml_error(msg: impl Into<String>) -> Error {
    Error::new(codes::XML_ERROR, msg)
}

impl SnapshotDef {
    /// libvirt's post-parse defaults for a plain create: creation time `now` and, without a
    /// name, the decimal creation time as the name.
    pub fn fill_defaults(&mut self, now: i64) {
        self.creation_time = now;
        if self.name.is_empty() {
            self.name = now.to_string();
        }
    }
    /// Whether the memory or any disk is external (libvirt's "location external").
    pub fn is_external(&self) -> bool {
        self.memory.as_ref().is_some_and(|m| m.mode == SnapshotMode::External)
            || self.disks.iter().any(|d| d.snapshot == Some(SnapshotMode::External))
    }
    /// Whether the snapshot is disk-only (state `disk-snapshot`).
    pub fn is_disk_only(&self) -> bool {
        self.state == st::DISK_SNAPSHOT
    }
    /// Whether the snapshot was taken from an active domain (running/paused/… with memory).
    pub fn is_online(&self) -> bool {
        !matches!(self.state, st::SHUTOFF | st::DISK_SNAPSHOT | st::NOSTATE)
    }
}

/// Parses a `<domainsnapshot>` document with libvirt's rules for `flags`, within the bounds
/// of [`crate::limits`]. A leading byte order mark is skipped.
///
/// Plain create ignores `<state>`, `<parent>`, `<creationTime>`, `<domain>`, `<inactiveDomain>`
/// and `<active>`. Unknown elements are ignored (no schema validation).
pub fn parse(xml: &str, flags: ParseFlags) -> Result<SnapshotDef> {
    let xml = xmltree::strip_bom(xml);
    let root = xmltree::parse_document_with(xml, "domain_snapshot", verbatim_child)?;
    parse_element(xml, &root, flags, true)
}

/// Parses the store's own redefine-form XML, where older versions did not write a creation
/// time of 0: a missing `<creationTime>` reads as 0 instead of failing.
#[cfg(feature = "sqlite")]
pub(crate) fn parse_stored(xml: &str) -> Result<SnapshotDef> {
    let xml = xmltree::strip_bom(xml);
    let root = xmltree::parse_document_with(xml, "domain_snapshot", verbatim_child)?;
    parse_element(xml, &root, ParseFlags { redefine: true, ..Default::default() }, false)
}

/// Whether `<domain>` is a full definition: libvirt reads `string(./domain/@type)`, and an
/// empty string counts as absent (an old-style `<domain><uuid>` only).
fn is_full_domain(e: &Element<'_>) -> bool {
    e.name == "domain" && e.attr("type").is_some_and(|t| !t.is_empty())
}

/// The children of `<domainsnapshot>` kept verbatim, whose content needs no tree: a full
/// `<domain>` (an old-style one holds only the `<uuid>` that is read), `<inactiveDomain>`,
/// `<cookie>`.
fn verbatim_child(e: &Element<'_>) -> bool {
    matches!(e.name, "inactiveDomain" | "cookie") || is_full_domain(e)
}

/// Parses an already-read `<domainsnapshot>` element of `src`.
fn parse_element(src: &str, root: &Element, flags: ParseFlags, require_time: bool) -> Result<SnapshotDef> {
    if root.name != "domainsnapshot" {
        return Err(xml_error(format!("expecting root element of 'domainsnapshot', not '{}'", root.name)));
    }
    let mut def = SnapshotDef::default();
    match root.child_text("name") {
        Some(n) => def.name = n,
        None if flags.redefine => return Err(xml_error("a redefined snapshot must have a name")),
        None => {}
    }
    def.description = root.child_text("description");
    if let Some(d) = &def.description {
        if d.len() > limits::MAX_DESCRIPTION_BYTES {
            return Err(xml_error(format!(
                "snapshot description too long: {} bytes, more than {}",
                d.len(),
                limits::MAX_DESCRIPTION_BYTES
            )));
        }
    }
    let mut offline = flags.offline;
    if flags.redefine {
        match root.child_text("creationTime") {
            Some(time) => {
                def.creation_time =
                    time.trim().parse().map_err(|_| Error::internal("missing creationTime from existing snapshot"))?;
            }
            None if require_time => {
                return Err(Error::internal("missing creationTime from existing snapshot"));
            }
            None => {}
        }
        def.parent = root.child("parent").and_then(|p| p.child_text("name"));
        let state = root.child_text("state").ok_or_else(|| xml_error("missing state from existing snapshot"))?;
        def.state = match state_from_name(&state) {
            Some(s) if s != st::NOSTATE && s != st::PMSUSPENDED => s,
            _ => {
                return Err(Error::new(
                    codes::CONFIG_UNSUPPORTED,
                    format!("Invalid state '{state}' in domain snapshot XML"),
                ));
            }
        };
        // libvirt assigns here: on redefine the state alone decides (PARSE_OFFLINE is ignored)
        offline = matches!(def.state, st::SHUTOFF | st::DISK_SNAPSHOT);
        if let Some(dom) = root.child("domain") {
            if is_full_domain(dom) {
                def.domain = Some(dedent(dom.raw(src), column_of(src, dom.start)));
            } else {
                def.legacy_uuid = dom.child_text("uuid").map(|u| u.trim().to_owned());
            }
        }
        if let Some(dom) = root.child("inactiveDomain") {
            def.inactive_domain = Some(dedent(dom.raw(src), column_of(src, dom.start)));
        }
    }
    parse_memory(root, offline, &mut def)?;
    if let Some(disks) = root.child("disks") {
        for d in disks.elements().filter(|e| e.name == "disk") {
            def.disks.push(parse_disk(d)?);
        }
    }
    if flags.internal {
        let active = root
            .child_text("active")
            .and_then(|a| a.trim().parse::<i64>().ok())
            .ok_or_else(|| Error::internal("Could not find 'active' element"))?;
        def.active = Some(active != 0);
    }
    if !offline {
        if let Some(c) = root.child("cookie") {
            def.cookie = Some(dedent(c.raw(src), column_of(src, c.start)));
        }
    }
    Ok(def)
}

fn parse_memory(root: &Element, offline: bool, def: &mut SnapshotDef) -> Result<()> {
    let Some(mem) = root.child("memory") else { return Ok(()) };
    let mut mode = None;
    if let Some(s) = mem.attr("snapshot") {
        let m = SnapshotMode::parse(s)
            .ok_or_else(|| xml_error(format!("Invalid value for attribute 'snapshot' in element 'memory': '{s}'.")))?;
        if m == SnapshotMode::Manual {
            return Err(xml_error("'manual' memory snapshot mode not supported"));
        }
        mode = Some(m);
    }
    let file = mem.attr("file").filter(|f| !f.is_empty()).map(str::to_owned);
    if let (Some(f), Some(m)) = (&file, mode) {
        if m != SnapshotMode::External {
            return Err(xml_error(format!("memory filename '{f}' requires external snapshot")));
        }
    }
    if file.is_none() && mode == Some(SnapshotMode::External) {
        return Err(xml_error("external memory snapshots require a filename"));
    }
    if file.is_some() && mode.is_none() {
        mode = Some(SnapshotMode::External);
    }
    if offline && mode.is_some_and(|m| m != SnapshotMode::No) {
        return Err(xml_error("memory state cannot be saved with offline or disk-only snapshot"));
    }
    if let Some(f) = &file {
        if !f.starts_with('/') {
            return Err(xml_error(format!("memory snapshot file path ({f}) must be absolute")));
        }
    }
    def.memory = mode.map(|mode| MemorySpec { mode, file });
    Ok(())
}

fn parse_disk(d: &Element) -> Result<DiskSpec> {
    let name = d
        .attr("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Error::internal("missing name from disk snapshot element"))?
        .to_owned();
    let snapshot =
        match d.attr("snapshot") {
            Some(s) => Some(SnapshotMode::parse(s).ok_or_else(|| {
                xml_error(format!("Invalid value for attribute 'snapshot' in element 'disk': '{s}'."))
            })?),
            None => None,
        };
    let disk_type = match d.attr("type") {
        None => None,
        Some("file") => Some(DiskType::File),
        Some("block") => Some(DiskType::Block),
        Some("network") => Some(DiskType::Network),
        Some(other) => {
            return Err(Error::new(codes::CONFIG_UNSUPPORTED, format!("unknown disk snapshot type '{other}'")));
        }
    };
    let mut disk = DiskSpec { name, snapshot, disk_type, ..Default::default() };
    let source = d.child("source");
    if let Some(src) = source {
        match disk.disk_type.unwrap_or(DiskType::File) {
            DiskType::File => disk.source = src.attr("file").map(str::to_owned),
            DiskType::Block => disk.source = src.attr("dev").map(str::to_owned),
            DiskType::Network => {
                disk.protocol = src.attr("protocol").map(str::to_owned);
                disk.source = src.attr("name").map(str::to_owned);
                for h in src.elements().filter(|e| e.name == "host") {
                    disk.hosts.push(NetworkHost {
                        name: h.attr("name").map(str::to_owned),
                        port: h.attr("port").map(str::to_owned),
                        transport: h.attr("transport").map(str::to_owned),
                        socket: h.attr("socket").map(str::to_owned),
                    });
                }
            }
        }
        disk.source = disk.source.filter(|s| !s.is_empty());
        if disk.disk_type != Some(DiskType::Network) {
            if let Some(path) = &disk.source {
                if !path.starts_with('/') {
                    return Err(xml_error(format!("disk snapshot image path '{path}' must be absolute")));
                }
            }
        }
    }
    if let Some(drv) = d.child("driver") {
        disk.driver_type = drv.attr("type").filter(|t| !t.is_empty()).map(str::to_owned);
        if let Some(max) = drv.child("metadata_cache").and_then(|m| m.child("max_size")) {
            let invalid = || xml_error(format!("invalid metadata_cache max_size for disk '{}'", disk.name));
            let value: u64 = max.text().trim().parse().map_err(|_| invalid())?;
            let mult: u64 = match max.attr("unit").unwrap_or("bytes") {
                "b" | "bytes" => 1,
                "KB" => 1000,
                "k" | "KiB" => 1024,
                "MB" => 1_000_000,
                "M" | "MiB" => 1 << 20,
                "GB" => 1_000_000_000,
                "G" | "GiB" => 1 << 30,
                u => return Err(xml_error(format!("unknown unit '{u}'"))),
            };
            // libvirt formats the cache size only when it is positive.
            disk.metadata_cache_max_size = Some(value.checked_mul(mult).ok_or_else(invalid)?).filter(|n| *n > 0);
        }
    }
    if disk.source.is_some() || disk.driver_type.is_some() {
        if disk.snapshot.is_none() {
            disk.snapshot = Some(SnapshotMode::External);
        }
        let ty = *disk.disk_type.get_or_insert(DiskType::File);
        if let Some(src) = source {
            disk.source_children = source_children(src, ty, disk.protocol.as_deref());
        }
    } else {
        // libvirt formats the type, the driver and the source only for a disk with a path or
        // a format: what it would drop is not kept, so a dump parses back to the same disk.
        disk.disk_type = None;
        disk.protocol = None;
        disk.hosts.clear();
        disk.metadata_cache_max_size = None;
    }
    Ok(disk)
}

/// The children of a snapshot disk's `<source>` that libvirt's storage-source parser reads and
/// its formatter writes back (`virDomainStorageSourceParse`, `virDomainDiskSourceFormat` with
/// the snapshot formatter's flags 0), in the formatter's order; `(name, all occurrences)`.
/// Network-only ones apply to the listed protocols (none listed: every protocol). `<cookies>`
/// is formatted only with SECURE, which the snapshot formatter never passes, and `<seclabel>`
/// never for network sources: libvirt drops both, and so does this.
const NETWORK_SOURCE_CHILDREN: &[(&str, &[&str])] = &[
    ("identity", &["nfs"]),
    ("snapshot", &[]),
    ("config", &[]),
    ("initiator", &[]),
    ("ssl", &["https", "ftps"]),
    ("readahead", &["http", "https", "ftp", "ftps"]),
    ("timeout", &["http", "https", "ftp", "ftps"]),
];
/// The children every source type keeps, after the network ones; `true`: every occurrence.
const SOURCE_CHILDREN: &[(&str, bool)] =
    &[("slices", false), ("seclabel", true), ("auth", false), ("encryption", false), ("reservations", false)];

fn source_children(src: &Element, ty: DiskType, protocol: Option<&str>) -> Vec<String> {
    let mut names: Vec<(&str, bool)> = Vec::new();
    if ty == DiskType::Network {
        for (name, protocols) in NETWORK_SOURCE_CHILDREN {
            if protocols.is_empty() || protocol.is_some_and(|p| protocols.contains(&p)) {
                names.push((name, false));
            }
        }
    }
    names.extend(SOURCE_CHILDREN.iter().copied().filter(|(n, _)| ty != DiskType::Network || *n != "seclabel"));
    let mut out = Vec::new();
    for (name, every) in names {
        for child in src.elements().filter(|e| e.name == name).take(if every { usize::MAX } else { 1 }) {
            let mut text = String::new();
            child.write_canonical(0, &mut text);
            text.truncate(text.trim_end().len());
            out.push(text);
        }
    }
    out
}

/// Formats `def` exactly as libvirt's `virDomainSnapshotDefFormat`. `domain_uuid` is printed as
/// `<domain><uuid>…</uuid></domain>` only when `def` has no full domain.
pub fn format(def: &SnapshotDef, domain_uuid: Option<&str>, flags: FormatFlags) -> String {
    format_with_layout(def, domain_uuid, flags).0
}

/// Where [`format`] put the parts that depend on more than the stored definition: the byte
/// offset where `<parent>` is (or would be) written, and the span of the `<domain>` section
/// (empty when there is none). The store keeps it beside its stored text so that a dump splices
/// the parent, the domain and `<active>` in without parsing (`store_rows.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code, reason = "only the SQLite store reads the offsets"))]
pub(crate) struct Layout {
    /// Where the `<parent>` block starts (or would start).
    pub parent_at: usize,
    /// Where the `<domain>` section starts.
    pub domain_at: usize,
    /// Where it ends.
    pub domain_end: usize,
}

/// [`format`], with the offsets of its [`Layout`].
pub(crate) fn format_with_layout(def: &SnapshotDef, domain_uuid: Option<&str>, flags: FormatFlags) -> (String, Layout) {
    let mut o = String::with_capacity(256 + def.domain.as_ref().map_or(0, |d| d.len() + 256));
    o.push_str("<domainsnapshot>\n");
    o.push_str(&format!("  <name>{}</name>\n", escape(&def.name)));
    if let Some(d) = &def.description {
        o.push_str(&format!("  <description>{}</description>\n", escape(d)));
    }
    if def.state != 0 {
        o.push_str(&format!("  <state>{}</state>\n", state_name(def.state).unwrap_or("nostate")));
    }
    let parent_at = o.len();
    if let Some(p) = &def.parent {
        push_parent(&mut o, p);
    }
    // libvirt omits a zero creation time, but redefine requires the element: a snapshot that
    // has a state (every stored or redefined one) always gets it, so its dump redefines it.
    if def.creation_time != 0 || def.state != 0 {
        o.push_str(&format!("  <creationTime>{}</creationTime>\n", def.creation_time));
    }
    if let Some(m) = &def.memory {
        o.push_str(&format!("  <memory snapshot='{}'", m.mode.as_str()));
        if let Some(f) = &m.file {
            o.push_str(&format!(" file='{}'", escape(f)));
        }
        o.push_str("/>\n");
    }
    if !def.disks.is_empty() {
        o.push_str("  <disks>\n");
        for d in &def.disks {
            format_disk(&mut o, d);
        }
        o.push_str("  </disks>\n");
    }
    let domain_at = o.len();
    push_domain(&mut o, def.domain.as_deref(), domain_uuid.or(def.legacy_uuid.as_deref()), flags.secure);
    let domain_end = o.len();
    if let Some(dom) = &def.inactive_domain {
        if flags.secure {
            push_indented(&mut o, dom, "  ");
        } else {
            push_indented(&mut o, &strip_secrets(dom), "  ");
        }
    }
    if let Some(c) = &def.cookie {
        push_indented(&mut o, c, "  ");
    }
    if flags.internal {
        push_active(&mut o, flags.current);
    }
    o.push_str(SNAPSHOT_END);
    (o, Layout { parent_at, domain_at, domain_end })
}

/// The last line of every formatted snapshot.
pub(crate) const SNAPSHOT_END: &str = "</domainsnapshot>\n";

/// The `<parent>` block.
pub(crate) fn push_parent(o: &mut String, parent: &str) {
    o.push_str(&format!("  <parent>\n    <name>{}</name>\n  </parent>\n", escape(parent)));
}

/// The `<domain>` section: the full definition (without its secrets unless `secure`), else
/// `<domain><uuid>` when a uuid is known, else nothing.
pub(crate) fn push_domain(o: &mut String, full: Option<&str>, uuid: Option<&str>, secure: bool) {
    if let Some(dom) = full {
        if secure {
            push_indented(o, dom, "  ");
        } else {
            push_indented(o, &strip_secrets(dom), "  ");
        }
    } else if let Some(uuid) = uuid {
        o.push_str(&format!("  <domain>\n    <uuid>{}</uuid>\n  </domain>\n", escape(uuid)));
    }
}

/// The `<active>` line of the internal format.
pub(crate) fn push_active(o: &mut String, current: bool) {
    o.push_str(&format!("  <active>{}</active>\n", u8::from(current)));
}

fn format_disk(o: &mut String, d: &DiskSpec) {
    o.push_str(&format!("    <disk name='{}'", escape(&d.name)));
    if let Some(m) = d.snapshot {
        o.push_str(&format!(" snapshot='{}'", m.as_str()));
    }
    if d.source.is_none() && d.driver_type.is_none() {
        o.push_str("/>\n");
        return;
    }
    let ty = d.disk_type.unwrap_or(DiskType::File);
    o.push_str(&format!(" type='{}'>\n", ty.as_str()));
    let cache = d.metadata_cache_max_size.filter(|n| *n > 0);
    if d.driver_type.is_some() || cache.is_some() {
        o.push_str("      <driver");
        if let Some(t) = &d.driver_type {
            o.push_str(&format!(" type='{}'", escape(t)));
        }
        match cache {
            Some(n) => o.push_str(&format!(
                ">\n        <metadata_cache>\n          <max_size unit='bytes'>{n}</max_size>\n        </metadata_cache>\n      </driver>\n"
            )),
            None => o.push_str("/>\n"),
        }
    }
    // As virXMLFormatElement: <source> only when it has an attribute or a child.
    let mut attrs = String::new();
    let mut children = String::new();
    let path = d.source.as_deref().map(escape);
    match ty {
        DiskType::File => path.iter().for_each(|p| attrs.push_str(&format!(" file='{p}'"))),
        DiskType::Block => path.iter().for_each(|p| attrs.push_str(&format!(" dev='{p}'"))),
        DiskType::Network => {
            if let Some(p) = &d.protocol {
                attrs.push_str(&format!(" protocol='{}'", escape(p)));
            }
            path.iter().for_each(|p| attrs.push_str(&format!(" name='{p}'")));
            for h in &d.hosts {
                children.push_str("        <host");
                for (k, v) in [("name", &h.name), ("port", &h.port), ("transport", &h.transport), ("socket", &h.socket)]
                {
                    if let Some(v) = v {
                        children.push_str(&format!(" {k}='{}'", escape(v)));
                    }
                }
                children.push_str("/>\n");
            }
        }
    }
    for child in &d.source_children {
        push_indented(&mut children, child, "        ");
    }
    if children.is_empty() {
        if !attrs.is_empty() {
            o.push_str(&format!("      <source{attrs}/>\n"));
        }
    } else {
        o.push_str(&format!("      <source{attrs}>\n{children}      </source>\n"));
    }
    o.push_str("    </disk>\n");
}

/// Removes what libvirt shows only with `VIR_DOMAIN_XML_SECURE` from a domain definition, as a
/// non-secure dump does: every `passwd` attribute (however it is spaced, quoted or escaped)
/// and the `<cookies>` of disk sources. Read with the XML parser; the rest of the text is kept
/// byte for byte (a leading byte order mark aside).
pub fn strip_secrets(dom: &str) -> String {
    crate::secrets::strip_secrets(dom)
}

/// A light stand-in for libvirt's RNG validation (`CREATE_VALIDATE`): an unknown child of
/// `<domainsnapshot>` is refused with `XML_INVALID_SCHEMA` (92), message on one line.
pub fn validate_schema(xml: &str) -> Result<()> {
    const KNOWN: &[&str] = &[
        "name",
        "description",
        "state",
        "creationTime",
        "parent",
        "memory",
        "disks",
        "domain",
        "inactiveDomain",
        "cookie",
        "active",
    ];
    let root = xmltree::parse_document(xmltree::strip_bom(xml), "domain_snapshot")?;
    if let Some(e) = root.elements().find(|e| !KNOWN.contains(&e.name)) {
        return Err(Error::new(
            codes::XML_INVALID_SCHEMA,
            format!(
                "Unable to validate doc against /usr/share/libvirt/schemas/domainsnapshot.rng: Element domainsnapshot has extra content: {}",
                e.name
            ),
        ));
    }
    Ok(())
}
