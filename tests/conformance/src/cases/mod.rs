//! Every case, in run order: static level, the capability matrix, then the behavioural level.

pub mod behaviour;
mod external;
mod lifecycle;
pub mod matrix;
pub mod probe;
pub mod static_level;

use virtplug_host::PluginInfo;

use crate::case::Case;

/// All cases for a plugin that declares `info`.
pub fn all(info: &PluginInfo) -> Vec<Case> {
    let mut v = static_level::cases();
    v.extend(matrix::cases(info));
    v.extend(behaviour::cases());
    v.extend(probe::cases());
    // last: a revert leaves the domain on new overlays, which the probe hook does not look at
    v.extend(external::cases());
    v
}

/// Checks every comma-separated part of an `--only` pattern against the case ids: a part that
/// matches nothing is a typo (`unknown case id: X`), with the closest id when one is close.
pub fn check_only(pattern: &str, ids: &[&str]) -> Result<(), String> {
    for part in pattern.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if ids.iter().any(|id| matches(id, part)) {
            continue;
        }
        // A prefix pattern (`stat.*`) is compared with the ids' prefixes of as many segments.
        let (wanted, star) = match part.strip_suffix('*') {
            Some(w) => (w, "*"),
            None => (part, ""),
        };
        let candidates: Vec<String> =
            ids.iter().map(|id| if star.is_empty() { (*id).to_owned() } else { segments_like(id, wanted) }).collect();
        let best = candidates.iter().map(|c| (distance(wanted, c), c)).min();
        let hint = match best {
            Some((d, c)) if d <= (wanted.len() / 3).max(2) => format!(" (did you mean {c}{star}?)"),
            _ => String::new(),
        };
        return Err(format!("unknown case id: {part}{hint}"));
    }
    Ok(())
}

/// The prefix of `id` with as many `.`-separated segments as `wanted` (and its trailing dot).
fn segments_like(id: &str, wanted: &str) -> String {
    let dots = wanted.matches('.').count();
    let mut parts = id.split_inclusive('.');
    let mut out: String = parts.by_ref().take(dots).collect();
    if !wanted.ends_with('.')
        && let Some(next) = parts.next()
    {
        out.push_str(next.trim_end_matches('.'));
    }
    out
}

/// Levenshtein distance (ids are short; quadratic is fine).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Whether `id` matches `pattern`: a substring, or a prefix when the pattern ends with `*`,
/// several patterns separated by commas.
pub fn matches(id: &str, pattern: &str) -> bool {
    pattern.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|p| match p.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => id.contains(p),
    })
}
