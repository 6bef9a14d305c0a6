//! `activity_daily`: per UTC day and raw (anonymous id, user id), what happened. The compact
//! history that profiles, segments and reports read instead of `events`.

use spoor_schema::segmenter::ACTIVITY_DAILY;

use super::RunCtx;
use crate::{Db, Error};

const INSERT: &str = "
INSERT INTO {db}.activity_daily (project_id, day, anonymous_id, user_id, events, page_views, sessions,
    engaged_ms, searches, zero_result_searches, orders, revenue, last_order_at, signups, signins,
    points_earned, points_redeemed, first_at, last_at, event_counts, paths, search_terms)
SELECT project_id, toDate(timestamp) AS a_day, anonymous_id, user_id,
    count(),
    countIf(type = 'page_view'),
    uniqExactIf(session_id, session_id != ''),
    sumIf(engaged_ms, type = 'page_leave'),
    countIf(type = 'search'),
    countIf(type = 'search' AND search_results_count = 0),
    countIf(type = 'track' AND name = 'order_completed'),
    sumIf(JSONExtractFloat(properties, 'revenue'), type = 'track' AND name = 'order_completed'),
    maxIfOrNull(timestamp, type = 'track' AND name = 'order_completed'),
    countIf(type = 'track' AND name = 'member_signup'),
    countIf(type = 'track' AND name = 'member_signin'),
    sumIf(JSONExtractInt(properties, 'points'), type = 'track' AND name = 'points_earned'),
    sumIf(JSONExtractInt(properties, 'points'), type = 'track' AND name = 'points_redeemed'),
    min(timestamp),
    max(timestamp),
    sumMap(map(if(type = 'track', concat('track:', name), toString(type)), toUInt32(1))),
    arraySlice(arraySort(groupArrayIf(path, type = 'page_view')), 1, 100),
    arraySlice(arraySort(groupArrayIf(lower(trimBoth(search_query)), type = 'search')), 1, 50)
FROM {db}.events FINAL
WHERE NOT is_bot AND {days}
GROUP BY project_id, a_day, anonymous_id, user_id";

pub(crate) async fn rebuild(db: &Db, ctx: &RunCtx) -> Result<(), Error> {
    if ctx.is_full() {
        db.execute("activity: truncate", db.query(&db.truncate(&ACTIVITY_DAILY)))
            .await?;
    } else {
        let delete = db.delete_where(&ACTIVITY_DAILY, &ctx.days_filter("day"));
        db.execute("activity: delete days", ctx.bind(db.query(&delete)))
            .await?;
    }
    let sql = db.sql(INSERT, &[("days", &ctx.days_filter("toDate(timestamp)"))]);
    db.execute("activity", ctx.bind(db.query(&sql))).await
}
