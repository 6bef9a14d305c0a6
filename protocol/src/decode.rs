//! Decoding a JSON batch so that one bad event never costs the others.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{JsonEvent, Limits, Rejection, WIRE_VERSION};

/// Why a whole request body could not be read as a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The body is not a JSON batch object.
    NotABatch(String),
    /// The batch declares a wire version this collector does not speak.
    UnsupportedVersion(u32),
    /// More events than [`Limits::max_events_per_batch`].
    TooManyEvents { count: usize, max: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::NotABatch(why) => write!(
                f,
                "body is not a Spoor batch ({{\"sent_at\": …, \"events\": [...]}}): {why}"
            ),
            DecodeError::UnsupportedVersion(v) => write!(
                f,
                "batch wire version {v} is not supported; this collector speaks version {WIRE_VERSION}"
            ),
            DecodeError::TooManyEvents { count, max } => {
                write!(
                    f,
                    "batch has {count} events; at most {max} are allowed per batch"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// One event that could not be decoded, kept so it can be stored in `events_rejected`.
#[derive(Debug, Clone, PartialEq)]
pub struct UndecodedEvent {
    /// The event's id, when it could be read.
    pub event_id: Option<String>,
    pub rejection: Rejection,
    /// The raw JSON text of the event.
    pub raw: String,
}

/// A batch whose envelope was readable. Each event decoded on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedBatch {
    pub sent_at: String,
    pub key: Option<String>,
    /// The body was not valid UTF-8 and invalid sequences were replaced with U+FFFD.
    pub utf8_repaired: bool,
    /// Events the client reports it dropped before sending.
    pub dropped: u32,
    pub events: Vec<Result<JsonEvent, UndecodedEvent>>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default = "wire_version")]
    v: u32,
    sent_at: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
    #[serde(default)]
    dropped: Option<u32>,
}

fn wire_version() -> u32 {
    WIRE_VERSION
}

/// Reads a batch body. The envelope must be valid; each event is decoded separately, so a
/// malformed or oversized event becomes an [`UndecodedEvent`] and its neighbours survive.
pub fn decode_batch(body: &[u8], limits: &Limits) -> Result<DecodedBatch, DecodeError> {
    let (text, utf8_repaired) = match std::str::from_utf8(body) {
        Ok(text) => (std::borrow::Cow::Borrowed(text), false),
        Err(_) => (String::from_utf8_lossy(body), true),
    };
    let envelope: Envelope<'_> =
        serde_json::from_str(&text).map_err(|e| DecodeError::NotABatch(e.to_string()))?;
    if envelope.v != WIRE_VERSION {
        return Err(DecodeError::UnsupportedVersion(envelope.v));
    }
    if envelope.events.len() > limits.max_events_per_batch {
        return Err(DecodeError::TooManyEvents {
            count: envelope.events.len(),
            max: limits.max_events_per_batch,
        });
    }
    let events = envelope
        .events
        .iter()
        .map(|raw| decode_event(raw.get(), limits))
        .collect();
    Ok(DecodedBatch {
        sent_at: envelope.sent_at,
        key: envelope.key,
        utf8_repaired,
        dropped: envelope.dropped.unwrap_or(0),
        events,
    })
}

fn decode_event(raw: &str, limits: &Limits) -> Result<JsonEvent, UndecodedEvent> {
    let reject = |rejection| UndecodedEvent {
        event_id: event_id_of(raw),
        rejection,
        raw: raw.to_owned(),
    };
    if raw.len() > limits.max_event_bytes {
        return Err(reject(Rejection::EventTooLarge {
            bytes: raw.len(),
            max: limits.max_event_bytes,
        }));
    }
    serde_json::from_str(raw).map_err(|e| reject(Rejection::Malformed(e.to_string())))
}

/// Best effort: the `event_id` of an event that failed to decode.
fn event_id_of(raw: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        event_id: String,
    }
    serde_json::from_str::<IdOnly>(raw).ok().map(|e| e.event_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventType;

    const GOOD: &str = r#"{"event_id":"0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e","type":"page_view","timestamp":"2026-11-21T10:00:00.100Z","anonymous_id":"a1","page":{"url":"https://x.example/","path":"/"}}"#;

    fn batch(events: &[&str]) -> String {
        format!(
            r#"{{"sent_at":"2026-11-21T10:00:00.120Z","events":[{}]}}"#,
            events.join(",")
        )
    }

    #[test]
    fn decodes_a_good_batch() {
        let decoded = decode_batch(batch(&[GOOD]).as_bytes(), &Limits::default()).unwrap();
        assert_eq!(decoded.sent_at, "2026-11-21T10:00:00.120Z");
        assert!(!decoded.utf8_repaired);
        let event = decoded.events[0].as_ref().unwrap();
        assert_eq!(event.kind, EventType::PageView);
        assert_eq!(event.page.as_ref().unwrap().path, "/");
    }

    #[test]
    fn one_bad_event_keeps_its_neighbours() {
        let bad = r#"{"event_id":"e-bad","type":"teleport","timestamp":"x","anonymous_id":"a"}"#;
        let decoded =
            decode_batch(batch(&[GOOD, bad, GOOD]).as_bytes(), &Limits::default()).unwrap();
        assert!(decoded.events[0].is_ok());
        assert!(decoded.events[2].is_ok());
        let undecoded = decoded.events[1].as_ref().unwrap_err();
        assert_eq!(undecoded.event_id.as_deref(), Some("e-bad"));
        assert_eq!(undecoded.raw, bad);
        assert_eq!(undecoded.rejection.code(), "malformed");
    }

    #[test]
    fn oversized_event_is_rejected_alone() {
        let limits = Limits {
            max_event_bytes: 100,
            ..Limits::default()
        };
        let decoded = decode_batch(batch(&[GOOD]).as_bytes(), &limits).unwrap();
        assert_eq!(
            decoded.events[0].as_ref().unwrap_err().rejection.code(),
            "event_too_large"
        );
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let newer = GOOD.replace(
            r#""anonymous_id""#,
            r#""from_the_future":[1,2],"anonymous_id""#,
        );
        let decoded = decode_batch(batch(&[&newer]).as_bytes(), &Limits::default()).unwrap();
        assert!(decoded.events[0].is_ok());
    }

    #[test]
    fn envelope_errors() {
        let limits = Limits {
            max_events_per_batch: 2,
            ..Limits::default()
        };
        let cases: &[(&str, &str)] = &[
            ("", "not a Spoor batch"),
            ("[]", "not a Spoor batch"),
            (r#"{"events":[]}"#, "missing field `sent_at`"),
            (
                r#"{"v":2,"sent_at":"x","events":[]}"#,
                "version 2 is not supported",
            ),
            (&batch(&[GOOD, GOOD, GOOD]), "3 events; at most 2"),
        ];
        for (body, expected) in cases {
            let err = decode_batch(body.as_bytes(), &limits)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(expected),
                "{body:?}: {err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_repaired_not_refused() {
        let mut body = batch(&[GOOD]).into_bytes();
        let at = body.windows(5).position(|w| w == b"\"/\"}}").unwrap() + 1;
        body.insert(at, 0xff);
        let decoded = decode_batch(&body, &Limits::default()).unwrap();
        assert!(decoded.utf8_repaired);
        assert_eq!(
            decoded.events[0]
                .as_ref()
                .unwrap()
                .page
                .as_ref()
                .unwrap()
                .path,
            "\u{fffd}/"
        );
    }
}
