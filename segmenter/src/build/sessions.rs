//! Sessions: one row per SDK session id, attributed to the UTC day it started.
//!
//! Incremental runs recompute every session that received an event since the watermark, from
//! its events on the affected days and the day either side (a session crossing midnight).
//! Rows are versioned by run, so the recomputed row replaces the old one.

use spoor_schema::segmenter::SESSIONS;

use super::RunCtx;
use crate::{Db, Error};

const INSERT: &str = "
INSERT INTO {db}.sessions (project_id, session_id, anonymous_id, user_id, started_at, ended_at, day,
    duration_ms, events, page_views, engaged_ms, entry_path, exit_path, referrer, referrer_domain,
    referrer_class, utm_source, utm_medium, utm_campaign, device_class, browser, os, is_bounce, version)
SELECT project_id, session_id,
    argMin(anonymous_id, (timestamp, event_id)),
    argMaxIf(user_id, (timestamp, event_id), user_id != ''),
    min(timestamp) AS s_start,
    max(timestamp) AS s_end,
    toDate(s_start),
    toUInt64(greatest(dateDiff('millisecond', s_start, s_end), 0)),
    count(),
    countIf(type = 'page_view') AS s_page_views,
    sumIf(engaged_ms, type = 'page_leave'),
    argMinIf(path, (timestamp, event_id), type = 'page_view'),
    argMaxIf(path, (timestamp, event_id), type = 'page_view'),
    argMinIf(referrer, (timestamp, event_id), type = 'page_view'),
    argMinIf(referrer_domain, (timestamp, event_id), type = 'page_view'),
    argMinIf(referrer_class, (timestamp, event_id), type = 'page_view'),
    argMinIf(utm_source, (timestamp, event_id), type = 'page_view'),
    argMinIf(utm_medium, (timestamp, event_id), type = 'page_view'),
    argMinIf(utm_campaign, (timestamp, event_id), type = 'page_view'),
    argMin(device_class, (timestamp, event_id)),
    argMin(browser, (timestamp, event_id)),
    argMin(os, (timestamp, event_id)),
    s_page_views <= 1 AND countIf(type IN ('click', 'search', 'track')) = 0,
    {run:UInt64}
FROM {db}.events FINAL
WHERE session_id != '' AND NOT is_bot AND {scope}
GROUP BY project_id, session_id";

pub(crate) async fn rebuild(db: &Db, ctx: &RunCtx) -> Result<(), Error> {
    let scope = if ctx.is_full() {
        db.execute("sessions: truncate", db.query(&db.truncate(&SESSIONS)))
            .await?;
        "1".to_owned()
    } else {
        db.sql(
            "has({session_days:Array(Date)}, toDate(timestamp)) AND (project_id, session_id) IN (
                SELECT project_id, session_id FROM {db}.events
                WHERE received_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC') AND session_id != '')",
            &[],
        )
    };
    let sql = db.sql(INSERT, &[("scope", &scope)]);
    db.execute("sessions", ctx.bind(db.query(&sql))).await
}
