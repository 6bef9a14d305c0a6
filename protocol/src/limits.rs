//! Size limits a collector enforces. Defaults follow DESIGN.md; every one is configurable.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body as sent (compressed), in bytes.
    pub max_body_bytes: usize,
    /// Largest request body after decompression, in bytes.
    pub max_decompressed_bytes: usize,
    /// Most events in one batch.
    pub max_events_per_batch: usize,
    /// Largest single event, serialised, in bytes.
    pub max_event_bytes: usize,
    /// Longest string field; longer strings are truncated (and the event flagged).
    pub max_string_bytes: usize,
    /// Longest id (`anonymous_id`, `user_id`, session id); longer ids are rejected, since a
    /// truncated id would silently merge different people.
    pub max_id_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_decompressed_bytes: 8 * 1024 * 1024,
            max_events_per_batch: 500,
            max_event_bytes: 32 * 1024,
            max_string_bytes: 4096,
            max_id_bytes: 200,
        }
    }
}
