//! Who could have written a plugin file: loading a plugin runs its code with the host's rights,
//! so the file, its directory and every directory above it must be out of reach of anyone but
//! root and the invoking (effective) user — the rules `sshd`'s StrictModes applies to its keys.
//!
//! The rules, exactly:
//! - the path is resolved component by component (as the kernel does, at most 40 symbolic links);
//!   the checks below apply to the *real* path, so a link cannot borrow a trusted name;
//! - the file: a regular file, owned by root or the effective user, no group or world write bit;
//! - its directory: owned by root or the effective user, no group or world write bit — a sticky
//!   bit does not help here (a plugin directory is where plugins are dropped: anyone who may
//!   create entries there may add a plugin);
//! - every parent directory up to `/`: owned by root or the effective user, and not writable by
//!   group or others *unless it has the sticky bit* (like `/tmp`, mode 1777). With the sticky bit
//!   set, the kernel lets only the owner of an entry (or of the directory, or root) rename or
//!   remove it, so others cannot replace the trusted subdirectory that leads to the plugin; they
//!   can only add entries of their own beside it, which are not on the plugin's path;
//! - every symbolic link met on the way: its own directory passes the directory rule and its
//!   parents the parent rule, so a trusted-looking link in a directory others can write (they
//!   could re-point it) is refused even when its target is fine;
//! - the file is opened once (no-follow on the resolved name, non-blocking so a FIFO cannot hang
//!   the host) and must be the very file the path walk found (same device and inode): the
//!   owner and mode checks are made on that open file, and the loader maps it through
//!   `/proc/self/fd/N`, so it cannot be swapped between the checks and the load.

use std::{
    ffi::OsString,
    fs::{File, Metadata},
    os::unix::fs::MetadataExt,
    path::{Component, Path, PathBuf},
};

use rustix::fs::{Mode, OFlags};

/// Symbolic links followed while resolving one path: the kernel's own limit (ELOOP).
const MAX_SYMLINKS: usize = 40;

/// A plugin file that passed the ownership and permission rules, open.
#[derive(Debug)]
pub(super) struct Opened {
    /// The open file the checks were made on.
    pub file: File,
    /// Its real path (no symbolic link in it).
    pub real: PathBuf,
    /// Its size in bytes, from the open file.
    pub len: u64,
}

/// One step of a path still to resolve.
enum Part {
    Root,
    Parent,
    Name(OsString),
}

fn parts(path: &Path) -> Vec<Part> {
    path.components()
        .filter_map(|c| match c {
            Component::RootDir | Component::Prefix(_) => Some(Part::Root),
            Component::CurDir => None,
            Component::ParentDir => Some(Part::Parent),
            Component::Normal(name) => Some(Part::Name(name.to_owned())),
        })
        .collect()
}

/// A symbolic link met while resolving: where it is, and the (real) directory holding it.
struct Link {
    path: PathBuf,
    dir: PathBuf,
}

/// Resolves `path` to a path without symbolic links, recording every link met.
fn resolve(path: &Path) -> Result<(PathBuf, Vec<Link>), String> {
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir().map_err(|e| format!("cannot read file: {e}"))?.join(path)
    };
    let mut real = PathBuf::from("/");
    let mut links = Vec::new();
    // A stack: the next part to resolve is the last one.
    let mut pending: Vec<Part> = parts(&absolute).into_iter().rev().collect();
    while let Some(part) = pending.pop() {
        match part {
            Part::Root => real = PathBuf::from("/"),
            // `real` holds no link, so `..` is its parent, as the kernel resolves it.
            Part::Parent => {
                real.pop();
            }
            Part::Name(name) => {
                let next = real.join(&name);
                let meta = std::fs::symlink_metadata(&next).map_err(|e| format!("cannot read file: {e}"))?;
                if !meta.file_type().is_symlink() {
                    real = next;
                    continue;
                }
                if links.len() == MAX_SYMLINKS {
                    return Err(format!("cannot read file: more than {MAX_SYMLINKS} symbolic links"));
                }
                let target = std::fs::read_link(&next).map_err(|e| format!("cannot read file: {e}"))?;
                pending.extend(parts(&target).into_iter().rev());
                links.push(Link { path: next, dir: real.clone() });
            }
        }
    }
    Ok((real, links))
}

/// `Some("group-writable")` … when the mode lets group or others write.
fn writable_by(mode: u32) -> Option<&'static str> {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some("group- and world-writable"),
        (true, false) => Some("group-writable"),
        (false, true) => Some("world-writable"),
        (false, false) => None,
    }
}

fn trusted_owner(uid: u32, euid: u32) -> bool {
    uid == 0 || uid == euid
}

/// What a directory is to the plugin, for the rule that applies and the message.
#[derive(Clone, Copy)]
enum Role<'a> {
    /// The directory that holds the plugin file: no group/world write, sticky or not.
    Own,
    /// The directory that holds a symbolic link on the way: same rule as [`Role::Own`].
    LinkDir(&'a Path),
    /// A directory above one of those: no group/world write unless sticky.
    Parent,
}

fn check_dir(dir: &Path, role: Role<'_>, euid: u32) -> Result<(), String> {
    let subject = match role {
        Role::Own => format!("directory {}", dir.display()),
        Role::LinkDir(link) => format!("symbolic link {} lies in directory {}, which", link.display(), dir.display()),
        Role::Parent => format!("parent directory {}", dir.display()),
    };
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{subject} cannot be read: {e}"))?;
    if !meta.is_dir() {
        // Resolution found a directory here a moment ago.
        return Err(format!("{subject} changed while it was being checked"));
    }
    if !trusted_owner(meta.uid(), euid) {
        let rule = match role {
            Role::Parent => "every parent directory",
            Role::Own | Role::LinkDir(_) => "a plugin's directory",
        };
        return Err(format!(
            "{subject} is owned by uid {}; {rule} must be owned by root or the invoking user (uid {euid})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if let Some(who) = writable_by(mode) {
        match role {
            Role::Parent if sticky => {}
            Role::Parent => {
                return Err(format!(
                    "{subject} is {who} (mode {mode:04o}); every parent directory must be sticky or not writable by group or others"
                ));
            }
            Role::Own | Role::LinkDir(_) => {
                return Err(format!(
                    "{subject} is {who} (mode {mode:04o}); a plugin's directory must not be writable by group or others"
                ));
            }
        }
    }
    Ok(())
}

/// `dir` by the rule of `role`, then every directory above it by the parent rule.
fn check_chain(dir: &Path, role: Role<'_>, euid: u32) -> Result<(), String> {
    check_dir(dir, role, euid)?;
    dir.ancestors().skip(1).try_for_each(|parent| check_dir(parent, Role::Parent, euid))
}

fn check_file(meta: &Metadata, euid: u32) -> Result<(), String> {
    if !meta.is_file() {
        return Err("not a regular file".to_owned());
    }
    if !trusted_owner(meta.uid(), euid) {
        return Err(format!(
            "owned by uid {}; a plugin must be owned by root or the invoking user (uid {euid})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if let Some(who) = writable_by(mode) {
        return Err(format!("{who} (mode {mode:04o}); a plugin must not be writable by group or others"));
    }
    Ok(())
}

/// Resolves, opens and checks one plugin file; the reason for a refusal is one line.
pub(super) fn open_trusted(path: &Path) -> Result<Opened, String> {
    let euid = rustix::process::geteuid().as_raw();
    let (real, links) = resolve(path)?;
    let found = std::fs::symlink_metadata(&real).map_err(|e| format!("cannot read file: {e}"))?;
    // Refuse devices, FIFOs and directories before opening anything.
    if !found.is_file() {
        return Err("not a regular file".to_owned());
    }
    let fd =
        rustix::fs::open(&real, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| format!("cannot read file: {}", std::io::Error::from(e)))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| format!("cannot read file: {e}"))?;
    if (meta.dev(), meta.ino()) != (found.dev(), found.ino()) {
        return Err(format!("{} changed while it was being checked", real.display()));
    }
    check_file(&meta, euid)?;
    // A file always has a parent directory.
    let dir = real.parent().unwrap_or(Path::new("/"));
    check_chain(dir, Role::Own, euid)?;
    for link in &links {
        check_chain(&link.dir, Role::LinkDir(&link.path), euid)?;
    }
    Ok(Opened { file, real, len: meta.len() })
}
