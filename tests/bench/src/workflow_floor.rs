//! The workflow's floor (issue 19, point 1): what one snapshot operation cannot avoid costing on
//! the mock's durable store, measured in a fresh process beside the workflow itself.
//!
//! - write floor: one single-row transaction (`BEGIN IMMEDIATE; INSERT; COMMIT`) on a SQLite file
//!   opened with the store's pragmas (WAL, `synchronous` NORMAL or FULL as `VIRTPLUG_MOCK_SYNC`
//!   says, 64 MiB page cache), into a table shaped as the store's `snapshots` table, with a
//!   snapshot's XML of the size the workflow stores; at FULL every commit includes SQLite's one
//!   fsync of the WAL;
//! - read floor: one indexed `SELECT xml … WHERE dom_uuid = ? AND name = ?` of those rows;
//! - store-schema write floor: the same single-row transaction on a file the model's store created
//!   (its real schema: the snapshot row's table and indexes), plus the statement of the domain's
//!   generation every write must advance (the daemon's ETag rests on it; the domain's row also
//!   names its current snapshot): the least a snapshot write costs with the store's schema,
//!   before any host, plugin or XML work;
//! - two-row write floor: the write floor's transaction plus an update of one row of a second
//!   table (a domain's row, of the test domain's size) in the same transaction: the least any
//!   store pays that records a new snapshot and, in the same commit, that its domain changed
//!   (libvirt's create makes the new snapshot current: two facts, the snapshot's and the domain's);
//! - store-schema read floor (of a dump): on that file, the rows then sharing one domain text of
//!   the test domain's size, one statement by domain name joining the domain row, the snapshot row
//!   and its domain text (what a dump reads), the two texts copied into one string (the bytes a
//!   dump hands back): the least a dump costs with the store's schema, before any host, plugin or
//!   XML work;
//! - work floors of a create and of a redefine: the two-row write floor's transaction, each
//!   preceded by the XML work that no implementation validating its input and storing libvirt's
//!   XML can skip: one parse of the operation's input document by the model's parser (a bare
//!   create document; a redefine's dumped document with its `<domain>`) and one formatting of the
//!   stored form of the result, which is what the transaction stores. No host, ABI, plugin or
//!   tree work; the domain text is not stored (a store keeps it once per domain);
//! - validated work floors: the same with the document parsed twice, as a host that validates
//!   its input before dispatching (DESIGN.md's order of checks) and a plugin that receives the
//!   document's text across the ABI (the plugin parses it with flags only it can choose: a plain
//!   create's depend on the domain's state) must: the least this architecture's create and
//!   redefine cost, still without the ABI call, the tree, the job check or the cache's checks.
//!
//! Each is the mean over `n` operations, the table growing to `n` rows as the workflow's does.

use std::time::Instant;

use anyhow::{Context, Result};
use rusqlite::{Connection, TransactionBehavior, params};

/// The store's `snapshots` table (plugin-api/model/src/store.rs, schema v1 to v3).
const SCHEMA: &str = "
CREATE TABLE snapshots (
    dom_uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    parent TEXT,
    xml TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    state INTEGER NOT NULL,
    external INTEGER NOT NULL,
    disk_only INTEGER NOT NULL,
    is_current INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL,
    domain_id INTEGER,
    PRIMARY KEY (dom_uuid, name)
) WITHOUT ROWID;
";

const DOM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// Child side: `n` single-row write transactions, then `n` indexed reads; prints
/// `write <s per op>` and `read <s per op>`.
pub fn one(args: &[String]) -> Result<()> {
    let n: usize = args.first().context("n")?.parse()?;
    let full = std::env::var("VIRTPLUG_MOCK_SYNC").is_ok_and(|s| s.eq_ignore_ascii_case("full"));
    let dir = std::env::temp_dir().join(format!("virtplug-bench-floor-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = measure(&dir.join("floor.db"), n, full)
        .and_then(|wr| Ok((wr, schema_write(&dir, n, full)?)))
        .and_then(|(wr, schema)| Ok((wr, schema, schema_read(&dir, n)?)))
        .and_then(|(wr, schema, read)| Ok((wr, schema, read, pair_write(&dir.join("pair.db"), n, full)?)))
        .and_then(|floors| {
            let create = work_write(&dir.join("work-create.db"), n, full, Work::Create, 1)?;
            Ok((floors, create, work_write(&dir.join("work-redefine.db"), n, full, Work::Redefine, 1)?))
        })
        .and_then(|floors| {
            let create = work_write(&dir.join("work-create-2.db"), n, full, Work::Create, 2)?;
            Ok((floors, create, work_write(&dir.join("work-redefine-2.db"), n, full, Work::Redefine, 2)?))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let (
        (((write, read), schema, schema_read, pair), work_create, work_redefine),
        validated_create,
        validated_redefine,
    ) = result?;
    println!("write {write}");
    println!("pair_write {pair}");
    println!("read {read}");
    println!("schema_write {schema}");
    println!("schema_read {schema_read}");
    println!("work_create {work_create}");
    println!("work_redefine {work_redefine}");
    println!("work_create_validated {validated_create}");
    println!("work_redefine_validated {validated_redefine}");
    Ok(())
}

/// The store-schema write floor: `n` single-row transactions, each inserting one snapshot row and
/// advancing the generation, on a store file the model created (then closed).
fn schema_write(dir: &std::path::Path, n: usize, full: bool) -> Result<f64> {
    use virtplug_plugin_sdk::model::store::{Store, Sync};
    let path = dir.join("schema.db");
    drop(Store::open(&path, if full { Sync::Full } else { Sync::Normal })?);
    let mut conn = Connection::open(&path)?;
    conn.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "cache_size", -65536)?;
    let domain = virtplug_plugin_sdk::model::domain::TEST_DOMAIN_XML;
    conn.execute(
        "INSERT INTO domains (uuid, name, xml, state, reason, dom_id) VALUES (?1, 'test', ?2, 1, 1, 1)",
        params![DOM, domain],
    )?;
    inserts(
        &mut conn,
        n,
        Some(
            "UPDATE domains SET generation = generation + 1 WHERE uuid = ?1 AND (generation & 4294967295) != 4294967295",
        ),
    )
}

/// The two-row write floor: `n` transactions, each inserting one row as the write floor does and
/// updating the one row of a second table (of a domain row's size).
fn pair_write(path: &std::path::Path, n: usize, full: bool) -> Result<f64> {
    let mut conn = pair_file(path, full)?;
    inserts(&mut conn, n, Some(PAIR_UPDATE))
}

/// The second statement of a two-row write.
const PAIR_UPDATE: &str = "UPDATE owner SET changes = changes + 1 WHERE uuid = ?1";

/// The write floor's file plus the second table of a two-row write, with the domain's row.
fn pair_file(path: &std::path::Path, full: bool) -> Result<Connection> {
    let conn = floor_file(path, full)?;
    conn.execute_batch(
        "CREATE TABLE owner (uuid TEXT PRIMARY KEY NOT NULL, xml TEXT NOT NULL, changes INTEGER NOT NULL)",
    )?;
    let domain = virtplug_plugin_sdk::model::domain::TEST_DOMAIN_XML;
    conn.execute("INSERT INTO owner (uuid, xml, changes) VALUES (?1, ?2, 0)", params![DOM, domain])?;
    Ok(conn)
}

/// Which operation's XML work a work floor does.
#[derive(Clone, Copy, PartialEq)]
enum Work {
    /// A bare `<domainsnapshot><name>…</name></domainsnapshot>`, filled in as a create fills it.
    Create,
    /// The secure dump of such a snapshot (its `<domain>` embedded), parsed for a redefine.
    Redefine,
}

/// A work floor (see the module header): `n` two-row transactions, each storing the stored form
/// of the operation's input document, parsed and formatted inside the timed loop.
/// `parses`: how many times the document is parsed (2: the validated work floor).
fn work_write(path: &std::path::Path, n: usize, full: bool, work: Work, parses: usize) -> Result<f64> {
    use virtplug_plugin_sdk::model::{
        domain::TEST_DOMAIN_XML,
        redefine::stored_xml,
        xml::{self, FormatFlags, ParseFlags},
    };
    const RUNNING: u32 = 1;
    let create = |name: &str| -> Result<xml::SnapshotDef> {
        let mut def =
            xml::parse(&format!("<domainsnapshot><name>{name}</name></domainsnapshot>"), ParseFlags::default())?;
        def.fill_defaults(1_700_000_000);
        def.state = RUNNING;
        Ok(def)
    };
    // The input documents, in memory before the timed loop as the workflow holds them.
    let docs: Vec<String> = (0..n)
        .map(|i| match work {
            Work::Create => Ok(format!("<domainsnapshot><name>s{i}</name></domainsnapshot>")),
            Work::Redefine => {
                let mut def = create(&format!("s{i}"))?;
                def.parent = i.checked_sub(1).map(|p| format!("s{p}"));
                def.domain = Some(TEST_DOMAIN_XML.to_owned());
                Ok(xml::format(&def, None, FormatFlags { secure: true, ..Default::default() }))
            }
        })
        .collect::<Result<_>>()?;
    let flags = ParseFlags { redefine: work == Work::Redefine, ..Default::default() };
    let mut conn = pair_file(path, full)?;
    inserts_with(&mut conn, n, Some(PAIR_UPDATE), |i, text| {
        // the host's validation first, its definition dropped (only text crosses the ABI)
        for _ in 1..parses {
            std::hint::black_box(xml::parse(&docs[i], flags)?);
        }
        let mut def = xml::parse(&docs[i], flags)?;
        if work == Work::Create {
            def.fill_defaults(1_700_000_000);
            def.state = RUNNING;
        }
        *text = stored_xml(&def);
        Ok(())
    })
}

/// A floor's SQLite file: the store's pragmas and its `snapshots` table.
fn floor_file(path: &std::path::Path, full: bool) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", if full { "FULL" } else { "NORMAL" })?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// `n` single-row write transactions `s0`…, each also running `also` (bound to the domain's
/// UUID) when given; the mean seconds per transaction.
fn inserts(conn: &mut Connection, n: usize, also: Option<&str>) -> Result<f64> {
    let xml = stored_xml();
    inserts_with(conn, n, also, |_, text| {
        if text.is_empty() {
            text.push_str(&xml);
        }
        Ok(())
    })
}

/// [`inserts`], each row's text made by `text(i, buffer)` inside the timed loop.
fn inserts_with(
    conn: &mut Connection,
    n: usize,
    also: Option<&str>,
    mut text: impl FnMut(usize, &mut String) -> Result<()>,
) -> Result<f64> {
    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let mut xml = String::new();
    let start = Instant::now();
    for (i, name) in names.iter().enumerate() {
        text(i, &mut xml)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(
            "INSERT INTO snapshots (dom_uuid, name, parent, xml, creation_time, state, external, disk_only, seq)
             VALUES (?1, ?2, ?3, ?4, 1700000000, 1, 0, 0, ?5)",
        )?
        .execute(params![DOM, name, i.checked_sub(1).map(|p| format!("s{p}")), xml, i as i64])?;
        if let Some(sql) = also {
            tx.prepare_cached(sql)?.execute([DOM])?;
        }
        tx.commit()?;
    }
    Ok(start.elapsed().as_secs_f64() / n.max(1) as f64)
}

/// The store-schema read floor of a dump, on the file [`schema_write`] filled: every row then
/// shares one domain text (as a chain's snapshots do); `n` reads by domain name, each row's two
/// texts copied into one string.
fn schema_read(dir: &std::path::Path, n: usize) -> Result<f64> {
    let conn = Connection::open(dir.join("schema.db"))?;
    conn.pragma_update(None, "cache_size", -65536)?;
    let domain = virtplug_plugin_sdk::model::domain::TEST_DOMAIN_XML;
    conn.execute("INSERT INTO snapshot_domains (id, digest, xml) VALUES (1, 'd', ?1)", [domain])?;
    conn.execute("UPDATE snapshots SET domain_id = 1", [])?;
    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let start = Instant::now();
    let mut bytes = 0;
    for name in &names {
        let dump = conn
            .prepare_cached(
                "SELECT s.xml, d.xml FROM domains m JOIN snapshots s ON s.dom_uuid = m.uuid
                 LEFT JOIN snapshot_domains d ON d.id = s.domain_id WHERE m.name = 'test' AND s.name = ?1",
            )?
            .query_row([name], |r| {
                let (text, domain) = (r.get_ref(0)?.as_str()?, r.get_ref(1)?.as_str()?);
                let mut out = String::with_capacity(text.len() + domain.len());
                out.push_str(text);
                out.push_str(domain);
                Ok(out)
            })?;
        bytes += dump.len();
    }
    let read = start.elapsed().as_secs_f64() / n.max(1) as f64;
    if bytes == 0 && n > 0 {
        anyhow::bail!("floor: nothing read");
    }
    Ok(read)
}

/// About the size of what the workflow stores per snapshot (the stored XML of a bare create).
fn stored_xml() -> String {
    format!(
        "<domainsnapshot>\n  <name>s0</name>\n  <state>running</state>\n  <creationTime>1700000000</creationTime>\n  <memory snapshot='internal'/>\n  <disks/>\n  {}\n</domainsnapshot>\n",
        " ".repeat(64)
    )
}

fn measure(path: &std::path::Path, n: usize, full: bool) -> Result<(f64, f64)> {
    let mut conn = floor_file(path, full)?;
    let write = inserts(&mut conn, n, None)?;
    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    let start = Instant::now();
    let mut bytes = 0;
    for name in &names {
        let xml: String = conn
            .prepare_cached("SELECT xml FROM snapshots WHERE dom_uuid = ?1 AND name = ?2")?
            .query_row(params![DOM, name], |r| r.get(0))?;
        bytes += xml.len();
    }
    let read = start.elapsed().as_secs_f64() / n.max(1) as f64;
    // Keeps the reads from being optimised away.
    if bytes == 0 && n > 0 {
        anyhow::bail!("floor: nothing read");
    }
    Ok((write, read))
}
