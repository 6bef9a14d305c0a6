//! Reports: `report_{daily,weekly,monthly}` and their pages, sources and searches breakdowns.
//!
//! The daily reports are computed from `activity_daily`, `sessions`, `events` and `tickets`
//! (the per-person part once, into `report_people`, which the summary and its states share);
//! next to them, `report_daily*_states` keep each day's sets of people (`uniqExact` states). The weekly
//! and monthly reports are derived from the daily tables: additive columns are sums of the daily
//! rows, distinct counts (visitors, new visitors, buyers, per-page visitors, per-source visitors,
//! searchers) merge the daily states, so an incremental run re-reads only the re-aggregated days
//! (plus the period's ticket medians). The period column is the first day of the period (weeks
//! start on Monday, UTC).
//!
//! The states hold 64-bit hashes of person ids (`sipHash64`), not the ids: merging them is a
//! third faster (benchmark: a month of visitors, 0.32 s → 0.22 s). `uniqExact` of a string
//! keeps a 128-bit hash of it anyway; with 64 bits, the chance that two of n people share one is
//! about n² / 2⁶⁵ (10⁻⁸ for a million people, 3 × 10⁻⁴ for a hundred million).

use spoor_schema::Table;
use spoor_schema::segmenter::{
    Period, REPORT_DAILY_PAGES_STATES, REPORT_DAILY_SEARCHES_STATES, REPORT_DAILY_SOURCES_STATES,
    REPORT_DAILY_STATES, REPORT_PEOPLE,
};
use time::Date;

use super::{RunCtx, day_strings};
use crate::{Db, Error};

/// The `t` CTE shared by the summary reports: ticket counts, median response and resolution
/// times and CSAT per project and period, read from the `tickets` view.
macro_rules! tickets_cte {
    () => {
        "t AS (
    SELECT project_id, p,
           countIf(k = 'opened') AS opened,
           countIf(k = 'resolved') AS resolved,
           quantileExactIfOrNull(0.5)(x, k = 'first_response') AS median_response,
           quantileExactIfOrNull(0.5)(x, k = 'resolved') AS median_resolution,
           avgIfOrNull(x, k = 'rated') AS csat,
           countIf(k = 'rated') AS ratings
    FROM (
        SELECT project_id, e.1 AS k, {period_ticket} AS p, e.3 AS x
        FROM {db}.tickets
        ARRAY JOIN [('opened', opened_at, toFloat64(0)),
                    ('first_response', first_response_at, toFloat64(response_seconds)),
                    ('resolved', resolved_at, toFloat64(resolution_seconds)),
                    ('rated', rated_at, toFloat64(csat))] AS e
        WHERE e.2 IS NOT NULL AND {filter_ticket}
    )
    GROUP BY project_id, p
)
"
    };
}

const SUMMARY: &str = concat!(
    "
INSERT INTO {db}.{table} (project_id, {col}, visitors, new_visitors, returning_visitors, sessions,
    page_views, bounces, bounce_rate, session_ms_total, avg_session_seconds, engaged_ms_total,
    avg_engaged_seconds, searches, zero_result_searches, orders, revenue, buyers, conversion_rate,
    signups, signins, points_earned, points_redeemed, tickets_opened, tickets_resolved,
    median_first_response_seconds, median_resolution_seconds, csat_avg, csat_responses, computed_at)
WITH
v AS (
    SELECT project_id, day AS p,
           countIf(visited) AS visitors, countIf(new_day) AS new_visitors,
           sum(page_views) AS pv, sum(searches) AS se, sum(zero_result_searches) AS zr,
           sum(orders) AS o, sum(revenue) AS r, countIf(ordered AND visited) AS buyers,
           sum(signups) AS su, sum(signins) AS si, sum(points_earned) AS pe, sum(points_redeemed) AS pr
    FROM {db}.report_people
    GROUP BY project_id, p
),
s AS (
    SELECT project_id, {period_day} AS p, count() AS sessions, countIf(is_bounce) AS bounces,
           sum(duration_ms) AS session_ms, sum(engaged_ms) AS engaged_ms
    FROM {db}.sessions
    WHERE {filter_day}
    GROUP BY project_id, p
),
",
    tickets_cte!(),
    "SELECT v.project_id, v.p, v.visitors, v.new_visitors, v.visitors - v.new_visitors,
       s.sessions, v.pv, s.bounces, if(s.sessions = 0, 0, s.bounces / s.sessions),
       s.session_ms, if(s.sessions = 0, 0, s.session_ms / s.sessions / 1000),
       s.engaged_ms, if(s.sessions = 0, 0, s.engaged_ms / s.sessions / 1000),
       v.se, v.zr, v.o, v.r, v.buyers, if(v.visitors = 0, 0, v.buyers / v.visitors),
       v.su, v.si, v.pe, v.pr,
       t.opened, t.resolved, t.median_response, t.median_resolution, t.csat, t.ratings,
       fromUnixTimestamp64Milli({now:Int64}, 'UTC')
FROM v
LEFT JOIN s ON s.project_id = v.project_id AND s.p = v.p
LEFT JOIN t ON t.project_id = v.project_id AND t.p = v.p"
);

const PAGES: &str = "
INSERT INTO {db}.{table} (project_id, {col}, path, views, visitors, entries, exits, engaged_ms, leaves, avg_engaged_seconds)
SELECT project_id, p, path,
       sum(views), uniqExactIf(person_id, views > 0), sum(entries), sum(exits), sum(engaged), sum(leaves),
       if(sum(leaves) = 0, 0, sum(engaged) / sum(leaves) / 1000)
FROM (
    SELECT project_id, {period_day} AS p, arrayJoin(paths) AS path, toUInt64(1) AS views,
           toUInt64(0) AS entries, toUInt64(0) AS exits, toUInt64(0) AS engaged, toUInt64(0) AS leaves,
           person_id
    FROM {db}.activity_daily WHERE page_views > 0 AND {filter_day}
    UNION ALL
    SELECT project_id, {period_day}, entry_path, 0, 1, 0, 0, 0, ''
    FROM {db}.sessions WHERE entry_path != '' AND {filter_day}
    UNION ALL
    SELECT project_id, {period_day}, exit_path, 0, 0, 1, 0, 0, ''
    FROM {db}.sessions WHERE exit_path != '' AND {filter_day}
    UNION ALL
    SELECT e.project_id, {period_event}, e.path, 0, 0, 0, e.engaged_ms, 1, ''
    FROM {db}.events AS e FINAL WHERE e.type = 'page_leave' AND NOT e.is_bot AND {filter_event}
)
GROUP BY project_id, p, path";

const SOURCES: &str = "
INSERT INTO {db}.{table} (project_id, {col}, referrer_class, referrer_domain, utm_source, utm_medium,
    utm_campaign, sessions, visitors, bounces, page_views)
SELECT project_id, {period_day} AS p, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign,
       count(), uniqExact(person_id), countIf(is_bounce), sum(page_views)
FROM {db}.sessions
WHERE {filter_day}
GROUP BY project_id, p, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign";

const SEARCHES: &str = "
INSERT INTO {db}.{table} (project_id, {col}, query, searches, searchers, zero_results)
SELECT e.project_id AS project_id, {period_event} AS p, lower(trimBoth(e.search_query)) AS q,
       count(), uniqExact({person_event}), countIf(e.search_results_count = 0)
FROM {db}.events AS e FINAL
LEFT JOIN {db}.identities AS i ON i.project_id = e.project_id AND i.anonymous_id = e.anonymous_id
WHERE e.type = 'search' AND NOT e.is_bot AND {filter_event}
GROUP BY project_id, p, q";

/// Each day's sets of people behind the summary. Buyers (visited and ordered in the period, not
/// necessarily on the same day) are `|visitors| + |orderers| - |visitors ∪ orderers|`.
const SUMMARY_STATES: &str = "
INSERT INTO {db}.report_daily_states (project_id, day, visitors, orderers, visitors_or_orderers, new_week, new_month)
SELECT project_id, day,
       uniqExactStateIf(sipHash64(person_id), visited),
       uniqExactStateIf(sipHash64(person_id), ordered),
       uniqExactStateIf(sipHash64(person_id), visited OR ordered),
       uniqExactStateIf(sipHash64(person_id), new_week),
       uniqExactStateIf(sipHash64(person_id), new_month)
FROM {db}.report_people
GROUP BY project_id, day";

/// Per project, day and person of the days being recomputed: what the daily summary and its
/// states need. A person counts as new on the day (week, month) of their first-seen time.
/// `first_seen` is joined whole: filtering it by `pa`'s people re-ran `pa` and cost more than
/// the join (benchmark, two days of 30: 1.1 s → 0.6 s).
const PEOPLE: &str = "
INSERT INTO {db}.report_people (project_id, day, person_id, visited, ordered, new_day, new_week, new_month,
    page_views, searches, zero_result_searches, orders, revenue, signups, signins, points_earned, points_redeemed)
WITH
pa AS (
    SELECT project_id, day, person_id,
           sum(page_views) AS pv, sum(searches) AS se, sum(zero_result_searches) AS zr,
           sum(orders) AS o, sum(revenue) AS r, sum(signups) AS su, sum(signins) AS si,
           sum(points_earned) AS pe, sum(points_redeemed) AS pr,
           sum(sessions) + sum(page_views) > 0 AS visited
    FROM {db}.activity_daily
    WHERE {filter_day}
    GROUP BY project_id, day, person_id
),
first_seen AS (
    SELECT project_id, person_id, toDate(first_seen_at) AS fs, first_seen_at != toDateTime64(0, 3, 'UTC') AS known
    FROM {db}.profiles_static
)
SELECT pa.project_id, pa.day, pa.person_id, pa.visited, pa.o > 0,
       pa.visited AND f.known AND f.fs = pa.day,
       pa.visited AND f.known AND toMonday(f.fs) = toMonday(pa.day),
       pa.visited AND f.known AND toStartOfMonth(f.fs) = toStartOfMonth(pa.day),
       pa.pv, pa.se, pa.zr, pa.o, pa.r, pa.su, pa.si, pa.pe, pa.pr
FROM pa LEFT JOIN first_seen AS f ON f.project_id = pa.project_id AND f.person_id = pa.person_id";

const PAGES_STATES: &str = "
INSERT INTO {db}.report_daily_pages_states (project_id, day, path, visitors)
SELECT project_id, day, path, uniqExactState(sipHash64(person_id))
FROM {db}.activity_daily
ARRAY JOIN arrayDistinct(paths) AS path
WHERE page_views > 0 AND {filter_day}
GROUP BY project_id, day, path";

const SOURCES_STATES: &str = "
INSERT INTO {db}.report_daily_sources_states (project_id, day, referrer_class, referrer_domain, utm_source,
    utm_medium, utm_campaign, visitors)
SELECT project_id, day, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign,
       uniqExactState(sipHash64(person_id))
FROM {db}.sessions
WHERE {filter_day}
GROUP BY project_id, day, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign";

/// `activity_daily.search_terms` holds the same lower-cased, trimmed queries as the search
/// events, with the person they count for.
const SEARCHES_STATES: &str = "
INSERT INTO {db}.report_daily_searches_states (project_id, day, query, searchers)
SELECT project_id, day, q, uniqExactState(sipHash64(person_id))
FROM {db}.activity_daily
ARRAY JOIN arrayDistinct(search_terms) AS q
WHERE searches > 0 AND {filter_day}
GROUP BY project_id, day, q";

const SUMMARY_ROLLUP: &str = concat!(
    "
INSERT INTO {db}.{table} (project_id, {col}, visitors, new_visitors, returning_visitors, sessions,
    page_views, bounces, bounce_rate, session_ms_total, avg_session_seconds, engaged_ms_total,
    avg_engaged_seconds, searches, zero_result_searches, orders, revenue, buyers, conversion_rate,
    signups, signins, points_earned, points_redeemed, tickets_opened, tickets_resolved,
    median_first_response_seconds, median_resolution_seconds, csat_avg, csat_responses, computed_at)
WITH
d AS (
    SELECT project_id, {period_day} AS p, sum(sessions) AS sessions, sum(page_views) AS pv,
           sum(bounces) AS bounces, sum(session_ms_total) AS session_ms, sum(engaged_ms_total) AS engaged_ms,
           sum(searches) AS se, sum(zero_result_searches) AS zr, sum(orders) AS o, sum(revenue) AS r,
           sum(signups) AS su, sum(signins) AS si, sum(points_earned) AS pe, sum(points_redeemed) AS pr
    FROM {db}.report_daily
    WHERE {filter_day}
    GROUP BY project_id, p
),
v AS (
    SELECT project_id, {period_day} AS p,
           uniqExactMerge(visitors) AS n_visitors,
           uniqExactMerge({new_state}) AS n_new,
           n_visitors + uniqExactMerge(orderers) - uniqExactMerge(visitors_or_orderers) AS n_buyers
    FROM {db}.report_daily_states
    WHERE {filter_day}
    GROUP BY project_id, p
),
",
    tickets_cte!(),
    "SELECT d.project_id, d.p, v.n_visitors, v.n_new, v.n_visitors - v.n_new,
       d.sessions, d.pv, d.bounces, if(d.sessions = 0, 0, d.bounces / d.sessions),
       d.session_ms, if(d.sessions = 0, 0, d.session_ms / d.sessions / 1000),
       d.engaged_ms, if(d.sessions = 0, 0, d.engaged_ms / d.sessions / 1000),
       d.se, d.zr, d.o, d.r, v.n_buyers, if(v.n_visitors = 0, 0, v.n_buyers / v.n_visitors),
       d.su, d.si, d.pe, d.pr,
       t.opened, t.resolved, t.median_response, t.median_resolution, t.csat, t.ratings,
       fromUnixTimestamp64Milli({now:Int64}, 'UTC')
FROM d
LEFT JOIN v ON v.project_id = d.project_id AND v.p = d.p
LEFT JOIN t ON t.project_id = d.project_id AND t.p = d.p"
);

const PAGES_ROLLUP: &str = "
INSERT INTO {db}.{table} (project_id, {col}, path, views, visitors, entries, exits, engaged_ms, leaves, avg_engaged_seconds)
SELECT d.project_id, d.p, d.path, d.views, v.n_visitors, d.entries, d.exits, d.engaged, d.leaves,
       if(d.leaves = 0, 0, d.engaged / d.leaves / 1000)
FROM (
    SELECT project_id, {period_day} AS p, path, sum(views) AS views, sum(entries) AS entries,
           sum(exits) AS exits, sum(engaged_ms) AS engaged, sum(leaves) AS leaves
    FROM {db}.report_daily_pages
    WHERE {filter_day}
    GROUP BY project_id, p, path
) AS d
LEFT JOIN (
    SELECT project_id, {period_day} AS p, path, uniqExactMerge(visitors) AS n_visitors
    FROM {db}.report_daily_pages_states
    WHERE {filter_day}
    GROUP BY project_id, p, path
) AS v ON v.project_id = d.project_id AND v.p = d.p AND v.path = d.path";

const SOURCES_ROLLUP: &str = "
INSERT INTO {db}.{table} (project_id, {col}, referrer_class, referrer_domain, utm_source, utm_medium,
    utm_campaign, sessions, visitors, bounces, page_views)
SELECT d.project_id, d.p, d.referrer_class, d.referrer_domain, d.utm_source, d.utm_medium, d.utm_campaign,
       d.sessions, v.n_visitors, d.bounces, d.page_views
FROM (
    SELECT project_id, {period_day} AS p, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign,
           sum(sessions) AS sessions, sum(bounces) AS bounces, sum(page_views) AS page_views
    FROM {db}.report_daily_sources
    WHERE {filter_day}
    GROUP BY project_id, p, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign
) AS d
LEFT JOIN (
    SELECT project_id, {period_day} AS p, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign,
           uniqExactMerge(visitors) AS n_visitors
    FROM {db}.report_daily_sources_states
    WHERE {filter_day}
    GROUP BY project_id, p, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign
) AS v ON v.project_id = d.project_id AND v.p = d.p AND v.referrer_class = d.referrer_class
    AND v.referrer_domain = d.referrer_domain AND v.utm_source = d.utm_source
    AND v.utm_medium = d.utm_medium AND v.utm_campaign = d.utm_campaign";

const SEARCHES_ROLLUP: &str = "
INSERT INTO {db}.{table} (project_id, {col}, query, searches, searchers, zero_results)
SELECT d.project_id, d.p, d.query, d.searches, v.n_searchers, d.zero_results
FROM (
    SELECT project_id, {period_day} AS p, query, sum(searches) AS searches, sum(zero_results) AS zero_results
    FROM {db}.report_daily_searches
    WHERE {filter_day}
    GROUP BY project_id, p, query
) AS d
LEFT JOIN (
    SELECT project_id, {period_day} AS p, query, uniqExactMerge(searchers) AS n_searchers
    FROM {db}.report_daily_searches_states
    WHERE {filter_day}
    GROUP BY project_id, p, query
) AS v ON v.project_id = d.project_id AND v.p = d.p AND v.query = d.query";

/// The first days of the periods that contain `days`, and every day of those periods.
pub(crate) fn affected_periods(period: Period, days: &[Date]) -> (Vec<Date>, Vec<Date>) {
    let mut starts: Vec<Date> = days.iter().map(|d| period_start(period, *d)).collect();
    starts.sort();
    starts.dedup();
    let mut all_days = Vec::new();
    for start in &starts {
        let mut day = *start;
        while period_start(period, day) == *start {
            all_days.push(day);
            match day.next_day() {
                Some(next) => day = next,
                None => break,
            }
        }
    }
    (starts, all_days)
}

fn period_start(period: Period, day: Date) -> Date {
    match period {
        Period::Daily => day,
        Period::Weekly => {
            day - time::Duration::days(i64::from(day.weekday().number_days_from_monday()))
        }
        Period::Monthly => day.replace_day(1).unwrap_or(day),
    }
}

pub(crate) async fn rebuild(db: &Db, ctx: &RunCtx, period: Period) -> Result<(), Error> {
    let (starts, period_days) = affected_periods(period, &ctx.report_days);
    if !ctx.is_full() && starts.is_empty() {
        return Ok(());
    }
    let filter = |expr: &str| {
        if ctx.is_full() {
            "1".to_owned()
        } else {
            format!("has({{period_days:Array(Date)}}, {expr})")
        }
    };
    let col = period.column();
    let person_event =
        spoor_schema::segmenter::person_id_sql("e.user_id", "i.user_id", "e.anonymous_id");
    let fragments = [
        ("col", col.to_owned()),
        ("period_day", period.start_of("day")),
        ("period_ticket", period.start_of("toDate(e.2)")),
        ("period_event", period.start_of("toDate(e.timestamp)")),
        ("person_event", person_event),
        ("filter_day", filter("day")),
        ("filter_ticket", filter("toDate(e.2)")),
        ("filter_event", filter("toDate(e.timestamp)")),
        (
            "new_state",
            match period {
                Period::Monthly => "new_month",
                _ => "new_week",
            }
            .to_owned(),
        ),
    ];
    if period == Period::Daily {
        db.execute(
            "report people: truncate",
            db.query(&db.truncate(&REPORT_PEOPLE)),
        )
        .await?;
        let sql = db.sql(PEOPLE, &[("filter_day", &filter("day"))]);
        let query = ctx
            .bind(db.query(&sql))
            .param("period_days", day_strings(&period_days));
        db.execute("report people", query).await?;
    }
    let [summary, pages, sources, searches] = period.tables();
    let steps: Vec<(&Table, &str, &'static str)> = match period {
        Period::Daily => vec![
            (&summary, SUMMARY, "report"),
            (&pages, PAGES, "report pages"),
            (&sources, SOURCES, "report sources"),
            (&searches, SEARCHES, "report searches"),
            (&REPORT_DAILY_STATES, SUMMARY_STATES, "report states"),
            (
                &REPORT_DAILY_PAGES_STATES,
                PAGES_STATES,
                "report pages states",
            ),
            (
                &REPORT_DAILY_SOURCES_STATES,
                SOURCES_STATES,
                "report sources states",
            ),
            (
                &REPORT_DAILY_SEARCHES_STATES,
                SEARCHES_STATES,
                "report searches states",
            ),
        ],
        Period::Weekly | Period::Monthly => vec![
            (&summary, SUMMARY_ROLLUP, "report"),
            (&pages, PAGES_ROLLUP, "report pages"),
            (&sources, SOURCES_ROLLUP, "report sources"),
            (&searches, SEARCHES_ROLLUP, "report searches"),
        ],
    };
    for (table, template, step) in steps {
        // The state tables are keyed by `day`, like the daily reports.
        let key = if table.columns.iter().any(|c| c.name == "day") {
            "day"
        } else {
            col
        };
        let clear = if ctx.is_full() {
            db.truncate(table)
        } else {
            db.delete_where(table, &format!("has({{starts:Array(Date)}}, {key})"))
        };
        let bind = |q: clickhouse::query::Query| {
            ctx.bind(q)
                .param("starts", day_strings(&starts))
                .param("period_days", day_strings(&period_days))
        };
        db.execute(step, bind(db.query(&clear))).await?;
        let mut all: Vec<(&str, &str)> = fragments.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.push(("table", table.name));
        let sql = db.sql(template, &all);
        db.execute(step, bind(db.query(&sql))).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn periods_cover_whole_weeks_and_months() {
        let days = [
            date!(2026 - 11 - 21),
            date!(2026 - 11 - 22),
            date!(2026 - 11 - 23),
        ];
        let (starts, all) = affected_periods(Period::Weekly, &days);
        assert_eq!(starts, vec![date!(2026 - 11 - 16), date!(2026 - 11 - 23)]);
        assert_eq!(all.len(), 14);
        assert_eq!(all[0], date!(2026 - 11 - 16));
        assert_eq!(all[13], date!(2026 - 11 - 29));
        let (starts, all) = affected_periods(Period::Monthly, &days);
        assert_eq!(starts, vec![date!(2026 - 11 - 01)]);
        assert_eq!(all.len(), 30);
        let (starts, all) = affected_periods(Period::Daily, &days[..1]);
        assert_eq!(starts, vec![date!(2026 - 11 - 21)]);
        assert_eq!(all, starts);
    }
}
