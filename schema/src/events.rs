//! The ingestion tables: `events` and `events_rejected`, and their row types.

use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Engine, Table, col};

/// Every accepted event, one row each.
///
/// Exact counts: a retried event (same `event_id`) may be stored twice until ClickHouse merges
/// the parts; the sorting key ends with `event_id`, so `ReplacingMergeTree` collapses the copies,
/// keeping the one received last (an updated `page_leave` supersedes the earlier one).
/// Readers that need exact numbers use `FROM events FINAL`, or count `uniqExact(event_id)`.
pub const EVENTS: Table = Table {
    name: "events",
    comment: "Spoor: every accepted event, one row each. Retried events share event_id; use FINAL or uniqExact(event_id) for exact counts.",
    columns: &[
        col!(
            project_id,
            "LowCardinality(String)",
            "Project the write key belongs to"
        ),
        col!(
            event_id,
            "UUID",
            "Made once on the client, kept across retries"
        ),
        col!(
            type,
            "LowCardinality(String)",
            "page_view, page_leave, click, search, session_start, identify or track"
        ),
        col!(
            name,
            "LowCardinality(String)",
            "Event name for track events (e.g. order_completed), empty otherwise"
        ),
        col!(
            timestamp,
            "DateTime64(3, 'UTC')",
            "When it happened: received_at corrected by the client's clock offset (timestamp - sent_at)"
        ),
        col!(
            client_timestamp,
            "DateTime64(3, 'UTC')",
            "When it happened by the client's own clock"
        ),
        col!(
            sent_at,
            "DateTime64(3, 'UTC')",
            "When the client sent the batch, by the client's clock"
        ),
        col!(
            received_at,
            "DateTime64(3, 'UTC')",
            "When the collector received the batch"
        ),
        col!(
            timestamp_clamped,
            "Bool",
            "The corrected timestamp was absurd (far future or past) and was clamped"
        ),
        col!(
            anonymous_id,
            "String",
            "Persistent anonymous id of the browser or device"
        ),
        col!(
            user_id,
            "String",
            "Known user id after identify, empty before"
        ),
        col!(session_id, "String", "Session id from the SDK"),
        col!(
            session_index,
            "UInt32",
            "1 for the visitor's first session, counting up"
        ),
        col!(
            session_started_at,
            "DateTime64(3, 'UTC')",
            "When the session started, by the client's clock"
        ),
        col!(
            previous_session_id,
            "String",
            "The visitor's previous session id, if any"
        ),
        col!(
            url,
            "String",
            "Page URL with sensitive query parameters scrubbed"
        ),
        col!(path, "String", "Page path"),
        col!(title, "String", "Page title"),
        col!(referrer, "String", "Referrer URL"),
        col!(referrer_domain, "LowCardinality(String)", "Referrer host"),
        col!(
            referrer_class,
            "LowCardinality(String)",
            "direct, search, social, email, internal or other"
        ),
        col!(
            utm_source,
            "LowCardinality(String)",
            "utm_source from the page URL"
        ),
        col!(
            utm_medium,
            "LowCardinality(String)",
            "utm_medium from the page URL"
        ),
        col!(
            utm_campaign,
            "LowCardinality(String)",
            "utm_campaign from the page URL"
        ),
        col!(utm_term, "String", "utm_term from the page URL"),
        col!(utm_content, "String", "utm_content from the page URL"),
        col!(
            click_tag,
            "LowCardinality(String)",
            "Clicked element's tag (click events)"
        ),
        col!(click_text, "String", "Clicked element's trimmed text"),
        col!(click_href, "String", "Link target of the clicked element"),
        col!(
            click_selector,
            "String",
            "Stable CSS selector of the clicked element"
        ),
        col!(click_outbound, "Bool", "The clicked link leaves the site"),
        col!(
            click_download,
            "Bool",
            "The clicked link is a file download"
        ),
        col!(search_query, "String", "Site search query (search events)"),
        col!(
            search_results_count,
            "Nullable(UInt32)",
            "Number of search results, when the page tells"
        ),
        col!(
            search_source,
            "LowCardinality(String)",
            "How the search was detected: url, form or api"
        ),
        col!(
            engaged_ms,
            "UInt64",
            "Engaged time on the page in ms (page_leave events)"
        ),
        col!(
            max_scroll_pct,
            "UInt8",
            "Deepest scroll reached, 0-100 (page_leave events)"
        ),
        col!(
            properties,
            "String",
            "Event properties as a JSON object; query with JSONExtract*(properties, 'key')"
        ),
        col!(
            traits,
            "String",
            "User traits from identify as a JSON object"
        ),
        col!(locale, "LowCardinality(String)", "Browser locale"),
        col!(
            timezone,
            "LowCardinality(String)",
            "IANA time zone of the browser"
        ),
        col!(screen_w, "UInt16", "Screen width in CSS pixels"),
        col!(screen_h, "UInt16", "Screen height in CSS pixels"),
        col!(viewport_w, "UInt16", "Viewport width in CSS pixels"),
        col!(viewport_h, "UInt16", "Viewport height in CSS pixels"),
        col!(lib, "LowCardinality(String)", "Sending library and version"),
        col!(
            ip,
            "String",
            "Client IP, anonymised by default (IPv4 /24, IPv6 /48)"
        ),
        col!(user_agent, "String", "User-Agent header"),
        col!(
            browser,
            "LowCardinality(String)",
            "Browser family parsed from the user agent"
        ),
        col!(
            browser_version,
            "LowCardinality(String)",
            "Browser major version"
        ),
        col!(os, "LowCardinality(String)", "Operating system"),
        col!(
            os_version,
            "LowCardinality(String)",
            "Operating system version"
        ),
        col!(
            device_class,
            "LowCardinality(String)",
            "desktop, mobile, tablet, bot or other"
        ),
        col!(is_bot, "Bool", "The user agent is a known bot or crawler"),
        col!(
            source,
            "LowCardinality(String)",
            "browser (public key) or server (secret key)"
        ),
        col!(
            truncated,
            "Bool",
            "Some string field was longer than the limit and was truncated"
        ),
    ],
    // Copies of one event collapse to the one received last: a retry is identical, and a
    // page_leave re-sent with more engaged time (same event_id) supersedes the earlier one.
    engine: Engine::ReplacingMergeTree {
        version: Some("received_at"),
    },
    partition_by: Some("toYYYYMM(timestamp)"),
    order_by: "(project_id, toDate(timestamp), type, event_id)",
    sharding_key: "cityHash64(project_id, anonymous_id)",
    settings: &["non_replicated_deduplication_window = 10000"],
};

/// Events that could not be stored as events, with the reason and the raw text.
pub const EVENTS_REJECTED: Table = Table {
    name: "events_rejected",
    comment: "Spoor: events the collector refused, with the reason and the raw event (capped). Nothing is dropped silently.",
    columns: &[
        col!(
            received_at,
            "DateTime64(3, 'UTC')",
            "When the collector received the event"
        ),
        col!(
            project_id,
            "LowCardinality(String)",
            "Project the write key belongs to"
        ),
        col!(
            event_id,
            "String",
            "The event's id as sent, if it could be read"
        ),
        col!(
            reason,
            "LowCardinality(String)",
            "Stable rejection code, e.g. malformed, invalid_timestamp"
        ),
        col!(message, "String", "What was wrong, in words"),
        col!(raw, "String", "The event as received, capped in length"),
    ],
    engine: Engine::MergeTree,
    partition_by: Some("toYYYYMM(received_at)"),
    order_by: "(project_id, received_at)",
    sharding_key: "rand()",
    settings: &["non_replicated_deduplication_window = 10000"],
};

/// One row of `events`; the field order is the column order of [`EVENTS`].
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct EventRow {
    pub project_id: String,
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub timestamp: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub client_timestamp: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub sent_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub received_at: OffsetDateTime,
    pub timestamp_clamped: bool,
    pub anonymous_id: String,
    pub user_id: String,
    pub session_id: String,
    pub session_index: u32,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub session_started_at: OffsetDateTime,
    pub previous_session_id: String,
    pub url: String,
    pub path: String,
    pub title: String,
    pub referrer: String,
    pub referrer_domain: String,
    pub referrer_class: String,
    pub utm_source: String,
    pub utm_medium: String,
    pub utm_campaign: String,
    pub utm_term: String,
    pub utm_content: String,
    pub click_tag: String,
    pub click_text: String,
    pub click_href: String,
    pub click_selector: String,
    pub click_outbound: bool,
    pub click_download: bool,
    pub search_query: String,
    pub search_results_count: Option<u32>,
    pub search_source: String,
    pub engaged_ms: u64,
    pub max_scroll_pct: u8,
    pub properties: String,
    pub traits: String,
    pub locale: String,
    pub timezone: String,
    pub screen_w: u16,
    pub screen_h: u16,
    pub viewport_w: u16,
    pub viewport_h: u16,
    pub lib: String,
    pub ip: String,
    pub user_agent: String,
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    pub device_class: String,
    pub is_bot: bool,
    pub source: String,
    pub truncated: bool,
}

impl EventRow {
    /// A row with every field empty, to be filled in: handy for builders and test fixtures.
    pub fn empty(project_id: &str, event_id: Uuid, kind: &str, at: OffsetDateTime) -> EventRow {
        EventRow {
            project_id: project_id.to_owned(),
            event_id,
            kind: kind.to_owned(),
            name: String::new(),
            timestamp: at,
            client_timestamp: at,
            sent_at: at,
            received_at: at,
            timestamp_clamped: false,
            anonymous_id: String::new(),
            user_id: String::new(),
            session_id: String::new(),
            session_index: 0,
            session_started_at: at,
            previous_session_id: String::new(),
            url: String::new(),
            path: String::new(),
            title: String::new(),
            referrer: String::new(),
            referrer_domain: String::new(),
            referrer_class: String::new(),
            utm_source: String::new(),
            utm_medium: String::new(),
            utm_campaign: String::new(),
            utm_term: String::new(),
            utm_content: String::new(),
            click_tag: String::new(),
            click_text: String::new(),
            click_href: String::new(),
            click_selector: String::new(),
            click_outbound: false,
            click_download: false,
            search_query: String::new(),
            search_results_count: None,
            search_source: String::new(),
            engaged_ms: 0,
            max_scroll_pct: 0,
            properties: "{}".to_owned(),
            traits: "{}".to_owned(),
            locale: String::new(),
            timezone: String::new(),
            screen_w: 0,
            screen_h: 0,
            viewport_w: 0,
            viewport_h: 0,
            lib: String::new(),
            ip: String::new(),
            user_agent: String::new(),
            browser: String::new(),
            browser_version: String::new(),
            os: String::new(),
            os_version: String::new(),
            device_class: String::new(),
            is_bot: false,
            source: String::new(),
            truncated: false,
        }
    }
}

/// One row of `events_rejected`.
#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
pub struct RejectedRow {
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    pub received_at: OffsetDateTime,
    pub project_id: String,
    pub event_id: String,
    pub reason: String,
    pub message: String,
    pub raw: String,
}
