//! Project rules checked on every test run: a `//!` header on every crate root, no ignored or
//! should-panic tests, no package registry host named in the project's files.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name != ".ci" || name == "target" {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Returns every violation as one line.
pub fn violations(root: &Path) -> Vec<String> {
    let mut all = Vec::new();
    files(root, &mut all);
    let mut problems = Vec::new();
    // Split so that this file does not trip its own check.
    let hosts = [
        ["crates", ".io"].concat(),
        ["pypi", ".org"].concat(),
        ["deb.debian", ".org"].concat(),
        ["npmjs", ".org"].concat(),
    ];
    let ignore_attr = ["#[", "ignore]"].concat();
    let should_panic_attr = ["#[", "should_panic"].concat();
    for path in all {
        let rel = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        if rel == "Cargo.lock" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if (file_name == "lib.rs" || file_name == "main.rs")
            && path.parent().is_some_and(|p| p.ends_with("src"))
            && !text.trim_start().starts_with("//!")
        {
            problems.push(format!("{rel}: crate root without a //! header"));
        }
        if path.extension().is_some_and(|e| e == "rs") {
            if text.contains(&ignore_attr) {
                problems.push(format!("{rel}: ignored test"));
            }
            if text.contains(&should_panic_attr) {
                problems.push(format!("{rel}: should_panic test"));
            }
        }
        for host in &hosts {
            if text.contains(host.as_str()) {
                problems.push(format!("{rel}: names a package registry host"));
            }
        }
    }
    problems
}

/// Fails with every violation listed.
pub fn run(root: &Path) -> Result<()> {
    let problems = violations(root);
    if !problems.is_empty() {
        bail!("tidy found {} problem(s):\n{}", problems.len(), problems.join("\n"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_repository_is_tidy() {
        assert_eq!(super::violations(&crate::repo_root()), Vec::<String>::new());
    }
}
