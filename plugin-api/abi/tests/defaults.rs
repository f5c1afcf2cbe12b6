//! The evolution rule, checked on the sources: in every `#[sabi_trait]` of this crate, each
//! method after the one marked `#[sabi(last_prefix_field)]` has a default body (a plugin built
//! before the method has no vtable entry for it, and abi_stable then runs the default in the
//! host; without one the call panics), and no prefix type asks abi_stable to panic on a
//! missing field. A new trait is covered as soon as it is in `src/`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests: a failed expectation is the failure")]

use std::path::PathBuf;

/// One method of a `#[sabi_trait]`: its name, whether it has a body, and whether it carries the
/// `last_prefix_field` attribute.
#[derive(Debug, PartialEq, Eq)]
struct Method {
    name: String,
    has_body: bool,
    last_prefix: bool,
}

/// The `#[sabi_trait]` traits of `source`: (trait name, its methods in order).
fn traits(source: &str) -> Vec<(String, Vec<Method>)> {
    // Comments may hold braces or `fn`: drop them (no string in these traits holds `//`).
    let source: String = source.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut out = Vec::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find("#[sabi_trait]") {
        rest = &rest[at + "#[sabi_trait]".len()..];
        let Some(decl) = rest.find("trait ") else { break };
        let name: String = rest[decl + 6..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let Some(open) = rest.find('{') else { break };
        let body = &rest[open + 1..];
        let mut methods = Vec::new();
        let mut depth = 0usize;
        let mut pending_last = false;
        let mut i = 0;
        let bytes = body.as_bytes();
        let mut line_start = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'{' => depth += 1,
                b'}' if depth == 0 => break,
                b'}' => depth -= 1,
                b'\n' => line_start = i + 1,
                _ => {}
            }
            if depth == 0 && bytes[i..].starts_with(b"#[sabi(last_prefix_field)]") {
                pending_last = true;
            }
            let at_line_code = bytes[line_start.min(i)..i].iter().all(u8::is_ascii_whitespace);
            if depth == 0 && at_line_code && bytes[i..].starts_with(b"fn ") {
                let name: String = body[i + 3..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                // The signature ends at the first `;` (no body) or `{` (a body) outside parentheses.
                let mut parens = 0usize;
                let mut j = i;
                let has_body = loop {
                    match bytes.get(j) {
                        Some(b'(') | Some(b'<') => parens += 1,
                        Some(b')') | Some(b'>') if parens > 0 && bytes.get(j.wrapping_sub(1)) != Some(&b'-') => {
                            parens -= 1
                        }
                        Some(b';') if parens == 0 => break false,
                        Some(b'{') if parens == 0 => break true,
                        None => break false,
                        _ => {}
                    }
                    j += 1;
                };
                methods.push(Method { name, has_body, last_prefix: pending_last });
                pending_last = false;
                i = j;
                if has_body {
                    depth += 1;
                }
            }
            i += 1;
        }
        out.push((name, methods));
        rest = body;
    }
    out
}

/// The methods of each trait that come after its last prefix method and lack a body.
fn missing_defaults(source: &str) -> Vec<String> {
    let mut missing = Vec::new();
    for (name, methods) in traits(source) {
        let last = methods.iter().position(|m| m.last_prefix);
        assert!(last.is_some(), "trait {name} has no #[sabi(last_prefix_field)] method");
        for m in methods.iter().skip(last.map_or(0, |l| l + 1)) {
            if !m.has_body {
                missing.push(format!("{name}::{}", m.name));
            }
        }
    }
    missing
}

fn sources() -> Vec<(String, String)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn every_method_appended_after_the_prefix_has_a_default_body() {
    let mut seen = Vec::new();
    let mut missing = Vec::new();
    for (file, text) in sources() {
        for (name, methods) in traits(&text) {
            seen.push(format!("{name}({})", methods.len()));
        }
        missing.extend(missing_defaults(&text).into_iter().map(|m| format!("{file}: {m}")));
    }
    // The checker found the two traits and all their methods (so it cannot pass by finding none).
    assert_eq!(seen, ["Driver(26)", "HostServices(5)"]);
    assert!(missing.is_empty(), "methods appended after the last prefix method without a default body: {missing:?}");
}

#[test]
fn no_prefix_type_panics_on_a_missing_field() {
    for (file, text) in sources() {
        assert!(
            !text.contains("missing_field(panic)"),
            "{file}: a host reading an appended field of an older plugin must get None, not a panic"
        );
    }
}

#[test]
fn the_checker_catches_an_appended_method_without_a_body() {
    let source = r#"
#[sabi_trait]
pub trait T: Send {
    fn a(&self) -> u32;
    #[sabi(last_prefix_field)]
    fn b(&self, x: RVec<u8>) -> RResult<(), E>;
    /// Appended with a default.
    fn c(&self) -> Option<u32> {
        if true { None } else { Some(1) }
    }
    /// Appended without one: this is what the test must catch.
    fn d(&self, x: u32) -> u32;
    fn e(&self) {}
}
"#;
    assert_eq!(
        traits(source)[0].1,
        [
            Method { name: "a".into(), has_body: false, last_prefix: false },
            Method { name: "b".into(), has_body: false, last_prefix: true },
            Method { name: "c".into(), has_body: true, last_prefix: false },
            Method { name: "d".into(), has_body: false, last_prefix: false },
            Method { name: "e".into(), has_body: true, last_prefix: false },
        ]
    );
    assert_eq!(missing_defaults(source), ["T::d"]);
}
