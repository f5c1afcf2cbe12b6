//! The store's row readers, shared by the store and its write transactions: the domain row, a
//! domain's hierarchy, one stored snapshot definition, one snapshot's dump, and the SQLite error
//! conversion. A leaf: it knows the schema, not the [`Store`](crate::store::Store) or its caches.
//!
//! A dump without parsing (schema v6): beside each snapshot's stored text the row keeps the
//! text's [`Layout`] (`fmt_parent`, `fmt_domain`, `fmt_domain_end`), written in the same
//! statement as the text by every write of it (insert, redefine, the v6 migration). Parent,
//! `<domain>` and `<active>` are not in the stored text; a dump splices them in from the row's
//! `parent`, the domain's current snapshot and the shared domain text. The layout is kept only
//! when the stored text is exactly what parsing it and formatting it again gives
//! ([`stored_layout`]), so the splice equals the parse-and-format dump byte for byte; otherwise
//! (old rows whose text is not in today's form) it is NULL and the dump parses, as it always did.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    DomainInfo, Error, Result, SnapshotInfo, codes,
    domain::DomainDef,
    redefine,
    tree::SnapshotTree,
    xml::{self, FormatFlags, Layout, SnapshotDef},
};

/// One domain row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// Name.
    pub name: String,
    /// UUID (lower-case, dashed).
    pub uuid: String,
    /// The domain XML as defined.
    pub xml: String,
    /// `flags::domain_state` value.
    pub state: u32,
    /// State reason.
    pub reason: u32,
    /// Hypervisor id while active, -1 otherwise.
    pub id: i32,
    /// Persistent definition.
    pub persistent: bool,
}

impl DomainRecord {
    /// The list record (memory and vcpus from the XML; zero when it cannot be read).
    pub fn info(&self) -> DomainInfo {
        let def = DomainDef::parse(&self.xml).ok();
        DomainInfo {
            name: self.name.clone(),
            uuid: self.uuid.clone(),
            id: self.id,
            state: self.state,
            reason: self.reason,
            max_memory_kib: def.as_ref().map_or(0, |d| d.max_memory_kib),
            memory_kib: def.as_ref().map_or(0, |d| d.memory_kib),
            vcpus: def.as_ref().map_or(0, |d| d.vcpus),
            persistent: self.persistent,
        }
    }
}

/// An SQLite error as a model error (OPERATION_FAILED, one line).
pub(crate) fn db(e: rusqlite::Error) -> Error {
    Error::new(codes::OPERATION_FAILED, format!("metadata store: {}", e.to_string().replace('\n', " ")))
}

pub(crate) fn domain_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DomainRecord> {
    Ok(DomainRecord {
        name: r.get(0)?,
        uuid: r.get(1)?,
        xml: r.get(2)?,
        state: r.get(3)?,
        reason: r.get(4)?,
        id: r.get(5)?,
        persistent: r.get(6)?,
    })
}

/// What a schema version on disk has, for the reads that differ (a read-only connection reads a
/// v5 or v6 store as it is; only a read-write open migrates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// The snapshot rows have the dump layout columns (v6).
    pub layouts: bool,
    /// "Current" is named by the domain (v7: [`MIGRATE_V6_V7`]), not by the rows' `is_current` flag.
    pub current_pointer: bool,
}

impl Shape {
    pub(crate) fn of(version: u32) -> Self {
        Self { layouts: version >= 6, current_pointer: version >= 7 }
    }
}

/// v7: a defined domain's row names its current snapshot (`current_snapshot`): a create then
/// rewrites that row, which it rewrites anyway for the generation, instead of the old current
/// snapshot row, the new one and an index. A domain without a row (the plugin kit's
/// `SqliteMetadata` keeps snapshots of domains it never defines) has its current snapshot in
/// `snapshot_currents`; defining the domain moves it into the row (`current_of_uuid!` reads either). The
/// flag on the snapshot rows is left at 0 and its index goes.
pub(crate) const MIGRATE_V6_V7: &str = "
ALTER TABLE domains ADD COLUMN current_snapshot TEXT;
CREATE TABLE snapshot_currents (dom_uuid TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL) WITHOUT ROWID;
UPDATE domains SET current_snapshot =
    (SELECT s.name FROM snapshots s WHERE s.dom_uuid = domains.uuid AND s.is_current = 1);
INSERT INTO snapshot_currents (dom_uuid, name)
    SELECT dom_uuid, name FROM snapshots WHERE is_current = 1 AND dom_uuid NOT IN (SELECT uuid FROM domains);
DROP INDEX IF EXISTS snapshots_one_current;
UPDATE snapshots SET is_current = 0 WHERE is_current = 1;
";

/// The current snapshot's name of the domain whose uuid is `?1` (v7): its row's pointer, or for a
/// domain without a row, its `snapshot_currents` row.
macro_rules! current_of_uuid {
    () => {
        "COALESCE((SELECT current_snapshot FROM domains WHERE uuid = ?1),
                  (SELECT name FROM snapshot_currents WHERE dom_uuid = ?1))"
    };
}

/// A snapshot's record from a row whose first columns are `name, parent, creation_time, state,
/// external, disk_only, <is current>`.
fn info_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SnapshotInfo> {
    Ok(SnapshotInfo {
        name: r.get(0)?,
        parent: r.get(1)?,
        creation_time: r.get(2)?,
        state: r.get(3)?,
        current: r.get(6)?,
        has_metadata: true,
        external: r.get(4)?,
        disk_only: r.get(5)?,
    })
}

/// A free-form store setting (`meta` table), on a connection or inside a transaction.
pub(crate) fn read_meta(conn: &Connection, key: &str) -> Result<Option<String>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")
        .map_err(db)?
        .query_row([key], |r| r.get(0))
        .optional()
        .map_err(db)
}

/// Whether domain `uuid` has a row.
pub(crate) fn domain_exists(conn: &Connection, uuid: &str) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM domains WHERE uuid = ?1").map_err(db)?.exists([uuid]).map_err(db)
}

/// Reads a domain's hierarchy.
pub(crate) fn load_tree(conn: &Connection, shape: Shape, dom: &str) -> Result<SnapshotTree> {
    let sql = if shape.current_pointer {
        concat!(
            "SELECT name, parent, creation_time, state, external, disk_only, name IS ",
            current_of_uuid!(),
            ", seq FROM snapshots WHERE dom_uuid = ?1"
        )
    } else {
        "SELECT name, parent, creation_time, state, external, disk_only, is_current, seq
         FROM snapshots WHERE dom_uuid = ?1"
    };
    let mut stmt = conn.prepare_cached(sql).map_err(db)?;
    let rows = stmt
        .query_map(params![dom], |r| Ok((info_row(r)?, r.get::<_, i64>(7).map(|s| u64::try_from(s).unwrap_or(0))?)))
        .map_err(db)?;
    let records = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db)?;
    Ok(SnapshotTree::from_records(records))
}

/// One snapshot's record, its domain given by name, in one statement (the row holds what the
/// tree keeps of it): NO_DOMAIN when no domain has the name, else NO_DOMAIN_SNAPSHOT.
pub(crate) fn read_info_of_named(conn: &Connection, shape: Shape, dom_name: &str, name: &str) -> Result<SnapshotInfo> {
    macro_rules! info {
        ($current:literal) => {
            concat!(
                "SELECT s.name, s.parent, s.creation_time, s.state, s.external, s.disk_only, ",
                $current,
                " FROM domains m JOIN snapshots s ON s.dom_uuid = m.uuid AND s.name = ?2 WHERE m.name = ?1"
            )
        };
    }
    let sql = if shape.current_pointer { info!("s.name IS m.current_snapshot") } else { info!("s.is_current") };
    let row =
        conn.prepare_cached(sql).map_err(db)?.query_row(params![dom_name, name], info_row).optional().map_err(db)?;
    match row {
        Some(info) => Ok(info),
        None => Err(missing(conn, dom_name, name)?),
    }
}

/// Why a read by domain name found no row: NO_DOMAIN, or NO_DOMAIN_SNAPSHOT (one more read, on
/// the error path only).
fn missing(conn: &Connection, dom_name: &str, name: &str) -> Result<Error> {
    let known =
        conn.prepare_cached("SELECT 1 FROM domains WHERE name = ?1").map_err(db)?.exists([dom_name]).map_err(db)?;
    Ok(if known { Error::no_snapshot(name) } else { Error::no_domain(dom_name) })
}

/// Reads and parses one stored snapshot definition (without parent).
pub(crate) fn read_def(conn: &Connection, dom: &str, name: &str) -> Result<SnapshotDef> {
    let (text, domain): (String, Option<String>) = conn
        .prepare_cached(
            "SELECT s.xml, d.xml FROM snapshots s LEFT JOIN snapshot_domains d ON d.id = s.domain_id
             WHERE s.dom_uuid = ?1 AND s.name = ?2",
        )
        .map_err(db)?
        .query_row(params![dom, name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db)?
        .ok_or_else(|| Error::no_snapshot(name))?;
    let mut def = xml::parse_stored(&text)?;
    if domain.is_some() {
        def.domain = domain;
    }
    Ok(def)
}

/// Schema v6: the stored text's layout (see the module's header); NULL: dump by parsing. The
/// migration fills it for every row whose text qualifies ([`fill_layouts`]).
pub(crate) const MIGRATE_V5_V6: &str = "
ALTER TABLE snapshots ADD COLUMN fmt_parent INTEGER;
ALTER TABLE snapshots ADD COLUMN fmt_domain INTEGER;
ALTER TABLE snapshots ADD COLUMN fmt_domain_end INTEGER;
";

/// What the store keeps of `def`: the secure text without parent, `<active>` and `<domain>`
/// ([`redefine::stored_xml`](crate::redefine::stored_xml)), and its layout when a dump may splice
/// it: when the text parses back to the very definition it was formatted from, or else to one that
/// formats to the same text again (then with that one's layout). Either way the definition the
/// parsing dump would format is one whose formatting is the text at those offsets, so the splice
/// and the parsing dump cannot differ. `None` when the text does not parse back to itself.
///
/// The parse is skipped for a text whose template (below) a checked text had: a workflow's
/// snapshots mostly differ only in name and creation time.
pub(crate) fn stored_text(def: &SnapshotDef, checked: &mut CheckedTemplates) -> (String, Option<Layout>) {
    let stored = redefine::stored_def(def);
    let (text, layout) = xml::format_with_layout(&stored, None, redefine::STORED_FORMAT);
    let template = Template::of(&stored, &text, layout);
    if template.as_ref().is_some_and(|t| checked.0.contains(t)) {
        return (text, Some(layout));
    }
    let verified = match xml::parse_stored(&text) {
        Ok(back) if back == stored => Some(layout),
        Ok(back) => reformatted_layout(back, &text),
        Err(_) => None,
    };
    if let Some(t) = template.filter(|_| verified == Some(layout)) {
        if checked.0.len() >= CHECKED_LIMIT {
            checked.0.clear();
        }
        checked.0.push(t);
    }
    (text, verified)
}

/// Bound on the checked templates a connection keeps.
const CHECKED_LIMIT: usize = 32;

/// Templates of stored texts that parsed back to themselves with their formatting's layout.
#[derive(Debug, Default)]
pub(crate) struct CheckedTemplates(Vec<Template>);

/// A stored text with its name and its creation time cut out, and its layout made relative to
/// them. Two texts with one template differ only in the name's text and the creation time's
/// digits. With names of letters, digits, `.`, `_` and `-` only (text that escaping leaves as
/// it is and the parser reads back as it is, no markup, no whitespace) and a creation time as
/// formatted, parsing reads both into their own fields and nothing else from them, so one text
/// parses back to itself with its layout when the other does, and the layout moves by the
/// lengths of the two cut-outs. Texts are kept far below the parser's size limit, the one rule
/// that sees their whole length. The template's layout is compared with the text's own.
#[derive(Debug, PartialEq, Eq)]
struct Template {
    /// The text before the name (always the same), between the name and the creation time's
    /// digits, and after them.
    between: String,
    after: String,
    /// The layout with the name's and the time's lengths taken off.
    relative: (usize, usize, usize),
}

/// Stored texts longer than this are never templated (the parser's limit is 10 MiB).
const TEMPLATE_MAX_BYTES: usize = 1 << 20;

impl Template {
    fn of(stored: &SnapshotDef, text: &str, layout: Layout) -> Option<Self> {
        const HEAD: &str = "<domainsnapshot>\n  <name>";
        const TIME: &str = "  <creationTime>";
        let name = stored.name.as_str();
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if text.len() > TEMPLATE_MAX_BYTES || !plain(name) || stored.state == 0 {
            return None;
        }
        let name_end = HEAD.len() + name.len();
        if !(text.starts_with(HEAD) && text.get(HEAD.len()..)?.starts_with(name)) {
            return None;
        }
        let time = stored.creation_time.to_string();
        let time_at = layout.parent_at + TIME.len();
        let time_end = time_at + time.len();
        if !(text.get(layout.parent_at..)?.starts_with(TIME) && text.get(time_at..)?.starts_with(&time)) {
            return None;
        }
        if !text.get(time_end..)?.starts_with("</creationTime>\n") || !text.get(name_end..)?.starts_with("</name>\n") {
            return None;
        }
        let cut = name.len() + time.len();
        Some(Self {
            between: text.get(name_end..time_at)?.to_owned(),
            after: text.get(time_end..)?.to_owned(),
            relative: (
                layout.parent_at.checked_sub(name.len())?,
                layout.domain_at.checked_sub(cut)?,
                layout.domain_end.checked_sub(cut)?,
            ),
        })
    }
}

/// The layout of stored text `text` (a row written before schema v6), under the same rule as
/// [`stored_text`].
pub(crate) fn stored_layout(text: &str) -> Option<Layout> {
    reformatted_layout(xml::parse_stored(text).ok()?, text)
}

/// The layout of `back` (what `text` parses to) formatted as stored, when that gives `text`.
fn reformatted_layout(back: SnapshotDef, text: &str) -> Option<Layout> {
    let (again, layout) = xml::format_with_layout(&redefine::stored_def(&back), None, redefine::STORED_FORMAT);
    (again == text).then_some(layout)
}

/// The three layout columns' values for `layout`.
pub(crate) fn layout_columns(layout: Option<Layout>) -> [Option<i64>; 3] {
    let col = |v: usize| i64::try_from(v).ok();
    match layout {
        Some(l) => [col(l.parent_at), col(l.domain_at), col(l.domain_end)],
        None => [None; 3],
    }
}

/// Fills the layout of every snapshot row (the v6 migration, inside its transaction).
pub(crate) fn fill_layouts(conn: &Connection) -> Result<()> {
    let rows = conn
        .prepare("SELECT dom_uuid, name, xml FROM snapshots")
        .map_err(db)?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
        .map_err(db)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db)?;
    let mut stmt = conn
        .prepare(
            "UPDATE snapshots SET fmt_parent = ?3, fmt_domain = ?4, fmt_domain_end = ?5
             WHERE dom_uuid = ?1 AND name = ?2",
        )
        .map_err(db)?;
    for (dom, name, text) in rows {
        let [p, d, e] = layout_columns(stored_layout(&text));
        stmt.execute(params![dom, name, p, d, e]).map_err(db)?;
    }
    Ok(())
}

/// One snapshot's XML as [`Store::snapshot_xml`](crate::store::Store::snapshot_xml) formats it,
/// in one indexed read of its row: spliced from the stored text by its layout, or, without one
/// (or for a non-secure dump of a snapshot with an `<inactiveDomain>`, whose secrets only the
/// parser can strip), parsed and formatted. Parent and current flag come from the same row.
///
/// `dom` is the domain's uuid, or with `by_name` its name: then the same read resolves it (a
/// missing domain is NO_DOMAIN, found by a second read only on that error path).
pub(crate) fn read_xml(
    conn: &Connection,
    memo: &mut DomainMemo,
    (shape, by_name): (Shape, bool),
    dom: &str,
    name: &str,
    flags: FormatFlags,
) -> Result<String> {
    type Row = (String, Option<String>, bool, [Option<i64>; 3], Option<String>, String);
    // The statement from its parts: the layout columns (a v5 store read by a read-only
    // connection has none: its dumps parse), where "current" is (named by the domain from v7, the
    // snapshot row's flag before; a read by domain name has the domain's row), and the domain by
    // uuid or by name (joined in).
    macro_rules! layout {
        () => {
            "s.fmt_parent, s.fmt_domain, s.fmt_domain_end"
        };
    }
    macro_rules! dump {
        ($layout:expr, $current:expr, by_uuid) => {
            concat!(
                "SELECT s.xml, s.parent, ",
                $current,
                ", ",
                $layout,
                ", d.xml, s.dom_uuid FROM snapshots s LEFT JOIN snapshot_domains d ON d.id = s.domain_id",
                " WHERE s.dom_uuid = ?1 AND s.name = ?2"
            )
        };
        ($layout:expr, $current:expr, by_name) => {
            concat!(
                "SELECT s.xml, s.parent, ",
                $current,
                ", ",
                $layout,
                ", d.xml, s.dom_uuid FROM domains m JOIN snapshots s ON s.dom_uuid = m.uuid",
                " LEFT JOIN snapshot_domains d ON d.id = s.domain_id WHERE m.name = ?1 AND s.name = ?2"
            )
        };
    }
    let sql = match (shape.current_pointer, shape.layouts, by_name) {
        (true, _, false) => dump!(layout!(), concat!("s.name IS ", current_of_uuid!()), by_uuid),
        (true, _, true) => dump!(layout!(), "s.name IS m.current_snapshot", by_name),
        (false, true, false) => dump!(layout!(), "s.is_current", by_uuid),
        (false, true, true) => dump!(layout!(), "s.is_current", by_name),
        (false, false, false) => dump!("NULL, NULL, NULL", "s.is_current", by_uuid),
        (false, false, true) => dump!("NULL, NULL, NULL", "s.is_current", by_name),
    };
    let row: Option<Row> = conn
        .prepare_cached(sql)
        .map_err(db)?
        .query_row(params![dom, name], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, [r.get(3)?, r.get(4)?, r.get(5)?], r.get(6)?, r.get(7)?))
        })
        .optional()
        .map_err(db)?;
    let Some((text, parent, current, cols, domain, uuid)) = row else {
        return Err(if by_name { missing(conn, dom, name)? } else { Error::no_snapshot(name) });
    };
    let dom = uuid.as_str();
    let flags = FormatFlags { current, ..flags };
    if let Some(layout) = layout_of(cols) {
        if let Some(out) = splice(&text, layout, parent.as_deref(), domain.as_deref(), dom, flags, memo) {
            return Ok(out);
        }
    }
    let mut def = xml::parse_stored(&text)?;
    if domain.is_some() {
        def.domain = domain;
    }
    def.parent = parent;
    Ok(xml::format(&def, Some(dom), flags))
}

fn layout_of(cols: [Option<i64>; 3]) -> Option<Layout> {
    let at = |v: Option<i64>| v.and_then(|v| usize::try_from(v).ok());
    Some(Layout { parent_at: at(cols[0])?, domain_at: at(cols[1])?, domain_end: at(cols[2])? })
}

/// [`xml::format`] of the definition `text` stores, with `parent`, the full `domain` (or
/// `<domain><uuid>dom`) and `flags`, built from `text`'s pieces. `None` when the layout does
/// not fit the text, or when a non-secure dump would have to strip an `<inactiveDomain>`.
fn splice(
    text: &str,
    layout: Layout,
    parent: Option<&str>,
    domain: Option<&str>,
    dom: &str,
    flags: FormatFlags,
    memo: &mut DomainMemo,
) -> Option<String> {
    let body = text.strip_suffix(xml::SNAPSHOT_END)?;
    let head = body.get(..layout.parent_at)?;
    let middle = body.get(layout.parent_at..layout.domain_at)?;
    let tail = body.get(layout.domain_end..)?;
    // conservative: any mention sends the dump to the parser, which strips what it must
    if !flags.secure && tail.contains("<inactiveDomain") {
        return None;
    }
    let mut o = String::with_capacity(text.len() + domain.map_or(64, |d| d.len() + d.len() / 4) + 64);
    o.push_str(head);
    if let Some(p) = parent {
        xml::push_parent(&mut o, p);
    }
    o.push_str(middle);
    match domain {
        Some(d) => o.push_str(memo.section(d, flags.secure)),
        None => xml::push_domain(&mut o, None, Some(dom), flags.secure),
    }
    o.push_str(tail);
    if flags.internal {
        xml::push_active(&mut o, flags.current);
    }
    o.push_str(xml::SNAPSHOT_END);
    Some(o)
}

/// The last full `<domain>` section a dump formatted: a pure function of the domain text and
/// the secure flag, so it needs no invalidation. Snapshots of one domain mostly share one text
/// (`snapshot_domains`); a hit costs a comparison instead of re-indenting the text and, for a
/// non-secure dump, parsing it to strip its secrets.
#[derive(Debug, Default)]
pub(crate) struct DomainMemo {
    last: Option<(String, bool, String)>,
}

impl DomainMemo {
    /// The `<domain>` section of full domain text `domain`, as [`xml::push_domain`] writes it.
    fn section(&mut self, domain: &str, secure: bool) -> &str {
        let hit = matches!(&self.last, Some((d, s, _)) if *s == secure && d == domain);
        if !hit {
            let mut rendered = String::with_capacity(domain.len() + domain.len() / 4);
            xml::push_domain(&mut rendered, Some(domain), None, secure);
            self.last = Some((domain.to_owned(), secure, rendered));
        }
        self.last.as_ref().map_or("", |(_, _, r)| r.as_str())
    }
}
