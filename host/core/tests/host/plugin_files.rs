//! What a plugin file must be before it is mapped: whole (ELF headers consistent with its size,
//! so a truncated copy is refused instead of killing the process with SIGBUS) and out of reach
//! of other users (ownership and permission rules as strict as sshd's for its keys).
//!
//! Needs the built mock plugin and CLI (`cargo build -p virtplug-plugin-mock -p virtplug-cli`);
//! the ownership cases chown to uid 65534, so they run as root (as they do here and in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed expectation is the failure")]

use std::{
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    process::Command,
};

use virtplug_host::{PluginDirs, Registry};
use virtplug_test_support::{MOCK, VIRTPLUG};

/// Loads every `*.so` of `dir`: (names of the plugins loaded, one line per refusal).
fn scan(dir: &Path) -> (Vec<String>, Vec<String>) {
    let registry = Registry::discover(&PluginDirs { dirs: vec![dir.to_owned()], beside_executable: vec![] });
    let loaded = registry.plugins().iter().map(|p| p.info.name.to_string()).collect();
    let refused = registry.refused().iter().map(ToString::to_string).collect();
    (loaded, refused)
}

fn mkdir(path: &Path, mode: u32) -> PathBuf {
    std::fs::create_dir(path).unwrap();
    chmod(path, mode);
    path.to_owned()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(65534), None).expect("chown to uid 65534 (these tests run as root)");
}

/// The effective uid, as the kernel stamps it on a new file.
fn euid(scratch: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let probe = scratch.join("uid-probe");
    std::fs::write(&probe, b"").unwrap();
    let uid = std::fs::metadata(&probe).unwrap().uid();
    std::fs::remove_file(&probe).unwrap();
    uid
}

/// A little-endian field of the ELF header.
fn field(bytes: &[u8], at: usize, width: usize) -> u64 {
    bytes[at..at + width].iter().rev().fold(0, |acc, b| (acc << 8) | u64::from(*b))
}

#[test]
fn truncated_plugins_are_refused_before_they_are_mapped() {
    let whole = std::fs::read(MOCK.built()).unwrap();
    let (phoff, shoff) = (field(&whole, 0x20, 8), field(&whole, 0x28, 8));
    let (phentsize, phnum, shentsize, shnum) =
        (field(&whole, 0x36, 2), field(&whole, 0x38, 2), field(&whole, 0x3a, 2), field(&whole, 0x3c, 2));
    // (p_type, p_offset, p_filesz) of every program header.
    let segments: Vec<(u64, u64, u64)> = (0..phnum)
        .map(|i| {
            let at = (phoff + i * phentsize) as usize;
            (field(&whole, at, 4), field(&whole, at + 8, 8), field(&whole, at + 32, 8))
        })
        .collect();
    let loads: Vec<&(u64, u64, u64)> = segments.iter().filter(|s| s.0 == 1).collect();
    assert!(loads.len() >= 2, "the mock has a text segment after its first LOAD");
    let inside_text = loads[1].1 + loads[1].2 / 2;
    // The first program header (in table order) the cut leaves incomplete.
    let (broken, (_, offset, filesz)) =
        segments.iter().enumerate().find(|(_, s)| s.1 + s.2 > inside_text).expect("a segment past the cut");
    assert_eq!(segments[broken].0, 1, "the first incomplete program header is a LOAD");

    let cuts: [(&str, u64, String); 5] = [
        ("empty", 0, "not a loadable shared library (not an ELF file)".to_owned()),
        ("in-elf-header", 40, "truncated ELF file: 40 bytes, shorter than the 64-byte ELF header".to_owned()),
        (
            "in-program-headers",
            phoff + phentsize + 10,
            format!(
                "truncated ELF file: the program header table ends at byte {} but the file has {} bytes",
                phoff + phnum * phentsize,
                phoff + phentsize + 10
            ),
        ),
        (
            "in-text-segment",
            inside_text,
            format!(
                "truncated ELF file: program header {broken} (LOAD) ends at byte {} but the file has {inside_text} bytes",
                offset + filesz
            ),
        ),
        (
            "before-section-headers",
            shoff + 10,
            format!(
                "truncated ELF file: the section header table ends at byte {} but the file has {} bytes",
                shoff + shnum * shentsize,
                shoff + 10
            ),
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::copy(MOCK.built(), dir.join("libwhole.so")).unwrap();
    let mut expected = Vec::new();
    for (name, len, reason) in &cuts {
        let path = dir.join(format!("libcut-{name}.so"));
        std::fs::write(&path, &whole[..*len as usize]).unwrap();
        expected.push((path, reason.clone()));
    }
    expected.sort();

    // In this process: every cut copy refused in one line, the whole copy loaded, no SIGBUS.
    let (loaded, refused) = scan(dir);
    assert_eq!(loaded, vec!["mock".to_owned()]);
    let want: Vec<String> = expected.iter().map(|(p, r)| format!("cannot load plugin {}: {r}", p.display())).collect();
    assert_eq!(refused, want);

    // `virtplug plugins` lists them and exits 0 (before the check it died of SIGBUS).
    let out = Command::new(VIRTPLUG.built()).arg("plugins").env("VIRTPLUG_PLUGIN_DIR", dir).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("Refused ")).collect();
    let want: Vec<String> = expected.iter().map(|(p, r)| format!("Refused {}: {r}", p.display())).collect();
    assert_eq!(listed, want);
}

#[test]
fn elf_files_for_another_host_are_refused_before_they_are_mapped() {
    let whole = std::fs::read(MOCK.built()).unwrap();
    let patched = |at: usize, bytes: &[u8]| {
        let mut copy = whole.clone();
        copy[at..at + bytes.len()].copy_from_slice(bytes);
        copy
    };
    let mut cases = vec![
        ("class", patched(4, &[1]), "not built for this host: 32-bit ELF, this host runs 64-bit".to_owned()),
        ("order", patched(5, &[2]), "not built for this host: big-endian ELF, this host is little-endian".to_owned()),
        ("type", patched(0x10, &[2, 0]), "not a shared library: ELF type 2, a plugin has type ET_DYN (3)".to_owned()),
        ("no-phdrs", patched(0x38, &[0, 0]), "not a shared library: no program headers".to_owned()),
    ];
    if cfg!(target_arch = "x86_64") {
        cases.push((
            "machine",
            patched(0x12, &[183, 0]),
            "not built for this host: ELF machine 183, this host is x86_64 (machine 62)".to_owned(),
        ));
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (name, bytes, reason) in cases {
        let dir = mkdir(&tmp.path().join(name), 0o755);
        let path = dir.join("libx.so");
        std::fs::write(&path, bytes).unwrap();
        let got = scan(&dir);
        let want = (vec![], vec![format!("cannot load plugin {}: {reason}", path.display())]);
        if got != want {
            failures.push(format!("{name}: got {got:?}, expected {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// One layout: the directory to scan, and the reason its one plugin file is refused (`None`:
/// it loads).
struct Case {
    name: &'static str,
    scan: PathBuf,
    refused: Option<(PathBuf, String)>,
}

/// Builds every layout under `root` (a fresh 0700 directory inside sticky /tmp).
fn layouts(root: &Path, uid: u32) -> Vec<Case> {
    let so = |dir: &Path, name: &str, mode: u32| {
        let path = dir.join(name);
        std::fs::copy(MOCK.built(), &path).unwrap();
        chmod(&path, mode);
        path
    };
    let mut cases = Vec::new();
    let mut case = |name, scan: PathBuf, refused: Option<(PathBuf, String)>| cases.push(Case { name, scan, refused });

    // Another user's .so in a sticky world-writable directory (loaded before).
    let d = mkdir(&root.join("sticky"), 0o1777);
    let f = so(&d, "libtheirs.so", 0o755);
    chown_nobody(&f);
    let why = format!("owned by uid 65534; a plugin must be owned by root or the invoking user (uid {uid})");
    case("another user's file in a sticky directory", d, Some((f, why)));
    // Even our own file there: anyone may drop plugins into a sticky world-writable directory.
    let d = mkdir(&root.join("sticky-own"), 0o1777);
    let f = so(&d, "libours.so", 0o755);
    let why = format!(
        "directory {} is group- and world-writable (mode 1777); a plugin's directory must not be writable by group or others",
        d.display()
    );
    case("own file in a sticky world-writable directory", d, Some((f, why)));

    // A symbolic link (in a sound directory) to a .so in a world-writable directory (loaded before).
    let ww = mkdir(&root.join("world"), 0o777);
    so(&ww, "libx.so", 0o755);
    let d = mkdir(&root.join("links"), 0o755);
    let link = d.join("libx.so");
    symlink("../world/libx.so", &link).unwrap();
    let why = format!(
        "directory {} is group- and world-writable (mode 0777); a plugin's directory must not be writable by group or others",
        ww.display()
    );
    case("symlink to a file in a world-writable directory", d, Some((link, why)));

    // A group-writable .so (loaded before).
    let d = mkdir(&root.join("groupw"), 0o755);
    let f = so(&d, "libg.so", 0o664);
    let why = "group-writable (mode 0664); a plugin must not be writable by group or others".to_owned();
    case("group-writable file", d, Some((f, why)));

    let d = mkdir(&root.join("worldw"), 0o755);
    let f = so(&d, "libw.so", 0o666);
    let why = "group- and world-writable (mode 0666); a plugin must not be writable by group or others".to_owned();
    case("group- and world-writable file", d, Some((f, why)));

    // A symbolic link in a world-writable directory to a sound file: whoever may write that
    // directory may re-point the link.
    let good = mkdir(&root.join("good"), 0o755);
    so(&good, "libgood.so", 0o755);
    let d = mkdir(&root.join("open-links"), 0o777);
    let link = d.join("libgood.so");
    symlink(good.join("libgood.so"), &link).unwrap();
    let why = format!(
        "symbolic link {} lies in directory {}, which is group- and world-writable (mode 0777); a plugin's directory must not be writable by group or others",
        link.display(),
        d.display()
    );
    case("symlink in a world-writable directory", d, Some((link, why)));

    // The plugin's directory owned by another user.
    let d = mkdir(&root.join("their-dir"), 0o755);
    let f = so(&d, "libx.so", 0o755);
    chown_nobody(&d);
    let why = format!(
        "directory {} is owned by uid 65534; a plugin's directory must be owned by root or the invoking user (uid {uid})",
        d.display()
    );
    case("directory owned by another user", d, Some((f, why)));

    // A parent writable by everyone without the sticky bit: the plugin's directory could be
    // renamed away and replaced.
    let parent = mkdir(&root.join("open-parent"), 0o777);
    let d = mkdir(&parent.join("plugins"), 0o755);
    let f = so(&d, "libx.so", 0o755);
    let why = format!(
        "parent directory {} is group- and world-writable (mode 0777); every parent directory must be sticky or not writable by group or others",
        parent.display()
    );
    case("world-writable parent", d, Some((f, why)));

    let parent = mkdir(&root.join("group-parent"), 0o775);
    let d = mkdir(&parent.join("plugins"), 0o755);
    let f = so(&d, "libx.so", 0o755);
    let why = format!(
        "parent directory {} is group-writable (mode 0775); every parent directory must be sticky or not writable by group or others",
        parent.display()
    );
    case("group-writable parent", d, Some((f, why)));

    let parent = mkdir(&root.join("their-parent"), 0o755);
    let d = mkdir(&parent.join("plugins"), 0o755);
    let f = so(&d, "libx.so", 0o755);
    chown_nobody(&parent);
    let why = format!(
        "parent directory {} is owned by uid 65534; every parent directory must be owned by root or the invoking user (uid {uid})",
        parent.display()
    );
    case("parent owned by another user", d, Some((f, why)));

    // A sticky world-writable parent (like /tmp) is fine: others cannot rename our directory.
    let parent = mkdir(&root.join("sticky-parent"), 0o1777);
    let d = mkdir(&parent.join("plugins"), 0o755);
    so(&d, "libx.so", 0o755);
    case("sticky world-writable parent", d, None);

    // A symbolic link to a sound file from a sound directory is fine.
    let d = mkdir(&root.join("sound-links"), 0o755);
    symlink("../good/libgood.so", d.join("libgood.so")).unwrap();
    case("symlink between sound directories", d, None);

    // Not a regular file: a FIFO must neither hang the scan nor be opened for reading.
    let d = mkdir(&root.join("fifo"), 0o755);
    let f = d.join("libfifo.so");
    let status = Command::new("mkfifo").arg(&f).status().expect("mkfifo");
    assert!(status.success());
    case("FIFO", d, Some((f, "not a regular file".to_owned())));

    // A loop of symbolic links.
    let d = mkdir(&root.join("loop"), 0o755);
    symlink("libb.so", d.join("liba.so")).unwrap();
    symlink("liba.so", d.join("libb.so")).unwrap();
    let why = "cannot read file: more than 40 symbolic links".to_owned();
    case("symlink loop", d.clone(), Some((d.join("liba.so"), why)));
    cases
}

#[test]
fn plugin_files_follow_strict_ownership_and_permission_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let uid = euid(root);
    let mut failures = Vec::new();
    for case in layouts(root, uid) {
        let (loaded, refused) = scan(&case.scan);
        let expected = match &case.refused {
            Some((path, reason)) => (vec![], vec![format!("cannot load plugin {}: {reason}", path.display())]),
            None => (vec!["mock".to_owned()], vec![]),
        };
        // The loop directory holds two names for the same loop; both are refused alike.
        let refused = if case.name == "symlink loop" { refused.into_iter().take(1).collect() } else { refused };
        if (loaded.clone(), refused.clone()) != expected {
            failures.push(format!("{}:\n  got      {loaded:?} {refused:?}\n  expected {expected:?}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_are_listed_by_virtplug_plugins() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = mkdir(&tmp.path().join("plugins"), 0o755);
    let so = dir.join("libg.so");
    std::fs::copy(MOCK.built(), &so).unwrap();
    chmod(&so, 0o664);
    // A newline in a file name is shown escaped: one refusal, one line.
    let odd = dir.join("lib\nx.so");
    std::fs::copy(MOCK.built(), &odd).unwrap();
    chmod(&odd, 0o666);
    let out = Command::new(VIRTPLUG.built()).arg("plugins").env("VIRTPLUG_PLUGIN_DIR", &dir).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "No plugins loaded.\n\
             Refused {dir}/lib\\nx.so: group- and world-writable (mode 0666); a plugin must not be writable by group or others\n\
             Refused {dir}/libg.so: group-writable (mode 0664); a plugin must not be writable by group or others\n\n",
            dir = dir.display()
        )
    );
}
