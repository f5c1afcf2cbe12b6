//! Time stamps: `.vbox` `timeStamp`/`lastStateChange` (`YYYY-MM-DDTHH:MM:SSZ`, UTC) and
//! showvminfo's `VMStateChangeTime` (nine fractional digits, IPRT `time.cpp:719`).

/// Now, in epoch seconds; `VBOXSIM_NOW` (epoch seconds) pins it for tests. Each call within one
/// process returns the same value.
pub fn now() -> i64 {
    if let Some(v) = std::env::var("VBOXSIM_NOW").ok().and_then(|v| v.parse().ok()) {
        return v;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parts(t: i64) -> (i64, i64, i64, i64, i64, i64) {
    let (y, mo, d) = civil(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    (y, mo, d, s / 3600, s / 60 % 60, s % 60)
}

/// `2024-03-25T13:40:44Z`.
pub fn vbox_stamp(t: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2024-03-25T13:40:44.000000000Z`.
pub fn state_change_time(t: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.000000000Z")
}

/// `2024-03-25T13-40-44-000000000Z`: the saved-state file name pattern ([U] reference §3.1).
pub fn file_stamp(t: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}-{mi:02}-{s:02}-000000000Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z`.
pub fn parse_vbox_stamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || !s.ends_with('Z')
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    Some(days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?) * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        for (t, s) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_711_374_044, "2024-03-25T13:40:44Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
        ] {
            assert_eq!(super::vbox_stamp(t), s);
            assert_eq!(super::parse_vbox_stamp(s), Some(t));
        }
    }
}
