//! The host against deliberately broken plugins: it refuses, survives, and never dispatches a
//! call its checks rejected. Fixtures are built by `cargo build --workspace` into target/<profile>.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed expectation is the failure")]

use std::path::Path;

use virtplug_host::{Connection, HostError, Registry, codes, flags::*, load_plugin};
use virtplug_test_support::fixture;

fn registry_with(name: &str) -> Registry {
    let mut registry = Registry::default();
    registry.add(load_plugin(&fixture(name).built()).expect("fixture loads"));
    registry
}

fn err_of<T: std::fmt::Debug>(r: Result<T, HostError>) -> (u32, String) {
    let e = r.expect_err("expected an error");
    (e.code(), e.to_string())
}

#[test]
fn lying_plugin_never_receives_calls_the_host_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("spy.log");
    // SAFETY of the test: the env var is only read by the fixture, in this process.
    unsafe { std::env::set_var("VIRTPLUG_SPY_LOG", &log) };
    let registry = registry_with("lying");
    let conn = Connection::open(&registry, "lying:///", false).unwrap();
    let ro = Connection::open(&registry, "lying:///", true).unwrap();
    use snapshot_create as c;
    let refused: Vec<(Result<(), HostError>, u32, &str)> = vec![
        (
            conn.snapshot_create("test", "<domainsnapshot/>", c::NO_METADATA).map(drop),
            codes::INVALID_ARG,
            "unsupported flags (0x4) in function snapshot_create",
        ),
        (
            conn.snapshot_create("test", "<domainsnapshot/>", c::DISK_ONLY | c::HALT).map(drop),
            codes::INVALID_ARG,
            "unsupported flags (0x10) in function snapshot_create",
        ),
        (
            conn.snapshot_create("test", "<domainsnapshot/>", c::CURRENT).map(drop),
            codes::INVALID_ARG,
            "Flag 'VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE' is required by flag 'VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT'",
        ),
        (
            conn.snapshot_create("test", "<domainsnapshot/>", 0x400).map(drop),
            codes::INVALID_ARG,
            "unsupported flags (0x400) in function snapshot_create",
        ),
        (
            ro.snapshot_create("test", "<domainsnapshot/>", 0).map(drop),
            codes::OPERATION_DENIED,
            "operation forbidden: read only access prevents virDomainSnapshotCreateXML",
        ),
        (
            conn.snapshot_delete("test", "s1", snapshot_delete::METADATA_ONLY),
            codes::INVALID_ARG,
            "unsupported flags (0x2) in function snapshot_delete",
        ),
        (
            conn.snapshot_delete("test", "s1", snapshot_delete::CHILDREN | snapshot_delete::CHILDREN_ONLY),
            codes::INVALID_ARG,
            "Flags 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN' and 'VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY' are mutually exclusive",
        ),
        (
            conn.snapshot_revert("test", "s1", snapshot_revert::RESET_NVRAM),
            codes::INVALID_ARG,
            "unsupported flags (0x8) in function snapshot_revert",
        ),
        (
            conn.snapshot_revert("test", "s1", snapshot_revert::RUNNING | snapshot_revert::PAUSED),
            codes::INVALID_ARG,
            "Flags 'VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING' and 'VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED' are mutually exclusive",
        ),
        (
            ro.snapshot_xml("test", "s1", snapshot_xml::SECURE).map(drop),
            codes::OPERATION_DENIED,
            "operation forbidden: virDomainSnapshotGetXMLDesc with secure flag",
        ),
        (
            conn.snapshot_import("test", &[], None, 0),
            codes::INVALID_ARG,
            "unsupported flags (0x0) in function snapshot_import",
        ),
        (
            ro.domain_undefine("test", 0),
            codes::OPERATION_DENIED,
            "operation forbidden: read only access prevents virDomainUndefineFlags",
        ),
        (
            conn.domain_undefine("test", domain_undefine::NVRAM),
            codes::INVALID_ARG,
            "unsupported flags (0x4) in function domain_undefine",
        ),
        (conn.snapshot_create("test", "<domainsnapshot>", 0).map(drop), codes::XML_DETAIL, "@malformed"),
        (
            conn.snapshot_create("test", "<snapshot/>", 0).map(drop),
            codes::XML_ERROR,
            "XML error: expecting root element of 'domainsnapshot', not 'snapshot'",
        ),
        (
            conn.snapshot_create("test", "<domainsnapshot/>", c::REDEFINE).map(drop),
            codes::XML_ERROR,
            "XML error: a redefined snapshot must have a name",
        ),
        (
            conn.snapshot_create(
                "test",
                "<domainsnapshot><name>s</name><creationTime>1</creationTime></domainsnapshot>",
                c::REDEFINE,
            )
            .map(drop),
            codes::XML_ERROR,
            "XML error: missing state from existing snapshot",
        ),
        (
            conn.snapshot_lookup("test", "").map(drop),
            codes::INVALID_ARG,
            "invalid argument: snapshot name must not be empty",
        ),
        (
            conn.snapshot_lookup("test", &"x".repeat(10_000)).map(drop),
            codes::INVALID_ARG,
            "invalid argument: snapshot name is longer than 4096 bytes",
        ),
        (
            conn.snapshot_lookup("test", "a\nb").map(drop),
            codes::INVALID_ARG,
            "invalid argument: snapshot name must not contain control characters",
        ),
    ];
    for (i, (result, code, text)) in refused.into_iter().enumerate() {
        if code == codes::INVALID_ARG && text.contains("(0x0)") {
            // snapshot_import is declared but its mask is 0: flags 0 passes, so this one is
            // expected to reach the plugin; checked below.
            result.expect("import with no flags passes the checks");
            continue;
        }
        let (got_code, got_text) = err_of(result);
        assert_eq!(got_code, code, "case {i}: {got_text}");
        if text == "@malformed" {
            // The parser's detail (line and position) is its own; one line is what matters.
            assert!(!got_text.contains('\n') && !got_text.is_empty(), "case {i}: {got_text}");
        } else {
            assert_eq!(got_text, text, "case {i}");
        }
    }
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(logged, "snapshot_import 0x0\n", "only the accepted call reached the plugin");
    let redefine =
        "<domainsnapshot><name>s1</name><state>running</state><creationTime>1</creationTime></domainsnapshot>";
    conn.snapshot_create("test", redefine, c::REDEFINE | c::CURRENT).unwrap();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert_eq!(logged, "snapshot_import 0x0\nsnapshot_create 0x3\n");
}

#[test]
fn panicking_plugin_becomes_an_error_and_is_poisoned() {
    let registry = registry_with("panicky");
    let conn = Connection::open(&registry, "panicky:///", false).unwrap();
    assert_eq!(conn.domain_list().unwrap(), vec![]);
    assert_eq!(
        err_of(conn.snapshot_create("test", "<domainsnapshot/>", 0)),
        (
            codes::INTERNAL_ERROR,
            "internal error: plugin 'panicky' panicked in snapshot_create: driver bug in snapshot_create".to_owned()
        )
    );
    // The host survived; the connection is poisoned and runs no more plugin code.
    assert_eq!(
        err_of(conn.domain_list()),
        (
            codes::INTERNAL_ERROR,
            "internal error: plugin 'panicky' is poisoned by an earlier panic and refuses further calls".to_owned()
        )
    );
    // A fresh connection of the same plugin is not poisoned.
    let again = Connection::open(&registry, "panicky:///", false).unwrap();
    assert_eq!(again.domain_list().unwrap(), vec![]);
    // A panic in open() is an error too.
    assert_eq!(
        err_of(Connection::open(&registry, "panicky:///open", false)),
        (
            codes::INTERNAL_ERROR,
            "internal error: plugin 'panicky' panicked in open: open refuses by panicking".to_owned()
        )
    );
    // Undeclared operations are refused by the host before dispatch.
    assert_eq!(
        err_of(conn.snapshot_list("test", 0)),
        (codes::NO_SUPPORT, "this function is not supported by the connection driver: snapshot_list".to_owned())
    );
}

#[test]
fn incompatible_abi_is_refused_in_one_line() {
    let path = fixture("abi_v2").built();
    let e = load_plugin(&path).unwrap_err();
    let text = e.to_string();
    assert_eq!(
        text,
        format!(
            "cannot load plugin {}: ABI version mismatch: host implements virtplug-plugin-api 1.1.0, plugin was built against 2.0.0",
            path.display()
        )
    );
    assert!(!text.contains('\n'));
}

#[test]
fn files_that_are_not_plugins_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("libgarbage.so");
    std::fs::write(&garbage, b"this is not an ELF file").unwrap();
    let e = load_plugin(&garbage).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot load plugin {}: not a loadable shared library (", garbage.display())),
        "{e}"
    );
    assert!(!e.contains('\n'));

    // A real shared library without the root module: the test binary's own libc is one.
    let libc = ["/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6", "/lib64/libm.so.6"]
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("libm present");
    let copy = dir.path().join("libnotaplugin.so");
    std::fs::copy(libc, &copy).unwrap();
    assert_eq!(
        load_plugin(&copy).unwrap_err().to_string(),
        format!(
            "cannot load plugin {}: not a virtplug plugin (no root module symbol _1as_0lib_1header_0root_bmodule_bloader)",
            copy.display()
        )
    );

    let missing = dir.path().join("libmissing.so");
    let e = load_plugin(&missing).unwrap_err().to_string();
    assert!(e.starts_with(&format!("cannot load plugin {}: cannot read file:", missing.display())), "{e}");
}

#[test]
fn a_directory_scan_keeps_going_past_refused_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("libbroken.so"), b"nope").unwrap();
    std::fs::copy(fixture("panicky").built(), dir.path().join("libpanicky.so")).unwrap();
    let registry =
        Registry::discover(&virtplug_host::PluginDirs { dirs: vec![dir.path().to_owned()], beside_executable: vec![] });
    assert_eq!(registry.plugins().len(), 1);
    assert_eq!(registry.refused().len(), 1);
    assert!(registry.for_scheme("panicky").is_some());
    assert_eq!(
        err_of(Connection::open(&registry, "nosuch:///x", false)),
        (codes::NO_CONNECT, "no connection driver available for nosuch:///x".to_owned())
    );
    assert_eq!(
        err_of(Connection::open(&registry, "not a uri", false)),
        (codes::NO_CONNECT, "no connection driver available for not a uri".to_owned())
    );
}
