//! `cargo xtask new-plugin NAME [--dir DIR]`: a new out-of-tree plugin crate that passes the
//! conformance suite as generated. It depends on this checkout's SDK and conformance crates by
//! absolute path, keeps its VMM in memory (one domain, snapshots for the process's lifetime),
//! builds `libvirtplug_plugin_<name>.so`, and its `cargo test` runs the whole suite.

use std::{
    hash::{Hash, Hasher},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

const CARGO_TOML: &str = include_str!("../templates/Cargo.toml.tmpl");
const LIB_RS: &str = include_str!("../templates/lib.rs.tmpl");
const CONFORMANCE_RS: &str = include_str!("../templates/conformance.rs.tmpl");

/// Parses `NAME [--dir DIR]` and writes the crate; prints where it went and what to run next.
pub fn run(args: &[String], repo: &Path) -> Result<()> {
    let mut name = None;
    let mut dir = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(it.next().context("--dir needs a value")?)),
            other if other.starts_with('-') => bail!("unknown option '{other}' (usage: new-plugin NAME [--dir DIR])"),
            other if name.is_none() => name = Some(other.to_owned()),
            other => bail!("unexpected argument '{other}' (usage: new-plugin NAME [--dir DIR])"),
        }
    }
    let name = name.context("usage: cargo xtask new-plugin NAME [--dir DIR]")?;
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    generate(&name, &dir, repo)?;
    println!("created plugin crate {} (scheme {name}:///)", dir.display());
    println!("next: cd {} && cargo test", dir.display());
    Ok(())
}

/// Checks `name`: it becomes the URI scheme, so lowercase letters, digits and `-`, starting
/// with a letter (at most 32 characters).
pub fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!("invalid plugin name '{name}': use 1-32 lowercase letters, digits or '-', starting with a letter");
    }
    Ok(())
}

/// Writes the crate for plugin `name` into `dir` (which must not exist, or be empty).
pub fn generate(name: &str, dir: &Path, repo: &Path) -> Result<()> {
    check_name(name)?;
    if dir.exists() && std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let repo = std::fs::canonicalize(repo).with_context(|| format!("resolving {}", repo.display()))?;
    let fill = |template: &str| {
        template
            .replace("@NAME@", name)
            .replace("@IDENT@", &name.replace('-', "_"))
            .replace("@UUID@", &uuid_for(name))
            .replace("@SDK@", &repo.join("plugin-api/sdk").display().to_string())
            .replace("@CONFORMANCE@", &repo.join("tests/conformance").display().to_string())
    };
    for (path, template) in
        [("Cargo.toml", CARGO_TOML), ("src/lib.rs", LIB_RS), ("tests/conformance.rs", CONFORMANCE_RS)]
    {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&file, fill(template)).with_context(|| format!("writing {}", file.display()))?;
    }
    Ok(())
}

/// A stable version-4-shaped UUID for the example domain, derived from the plugin's name.
fn uuid_for(name: &str) -> String {
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, name).hash(&mut h);
        h.finish()
    };
    let (a, b) = (half(1), half(2));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0x0fff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}
