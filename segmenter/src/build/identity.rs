//! Identity: which user each anonymous id belongs to.
//!
//! Rule: an anonymous id resolves to the user id it was first seen with (the earliest event
//! carrying both, ties broken by the smaller user id). Every event of that anonymous id without
//! a user id, before or after, then counts for that user; events that carry a user id count for
//! it. The mapping is kept in `identity_map`, so an anonymous history stays joined on later runs;
//! only an identify with an even earlier timestamp (a late event) can move it, and such moves
//! are recorded in `identity_changes`. The resolved mapping is kept in the `identities` table:
//! each run re-resolves the anonymous ids of its new pairs.

use spoor_schema::segmenter::{IDENTITIES, IDENTITY_MAP, resolve_identities};

use super::RunCtx;
use crate::{Db, Error};

/// The pairs of the events since the watermark (all events in a full run), with the first
/// time each was seen, that are new or seen earlier than `identity_map` knows: only those are
/// written, so the row a merge of `identity_map` keeps (the last written) is the earliest.
/// What `identity_map` knows is read for those events' anonymous ids only (`{known}`; a full
/// run starts from an empty map): grouping the whole map cost twice as much (benchmark
/// incremental run: 0.20 → 0.11 s).
const PAIRS: &str = "
INSERT INTO {db}.identity_map (project_id, anonymous_id, user_id, identified_at, run_id)
SELECT p.project_id, p.anonymous_id, p.user_id, p.identified_at, {run:UInt64}
FROM (
    SELECT project_id, anonymous_id, user_id, min(timestamp) AS identified_at
    FROM {db}.events
    WHERE user_id != '' AND anonymous_id != '' AND NOT is_bot AND {new}
    GROUP BY project_id, anonymous_id, user_id
) AS p
LEFT JOIN (
    SELECT project_id, anonymous_id, user_id, min(identified_at) AS known_at, 1 AS known
    FROM {db}.identity_map
    WHERE {known}
    GROUP BY project_id, anonymous_id, user_id
) AS k ON k.project_id = p.project_id AND k.anonymous_id = p.anonymous_id AND k.user_id = p.user_id
WHERE k.known = 0 OR p.identified_at < k.known_at";

/// The anonymous ids whose pairs this run wrote: the only ones whose resolution can change.
const WRITTEN: &str = "(project_id, anonymous_id) IN (
    SELECT project_id, anonymous_id FROM {db}.identity_map WHERE run_id = {run:UInt64})";

/// The resolution of the written anonymous ids, against the one `identities` still holds.
const CHANGES: &str = "
INSERT INTO {db}.identity_changes (run_id, project_id, anonymous_id, old_user_id, new_user_id, changed_at)
SELECT {run:UInt64}, n.project_id, n.anonymous_id, o.user_id, n.user_id, fromUnixTimestamp64Milli({now:Int64}, 'UTC')
FROM (
    SELECT project_id, anonymous_id, argMin(user_id, (identified_at, user_id)) AS user_id
    FROM {db}.identity_map
    WHERE {written}
    GROUP BY project_id, anonymous_id
) AS n
LEFT JOIN (
    SELECT project_id, anonymous_id, user_id FROM {db}.identities WHERE {written}
) AS o ON o.project_id = n.project_id AND o.anonymous_id = n.anonymous_id
WHERE o.user_id != n.user_id";

/// Adds the new pairs, records this run's identity changes (incremental runs), and
/// re-resolves the anonymous ids of the pairs written in `identities`.
pub(crate) async fn update(db: &Db, ctx: &RunCtx) -> Result<(), Error> {
    let new = if ctx.is_full() {
        for table in [&IDENTITY_MAP, &IDENTITIES] {
            db.execute("identity: truncate", db.query(&db.truncate(table)))
                .await?;
        }
        "1"
    } else {
        "received_at > fromUnixTimestamp64Milli({since:Int64}, 'UTC')"
    };
    let known = if ctx.is_full() {
        "1".to_owned()
    } else {
        db.sql(
            "anonymous_id IN (SELECT anonymous_id FROM {db}.events
             WHERE user_id != '' AND anonymous_id != '' AND {new})",
            &[("new", new)],
        )
    };
    let sql = db.sql(PAIRS, &[("new", new), ("known", &known)]);
    db.execute("identity: map", ctx.bind(db.query(&sql)))
        .await?;
    let written = db.sql(WRITTEN, &[]);
    let scope = if ctx.is_full() {
        "1".to_owned()
    } else {
        let sql = db.sql(CHANGES, &[("written", &written)]);
        db.execute("identity: changes", ctx.bind(db.query(&sql)))
            .await?;
        let old = db.delete_where(&IDENTITIES, &written);
        db.execute("identity: old resolutions", ctx.bind(db.query(&old)))
            .await?;
        written
    };
    let sql = resolve_identities(db.layout(), &scope);
    db.execute("identity: resolve", ctx.bind(db.query(&sql)))
        .await
}
