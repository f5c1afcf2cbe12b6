//! libxml2's words for a malformed document, so that a parse error reads as libvirt's does
//! (`(domain_snapshot):LINE: MESSAGE`, libxml2's message and the line where libxml2 stopped).
//! The parser ([`crate::xmltree`]) finds the fault; this module only names it: each function
//! takes what quick-xml or the parser's own checks reported and returns libxml2's text and the
//! byte offset whose line libxml2 reports. Only the first line of a libxml2 message is kept
//! (libvirt appends the offending line and a caret; virtplug's errors are one line).
//! Crate-private; never decides whether a document is well-formed.

use std::ops::Range;

use quick_xml::{
    errors::{IllFormedError, SyntaxError},
    escape::{EscapeError, ParseCharRefError},
    events::attributes::AttrError,
};

/// A fault: libxml2's message and the byte offset of the line it reports.
pub(crate) type Fault = (usize, String);

/// Per byte: bit 0 set when it may start an XML name (ASCII letters, `_`, `:`; any byte of a
/// non-ASCII character, left to the name's owner as the markup virtplug reads is ASCII), bit 1
/// when it may continue one (those, digits, `-`, `.`). A table: names are checked on every
/// element and attribute of every parse.
const NAME_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let start = b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80;
        let more = start || b.is_ascii_digit() || b == b'-' || b == b'.';
        t[c] = (start as u8) | ((more as u8) << 1);
        c += 1;
    }
    t
};

fn name_start(c: u8) -> bool {
    NAME_BYTES[usize::from(c)] & 1 != 0
}

fn name_char(c: u8) -> bool {
    NAME_BYTES[usize::from(c)] & 2 != 0
}

/// libxml2's complaint about a start tag's name, if any: `tag` is the tag's text after `<` up to
/// the first whitespace, `/` or `>` (quick-xml's name).
pub(crate) fn element_name(name: &str) -> Option<&'static str> {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(c) if name_start(*c) => {
            // libxml2 ends the name at the first character that cannot continue it and then
            // expects an attribute there.
            (!bytes.iter().all(|c| name_char(*c))).then_some("error parsing attribute name")
        }
        _ => Some("StartTag: invalid element name"),
    }
}

/// Whether byte `c` is a control character XML does not allow (all but tab, newline and return).
fn control(c: u8) -> bool {
    c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')
}

/// Whether `doc` holds anything the per-node checks of control characters and `]]>` would
/// refuse (it may also be a legitimate CDATA end): one pass over the whole document, so that
/// the usual document, which holds neither, skips those checks node by node.
pub(crate) fn suspicious(doc: &str) -> bool {
    // One fold without early exit, so it compiles to vector instructions: bit 0 for a control
    // character, bit 1 for a `]` (rare; only then is `]]>` looked for).
    let seen = doc.as_bytes().iter().fold(0u8, |seen, &c| seen | u8::from(control(c)) | (u8::from(c == b']') << 1));
    seen & 1 != 0 || (seen & 2 != 0 && doc.contains("]]>"))
}

/// libxml2's complaint about an attribute's name or raw value, if any; `spaced` says whether
/// blanks separate the attribute from what comes before it in the tag, `suspicious` whether
/// the document may hold control characters ([`suspicious`]).
pub(crate) fn attribute(key: &str, raw: &str, spaced: bool, suspicious: bool) -> Option<&'static str> {
    if !spaced {
        return Some("attributes construct error");
    }
    if !key.as_bytes().first().is_some_and(|c| name_start(*c)) || !key.bytes().all(name_char) {
        return Some("error parsing attribute name");
    }
    // The first offending byte decides, as libxml2 stops there.
    for &c in raw.as_bytes() {
        if c == b'<' {
            return Some("Unescaped '<' not allowed in attributes values");
        }
        if suspicious && control(c) {
            return Some("invalid character in attribute value");
        }
    }
    None
}

/// libxml2's complaint about a text node's raw content, if any, with its offset in `raw`.
pub(crate) fn text(raw: &str) -> Option<(usize, String)> {
    // One pass over the bytes: every text node of every parse comes here (a substring search
    // per node cost more than the rest of the check).
    let b = raw.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b']' && b.get(i + 1) == Some(&b']') && b.get(i + 2) == Some(&b'>') {
            return Some((i, "Sequence ']]>' not allowed in content".to_owned()));
        }
        if control(c) {
            return Some((i, format!("PCDATA invalid Char value {c}")));
        }
    }
    None
}

/// libxml2's complaint about a comment's content (between `<!--` and `-->`), if any, with its
/// offset in `content`: XML forbids `--` inside a comment and a `-` right before its end.
pub(crate) fn comment(content: &str) -> Option<(usize, String)> {
    let at = content.find("--").or_else(|| content.ends_with('-').then(|| content.len() - 1))?;
    let shown = content[..at].split('\n').next().unwrap_or("");
    Some((at, format!("Double hyphen within comment: <!--{shown}")))
}

/// A quick-xml attribute error in the start tag at `tag_start` (the `<`); `tag` is the tag's
/// content after `<`, which quick-xml's positions index.
pub(crate) fn attr_error(tag_start: usize, tag: &str, err: &AttrError) -> Fault {
    // The attribute name that ends just before `pos` (after any spaces).
    let key_before = |pos: usize| {
        let head = tag.get(..pos.min(tag.len())).unwrap_or(tag).trim_end();
        let start = head.rfind(|c: char| c.is_ascii_whitespace()).map_or(0, |i| i + 1);
        head[start..].to_owned()
    };
    let at = |pos: usize| tag_start + 1 + pos;
    match err {
        AttrError::ExpectedEq(pos) => {
            (at(*pos), format!("Specification mandates value for attribute {}", key_before(*pos)))
        }
        AttrError::ExpectedValue(pos) | AttrError::UnquotedValue(pos) => {
            (at(*pos), "AttValue: \" or ' expected".to_owned())
        }
        AttrError::ExpectedQuote(pos, quote) => (at(*pos), format!("AttValue: {} expected", char::from(*quote))),
        AttrError::Duplicated(pos, _) => {
            let rest = tag.get(*pos..).unwrap_or("");
            let end = rest.find(|c: char| c == '=' || c.is_ascii_whitespace()).unwrap_or(rest.len());
            (at(*pos), format!("Attribute {} redefined", &rest[..end]))
        }
    }
}

/// An entity or character reference error in `raw` (escaped text or attribute value) that
/// starts at byte `raw_at` of the document.
pub(crate) fn escape_error(raw: &str, raw_at: usize, err: &EscapeError) -> Fault {
    let (range, message): (Range<usize>, String) = match err {
        EscapeError::UnrecognizedEntity(range, name) => (range.clone(), format!("Entity '{name}' not defined")),
        EscapeError::UnterminatedEntity(range) => {
            let after = raw.as_bytes().get(range.start + 1).copied();
            let message = match after {
                Some(b'#') => "CharRef: invalid decimal value",
                Some(c) if name_start(c) => "EntityRef: expecting ';'",
                _ => "xmlParseEntityRef: no name",
            };
            (range.clone(), message.to_owned())
        }
        EscapeError::InvalidCharRef(e) => {
            // quick-xml does not say where: the first character reference is the best guess.
            let start = raw.find("&#").unwrap_or(0);
            let hex = raw[start..].starts_with("&#x");
            let message = match e {
                ParseCharRefError::InvalidCodepoint(n) | ParseCharRefError::IllegalCharacter(n) => char_ref(*n),
                _ if hex => "CharRef: invalid hexadecimal value".to_owned(),
                _ => "CharRef: invalid decimal value".to_owned(),
            };
            (start..start, message)
        }
    };
    (raw_at + range.start, message)
}

/// libxml2's complaint about character reference value `n`.
fn char_ref(n: u32) -> String {
    if n > 0x10_FFFF {
        "xmlParseCharRef: character reference out of bounds".to_owned()
    } else {
        format!("xmlParseCharRef: invalid xmlChar value {n}")
    }
}

/// Whether `c` is an XML 1.0 `Char` (what a character reference may name).
fn xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x1_0000..=0x10_FFFF)
}

/// The first character reference in `raw` (escaped text or attribute value, already known to
/// unescape) that names a character XML does not allow, as libxml2 words it, with its offset
/// in `raw`. quick-xml only refuses U+0000.
pub(crate) fn char_refs(raw: &str) -> Option<(usize, String)> {
    let mut from = 0;
    while let Some(i) = raw[from..].find("&#") {
        let at = from + i;
        let body = &raw[at + 2..];
        let end = body.find(';')?;
        let value = match body.strip_prefix('x') {
            Some(hex) => u32::from_str_radix(&hex[..end - 1], 16).ok(),
            None => body[..end].parse::<u32>().ok(),
        };
        if let Some(n) = value.filter(|n| !xml_char(*n)) {
            return Some((at, char_ref(n)));
        }
        from = at + 2 + end;
    }
    None
}

/// A quick-xml syntax error while reading the markup that starts at `at` (a `<`); `src` is the
/// document. Unfinished markup is reported where the input ended, as libxml2 does.
pub(crate) fn syntax_error(src: &str, at: usize, line_of: impl Fn(usize) -> usize, err: &SyntaxError) -> Fault {
    let rest = src.get(at..).unwrap_or("");
    let message = match err {
        SyntaxError::UnclosedComment => "Comment not terminated".to_owned(),
        SyntaxError::UnclosedCData => "CData section not finished".to_owned(),
        SyntaxError::UnclosedPIOrXmlDecl if rest.starts_with("<?xml") => {
            "parsing XML declaration: '?>' expected".to_owned()
        }
        SyntaxError::UnclosedTag if rest.starts_with("</") => "expected '>'".to_owned(),
        // `<!` followed by neither a comment, CDATA nor a DTD: libxml2 reads a start tag there.
        SyntaxError::InvalidBangMarkup => return (at, "StartTag: invalid element name".to_owned()),
        SyntaxError::UnclosedTag if !rest.starts_with('<') => "expected '>'".to_owned(),
        SyntaxError::UnclosedTag => {
            // An attribute value left open runs to the end: libxml2 stops at its first `<`.
            if let Some(lt) = open_value_lt(rest) {
                return (at + lt, "Unescaped '<' not allowed in attributes values".to_owned());
            }
            let name_len = rest[1..].find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>');
            let name = &rest[1..1 + name_len.unwrap_or(rest.len() - 1)];
            format!("Couldn't find end of Start Tag {name} line {}", line_of(at))
        }
        other => other.to_string(),
    };
    (src.len(), message)
}

/// Within the unfinished tag `tag`, the offset of the first `<` inside an attribute value whose
/// quote never closes.
fn open_value_lt(tag: &str) -> Option<usize> {
    let mut quote: Option<(u8, usize)> = None;
    for (i, c) in tag.bytes().enumerate().skip(1) {
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some((c, i)),
            None => {}
        }
    }
    let (_, from) = quote?;
    tag[from..].find('<').map(|lt| from + lt)
}

/// A quick-xml well-formedness error at the markup starting at `at`. `open` is the innermost
/// open element's start (for a mismatched end tag), `root_done` whether the root was closed.
pub(crate) fn ill_formed(
    at: usize,
    open: Option<usize>,
    root_done: bool,
    line_of: impl Fn(usize) -> usize,
    err: &IllFormedError,
) -> Fault {
    let message = match err {
        // libxml2 reads an end tag's name and then wants `>` (blanks allowed before it).
        IllFormedError::MismatchedEndTag { found, .. } if element_name(found).is_some() => "expected '>'".to_owned(),
        IllFormedError::MismatchedEndTag { expected, found } => {
            let line = open.map_or(1, &line_of);
            format!("Opening and ending tag mismatch: {expected} line {line} and {found}")
        }
        IllFormedError::UnmatchedEndTag(_) if root_done => "Extra content at the end of the document".to_owned(),
        IllFormedError::UnmatchedEndTag(_) => "StartTag: invalid element name".to_owned(),
        other => other.to_string(),
    };
    (at, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_xml_name_rules() {
        assert_eq!(element_name("domainsnapshot"), None);
        assert_eq!(element_name("a-b.c_d:e9"), None);
        assert_eq!(element_name("1name"), Some("StartTag: invalid element name"));
        assert_eq!(element_name(""), Some("StartTag: invalid element name"));
        assert_eq!(element_name("na$me"), Some("error parsing attribute name"));
        assert_eq!(attribute("a", "x<y", true, false), Some("Unescaped '<' not allowed in attributes values"));
        assert_eq!(attribute("-a", "x", true, false), Some("error parsing attribute name"));
        assert_eq!(attribute("a", "x>y", true, true), None);
        assert_eq!(attribute("a", "x", false, false), Some("attributes construct error"));
        assert_eq!(attribute("a", "x\u{2}<", true, true), Some("invalid character in attribute value"));
        assert_eq!(attribute("a", "x\ty", true, true), None);
        assert!(suspicious("a\u{1}") && suspicious(&format!("{}]]>", "x".repeat(100))));
        assert!(!suspicious(&format!("{}\t\r\n]]", "x".repeat(200))));
        assert_eq!(text("a]]>b"), Some((1, "Sequence ']]>' not allowed in content".to_owned())));
        assert_eq!(text("a\u{1}b"), Some((1, "PCDATA invalid Char value 1".to_owned())));
        assert_eq!(text("a]]b>\t\r\n"), None);
        assert_eq!(comment(" a -- b "), Some((3, "Double hyphen within comment: <!-- a ".to_owned())));
        assert_eq!(comment(" a -"), Some((3, "Double hyphen within comment: <!-- a ".to_owned())));
        assert_eq!(comment(" a - b "), None);
        assert_eq!(char_refs("a&#x1F;b"), Some((1, "xmlParseCharRef: invalid xmlChar value 31".to_owned())));
        assert_eq!(char_refs("&#9;&#65;&#x10FFFF;&#xD7FF;"), None);
        assert_eq!(char_refs("&#xD800;"), Some((0, "xmlParseCharRef: invalid xmlChar value 55296".to_owned())));
    }

    #[test]
    fn an_open_attribute_value_is_found_at_its_first_lt() {
        assert_eq!(open_value_lt("<name a=\"x>x</name>\n"), Some(12));
        assert_eq!(open_value_lt("<name a=\"x\" b='y'"), None);
    }
}
