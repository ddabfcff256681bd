//! Time, in one place: seconds since the epoch, the UTC calendar (Howard Hinnant's
//! civil-from-days, so no time-zone database is needed for the UTC names of logs and tags),
//! the local time of human-facing lines (localtime_r, which follows TZ as the user's other
//! tools do), and durations as people read them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch now (0 for a clock before 1970).
pub(crate) fn unix_secs() -> u64 {
    micros_since_epoch(SystemTime::now()) / 1_000_000
}

/// Microseconds since the epoch of `t` (0 before 1970).
pub(crate) fn micros_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_micros() as u64
}

/// A calendar time: (year, month, day, hour, minute, second).
pub(crate) type Civil = (i64, u32, u32, u32, u32, u32);

/// The UTC calendar time of seconds since the epoch.
pub(crate) fn civil(secs: u64) -> Civil {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// Days since the epoch of a UTC calendar date (the inverse of [`civil`]'s date).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC calendar time now.
pub(crate) fn utc_now() -> Civil {
    civil(unix_secs())
}

/// `2024-05-01 03:00:00 UTC`
pub(crate) fn utc_text(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = civil(micros_since_epoch(t) / 1_000_000);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// The local calendar time now (TZ as the C library reads it).
pub(crate) fn local_now() -> Civil {
    // SAFETY: time(2) and localtime_r(3) with valid pointers to locals.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        tm
    };
    (
        i64::from(tm.tm_year) + 1900,
        (tm.tm_mon + 1) as u32,
        tm.tm_mday as u32,
        tm.tm_hour as u32,
        tm.tm_min as u32,
        tm.tm_sec as u32,
    )
}

/// `0.512s`, `4m07s`, `2h03m09s`
pub(crate) fn duration_text(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}.{:03}s", d.subsec_millis()),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m{:02}s", secs / 3600, secs % 3600 / 60, secs % 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_and_days_from_civil_agree() {
        for secs in [0u64, 86_399, 951_782_400, 1_709_164_800, 4_102_444_800] {
            let (y, m, d, h, mi, s) = civil(secs);
            let back = days_from_civil(y, m, d) as u64 * 86_400
                + u64::from(h) * 3600
                + u64::from(mi) * 60
                + u64::from(s);
            assert_eq!(back, secs, "{y}-{m}-{d}");
        }
        // 2000-02-29 and 2024-02-29: leap days.
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_709_164_800), (2024, 2, 29, 0, 0, 0));
    }

    #[test]
    fn durations_read_as_people_read_them() {
        assert_eq!(duration_text(Duration::from_millis(512)), "0.512s");
        assert_eq!(duration_text(Duration::from_secs(247)), "4m07s");
        assert_eq!(duration_text(Duration::from_secs(7389)), "2h03m09s");
    }
}
