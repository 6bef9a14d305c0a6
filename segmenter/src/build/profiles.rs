//! `profiles_static` (first touch, signup, traits: recomputed for the people a run touched) and
//! `profiles_dynamic` (activity, RFM, engagement, lifecycle as of the run: rebuilt every run).

use spoor_schema::segmenter::{
    PROFILES_DYNAMIC, PROFILES_DYNAMIC_NEXT, PROFILES_STATIC, TOUCHED_PEOPLE, person_key_of,
};

use super::RunCtx;
use crate::config::Lifecycle;
use crate::{Db, Error};

/// This run's touched people: whose dynamic profile (and segment memberships) it recomputes.
/// Nobody else's history changed. Written into `touched_people` by [`clear_touched`],
/// [`record_session_owners`] and [`record_touched`]; a person may have several rows.
///
/// `person_key IN (this run's touched people)`, on a table with [`PERSON_KEY`]: one 16-byte
/// column instead of the (project, person) strings.
///
/// [`PERSON_KEY`]: spoor_schema::segmenter::PERSON_KEY
pub(crate) fn touched_filter() -> String {
    people_filter("")
}

/// [`touched_filter`] for the touched people whose static profile can have changed
/// ([`record_touched`] says when).
fn static_filter() -> String {
    people_filter(" AND static_inputs")
}

fn people_filter(condition: &str) -> String {
    format!(
        "person_key IN (SELECT {key} FROM {{db}}.touched_people WHERE run_id = {{run:UInt64}}{condition})",
        key = person_key_of("project_id", "person_id")
    )
}

/// The touched people whose static profile can have changed, on `events` (no person key there):
/// `user_id IN (…)`, led by a test of the id alone, which is several times cheaper per row than
/// the tuple test and leaves it few rows.
fn static_users_filter() -> &'static str {
    "user_id IN (SELECT person_id FROM {db}.touched_people WHERE run_id = {run:UInt64} AND static_inputs)
     AND (project_id, user_id) IN (
         SELECT project_id, person_id FROM {db}.touched_people WHERE run_id = {run:UInt64} AND static_inputs)"
}

/// Empties `touched_people`. Runs first: an incremental run's sessions step already adds to it.
pub(crate) async fn clear_touched(db: &Db) -> Result<(), Error> {
    db.execute(
        "touched people: truncate",
        db.query(&db.truncate(&TOUCHED_PEOPLE)),
    )
    .await
}

/// Records the people who own the sessions about to be recomputed (`changed`: the sessions
/// filter), before their rows are deleted: a session can move to another person (a later
/// event in it carries a second user id), and the person who had it changed too.
pub(crate) async fn record_session_owners(
    db: &Db,
    ctx: &RunCtx,
    changed: &str,
) -> Result<(), Error> {
    let sql = db.sql(
        &format!(
            "INSERT INTO {{db}}.touched_people (run_id, project_id, person_id, static_inputs)
             SELECT DISTINCT {{run:UInt64}}, project_id, person_id, false FROM {{db}}.sessions
             WHERE has({{session_days:Array(Date)}}, day) AND ({changed})"
        ),
        &[],
    );
    db.execute("touched people: session owners", ctx.bind(db.query(&sql)))
        .await
}

/// The rest of an incremental run's touched people, after `sessions` and `activity_daily` are
/// re-aggregated: the people of the events received since the watermark (their day rows carry
/// the person id), the people of the recomputed sessions, both sides of every identity change,
/// and the people whose first session received an event (their first touch can change).
const TOUCHED_SOURCE: &str = "
INSERT INTO {db}.touched_people (run_id, project_id, person_id, static_inputs)
SELECT DISTINCT {run:UInt64}, project_id, person_id, false FROM {db}.activity_daily
WHERE has({days:Array(Date)}, day) AND (project_id, anonymous_id, user_id) IN (
    SELECT project_id, anonymous_id, user_id FROM {db}.events
    WHERE received_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC'))
UNION ALL
SELECT DISTINCT {run:UInt64}, project_id, person_id, false FROM {db}.sessions WHERE version = {run:UInt64}
UNION ALL
SELECT {run:UInt64}, project_id, person_id, true FROM {db}.profiles_static
WHERE first_session_id IN (
    SELECT session_id FROM {db}.events
    WHERE received_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC') AND session_id != '')
UNION ALL
SELECT {run:UInt64}, project_id, new_user_id, true FROM {db}.identity_changes WHERE run_id = {run:UInt64}
UNION ALL
SELECT {run:UInt64}, project_id, old_user_id, true FROM {db}.identity_changes
WHERE run_id = {run:UInt64} AND old_user_id != ''";

/// Which touched people's static profile can have changed, beyond [`TOUCHED_SOURCE`]'s: those
/// without a profile yet; with an identify or member event on a re-aggregated day, an event
/// there older than their first-seen time or from an anonymous id their profile does not list;
/// or with a recomputed session that starts no later than their first session. (The day rows
/// hold old events of those days too, so this is a superset.) Everyone else keeps their static
/// profile: most of a run's people are returning visitors.
const STATIC_INPUTS: &str = "
INSERT INTO {db}.touched_people (run_id, project_id, person_id, static_inputs)
SELECT {run:UInt64}, t.project_id, t.person_id, true
FROM (SELECT DISTINCT project_id, person_id FROM {db}.touched_people WHERE run_id = {run:UInt64}) AS t
LEFT JOIN (
    SELECT project_id, person_id, min(first_at) AS first_at,
           max(identifies > 0 OR arrayExists(k -> k IN {member_events}, mapKeys(event_counts))) AS member_input,
           groupUniqArrayIf(anonymous_id, anonymous_id != '') AS anons
    FROM {db}.activity_daily
    WHERE has({days:Array(Date)}, day) AND {touched}
    GROUP BY project_id, person_id
) AS f ON f.project_id = t.project_id AND f.person_id = t.person_id
LEFT JOIN (
    SELECT project_id, person_id, min(started_at) AS first_start
    FROM {db}.sessions WHERE version = {run:UInt64}
    GROUP BY project_id, person_id
) AS r ON r.project_id = t.project_id AND r.person_id = t.person_id
LEFT JOIN (
    SELECT project_id, person_id, first_seen_at, anonymous_ids, first_session_id, first_session_at
    FROM {db}.profiles_static WHERE {touched}
) AS o ON o.project_id = t.project_id AND o.person_id = t.person_id
WHERE o.person_id = ''
   OR f.member_input
   OR (f.person_id != '' AND (f.first_at < o.first_seen_at OR NOT hasAll(o.anonymous_ids, f.anons)))
   OR (r.person_id != '' AND (o.first_session_id = '' OR r.first_start <= o.first_session_at))";

/// Adds the rest of an incremental run's touched people ([`TOUCHED_SOURCE`]), then marks those
/// whose static profile can have changed ([`STATIC_INPUTS`]).
pub(crate) async fn record_touched(db: &Db, ctx: &RunCtx) -> Result<(), Error> {
    if ctx.is_full() {
        return Ok(());
    }
    let sql = db.sql(TOUCHED_SOURCE, &[]);
    db.execute("touched people", ctx.bind(db.query(&sql)))
        .await?;
    let touched = db.sql(&touched_filter(), &[]);
    let sql = db.sql(
        STATIC_INPUTS,
        &[("touched", &touched), ("member_events", MEMBER_EVENTS)],
    );
    db.execute("touched people: static inputs", ctx.bind(db.query(&sql)))
        .await
}

const MEMBER_EVENTS: &str =
    "('member_signup', 'member_signin', 'points_earned', 'points_redeemed', 'level_changed')";

/// `mem` and `tr` read `events` without FINAL: their aggregates (min, max, argMin, argMax,
/// `countIf(…) > 0`) give the same answer whether or not a retried copy of an event is still
/// there (copies share event_id and content; only their times can differ by the retry's clock
/// skew correction, milliseconds), and FINAL would merge the whole table's keys.
const STATIC: &str = "
INSERT INTO {db}.profiles_static (project_id, person_id, user_id, is_identified, anonymous_ids,
    first_seen_at, first_session_id, first_session_at, first_path, first_referrer, first_referrer_domain, first_referrer_class,
    first_utm_source, first_utm_medium, first_utm_campaign, first_device_class, first_browser,
    first_os, signup_at, member_id, level, traits, version)
WITH
act AS (
    SELECT person_key, any(project_id) AS project_id, any(person_id) AS person_id, min(first_at) AS first_seen,
           arraySlice(arraySort(groupUniqArrayIf(anonymous_id, anonymous_id != '')), 1, 100) AS anon_ids
    FROM {db}.activity_daily
    WHERE {persons}
    GROUP BY person_key
),
ses AS (
    SELECT person_key,
           splitByString('\\x1F', argMin(concat(entry_path, '\\x1F', referrer, '\\x1F', referrer_domain, '\\x1F',
                   referrer_class, '\\x1F', utm_source, '\\x1F', utm_medium, '\\x1F', utm_campaign, '\\x1F',
                   device_class, '\\x1F', browser, '\\x1F', os),
               toUnixTimestamp64Milli(started_at) * 1024 + cityHash64(session_id) % 1024)) AS f,
           argMin(session_id, toUnixTimestamp64Milli(started_at) * 1024 + cityHash64(session_id) % 1024) AS f_id,
           min(started_at) AS f_at
    FROM {db}.sessions
    WHERE {persons}
    GROUP BY person_key
),
mem AS (
    SELECT project_id, user_id AS person_id,
           minIfOrNull(timestamp, name = 'member_signup') AS m_signup,
           argMinIf(JSONExtractString(properties, 'member_id'), timestamp, name = 'member_signup') AS m_signup_member_id,
           countIf(name IN {member_events}) > 0
               OR countIf(type = 'identify' AND (JSONHas(traits, 'level') OR JSONHas(traits, 'member_id'))) > 0 AS m_is_member,
           argMaxIf(JSONExtractString(traits, 'member_id'), timestamp, type = 'identify' AND JSONHas(traits, 'member_id')) AS m_trait_member_id,
           if(maxIf(timestamp, name = 'level_changed') >= maxIf(timestamp, type = 'identify' AND JSONHas(traits, 'level')),
              argMaxIf(JSONExtractString(properties, 'level'), timestamp, name = 'level_changed'),
              argMaxIf(JSONExtractString(traits, 'level'), timestamp, type = 'identify' AND JSONHas(traits, 'level'))) AS m_level
    FROM {db}.events
    WHERE user_id != '' AND NOT is_bot
      AND (type = 'identify' OR (type = 'track' AND name IN {member_events}))
      AND {users}
    GROUP BY project_id, user_id
),
tr AS (
    SELECT project_id, person_id,
           concat('{', arrayStringConcat(arrayMap(kv -> concat(toJSONString(kv.1), ':', kv.2), arraySort(groupArray((k, v)))), ','), '}') AS t_traits
    FROM (
        SELECT project_id, user_id AS person_id, kv.1 AS k, argMax(kv.2, (timestamp, event_id)) AS v
        FROM {db}.events
        ARRAY JOIN JSONExtractKeysAndValuesRaw(traits) AS kv
        WHERE type = 'identify' AND user_id != '' AND NOT is_bot AND {users}
        GROUP BY project_id, person_id, k
    )
    GROUP BY project_id, person_id
)
SELECT act.project_id, act.person_id,
       if(startsWith(act.person_id, 'anon:'), '', act.person_id),
       NOT startsWith(act.person_id, 'anon:'),
       act.anon_ids, act.first_seen, ses.f_id, ses.f_at,
       ses.f[1], ses.f[2], ses.f[3], ses.f[4], ses.f[5], ses.f[6], ses.f[7], ses.f[8], ses.f[9], ses.f[10],
       mem.m_signup,
       multiIf(mem.m_signup_member_id != '', mem.m_signup_member_id,
               mem.m_trait_member_id != '', mem.m_trait_member_id,
               mem.m_is_member, act.person_id, ''),
       mem.m_level,
       if(tr.t_traits = '', '{}', tr.t_traits),
       {run:UInt64}
FROM act
LEFT JOIN ses ON ses.person_key = act.person_key
LEFT JOIN mem ON mem.project_id = act.project_id AND mem.person_id = act.person_id
LEFT JOIN tr ON tr.project_id = act.project_id AND tr.person_id = act.person_id";

/// The days whose reports change because a touched person's first-seen time moved (a late event
/// or an identity merge): that person counts as new on a different day, week or month. Returns
/// the person's active days in the week and month of the old and of the new first-seen day (the
/// daily reports and the daily "new in this week / month" states of those days change). Read
/// after `activity_daily` is re-aggregated and before `profiles_static` is rewritten.
pub(crate) async fn first_seen_days(db: &Db, ctx: &RunCtx) -> Result<Vec<String>, Error> {
    let sql = db.sql(
        "SELECT DISTINCT toString(a.day) FROM {db}.activity_daily AS a
         INNER JOIN (
             SELECT n.project_id AS project_id, n.person_id AS person_id,
                    toDate(n.fs) AS new_day, toDate(o.first_seen_at) AS old_day
             FROM (
                 SELECT project_id, person_id, min(first_at) AS fs FROM {db}.activity_daily
                 WHERE {touched_filter}
                 GROUP BY project_id, person_id
             ) AS n
             LEFT JOIN (
                 SELECT project_id, person_id, first_seen_at FROM {db}.profiles_static FINAL
                 WHERE {touched_filter}
             ) AS o ON o.project_id = n.project_id AND o.person_id = n.person_id
             WHERE toDate(n.fs) != toDate(o.first_seen_at)
         ) AS m ON m.project_id = a.project_id AND m.person_id = a.person_id
         WHERE toMonday(a.day) IN (toMonday(m.new_day), toMonday(m.old_day))
            OR toStartOfMonth(a.day) IN (toStartOfMonth(m.new_day), toStartOfMonth(m.old_day))
         UNION DISTINCT
         SELECT DISTINCT toString(toDate(first_seen_at)) FROM {db}.profiles_static FINAL
         WHERE {touched_filter}
           AND (project_id, person_id, toDate(first_seen_at)) NOT IN (
               SELECT project_id, person_id, toDate(min(first_at)) FROM {db}.activity_daily
               WHERE {touched_filter}
               GROUP BY project_id, person_id)",
        &[("touched_filter", &db.sql(&static_filter(), &[]))],
    );
    ctx.bind(db.query(&sql))
        .fetch_all()
        .await
        .map_err(|e| Error::query("profiles_static: first-seen days", e))
}

pub(crate) async fn rebuild_static(db: &Db, ctx: &RunCtx) -> Result<(), Error> {
    let (persons, users) = if ctx.is_full() {
        db.execute(
            "profiles_static: truncate",
            db.query(&db.truncate(&PROFILES_STATIC)),
        )
        .await?;
        ("1".to_owned(), "1".to_owned())
    } else {
        let touched = db.sql(&static_filter(), &[]);
        // The touched people's rows are replaced; anonymous profiles whose history has just
        // joined a user's profile go.
        let old = db.delete_where(
            &PROFILES_STATIC,
            &db.sql(
                "({touched})
                 OR (project_id, person_id) IN (SELECT project_id, concat('anon:', anonymous_id)
                    FROM {db}.identity_changes WHERE run_id = {run:UInt64})",
                &[("touched", &touched)],
            ),
        );
        db.execute("profiles_static: old rows", ctx.bind(db.query(&old)))
            .await?;
        (
            db.sql(&static_filter(), &[]),
            db.sql(static_users_filter(), &[]),
        )
    };
    let sql = db.sql(
        STATIC,
        &[
            ("persons", &persons),
            ("users", &users),
            ("member_events", MEMBER_EVENTS),
        ],
    );
    db.execute("profiles_static", ctx.bind(db.query(&sql)))
        .await
}

/// Grouped and joined by `person_key` (one `UInt128`), not by the (project, person) strings:
/// everyone's profiles 3.3–4.0 s → 1.7–2.0 s to compute on the benchmark, same rows.
const DYNAMIC: &str = "
INSERT INTO {db}.{table} (project_id, person_id, as_of, is_identified, first_seen_at,
    last_seen_at, days_since_last_seen, active_days_7d, active_days_30d, sessions_7d, sessions_30d,
    sessions_total, page_views_total, page_views_30d, avg_session_seconds, avg_engaged_seconds,
    top_searches, top_pages, top_sections, orders_total, revenue_total, last_order_at,
    rfm_recency, rfm_frequency, rfm_monetary, engagement_score, lifecycle_stage, version)
WITH
    fromUnixTimestamp64Milli({as_of:Int64}, 'UTC') AS as_of_time,
    toDate(as_of_time) AS today,
a AS (
    SELECT person_key, any(project_id) AS project_id, any(person_id) AS person_id,
           min(first_at) AS first_seen,
           max(last_at) AS last_seen,
           uniqExactIf(day, day > today - 7) AS ad7,
           uniqExactIf(day, day > today - 30) AS ad30,
           sum(page_views) AS pvt,
           sumIf(page_views, day > today - 30) AS pv30,
           sum(orders) AS ot,
           sum(revenue) AS rt,
           max(last_order_at) AS lo,
           groupArrayArrayIf(search_terms, day > today - 30) AS q30,
           groupArrayArrayIf(paths, day > today - 30) AS p30,
           arrayReverseSort(groupUniqArray(day)) AS days
    FROM {db}.activity_daily
    WHERE day <= today AND {scope}
    GROUP BY person_key
),
s AS (
    SELECT person_key,
           countIf(day > today - 7) AS s7,
           countIf(day > today - 30) AS s30,
           count() AS st,
           avg(duration_ms) / 1000 AS avg_s,
           avg(engaged_ms) / 1000 AS avg_e
    FROM {db}.sessions
    WHERE day <= today AND {scope}
    GROUP BY person_key
),
joined AS (
    SELECT a.project_id AS project_id, a.person_id AS person_id,
           NOT startsWith(a.person_id, 'anon:') AS identified,
           a.first_seen, a.last_seen,
           toUInt32(greatest(dateDiff('day', toDate(a.last_seen), today), 0)) AS since_last,
           toUInt32(greatest(dateDiff('day', toDate(a.first_seen), today), 0)) AS since_first,
           if(length(a.days) >= 2, toUInt32(dateDiff('day', a.days[2], a.days[1])), 0) AS gap,
           a.ad7, a.ad30, s.s7, s.s30, s.st, a.pvt, a.pv30,
           if(s.st = 0, 0, s.avg_s) AS avg_s, if(s.st = 0, 0, s.avg_e) AS avg_e,
           arraySlice(arrayMap(x -> x.1, arraySort(x -> (-x.2, x.1),
               arrayMap(k -> (k, countEqual(a.q30, k)), arrayDistinct(a.q30)))), 1, 5) AS ts,
           arraySlice(arrayMap(x -> x.1, arraySort(x -> (-x.2, x.1),
               arrayMap(k -> (k, countEqual(a.p30, k)), arrayDistinct(a.p30)))), 1, 5) AS tp,
           arrayMap(p -> concat('/', splitByChar('/', p)[2]), a.p30) AS sections,
           arraySlice(arrayMap(x -> x.1, arraySort(x -> (-x.2, x.1),
               arrayMap(k -> (k, countEqual(sections, k)), arrayDistinct(sections)))), 1, 3) AS tsec,
           a.ot, a.rt, a.lo
    FROM a LEFT JOIN s ON s.person_key = a.person_key
)
SELECT project_id, person_id, as_of_time, identified, first_seen, last_seen, since_last,
       ad7, ad30, s7, s30, st, pvt, pv30, avg_s, avg_e, ts, tp, tsec, ot, rt, lo,
       {rfm},
       toUInt8(round(100 * (0.4 * least(ad30 / 10, 1) + 0.2 * least(s30 / 10, 1)
                          + 0.2 * least(pv30 / 50, 1) + 0.2 * least(avg_e / 300, 1)))),
       multiIf(since_last >= {churned_after_days:UInt32}, 'churned',
               since_last >= {at_risk_after_days:UInt32}, 'at_risk',
               since_first < {new_within_days:UInt32}, 'new',
               gap >= {returning_gap_days:UInt32}, 'returning',
               ad30 >= {loyal_min_active_days:UInt32} OR ot >= {loyal_min_orders:UInt32}, 'loyal',
               'active'),
       {version:UInt64}
FROM joined";

/// RFM scores among a project's buyers: `⌈5 × (buyers with a value ≤ theirs) / buyers⌉`, so
/// ties share a score and the best buyer always has 5.
const RFM: &str = "
       if(ot = 0, 0, toUInt8(ceil(5 * count() OVER (PARTITION BY project_id, ot > 0 ORDER BY lo ASC)
                                 / count() OVER (PARTITION BY project_id, ot > 0)))),
       if(ot = 0, 0, toUInt8(ceil(5 * count() OVER (PARTITION BY project_id, ot > 0 ORDER BY ot ASC)
                                 / count() OVER (PARTITION BY project_id, ot > 0)))),
       if(ot = 0, 0, toUInt8(ceil(5 * count() OVER (PARTITION BY project_id, ot > 0 ORDER BY rt ASC)
                                 / count() OVER (PARTITION BY project_id, ot > 0))))";

/// The patch run's RFM pass: recompute every buyer's scores from the current rows and rewrite
/// the rows whose scores changed (or that this run wrote with placeholder scores). The scores
/// are ranked on the few columns they need; whole rows are read only for the people whose
/// scores change (benchmark: ~10 k of ~100 k buyers; the statement's read 0.32–0.42 s →
/// 0.18–0.20 s, same rows). Read without FINAL: the rows this run superseded are already
/// deleted (synchronously), so each person has one row, and FINAL cost a merge of the whole
/// table on read (benchmark: 0.6 s → 0.35 s).
const RFM_PASS: &str = "
INSERT INTO {db}.profiles_dynamic (project_id, person_id, as_of, is_identified, first_seen_at,
    last_seen_at, days_since_last_seen, active_days_7d, active_days_30d, sessions_7d, sessions_30d,
    sessions_total, page_views_total, page_views_30d, avg_session_seconds, avg_engaged_seconds,
    top_searches, top_pages, top_sections, orders_total, revenue_total, last_order_at,
    rfm_recency, rfm_frequency, rfm_monetary, engagement_score, lifecycle_stage, version)
SELECT p.project_id, p.person_id, p.as_of, p.is_identified, p.first_seen_at, p.last_seen_at,
       p.days_since_last_seen, p.active_days_7d, p.active_days_30d, p.sessions_7d, p.sessions_30d,
       p.sessions_total, p.page_views_total, p.page_views_30d, p.avg_session_seconds,
       p.avg_engaged_seconds, p.top_searches, p.top_pages, p.top_sections, p.orders_total,
       p.revenue_total, p.last_order_at, c.r, c.f, c.m, p.engagement_score, p.lifecycle_stage,
       {version:UInt64} + 1
FROM {db}.profiles_dynamic AS p
INNER JOIN (
    SELECT person_key, r, f, m
    FROM (
        SELECT person_key, version, rfm_recency, rfm_frequency, rfm_monetary,
            toUInt8(ceil(5 * count() OVER (PARTITION BY project_id ORDER BY last_order_at ASC) / count() OVER (PARTITION BY project_id))) AS r,
            toUInt8(ceil(5 * count() OVER (PARTITION BY project_id ORDER BY orders_total ASC) / count() OVER (PARTITION BY project_id))) AS f,
            toUInt8(ceil(5 * count() OVER (PARTITION BY project_id ORDER BY revenue_total ASC) / count() OVER (PARTITION BY project_id))) AS m
        FROM {db}.profiles_dynamic
        WHERE orders_total > 0
    )
    WHERE version = {version:UInt64} OR r != rfm_recency OR f != rfm_frequency OR m != rfm_monetary
) AS c ON c.person_key = p.person_key
WHERE p.orders_total > 0";

/// How much of `profiles_dynamic` a run recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DynamicScope {
    /// Everyone: a full run, a new as-of day, or changed thresholds.
    All,
    /// Within the as-of day of the previous run: only the people this run touched, then the
    /// RFM scores of every buyer. Every window is whole UTC days, so nobody else changed.
    Touched,
}

/// The `version` of the rows a run writes (its RFM pass writes `version + 1`).
pub(crate) fn dynamic_version(run_id: u64) -> u64 {
    run_id.saturating_mul(2)
}

pub(crate) async fn rebuild_dynamic(
    db: &Db,
    ctx: &RunCtx,
    lifecycle: &Lifecycle,
    scope: DynamicScope,
) -> Result<(), Error> {
    let version = dynamic_version(ctx.run_id);
    let (scope_sql, rfm) = match scope {
        DynamicScope::All => ("1".to_owned(), RFM.to_owned()),
        DynamicScope::Touched => (db.sql(&touched_filter(), &[]), "0, 0, 0".to_owned()),
    };
    let target = match scope {
        DynamicScope::All => {
            db.execute(
                "profiles_dynamic: empty staging",
                db.query(&db.truncate(&PROFILES_DYNAMIC_NEXT)),
            )
            .await?;
            &PROFILES_DYNAMIC_NEXT
        }
        DynamicScope::Touched => &PROFILES_DYNAMIC,
    };
    let sql = db.sql(
        DYNAMIC,
        &[("scope", &scope_sql), ("rfm", &rfm), ("table", target.name)],
    );
    let bind = |q: clickhouse::query::Query| ctx.bind(q).param("version", version);
    let query = bind(db.query(&sql))
        .param("churned_after_days", lifecycle.churned_after_days)
        .param("at_risk_after_days", lifecycle.at_risk_after_days)
        .param("new_within_days", lifecycle.new_within_days)
        .param("returning_gap_days", lifecycle.returning_gap_days)
        .param("loyal_min_active_days", lifecycle.loyal_min_active_days)
        .param("loyal_min_orders", lifecycle.loyal_min_orders);
    db.execute("profiles_dynamic", query).await?;
    match scope {
        DynamicScope::All => {
            // Everyone was rewritten: the new rows replace every old one (people who no longer
            // exist, such as anonymous profiles merged into a user, go with them).
            let replace = db
                .replacing(&db.replace_all(&PROFILES_DYNAMIC, &PROFILES_DYNAMIC_NEXT))
                .await?;
            db.execute("profiles_dynamic: replace", replace).await?;
            db.execute(
                "profiles_dynamic: empty staging",
                db.query(&db.truncate(&PROFILES_DYNAMIC_NEXT)),
            )
            .await?;
        }
        DynamicScope::Touched => {
            // Rows this run rewrote supersede the older rows of the same people.
            let superseded = |v: &str| {
                db.sql(
                    &db.delete_where(
                        &PROFILES_DYNAMIC,
                        &format!(
                            "version < {v} AND person_key IN (
                                SELECT person_key FROM {{db}}.profiles_dynamic WHERE version = {v})"
                        ),
                    ),
                    &[],
                )
            };
            let old = superseded("{version:UInt64}");
            db.execute("profiles_dynamic: superseded", bind(db.query(&old)))
                .await?;
            let sql = db.sql(RFM_PASS, &[]);
            db.execute("profiles_dynamic: rfm", bind(db.query(&sql)))
                .await?;
            let old = superseded("({version:UInt64} + 1)");
            db.execute("profiles_dynamic: superseded", bind(db.query(&old)))
                .await?;
            let merged = db.delete_where(
                &PROFILES_DYNAMIC,
                &db.sql(
                    "(project_id, person_id) IN (SELECT project_id, concat('anon:', anonymous_id)
                        FROM {db}.identity_changes WHERE run_id = {run:UInt64})",
                    &[],
                ),
            );
            db.execute("profiles_dynamic: merged", bind(db.query(&merged)))
                .await?;
        }
    }
    Ok(())
}
