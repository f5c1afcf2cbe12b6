//! `snapshot-list --tree` rendering, virsh's `vshTreePrint` algorithm (reference §11.3).
//!
//! Roots print in list order at column 0. With a prefix P (empty for a root), a node N that
//! is root R / last sibling L prints:
//! 1. P + (R ? "" : "+- ") + name;
//! 2. if not R: P += (L ? " " : "|") + " ";
//! 3. if N has children: P + "  |";
//! 4. P += "  ", the children in order (the last has L), then P loses those 2 characters;
//! 5. if N has no children and L: P on its own line;
//! 6. if not R: P loses the 2 characters of step 2.
//!
//! virtplug extension: an entry whose parent is not in the list (a filtered listing) is
//! printed as a root instead of being dropped. Iterative, so deep chains cannot overflow.

use std::collections::{HashMap, HashSet};

/// One entry: name and parent name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Snapshot name.
    pub name: String,
    /// Parent name, `None` for a root.
    pub parent: Option<String>,
}

enum Step {
    Enter { idx: usize, root: bool, last: bool },
    Leave { root: bool },
}

/// Renders the forest; the caller adds virsh's end-of-command empty line.
pub fn render(entries: &[Entry]) -> String {
    let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match e.parent.as_deref() {
            Some(p) if names.contains(p) && p != e.name => children.entry(p).or_default().push(i),
            _ => roots.push(i),
        }
    }
    let mut out = String::new();
    let mut visited = vec![false; entries.len()];
    for root in roots {
        let mut prefix = String::new();
        let mut stack = vec![Step::Enter { idx: root, root: true, last: true }];
        while let Some(step) = stack.pop() {
            match step {
                Step::Enter { idx, root, last } => {
                    if std::mem::replace(&mut visited[idx], true) {
                        continue; // a duplicate name: print each entry once
                    }
                    let e = &entries[idx];
                    out.push_str(&prefix);
                    if !root {
                        out.push_str("+- ");
                    }
                    out.push_str(&e.name);
                    out.push('\n');
                    if !root {
                        prefix.push_str(if last { "  " } else { "| " });
                    }
                    let kids = children.get(e.name.as_str()).map(Vec::as_slice).unwrap_or(&[]);
                    if kids.is_empty() {
                        if last {
                            out.push_str(&prefix);
                            out.push('\n');
                        }
                        if !root {
                            prefix.truncate(prefix.len() - 2);
                        }
                        continue;
                    }
                    out.push_str(&prefix);
                    out.push_str("  |\n");
                    prefix.push_str("  ");
                    stack.push(Step::Leave { root });
                    for (n, &kid) in kids.iter().enumerate().rev() {
                        stack.push(Step::Enter { idx: kid, root: false, last: n + 1 == kids.len() });
                    }
                }
                Step::Leave { root } => {
                    prefix.truncate(prefix.len() - 2);
                    if !root {
                        prefix.truncate(prefix.len() - 2);
                    }
                }
            }
        }
    }
    out
}
