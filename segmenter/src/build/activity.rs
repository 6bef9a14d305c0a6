//! `activity_daily`: per UTC day and raw (anonymous id, user id), what happened, and the
//! person it counts for. The compact history that profiles, segments and reports read instead
//! of `events`.
//!
//! An incremental run re-aggregates, on each of its days, only the rows of the (project,
//! anonymous id) pairs in [`CHANGED`]: it writes the day's other rows and the re-aggregated ones
//! into `activity_daily_next`, then swaps each day's partition in (`REPLACE PARTITION`).

use spoor_schema::segmenter::{ACTIVITY_DAILY, ACTIVITY_DAILY_NEXT, person_id_sql};

use super::RunCtx;
use crate::{Db, Error};

const INSERT: &str = "
INSERT INTO {db}.{table} (project_id, day, anonymous_id, user_id, person_id, events, page_views,
    page_leaves, clicks, searches, session_starts, identifies, tracks, sessions, engaged_ms,
    zero_result_searches, orders, revenue, last_order_at, signups, signins, points_earned,
    points_redeemed, first_at, last_at, event_counts, paths, search_terms)
SELECT g.project_id, g.a_day, g.anonymous_id, g.user_id, {person},
       g.n, g.pv, g.pl, g.cl, g.se, g.ss, g.idf, g.tr, g.sess, g.eng, g.zr, g.o, g.r, g.lo, g.su, g.si,
       g.pe, g.pr, g.f, g.l,
       mapFromArrays(arraySort(arrayDistinct(g.track_names)),
                     arrayMap(x -> toUInt32(countEqual(g.track_names, x)), arraySort(arrayDistinct(g.track_names)))),
       g.p, g.q
FROM (
    SELECT project_id, toDate(timestamp) AS a_day, anonymous_id, user_id,
        count() AS n,
        countIf(type = 'page_view') AS pv,
        countIf(type = 'page_leave') AS pl,
        countIf(type = 'click') AS cl,
        countIf(type = 'search') AS se,
        countIf(type = 'session_start') AS ss,
        countIf(type = 'identify') AS idf,
        countIf(type = 'track') AS tr,
        uniqExactIf(session_id, session_id != '') AS sess,
        sumIf(engaged_ms, type = 'page_leave') AS eng,
        countIf(type = 'search' AND search_results_count = 0) AS zr,
        countIf(type = 'track' AND name = 'order_completed') AS o,
        sum(if(type = 'track' AND name = 'order_completed', JSONExtractFloat(properties, 'revenue'), 0)) AS r,
        maxIfOrNull(timestamp, type = 'track' AND name = 'order_completed') AS lo,
        countIf(type = 'track' AND name = 'member_signup') AS su,
        countIf(type = 'track' AND name = 'member_signin') AS si,
        sum(if(type = 'track' AND name = 'points_earned', JSONExtractInt(properties, 'points'), 0)) AS pe,
        sum(if(type = 'track' AND name = 'points_redeemed', JSONExtractInt(properties, 'points'), 0)) AS pr,
        min(timestamp) AS f,
        max(timestamp) AS l,
        groupArrayIf(toString(name), type = 'track') AS track_names,
        arraySort(groupArrayIf(path, type = 'page_view')) AS p,
        arraySort(groupArrayIf(lower(trimBoth(search_query)), type = 'search')) AS q
    FROM {db}.events FINAL
    WHERE NOT is_bot AND {days} AND {changed}
    GROUP BY project_id, a_day, anonymous_id, user_id
) AS g
LEFT JOIN {db}.identities AS i ON i.project_id = g.project_id AND i.anonymous_id = g.anonymous_id";

/// The pairs whose rows on the run's days an incremental run re-aggregates: those with an
/// event received since the watermark, and those whose identity changed (their rows' person).
/// Every other row of those days is unchanged: its events are the same, and so is its person.
const CHANGED: &str = "(project_id, anonymous_id) IN (
    SELECT project_id, anonymous_id FROM {db}.events
    WHERE received_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC')
    UNION ALL
    SELECT project_id, anonymous_id FROM {db}.identity_changes WHERE run_id = {run:UInt64})";

pub(crate) async fn rebuild(db: &Db, ctx: &RunCtx) -> Result<(), Error> {
    let person = person_id_sql("g.user_id", "i.user_id", "g.anonymous_id");
    let days = ctx.days_filter("toDate(timestamp)");
    if ctx.is_full() {
        db.execute(
            "activity: truncate",
            db.query(&db.truncate(&ACTIVITY_DAILY)),
        )
        .await?;
        let sql = db.sql(
            INSERT,
            &[
                ("table", ACTIVITY_DAILY.name),
                ("days", &days),
                ("changed", "1"),
                ("person", &person),
            ],
        );
        return db.execute("activity", ctx.bind(db.query(&sql))).await;
    }
    let staging = db.truncate(&ACTIVITY_DAILY_NEXT);
    db.execute("activity: empty staging", db.query(&staging))
        .await?;
    let changed = db.sql(CHANGED, &[]);
    let columns = ACTIVITY_DAILY.insert_columns();
    let kept = db.sql(
        &format!(
            "INSERT INTO {{db}}.{next} ({columns}) SELECT {columns} FROM {{db}}.{table}
             WHERE has({{days:Array(Date)}}, day) AND NOT ({changed})",
            next = ACTIVITY_DAILY_NEXT.name,
            table = ACTIVITY_DAILY.name,
        ),
        &[],
    );
    db.execute("activity: kept rows", ctx.bind(db.query(&kept)))
        .await?;
    let sql = db.sql(
        INSERT,
        &[
            ("table", ACTIVITY_DAILY_NEXT.name),
            ("days", &days),
            ("changed", &changed),
            ("person", &person),
        ],
    );
    db.execute("activity", ctx.bind(db.query(&sql))).await?;
    // One partition per day (`toYYYYMMDD(day)`): each re-aggregated day is swapped in whole.
    for day in &ctx.days {
        let partition = u64::from(day.year().unsigned_abs()) * 10_000
            + u64::from(u8::from(day.month())) * 100
            + u64::from(day.day());
        let replace = db.replace_partition(&ACTIVITY_DAILY, &ACTIVITY_DAILY_NEXT, partition);
        db.execute("activity: replace day", db.replacing(&replace).await?)
            .await?;
    }
    db.execute("activity: empty staging", db.query(&staging))
        .await
}
