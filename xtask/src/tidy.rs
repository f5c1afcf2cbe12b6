//! Project rules checked on every test run: a `//!` header opening every `.rs` file (crate roots,
//! modules, test files and build scripts alike, so each file says what it is for), no ignored or
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
        if path.extension().is_some_and(|e| e == "rs") {
            if let Some(problem) = header_problem(&text) {
                problems.push(format!("{rel}: {problem}"));
            }
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

/// Why a `.rs` file's opening does not say what the file is for, if it does not: the first
/// non-blank line must be a `//!` comment with some text after it.
fn header_problem(text: &str) -> Option<&'static str> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty());
    match first {
        Some(line) if line.starts_with("//!") && !line.trim_start_matches("//!").trim().is_empty() => None,
        Some(line) if line.starts_with("//!") => Some("//! header starts with an empty line"),
        _ => Some("no //! header saying what the file is for"),
    }
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
    use super::header_problem;

    #[test]
    fn the_repository_is_tidy() {
        assert_eq!(super::violations(&crate::repo_root()), Vec::<String>::new());
    }

    #[test]
    fn every_rs_file_needs_a_header_with_text() {
        assert_eq!(header_problem("//! What this is.\nfn f() {}\n"), None);
        assert_eq!(header_problem("\n\n//! After blank lines.\n"), None);
        assert_eq!(header_problem("use super::*;\n"), Some("no //! header saying what the file is for"));
        assert_eq!(
            header_problem("// a plain comment\n//! too late\n"),
            Some("no //! header saying what the file is for")
        );
        assert_eq!(header_problem("/// an item doc\nfn f() {}\n"), Some("no //! header saying what the file is for"));
        assert_eq!(header_problem(""), Some("no //! header saying what the file is for"));
        assert_eq!(header_problem("//!\n//! text\n"), Some("//! header starts with an empty line"));
    }

    #[test]
    fn a_module_without_a_header_is_reported_wherever_it_is() {
        // A fresh folder of this process under the system's temporary folder (xtask stays free of
        // dev-dependencies).
        let dir = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
        let tests = dir.join("crate/tests");
        std::fs::create_dir_all(&tests).unwrap();
        std::fs::write(tests.join("helper.rs"), "pub fn f() {}\n").unwrap();
        std::fs::write(tests.join("ok.rs"), "//! Fine.\n").unwrap();
        let found = super::violations(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found, ["crate/tests/helper.rs: no //! header saying what the file is for"]);
    }
}
