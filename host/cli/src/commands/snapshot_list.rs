//! `snapshot-list`: option checks in virsh's order and with its texts, the listing, and the
//! table / `--name` / `--tree` / `--json` renderings.

use serde_json::json;
use virtplug_host::{SnapshotInfo, flags::snapshot_list as list};

use super::{Ctx, Positional, exclusive, flags_of, json_text, snapshot::snapshot_json};
use crate::{
    args::SnapshotList,
    error::{CliError, Result},
    output::{snapshot_state, table, time, tree},
};

/// Filter options that virsh refuses together with `--tree`, with their list flags, in
/// virsh's checking order.
fn tree_filters(a: &SnapshotList) -> [(&'static str, bool, u32); 7] {
    [
        ("leaves", a.leaves, list::LEAVES),
        ("no-leaves", a.no_leaves, list::NO_LEAVES),
        ("inactive", a.inactive, list::INACTIVE),
        ("active", a.active, list::ACTIVE),
        ("disk-only", a.disk_only, list::DISK_ONLY),
        ("internal", a.internal, list::INTERNAL),
        ("external", a.external, list::EXTERNAL),
    ]
}

/// What to list, once the options are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `snapshot_list` flags.
    pub flags: u32,
    /// `--from NAME`.
    pub from: Option<String>,
    /// `--current` (children of the current snapshot).
    pub current: bool,
}

/// Checks the option combinations exactly as virsh does (same order, same texts) and
/// computes the list flags. `from` is the `--from` value after positional assignment.
pub fn plan(a: &SnapshotList, from: Option<String>) -> Result<Plan> {
    let has_from = from.is_some();
    exclusive(("tree", a.tree), ("name", a.name))?;
    exclusive(("parent", a.parent), ("roots", a.roots))?;
    exclusive(("parent", a.parent), ("tree", a.tree))?;
    exclusive(("roots", a.roots), ("tree", a.tree))?;
    exclusive(("roots", a.roots), ("from", has_from))?;
    exclusive(("roots", a.roots), ("current", a.current))?;
    let mut flags = 0;
    for (option, given, flag) in tree_filters(a) {
        if given && a.tree {
            return Err(CliError::msg(format!("--{option} and --tree are mutually exclusive")));
        }
        if given {
            flags |= flag;
        }
    }
    flags |= flags_of(&[
        (a.topological, list::TOPOLOGICAL),
        (a.roots, list::ROOTS),
        (a.metadata, list::METADATA),
        (a.no_metadata, list::NO_METADATA),
    ]);
    if a.descendants {
        if !has_from && !a.current {
            return Err(CliError::msg("--descendants requires either --from or --current"));
        }
        flags |= list::DESCENDANTS;
    }
    if has_from && a.current {
        return Err(CliError::msg("--from and --current are mutually exclusive"));
    }
    Ok(Plan { flags, from, current: a.current })
}

/// virsh's order: by name, ASCII case-insensitively (`vshStrcasecmp`).
pub fn sort_by_name(list: &mut [SnapshotInfo]) {
    list.sort_by(|a, b| {
        a.name.to_ascii_lowercase().cmp(&b.name.to_ascii_lowercase()).then_with(|| a.name.cmp(&b.name))
    });
}

/// The default table, with the `Parent` column when asked.
pub fn render_table(list: &[SnapshotInfo], with_parent: bool) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            let mut row = vec![s.name.clone(), time::format_utc(s.creation_time), snapshot_state(s.state).to_owned()];
            if with_parent {
                row.push(s.parent.clone().unwrap_or_default());
            }
            row
        })
        .collect();
    if with_parent {
        table::render(&["Name", "Creation Time", "State", "Parent"], &rows)
    } else {
        table::render(&["Name", "Creation Time", "State"], &rows)
    }
}

/// `snapshot-list`.
pub fn run(ctx: &Ctx, mut a: SnapshotList) -> Result<String> {
    let mut pos = Positional::new("snapshot-list", std::mem::take(&mut a.args));
    let dom = pos.require(a.domain.take(), "domain")?;
    let from = pos.take(a.from.take());
    pos.done()?;
    let plan = plan(&a, from)?;
    let d = ctx.domain(&dom)?;
    let start = match (&plan.from, plan.current) {
        (Some(name), _) => Some(ctx.conn.snapshot_lookup(&d.name, name)?),
        (None, true) => Some(ctx.current_snapshot(&d.name)?),
        (None, false) => None,
    };
    let mut snaps = match &start {
        Some(s) => ctx.conn.snapshot_list_children(&d.name, &s.name, plan.flags)?,
        None => ctx.conn.snapshot_list(&d.name, plan.flags)?,
    };
    if let (true, Some(s)) = (a.tree, start) {
        // virsh: with --tree, the start snapshot is in the list as the only parentless entry.
        snaps.push(SnapshotInfo { parent: None, ..s });
    }
    if plan.flags & list::TOPOLOGICAL == 0 {
        sort_by_name(&mut snaps);
    }
    if ctx.json {
        if a.name {
            return Ok(json_text(&json!(snaps.iter().map(|s| &s.name).collect::<Vec<_>>())));
        }
        return Ok(json_text(&json!(snaps.iter().map(snapshot_json).collect::<Vec<_>>())));
    }
    if a.tree {
        let entries: Vec<tree::Entry> =
            snaps.into_iter().map(|s| tree::Entry { name: s.name, parent: s.parent }).collect();
        return Ok(tree::render(&entries));
    }
    if a.name {
        return Ok(snaps.iter().map(|s| format!("{}\n", s.name)).collect());
    }
    Ok(render_table(&snaps, a.parent))
}
