//! The seed corpora stay meaningful: every seed is an input its target accepts (a fuzzer learns
//! little from seeds that all fail at the first check). The bundle and request seeds are written
//! by the project's own writers (`Bundle`'s Display, serde_json over the wire types):
//! `FUZZ_BLESS=1 cargo test -p virtplug-fuzz --test seeds` regenerates them, e.g. after a change
//! of the snapshot XML format.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

use std::{
    fs,
    path::{Path, PathBuf},
};

use virtplug_fuzz::snapshot_xml::MODES;
use virtplug_host::remote::wire::{CreateRequest, DefineRequest, FlagsRequest, ImportRequest, MigrationRequest};
use virtplug_model::{
    bundle::Bundle,
    domain::DomainDef,
    xml::{self, ParseFlags, SnapshotDef},
};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target)
}

fn files(target: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(corpus(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn read(target: &str, name: &str) -> String {
    fs::read_to_string(corpus(target).join(name)).unwrap()
}

const REDEFINE: ParseFlags = ParseFlags { redefine: true, internal: false, offline: false };
const UUID: &str = "6695eb01-f6a4-8304-79aa-97f2502e193f";
const LIBVIRT_UUID: &str = "c7a5fdbd-edaf-9455-926a-d65c16db1809";

fn renamed(mut def: SnapshotDef, name: &str, parent: Option<&str>) -> SnapshotDef {
    def.name = name.into();
    def.parent = parent.map(str::to_owned);
    def.active = None;
    def
}

/// The bundle seeds, by file name.
fn bundles() -> Vec<(&'static str, String)> {
    let template = xml::parse(&read("roundtrip", "network-disks-cookie.xml"), REDEFINE).unwrap();
    let chain = vec![
        renamed(template.clone(), "s2", Some("s1")),
        renamed(template.clone(), "s0", None),
        renamed(template.clone(), "s1", Some("s0")),
        renamed(template, "s1-branch", Some("s0")),
    ];
    let full = xml::parse(&read("roundtrip", "libvirt-out-full_domain.xml"), REDEFINE).unwrap();
    let metadata = xml::parse(&read("roundtrip", "libvirt-out-metadata.xml"), REDEFINE).unwrap();
    let libvirt = vec![renamed(full, "earlier_snap", None), metadata];
    let legacy = xml::parse(&read("roundtrip", "libvirt-out-all_parameters.xml"), REDEFINE).unwrap();
    let legacy = vec![renamed(legacy, "only", None)];
    vec![
        ("chain-with-branch.bundle", Bundle::new(UUID, Some("s2"), chain).unwrap().to_string()),
        ("libvirt-full-domains.bundle", Bundle::new(LIBVIRT_UUID, Some("my snap name"), libvirt).unwrap().to_string()),
        ("legacy-uuid.bundle", Bundle::new("9d37b878-a7cc-9f9a-b78f-49b3abad25a8", None, legacy).unwrap().to_string()),
        ("empty.bundle", Bundle::new(UUID, None, Vec::new()).unwrap().to_string()),
    ]
}

/// The request seeds, by file name.
fn requests() -> Vec<(&'static str, String)> {
    let json = |v: &dyn erased::Json| v.json();
    let snap = |name: &str| read("snapshot_xml", name);
    let chain_bundle = Bundle::parse(&bundles()[0].1).unwrap();
    vec![
        ("create-plain.json", json(&CreateRequest { xml: snap("libvirt-in-disk_snapshot.xml"), flags: 0 })),
        ("create-disk-only.json", json(&CreateRequest { xml: snap("create-disk-only.xml"), flags: 16 })),
        ("create-redefine-current.json", json(&CreateRequest { xml: snap("libvirt-out-full_domain.xml"), flags: 3 })),
        (
            "import-dry-run.json",
            json(&ImportRequest {
                xmls: chain_bundle.snapshot_xmls(),
                current: Some("s2".into()),
                flags: 1,
                migration: Some("m-0001".into()),
            }),
        ),
        ("define.json", json(&DefineRequest { xml: read("domain_xml", "units-disks-secrets.xml") })),
        ("flags.json", json(&FlagsRequest { flags: 1 })),
        (
            "migrate.json",
            json(&MigrationRequest {
                domain: "test".into(),
                to: "mock+unix:///default?socket=/run/b.sock".into(),
                dry_run: true,
            }),
        ),
    ]
}

/// serde_json over the different request types through one closure.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string_pretty(self).unwrap() + "\n"
        }
    }
}

#[test]
fn generated_seeds_are_present_or_blessed() {
    let bless = std::env::var_os("FUZZ_BLESS").is_some();
    for (target, seeds) in [("bundle", bundles()), ("request", requests())] {
        for (name, text) in seeds {
            let path = corpus(target).join(name);
            if bless {
                fs::write(&path, text).unwrap();
            } else {
                assert!(path.is_file(), "{} is missing: run with FUZZ_BLESS=1", path.display());
            }
        }
    }
}

#[test]
fn snapshot_seeds_parse_in_some_mode() {
    for (name, text) in files("snapshot_xml") {
        assert!(MODES.iter().any(|m| xml::parse(&text, *m).is_ok()), "snapshot_xml/{name} parses in no mode");
    }
}

#[test]
fn roundtrip_seeds_redefine() {
    for (name, text) in files("roundtrip") {
        if let Err(e) = xml::parse(&text, REDEFINE) {
            panic!("roundtrip/{name} does not parse in redefine mode: {e}");
        }
    }
}

#[test]
fn domain_seeds_parse() {
    for (name, text) in files("domain_xml") {
        if let Err(e) = DomainDef::parse(&text) {
            panic!("domain_xml/{name}: {e}");
        }
    }
}

#[test]
fn bundle_seeds_parse() {
    for (name, text) in files("bundle") {
        if let Err(e) = Bundle::parse(&text) {
            panic!("bundle/{name}: {e}");
        }
    }
}

#[test]
fn request_seeds_decode_and_validate() {
    for (name, text) in files("request") {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ok = match v.as_object().map(|o| (o.contains_key("xml"), o.contains_key("xmls"), o.contains_key("to"))) {
            Some((true, _, _)) if name.starts_with("define") => {
                DomainDef::parse(&serde_json::from_value::<DefineRequest>(v).unwrap().xml).is_ok()
            }
            Some((true, _, _)) => {
                let r: CreateRequest = serde_json::from_value(v).unwrap();
                let mode = ParseFlags { redefine: r.flags & 1 != 0, internal: false, offline: r.flags & 16 != 0 };
                xml::parse(&r.xml, mode).is_ok()
            }
            Some((_, true, _)) => {
                serde_json::from_value::<ImportRequest>(v).unwrap().xmls.iter().all(|x| xml::parse(x, REDEFINE).is_ok())
            }
            Some((_, _, true)) => serde_json::from_value::<MigrationRequest>(v).is_ok(),
            _ => serde_json::from_value::<FlagsRequest>(v).is_ok(),
        };
        assert!(ok, "request/{name} does not decode and validate");
    }
}
