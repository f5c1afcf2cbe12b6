//! The embedded documents (`<domain>`, `<inactiveDomain>`, `<cookie>`) this thread's parser
//! has verified lately, so that the same bytes are not checked again. Crate-private.
//!
//! A hierarchy's snapshots usually embed one and the same domain definition, and each create,
//! redefine or import parses it twice (the host validates the document, then the plugin parses
//! it); the embedded definition is most of a redefine's document and most of its parse. Its
//! verification depends on its bytes alone: it always sits one level below the document's root
//! (so the depth limit sees it at the same place), the parser's checks look at nothing outside
//! it, and entities are only the predefined ones (a document type cannot declare more). So an
//! embedded document whose every byte equals one verified under the same limits is valid
//! without a second look; the parser still counts its elements toward the document's limit.
//! Anything else (a new definition, a changed byte) takes the full path and its exact errors.

use std::cell::RefCell;

use crate::xmltree::Limits;

/// Spans shorter than this are checked again: the comparison would save nothing.
const MIN_BYTES: usize = 512;
/// Longer spans are not remembered (a domain definition is a few KiB): with its dedented form,
/// a thread keeps at most 512 KiB, whatever its callers send.
const MAX_BYTES: usize = 64 * 1024;
/// How many spans are remembered (a document embeds at most three).
const KEPT: usize = 4;

/// One verified span.
struct Span {
    /// The element's text, from its start tag's `<` to the end of its end tag.
    text: String,
    /// Where its end tag starts in `text`.
    close: usize,
    /// The elements inside it (itself not counted).
    inner: usize,
    limits: Limits,
    /// The text without its source indentation (`xmltree::dedent`) for that column, once made.
    dedented: Option<(usize, String)>,
}

thread_local! {
    static SPANS: RefCell<Vec<Span>> = const { RefCell::new(Vec::new()) };
}

/// A span verified before whose text `rest` (the document from an opaque element's `<` on)
/// begins with: where its end tag starts (relative to that `<`) and how many elements it holds.
pub(crate) fn lookup(rest: &str, limits: Limits) -> Option<(usize, usize)> {
    if rest.len() < MIN_BYTES {
        return None;
    }
    SPANS.with(|spans| {
        let mut spans = spans.borrow_mut();
        let i = spans.iter().position(|s| s.limits == limits && rest.as_bytes().starts_with(s.text.as_bytes()))?;
        // the most recently used first
        let hit = spans.remove(i);
        let found = (hit.close, hit.inner);
        spans.insert(0, hit);
        Some(found)
    })
}

/// Records `text`, an opaque element the parser has just verified in full under `limits`.
pub(crate) fn record(text: &str, close: usize, inner: usize, limits: Limits) {
    if !(MIN_BYTES..=MAX_BYTES).contains(&text.len()) || close >= text.len() {
        return;
    }
    SPANS.with(|spans| {
        let mut spans = spans.borrow_mut();
        if spans.len() == KEPT {
            spans.pop();
        }
        spans.insert(0, Span { text: text.to_owned(), close, inner, limits, dedented: None });
    });
}

/// `xmltree::dedent(text, column)` when `text` is a remembered span and its dedented form for
/// `column` was kept.
pub(crate) fn dedented(text: &str, column: usize) -> Option<String> {
    SPANS.with(|spans| {
        let spans = spans.borrow();
        let span = spans.iter().find(|s| s.text == text)?;
        span.dedented.as_ref().filter(|(c, _)| *c == column).map(|(_, d)| d.clone())
    })
}

/// Keeps `dedented`, the dedented form of `text` for `column`, when `text` is a remembered span.
pub(crate) fn keep_dedented(text: &str, column: usize, dedented: &str) {
    SPANS.with(|spans| {
        if let Some(span) = spans.borrow_mut().iter_mut().find(|s| s.text == text) {
            span.dedented = Some((column, dedented.to_owned()));
        }
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]
mod tests {
    use crate::xmltree::{Limits, parse_document_limited};

    /// A `<d>` child big enough to be remembered, with `extra` inside it.
    fn embedded(extra: &str) -> String {
        let items: String = (0..40).map(|i| format!("    <item n='{i}' v='a&amp;b'>text {i}</item>\n")).collect();
        format!("  <d type='x'>\n{items}{extra}  </d>\n")
    }

    /// `parse_document_limited` of `src` as text: the tree (spans included) or the error.
    fn parsed(src: &str, limits: Limits) -> String {
        match parse_document_limited(src, "t", limits, |e| e.name == "d") {
            Ok(root) => format!("{root:?}"),
            Err(e) => format!("error: {e}"),
        }
    }

    /// The same parse on a new thread, whose parser has verified nothing yet.
    fn parsed_cold(src: &str, limits: Limits) -> String {
        std::thread::scope(|s| s.spawn(|| parsed(src, limits)).join().unwrap())
    }

    #[test]
    fn a_verified_embedded_document_gives_the_same_tree_and_later_positions() {
        let d = embedded("");
        assert!(d.len() > super::MIN_BYTES);
        let first = format!("<r>\n{d}  <after a='1'/>\n</r>\n");
        let warm_up = parsed(&first, Limits::DOCUMENT);
        assert!(!warm_up.starts_with("error"), "{warm_up}");
        assert!(super::lookup(&first[first.find("<d").unwrap()..], Limits::DOCUMENT).is_some());
        // Elsewhere in another document, then an error after it: its line must be right.
        let second = format!("<r>\n\n\n  <before/>\n{d}  <after a='1' a='2'/>\n</r>\n");
        let warm = parsed(&second, Limits::DOCUMENT);
        assert_eq!(warm, parsed_cold(&second, Limits::DOCUMENT));
        assert!(warm.contains("(t):47: Attribute a redefined"), "{warm}");
        // And a valid one: the same tree, spans and all.
        let third = format!("<r>\n  <before/>\n{d}  <after a='1'/>\n</r>\n");
        assert_eq!(parsed(&third, Limits::DOCUMENT), parsed_cold(&third, Limits::DOCUMENT));
        // A mismatched end tag right after it.
        let fourth = format!("<r>\n{d}</x>\n");
        let warm = parsed(&fourth, Limits::DOCUMENT);
        assert!(warm.starts_with("error"), "{warm}");
        assert_eq!(warm, parsed_cold(&fourth, Limits::DOCUMENT));
    }

    #[test]
    fn one_changed_byte_is_checked_again() {
        let good = format!("<r>\n{}</r>\n", embedded(""));
        assert!(!parsed(&good, Limits::DOCUMENT).starts_with("error"));
        for bad in ["    <item v='<'/>\n", "    <item v='1' v='2'/>\n", "    <item>&bogus;</item>\n", "    <item>\n"] {
            let doc = format!("<r>\n{}</r>\n", embedded(bad));
            let warm = parsed(&doc, Limits::DOCUMENT);
            assert!(warm.starts_with("error"), "{bad}: {warm}");
            assert_eq!(warm, parsed_cold(&doc, Limits::DOCUMENT), "{bad}");
        }
    }

    #[test]
    fn a_verified_document_still_counts_toward_the_element_limit() {
        let limits = Limits { elements: 45, ..Limits::DOCUMENT };
        let d = embedded("");
        // root + d + 40 items = 42 elements
        assert!(!parsed(&format!("<r>\n{d}</r>\n"), limits).starts_with("error"));
        let over = format!("<r>\n{d}  <a/><b/><c/><e/>\n</r>\n");
        let warm = parsed(&over, limits);
        assert!(warm.contains("too many elements in document: more than 45"), "{warm}");
        assert_eq!(warm, parsed_cold(&over, limits));
        // Under other limits the span is not taken as verified.
        assert!(super::lookup(&d[2..], Limits::BUNDLE).is_none());
    }

    #[test]
    fn the_dedented_form_is_the_uncached_one() {
        let src = format!("<r>\n{}</r>\n", embedded(""));
        parsed(&src, Limits::DOCUMENT);
        let start = src.find("<d").unwrap();
        let end = src.find("</r>").unwrap() - 1;
        let raw = &src[start..end];
        let first = crate::xmltree::dedent(raw, 2);
        assert_eq!(super::dedented(raw, 2).as_deref(), Some(first.as_str()));
        assert_eq!(crate::xmltree::dedent(raw, 2), first);
        assert!(first.contains("\n  <item n='0'") && first.ends_with("\n</d>"), "{first}");
        // another column is made, not taken from the kept one
        assert_eq!(super::dedented(raw, 0), None);
        assert!(crate::xmltree::dedent(raw, 0).contains("\n    <item n='0'"));
    }
}
