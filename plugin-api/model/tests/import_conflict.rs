//! Issue 11.2 end to end through the bundle text: host s0→s1→s2→s3 (current s3); another host's
//! export b0→b1→b2→s1→b4 (a valid bundle whose s1 is another snapshot). The dry run and the
//! import both refuse with libvirt's duplicate-name error and the host is unchanged; the host's
//! own export imports back as a no-op.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use virtplug_model::{
    Error,
    bundle::Bundle,
    codes,
    domain::{DomainDef, TEST_DOMAIN_XML},
    flags::domain_state as st,
    store::{Store, Sync},
    xml::{self, FormatFlags, ParseFlags, SnapshotDef},
};

const VM: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";

fn host(chain: &[&str], description: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(&dir.path().join("m.db"), Sync::Normal).unwrap();
    s.define_domain(&DomainDef::parse(TEST_DOMAIN_XML).unwrap(), st::RUNNING, 1, 1).unwrap();
    for (i, name) in chain.iter().enumerate() {
        let def = SnapshotDef {
            name: (*name).into(),
            description: Some(format!("{description} {name}")),
            state: st::RUNNING,
            creation_time: 1_795_681_679 + i as i64,
            domain: Some(TEST_DOMAIN_XML.into()),
            ..Default::default()
        };
        s.create(VM, &def).unwrap();
    }
    (dir, s)
}

/// The export as `snapshot-export` writes it (the checksummed bundle text).
fn export(s: &mut Store) -> String {
    let secure = FormatFlags { secure: true, ..Default::default() };
    let redefine = ParseFlags { redefine: true, ..Default::default() };
    let names: Vec<String> = s.snapshots(VM).unwrap().into_iter().map(|i| i.name).collect();
    let defs = names.iter().map(|n| xml::parse(&s.snapshot_xml(VM, n, secure).unwrap(), redefine).unwrap()).collect();
    let current = s.current(VM).unwrap().map(|c| c.name);
    Bundle::new(VM, current.as_deref(), defs).unwrap().to_string()
}

/// What `snapshot-import [--dry-run] --file` does with the text, through the store.
fn import(s: &mut Store, text: &str, dry_run: bool) -> Result<(), Error> {
    let b = Bundle::parse(text)?;
    let redefine = ParseFlags { redefine: true, ..Default::default() };
    let defs = b.snapshot_xmls().iter().map(|x| xml::parse(x, redefine)).collect::<Result<Vec<_>, _>>()?;
    let current = b.current.clone();
    if dry_run { s.dry_run(|w| w.import(VM, defs, current.as_deref())) } else { s.import(VM, defs, current.as_deref()) }
}

fn state(s: &mut Store) -> Vec<(String, Option<String>, bool, String)> {
    let flags = FormatFlags { secure: true, internal: true, current: false };
    let list = s.snapshots(VM).unwrap();
    list.into_iter()
        .map(|i| (i.name.clone(), i.parent, i.current, s.snapshot_xml(VM, &i.name, flags).unwrap()))
        .collect()
}

#[test]
fn issue_11_2_scenario() {
    let (_a, mut a) = host(&["s0", "s1", "s2", "s3"], "host");
    let (_b, mut b) = host(&["b0", "b1", "b2", "s1", "b4"], "other");
    let bundle = export(&mut b);
    assert!(Bundle::parse(&bundle).is_ok(), "a valid bundle");
    let before = state(&mut a);
    for dry_run in [true, false] {
        let e = import(&mut a, &bundle, dry_run).unwrap_err();
        assert_eq!(
            (e.code, e.to_string().as_str()),
            (codes::OPERATION_FAILED, "operation failed: domain moment s1 already exists"),
            "dry run {dry_run}"
        );
        assert_eq!(state(&mut a), before, "dry run {dry_run}");
    }
    // the host's own export is identical content: a no-op, dry run and real run
    let own = export(&mut a);
    import(&mut a, &own, true).unwrap();
    import(&mut a, &own, false).unwrap();
    assert_eq!(state(&mut a), before);
    // and it lands unchanged on the other host only where names do not clash
    let e = import(&mut b, &own, false).unwrap_err();
    assert_eq!(e.message, "domain moment s1 already exists");
}
