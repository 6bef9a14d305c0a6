//! The segmenter's tables and views: identity, sessions, per-person-day activity, profiles,
//! segments with history, and the reports. All are derived from `events` by `spoor-segmenter`
//! and can be rebuilt from it at any time.
//!
//! Person ids: a profile is keyed by `person_id`, which is the user id once the person is
//! known, and `anon:<anonymous_id>` before. See `identities` for the identity rule.

use crate::{Column, Engine, Layout, Migration, Table, col};

/// `sipHash128(project_id, person_id)` as a `UInt128`, stored by the tables keyed by person: a
/// run's filters on the people it touched, and segment rules' behavioural tests, compare this
/// one 16-byte column instead of the two strings (benchmark, 3.3 M rows of `activity_daily`,
/// measured with a 64-bit key first: a filter on the touched people 0.25–0.32 s → 0.07–0.09 s;
/// a segment rule 0.6 s → 0.25 s). Two of n people share a key with a chance of about
/// n² / 2¹²⁹ (10⁻²⁷ for a million people).
pub const PERSON_KEY: Column = col!(
    person_key,
    "UInt128",
    materialized "reinterpretAsUInt128(sipHash128(project_id, person_id))",
    "reinterpretAsUInt128(sipHash128(project_id, person_id)), computed on insert: what a run's filters on people compare"
);

/// [`PERSON_KEY`]'s expression for other columns: `person_key_of("project_id", "user_id")`.
pub fn person_key_of(project: &str, person: &str) -> String {
    format!("reinterpretAsUInt128(sipHash128({project}, {person}))")
}

/// The tables with [`PERSON_KEY`].
pub const PERSON_KEY_TABLES: &[Table] = &[
    ACTIVITY_DAILY,
    ACTIVITY_DAILY_NEXT,
    SESSIONS,
    PROFILES_STATIC,
    PROFILES_DYNAMIC,
    PROFILES_DYNAMIC_NEXT,
    SEGMENT_MEMBERS,
];

/// Every (anonymous id, user id) pair seen on an event, with the first time it was seen.
pub const IDENTITY_MAP: Table = Table {
    name: "identity_map",
    comment: "Spoor segmenter: every (anonymous_id, user_id) pair seen together on an event and when first. Read the resolved mapping from the identities table.",
    columns: &[
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(
            anonymous_id,
            "String",
            "Anonymous id of a browser or device"
        ),
        col!(
            user_id,
            "String",
            "User id seen on an event with this anonymous id"
        ),
        col!(
            identified_at,
            "DateTime64(3, 'UTC')",
            "Earliest event carrying both ids"
        ),
        col!(
            run_id,
            "UInt64",
            "The run that wrote the row: one that saw the pair first, or earlier than before"
        ),
    ],
    // A run writes a pair only when it is new or seen earlier than before, so the row a merge
    // keeps (the last written) has the earliest time.
    engine: Engine::ReplacingMergeTree { version: None },
    partition_by: None,
    order_by: "(project_id, anonymous_id, user_id)",
    sharding_key: "cityHash64(project_id, anonymous_id)",
    settings: &[],
};

/// The identity rule applied: each anonymous id ever identified, with the user id it resolves to.
/// Kept by each run for the anonymous ids of its new pairs (from `identity_map`); a table, not
/// a view, because every step that attributes rows to people joins it (as a view it
/// re-aggregated all of `identity_map` on each of those joins: 0.15–0.3 s apiece on the
/// benchmark's 367 k pairs).
pub const IDENTITIES: Table = Table {
    name: "identities",
    comment: "Spoor segmenter: the resolved identity of each identified anonymous id: the user id it was first seen with (earliest event carrying both; ties broken by the smaller user id). Kept by each run from identity_map.",
    columns: &[
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(anonymous_id, "String", "Anonymous id"),
        col!(user_id, "String", "User id the anonymous id resolves to"),
        col!(
            identified_at,
            "DateTime64(3, 'UTC')",
            "Earliest event carrying this anonymous id and any user id"
        ),
    ],
    engine: Engine::MergeTree,
    partition_by: None,
    order_by: "(project_id, anonymous_id)",
    sharding_key: "cityHash64(project_id, anonymous_id)",
    settings: PATCHED_PARTS,
};

/// Changes of the resolved identity made by each run: an audit trail for data teams.
pub const IDENTITY_CHANGES: Table = Table {
    name: "identity_changes",
    comment: "Spoor segmenter: each run's changes to the resolved identity of an anonymous id (its anonymous history joins the user's profile).",
    columns: &[
        col!(run_id, "UInt64", "The run that made the change"),
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(anonymous_id, "String", "Anonymous id"),
        col!(
            old_user_id,
            "String",
            "User id it resolved to before, empty if none"
        ),
        col!(new_user_id, "String", "User id it resolves to now"),
        col!(
            changed_at,
            "DateTime64(3, 'UTC')",
            "When the run made the change"
        ),
    ],
    engine: Engine::MergeTree,
    partition_by: None,
    order_by: "(project_id, anonymous_id, run_id)",
    sharding_key: "cityHash64(project_id, anonymous_id)",
    settings: &[],
};

/// Settings of the tables a run deletes rows from. A lightweight DELETE rewrites a whole part
/// when the part is compact (every column in one file) but only writes a row mask when it is
/// wide; a day's uniqExact states are large, so on compact parts deleting one day rewrote the
/// whole table (0.9 s instead of 0.02 s, measured on the benchmark's report_daily_states).
pub const WIDE_PARTS: &[&str] = &["min_bytes_for_wide_part = 0"];

/// The tables with [`WIDE_PARTS`].
pub const WIDE_PART_TABLES: &[Table] = &[
    SESSIONS,
    ACTIVITY_DAILY,
    PROFILES_STATIC,
    PROFILES_DYNAMIC,
    SEGMENT_MEMBERS,
    REPORT_DAILY_STATES,
    REPORT_DAILY_PAGES_STATES,
    REPORT_DAILY_SOURCES_STATES,
    REPORT_DAILY_SEARCHES_STATES,
];

/// The people an incremental run recomputes, written once per run and read by its steps.
pub const TOUCHED_PEOPLE: Table = Table {
    name: "touched_people",
    comment: "Spoor segmenter: the people the latest incremental run recomputed (events received since the previous watermark, or an identity change). Working set of one run; emptied at the start of the next.",
    columns: &[
        col!(run_id, "UInt64", "The run"),
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(
            person_id,
            "String",
            "Person whose profile the run recomputed"
        ),
        col!(
            static_inputs,
            "Bool",
            "Whether the person's static profile can have changed (a person may have several rows: any true counts)"
        ),
    ],
    engine: Engine::MergeTree,
    partition_by: None,
    order_by: "(run_id, project_id, person_id)",
    sharding_key: "cityHash64(project_id, person_id)",
    settings: &[],
};

/// A run's working sets for segments: the people whose memberships it re-evaluates
/// (`candidate`) and, per segment, those of them the rule matches (`match`).
pub const SEGMENT_SCRATCH: Table = Table {
    name: "segment_scratch",
    comment: "Spoor segmenter: working sets of the latest incremental run's segment evaluation (candidates, and each segment's matches among them). Emptied at the start of the next.",
    columns: &[
        col!(run_id, "UInt64", "The run"),
        col!(kind, "LowCardinality(String)", "candidate or match"),
        col!(
            segment_id,
            "String",
            "Segment (match rows), empty for candidates"
        ),
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(person_id, "String", "Person"),
    ],
    engine: Engine::MergeTree,
    partition_by: None,
    order_by: "(run_id, kind, segment_id, project_id, person_id)",
    sharding_key: "cityHash64(project_id, person_id)",
    settings: &[],
};

/// The daily reports' per-person input for the days a run recomputes: written once, read by
/// `report_daily` and `report_daily_states` (which would each join first-seen times again).
pub const REPORT_PEOPLE: Table = Table {
    name: "report_people",
    comment: "Spoor segmenter: working set of the latest run's daily reports: per project, UTC day and person, what they did and whether they were new. Emptied at the next run's reports.",
    columns: &[
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(day, "Date", "UTC day"),
        col!(person_id, "String", "Person"),
        col!(visited, "Bool", "Had a session or a page view that day"),
        col!(ordered, "Bool", "Had an order that day"),
        col!(new_day, "Bool", "Visited, first seen that day"),
        col!(new_week, "Bool", "Visited, first seen in the same week"),
        col!(new_month, "Bool", "Visited, first seen in the same month"),
        col!(page_views, "UInt64", "Page views"),
        col!(searches, "UInt64", "Searches"),
        col!(zero_result_searches, "UInt64", "Searches without results"),
        col!(orders, "UInt64", "Orders"),
        col!(revenue, "Float64", "Revenue"),
        col!(signups, "UInt64", "member_signup events"),
        col!(signins, "UInt64", "member_signin events"),
        col!(points_earned, "Int64", "Points earned"),
        col!(points_redeemed, "Int64", "Points redeemed"),
    ],
    engine: Engine::MergeTree,
    partition_by: None,
    order_by: "(project_id, day, person_id)",
    sharding_key: "cityHash64(project_id, person_id)",
    settings: &[],
};

/// One row per SDK session.
pub const SESSIONS: Table = Table {
    name: "sessions",
    comment: "Spoor segmenter: one row per session (SDK session id), attributed to the UTC day it started. A session that changes is deleted and re-inserted.",
    columns: &[
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(session_id, "String", "Session id from the SDK"),
        col!(
            anonymous_id,
            "String",
            "Anonymous id of the session (the smallest, if it changed)"
        ),
        col!(
            user_id,
            "String",
            "Latest user id seen in the session, empty if none"
        ),
        col!(
            person_id,
            "String",
            "Person the session counts for: the identity rule applied when the session was last aggregated (re-aggregated when the identity changes)"
        ),
        col!(
            started_at,
            "DateTime64(3, 'UTC')",
            "First event of the session"
        ),
        col!(
            ended_at,
            "DateTime64(3, 'UTC')",
            "Last event of the session"
        ),
        col!(
            day,
            "Date",
            "UTC day the session started (a session crossing midnight counts on its first day)"
        ),
        col!(duration_ms, "UInt64", "ended_at - started_at"),
        col!(events, "UInt32", "Events in the session"),
        col!(page_views, "UInt32", "page_view events in the session"),
        col!(
            engaged_ms,
            "UInt64",
            "Sum of engaged_ms of page_leave events"
        ),
        col!(entry_path, "String", "Path of the first page view"),
        col!(exit_path, "String", "Path of the last page view"),
        col!(referrer, "String", "Referrer of the first page view"),
        col!(
            referrer_domain,
            "LowCardinality(String)",
            "Referrer host of the first page view"
        ),
        col!(
            referrer_class,
            "LowCardinality(String)",
            "direct, search, social, email, internal or other"
        ),
        col!(
            utm_source,
            "LowCardinality(String)",
            "utm_source of the first page view"
        ),
        col!(
            utm_medium,
            "LowCardinality(String)",
            "utm_medium of the first page view"
        ),
        col!(
            utm_campaign,
            "LowCardinality(String)",
            "utm_campaign of the first page view"
        ),
        col!(
            device_class,
            "LowCardinality(String)",
            "Device class at the first page view"
        ),
        col!(
            browser,
            "LowCardinality(String)",
            "Browser at the first page view"
        ),
        col!(
            os,
            "LowCardinality(String)",
            "Operating system at the first page view"
        ),
        col!(
            is_bounce,
            "Bool",
            "At most one page view and no click, search or track event"
        ),
        col!(version, "UInt64", "Run that computed the row"),
        PERSON_KEY,
    ],
    engine: Engine::MergeTree,
    partition_by: Some("toYYYYMM(day)"),
    order_by: "(project_id, day, session_id)",
    sharding_key: "cityHash64(project_id, anonymous_id)",
    settings: PATCHED_PARTS,
};

/// The block number and offset columns: what a lightweight update's patch part addresses rows
/// by. Runs delete rows as lightweight updates (the segmenter sets `lightweight_delete_mode =
/// lightweight_update`): the deleted rows' mask goes into a small patch part, where a
/// lightweight delete's mutation rewrites the mask of every part of the table — measured on
/// the benchmark's 3 M sessions: 0.7–2 s per DELETE even when no row matched, 0.08 s as a
/// patch. Every table a run deletes from has them: [`WIDE_PART_TABLES`] and the reports
/// (migration 9).
pub const BLOCK_COLUMNS: &[&str] = &[
    "enable_block_number_column = 1",
    "enable_block_offset_column = 1",
];

/// [`WIDE_PARTS`] and [`BLOCK_COLUMNS`].
pub const PATCHED_PARTS: &[&str] = &[
    "min_bytes_for_wide_part = 0",
    "enable_block_number_column = 1",
    "enable_block_offset_column = 1",
];

/// One row per (UTC day, anonymous id, user id): the compact history profiles, segments and
/// reports are computed from. `person_id` applies the identity rule; the days of an anonymous id
/// whose identity changes are re-aggregated, so it stays current.
pub const ACTIVITY_DAILY: Table = Table {
    name: "activity_daily",
    comment: "Spoor segmenter: per UTC day and (anonymous_id, user_id), what happened, with the person it counts for. Bots excluded, duplicates removed.",
    columns: &[
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(day, "Date", "UTC day"),
        col!(anonymous_id, "String", "Anonymous id on the events"),
        col!(
            user_id,
            "String",
            "User id on the events, empty before identify"
        ),
        col!(
            person_id,
            "String",
            "Person these events count for (identity rule): user id or anon:<anonymous_id>"
        ),
        col!(events, "UInt32", "Events"),
        col!(page_views, "UInt32", "page_view events"),
        col!(page_leaves, "UInt32", "page_leave events"),
        col!(clicks, "UInt32", "click events"),
        col!(searches, "UInt32", "search events"),
        col!(session_starts, "UInt32", "session_start events"),
        col!(identifies, "UInt32", "identify events"),
        col!(tracks, "UInt32", "track events"),
        col!(sessions, "UInt32", "Distinct session ids"),
        col!(engaged_ms, "UInt64", "Engaged time from page_leave events"),
        col!(
            zero_result_searches,
            "UInt32",
            "search events with results_count = 0"
        ),
        col!(orders, "UInt32", "order_completed events"),
        col!(revenue, "Float64", "Sum of order_completed revenue"),
        col!(
            last_order_at,
            "Nullable(DateTime64(3, 'UTC'))",
            "Last order_completed of the day"
        ),
        col!(signups, "UInt32", "member_signup events"),
        col!(signins, "UInt32", "member_signin events"),
        col!(points_earned, "Int64", "Sum of points_earned points"),
        col!(points_redeemed, "Int64", "Sum of points_redeemed points"),
        col!(first_at, "DateTime64(3, 'UTC')", "First event of the day"),
        col!(last_at, "DateTime64(3, 'UTC')", "Last event of the day"),
        col!(
            event_counts,
            "Map(String, UInt32)",
            "track events by name (order_completed → 2)"
        ),
        col!(
            paths,
            "Array(String)",
            "Paths of the page views, one entry per view (sorted)"
        ),
        col!(
            search_terms,
            "Array(String)",
            "Search queries, lower-cased and trimmed, one entry per search (sorted)"
        ),
        PERSON_KEY,
    ],
    engine: Engine::MergeTree,
    partition_by: Some("toYYYYMMDD(day)"),
    order_by: "(project_id, day, anonymous_id, user_id)",
    sharding_key: "cityHash64(project_id, anonymous_id)",
    settings: PATCHED_PARTS,
};

/// Where an incremental run assembles the new rows of each re-aggregated day of
/// `activity_daily` — the day's rows it keeps and the rows it re-aggregates — before it swaps
/// the day in with `REPLACE PARTITION`. Only the (project, anonymous id) pairs with new events
/// or a changed identity are re-aggregated, not the whole day (benchmark: 1.4 s for two whole
/// days), and `activity_daily` never holds deleted rows. Empty between runs.
pub const ACTIVITY_DAILY_NEXT: Table = Table {
    name: "activity_daily_next",
    comment: "Spoor segmenter: staging for the days an incremental run re-aggregates; empty between runs.",
    ..ACTIVITY_DAILY
};

/// Facts about a person that do not depend on when you look.
pub const PROFILES_STATIC: Table = Table {
    name: "profiles_static",
    comment: "Spoor segmenter: static profile per person (first touch, signup, latest traits). person_id is the user id, or anon:<anonymous_id> before identify. Superseded rows are deleted by each run; FINAL is only needed while a run is writing.",
    columns: &[
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(
            person_id,
            "String",
            "User id, or anon:<anonymous_id> for people not identified"
        ),
        col!(user_id, "String", "User id, empty for anonymous people"),
        col!(is_identified, "Bool", "The person has a user id"),
        col!(
            anonymous_ids,
            "Array(String)",
            "Anonymous ids whose history joined this profile (at most 100)"
        ),
        col!(first_seen_at, "DateTime64(3, 'UTC')", "First event"),
        col!(
            first_session_id,
            "String",
            "The first session (the first-touch fields describe it); empty without sessions"
        ),
        col!(
            first_session_at,
            "DateTime64(3, 'UTC')",
            "Start of the first session; 1970 without sessions"
        ),
        col!(first_path, "String", "Landing page of the first session"),
        col!(first_referrer, "String", "Referrer of the first session"),
        col!(
            first_referrer_domain,
            "String",
            "Referrer host of the first session"
        ),
        col!(
            first_referrer_class,
            "LowCardinality(String)",
            "Referrer class of the first session"
        ),
        col!(
            first_utm_source,
            "String",
            "utm_source of the first session"
        ),
        col!(
            first_utm_medium,
            "String",
            "utm_medium of the first session"
        ),
        col!(
            first_utm_campaign,
            "String",
            "utm_campaign of the first session"
        ),
        col!(
            first_device_class,
            "LowCardinality(String)",
            "Device class first seen"
        ),
        col!(
            first_browser,
            "LowCardinality(String)",
            "Browser first seen"
        ),
        col!(
            first_os,
            "LowCardinality(String)",
            "Operating system first seen"
        ),
        col!(
            signup_at,
            "Nullable(DateTime64(3, 'UTC'))",
            "First member_signup event"
        ),
        col!(
            member_id,
            "String",
            "Member id: the member_signup member_id, else the user id of a member, else empty"
        ),
        col!(
            level,
            "String",
            "Member level: latest level_changed or level trait"
        ),
        col!(
            traits,
            "String",
            "Latest value of every identify trait, as a JSON object"
        ),
        col!(
            version,
            "UInt64",
            "Run that computed the row; the highest wins"
        ),
        PERSON_KEY,
    ],
    engine: Engine::ReplacingMergeTree {
        version: Some("version"),
    },
    partition_by: None,
    order_by: "(project_id, person_id)",
    sharding_key: "cityHash64(project_id, person_id)",
    settings: PATCHED_PARTS,
};

/// What a person does, as of the run's time. Rebuilt on each run: for everyone (through
/// [`PROFILES_DYNAMIC_NEXT`]) or for the people the run touched.
pub const PROFILES_DYNAMIC: Table = Table {
    name: "profiles_dynamic",
    comment: "Spoor segmenter: dynamic profile per person as of the UTC day of as_of (recency, activity, RFM, engagement, lifecycle). Superseded rows are deleted by each run; FINAL is only needed while a run is writing.",
    columns: &[
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(person_id, "String", "User id, or anon:<anonymous_id>"),
        col!(
            as_of,
            "DateTime64(3, 'UTC')",
            "Time of the run that last changed the row; every row describes the UTC day of the latest run's as-of time"
        ),
        col!(is_identified, "Bool", "The person has a user id"),
        col!(first_seen_at, "DateTime64(3, 'UTC')", "First event"),
        col!(last_seen_at, "DateTime64(3, 'UTC')", "Last event"),
        col!(
            days_since_last_seen,
            "UInt32",
            "Whole UTC days between last_seen_at and as_of"
        ),
        col!(
            active_days_7d,
            "UInt32",
            "Days with activity among the last 7 (today included)"
        ),
        col!(
            active_days_30d,
            "UInt32",
            "Days with activity among the last 30"
        ),
        col!(sessions_7d, "UInt32", "Sessions started in the last 7 days"),
        col!(
            sessions_30d,
            "UInt32",
            "Sessions started in the last 30 days"
        ),
        col!(sessions_total, "UInt32", "All sessions"),
        col!(page_views_total, "UInt64", "All page views"),
        col!(page_views_30d, "UInt64", "Page views in the last 30 days"),
        col!(avg_session_seconds, "Float64", "Average session duration"),
        col!(
            avg_engaged_seconds,
            "Float64",
            "Average engaged time per session"
        ),
        col!(
            top_searches,
            "Array(String)",
            "Most frequent search terms, last 30 days (at most 5)"
        ),
        col!(
            top_pages,
            "Array(String)",
            "Most viewed paths, last 30 days (at most 5)"
        ),
        col!(
            top_sections,
            "Array(String)",
            "Most viewed first path segments, last 30 days (at most 3)"
        ),
        col!(orders_total, "UInt32", "All order_completed events"),
        col!(revenue_total, "Float64", "Sum of order revenue"),
        col!(
            last_order_at,
            "Nullable(DateTime64(3, 'UTC'))",
            "Last order"
        ),
        col!(
            rfm_recency,
            "UInt8",
            "1-5 quintile of days since last order among buyers (5 = most recent); 0 = no order"
        ),
        col!(
            rfm_frequency,
            "UInt8",
            "1-5 quintile of order count among buyers (5 = most); 0 = no order"
        ),
        col!(
            rfm_monetary,
            "UInt8",
            "1-5 quintile of revenue among buyers (5 = most); 0 = no order"
        ),
        col!(engagement_score, "UInt8", "0-100, see README"),
        col!(
            lifecycle_stage,
            "LowCardinality(String)",
            "new, active, returning, loyal, at_risk or churned (thresholds in README)"
        ),
        col!(
            version,
            "UInt64",
            "2 × run id (+1 for the RFM pass) of the run that last changed the row; the highest wins"
        ),
        PERSON_KEY,
    ],
    engine: Engine::ReplacingMergeTree {
        version: Some("version"),
    },
    partition_by: None,
    order_by: "(project_id, person_id)",
    sharding_key: "cityHash64(project_id, person_id)",
    settings: PATCHED_PARTS,
};

/// Where a run that recomputes everyone's dynamic profile writes it, before it replaces the
/// data of `profiles_dynamic` in one step (`REPLACE PARTITION`): readers never see a partial
/// table, and `profiles_dynamic` is left without deleted rows. (Deleting the old rows instead
/// left a million deleted rows and their patch parts behind until a merge: every read of the
/// table then cost 5–15 × more — a segment rule 0.09 s → 0.54–0.8 s on the benchmark.)
pub const PROFILES_DYNAMIC_NEXT: Table = Table {
    name: "profiles_dynamic_next",
    comment: "Spoor segmenter: staging for a run that recomputes every dynamic profile; empty between runs.",
    ..PROFILES_DYNAMIC
};

/// Segment definitions.
pub const SEGMENTS: Table = Table {
    name: "segments",
    comment: "Spoor segmenter: segment definitions (rule as JSON). Read with FINAL and WHERE NOT deleted.",
    columns: &[
        col!(segment_id, "String", "Id: [a-z0-9_-], unique"),
        col!(name, "String", "Display name"),
        col!(description, "String", "What the segment is for"),
        col!(
            kind,
            "LowCardinality(String)",
            "dynamic (recomputed each run) or static (frozen at creation)"
        ),
        col!(
            project_id,
            "String",
            "Project the segment applies to; empty for all"
        ),
        col!(definition, "String", "The whole definition as JSON"),
        col!(created_at, "DateTime64(3, 'UTC')", "When it was added"),
        col!(
            updated_at,
            "DateTime64(3, 'UTC')",
            "When it was last changed"
        ),
        col!(deleted, "Bool", "Deleted segments keep their history"),
        col!(version, "UInt64", "Change counter (ms); the highest wins"),
    ],
    engine: Engine::ReplacingMergeTree {
        version: Some("version"),
    },
    partition_by: None,
    order_by: "segment_id",
    sharding_key: "cityHash64(segment_id)",
    settings: &[],
};

/// Current members of each segment.
pub const SEGMENT_MEMBERS: Table = Table {
    name: "segment_members",
    comment: "Spoor segmenter: current members of each segment.",
    columns: &[
        col!(segment_id, "String", "Segment"),
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(
            person_id,
            "String",
            "Person (user id or anon:<anonymous_id>)"
        ),
        col!(
            entered_at,
            "DateTime64(3, 'UTC')",
            "When the person last entered the segment"
        ),
        col!(
            run_id,
            "UInt64",
            "Run that added the person (members who stay keep their row)"
        ),
        PERSON_KEY,
    ],
    engine: Engine::MergeTree,
    partition_by: None,
    order_by: "(segment_id, project_id, person_id)",
    sharding_key: "cityHash64(segment_id)",
    settings: PATCHED_PARTS,
};

/// Who entered or left each segment, and when.
pub const SEGMENT_CHANGES: Table = Table {
    name: "segment_changes",
    comment: "Spoor segmenter: history of segment membership: one row per person entering or exiting.",
    columns: &[
        col!(segment_id, "String", "Segment"),
        col!(project_id, "LowCardinality(String)", "Project"),
        col!(person_id, "String", "Person"),
        col!(change, "LowCardinality(String)", "entered or exited"),
        col!(
            at,
            "DateTime64(3, 'UTC')",
            "Time of the run that saw the change"
        ),
        col!(run_id, "UInt64", "That run"),
    ],
    engine: Engine::MergeTree,
    partition_by: Some("toYYYYMM(at)"),
    order_by: "(segment_id, at, person_id)",
    sharding_key: "cityHash64(segment_id)",
    settings: &[],
};

/// One row per segmenter run: the watermark incremental runs start from.
pub const SEGMENTER_RUNS: Table = Table {
    name: "segmenter_runs",
    comment: "Spoor segmenter: one row per finished run. The next incremental run reads events received after the latest watermark.",
    columns: &[
        col!(run_id, "UInt64", "Run id (start time in ms)"),
        col!(mode, "LowCardinality(String)", "full or incremental"),
        col!(started_at, "DateTime64(3, 'UTC')", "Start"),
        col!(finished_at, "DateTime64(3, 'UTC')", "End"),
        col!(
            as_of,
            "DateTime64(3, 'UTC')",
            "Time the dynamic profiles describe"
        ),
        col!(
            watermark,
            "DateTime64(3, 'UTC')",
            "Greatest events.received_at covered"
        ),
        col!(
            config,
            "String",
            "The run's lifecycle thresholds as JSON; a change makes the next run recompute every dynamic profile"
        ),
        col!(
            new_events,
            "UInt64",
            "Events received since the previous watermark"
        ),
        col!(affected_days, "UInt32", "Days re-aggregated"),
    ],
    engine: Engine::MergeTree,
    partition_by: None,
    order_by: "run_id",
    sharding_key: "rand()",
    settings: &[],
};

/// Who may write the derived tables: one segmenter process at a time. Each row is one term of
/// the lease; a term is taken by inserting its row with the deduplication token
/// `<name>/<term>`, so of several processes inserting the same term exactly one row is kept
/// (ClickHouse drops the other inserts as duplicates of the block) — a compare-and-set without
/// a coordinator. The latest term's row says who holds the lease and until when.
pub const SEGMENTER_LEASE: Table = Table {
    name: "segmenter_lease",
    comment: "Spoor segmenter: terms of the lease that lets one segmenter process at a time write the derived tables. The latest term names the holder.",
    columns: &[
        col!(
            name,
            "LowCardinality(String)",
            "What the lease guards (writer)"
        ),
        col!(
            term,
            "UInt64",
            "Term number; each renewal or release is a new term"
        ),
        col!(
            holder,
            "String",
            "Process that took the term: host, pid and a random id"
        ),
        col!(
            taken_at,
            "DateTime64(3, 'UTC')",
            "When the term was taken (server time)"
        ),
        col!(
            expires_at,
            "DateTime64(3, 'UTC')",
            "Until when it is held; a release writes a term that has already expired"
        ),
    ],
    engine: Engine::MergeTree,
    partition_by: None,
    order_by: "(name, term)",
    sharding_key: "cityHash64(name)",
    settings: &["non_replicated_deduplication_window = 1000"],
};

/// Report periods: daily, weekly (ISO weeks, starting Monday) and monthly, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Daily,
    Weekly,
    Monthly,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Daily, Period::Weekly, Period::Monthly];

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Weekly => "weekly",
            Period::Monthly => "monthly",
        }
    }

    /// The name of the period column: `day`, `week` or `month` (a `Date`, the first day).
    pub fn column(self) -> &'static str {
        match self {
            Period::Daily => "day",
            Period::Weekly => "week",
            Period::Monthly => "month",
        }
    }

    /// SQL turning a `Date` expression into the period's first day.
    pub fn start_of(self, date_sql: &str) -> String {
        match self {
            Period::Daily => date_sql.to_owned(),
            Period::Weekly => format!("toMonday({date_sql})"),
            Period::Monthly => format!("toStartOfMonth({date_sql})"),
        }
    }

    /// The report tables of this period: summary, pages, sources, searches.
    pub fn tables(self) -> [Table; 4] {
        match self {
            Period::Daily => [
                REPORT_DAILY,
                REPORT_DAILY_PAGES,
                REPORT_DAILY_SOURCES,
                REPORT_DAILY_SEARCHES,
            ],
            Period::Weekly => [
                REPORT_WEEKLY,
                REPORT_WEEKLY_PAGES,
                REPORT_WEEKLY_SOURCES,
                REPORT_WEEKLY_SEARCHES,
            ],
            Period::Monthly => [
                REPORT_MONTHLY,
                REPORT_MONTHLY_PAGES,
                REPORT_MONTHLY_SOURCES,
                REPORT_MONTHLY_SEARCHES,
            ],
        }
    }
}

macro_rules! report_table {
    ($name:literal, $period:ident, $what:literal) => {
        Table {
            name: $name,
            comment: concat!(
                "Spoor segmenter: ",
                $what,
                " report, one row per project and UTC period. Bots excluded, duplicate events removed."
            ),
            columns: &[
                col!(project_id, "LowCardinality(String)", "Project"),
                col!($period, "Date", "First day of the period (UTC; weeks start on Monday)"),
                col!(visitors, "UInt64", "Distinct people (identity-resolved) with a page view or an event in a session; server-only activity (orders, points, tickets sent by a backend) is not a visit"),
                col!(new_visitors, "UInt64", "Visitors first seen in this period"),
                col!(returning_visitors, "UInt64", "Visitors first seen before this period"),
                col!(sessions, "UInt64", "Sessions started in the period"),
                col!(page_views, "UInt64", "page_view events"),
                col!(bounces, "UInt64", "Sessions with at most one page view and no interaction"),
                col!(bounce_rate, "Float64", "bounces / sessions (0 when no session)"),
                col!(session_ms_total, "UInt64", "Sum of session durations"),
                col!(avg_session_seconds, "Float64", "Average session duration"),
                col!(engaged_ms_total, "UInt64", "Sum of engaged time over sessions"),
                col!(avg_engaged_seconds, "Float64", "Average engaged time per session"),
                col!(searches, "UInt64", "search events"),
                col!(zero_result_searches, "UInt64", "Searches that found nothing"),
                col!(orders, "UInt64", "order_completed events"),
                col!(revenue, "Float64", "Sum of order revenue"),
                col!(buyers, "UInt64", "Visitors with at least one order"),
                col!(conversion_rate, "Float64", "buyers / visitors (0 when no visitor)"),
                col!(signups, "UInt64", "member_signup events"),
                col!(signins, "UInt64", "member_signin events"),
                col!(points_earned, "Int64", "Points earned"),
                col!(points_redeemed, "Int64", "Points redeemed"),
                col!(tickets_opened, "UInt64", "Tickets opened in the period"),
                col!(tickets_resolved, "UInt64", "Tickets resolved in the period"),
                col!(median_first_response_seconds, "Nullable(Float64)", "Median opened→first agent reply, over tickets first answered in the period"),
                col!(median_resolution_seconds, "Nullable(Float64)", "Median opened→resolved, over tickets resolved in the period"),
                col!(csat_avg, "Nullable(Float64)", "Average ticket rating given in the period"),
                col!(csat_responses, "UInt64", "Ticket ratings given in the period"),
                col!(computed_at, "DateTime64(3, 'UTC')", "When the row was computed"),
            ],
            engine: Engine::MergeTree,
            partition_by: None,
            order_by: concat!("(project_id, ", stringify!($period), ")"),
            sharding_key: "cityHash64(project_id)",
            settings: BLOCK_COLUMNS,
        }
    };
}

macro_rules! pages_table {
    ($name:literal, $period:ident) => {
        Table {
            name: $name,
            comment: "Spoor segmenter: per-page breakdown of the report: views, visitors, entries, exits, engaged time.",
            columns: &[
                col!(project_id, "LowCardinality(String)", "Project"),
                col!($period, "Date", "First day of the period"),
                col!(path, "String", "Page path"),
                col!(views, "UInt64", "page_view events"),
                col!(visitors, "UInt64", "Distinct people who viewed it"),
                col!(entries, "UInt64", "Sessions that started on it"),
                col!(exits, "UInt64", "Sessions that ended on it"),
                col!(engaged_ms, "UInt64", "Engaged time on it (page_leave)"),
                col!(leaves, "UInt64", "page_leave events on it"),
                col!(avg_engaged_seconds, "Float64", "engaged_ms / page_leave events, in seconds"),
            ],
            engine: Engine::MergeTree,
            partition_by: None,
            order_by: concat!("(project_id, ", stringify!($period), ", path)"),
            sharding_key: "cityHash64(project_id)",
            settings: BLOCK_COLUMNS,
        }
    };
}

macro_rules! sources_table {
    ($name:literal, $period:ident) => {
        Table {
            name: $name,
            comment: "Spoor segmenter: per-source breakdown of the report (first page view of each session).",
            columns: &[
                col!(project_id, "LowCardinality(String)", "Project"),
                col!($period, "Date", "First day of the period"),
                col!(referrer_class, "LowCardinality(String)", "direct, search, social, email, internal or other"),
                col!(referrer_domain, "String", "Referrer host"),
                col!(utm_source, "String", "utm_source"),
                col!(utm_medium, "String", "utm_medium"),
                col!(utm_campaign, "String", "utm_campaign"),
                col!(sessions, "UInt64", "Sessions"),
                col!(visitors, "UInt64", "Distinct people"),
                col!(bounces, "UInt64", "Bounced sessions"),
                col!(page_views, "UInt64", "Page views in those sessions"),
            ],
            engine: Engine::MergeTree,
            partition_by: None,
            order_by: concat!(
                "(project_id, ",
                stringify!($period),
                ", referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign)"
            ),
            sharding_key: "cityHash64(project_id)",
            settings: BLOCK_COLUMNS,
        }
    };
}

macro_rules! searches_table {
    ($name:literal, $period:ident) => {
        Table {
            name: $name,
            comment: "Spoor segmenter: per-query breakdown of site searches (queries lower-cased and trimmed).",
            columns: &[
                col!(project_id, "LowCardinality(String)", "Project"),
                col!($period, "Date", "First day of the period"),
                col!(query, "String", "Search query, lower-cased and trimmed"),
                col!(searches, "UInt64", "search events"),
                col!(searchers, "UInt64", "Distinct people"),
                col!(zero_results, "UInt64", "Searches with results_count = 0"),
            ],
            engine: Engine::MergeTree,
            partition_by: None,
            order_by: concat!("(project_id, ", stringify!($period), ", query)"),
            sharding_key: "cityHash64(project_id)",
            settings: BLOCK_COLUMNS,
        }
    };
}

pub const REPORT_DAILY: Table = report_table!("report_daily", day, "Daily");
pub const REPORT_WEEKLY: Table = report_table!("report_weekly", week, "Weekly");
pub const REPORT_MONTHLY: Table = report_table!("report_monthly", month, "Monthly");
pub const REPORT_DAILY_PAGES: Table = pages_table!("report_daily_pages", day);
pub const REPORT_WEEKLY_PAGES: Table = pages_table!("report_weekly_pages", week);
pub const REPORT_MONTHLY_PAGES: Table = pages_table!("report_monthly_pages", month);
pub const REPORT_DAILY_SOURCES: Table = sources_table!("report_daily_sources", day);
pub const REPORT_WEEKLY_SOURCES: Table = sources_table!("report_weekly_sources", week);
pub const REPORT_MONTHLY_SOURCES: Table = sources_table!("report_monthly_sources", month);
pub const REPORT_DAILY_SEARCHES: Table = searches_table!("report_daily_searches", day);
pub const REPORT_WEEKLY_SEARCHES: Table = searches_table!("report_weekly_searches", week);
pub const REPORT_MONTHLY_SEARCHES: Table = searches_table!("report_monthly_searches", month);

macro_rules! state_table {
    ($name:literal, $comment:literal, [$($key:ident: $ty:literal),*], [$($state:ident: $what:literal),*], $order:literal) => {
        Table {
            name: $name,
            comment: $comment,
            columns: &[
                col!(project_id, "LowCardinality(String)", "Project"),
                col!(day, "Date", "UTC day"),
                $(col!($key, $ty, "Breakdown key, as in the daily report"),)*
                $(col!($state, "AggregateFunction(uniqExact, UInt64)", $what),)*
            ],
            engine: Engine::MergeTree,
            partition_by: None,
            order_by: $order,
            sharding_key: "cityHash64(project_id)",
            settings: PATCHED_PARTS,
        }
    };
}

/// Per-day distinct-people states behind `report_daily`: the weekly and monthly reports merge
/// them (and sum the daily tables' additive columns) instead of re-reading their whole period.
pub const REPORT_DAILY_STATES: Table = state_table!(
    "report_daily_states",
    "Spoor segmenter: per project and UTC day, sets of people (uniqExact states of sipHash64(person_id)) that weekly and monthly reports merge.",
    [],
    [
        visitors: "People who visited that day",
        orderers: "People with an order that day (visit or not)",
        visitors_or_orderers: "People who visited or ordered that day",
        new_week: "Visitors that day first seen in the same week",
        new_month: "Visitors that day first seen in the same month"
    ],
    "(project_id, day)"
);
pub const REPORT_DAILY_PAGES_STATES: Table = state_table!(
    "report_daily_pages_states",
    "Spoor segmenter: per project, UTC day and path, the people who viewed the page (uniqExact state).",
    [path: "String"],
    [visitors: "People with a page view of the path that day"],
    "(project_id, day, path)"
);
pub const REPORT_DAILY_SOURCES_STATES: Table = state_table!(
    "report_daily_sources_states",
    "Spoor segmenter: per project, UTC day and source, the people with a session from it (uniqExact state).",
    [referrer_class: "LowCardinality(String)", referrer_domain: "String", utm_source: "String",
     utm_medium: "String", utm_campaign: "String"],
    [visitors: "People with a session from the source that day"],
    "(project_id, day, referrer_class, referrer_domain, utm_source, utm_medium, utm_campaign)"
);
pub const REPORT_DAILY_SEARCHES_STATES: Table = state_table!(
    "report_daily_searches_states",
    "Spoor segmenter: per project, UTC day and query, the people who searched it (uniqExact state).",
    [query: "String"],
    [searchers: "People who searched the query that day"],
    "(project_id, day, query)"
);

/// Tables added by migration 2.
pub const SEGMENTER_STATE_TABLES: &[Table] = &[
    REPORT_DAILY_STATES,
    REPORT_DAILY_PAGES_STATES,
    REPORT_DAILY_SOURCES_STATES,
    REPORT_DAILY_SEARCHES_STATES,
];

/// Every segmenter table, in creation order.
pub const SEGMENTER_TABLES: &[Table] = &[
    IDENTITY_MAP,
    IDENTITY_CHANGES,
    SESSIONS,
    ACTIVITY_DAILY,
    PROFILES_STATIC,
    PROFILES_DYNAMIC,
    SEGMENTS,
    SEGMENT_MEMBERS,
    SEGMENT_CHANGES,
    SEGMENTER_RUNS,
    REPORT_DAILY,
    REPORT_DAILY_PAGES,
    REPORT_DAILY_SOURCES,
    REPORT_DAILY_SEARCHES,
    REPORT_WEEKLY,
    REPORT_WEEKLY_PAGES,
    REPORT_WEEKLY_SOURCES,
    REPORT_WEEKLY_SEARCHES,
    REPORT_MONTHLY,
    REPORT_MONTHLY_PAGES,
    REPORT_MONTHLY_SOURCES,
    REPORT_MONTHLY_SEARCHES,
];

/// The name of the table that stores a table's rows: `<name>_local` in cluster mode (where
/// `ALTER`, `DELETE` and `TRUNCATE` must go), the table itself on a single server.
pub fn storage_name(table: &Table, layout: &Layout) -> String {
    match layout.cluster {
        Some(_) => format!("{}_local", table.name),
        None => table.name.to_owned(),
    }
}

/// The person id of a row with `anonymous_id` and `user_id` columns, given the resolved user
/// id of its anonymous id (`mapped`, empty when the anonymous id was never identified).
///
/// Identity rule: an event's own user id wins; else the user its anonymous id resolves to;
/// else the anonymous id itself, prefixed `anon:`.
pub fn person_id_sql(user_id: &str, mapped: &str, anonymous_id: &str) -> String {
    format!(
        "if({user_id} != '', {user_id}, if({mapped} != '', {mapped}, concat('anon:', {anonymous_id})))"
    )
}

/// The views: `person_activity`, `sessions_resolved`, `members`, `tickets`.
/// Rendered with `CREATE OR REPLACE VIEW`, so re-running a migration updates them.
pub fn view_statements(layout: &Layout) -> Vec<String> {
    let db = &layout.database;
    let oc = layout.on_cluster();
    vec![
        // Kept as names for data teams: person ids are stored on the rows themselves.
        format!(
            "CREATE OR REPLACE VIEW {db}.person_activity{oc} AS SELECT * FROM {db}.activity_daily"
        ),
        format!(
            "CREATE OR REPLACE VIEW {db}.sessions_resolved{oc} AS SELECT * FROM {db}.sessions"
        ),
        format!(
            "CREATE OR REPLACE VIEW {db}.members{oc} AS
SELECT project_id,
       user_id AS member_id,
       minIfOrNull(timestamp, name = 'member_signup') AS signup_at,
       if(maxIf(timestamp, name = 'level_changed') >= maxIf(timestamp, type = 'identify' AND JSONHas(traits, 'level')),
          argMaxIf(JSONExtractString(properties, 'level'), timestamp, name = 'level_changed'),
          argMaxIf(JSONExtractString(traits, 'level'), timestamp, type = 'identify' AND JSONHas(traits, 'level'))) AS level,
       toInt64(sumIf(JSONExtractInt(properties, 'points'), name = 'points_earned')) AS points_earned,
       toInt64(sumIf(JSONExtractInt(properties, 'points'), name = 'points_redeemed')) AS points_redeemed,
       points_earned - points_redeemed AS points_balance,
       countIf(name = 'member_signin') AS signins,
       maxIfOrNull(timestamp, name = 'member_signin') AS last_login_at,
       argMaxIf(JSONExtractString(traits, 'address', 'country'), timestamp, type = 'identify' AND JSONHas(traits, 'address')) AS country,
       argMaxIf(JSONExtractString(traits, 'address', 'region'), timestamp, type = 'identify' AND JSONHas(traits, 'address')) AS region,
       argMaxIf(JSONExtractString(traits, 'address', 'city'), timestamp, type = 'identify' AND JSONHas(traits, 'address')) AS city,
       argMaxIf(JSONExtractString(traits, 'address', 'postal_code'), timestamp, type = 'identify' AND JSONHas(traits, 'address')) AS postal_code,
       countIf(name = 'order_completed') AS orders,
       sumIf(JSONExtractFloat(properties, 'revenue'), name = 'order_completed') AS revenue
FROM {db}.events FINAL
WHERE user_id != '' AND NOT is_bot
  AND (type = 'identify' OR (type = 'track' AND name IN ('member_signup', 'member_signin', 'points_earned', 'points_redeemed', 'level_changed', 'order_completed')))
GROUP BY project_id, user_id
HAVING countIf(name IN ('member_signup', 'member_signin', 'points_earned', 'points_redeemed', 'level_changed')) > 0
    OR countIf(type = 'identify' AND (JSONHas(traits, 'level') OR JSONHas(traits, 'member_id'))) > 0"
        ),
        // No FINAL: a retried copy of an event (same event_id) changes none of these
        // aggregates (first/last times and values; replies are counted by event id), and FINAL
        // made every read merge the keys of every `track` event (0.36 s instead of 0.02 s on
        // the benchmark, three times per run).
        format!(
            "CREATE OR REPLACE VIEW {db}.tickets{oc} AS
SELECT project_id, ticket_id,
       argMinIf(user_id, timestamp, name = 'ticket_opened') AS user_id,
       argMinIf(JSONExtractString(properties, 'channel'), timestamp, name = 'ticket_opened') AS channel,
       argMinIf(JSONExtractString(properties, 'priority'), timestamp, name = 'ticket_opened') AS priority,
       argMinIf(JSONExtractString(properties, 'subject'), timestamp, name = 'ticket_opened') AS subject,
       minIfOrNull(timestamp, name = 'ticket_opened') AS opened_at,
       minIfOrNull(timestamp, name = 'ticket_replied' AND JSONExtractString(properties, 'by') = 'agent') AS first_response_at,
       maxIfOrNull(timestamp, name = 'ticket_resolved') AS resolved_at,
       multiIf(resolved_at IS NOT NULL AND maxIf(timestamp, name = 'ticket_replied' AND JSONExtractString(properties, 'by') = 'customer') <= resolved_at, 'resolved',
               resolved_at IS NOT NULL, 'reopened',
               first_response_at IS NOT NULL, 'answered',
               'open') AS status,
       dateDiff('millisecond', opened_at, first_response_at) / 1000 AS response_seconds,
       dateDiff('millisecond', opened_at, resolved_at) / 1000 AS resolution_seconds,
       argMaxIf(JSONExtractUInt(properties, 'score'), timestamp, name = 'ticket_rated') AS last_score,
       maxIfOrNull(timestamp, name = 'ticket_rated') AS rated_at,
       if(rated_at IS NULL, NULL, last_score) AS csat,
       uniqExactIf(event_id, name = 'ticket_replied') AS replies
FROM (
    SELECT project_id, event_id, user_id, name, timestamp, properties,
           JSONExtractString(properties, 'ticket_id') AS ticket_id
    FROM {db}.events
    WHERE type = 'track' AND name IN ('ticket_opened', 'ticket_replied', 'ticket_resolved', 'ticket_rated') AND NOT is_bot
)
WHERE ticket_id != ''
GROUP BY project_id, ticket_id"
        ),
    ]
}

/// The segmenter's migrations: every table and view above.
pub const SEGMENTER_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "create the segmenter's tables and views",
        statements: |layout| {
            let mut all: Vec<String> = SEGMENTER_TABLES
                .iter()
                .flat_map(|t| t.create_statements(layout, None))
                .collect();
            all.extend(view_statements(layout));
            all
        },
    },
    Migration {
        version: 2,
        name: "per-day distinct-people states for the weekly and monthly reports",
        statements: |layout| {
            SEGMENTER_STATE_TABLES
                .iter()
                .flat_map(|t| t.create_statements(layout, None))
                .collect()
        },
    },
    Migration {
        version: 3,
        name: "the people an incremental run recomputes, computed once per run",
        statements: |layout| TOUCHED_PEOPLE.create_statements(layout, None),
    },
    Migration {
        version: 4,
        name: "wide parts for the tables runs delete rows from",
        statements: |layout| modify_settings(WIDE_PART_TABLES.iter(), WIDE_PARTS, layout),
    },
    Migration {
        version: 5,
        name: "activity_daily partitioned by day (a re-aggregated day is a dropped partition)",
        statements: |layout| recreate_and_rebuild([&ACTIVITY_DAILY], layout),
    },
    Migration {
        version: 6,
        name: "working sets of a segment evaluation, so each rule runs once per run",
        statements: |layout| SEGMENT_SCRATCH.create_statements(layout, None),
    },
    Migration {
        version: 7,
        name: "the daily reports' per-person input, computed once per run",
        statements: |layout| REPORT_PEOPLE.create_statements(layout, None),
    },
    Migration {
        version: 8,
        name: "the first session in profiles_static, and which touched people's static profiles can have changed",
        statements: |layout| recreate_and_rebuild([&TOUCHED_PEOPLE, &PROFILES_STATIC], layout),
    },
    Migration {
        version: 9,
        name: "block number and offset columns, so runs delete through patch parts",
        statements: |layout| {
            let reports: Vec<Table> = Period::ALL.iter().flat_map(|p| p.tables()).collect();
            modify_settings(
                WIDE_PART_TABLES.iter().chain(&reports),
                BLOCK_COLUMNS,
                layout,
            )
        },
    },
    Migration {
        version: 10,
        name: "identities kept as a table by each run (it was a view over identity_map); tickets read without FINAL",
        statements: |layout| {
            let mut all = vec![format!(
                "DROP VIEW IF EXISTS {}.identities{}",
                layout.database,
                layout.on_cluster()
            )];
            all.extend(IDENTITIES.create_statements(layout, None));
            all.push(resolve_identities(layout, "1"));
            all.extend(view_statements(layout));
            all
        },
    },
    Migration {
        version: 11,
        name: "per-day report states hold 64-bit hashes of person ids",
        statements: |layout| recreate_and_rebuild(SEGMENTER_STATE_TABLES, layout),
    },
    Migration {
        version: 12,
        name: "staging for dynamic profiles recomputed for everyone",
        statements: |layout| PROFILES_DYNAMIC_NEXT.create_statements(layout, None),
    },
    Migration {
        version: 13,
        name: "identity_map rows name the run that wrote them",
        statements: |layout| {
            // The storage table, and in cluster mode the Distributed table over it too.
            let mut tables = vec![storage_name(&IDENTITY_MAP, layout)];
            if layout.cluster.is_some() {
                tables.push(IDENTITY_MAP.name.to_owned());
            }
            tables
                .iter()
                .map(|t| {
                    format!(
                        "ALTER TABLE {}.{t}{} ADD COLUMN IF NOT EXISTS run_id UInt64 COMMENT 'The run that wrote the row: one that saw the pair first, or earlier than before'",
                        layout.database,
                        layout.on_cluster()
                    )
                })
                .collect()
        },
    },
    Migration {
        version: 14,
        name: "staging for the days an incremental run re-aggregates",
        statements: |layout| ACTIVITY_DAILY_NEXT.create_statements(layout, None),
    },
    Migration {
        version: 15,
        name: "person_key on the tables keyed by person",
        statements: |layout| {
            let mut all = Vec::new();
            for table in PERSON_KEY_TABLES {
                let storage = storage_name(table, layout);
                // The storage table, and in cluster mode the Distributed table over it too.
                let mut names = vec![storage.clone()];
                if layout.cluster.is_some() {
                    names.push(table.name.to_owned());
                }
                for name in names {
                    all.push(format!(
                        "ALTER TABLE {}.{name}{} ADD COLUMN IF NOT EXISTS {}",
                        layout.database,
                        layout.on_cluster(),
                        PERSON_KEY.definition()
                    ));
                }
                // Existing parts get the column computed and written (a mutation).
                all.push(format!(
                    "ALTER TABLE {}.{storage}{} MATERIALIZE COLUMN person_key",
                    layout.database,
                    layout.on_cluster()
                ));
            }
            all
        },
    },
    Migration {
        version: 16,
        name: "the writer lease: one segmenter process at a time",
        statements: |layout| SEGMENTER_LEASE.create_statements(layout, None),
    },
];

/// Inserts into `identities` the resolution of the anonymous ids of `identity_map` that
/// `filter` selects (a condition on its `project_id` and `anonymous_id`, `1` for all).
pub fn resolve_identities(layout: &Layout, filter: &str) -> String {
    format!(
        "INSERT INTO {db}.identities (project_id, anonymous_id, user_id, identified_at)
SELECT project_id, anonymous_id, argMin(user_id, (identified_at, user_id)), min(identified_at)
FROM {db}.identity_map
WHERE {filter}
GROUP BY project_id, anonymous_id",
        db = layout.database
    )
}

/// Drops and creates `tables` anew (empty, with their current definition), then asks for a
/// full rebuild: what a migration does when a derived table's layout changes.
fn recreate_and_rebuild<'a>(
    tables: impl IntoIterator<Item = &'a Table>,
    layout: &Layout,
) -> Vec<String> {
    let mut all = Vec::new();
    for table in tables {
        all.extend(table.drop_statements(layout));
        all.extend(table.create_statements(layout, None));
    }
    all.push(request_rebuild(layout));
    all
}

/// `ALTER TABLE … MODIFY SETTING` of `settings` for each table (its storage table).
fn modify_settings<'a>(
    tables: impl Iterator<Item = &'a Table>,
    settings: &[&str],
    layout: &Layout,
) -> Vec<String> {
    tables
        .map(|t| {
            format!(
                "ALTER TABLE {}.{}{} MODIFY SETTING {}",
                layout.database,
                storage_name(t, layout),
                layout.on_cluster(),
                settings.join(", ")
            )
        })
        .collect()
}

/// The `mode` of a `segmenter_runs` row that asks for a full rebuild at the next run: what a
/// migration records (with [`request_rebuild`]) after it changed (and emptied) a derived table.
pub const REBUILD_REQUESTED: &str = "rebuild_requested";

pub fn request_rebuild(layout: &Layout) -> String {
    format!(
        "INSERT INTO {db}.segmenter_runs (run_id, mode, started_at, finished_at, as_of, watermark, config, new_events, affected_days)
         SELECT toUInt64(toUnixTimestamp64Milli(now64(3))), '{REBUILD_REQUESTED}', now64(3), now64(3), now64(3),
                toDateTime64(0, 3, 'UTC'), '', 0, 0",
        db = layout.database
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_person_key_expression_is_the_columns() {
        assert_eq!(
            PERSON_KEY.materialized,
            Some(person_key_of("project_id", "person_id").as_str())
        );
        for table in PERSON_KEY_TABLES {
            assert!(table.columns.contains(&PERSON_KEY), "{}", table.name);
            assert!(!table.insert_columns().contains("person_key"));
        }
    }

    #[test]
    fn table_names_are_unique_identifiers() {
        let mut names: Vec<_> = SEGMENTER_TABLES.iter().map(|t| t.name).collect();
        for name in &names {
            assert!(crate::is_identifier(name), "{name}");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SEGMENTER_TABLES.len());
    }

    #[test]
    fn cluster_ddl_is_on_cluster_everywhere() {
        let layout = Layout {
            database: "spoor".into(),
            cluster: Some("prod".into()),
        };
        let all = (SEGMENTER_MIGRATIONS[0].statements)(&layout);
        assert_eq!(all.len(), SEGMENTER_TABLES.len() * 2 + 4);
        for statement in &all {
            assert!(statement.contains(" ON CLUSTER prod"), "{statement}");
        }
        assert!(all.iter().any(|s| s.starts_with(
            "CREATE TABLE IF NOT EXISTS spoor.report_daily ON CLUSTER prod AS spoor.report_daily_local\nENGINE = Distributed(prod, spoor, report_daily_local, cityHash64(project_id))"
        )));
        assert!(all.iter().any(|s| s.contains(
            "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/spoor/profiles_static_local', '{replica}', version)"
        )));
        assert_eq!(storage_name(&SESSIONS, &layout), "sessions_local");
        assert_eq!(storage_name(&SESSIONS, &Layout::single("x")), "sessions");
    }

    #[test]
    fn single_server_ddl_has_no_cluster() {
        let all = (SEGMENTER_MIGRATIONS[0].statements)(&Layout::single("spoor"));
        assert_eq!(all.len(), SEGMENTER_TABLES.len() + 4);
        assert!(all.iter().all(|s| !s.contains("ON CLUSTER")));
        assert!(
            all.iter()
                .any(|s| s.starts_with("CREATE TABLE IF NOT EXISTS spoor.report_daily\n"))
        );
    }
}
