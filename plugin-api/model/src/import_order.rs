//! The order in which an import redefines a hierarchy: parents before children, keeping each
//! sibling list's order. Used by the store's one-transaction import and by the host's import
//! through REDEFINE for plugins without an import of their own, so both order alike.

use std::collections::HashMap;

use crate::{Error, Result, codes, xml::SnapshotDef};

/// The redefine order of an import: parents before children, and within each sibling list
/// (the import's roots too) the last-listed first, so that the list ends up newest first in the
/// order `defs` gave it (tree.rs: the most recently linked child is listed first). A duplicate
/// name is libvirt's duplicate-name error; a parent cycle inside `defs` is INVALID_ARG.
pub fn order(defs: Vec<SnapshotDef>) -> Result<Vec<SnapshotDef>> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(defs.len());
    for (i, d) in defs.iter().enumerate() {
        if index.insert(d.name.as_str(), i).is_some() {
            return Err(Error::new(codes::OPERATION_FAILED, format!("domain moment {} already exists", d.name)));
        }
    }
    let mut kids: Vec<Vec<usize>> = vec![Vec::new(); defs.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, d) in defs.iter().enumerate() {
        // a self-parent stays a root here so that the redefine reports libvirt's own error
        match d.parent.as_deref().filter(|p| *p != d.name).and_then(|p| index.get(p)) {
            Some(&p) => kids[p].push(i),
            None => stack.push(i),
        }
    }
    let mut order = Vec::with_capacity(defs.len());
    while let Some(i) = stack.pop() {
        order.push(i);
        stack.extend(kids[i].iter().copied());
    }
    let mut slots: Vec<Option<SnapshotDef>> = defs.into_iter().map(Some).collect();
    let out: Vec<SnapshotDef> = order.into_iter().filter_map(|i| slots[i].take()).collect();
    if let Some(stuck) = slots.into_iter().flatten().next() {
        // only a parent cycle inside the batch leaves definitions unreached
        return Err(Error::invalid_arg(format!("snapshot {} is part of a parent cycle", stuck.name)));
    }
    Ok(out)
}
