//! A dump splices the stored text by its kept layout instead of parsing it (schema v6,
//! `store_rows.rs`). These tests hold it to the old dump, byte for byte: the stored definition
//! parsed back ([`Store::snapshot_def`], parent from the hierarchy) and formatted with the same
//! flags, for every snapshot and every flag combination, after every kind of write (create,
//! redefine new and existing, edit with rename, revert, delete with reparent, delete with
//! CHILDREN, import, a dry run, another connection's write, a reopen) and after migrating a
//! v5 store (and when a read-only connection reads one before it is migrated); and that the
//! current snapshot survives v7's move of "current" to the domain row (from a v6 store, read-only
//! and migrated). The snapshots carry what the splice must get right: names and descriptions that
//! need escaping, disks and memory, a full domain with a password (secure and not), an
//! old-style `<domain><uuid>`, no domain, an `<inactiveDomain>` with a password, a cookie.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use rusqlite::Connection;
use virtplug_model::{
    domain::{DomainDef, TEST_DOMAIN_XML},
    flags::{domain_state as st, snapshot_delete},
    store::{SCHEMA_VERSION, Store, Sync},
    tree::RedefineFlags,
    xml::{self, FormatFlags, ParseFlags, SnapshotDef},
};

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

/// Every combination of the flags a dump takes.
const FLAGS: [FormatFlags; 4] = [
    FormatFlags { secure: false, internal: false, current: false },
    FormatFlags { secure: true, internal: false, current: false },
    FormatFlags { secure: false, internal: true, current: false },
    FormatFlags { secure: true, internal: true, current: false },
];

/// The test domain with a VNC password, which only a secure dump shows.
fn domain_with_password() -> String {
    TEST_DOMAIN_XML.replace("  <devices>\n", "  <devices>\n    <graphics type='vnc' port='-1' passwd='s3cret'/>\n")
}

fn parse(text: &str) -> SnapshotDef {
    xml::parse(text, ParseFlags { redefine: true, ..Default::default() }).unwrap()
}

/// A snapshot of kind `kind` named `name` (escaped here), as a redefine would read it.
fn def(kind: usize, name: &str, description: &str) -> SnapshotDef {
    let name = xml::escape(name);
    let description = xml::escape(description);
    let domain = domain_with_password().replace('\n', "\n  ");
    let text = match kind % 6 {
        // full domain with a password, memory, disks of every type with source children
        0 => format!(
            "<domainsnapshot><name>{name}</name><description>{description}</description><state>running</state>
             <creationTime>1700000000</creationTime><memory snapshot='external' file='/m/{name}.mem'/>
             <disks><disk name='vda' snapshot='external' type='file'><driver type='qcow2'/>
             <source file='/d/a b&amp;.qcow2'><seclabel model='dac' relabel='no'/></source></disk>
             <disk name='vdb' snapshot='no'/>
             <disk name='vdc' type='network'><source protocol='rbd' name='pool/img'><host name='h1' port='6789'/></source></disk>
             </disks>
             {domain}</domainsnapshot>"
        ),
        // no domain at all: the dump names the domain by uuid
        1 => format!(
            "<domainsnapshot><name>{name}</name><state>shutoff</state><creationTime>1700000001</creationTime></domainsnapshot>"
        ),
        // an old-style domain (uuid only), which the dump replaces by the domain's uuid
        2 => format!(
            "<domainsnapshot><name>{name}</name><description>{description}</description><state>disk-snapshot</state>
             <creationTime>1700000002</creationTime><domain><uuid>11111111-2222-3333-4444-555555555555</uuid></domain>
             </domainsnapshot>"
        ),
        // an inactive domain with a password (a non-secure dump must parse to strip it), a cookie
        3 => format!(
            "<domainsnapshot><name>{name}</name><state>running</state><creationTime>1700000003</creationTime>
             {domain}
             <inactiveDomain type='test'><name>test</name><devices><graphics type='vnc' passwd='in&apos;active'/></devices></inactiveDomain>
             <cookie><qemu><x a='1'>t</x></qemu></cookie></domainsnapshot>"
        ),
        // creation time 0, no description
        4 => format!("<domainsnapshot><name>{name}</name><state>paused</state><creationTime>0</creationTime>{domain}</domainsnapshot>"),
        // a cookie on a shut-off snapshot: parsing drops it, so the stored text is not what it
        // parses back to and this row keeps no layout (the dump parses)
        _ => format!(
            "<domainsnapshot><name>{name}</name><state>shutoff</state><creationTime>1700000005</creationTime>
             <cookie><c/></cookie></domainsnapshot>"
        ),
    };
    let mut d = parse(&text);
    if kind % 6 == 5 {
        // what a driver could store: parse gives no cookie for an offline snapshot
        d.cookie = Some("<cookie>\n  <c/>\n</cookie>".into());
    }
    d
}

/// The dump as it was before the splice: the stored definition parsed, formatted (or the
/// parser's error).
fn parsed_dump(s: &mut Store, name: &str, flags: FormatFlags) -> Result<String, virtplug_model::Error> {
    let current = s.snapshot(VM, name).unwrap().current;
    let def = s.snapshot_def(VM, name)?;
    Ok(xml::format(&def, Some(VM), FormatFlags { current, ..flags }))
}

/// Every snapshot, every flag combination: the dump equals the parsed dump. Returns how many
/// snapshots were compared.
fn check(s: &mut Store, step: &str) -> usize {
    let list = s.snapshots(VM).unwrap();
    let dom_name = s.domain_by_uuid(VM).unwrap().name;
    for info in &list {
        for flags in FLAGS {
            let got = s.snapshot_xml(VM, &info.name, flags);
            let want = parsed_dump(s, &info.name, flags);
            assert_eq!(got, want, "after {step}: snapshot {:?}, {flags:?}", info.name);
            let named = s.snapshot_xml_of_named(&dom_name, &info.name, flags);
            assert_eq!(named, want, "after {step}, by domain name: snapshot {:?}, {flags:?}", info.name);
        }
        let record = s.snapshot_of_named(&dom_name, &info.name).unwrap();
        assert_eq!(&record, info, "after {step}, the record by domain name: snapshot {:?}", info.name);
    }
    list.len()
}

/// A dump by domain name resolves the name in the same read; its errors are the two-step
/// lookup's: NO_DOMAIN for an unknown domain, NO_DOMAIN_SNAPSHOT for an unknown snapshot.
#[test]
fn a_read_by_domain_name_gives_the_lookups_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = new_store(&dir.path().join("s.db"));
    let dom_name = s.domain_by_uuid(VM).unwrap().name;
    let e = s.snapshot_xml_of_named("nope", "x", FLAGS[0]).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (virtplug_model::codes::NO_DOMAIN, "no domain with matching name 'nope'"));
    let e = s.snapshot_xml_of_named(&dom_name, "x", FLAGS[0]).unwrap_err();
    assert_eq!(e.code, virtplug_model::codes::NO_DOMAIN_SNAPSHOT);
    assert_eq!(e.message, virtplug_model::Error::no_snapshot("x").message);
    let e = s.snapshot_of_named("nope", "x").unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (virtplug_model::codes::NO_DOMAIN, "no domain with matching name 'nope'"));
    let e = s.snapshot_of_named(&dom_name, "x").unwrap_err();
    assert_eq!(e.code, virtplug_model::codes::NO_DOMAIN_SNAPSHOT);
}

fn new_store(path: &std::path::Path) -> Store {
    let mut s = Store::open(path, Sync::Normal).unwrap();
    s.define_domain(&DomainDef::parse(&domain_with_password()).unwrap(), st::RUNNING, 1, 1).unwrap();
    s
}

/// Names of the rows that keep no layout (their dump parses).
fn unspliced(path: &std::path::Path) -> Vec<String> {
    let c = Connection::open(path).unwrap();
    let mut stmt = c.prepare("SELECT name FROM snapshots WHERE fmt_parent IS NULL ORDER BY name").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

const NAMES: [&str; 6] = ["a&<0>", "b'1\"", "c2", "d3", "e4", "f5"];

#[test]
fn the_spliced_dump_is_the_parsed_dump_after_every_kind_of_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut s = new_store(&path);
    // create: a chain of every kind
    for (kind, name) in NAMES.iter().enumerate() {
        let mut d = def(kind, name, &format!("<created> & 'quoted' {kind}\n  second line"));
        d.parent = None;
        s.create(VM, &d).unwrap();
    }
    assert_eq!(check(&mut s, "create"), 6);
    // only the snapshot whose text does not parse back to itself keeps no layout
    assert_eq!(unspliced(&path), ["f5"]);
    // more of every kind with plain names, other creation times and names of other lengths:
    // their texts share templates with checked ones (store_rows.rs), and each is still exact
    for round in 0..3 {
        for kind in 0..6 {
            let mut d = def(kind, &format!("g{kind}{}", "x".repeat(round * 7)), "the same description");
            d.creation_time = 1_600_000_000 + i64::try_from(round * 1_000_003 + kind).unwrap();
            s.create(VM, &d).unwrap();
        }
    }
    // names with a DEL, a carriage return, spaces: never templated (only plain
    // names are), each text is checked by parsing it (this parser reads them back as written)
    for (i, name) in ["h\u{7f}1", "h\r1", "h 1", "h\t1"].iter().enumerate() {
        let mut d = def(1, name, "");
        d.creation_time = 1_500_000_000 + i64::try_from(i).unwrap();
        s.create(VM, &d).unwrap();
    }
    assert_eq!(check(&mut s, "create (same templates)"), 28);
    assert_eq!(unspliced(&path), ["f5", "g5", "g5xxxxxxx", "g5xxxxxxxxxxxxxx"]);
    for round in 0..3 {
        for kind in 0..6 {
            s.delete(VM, &format!("g{kind}{}", "x".repeat(round * 7)), 0).unwrap();
        }
    }
    for name in ["h\u{7f}1", "h\r1", "h 1", "h\t1"] {
        s.delete(VM, name, 0).unwrap();
    }

    // redefine: new snapshots under an escaped parent, one current (a new snapshot cannot have
    // an old-style domain)
    for (i, kind) in [0, 1, 3, 4].into_iter().enumerate() {
        let mut d = def(kind, ["x&0", "y1", "z2", "w3"][i], "redefined");
        d.parent = Some("b'1\"".into());
        s.redefine(VM, d, RedefineFlags { current: i == 1, ..Default::default() }).unwrap();
    }
    check(&mut s, "redefine (new)");
    // redefine existing snapshots: a longer description moves every offset; one without its
    // domain keeps the old one; old-style domain -> full domain; full domain -> old-style one
    // (the old full domain is kept, and the stored text keeps the old-style one too)
    let mut longer = def(0, "a&<0>", &"a much longer description ".repeat(20));
    longer.parent = None;
    s.redefine(VM, longer, RedefineFlags::default()).unwrap();
    let mut no_domain = def(0, "d3", "no domain given: the old one is kept");
    no_domain.domain = None;
    no_domain.parent = Some("c2".into());
    s.redefine(VM, no_domain, RedefineFlags::default()).unwrap();
    let mut full = def(2, "c2", "");
    full.domain = Some(domain_with_password());
    full.legacy_uuid = None;
    full.parent = Some("b'1\"".into());
    s.redefine(VM, full, RedefineFlags::default()).unwrap();
    let mut legacy = def(4, "e4", "old-style domain over a full one");
    legacy.domain = None;
    legacy.legacy_uuid = Some("11111111-2222-3333-4444-555555555555".into());
    legacy.parent = Some("d3".into());
    s.redefine(VM, legacy, RedefineFlags::default()).unwrap();
    assert!(s.snapshot_xml(VM, "e4", FLAGS[1]).unwrap().contains("<name>test</name>"));
    check(&mut s, "redefine (existing)");

    // edit with rename: the children follow, the text is rewritten under the new name
    let mut renamed = def(2, "c2 <renamed> & more", "edited");
    renamed.parent = Some("b'1\"".into());
    s.edit(VM, "c2", renamed, RedefineFlags::default()).unwrap();
    assert_eq!(s.snapshot(VM, "d3").unwrap().parent.as_deref(), Some("c2 <renamed> & more"));
    check(&mut s, "edit with rename");
    // edit in place, made current
    let mut edited = def(3, "e4", "edited in place");
    edited.parent = Some("d3".into());
    s.edit(VM, "e4", edited, RedefineFlags { current: true, ..Default::default() }).unwrap();
    check(&mut s, "edit in place");

    // revert
    s.set_current(VM, "x&0").unwrap();
    check(&mut s, "set_current");
    // delete with reparent: the children of the renamed snapshot move to its parent
    s.delete(VM, "c2 <renamed> & more", 0).unwrap();
    assert_eq!(s.snapshot(VM, "d3").unwrap().parent.as_deref(), Some("b'1\""));
    check(&mut s, "delete with reparent");
    // delete the current snapshot's parent's subtree children only
    s.delete(VM, "d3", snapshot_delete::CHILDREN_ONLY).unwrap();
    check(&mut s, "delete CHILDREN_ONLY");
    s.delete(VM, "b'1\"", snapshot_delete::CHILDREN).unwrap();
    assert_eq!(check(&mut s, "delete CHILDREN"), 1);

    // a dry run changes nothing, the import writes a hierarchy of every kind
    let imported: Vec<SnapshotDef> = (0..12)
        .map(|i| {
            // an import cannot bring an old-style domain either
            let mut d = def([0, 1, 3, 4, 5][i % 5], &format!("i{i}&"), &format!("imported {i}"));
            d.parent = (i > 0).then(|| format!("i{}&", (i - 1) / 2));
            d
        })
        .rev()
        .collect();
    s.dry_run(|w| w.import(VM, imported.clone(), Some("i7&"))).unwrap();
    assert_eq!(check(&mut s, "dry run"), 1);
    s.import(VM, imported, Some("i7&")).unwrap();
    assert_eq!(check(&mut s, "import"), 13);

    // another connection's write, seen by this one; then a reopen
    let mut other = Store::open(&path, Sync::Normal).unwrap();
    other.delete(VM, "i1&", 0).unwrap();
    other.set_current(VM, "i4&").unwrap();
    assert_eq!(check(&mut s, "another connection's write"), 12);
    drop(s);
    let mut s = Store::open(&path, Sync::Normal).unwrap();
    assert_eq!(check(&mut s, "reopen"), 12);
    assert_eq!(unspliced(&path), ["i4&", "i9&"]);
}

/// Turns a store of today's schema back into v6: "current" is the snapshot row's `is_current`
/// flag (under a unique index), not named by the domain.
fn back_to_v6(path: &std::path::Path) {
    let c = Connection::open(path).unwrap();
    c.execute_batch(
        "UPDATE snapshots SET is_current = 1 WHERE name = COALESCE(
             (SELECT current_snapshot FROM domains WHERE uuid = snapshots.dom_uuid),
             (SELECT name FROM snapshot_currents WHERE dom_uuid = snapshots.dom_uuid));
         ALTER TABLE domains DROP COLUMN current_snapshot;
         DROP TABLE snapshot_currents;
         CREATE UNIQUE INDEX snapshots_one_current ON snapshots (dom_uuid) WHERE is_current = 1;",
    )
    .unwrap();
    c.pragma_update(None, "user_version", 6).unwrap();
}

/// The current snapshot's name, as every read reports it: the tree, the record by name, and
/// `<active>` in the dump (the parsed dump is checked against the spliced one by [`check`]).
fn current_of(s: &mut Store) -> String {
    let name = s.current(VM).unwrap().expect("a current snapshot").name;
    let dom_name = s.domain_by_uuid(VM).unwrap().name;
    assert!(s.snapshot_of_named(&dom_name, &name).unwrap().current);
    let internal = FormatFlags { secure: true, internal: true, ..Default::default() };
    for info in s.snapshots(VM).unwrap() {
        let active = if info.name == name { "<active>1</active>" } else { "<active>0</active>" };
        assert!(s.snapshot_xml(VM, &info.name, internal).unwrap().contains(active), "{}", info.name);
        assert!(s.snapshot_xml_of_named(&dom_name, &info.name, internal).unwrap().contains(active), "{}", info.name);
    }
    name
}

/// v7 moved "current" from the snapshot rows' flag to the domain: a read-only connection
/// reads a v6 store as it is, a read-write one migrates it, and the current snapshot is the same
/// through every read before and after; later moves (create, revert, delete of the current one,
/// rename of the current one) are seen by every read.
#[test]
fn a_v6_store_keeps_its_current_snapshot_through_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut s = new_store(&path);
    for (kind, name) in NAMES.iter().enumerate() {
        s.create(VM, &def(kind, name, "before the migration")).unwrap();
    }
    s.set_current(VM, "c2").unwrap();
    drop(s);
    back_to_v6(&path);
    let mut ro = Store::open_read_only(&path).unwrap().unwrap();
    assert_eq!(ro.schema_version().unwrap(), 6);
    assert_eq!(check(&mut ro, "read-only open of v6"), 6);
    assert_eq!(current_of(&mut ro), "c2");
    drop(ro);
    let mut s = Store::open(&path, Sync::Normal).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(check(&mut s, "migration of v6"), 6);
    assert_eq!(current_of(&mut s), "c2");
    {
        let c = Connection::open(&path).unwrap();
        let flagged: i64 =
            c.query_row("SELECT count(*) FROM snapshots WHERE is_current != 0", [], |r| r.get(0)).unwrap();
        assert_eq!(flagged, 0, "v7 leaves the old flag at 0");
        let index: i64 = c
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'snapshots_one_current'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(index, 0);
    }
    let mut d = def(2, "g6", "after the migration");
    d.parent = None;
    s.create(VM, &d).unwrap();
    assert_eq!(current_of(&mut s), "g6");
    // deleting the current snapshot passes "current" to its parent (c2)
    s.delete(VM, "g6", 0).unwrap();
    assert_eq!(current_of(&mut s), "c2");
    // renaming the current snapshot keeps it current under its new name
    let mut renamed = s.snapshot_def(VM, "c2").unwrap();
    renamed.name = "c2-renamed".into();
    s.edit(VM, "c2", renamed, RedefineFlags::default()).unwrap();
    assert_eq!(current_of(&mut s), "c2-renamed");
    // another connection sees the same
    let mut other = Store::open(&path, Sync::Normal).unwrap();
    assert_eq!(current_of(&mut other), "c2-renamed");
    // a delete of the current snapshot's whole subtree leaves its parent current, and deleting
    // that root with its children leaves none
    other.delete(VM, "c2-renamed", snapshot_delete::CHILDREN).unwrap();
    assert_eq!(current_of(&mut other), "b'1\"");
    other.delete(VM, NAMES[0], snapshot_delete::CHILDREN).unwrap();
    assert!(other.current(VM).unwrap().is_none());
    assert_eq!(check(&mut other, "everything deleted"), 0);
    let c = Connection::open(&path).unwrap();
    // the current snapshot as kept: the domain's row, or a `snapshot_currents` row
    let rows = |c: &Connection| -> i64 {
        c.query_row(
            "SELECT (SELECT count(*) FROM snapshot_currents)
                  + (SELECT count(*) FROM domains WHERE current_snapshot IS NOT NULL)",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(rows(&c), 0);
    // dropping every snapshot's metadata drops the current one's too: a snapshot redefined later
    // under the same name is not current unless asked
    other.create(VM, &def(0, "again", "")).unwrap();
    assert_eq!(rows(&c), 1);
    let again = other.snapshot_def(VM, "again").unwrap();
    other.write(|w| w.remove_all_snapshots(VM)).unwrap();
    assert_eq!(rows(&c), 0);
    other.redefine(VM, again, RedefineFlags::default()).unwrap();
    assert!(other.current(VM).unwrap().is_none());
    assert!(!other.snapshot(VM, "again").unwrap().current);
}

/// Snapshots of a domain the store has no row for (the plugin kit's `SqliteMetadata` keeps such)
/// have a current snapshot too, through a v6 migration, and keep it when the domain is defined.
#[test]
fn a_domain_without_a_row_has_a_current_snapshot_until_it_is_defined() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut s = Store::open(&path, Sync::Normal).unwrap();
    for (kind, name) in NAMES.iter().enumerate().take(3) {
        s.create(VM, &def(kind, name, "")).unwrap();
    }
    s.set_current(VM, NAMES[1]).unwrap();
    assert_eq!(s.current(VM).unwrap().unwrap().name, NAMES[1]);
    drop(s);
    back_to_v6(&path);
    let mut s = Store::open(&path, Sync::Normal).unwrap();
    assert_eq!(s.current(VM).unwrap().unwrap().name, NAMES[1]);
    assert!(s.snapshot(VM, NAMES[1]).unwrap().current);
    s.delete(VM, NAMES[1], 0).unwrap();
    assert_eq!(s.current(VM).unwrap().unwrap().name, NAMES[0]);
    let kept = |c: &Connection, sql: &str| -> Option<String> { c.query_row(sql, [VM], |r| r.get(0)).unwrap() };
    let c = Connection::open(&path).unwrap();
    let table = "SELECT (SELECT name FROM snapshot_currents WHERE dom_uuid = ?1)";
    let row = "SELECT (SELECT current_snapshot FROM domains WHERE uuid = ?1)";
    assert_eq!(kept(&c, table).as_deref(), Some(NAMES[0]));
    // defining the domain moves its current snapshot into its row
    s.define_domain(&DomainDef::parse(&domain_with_password()).unwrap(), st::RUNNING, 1, 1).unwrap();
    assert_eq!((kept(&c, table), kept(&c, row).as_deref()), (None, Some(NAMES[0])));
    assert_eq!(current_of(&mut s), NAMES[0]);
    assert_eq!(check(&mut s, "defined"), 2);
    s.set_current(VM, NAMES[2]).unwrap();
    assert_eq!((kept(&c, table), kept(&c, row).as_deref()), (None, Some(NAMES[2])));
    assert_eq!(current_of(&mut s), NAMES[2]);
}

#[test]
fn a_v5_store_is_migrated_with_layouts_where_the_text_parses_back_to_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let mut s = new_store(&path);
    for (kind, name) in NAMES.iter().enumerate() {
        s.create(VM, &def(kind, name, "before the migration")).unwrap();
    }
    drop(s);
    back_to_v6(&path);
    {
        // back to v5: no layout columns; plus a row in an older version's form (its domain
        // inside its text, no creation time) that must keep being dumped by parsing
        let c = Connection::open(&path).unwrap();
        let mut old = def(0, "old", "an older version's row");
        old.parent = None;
        let text = xml::format(&old, None, FormatFlags { secure: true, ..Default::default() })
            .replace("  <creationTime>1700000000</creationTime>\n", "");
        c.execute_batch(
            "ALTER TABLE snapshots DROP COLUMN fmt_parent;
             ALTER TABLE snapshots DROP COLUMN fmt_domain;
             ALTER TABLE snapshots DROP COLUMN fmt_domain_end;",
        )
        .unwrap();
        c.execute(
            "INSERT INTO snapshots (dom_uuid, name, parent, xml, creation_time, state, external, disk_only, is_current, seq)
             VALUES (?1, 'old', 'f5', ?2, 0, 1, 1, 0, 0, 99)",
            rusqlite::params![VM, text],
        )
        .unwrap();
        c.pragma_update(None, "user_version", 5).unwrap();
    }
    // a read-only connection reads the v5 store as it is (its dumps parse) and migrates nothing
    let mut ro = Store::open_read_only(&path).unwrap().unwrap();
    assert_eq!(check(&mut ro, "read-only open of v5"), 7);
    assert_eq!(current_of(&mut ro), "f5");
    assert_eq!(ro.schema_version().unwrap(), 5);
    drop(ro);
    let mut s = Store::open(&path, Sync::Normal).unwrap();
    assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(check(&mut s, "migration"), 7);
    assert_eq!(current_of(&mut s), "f5");
    assert_eq!(unspliced(&path), ["f5", "old"]);
    assert!(s.snapshot_xml(VM, "old", FLAGS[1]).unwrap().contains("<creationTime>0</creationTime>"));
}
