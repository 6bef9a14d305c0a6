//! The build steps of a run, each one SQL executed inside ClickHouse.
//!
//! A run is *full* (every derived table rebuilt from `events`) or *incremental*: only the UTC
//! days that received events since the last watermark (plus the days whose identity changed)
//! are re-aggregated, so a late event re-aggregates the day it belongs to. Re-aggregating a day
//! replaces its rows, so running twice over the same events gives the same tables.

pub(crate) mod activity;
pub(crate) mod identity;
pub(crate) mod profiles;
pub(crate) mod reports;
pub(crate) mod sessions;

use time::{Date, Duration};

/// What a run covers.
#[derive(Debug, Clone)]
pub(crate) struct RunCtx {
    pub run_id: u64,
    /// The time the dynamic profiles and segments describe (ms since the epoch).
    pub as_of_ms: i64,
    /// Wall-clock time of the run (ms), stamped on history rows.
    pub now_ms: i64,
    /// `None`: full rebuild. `Some(ms)`: events received after this are new.
    pub since_ms: Option<i64>,
    /// The UTC days to re-aggregate (incremental runs).
    pub days: Vec<Date>,
    /// The days whose reports to recompute: `days`, plus the days on which a person whose
    /// first-seen time moved was counted as new.
    pub report_days: Vec<Date>,
}

impl RunCtx {
    pub(crate) fn is_full(&self) -> bool {
        self.since_ms.is_none()
    }

    /// `expr` is one of the days to re-aggregate; `1` in a full run. Binds `{days:Array(Date)}`.
    pub(crate) fn days_filter(&self, expr: &str) -> String {
        if self.is_full() {
            "1".to_owned()
        } else {
            format!("has({{days:Array(Date)}}, {expr})")
        }
    }

    /// Affected days with one day either side: the days a re-aggregated session can touch.
    pub(crate) fn days_with_neighbours(&self) -> Vec<Date> {
        let mut all: Vec<Date> = self
            .days
            .iter()
            .flat_map(|d| {
                [
                    d.checked_sub(Duration::DAY),
                    Some(*d),
                    d.checked_add(Duration::DAY),
                ]
            })
            .flatten()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Binds the parameters every step may use.
    pub(crate) fn bind(&self, mut query: clickhouse::query::Query) -> clickhouse::query::Query {
        query = query
            .param("run", self.run_id)
            .param("as_of", self.as_of_ms)
            .param("now", self.now_ms)
            .param("since", self.since_ms.unwrap_or(0))
            .param("days", day_strings(&self.days))
            .param("session_days", day_strings(&self.days_with_neighbours()));
        query
    }
}

pub(crate) fn day_strings(days: &[Date]) -> Vec<String> {
    days.iter().map(|d| d.to_string()).collect()
}
