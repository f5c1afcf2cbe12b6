//! virsh's table layout (`vshTable`), as observed:
//! - every cell is a leading space plus the value;
//! - every column but the last is padded to the column width (the widest of header and
//!   values) plus two spaces; the last column is not padded;
//! - the dash line has Σ(width + 3) dashes.
//!
//! Widths count characters. The caller adds virsh's end-of-command empty line.

/// Renders the header, the dash line and the rows, each line ending in `\n`.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(cell));
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        let last = widths.len().saturating_sub(1);
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            out.push(' ');
            out.push_str(cell);
            if i != last {
                out.extend(std::iter::repeat_n(' ', w - width(cell) + 2));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&mut headers.iter().copied());
    out.extend(std::iter::repeat_n('-', widths.iter().map(|w| w + 3).sum()));
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}
