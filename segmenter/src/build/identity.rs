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

const PAIRS: &str = "
SELECT project_id, anonymous_id, user_id, min(timestamp) AS identified_at
FROM {db}.events
WHERE user_id != '' AND anonymous_id != '' AND NOT is_bot AND {new}
GROUP BY project_id, anonymous_id, user_id";

const CHANGES: &str = "
INSERT INTO {db}.identity_changes (run_id, project_id, anonymous_id, old_user_id, new_user_id, changed_at)
WITH fresh AS ({pairs})
SELECT {run:UInt64}, n.project_id, n.anonymous_id, o.user_id, n.user_id, fromUnixTimestamp64Milli({now:Int64}, 'UTC')
FROM (
    SELECT project_id, anonymous_id, argMin(user_id, (identified_at, user_id)) AS user_id
    FROM (
        SELECT project_id, anonymous_id, user_id, identified_at FROM fresh
        UNION ALL
        SELECT project_id, anonymous_id, user_id, identified_at FROM {db}.identity_map
        WHERE (project_id, anonymous_id) IN (SELECT project_id, anonymous_id FROM fresh)
    )
    GROUP BY project_id, anonymous_id
) AS n
LEFT JOIN (
    SELECT project_id, anonymous_id, user_id FROM {db}.identities
    WHERE (project_id, anonymous_id) IN (SELECT project_id, anonymous_id FROM fresh)
) AS o ON o.project_id = n.project_id AND o.anonymous_id = n.anonymous_id
WHERE o.user_id != n.user_id";

/// Records this run's identity changes (incremental runs), adds the new pairs, and re-resolves
/// their anonymous ids in `identities`.
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
    let pairs = db.sql(PAIRS, &[("new", new)]);
    if !ctx.is_full() {
        let sql = db.sql(CHANGES, &[("pairs", &pairs)]);
        db.execute("identity: changes", ctx.bind(db.query(&sql)))
            .await?;
    }
    let sql = format!(
        "INSERT INTO {}.{} (project_id, anonymous_id, user_id, identified_at) {pairs}",
        db.database(),
        IDENTITY_MAP.name
    );
    db.execute("identity: map", ctx.bind(db.query(&sql)))
        .await?;
    let scope = if ctx.is_full() {
        "1".to_owned()
    } else {
        let fresh = format!(
            "(project_id, anonymous_id) IN (SELECT project_id, anonymous_id FROM ({pairs}))"
        );
        let old = db.delete_where(&IDENTITIES, &fresh);
        db.execute("identity: old resolutions", ctx.bind(db.query(&old)))
            .await?;
        fresh
    };
    let sql = resolve_identities(db.layout(), &scope);
    db.execute("identity: resolve", ctx.bind(db.query(&sql)))
        .await
}
