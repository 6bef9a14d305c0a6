//! Retention cohorts: people grouped by the week (or month) they were first seen, and how many
//! of each group were active again 1, 2, … weeks (months) later. Read from `activity_daily`,
//! so it follows the identity rule and is as fresh as the latest run. "Active" is any event
//! other than a bot's — or, with an event, doing that event (an event type such as `search`, or
//! a `track` event's name such as `order_completed`); a person's first period is the one of
//! their earliest event either way.

use serde::Deserialize;
use time::{Date, Duration, Month};

use super::Invalid;
use crate::{Db, Error};

/// At most this many cohorts.
pub const MAX_COHORTS: u32 = 52;

/// The `n` of a cohort's size in [`Retention::sql`]'s rows.
pub const EVERYONE: u32 = u32::MAX;

/// How people are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
}

impl Period {
    pub fn parse(text: &str) -> Result<Period, Invalid> {
        match text {
            "week" | "weekly" => Ok(Period::Week),
            "month" | "monthly" => Ok(Period::Month),
            other => Err(Invalid(format!(
                "cohorts are by \"week\" or \"month\", not {other:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The first day of the period `day` is in.
    pub fn start(self, day: Date) -> Date {
        match self {
            Period::Week => {
                day - Duration::days(i64::from(day.weekday().number_days_from_monday()))
            }
            Period::Month => day.replace_day(1).unwrap_or(day),
        }
    }

    /// The first day of the period `n` periods before the one starting on `start`.
    fn back(self, start: Date, n: u32) -> Date {
        match self {
            Period::Week => start - Duration::weeks(i64::from(n)),
            Period::Month => {
                let months = i32::from(u8::from(start.month())) - 1 - n as i32;
                let year = start.year() + months.div_euclid(12);
                let month = u8::try_from(months.rem_euclid(12) + 1).unwrap_or(1);
                Month::try_from(month)
                    .ok()
                    .and_then(|m| Date::from_calendar_date(year, m, 1).ok())
                    .unwrap_or(start)
            }
        }
    }

    /// `(start of the period, SQL unit)`.
    fn sql(self) -> (&'static str, &'static str) {
        match self {
            Period::Week => ("toMonday", "week"),
            Period::Month => ("toStartOfMonth", "month"),
        }
    }
}

/// The people first seen in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cohort {
    /// The period's first day.
    pub start: Date,
    /// How many people were first seen in it.
    pub people: u64,
    /// `active[n]`: how many of them were active `n` periods later, up to the period of the
    /// `until` day (without an event, `active[0] == people`).
    pub active: Vec<u64>,
}

/// Retention of one project's people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    pub project: String,
    pub period: Period,
    /// How many cohorts: the period of `until` and the ones before it.
    pub cohorts: u32,
    /// The last day counted.
    pub until: Date,
    /// Active means doing this event; any event when `None`.
    pub event: Option<String>,
}

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Cell {
    #[serde(with = "clickhouse::serde::time::date")]
    cohort: Date,
    n: u32,
    people: u64,
}

impl Retention {
    pub fn new(
        project: &str,
        period: Period,
        cohorts: u32,
        until: Date,
    ) -> Result<Retention, Invalid> {
        if !(1..=MAX_COHORTS).contains(&cohorts) {
            return Err(Invalid(format!(
                "between 1 and {MAX_COHORTS} cohorts, not {cohorts}"
            )));
        }
        Ok(Retention {
            project: project.to_owned(),
            period,
            cohorts,
            until,
            event: None,
        })
    }

    /// Active means doing `event` (an event type or a `track` event's name); any event when
    /// `None` or empty.
    pub fn doing(mut self, event: Option<&str>) -> Result<Retention, Invalid> {
        self.event = match event.map(str::trim) {
            None | Some("") => None,
            Some(e) if e.len() > 200 || e.chars().any(char::is_control) => {
                return Err(Invalid(format!(
                    "an event name has at most 200 characters and no control characters, not {e:?}"
                )));
            }
            Some(e) => Some(e.to_owned()),
        };
        Ok(self)
    }

    /// The first day of the oldest cohort.
    pub fn first(&self) -> Date {
        self.period
            .back(self.period.start(self.until), self.cohorts - 1)
    }

    /// The SQL (`{db}` left for [`Db::sql`]): `(cohort, n, people)` for every cohort and
    /// period with someone active, and `n` = [`EVERYONE`] for the cohort's size. Its text
    /// depends only on the period and on whether (and how) an event is asked for; the values
    /// are parameters (`project`, `first`, `until`, `event`).
    pub fn sql(&self) -> String {
        let (start, unit) = self.period.sql();
        let active = match self.event.as_deref() {
            None => "1".to_owned(),
            Some(event) => match crate::segment::rule::event_column(event) {
                Some(column) => format!("{column} > 0"),
                None => "event_counts[{event:String}] > 0".to_owned(),
            },
        };
        format!(
            "SELECT c AS cohort, if(p = toDate(0), {EVERYONE}, toUInt32(dateDiff('{unit}', c, p))) AS n, count() AS people FROM (
    SELECT {start}(min(day)) AS c, groupUniqArrayIf({start}(day), {active}) AS periods
    FROM {{db}}.activity_daily
    WHERE project_id = {{project:String}} AND day <= {{until:Date}}
    GROUP BY person_key
    HAVING c >= {{first:Date}}
)
ARRAY JOIN arrayPushFront(periods, toDate(0)) AS p
GROUP BY c, n
ORDER BY c, n"
        )
    }

    /// Every cohort from [`Retention::first`] to the period of `until`, oldest first (a
    /// period in which nobody was first seen is a cohort of 0 people).
    pub async fn cohorts(&self, db: &Db) -> Result<Vec<Cohort>, Error> {
        let cells: Vec<Cell> = db
            .query(&db.sql(&self.sql(), &[]))
            .param("project", self.project.as_str())
            .param("until", self.until.to_string())
            .param("first", self.first().to_string())
            .param("event", self.event.as_deref().unwrap_or_default())
            .fetch_all()
            .await
            .map_err(|e| Error::query("retention", e))?;
        let last = self.period.start(self.until);
        Ok((0..self.cohorts)
            .map(|i| {
                let start = self.period.back(last, self.cohorts - 1 - i);
                let mut active = vec![0; (self.cohorts - i) as usize];
                let mut people = 0;
                for cell in cells.iter().filter(|c| c.cohort == start) {
                    if cell.n == EVERYONE {
                        people = cell.people;
                    } else if let Some(slot) = active.get_mut(cell.n as usize) {
                        *slot = cell.people;
                    }
                }
                Cohort {
                    start,
                    people,
                    active,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods() {
        assert_eq!(
            Period::Week.start(date!(2026 - 11 - 21)),
            date!(2026 - 11 - 16)
        );
        assert_eq!(
            Period::Week.start(date!(2026 - 11 - 16)),
            date!(2026 - 11 - 16)
        );
        assert_eq!(
            Period::Month.start(date!(2026 - 11 - 21)),
            date!(2026 - 11 - 01)
        );
        assert_eq!(
            Period::Month.back(date!(2026 - 02 - 01), 3),
            date!(2025 - 11 - 01)
        );
        assert_eq!(
            Period::Month.back(date!(2026 - 12 - 01), 12),
            date!(2025 - 12 - 01)
        );
        let r = Retention::new("p", Period::Week, 4, date!(2026 - 11 - 21)).unwrap();
        assert_eq!(r.first(), date!(2026 - 10 - 26));
        assert!(Retention::new("p", Period::Week, 0, date!(2026 - 11 - 21)).is_err());
        assert!(Retention::new("p", Period::Week, 53, date!(2026 - 11 - 21)).is_err());
        assert!(Period::parse("day").is_err());
    }
}
