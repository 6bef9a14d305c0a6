//! Erasure: every stored row about a person — their events and every per-person row derived
//! from them —, for a data subject's request to be forgotten (GDPR art. 17 and its likes).
//!
//! A person is named by user id (then every anonymous id whose events belong to them goes
//! too: the devices they were identified on) or by an anonymous id that was never identified.
//! An anonymous id that belongs to a user is refused with a sentence: forgetting it alone
//! would leave that user's profile built from its history.
//!
//! What stays: aggregates that name no one — the reports, and the per-day distinct-count
//! states behind the weekly and monthly ones, which hold 64-bit hashes of person ids — keep
//! counting the person until their days are re-aggregated (`run --full` does). Deleted rows
//! are masked at once and physically removed when ClickHouse next merges their parts.

use spoor_schema::Table;
use spoor_schema::events::{EVENTS, EVENTS_REJECTED};
use spoor_schema::segmenter::{
    ACTIVITY_DAILY, IDENTITIES, IDENTITY_CHANGES, IDENTITY_MAP, PROFILES_DYNAMIC, PROFILES_STATIC,
    REPORT_PEOPLE, SEGMENT_CHANGES, SEGMENT_MEMBERS, SEGMENT_SCRATCH, SESSIONS, TOUCHED_PEOPLE,
};

use crate::{Db, Error};

/// Whom to forget, in one project.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub project: String,
    pub users: Vec<String>,
    pub anonymous_ids: Vec<String>,
}

/// What was deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// The anonymous ids whose anonymous events were deleted (given, or belonging to a user).
    pub anonymous_ids: Vec<String>,
    /// Rows deleted per table, in the order they were deleted (tables without any left out).
    pub rows: Vec<(&'static str, u64)>,
}

/// The person tables: rows keyed by the resolved person id (`user id` or `anon:<id>`).
const PERSON_TABLES: [Table; 9] = [
    SESSIONS,
    ACTIVITY_DAILY,
    PROFILES_STATIC,
    PROFILES_DYNAMIC,
    SEGMENT_MEMBERS,
    SEGMENT_CHANGES,
    REPORT_PEOPLE,
    TOUCHED_PEOPLE,
    SEGMENT_SCRATCH,
];

/// Deletes everything stored about the people of `request`; see the module documentation.
pub async fn forget(db: &Db, request: &Request) -> Result<Forgotten, Error> {
    let Request {
        project,
        users,
        anonymous_ids,
    } = request;
    if users.is_empty() && anonymous_ids.is_empty() {
        return Err(Error::Config(
            "name someone to forget: --user ID or --anonymous-id ID".into(),
        ));
    }
    if users.iter().chain(anonymous_ids).any(|id| id.is_empty()) {
        return Err(Error::Config("an empty id names no one".into()));
    }
    let bind = |q: clickhouse::query::Query| {
        q.param("project", project.as_str())
            .param("users", users.as_slice())
            .param("anons", anonymous_ids.as_slice())
    };

    // An anonymous id given alone must not belong to someone else.
    let owners: Vec<(String, String)> = bind(db.query(&db.sql(
        "SELECT anonymous_id, user_id FROM {db}.identity_map
         WHERE project_id = {project:String} AND has({anons:Array(String)}, anonymous_id)
           AND NOT has({users:Array(String)}, user_id)
         UNION DISTINCT
         SELECT anonymous_id, user_id FROM {db}.events
         WHERE project_id = {project:String} AND has({anons:Array(String)}, anonymous_id)
           AND user_id != '' AND NOT has({users:Array(String)}, user_id)
         ORDER BY 1, 2 LIMIT 1",
        &[],
    )))
    .fetch_all()
    .await
    .map_err(|e| Error::query("forget: owners", e))?;
    if let Some((anon, user)) = owners.first() {
        return Err(Error::Config(format!(
            "anonymous id {anon:?} belongs to user {user:?}: forget the user (--user {user}), \
             which takes every anonymous id of theirs"
        )));
    }

    // The anonymous ids whose anonymous events are the forgotten users' (by the identity
    // rule: the user each resolves to), and the given ones.
    let mut anons: Vec<String> = bind(db.query(&db.sql(
        "SELECT DISTINCT anonymous_id FROM {db}.identities
         WHERE project_id = {project:String} AND has({users:Array(String)}, user_id)
         ORDER BY anonymous_id",
        &[],
    )))
    .fetch_all()
    .await
    .map_err(|e| Error::query("forget: anonymous ids", e))?;
    anons.extend(anonymous_ids.iter().cloned());
    anons.sort();
    anons.dedup();
    let persons: Vec<String> = users
        .iter()
        .cloned()
        .chain(anonymous_ids.iter().map(|a| format!("anon:{a}")))
        .collect();
    // Quoted, as they appear in a rejected event's JSON text.
    let quoted: Vec<String> = users
        .iter()
        .chain(&anons)
        .map(|id| serde_json::Value::from(id.as_str()).to_string())
        .collect();

    let steps: Vec<(&Table, &str)> = vec![
        (
            &EVENTS,
            "project_id = {project:String} AND (has({users:Array(String)}, user_id)
             OR (user_id = '' AND has({all_anons:Array(String)}, anonymous_id)))",
        ),
        (
            &EVENTS_REJECTED,
            "project_id = {project:String} AND multiSearchAny(raw, {quoted:Array(String)})",
        ),
        (
            &IDENTITY_MAP,
            "project_id = {project:String} AND (has({users:Array(String)}, user_id)
             OR has({anons:Array(String)}, anonymous_id))",
        ),
        (
            &IDENTITIES,
            "project_id = {project:String} AND (has({users:Array(String)}, user_id)
             OR has({anons:Array(String)}, anonymous_id))",
        ),
        (
            &IDENTITY_CHANGES,
            "project_id = {project:String} AND (has({users:Array(String)}, new_user_id)
             OR has({users:Array(String)}, old_user_id) OR has({anons:Array(String)}, anonymous_id))",
        ),
    ];
    let person_steps = PERSON_TABLES.iter().map(|t| {
        (
            t,
            "project_id = {project:String} AND has({persons:Array(String)}, person_id)",
        )
    });
    let mut forgotten = Forgotten {
        anonymous_ids: anons.clone(),
        rows: Vec::new(),
    };
    for (table, condition) in steps.into_iter().chain(person_steps) {
        let params = |q: clickhouse::query::Query| {
            bind(q)
                .param("all_anons", anons.as_slice())
                .param("persons", persons.as_slice())
                .param("quoted", quoted.as_slice())
        };
        let count: u64 = params(db.query(&db.sql(
            &format!(
                "SELECT count() FROM {{db}}.{} WHERE {condition}",
                table.name
            ),
            &[],
        )))
        .fetch_one()
        .await
        .map_err(|e| Error::query("forget: count", e))?;
        if count == 0 {
            continue;
        }
        let delete = db.delete_where(table, condition);
        db.execute("forget: delete", params(db.query(&delete)))
            .await?;
        forgotten.rows.push((table.name, count));
    }
    Ok(forgotten)
}
