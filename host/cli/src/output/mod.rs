//! Pure formatting: data in, virsh's exact text out. No I/O here, so every format is unit
//! tested byte for byte (`tests/output.rs`).

pub mod info;
pub mod table;
pub mod time;
pub mod tree;

use virtplug_host::flags::domain_state;

/// A snapshot state as written in `<state>` (and so in `snapshot-list` and `snapshot-info`).
pub fn snapshot_state(state: u32) -> &'static str {
    match state {
        domain_state::RUNNING => "running",
        domain_state::BLOCKED => "blocked",
        domain_state::PAUSED => "paused",
        domain_state::SHUTDOWN => "shutdown",
        domain_state::SHUTOFF => "shutoff",
        domain_state::CRASHED => "crashed",
        domain_state::PMSUSPENDED => "pmsuspended",
        domain_state::DISK_SNAPSHOT => "disk-snapshot",
        _ => "nostate",
    }
}

/// A domain state as virsh prints it (`list`, `domstate`, `dominfo`).
pub fn domain_state(state: u32) -> &'static str {
    match state {
        domain_state::RUNNING => "running",
        domain_state::BLOCKED => "idle",
        domain_state::PAUSED => "paused",
        domain_state::SHUTDOWN => "in shutdown",
        domain_state::SHUTOFF => "shut off",
        domain_state::CRASHED => "crashed",
        domain_state::PMSUSPENDED => "pmsuspended",
        _ => "no state",
    }
}

/// Whether a domain in `state` is active (has a running hypervisor process).
pub fn domain_is_active(state: u32) -> bool {
    matches!(
        state,
        domain_state::RUNNING
            | domain_state::BLOCKED
            | domain_state::PAUSED
            | domain_state::SHUTDOWN
            | domain_state::PMSUSPENDED
    )
}

/// virsh ends every command's output with one `\n` (`vshCommandRun`), which is where the
/// "empty line after" of tables, dumps and messages comes from.
pub fn finish(body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 1);
    out.push_str(body);
    out.push('\n');
    out
}
