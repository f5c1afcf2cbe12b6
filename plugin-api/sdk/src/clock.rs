//! The wall clock as plugins record it (snapshot creation times, libvirt's `creationTime`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 for a clock set before 1970 (a creation time is metadata,
/// never a reason to fail an operation).
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
