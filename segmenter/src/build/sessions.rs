//! Sessions: one row per SDK session id, attributed to the UTC day it started.
//!
//! Incremental runs recompute every session that received an event since the watermark, and
//! every session of an anonymous id whose identity changed, from its events on the affected
//! days and the day either side (a session crossing midnight); the old rows are deleted first.

use spoor_schema::segmenter::{SESSIONS, person_id_sql};

use super::RunCtx;
use crate::{Db, Error};

/// Orders a session's events: time in ms, ties broken by the event id's hash. A plain Int64
/// keeps ClickHouse's `argMin` on its fast path (tuple keys and values are several times slower).
const ORDER: &str = "toUnixTimestamp64Milli(timestamp) * 1024 + cityHash64(event_id) % 1024";

/// Unit separator: joins the first page view's fields into one `argMin` value.
const SEP: &str = "'\\x1F'";

const INSERT: &str = "
INSERT INTO {db}.sessions (project_id, session_id, anonymous_id, user_id, person_id, started_at, ended_at, day,
    duration_ms, events, page_views, engaged_ms, entry_path, exit_path, referrer, referrer_domain,
    referrer_class, utm_source, utm_medium, utm_campaign, device_class, browser, os, is_bounce, version)
SELECT g.project_id, g.session_id, g.anon, g.uid, {person}, g.s_start, g.s_end, toDate(g.s_start),
       toUInt64(greatest(dateDiff('millisecond', g.s_start, g.s_end), 0)),
       g.n, g.pv, g.eng,
       g.entry[1], g.exit_path, g.entry[2], g.entry[3], g.entry[4], g.entry[5], g.entry[6], g.entry[7],
       g.entry[8], g.entry[9], g.entry[10],
       g.pv <= 1 AND g.interactions = 0,
       {run:UInt64}
FROM (
    SELECT project_id, session_id,
        min(anonymous_id) AS anon,
        argMaxIf(user_id, {order}, user_id != '') AS uid,
        min(timestamp) AS s_start,
        max(timestamp) AS s_end,
        count() AS n,
        countIf(type = 'page_view') AS pv,
        sumIf(engaged_ms, type = 'page_leave') AS eng,
        splitByString({sep}, argMinIf(concat(path, {sep}, referrer, {sep}, referrer_domain, {sep}, referrer_class, {sep},
            utm_source, {sep}, utm_medium, {sep}, utm_campaign, {sep}, device_class, {sep}, browser, {sep}, os),
            {order}, type = 'page_view')) AS entry,
        argMaxIf(path, {order}, type = 'page_view') AS exit_path,
        countIf(type IN ('click', 'search', 'track')) AS interactions
    FROM {db}.events FINAL
    WHERE session_id != '' AND NOT is_bot AND {scope}
    GROUP BY project_id, session_id
) AS g
LEFT JOIN {db}.identities AS i ON i.project_id = g.project_id AND i.anonymous_id = g.anon";

/// Sessions to recompute in an incremental run: those with a new event, and those of an
/// anonymous id whose identity changed.
pub(crate) const CHANGED: &str = "(project_id, session_id) IN (
        SELECT project_id, session_id FROM {db}.events
        WHERE received_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC') AND session_id != '')
    OR (project_id, anonymous_id) IN (
        SELECT project_id, anonymous_id FROM {db}.identity_changes WHERE run_id = {run:UInt64})";

pub(crate) async fn rebuild(db: &Db, ctx: &RunCtx) -> Result<(), Error> {
    let scope = if ctx.is_full() {
        db.execute("sessions: truncate", db.query(&db.truncate(&SESSIONS)))
            .await?;
        "1".to_owned()
    } else {
        let changed = db.sql(CHANGED, &[]);
        super::profiles::record_session_owners(db, ctx, &changed).await?;
        // A session belongs to its first day, at most a day from any of its events.
        let delete = db.delete_where(
            &SESSIONS,
            &format!("has({{session_days:Array(Date)}}, day) AND ({changed})"),
        );
        db.execute("sessions: delete changed", ctx.bind(db.query(&delete)))
            .await?;
        format!("has({{session_days:Array(Date)}}, toDate(timestamp)) AND ({changed})")
    };
    let person = person_id_sql("g.uid", "i.user_id", "g.anon");
    let sql = db.sql(
        INSERT,
        &[
            ("scope", &scope),
            ("person", &person),
            ("order", ORDER),
            ("sep", SEP),
        ],
    );
    db.execute("sessions", ctx.bind(db.query(&sql))).await
}
