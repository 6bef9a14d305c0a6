//! Spoor's wire protocol: what the browser SDK (and any backend source) sends to the collector.
//!
//! Architecture invariant: this crate does no I/O and compiles for `wasm32-unknown-unknown` and
//! native targets. The SDK builds it with `default-features = false`, which leaves out JSON
//! decoding and validation so that neither `serde_json` nor `time` reaches the wasm binary.
//!
//! # Wire format, version 1
//!
//! `POST /v1/batch` with a JSON body, compressed or not: `Content-Encoding: gzip` or `deflate`,
//! or, from browsers (which cannot set that header without a CORS preflight), a gzip body with
//! the query parameter `compression=gzip` and no `Content-Type` or `text/plain` (either keeps
//! the request CORS-simple; the Spoor SDK sends the body as bytes, without one):
//!
//! ```json
//! {
//!   "v": 1,
//!   "sent_at": "2026-11-21T10:00:00.120Z",
//!   "events": [
//!     {
//!       "event_id": "0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e",
//!       "type": "page_view",
//!       "timestamp": "2026-11-21T10:00:00.100Z",
//!       "anonymous_id": "a-5f2c…",
//!       "session": { "id": "s-…", "index": 1, "started_at": "2026-11-21T10:00:00.100Z" },
//!       "page": { "url": "https://shop.example/?q=shoes", "path": "/", "title": "Shop", "referrer": "" },
//!       "context": { "locale": "en-GB", "tz": "Europe/London", "screen_w": 1920, "screen_h": 1080 }
//!     }
//!   ]
//! }
//! ```
//!
//! * `v` — wire version; absent means 1. A collector rejects versions it does not know.
//! * `key` — the write key, for transports that cannot set headers (`navigator.sendBeacon`).
//!   The `X-Spoor-Key` header or the `key` query parameter are preferred.
//! * `dropped` — how many events the client lost before sending (its queue was full).
//! * Timestamps are RFC 3339 strings in UTC with millisecond precision.
//! * `event_id` is a UUID made once on the client and kept across retries: the collector and
//!   ClickHouse use it to count a retried event once.
//! * Each event type carries its own sub-object: `page_view` → `page`; `page_leave` → `leave`
//!   (and `page`); `click` → `click`; `search` → `search`; `track` → `name`; `identify` →
//!   `user_id` (+ `traits`); `session_start` → `session`.
//! * `properties` and `traits` are free JSON objects.
//! * Unknown fields are ignored, so newer SDKs can talk to older collectors.

pub mod conventions;
mod event;
mod limits;

#[cfg(feature = "json")]
mod decode;
#[cfg(feature = "json")]
mod validate;

pub use event::{Batch, Click, Context, Event, EventType, Page, PageLeave, Search, Session};
pub use limits::Limits;

#[cfg(feature = "json")]
pub use decode::{DecodeError, DecodedBatch, UndecodedEvent, decode_batch};
#[cfg(feature = "json")]
pub use validate::{Rejection, UnixMillis, parse_timestamp, validate_event};

/// The wire version this crate speaks.
pub const WIRE_VERSION: u32 = 1;

/// An event whose free-form parts are JSON values, as the collector decodes it.
#[cfg(feature = "json")]
pub type JsonEvent = Event<serde_json::Value>;

/// A batch of [`JsonEvent`]s.
#[cfg(feature = "json")]
pub type JsonBatch = Batch<serde_json::Value>;
