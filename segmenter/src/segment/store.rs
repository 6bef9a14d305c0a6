//! The `segments` table, and evaluating a segment into `segment_members` and
//! `segment_changes`.
//!
//! Evaluation appends the new membership under the run's id, records who entered (in the new
//! set, not the old) and who exited (in the old set, not the new), then deletes the old rows.
//! A member who stays keeps the time they entered. An incremental run re-evaluates only its
//! candidates (the people it touched): it writes them to `segment_scratch` once, runs each
//! rule once over them into the same table, and derives the changes from those sets.

use serde::Deserialize;
use time::OffsetDateTime;

use super::{Definition, Format, Kind, RuleError, compile};
use crate::run::unix_ms;
use crate::{Db, Error};

/// A segment as listed.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
pub struct SegmentSummary {
    pub segment_id: String,
    pub name: String,
    pub description: String,
    pub kind: String,
    pub project_id: String,
    pub updated_ms: i64,
    pub members: u64,
}

const LIST: &str = "
SELECT s.segment_id AS segment_id, s.name AS name, s.description AS description, s.kind AS kind,
       s.project_id AS project_id, toUnixTimestamp64Milli(s.updated_at) AS updated_ms,
       m.n AS members
FROM (SELECT * FROM {db}.segments FINAL WHERE NOT deleted) AS s
LEFT JOIN (SELECT segment_id, uniqExact(project_id, person_id) AS n FROM {db}.segment_members GROUP BY segment_id) AS m
    ON m.segment_id = s.segment_id
WHERE {filter}
ORDER BY s.segment_id";

/// Every segment that is not deleted.
pub async fn list(db: &Db) -> Result<Vec<SegmentSummary>, Error> {
    db.query(&db.sql(LIST, &[("filter", "1")]))
        .fetch_all()
        .await
        .map_err(|e| Error::query("list segments", e))
}

/// One segment and its definition.
pub async fn get(db: &Db, id: &str) -> Result<(SegmentSummary, Definition), Error> {
    let summary: Option<SegmentSummary> = db
        .query(&db.sql(LIST, &[("filter", "s.segment_id = {id:String}")]))
        .param("id", id)
        .fetch_optional()
        .await
        .map_err(|e| Error::query("read segment", e))?;
    let summary = summary.ok_or_else(|| Error::UnknownSegment(id.to_owned()))?;
    let definition = stored_definition(db, id).await?;
    Ok((summary, definition))
}

async fn stored_definition(db: &Db, id: &str) -> Result<Definition, Error> {
    let json: String = db
        .query(&db.sql(
            "SELECT definition FROM {db}.segments FINAL WHERE segment_id = {id:String} AND NOT deleted",
            &[],
        ))
        .param("id", id)
        .fetch_optional()
        .await
        .map_err(|e| Error::query("read segment", e))?
        .ok_or_else(|| Error::UnknownSegment(id.to_owned()))?;
    Ok(Definition::parse(&json, Format::Json)?)
}

/// A segment's members for other tools, one row per member: who they are (person, user and
/// member ids) and how an ad platform's customer list or a mail tool can match them without
/// contact details — the hashed e-mail and phone of their traits (see the collector's
/// `contact_traits`) — and when they entered.
const EXPORT: &str = "
SELECT m.person_id AS person_id, m.project_id AS project_id, s.user_id AS user_id,
       s.member_id AS member_id,
       JSONExtractString(s.traits, 'email_sha256') AS email_sha256,
       JSONExtractString(s.traits, 'phone_sha256') AS phone_sha256,
       m.entered_at AS entered_at
FROM {db}.segment_members AS m
LEFT JOIN (
    SELECT person_key, user_id, member_id, traits FROM {db}.profiles_static FINAL
    WHERE person_key IN (SELECT person_key FROM {db}.segment_members WHERE segment_id = {id:String})
) AS s ON s.person_key = m.person_key
WHERE m.segment_id = {id:String}
ORDER BY m.project_id, m.person_id";

/// A segment's members as CSV with a header row ([`EXPORT`]'s columns), streamed from
/// ClickHouse as it writes them (a segment can have millions of members).
pub async fn export(db: &Db, id: &str) -> Result<clickhouse::query::BytesCursor, Error> {
    get(db, id).await?;
    db.query(&db.sql(EXPORT, &[]))
        .param("id", id)
        .fetch_bytes("CSVWithNames")
        .map_err(|e| Error::query("export segment", e))
}

/// A segment's definition, compiled SQL and member count, for people.
pub async fn show(db: &Db, id: &str) -> Result<String, Error> {
    let (summary, definition) = get(db, id).await?;
    let mut out = format!(
        "{} — {}\nkind: {}\nproject: {}\nmembers: {}\n",
        summary.segment_id,
        summary.name,
        summary.kind,
        if summary.project_id.is_empty() {
            "(all)"
        } else {
            &summary.project_id
        },
        summary.members
    );
    if !summary.description.is_empty() {
        out += &format!("description: {}\n", summary.description);
    }
    out += "\ndefinition (JSON):\n";
    out += &serde_json::to_string_pretty(&definition).unwrap_or_default();
    if let Some(rule) = &definition.rule {
        let compiled = compile(&rule.validate()?, &definition.project);
        out += "\n\ncompiled SQL:\n";
        out += &db.sql(&compiled.scoped(None), &[]);
        out += "\n\nparameters:\n";
        for (name, value) in &compiled.params {
            out += &format!(
                "  {name} = {}\n",
                serde_json::to_string(value).unwrap_or_default()
            );
        }
    }
    Ok(out)
}

/// Saves a definition (replacing one with the same id) and evaluates it; returns its member
/// count. A static segment is evaluated as of now, from its rule, its `members` or `ids`. A
/// dynamic segment is evaluated over the dynamic profiles as the latest run left them, as of
/// that run's as-of time — the membership that run would have given it — so it has its members
/// at once, and the runs after it keep them current (a run that recomputes only the people it
/// touched would otherwise leave a segment saved since the previous run without the others
/// until the next day's first run).
pub async fn add(db: &Db, definition: &Definition, ids: Option<&[String]>) -> Result<u64, Error> {
    definition.validate()?;
    let mut definition = definition.clone();
    if let Some(ids) = ids {
        if definition.kind != Kind::Static || definition.rule.is_some() {
            return Err(RuleError::Invalid(
                "--ids gives the members of a static segment without a rule".into(),
            )
            .into());
        }
        definition.members = ids.to_vec();
        definition.validate()?;
    }
    let compiled = match &definition.rule {
        Some(rule) => Some(compile(&rule.validate()?, &definition.project)),
        None => None,
    };
    let now = unix_ms(OffsetDateTime::now_utc());
    let json = serde_json::to_string(&definition)
        .map_err(|e| Error::Config(format!("cannot serialise the definition: {e}")))?;
    let version = next_version(db, "SELECT max(version) FROM {db}.segments", now).await?;
    let sql = db.sql(
        "INSERT INTO {db}.segments (segment_id, name, description, kind, project_id, definition, created_at, updated_at, deleted, version)
         SELECT {id:String}, {name:String}, {description:String}, {kind:String}, {project:String}, {definition:String},
                ifNull((SELECT min(created_at) FROM {db}.segments WHERE segment_id = {id:String} AND NOT deleted), fromUnixTimestamp64Milli({now:Int64}, 'UTC')),
                fromUnixTimestamp64Milli({now:Int64}, 'UTC'), false, {version:UInt64}",
        &[],
    );
    db.execute(
        "save segment",
        db.query(&sql)
            .param("id", &definition.id)
            .param("name", &definition.name)
            .param("description", &definition.description)
            .param("kind", definition.kind.as_str())
            .param("project", &definition.project)
            .param("definition", &json)
            .param("now", now)
            .param("version", version),
    )
    .await?;
    let as_of = match definition.kind {
        Kind::Dynamic => latest_as_of(db).await?,
        Kind::Static => now,
    };
    let run_id = next_version(
        db,
        "SELECT max(run_id) FROM {db}.segment_members",
        u64::try_from(now).unwrap_or(0) as i64,
    )
    .await?;
    let count = match compiled {
        Some(compiled) => {
            evaluate(
                db,
                &definition.id,
                Source::Rule(&compiled),
                run_id,
                as_of,
                now,
            )
            .await?
        }
        None => {
            let source = Source::Ids {
                project: &definition.project,
                ids: &definition.members,
            };
            evaluate(db, &definition.id, source, run_id, now, now).await?
        }
    };
    Ok(count)
}

/// The as-of time (ms) of the latest run, or now before any run.
async fn latest_as_of(db: &Db) -> Result<i64, Error> {
    db.query(&db.sql(
        "SELECT if(count() = 0, toUnixTimestamp64Milli(now64(3)), toUnixTimestamp64Milli(argMax(as_of, run_id)))
         FROM {db}.segmenter_runs WHERE mode IN ('full', 'incremental')",
        &[],
    ))
    .fetch_one()
    .await
    .map_err(|e| Error::query("read the latest run", e))
}

/// Who a definition would select now, without saving it ([`preview`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// How many people match (for a list of ids: how many distinct ids it has).
    pub people: u64,
    /// Up to [`PREVIEW_SAMPLE`] of them, `(project, person)`, ordered by person id.
    pub sample: Vec<(String, String)>,
    /// The time the rule was evaluated as of (ms): the latest run's as-of time, or now before
    /// any run. `None` for a list of ids.
    pub as_of_ms: Option<i64>,
}

pub const PREVIEW_SAMPLE: usize = 10;

#[derive(Debug, Deserialize, clickhouse::Row)]
struct Person {
    project_id: String,
    person_id: String,
}

/// Evaluates a definition's rule over the dynamic profiles as the latest run left them, as of
/// that run's as-of time — what a dynamic segment's members would be had it been saved before
/// that run — without writing anything.
pub async fn preview(db: &Db, definition: &Definition) -> Result<Preview, Error> {
    definition.validate()?;
    let Some(rule) = &definition.rule else {
        let mut ids = definition.members.clone();
        ids.sort();
        ids.dedup();
        return Ok(Preview {
            people: ids.len() as u64,
            sample: ids
                .into_iter()
                .take(PREVIEW_SAMPLE)
                .map(|id| (definition.project.clone(), id))
                .collect(),
            as_of_ms: None,
        });
    };
    let compiled = compile(&rule.validate()?, &definition.project);
    let as_of_ms = latest_as_of(db).await?;
    let source = db.sql(&compiled.scoped(None), &[]);
    let people: u64 = compiled
        .bind(db.query(&format!("SELECT count() FROM ({source})")))
        .param("as_of", as_of_ms)
        .fetch_one()
        .await
        .map_err(|e| Error::query("preview segment", e))?;
    let sample: Vec<Person> = compiled
        .bind(db.query(&format!(
            "SELECT project_id, person_id FROM ({source}) ORDER BY person_id, project_id LIMIT {PREVIEW_SAMPLE}"
        )))
        .param("as_of", as_of_ms)
        .fetch_all()
        .await
        .map_err(|e| Error::query("preview segment", e))?;
    Ok(Preview {
        people,
        sample: sample
            .into_iter()
            .map(|p| (p.project_id, p.person_id))
            .collect(),
        as_of_ms: Some(as_of_ms),
    })
}

/// Marks a segment deleted and removes its current members; its history stays.
pub async fn delete(db: &Db, id: &str) -> Result<(), Error> {
    let (summary, _) = get(db, id).await?;
    let now = unix_ms(OffsetDateTime::now_utc());
    let version = next_version(db, "SELECT max(version) FROM {db}.segments", now).await?;
    let sql = db.sql(
        "INSERT INTO {db}.segments (segment_id, name, description, kind, project_id, definition, created_at, updated_at, deleted, version)
         SELECT segment_id, name, description, kind, project_id, definition, created_at,
                fromUnixTimestamp64Milli({now:Int64}, 'UTC'), true, {version:UInt64}
         FROM {db}.segments FINAL WHERE segment_id = {id:String}",
        &[],
    );
    db.execute(
        "delete segment",
        db.query(&sql)
            .param("id", &summary.segment_id)
            .param("now", now)
            .param("version", version),
    )
    .await?;
    let members = db.delete_where(
        &spoor_schema::segmenter::SEGMENT_MEMBERS,
        "segment_id = {id:String}",
    );
    db.execute("delete segment members", db.query(&members).param("id", id))
        .await
}

/// Re-evaluates every dynamic segment: for everyone, or — with `candidates`, a SQL query of
/// `(project_id, person_id)` — only for those people, the others keeping their membership.
/// A segment whose stored definition no longer validates is skipped with an error in the log.
/// Returns how many were evaluated.
pub async fn refresh_dynamic(
    db: &Db,
    run_id: u64,
    as_of_ms: i64,
    now_ms: i64,
    candidates: Option<&str>,
) -> Result<usize, Error> {
    #[derive(Deserialize, clickhouse::Row)]
    struct Stored {
        segment_id: String,
        definition: String,
    }
    let stored: Vec<Stored> = db
        .query(&db.sql(
            "SELECT segment_id, definition FROM {db}.segments FINAL WHERE NOT deleted AND kind = 'dynamic' ORDER BY segment_id",
            &[],
        ))
        .fetch_all()
        .await
        .map_err(|e| Error::query("read segments", e))?;
    db.execute(
        "segment scratch: truncate",
        db.query(&db.truncate(&spoor_schema::segmenter::SEGMENT_SCRATCH)),
    )
    .await?;
    if let Some(candidates) = candidates {
        let sql = db.sql(
            "INSERT INTO {db}.segment_scratch (run_id, kind, segment_id, project_id, person_id)
             SELECT {run:UInt64}, 'candidate', '', project_id, person_id FROM ({candidates})",
            &[("candidates", candidates)],
        );
        let query = db
            .query(&sql)
            .param("run", run_id)
            .param("version", crate::build::profiles::dynamic_version(run_id));
        db.execute("segment candidates", query).await?;
    }
    let mut done = 0;
    for segment in stored {
        let compiled = Definition::parse(&segment.definition, Format::Json).and_then(|d| {
            let rule = d
                .rule
                .as_ref()
                .ok_or_else(|| RuleError::Invalid("a dynamic segment needs a rule".into()))?
                .validate()?;
            Ok(compile(&rule, &d.project))
        });
        match compiled {
            Ok(compiled) => {
                let at = (run_id, as_of_ms, now_ms);
                evaluate_some(db, &segment.segment_id, &compiled, candidates.is_some(), at).await?;
                done += 1;
            }
            Err(error) => {
                tracing::error!(segment = %segment.segment_id, error = %error, "Skipping segment with an invalid definition");
            }
        }
    }
    Ok(done)
}

/// Where a segment's members come from.
enum Source<'a> {
    Rule(&'a super::Compiled),
    Ids { project: &'a str, ids: &'a [String] },
}

const MEMBERS: &str = "
INSERT INTO {db}.segment_members (segment_id, project_id, person_id, entered_at, run_id)
SELECT {seg:String}, n.project_id, n.person_id,
       if(o.person_id = '', fromUnixTimestamp64Milli({now:Int64}, 'UTC'), o.entered_at), {run:UInt64}
FROM ({source}) AS n
LEFT JOIN (
    SELECT project_id, person_id, min(entered_at) AS entered_at FROM {db}.segment_members
    WHERE segment_id = {seg:String} AND run_id != {run:UInt64}
    GROUP BY project_id, person_id
) AS o ON o.project_id = n.project_id AND o.person_id = n.person_id";

const CHANGES: &str = "
INSERT INTO {db}.segment_changes (segment_id, project_id, person_id, change, at, run_id)
SELECT DISTINCT segment_id, project_id, person_id, 'entered', fromUnixTimestamp64Milli({now:Int64}, 'UTC'), {run:UInt64}
FROM {db}.segment_members
WHERE segment_id = {seg:String} AND run_id = {run:UInt64}
  AND (project_id, person_id) NOT IN (
      SELECT project_id, person_id FROM {db}.segment_members WHERE segment_id = {seg:String} AND run_id != {run:UInt64})
UNION ALL
SELECT DISTINCT segment_id, project_id, person_id, 'exited', fromUnixTimestamp64Milli({now:Int64}, 'UTC'), {run:UInt64}
FROM {db}.segment_members
WHERE segment_id = {seg:String} AND run_id != {run:UInt64}
  AND (project_id, person_id) NOT IN (
      SELECT project_id, person_id FROM {db}.segment_members WHERE segment_id = {seg:String} AND run_id = {run:UInt64})";

async fn evaluate(
    db: &Db,
    segment_id: &str,
    source: Source<'_>,
    run_id: u64,
    as_of_ms: i64,
    now_ms: i64,
) -> Result<u64, Error> {
    let bind = |q: clickhouse::query::Query| {
        q.param("seg", segment_id)
            .param("run", run_id)
            .param("now", now_ms)
            .param("as_of", as_of_ms)
    };
    let (source_sql, params) = match &source {
        Source::Rule(compiled) => (compiled.scoped(None), Some(*compiled)),
        Source::Ids { .. } => (
            "SELECT DISTINCT {project:String} AS project_id, arrayJoin({ids:Array(String)}) AS person_id".to_owned(),
            None,
        ),
    };
    let sql = db.sql(MEMBERS, &[("source", &db.sql(&source_sql, &[]))]);
    let mut insert = bind(db.query(&sql));
    if let Some(compiled) = params {
        insert = compiled.bind(insert);
    }
    if let Source::Ids { project, ids } = &source {
        insert = insert.param("project", *project).param("ids", *ids);
    }
    db.execute("segment members", insert).await?;
    db.execute("segment changes", bind(db.query(&db.sql(CHANGES, &[]))))
        .await?;
    let old = db.delete_where(
        &spoor_schema::segmenter::SEGMENT_MEMBERS,
        "segment_id = {seg:String} AND run_id != {run:UInt64}",
    );
    db.execute("segment members: old", bind(db.query(&old)))
        .await?;
    db.query(&db.sql(
        "SELECT count() FROM {db}.segment_members WHERE segment_id = {seg:String}",
        &[],
    ))
    .param("seg", segment_id)
    .fetch_one::<u64>()
    .await
    .map_err(|e| Error::query("count segment members", e))
}

/// The run's candidates, as written by [`refresh_dynamic`].
const CANDIDATES: &str = "SELECT project_id, person_id FROM {db}.segment_scratch
    WHERE run_id = {run:UInt64} AND kind = 'candidate'";

/// The segment's matches among the candidates, as written by [`evaluate_some`].
const MATCHES: &str = "SELECT project_id, person_id FROM {db}.segment_scratch
    WHERE run_id = {run:UInt64} AND kind = 'match' AND segment_id = {seg:String}";

const MATCH_SOME: &str = "
INSERT INTO {db}.segment_scratch (run_id, kind, segment_id, project_id, person_id)
SELECT {run:UInt64}, 'match', {seg:String}, n.project_id, n.person_id FROM ({source}) AS n";

/// Entered: matched, not a member yet. Exited: a member, a candidate (`{candidate}`: true when
/// everyone is), no longer matched. People are compared by `person_key` (`{key}`: its
/// expression on the candidate and match rows).
const CHANGES_SOME: &str = "
INSERT INTO {db}.segment_changes (segment_id, project_id, person_id, change, at, run_id)
SELECT {seg:String}, project_id, person_id, 'entered', fromUnixTimestamp64Milli({now:Int64}, 'UTC'), {run:UInt64}
FROM ({matches})
WHERE {key} NOT IN (SELECT person_key FROM {db}.segment_members WHERE segment_id = {seg:String})
UNION ALL
SELECT DISTINCT segment_id, project_id, person_id, 'exited', fromUnixTimestamp64Milli({now:Int64}, 'UTC'), {run:UInt64}
FROM {db}.segment_members
WHERE segment_id = {seg:String}
  AND {candidate}
  AND person_key NOT IN (SELECT {key} FROM ({matches}))";

/// This run's changes of one kind for the segment.
const CHANGED: &str = "SELECT project_id, person_id FROM {db}.segment_changes
    WHERE segment_id = {seg:String} AND at = fromUnixTimestamp64Milli({now:Int64}, 'UTC')
      AND run_id = {run:UInt64} AND change = {change:String}";

/// Re-evaluates a dynamic segment for the run's candidates (`scoped`; else for everyone): the
/// rule runs once, into `segment_scratch`, and only the changes are written — the exits
/// deleted, the entries inserted —, so members who stay keep their rows (rewriting every
/// member on each day's first run left as many deleted rows behind, which every later read
/// of the segment scanned until a merge). `at` is (run id, as-of ms, now ms).
async fn evaluate_some(
    db: &Db,
    segment_id: &str,
    compiled: &super::Compiled,
    scoped: bool,
    (run_id, as_of_ms, now_ms): (u64, i64, i64),
) -> Result<(), Error> {
    let candidates = db.sql(CANDIDATES, &[]);
    let matches = db.sql(MATCHES, &[]);
    let source = db.sql(&compiled.scoped(scoped.then_some(&*candidates)), &[]);
    let bind = |q: clickhouse::query::Query| {
        compiled.bind(
            q.param("seg", segment_id)
                .param("run", run_id)
                .param("version", crate::build::profiles::dynamic_version(run_id))
                .param("now", now_ms)
                .param("as_of", as_of_ms),
        )
    };
    let matched = db.sql(MATCH_SOME, &[("source", &source)]);
    db.execute("segment matches", bind(db.query(&matched)))
        .await?;
    let key = spoor_schema::segmenter::person_key_of("project_id", "person_id");
    let candidate = if scoped {
        format!("person_key IN (SELECT {key} FROM ({candidates}))")
    } else {
        "1".to_owned()
    };
    let changes = db.sql(
        CHANGES_SOME,
        &[
            ("matches", &matches),
            ("candidate", &candidate),
            ("key", &key),
        ],
    );
    db.execute("segment changes", bind(db.query(&changes)))
        .await?;
    let exited = db.delete_where(
        &spoor_schema::segmenter::SEGMENT_MEMBERS,
        &format!("segment_id = {{seg:String}} AND (project_id, person_id) IN ({CHANGED})"),
    );
    let exited = db.sql(&exited, &[]);
    db.execute(
        "segment members: exited",
        bind(db.query(&exited)).param("change", "exited"),
    )
    .await?;
    let entered = db.sql(
        &format!(
            "INSERT INTO {{db}}.segment_members (segment_id, project_id, person_id, entered_at, run_id)
             SELECT {{seg:String}}, project_id, person_id, fromUnixTimestamp64Milli({{now:Int64}}, 'UTC'), {{run:UInt64}}
             FROM ({CHANGED})"
        ),
        &[],
    );
    db.execute(
        "segment members: entered",
        bind(db.query(&entered)).param("change", "entered"),
    )
    .await
}

/// `max(now, greatest stored + 1)`, so versions and run ids only grow.
async fn next_version(db: &Db, template: &str, now: i64) -> Result<u64, Error> {
    let stored: u64 = db
        .query(&db.sql(template, &[]))
        .fetch_one()
        .await
        .map_err(|e| Error::query("read version", e))?;
    Ok(u64::try_from(now).unwrap_or(0).max(stored + 1))
}
