//! Questions asked on demand rather than built by a run: funnels and paths (live, from
//! `events`) and retention cohorts (from `activity_daily`, as fresh as the latest run). The
//! dashboard's Funnels, Paths and Retention pages and the `funnel` and `retention` commands
//! call these; data teams can run the same SQL.
//!
//! As with segments, every value a caller gives — step names, paths, the project, times — is
//! a server-side parameter; the SQL text depends only on the query's shape (how many steps,
//! of which kinds; weeks or months).

pub mod funnel;
pub mod paths;
pub mod report;
pub mod retention;

pub use funnel::{Funnel, Step, StepKind};
pub use retention::{Cohort, Retention};

use time::{Date, Duration, OffsetDateTime};

/// A question that cannot be asked as given, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A funnel's conversion window: `30m`, `12h`, `7d`.
pub fn parse_window(text: &str) -> Result<Duration, Invalid> {
    let invalid = || {
        Invalid(format!(
            "the window is a number and a unit (m, h or d), such as 7d, not {text:?}"
        ))
    };
    let unit = text.chars().last().ok_or_else(invalid)?;
    let n: i64 = text[..text.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| invalid())?;
    let d = match unit {
        'm' => Duration::minutes(n.min(1 << 20)),
        'h' => Duration::hours(n.min(1 << 20)),
        'd' => Duration::days(n.min(1 << 20)),
        _ => return Err(invalid()),
    };
    Ok(d)
}

/// A day, `YYYY-MM-DD`; today (UTC) when empty.
pub fn parse_day(text: &str) -> Result<Date, Invalid> {
    if text.is_empty() {
        return Ok(OffsetDateTime::now_utc().date());
    }
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| Invalid(format!("a day is written YYYY-MM-DD, not {text:?}")))
}

/// The longest range of days a question may cover.
pub const MAX_DAYS: u32 = 3650;

/// The `days` UTC days ending with the day `at` (`YYYY-MM-DD`, today when empty), as
/// `[from, until)`.
pub fn day_range(days: u32, at: &str) -> Result<(OffsetDateTime, OffsetDateTime), Invalid> {
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(Invalid(format!(
            "days is a number from 1 to {MAX_DAYS}, not {days}"
        )));
    }
    let until = OffsetDateTime::new_utc(parse_day(at)?, time::Time::MIDNIGHT) + Duration::DAY;
    Ok((until - Duration::days(i64::from(days)), until))
}

/// [`day_range`] with `days` as typed (a number; 30 when empty).
pub fn day_range_text(days: &str, at: &str) -> Result<(OffsetDateTime, OffsetDateTime), Invalid> {
    let days = match days.trim() {
        "" => 30,
        text => text.parse().map_err(|_| {
            Invalid(format!(
                "days is a number from 1 to {MAX_DAYS}, not {text:?}"
            ))
        })?,
    };
    day_range(days, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        assert_eq!(parse_window("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_window("90m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_window("12h").unwrap(), Duration::hours(12));
        for bad in [
            "",
            "d",
            "7",
            "7w",
            "-",
            "x7d",
            "99999999999999999999d",
            "7é",
        ] {
            assert!(parse_window(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn days() {
        assert_eq!(parse_day("2026-11-21").unwrap().to_string(), "2026-11-21");
        assert_eq!(parse_day("").unwrap(), OffsetDateTime::now_utc().date());
        assert!(parse_day("21.11.2026").is_err() && parse_day("2026-13-01").is_err());
    }

    #[test]
    fn day_ranges() {
        let (from, until) = day_range(2, "2026-11-21").unwrap();
        assert_eq!(from.to_string(), "2026-11-20 0:00:00.0 +00:00:00");
        assert_eq!(until.to_string(), "2026-11-22 0:00:00.0 +00:00:00");
        assert_eq!(
            day_range_text("", "2026-11-21").unwrap().1
                - day_range_text("", "2026-11-21").unwrap().0,
            Duration::days(30)
        );
        for (days, at) in [
            ("0", ""),
            ("3651", ""),
            ("x", ""),
            ("-1", ""),
            ("7", "21.11.2026"),
        ] {
            assert!(day_range_text(days, at).is_err(), "{days} {at}");
        }
    }
}
