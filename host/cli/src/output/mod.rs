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

/// virsh's words for the reason `reason` of a domain in `state` (`domstate --reason`): one
/// table per state, indexed by libvirt's reason enums; `unknown` outside them.
pub fn state_reason(state: u32, reason: u32) -> &'static str {
    const RUNNING: &[&str] = &[
        "unknown",
        "booted",
        "migrated",
        "restored",
        "from snapshot",
        "unpaused",
        "migration canceled",
        "save canceled",
        "event wakeup",
        "crashed",
        "post-copy",
        "post-copy failed",
    ];
    const PAUSED: &[&str] = &[
        "unknown",
        "user",
        "migrating",
        "saving",
        "dumping",
        "I/O error",
        "watchdog",
        "from snapshot",
        "shutting down",
        "creating snapshot",
        "crashed",
        "starting up",
        "post-copy",
        "post-copy failed",
        "api error",
    ];
    const SHUTDOWN: &[&str] = &["unknown", "user"];
    const SHUTOFF: &[&str] =
        &["unknown", "shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from snapshot", "daemon"];
    const CRASHED: &[&str] = &["unknown", "panicked"];
    let table: &[&str] = match state {
        domain_state::RUNNING => RUNNING,
        domain_state::PAUSED => PAUSED,
        domain_state::SHUTDOWN => SHUTDOWN,
        domain_state::SHUTOFF => SHUTOFF,
        domain_state::CRASHED => CRASHED,
        _ => &[],
    };
    usize::try_from(reason).ok().and_then(|r| table.get(r)).copied().unwrap_or("unknown")
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
