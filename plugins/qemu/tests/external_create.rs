//! External snapshots, create side: shut-off and running disk-only snapshots on real qcow2
//! images (qemu-img, qemu-io patterns read back through the overlay and the frozen image),
//! libvirt's defaults, generated names, refusals with their exact texts, REUSE_EXT, the one
//! QMP transaction, rollback of a failure part-way, and REDEFINE's chain check.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly on unexpected errors")]

mod common;
#[path = "common/ext.rs"]
mod ext;

use std::path::Path;

use common::*;
use ext::*;
use virtplug_plugin_sdk::{
    Driver, codes,
    flags::{snapshot_create as cf, snapshot_delete as df, snapshot_list as lf},
};

/// (backing file, backing format) of `img` per `qemu-img info -U`.
fn backing(img: &Path) -> (Option<String>, Option<String>) {
    let v: serde_json::Value =
        serde_json::from_str(&qemu_img(&["info", "-U", "--output=json", img.to_str().unwrap()])).unwrap();
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    (s("backing-filename"), s("backing-filename-format"))
}

fn indent(xml: &str) -> String {
    xml.lines().map(|l| format!("  {l}\n")).collect()
}

fn creation_time(x: &str) -> String {
    let a = x.find("<creationTime>").unwrap() + 14;
    let b = x.find("</creationTime>").unwrap();
    x[a..b].to_owned()
}

fn err(drv: &dyn Driver, xml: &str, flags: u32) -> (u32, String) {
    let e = drv.snapshot_create("d", xml, flags).unwrap_err();
    (e.code, e.message)
}

#[test]
fn shut_off_disk_only_with_generated_names() {
    if !backend() {
        return;
    }
    let (r, drv, [a, b]) = setup(["a.qcow2", "b.qcow2"]);
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    write_pattern(&a, 1);
    assert_eq!(drv.snapshot_create("d", &snap("s1"), cf::DISK_ONLY).unwrap(), "s1");
    let (oa, ob) = (r.at("a.s1"), r.at("b.s1"));
    assert_eq!(backing(&oa), (Some(a.display().to_string()), Some("qcow2".into())));
    assert_eq!(backing(&ob), (Some(b.display().to_string()), Some("qcow2".into())));
    // the definition now names the overlays, nothing else changed
    let after = drv.domain_xml("d", DEFINITION).unwrap();
    assert_eq!(after, before.replace("a.qcow2", "a.s1").replace("b.qcow2", "b.s1"));
    // libvirt's stored form: state shutoff, memory no, every disk external with type/driver/source
    let x = drv.snapshot_xml("d", "s1", 0).unwrap();
    let want = format!(
        "<domainsnapshot>\n  <name>s1</name>\n  <state>shutoff</state>\n  <creationTime>{}</creationTime>\n  <memory snapshot='no'/>\n  <disks>\n    <disk name='vda' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n      <source file='{}'/>\n    </disk>\n    <disk name='vdb' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n      <source file='{}'/>\n    </disk>\n  </disks>\n{}</domainsnapshot>\n",
        creation_time(&x),
        oa.display(),
        ob.display(),
        indent(&before)
    );
    assert_eq!(x, want);
    // data: written after the snapshot lands in the overlay; the frozen image keeps the old
    write_pattern(&oa, 2);
    assert!(has_pattern(&oa, 2) && has_pattern(&a, 1) && !has_pattern(&a, 2));
    // a second snapshot stacks on the first overlay and is its child
    drv.snapshot_create(
        "d",
        "<domainsnapshot><name>s2</name><description>x</description></domainsnapshot>",
        cf::DISK_ONLY,
    )
    .unwrap();
    assert_eq!(backing(&r.at("a.s2")).0, Some(oa.display().to_string()));
    assert!(has_pattern(&r.at("a.s2"), 2));
    assert_eq!(drv.snapshot_lookup("d", "s2").unwrap().parent.as_deref(), Some("s1"));
    // without DISK_ONLY, every disk listed external on a shut-off domain takes the same path
    let x3 = "<domainsnapshot><name>s3</name><disks><disk name='vda' snapshot='external'/><disk name='vdb' snapshot='external'/></disks></domainsnapshot>";
    drv.snapshot_create("d", x3, 0).unwrap();
    assert!(drv.domain_xml("d", DEFINITION).unwrap().contains("a.s3"));
    // NO_METADATA: the disks switch, nothing is recorded
    drv.snapshot_create("d", &snap("s4"), cf::DISK_ONLY | cf::NO_METADATA).unwrap();
    assert!(drv.domain_xml("d", DEFINITION).unwrap().contains("a.s4"));
    assert_eq!(list(&*drv, "d"), vec!["s1", "s2", "s3"]);
}

#[test]
fn explicit_paths_and_reuse_ext() {
    if !backend() {
        return;
    }
    let (r, drv, [a, b]) = setup(["a.qcow2", "b.raw"]);
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    let full = r.at("full.qcow2");
    std::fs::write(&full, b"x").unwrap();
    let with = |p: &Path| {
        format!(
            "<domainsnapshot><name>e</name><disks><disk name='vda'><source file='{}'/></disk><disk name='vdb' snapshot='no'/></disks></domainsnapshot>",
            p.display()
        )
    };
    assert_eq!(
        err(&*drv, &with(&full), cf::DISK_ONLY),
        (
            codes::OPERATION_UNSUPPORTED,
            format!("external snapshot file for disk vda already exists and is not a block device: {}", full.display())
        )
    );
    let missing = r.at("missing.qcow2");
    assert_eq!(
        err(&*drv, &with(&missing), cf::DISK_ONLY | cf::REUSE_EXT),
        (
            codes::SYSTEM_ERROR,
            format!("missing existing file for disk vda: {}: No such file or directory", missing.display())
        )
    );
    assert!(!missing.exists());
    // an existing empty file is accepted and formatted
    let empty = r.at("empty.qcow2");
    std::fs::write(&empty, b"").unwrap();
    drv.snapshot_create("d", &with(&empty), cf::DISK_ONLY).unwrap();
    assert_eq!(backing(&empty), (Some(a.display().to_string()), Some("qcow2".into())));
    let x = drv.snapshot_xml("d", "e", 0).unwrap();
    assert!(x.contains("<disk name='vdb' snapshot='no'/>\n"), "{x}");
    assert_eq!(
        drv.domain_xml("d", DEFINITION).unwrap(),
        before.replace(&a.display().to_string(), &empty.display().to_string())
    );
    // REUSE_EXT: the pre-made file (here on the raw disk) is used as it is, not rewritten
    let pre = r.at("pre.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-F", "raw", "-b", b.to_str().unwrap(), pre.to_str().unwrap()]);
    write_pattern(&pre, 7);
    let bytes = std::fs::read(&pre).unwrap();
    let x = format!(
        "<domainsnapshot><name>r</name><disks><disk name='vda' snapshot='no'/><disk name='vdb' snapshot='external'><source file='{}'/></disk></disks></domainsnapshot>",
        pre.display()
    );
    drv.snapshot_create("d", &x, cf::DISK_ONLY | cf::REUSE_EXT).unwrap();
    assert_eq!(std::fs::read(&pre).unwrap(), bytes);
    let now = drv.domain_xml("d", DEFINITION).unwrap();
    assert!(
        now.contains(&format!("<driver name='qemu' type='qcow2'/>\n      <source file='{}'/>", pre.display())),
        "{now}"
    );
    // a raw disk gets a qcow2 overlay with an explicit raw backing format
    drv.snapshot_create(
        "d",
        "<domainsnapshot><name>g</name><disks><disk name='vda' snapshot='no'/></disks></domainsnapshot>",
        cf::DISK_ONLY,
    )
    .unwrap();
    assert_eq!(backing(&r.at("pre.g")), (Some(pre.display().to_string()), Some("qcow2".into())));
}

#[test]
fn refusals_change_nothing() {
    if !backend() {
        return;
    }
    let (r, drv, [a, b]) = setup(["a.qcow2", "a.raw"]);
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    let files = || {
        let mut v: Vec<String> = std::fs::read_dir(r.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let had = files();
    let u = codes::CONFIG_UNSUPPORTED;
    let disks = |inner: &str| format!("<domainsnapshot><name>s</name><disks>{inner}</disks></domainsnapshot>");
    let cases: Vec<(String, u32, u32, String)> = vec![
        // some disks external, the rest defaulting to internal (no DISK_ONLY)
        (
            disks("<disk name='vda' snapshot='external'><source file='/tmp/x.qcow2'/></disk>"),
            0,
            u,
            "mixing internal and external targets for a snapshot is not yet supported".into(),
        ),
        // generated names collide: a.qcow2 and a.raw both give a.s
        (
            snap("s"),
            cf::DISK_ONLY,
            u,
            "cannot generate external snapshot name for disk 'vdb': collision with disk 'vda'".into(),
        ),
        (
            "<domainsnapshot><memory snapshot='external' file='/tmp/m'/></domainsnapshot>".into(),
            0,
            codes::XML_ERROR,
            "memory state cannot be saved with offline or disk-only snapshot".into(),
        ),
        (
            disks("<disk name='vda'/><disk name='vdb'/><disk name='vdc'/>"),
            cf::DISK_ONLY,
            u,
            "too many disk snapshot requests for domain".into(),
        ),
        (disks("<disk name='vdz'/>"), cf::DISK_ONLY, u, "no disk named 'vdz'".into()),
        (
            disks(&format!("<disk name='vda'/><disk name='{}'/>", a.display())),
            cf::DISK_ONLY,
            u,
            "disk '{a}' specified twice".replace("{a}", &a.display().to_string()),
        ),
        (
            disks("<disk name='vda' snapshot='no'><source file='/tmp/y'/></disk>"),
            cf::DISK_ONLY,
            u,
            "file '/tmp/y' for disk 'vda' requires use of external snapshot mode".into(),
        ),
        (
            disks("<disk name='vda'><driver type='qed'/></disk><disk name='vdb' snapshot='no'/>"),
            cf::DISK_ONLY,
            u,
            "external snapshot format for disk vda is unsupported: qed".into(),
        ),
        // libvirt checks "nothing selected" before its disk-only rule, which this makes unreachable
        (
            disks("<disk name='vda' snapshot='no'/><disk name='vdb' snapshot='no'/>"),
            cf::DISK_ONLY,
            u,
            "nothing selected for snapshot".into(),
        ),
    ];
    for (xml, flags, code, msg) in cases {
        assert_eq!(err(&*drv, &xml, flags), (code, msg), "{xml}");
    }
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert_eq!(files(), had);
    assert!(list(&*drv, "d").is_empty());
    // a source that is not a regular file cannot give a generated name
    std::fs::remove_file(&b).unwrap();
    assert_eq!(
        err(&*drv, &disks("<disk name='vda' snapshot='no'/>"), cf::DISK_ONLY),
        (u, "source for disk 'vdb' is not a regular file; refusing to generate external snapshot name".into())
    );
}

#[test]
fn failure_on_the_second_disk_removes_the_first_overlay() {
    if !backend() {
        return;
    }
    let (r, drv, [_, _]) = setup(["a.qcow2", "b.qcow2"]);
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    // the second overlay's directory does not exist (the tests run as root: a read-only
    // directory would not stop qemu-img)
    let x = format!(
        "<domainsnapshot><name>s</name><disks><disk name='vdb'><source file='{}/nodir/b.s'/></disk></disks></domainsnapshot>",
        r.path().display()
    );
    let (code, msg) = err(&*drv, &x, cf::DISK_ONLY);
    assert_eq!(code, codes::INTERNAL_ERROR);
    assert!(msg.starts_with("Child process (qemu-img create -q -f qcow2 -F qcow2 -b "), "{msg}");
    assert!(!r.at("a.s").exists(), "first overlay left behind");
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert!(list(&*drv, "d").is_empty());
}

#[test]
fn listing_filters_external_and_disk_only() {
    if !backend() {
        return;
    }
    let (_r, drv, [_]) = setup(["a.qcow2"]);
    drv.snapshot_create("d", &snap("int"), 0).unwrap();
    drv.snapshot_create("d", &snap("ext"), cf::DISK_ONLY).unwrap();
    // the driver lists all; the host filters with the model's rules on these fields
    let all = drv.snapshot_list("d", 0).unwrap();
    let names = |f: u32| {
        virtplug_plugin_sdk::model::filter::list_domain(all.clone(), f).into_iter().map(|s| s.name).collect::<Vec<_>>()
    };
    assert_eq!(names(lf::EXTERNAL), vec!["ext"]);
    assert_eq!(names(lf::INTERNAL), vec!["int"]);
    // libvirt: a shut-off external snapshot has state shutoff, so it is not "disk-only"
    assert!(names(lf::DISK_ONLY).is_empty());
    drv.snapshot_delete("d", "ext", df::METADATA_ONLY).unwrap();
}

/// Serialises the tests that set `VIRTPLUG_QEMU_FAULT` (process-wide) with the running ones.
static FAULT_ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn running_disk_only_one_transaction() {
    let _env = FAULT_ENV.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !backend() {
        return;
    }
    let (r, drv, [a, _]) = setup(["a.qcow2", "b.qcow2"]);
    write_pattern(&a, 1);
    drv.domain_start("d").unwrap();
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    // a failed transaction (a second, invalid action injected) changes nothing
    set_fault(Some("external-transaction"));
    let e = drv.snapshot_create("d", &snap("bad"), cf::DISK_ONLY | cf::ATOMIC).unwrap_err();
    set_fault(None);
    assert_eq!(
        (e.code, e.message.as_str()),
        (codes::OPERATION_FAILED, "transaction: Cannot find device='no-such-node' nor node-name='no-such-node'")
    );
    assert!(!r.at("a.bad").exists() && !r.at("b.bad").exists());
    assert!(!r.at("run/qemu").join(UUID).join("external-pending.json").exists());
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert!(list(&*drv, "d").is_empty());
    drop(drv);
    assert_eq!(live_top(&r, "vda"), ("vda-format".into(), a.display().to_string(), None));
    let nodes = qmp(&r, UUID, "query-named-block-nodes", serde_json::json!({})).unwrap();
    assert!(!nodes.to_string().contains("-x"), "added nodes left behind: {nodes}");
    guest_write(&r, "vda", 1);

    // the real one: no pause, both disks switched in one transaction
    let drv = r.open();
    drv.snapshot_create("d", &snap("s1"), cf::DISK_ONLY | cf::ATOMIC).unwrap();
    assert_eq!(state(&*drv, "d"), (1, 1)); // still running, never paused
    let (oa, ob) = (r.at("a.s1"), r.at("b.s1"));
    let x = drv.snapshot_xml("d", "s1", 0).unwrap();
    let want = format!(
        "<domainsnapshot>\n  <name>s1</name>\n  <state>disk-snapshot</state>\n  <creationTime>{}</creationTime>\n  <memory snapshot='no'/>\n  <disks>\n    <disk name='vda' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n      <source file='{}'/>\n    </disk>\n    <disk name='vdb' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n      <source file='{}'/>\n    </disk>\n  </disks>\n{}</domainsnapshot>\n",
        creation_time(&x),
        oa.display(),
        ob.display(),
        indent(&before)
    );
    assert_eq!(x, want);
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before.replace("a.qcow2", "a.s1").replace("b.qcow2", "b.s1"));
    assert!(!r.at("run/qemu").join(UUID).join("external-pending.json").exists());
    drop(drv);
    let (node, file, back) = live_top(&r, "vda");
    assert!(node.starts_with("vda-x"), "{node}");
    assert_eq!((file, back), (oa.display().to_string(), Some(a.display().to_string())));
    assert_eq!(live_top(&r, "vdb").1, ob.display().to_string());
    assert_eq!(backing(&oa), (Some(a.display().to_string()), Some("qcow2".into())));
    // the guest writes into the overlay; the frozen image keeps the snapshot's data
    guest_write(&r, "vda", 2);
    let drv = r.open();
    // a second snapshot stacks on the live overlay
    drv.snapshot_create("d", &snap("s2"), cf::DISK_ONLY).unwrap();
    assert_eq!(drv.snapshot_lookup("d", "s2").unwrap().parent.as_deref(), Some("s1"));
    drv.domain_destroy("d").unwrap();
    let oa2 = r.at("a.s2");
    assert!(has_pattern(&a, 1) && has_pattern(&oa, 2) && has_pattern(&oa2, 2));
    assert_eq!(backing(&oa2).0, Some(oa.display().to_string()));
    // the domain starts again on its chain
    drv.domain_start("d").unwrap();
    drop(drv);
    let (_, file, back) = live_top(&r, "vda");
    assert_eq!((file, back), (oa2.display().to_string(), Some(oa.display().to_string())));
}

#[test]
fn a_stop_between_transaction_and_metadata_leaves_the_record() {
    let _env = FAULT_ENV.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !backend() {
        return;
    }
    let (r, drv, [_]) = setup_running(["a.qcow2"]);
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    set_fault(Some("external-after-transaction"));
    let res = drv.snapshot_create("d", &snap("s1"), cf::DISK_ONLY);
    set_fault(None);
    assert!(res.is_err());
    // the disks switched, the metadata not yet saved: the journal record says so
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    let rec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(r.at("run/qemu").join(UUID).join("external-pending.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["snapshot"], "s1");
    assert_eq!(rec["old_domain_xml"].as_str().unwrap(), before.trim_end());
    assert_eq!(rec["domain_xml"].as_str().unwrap(), before.trim_end().replace("a.qcow2", "a.s1"));
    assert_eq!(rec["disks"][0]["overlay"].as_str().unwrap(), r.at("a.s1").display().to_string());
    assert!(rec["snapshot_xml"].as_str().unwrap().contains("<state>disk-snapshot</state>"));
}

#[test]
fn redefine_checks_the_chain() {
    if !backend() {
        return;
    }
    let (r, drv, [a, b]) = setup(["a.qcow2", "b.qcow2"]);
    drv.snapshot_create("d", &snap("s1"), cf::DISK_ONLY).unwrap();
    drv.snapshot_create("d", &snap("s2"), cf::DISK_ONLY).unwrap();
    let (x1, x2) = (drv.snapshot_xml("d", "s1", 0).unwrap(), drv.snapshot_xml("d", "s2", 0).unwrap());
    drv.snapshot_delete("d", "s1", df::METADATA_ONLY | df::CHILDREN).unwrap();
    assert!(list(&*drv, "d").is_empty());
    // back from the dumps: identical output, s2 current, both external
    assert_eq!(drv.snapshot_create("d", &x1, cf::REDEFINE).unwrap(), "s1");
    assert_eq!(drv.snapshot_create("d", &x2, cf::REDEFINE | cf::CURRENT).unwrap(), "s2");
    assert_eq!((drv.snapshot_xml("d", "s1", 0).unwrap(), drv.snapshot_xml("d", "s2", 0).unwrap()), (x1.clone(), x2));
    let s2 = drv.snapshot_lookup("d", "s2").unwrap();
    assert!(s2.external && s2.current && s2.parent.as_deref() == Some("s1"));
    // a snapshot whose frozen image is not below the disk's top is refused, naming the disk
    drv.snapshot_delete("d", "s1", df::METADATA_ONLY).unwrap();
    let other = r.image("other.qcow2", "qcow2");
    // b.qcow2 appears only in the snapshot's <domain> (its disks name the overlays)
    let bad = x1.replace(&b.display().to_string(), &other.display().to_string());
    assert_ne!(bad, x1);
    let e = drv.snapshot_create("d", &bad, cf::REDEFINE).unwrap_err();
    assert_eq!(
        (e.code, e.message),
        (
            codes::OPERATION_INVALID,
            format!(
                "image chain of disk 'vdb' (top '{}') does not hold the image '{}' of external snapshot 's1' below its top",
                r.at("b.s2").display(),
                other.display()
            )
        )
    );
    // the top itself is not "below the top": s2's own frozen images are s1's overlays, fine;
    // a redefinition naming the current tops as frozen images is refused
    let top = x1.replace(&a.display().to_string(), &r.at("a.s2").display().to_string());
    let e = drv.snapshot_create("d", &top, cf::REDEFINE).unwrap_err();
    assert!(e.message.starts_with("image chain of disk 'vda'"), "{}", e.message);
    assert_eq!(list(&*drv, "d"), vec!["s2"]);
    // libvirt's rule: DISK_ONLY with REDEFINE needs the disk-snapshot state (these are shutoff)
    let e = drv.snapshot_create("d", &x1, cf::REDEFINE | cf::DISK_ONLY).unwrap_err();
    assert_eq!(e.message, "disk-only flag for snapshot s1 requires disk-snapshot state");
    drv.snapshot_create("d", &x1, cf::REDEFINE).unwrap();
}

#[test]
fn redefine_on_a_running_domain() {
    if !backend() {
        return;
    }
    let _env = FAULT_ENV.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_r, drv, [_]) = setup_running(["a.qcow2"]);
    drv.snapshot_create("d", &snap("s1"), cf::DISK_ONLY).unwrap();
    let x = drv.snapshot_xml("d", "s1", 0).unwrap();
    drv.snapshot_delete("d", "s1", df::METADATA_ONLY).unwrap();
    // the images are held by qemu: the chain is read with -U
    drv.snapshot_create("d", &x, cf::REDEFINE | cf::DISK_ONLY).unwrap();
    assert_eq!(drv.snapshot_xml("d", "s1", 0).unwrap(), x);
    assert!(drv.snapshot_lookup("d", "s1").unwrap().disk_only);
}

/// (magic, version, data_len, was_running, XML) of a save image.
fn save_header(p: &Path) -> (String, u32, u32, u32, String) {
    let b = std::fs::read(p).unwrap();
    let u = |at: usize| u32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
    let len = u(20) as usize;
    let xml = String::from_utf8(b[96..96 + len - 1].to_vec()).unwrap();
    assert_eq!(b[96 + len - 1], 0);
    (String::from_utf8_lossy(&b[..16]).into_owned(), u(16), u(20), u(24), xml)
}

#[test]
fn running_with_external_memory() {
    if !backend() {
        return;
    }
    let _env = FAULT_ENV.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (r, drv, [a]) = setup(["a.qcow2"]);
    // LIVE needs a running domain and external memory
    let e = drv.snapshot_create("d", &snap("x"), cf::LIVE | cf::DISK_ONLY).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (codes::OPERATION_UNSUPPORTED, "live snapshot creation is supported only during full system snapshots")
    );
    drv.domain_start("d").unwrap();
    let e = drv.snapshot_create("d", &snap("x"), cf::LIVE | cf::DISK_ONLY).unwrap_err();
    assert_eq!(e.message, "live snapshot creation is supported only during full system snapshots");
    drop(drv);
    guest_write(&r, "vda", 1);
    let drv = r.open();
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    let mem = r.at("m1.mem");
    let x = mem_snap("m1", &mem);
    drv.snapshot_create("d", &x, 0).unwrap();
    assert_eq!(state(&*drv, "d").0, 1, "resumed after the snapshot");
    let (magic, version, _, was_running, xml) = save_header(&mem);
    assert_eq!((magic.as_str(), version, was_running), ("LibvirtQemudSave", 2, 1));
    assert_eq!(xml, before.trim_end());
    // qemu's migration stream follows the XML: its magic "QEVM", version 3
    let bytes = std::fs::read(&mem).unwrap();
    let at = 96 + save_header(&mem).2 as usize;
    assert_eq!(&bytes[at..at + 8], b"QEVM\0\0\0\x03");
    assert!(bytes.len() > at + (64 << 10), "stream of {} bytes", bytes.len() - at);
    let s = drv.snapshot_xml("d", "m1", 0).unwrap();
    let want = format!(
        "<domainsnapshot>\n  <name>m1</name>\n  <state>running</state>\n  <creationTime>{}</creationTime>\n  <memory snapshot='external' file='{}'/>\n  <disks>\n    <disk name='vda' snapshot='external' type='file'>\n      <driver type='qcow2'/>\n      <source file='{}'/>\n    </disk>\n  </disks>\n{}</domainsnapshot>\n",
        creation_time(&s),
        mem.display(),
        r.at("a.m1").display(),
        indent(&before)
    );
    assert_eq!(s, want);
    drop(drv);
    assert_eq!(live_top(&r, "vda").1, r.at("a.m1").display().to_string());
    guest_write(&r, "vda", 2);
    // LIVE, then HALT: the domain is shut off from the snapshot
    let drv = r.open();
    let mem2 = r.at("m2.mem");
    let x2 = format!("<domainsnapshot><name>m2</name><memory file='{}'/></domainsnapshot>", mem2.display());
    drv.snapshot_create("d", &x2, cf::LIVE | cf::HALT).unwrap();
    assert_eq!(state(&*drv, "d"), (5, 7));
    assert_eq!(save_header(&mem2).0, "LibvirtQemudSave");
    assert!(
        has_pattern(&a, 1) && !has_pattern(&a, 2) && has_pattern(&r.at("a.m1"), 2) && has_pattern(&r.at("a.m2"), 2)
    );
    // a paused domain is recorded paused and stays paused
    drv.domain_start("d").unwrap();
    drv.domain_suspend("d").unwrap();
    let mem3 = r.at("m3.mem");
    let x3 = format!("<domainsnapshot><name>m3</name><memory file='{}'/></domainsnapshot>", mem3.display());
    drv.snapshot_create("d", &x3, 0).unwrap();
    assert_eq!(state(&*drv, "d").0, 3);
    assert!(drv.snapshot_xml("d", "m3", 0).unwrap().contains("<state>paused</state>"));
    assert_eq!(save_header(&mem3).3, 0);
    // a failed disk transaction removes the memory file it made and resumes the guest
    drv.domain_resume("d").unwrap();
    let mem4 = r.at("m4.mem");
    let x4 = format!("<domainsnapshot><name>m4</name><memory file='{}'/></domainsnapshot>", mem4.display());
    set_fault(Some("external-transaction"));
    let e = drv.snapshot_create("d", &x4, 0).unwrap_err();
    set_fault(None);
    assert!(e.message.starts_with("transaction: "), "{}", e.message);
    assert!(!mem4.exists() && !r.at("a.m4").exists());
    assert_eq!(state(&*drv, "d").0, 1);
    assert_eq!(list(&*drv, "d"), vec!["m1", "m2", "m3"]);
}

#[test]
fn internal_snapshot_after_an_external_one_on_a_running_domain() {
    if !backend() {
        return;
    }
    let _env = FAULT_ENV.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (r, drv, [a]) = setup_running(["a.qcow2"]);
    drv.snapshot_create("d", &snap("e1"), cf::DISK_ONLY).unwrap();
    // qemu's node names changed with the switch: the internal snapshot lands in the live top
    drv.snapshot_create("d", &snap("i1"), 0).unwrap();
    assert_eq!(names(&r.at("a.e1")), vec!["i1"]);
    assert!(names(&a).is_empty());
    drv.snapshot_delete("d", "i1", 0).unwrap();
    assert!(names(&r.at("a.e1")).is_empty());
}

#[test]
fn halt_is_refused_for_a_transient_domain() {
    if !backend() {
        return;
    }
    let _env = FAULT_ENV.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (r, drv, [_]) = setup_running(["a.qcow2"]);
    drv.domain_undefine("d", 0).unwrap(); // running: it stays, transient
    let mem = r.at("m.mem");
    let x = format!("<domainsnapshot><name>m</name><memory file='{}'/></domainsnapshot>", mem.display());
    let e = drv.snapshot_create("d", &x, cf::HALT).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::OPERATION_INVALID, "cannot halt after transient domain snapshot"));
    assert!(!mem.exists() && !r.at("a.m").exists());
    assert_eq!(state(&*drv, "d").0, 1);
}

#[test]
fn running_overlays_copy_the_cluster_layout() {
    if !backend() {
        return;
    }
    let _env = FAULT_ENV.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let r = Root::new();
    let a = r.at("a.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", "-o", "cluster_size=128k,extended_l2=on", a.to_str().unwrap(), "64M"]);
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &a, "qcow2", false)])).unwrap();
    drv.domain_start("d").unwrap();
    drv.snapshot_create("d", &snap("s1"), cf::DISK_ONLY).unwrap();
    let info = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&qemu_img(&["info", "-U", "--output=json", p.to_str().unwrap()])).unwrap()
    };
    let v = info(&r.at("a.s1"));
    assert_eq!(v["cluster-size"], 131_072);
    assert_eq!(v["format-specific"]["data"]["extended-l2"], true);
    assert_eq!(v["virtual-size"], 64 << 20);
}

#[test]
fn a_block_job_refuses_create_revert_and_delete() {
    if !backend() {
        return;
    }
    let _env = FAULT_ENV.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let (r, drv, [_]) = setup_running(["a.qcow2"]);
    drop(drv);
    guest_write(&r, "vda", 1);
    let drv = r.open();
    drv.snapshot_create("d", &snap("s1"), cf::DISK_ONLY).unwrap();
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    drop(drv);
    // a mirror job on the live top (its id names the disk): once its copy is done it waits, ready,
    // until it is completed or cancelled, so it stays active for as long as the checks need (a
    // throttled stream job could finish in its first chunk when there is little to copy)
    let (node, _, _) = live_top(&r, "vda");
    let target = r.at("mirror.qcow2");
    let mirror = serde_json::json!({ "job-id": "vda-mirror", "device": node, "target": target.to_str().unwrap(),
        "format": "qcow2", "sync": "full", "mode": "absolute-paths" });
    qmp(&r, UUID, "drive-mirror", mirror).unwrap();
    let drv = r.open();
    let e = drv.snapshot_create("d", &snap("s2"), cf::DISK_ONLY).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::OPERATION_INVALID, "disk 'vda' already in active block job"));
    // an internal snapshot is refused alike (libvirt's check covers every disk taking part)
    let e = drv.snapshot_create("d", &snap("i"), 0).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::OPERATION_INVALID, "disk 'vda' already in active block job"));
    let e = drv.snapshot_revert("d", "s1", 0).unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (codes::OPERATION_INVALID, "domain has active block job"));
    let e = drv.snapshot_delete("d", "s1", 0).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (codes::OPERATION_UNSUPPORTED, "cannot delete external snapshots when there is another active block job")
    );
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert_eq!(list(&*drv, "d"), vec!["s1"]);
    assert!(!r.at("a.s2").exists() && !r.at("a.s1-revert1").exists() && names(&r.at("a.s1")).is_empty());
    // the job gone, the same calls go through
    drop(drv);
    qmp(&r, UUID, "block-job-cancel", serde_json::json!({ "device": "vda-mirror", "force": true })).unwrap();
    while !qmp(&r, UUID, "query-block-jobs", serde_json::json!({})).unwrap().as_array().unwrap().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let drv = r.open();
    drv.snapshot_delete("d", "s1", 0).unwrap();
    drv.snapshot_create("d", &snap("s2"), cf::DISK_ONLY).unwrap();
}

#[test]
fn a_writable_shared_disk_is_refused() {
    if !backend() {
        return;
    }
    let r = Root::new();
    let (a, b) = (r.image("a.qcow2", "qcow2"), r.image("b.qcow2", "qcow2"));
    let drv = r.open();
    let xml = dom_xml("d", &[("vda", &a, "qcow2", false), ("vdb", &b, "qcow2", true)]);
    // both shareable; vdb is read-only, which libvirt allows
    drv.domain_define(&xml.replace("bus='virtio'/>", "bus='virtio'/>\n      <shareable/>")).unwrap();
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    assert_eq!(
        err(&*drv, &snap("s"), cf::DISK_ONLY),
        (codes::CONFIG_UNSUPPORTED, "shared access for disk 'vda' requires use of supported storage format".into())
    );
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert!(!r.at("a.s").exists() && list(&*drv, "d").is_empty());
    let only_b = "<domainsnapshot><name>s</name><disks><disk name='vda' snapshot='no'/></disks></domainsnapshot>";
    drv.snapshot_create("d", only_b, cf::DISK_ONLY).unwrap();
    assert!(r.at("b.s").exists());
}

#[test]
fn a_chain_of_200_layers_takes_no_more() {
    if !backend() {
        return;
    }
    let r = Root::new();
    // a.qcow2 and 198 overlays: 199 layers, so one snapshot fits and the next does not. One
    // overlay made by qemu-img is the template; the others are its bytes with the backing name
    // in the header changed (198 qemu-img runs cost seconds); every other one names its
    // backing relative to its own folder
    let mut top = r.image("a.qcow2", "qcow2");
    let t = r.at("template");
    qemu_img(&["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "x", "-u", t.to_str().unwrap(), "64M"]);
    let template = std::fs::read(&t).unwrap();
    let be = |at: usize, n: usize| template[at..at + n].iter().fold(0usize, |v, b| v << 8 | usize::from(*b));
    let (name_at, name_len) = (be(8, 8), be(16, 4));
    assert_eq!(&template[name_at..name_at + name_len], b"x");
    for k in 1..=198 {
        let next = r.path().join(format!("l{k}.qcow2"));
        let b = if k % 2 == 0 { top.display().to_string() } else { top.file_name().unwrap().to_string_lossy().into() };
        let mut bytes = template.clone();
        bytes[16..20].copy_from_slice(&u32::try_from(b.len()).unwrap().to_be_bytes());
        bytes[name_at..name_at + b.len()].copy_from_slice(b.as_bytes());
        std::fs::write(&next, bytes).unwrap();
        top = next;
    }
    assert_eq!(backing(&top).0, Some(r.at("l197.qcow2").display().to_string()));
    let drv = r.open();
    drv.domain_define(&dom_xml("d", &[("vda", &top, "qcow2", false)])).unwrap();
    drv.snapshot_create("d", &snap("s1"), cf::DISK_ONLY).unwrap();
    let before = drv.domain_xml("d", DEFINITION).unwrap();
    assert_eq!(
        err(&*drv, &snap("s2"), cf::DISK_ONLY),
        (
            codes::OPERATION_UNSUPPORTED,
            "backing chains more than 200 layers deep are not supported for disk 'vda'".into()
        )
    );
    assert_eq!(drv.domain_xml("d", DEFINITION).unwrap(), before);
    assert!(!r.at("l198.s2").exists());
    assert_eq!(list(&*drv, "d"), vec!["s1"]);
}
