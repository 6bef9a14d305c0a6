//! From a request to rows: the spooled record of a request, and the pure function that turns
//! it into `events` and `events_rejected` rows.
//!
//! The spool stores the request as received ([`IngestRecord`]: compressed body plus what the
//! collector knew about the sender), not the rows. Replaying a record runs the same pure
//! [`decode_record`] + [`build_rows`] again, so a replayed batch yields the same rows, event
//! ids and rejections as the first pass.

use serde::Serialize;
use spoor_protocol::{DecodedBatch, Limits, parse_timestamp, validate_event};
use spoor_schema::{EventRow, RejectedRow};

use crate::body::{Encoding, decompress};
use crate::config::EnrichConfig;
use crate::enrich::{RequestContext, datetime, event_row, parse_user_agent};
use crate::error::ApiError;

/// Longest `raw` text kept in `events_rejected`.
pub const MAX_REJECTED_RAW: usize = 16 * 1024;

/// Who sent a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A public key, from a web page.
    Browser,
    /// A secret key, from a backend.
    Server,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Browser => "browser",
            Source::Server => "server",
        }
    }
}

/// One accepted request as the spool keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestRecord {
    pub received_at: i64,
    pub project_id: String,
    pub source: Source,
    /// The client IP in its stored (anonymised) form.
    pub ip: String,
    pub user_agent: String,
    pub encoding: Encoding,
    /// The body as received (still compressed).
    pub body: bytes::Bytes,
}

impl IngestRecord {
    /// A compact binary form for the spool.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            32 + self.project_id.len() + self.ip.len() + self.user_agent.len() + self.body.len(),
        );
        out.extend_from_slice(&self.received_at.to_le_bytes());
        out.push(match self.source {
            Source::Browser => 0,
            Source::Server => 1,
        });
        out.push(self.encoding.as_u8());
        for part in [
            self.project_id.as_bytes(),
            self.ip.as_bytes(),
            self.user_agent.as_bytes(),
            &self.body,
        ] {
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    pub fn decode(data: &[u8]) -> Option<IngestRecord> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let part = data.get(at..at.checked_add(n)?)?;
            at += n;
            Some(part)
        };
        let received_at = i64::from_le_bytes(take(8)?.try_into().ok()?);
        let source = match take(1)?[0] {
            0 => Source::Browser,
            1 => Source::Server,
            _ => return None,
        };
        let encoding = Encoding::from_u8(take(1)?[0])?;
        let mut parts = Vec::with_capacity(4);
        for _ in 0..4 {
            let len = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            parts.push(take(len)?.to_vec());
        }
        let body = bytes::Bytes::from(parts.pop()?);
        let user_agent = String::from_utf8(parts.pop()?).ok()?;
        let ip = String::from_utf8(parts.pop()?).ok()?;
        let project_id = String::from_utf8(parts.pop()?).ok()?;
        Some(IngestRecord {
            received_at,
            project_id,
            source,
            ip,
            user_agent,
            encoding,
            body,
        })
    }
}

/// An event the response tells the client not to retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RejectedEvent {
    /// The event's id as sent; empty when it could not be read.
    pub event_id: String,
    /// Stable code, e.g. `invalid_timestamp`.
    pub reason: String,
    pub message: String,
}

/// The rows one request produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ingested {
    pub rows: Vec<EventRow>,
    pub rejected: Vec<RejectedRow>,
    /// Rough size of the rows, for batching thresholds.
    pub approx_bytes: usize,
}

impl crate::spool::Weigh for Ingested {
    fn weight(&self) -> usize {
        self.approx_bytes + std::mem::size_of::<Self>()
    }
}

impl Ingested {
    /// The rejections as the HTTP response lists them.
    pub fn response_rejections(&self) -> Vec<RejectedEvent> {
        self.rejected
            .iter()
            .map(|r| RejectedEvent {
                event_id: r.event_id.clone(),
                reason: r.reason.clone(),
                message: r.message.clone(),
            })
            .collect()
    }
}

/// Decompresses and decodes a record's body (the envelope must be valid).
pub fn decode_record(
    encoding: Encoding,
    body: &[u8],
    limits: &Limits,
) -> Result<DecodedBatch, ApiError> {
    let text = decompress(body, encoding, limits.max_decompressed_bytes)?;
    spoor_protocol::decode_batch(&text, limits).map_err(|e| match e {
        spoor_protocol::DecodeError::TooManyEvents { .. } => ApiError::TooLarge(e.to_string()),
        other => ApiError::BadRequest(other.to_string()),
    })
}

/// The enrichment context of a record.
pub fn context_of(record: &IngestRecord, sent_at: &str) -> RequestContext {
    RequestContext {
        project_id: record.project_id.clone(),
        source: record.source.as_str(),
        received_at: record.received_at,
        sent_at: parse_timestamp(sent_at),
        ip: record.ip.clone(),
        user_agent: record.user_agent.clone(),
        ua: parse_user_agent(&record.user_agent),
    }
}

/// Validates and enriches every event of a decoded batch. Pure: the same inputs give the
/// same rows.
pub fn build_rows(
    decoded: DecodedBatch,
    ctx: &RequestContext,
    limits: &Limits,
    config: &EnrichConfig,
) -> Ingested {
    let mut out = Ingested {
        rows: Vec::with_capacity(decoded.events.len()),
        ..Ingested::default()
    };
    let received_at = datetime(ctx.received_at);
    let reject =
        |out: &mut Ingested, event_id: String, reason: &str, message: String, raw: String| {
            out.approx_bytes += raw.len().min(MAX_REJECTED_RAW) + message.len() + 64;
            out.rejected.push(RejectedRow {
                received_at,
                project_id: ctx.project_id.clone(),
                event_id,
                reason: reason.to_owned(),
                message,
                raw: cap(raw, MAX_REJECTED_RAW),
            });
        };
    for event in decoded.events {
        let mut event = match event {
            Ok(event) => event,
            Err(undecoded) => {
                reject(
                    &mut out,
                    undecoded.event_id.unwrap_or_default(),
                    undecoded.rejection.code(),
                    undecoded.rejection.to_string(),
                    undecoded.raw,
                );
                continue;
            }
        };
        if decoded.utf8_repaired {
            // The body was not valid UTF-8 and the protocol replaced the bad bytes with
            // U+FFFD. An event that holds a replacement is not what the client sent.
            let text = serde_json::to_string(&event).unwrap_or_default();
            if text.contains('\u{fffd}') {
                reject(
                    &mut out,
                    event.event_id.clone(),
                    "invalid_utf8",
                    "event contains bytes that are not valid UTF-8".into(),
                    text,
                );
                continue;
            }
        }
        match validate_event(&mut event, limits) {
            Ok(truncated) => {
                let row = event_row(event, truncated, ctx, config);
                out.approx_bytes += approx_row_bytes(&row);
                out.rows.push(row);
            }
            Err(rejection) => {
                let raw = serde_json::to_string(&event).unwrap_or_default();
                reject(
                    &mut out,
                    event.event_id.clone(),
                    rejection.code(),
                    rejection.to_string(),
                    raw,
                );
            }
        }
    }
    out
}

fn approx_row_bytes(row: &EventRow) -> usize {
    256 + row.url.len()
        + row.title.len()
        + row.referrer.len()
        + row.properties.len()
        + row.traits.len()
        + row.user_agent.len()
        + row.click_text.len()
        + row.click_selector.len()
        + row.click_href.len()
}

/// Cuts text to at most `max` bytes on a character boundary.
pub fn cap(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: &str) -> IngestRecord {
        IngestRecord {
            received_at: 1_795_255_200_000,
            project_id: "shop".into(),
            source: Source::Browser,
            ip: "203.0.113.0".into(),
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
                .into(),
            encoding: Encoding::Identity,
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn record_round_trips() {
        let r = record("{\"sent_at\":\"x\",\"events\":[]}");
        assert_eq!(IngestRecord::decode(&r.encode()), Some(r.clone()));
        let bytes = r.encode();
        for cut in 0..bytes.len() {
            assert_eq!(IngestRecord::decode(&bytes[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn builds_rows_and_rejections() {
        let body = r#"{"sent_at":"2026-11-21T10:00:00.000Z","events":[
            {"event_id":"0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e","type":"page_view","timestamp":"2026-11-21T09:59:59.000Z","anonymous_id":"a1",
             "page":{"url":"https://shop.example/?utm_source=nl&token=x","path":"/","referrer":"https://www.google.com/"}},
            {"event_id":"nope","type":"page_view","timestamp":"2026-11-21T10:00:00Z","anonymous_id":"a1","page":{"url":"u","path":"/"}},
            {"event_id":"1b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e","type":"teleport"}
        ]}"#;
        let r = record(body);
        let limits = Limits::default();
        let decoded = decode_record(r.encoding, &r.body, &limits).unwrap();
        let ctx = context_of(&r, &decoded.sent_at);
        let out = build_rows(decoded, &ctx, &limits, &EnrichConfig::default());
        assert_eq!(out.rows.len(), 1);
        let row = &out.rows[0];
        // Client clock is right (sent_at == received_at): timestamp is 1 s before receipt.
        assert_eq!(
            row.timestamp.unix_timestamp_nanos() / 1_000_000,
            1_795_255_199_000
        );
        assert_eq!(row.url, "https://shop.example/?utm_source=nl");
        assert_eq!(row.utm_source, "nl");
        assert_eq!(row.referrer_class, "search");
        assert_eq!(row.browser, "Firefox");
        assert_eq!(row.source, "browser");
        let reasons: Vec<_> = out
            .response_rejections()
            .into_iter()
            .map(|r| (r.event_id, r.reason))
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("nope".to_owned(), "invalid_event_id".to_owned()),
                (
                    "1b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e".to_owned(),
                    "malformed".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn repaired_utf8_events_are_rejected_alone() {
        let mut body = br#"{"sent_at":"2026-11-21T10:00:00.000Z","events":[
            {"event_id":"0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e","type":"page_view","timestamp":"2026-11-21T10:00:00Z","anonymous_id":"a1","page":{"url":"u","path":"/X"}},
            {"event_id":"1b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e","type":"page_view","timestamp":"2026-11-21T10:00:00Z","anonymous_id":"a1","page":{"url":"u","path":"/"}}
        ]}"#
        .to_vec();
        let at = body.iter().position(|&b| b == b'X').unwrap();
        body[at] = 0xff;
        let limits = Limits::default();
        let decoded = decode_record(Encoding::Identity, &body, &limits).unwrap();
        let r = record("");
        let ctx = context_of(&r, &decoded.sent_at);
        let out = build_rows(decoded, &ctx, &limits, &EnrichConfig::default());
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rejected[0].reason, "invalid_utf8");
        assert_eq!(
            out.rejected[0].event_id,
            "0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e"
        );
    }

    #[test]
    fn rejected_raw_is_capped_on_a_char_boundary() {
        assert_eq!(cap("ééé".into(), 3), "é");
        assert_eq!(cap("abc".into(), 10), "abc");
    }
}
