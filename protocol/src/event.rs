//! The batch and event types. `J` is the type of the free-form JSON parts (`properties`,
//! `traits`): `serde_json::Value` in the collector, a preserved `JsValue` in the browser SDK.

use serde::{Deserialize, Serialize};

/// What the SDK sends in one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "J: Deserialize<'de>"))]
pub struct Batch<J> {
    /// Wire version; see [`crate::WIRE_VERSION`].
    #[serde(default = "default_version")]
    pub v: u32,
    /// When the client sent this batch (RFC 3339). The collector corrects clock skew with it.
    pub sent_at: String,
    /// The write key, for transports that cannot set a header (`sendBeacon`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub events: Vec<Event<J>>,
    /// Events the client had to drop before sending (its queue was full); reported so that
    /// losses are visible in the collector's metrics instead of silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u32>,
}

fn default_version() -> u32 {
    crate::WIRE_VERSION
}

/// The kinds of event Spoor knows. The wire name is the snake_case variant name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PageView,
    PageLeave,
    Click,
    Search,
    SessionStart,
    Identify,
    Track,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::PageView,
        EventType::PageLeave,
        EventType::Click,
        EventType::Search,
        EventType::SessionStart,
        EventType::Identify,
        EventType::Track,
    ];

    /// The wire name, also stored in ClickHouse's `events.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PageView => "page_view",
            EventType::PageLeave => "page_leave",
            EventType::Click => "click",
            EventType::Search => "search",
            EventType::SessionStart => "session_start",
            EventType::Identify => "identify",
            EventType::Track => "track",
        }
    }
}

/// One captured event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "J: Deserialize<'de>"))]
pub struct Event<J> {
    /// UUID made once on the client and kept across retries.
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The event name, required for `track` (e.g. `order_completed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// When it happened, by the client's clock (RFC 3339).
    pub timestamp: String,
    /// The browser's (or device's) persistent anonymous id.
    pub anonymous_id: String,
    /// The known user id, once `identify` has been called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub click: Option<Click>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leave: Option<PageLeave>,
    /// Free-form event properties (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<J>,
    /// User traits sent with `identify` (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traits: Option<J>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
}

/// The session an event belongs to, as the SDK tracks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    /// 1 for the visitor's first session, then counting up.
    pub index: u32,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
}

/// The page an event happened on.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Page {
    pub url: String,
    pub path: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub referrer: String,
}

/// An autocaptured click.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Click {
    pub tag: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// A stable CSS selector for the element.
    #[serde(default)]
    pub selector: String,
    /// The link leaves the site.
    #[serde(default)]
    pub outbound: bool,
    /// The link points to a file download.
    #[serde(default)]
    pub download: bool,
}

/// A site search.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Search {
    pub query: String,
    /// Number of results, when the page tells.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results_count: Option<u32>,
    /// How it was detected: `url`, `form` or `api`.
    #[serde(default)]
    pub source: String,
}

/// What a `page_leave` reports about the visit to a page.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageLeave {
    /// Time the page was visible and recently interacted with.
    pub engaged_ms: u64,
    /// Deepest scroll reached, 0–100.
    pub max_scroll_pct: u8,
}

/// The client environment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Context {
    #[serde(default)]
    pub locale: String,
    /// IANA time zone, e.g. `Europe/Berlin`.
    #[serde(default)]
    pub tz: String,
    #[serde(default)]
    pub screen_w: u32,
    #[serde(default)]
    pub screen_h: u32,
    #[serde(default)]
    pub viewport_w: u32,
    #[serde(default)]
    pub viewport_h: u32,
    /// The sending library and its version, e.g. `spoor-wasm/0.1.0`.
    #[serde(default)]
    pub lib: String,
}
