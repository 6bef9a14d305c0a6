//! RFC 3339 timestamps from Unix milliseconds, without `core::fmt` or a date crate.

use alloc::string::String;

/// Formats `ms` since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ms: u64) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339(&mut out, ms);
    out
}

/// Appends [`rfc3339`] of `ms` to `out`.
pub fn push_rfc3339(out: &mut String, ms: u64) {
    let secs = ms / 1000;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    for (sep, n, width) in [
        ('-', y as u64, 4),
        ('-', u64::from(m), 2),
        ('T', u64::from(d), 2),
        (':', rem / 3600, 2),
        (':', rem % 3600 / 60, 2),
        ('.', rem % 60, 2),
        ('Z', ms % 1000, 3),
    ] {
        push_padded(out, n, width);
        out.push(sep);
    }
}

fn push_padded(out: &mut String, n: u64, width: u32) {
    let mut div = 10u64.pow(width - 1);
    while div > 0 {
        out.push(char::from(b'0' + (n / div % 10) as u8));
        div /= 10;
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_795_255_200_120, "2026-11-21T10:00:00.120Z"),
            (4_102_444_799_999, "2099-12-31T23:59:59.999Z"),
            (1_709_251_199_000, "2024-02-29T23:59:59.000Z"),
        ] {
            assert_eq!(rfc3339(ms), want, "{ms}");
        }
    }
}
