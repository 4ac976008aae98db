//! Small helpers with no better home.

use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_unix_ms(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let (h, m, s) = ((secs % 86_400) / 3600, (secs % 3600) / 60, secs % 60);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}")
}

/// 16 unpredictable bytes (std's randomly keyed hasher, mixed with time and pid).
pub fn random_id() -> [u8; 16] {
    let mut out = [0u8; 16];
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut hasher = std::hash::RandomState::new().build_hasher();
        hasher.write_u128(now);
        hasher.write_u32(std::process::id());
        hasher.write_usize(i);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    out
}

/// The first index in `range` at which `is_past` holds, given that it holds for every
/// index after the first one that does (a binary search over positions that need not
/// be materialised, as `slice::partition_point` does for slices).
pub(crate) fn partition_point(
    range: std::ops::Range<usize>,
    is_past: impl Fn(usize) -> bool,
) -> usize {
    let (mut low, mut high) = (range.start, range.end);
    while low < high {
        let mid = low + (high - low) / 2;
        if is_past(mid) {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

/// Runs `work`; a panic in it (a bug) becomes `None` instead of unwinding further. For
/// work whose caller holds shared state that others wait on (a commit group's
/// leadership, the background thread): it must be handed back, not lost to an unwind.
pub(crate) fn unwound<T>(work: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).ok()
}

/// [`unwound`] for work that returns a result: a panic becomes
/// [`crate::Error::Panicked`]`(what)`.
pub(crate) fn catching<T>(
    what: &'static str,
    work: impl FnOnce() -> crate::Result<T>,
) -> crate::Result<T> {
    unwound(work).unwrap_or(Err(crate::Error::Panicked(what)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_dates() {
        assert_eq!(super::format_unix_ms(0), "1970-01-01 00:00:00");
        assert_eq!(
            super::format_unix_ms(1_795_000_000_000),
            "2026-11-18 11:06:40"
        );
    }
}
