//! Every case, in run order: static level, the capability matrix, then the behavioural level.

pub mod behaviour;
mod lifecycle;
pub mod matrix;
pub mod static_level;

use virtplug_host::PluginInfo;

use crate::case::Case;

/// All cases for a plugin that declares `info`.
pub fn all(info: &PluginInfo) -> Vec<Case> {
    let mut v = static_level::cases();
    v.extend(matrix::cases(info));
    v.extend(behaviour::cases());
    v
}

/// Whether `id` matches `pattern`: a substring, or a prefix when the pattern ends with `*`,
/// several patterns separated by commas.
pub fn matches(id: &str, pattern: &str) -> bool {
    pattern.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|p| match p.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => id.contains(p),
    })
}
