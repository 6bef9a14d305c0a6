//! The event queue: serialised events waiting for (or in) delivery, bounded (oldest dropped
//! and counted), cut into batches by count and bytes, written to and read from storage.

use std::collections::VecDeque;

use crate::json::{push_str_lit, push_u64};

/// Largest event accepted into the queue; the collector's per-event limit.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// What a browser lets `sendBeacon`/`fetch(keepalive)` carry.
pub const BEACON_BYTES: usize = 64 * 1024;
/// Room for the envelope (`{"v":1,"sent_at":…,"key":…,"dropped":…,"events":[]}`).
const ENVELOPE_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub json: String,
    /// The batch carrying it, 0 while it waits.
    pub batch: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Queue {
    items: VecDeque<Item>,
    max_items: usize,
    /// Events dropped because the queue was full or an event was too large, not yet
    /// reported to the collector.
    pub dropped: u32,
    /// Dropped-event counts reported in batches not yet delivered: (batch, count).
    reported: Vec<(u32, u32)>,
    /// Count and bytes of waiting events (kept up to date: `push` is on the hot path).
    waiting_n: usize,
    waiting_bytes: usize,
}

/// The `event_id` of a serialised event (the protocol puts it first).
pub fn event_id(json: &str) -> Option<&str> {
    let rest = json.strip_prefix("{\"event_id\":\"")?;
    rest.split_once('"').map(|(id, _)| id)
}

impl Queue {
    pub fn new(max_items: usize) -> Self {
        Queue {
            items: VecDeque::new(),
            max_items: max_items.max(1),
            dropped: 0,
            reported: Vec::new(),
            waiting_n: 0,
            waiting_bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds an event, dropping the oldest when full. Returns false when `json` itself was
    /// refused (too large, or without an id).
    pub fn push(&mut self, json: String) -> bool {
        let Some(id) = event_id(&json).map(String::from) else {
            self.dropped += 1;
            return false;
        };
        if json.len() > MAX_EVENT_BYTES {
            self.dropped += 1;
            return false;
        }
        while self.items.len() >= self.max_items {
            if let Some(old) = self.items.pop_front() {
                self.unwait(&old);
            }
            self.dropped += 1;
        }
        self.waiting_n += 1;
        self.waiting_bytes += json.len() + 1;
        self.items.push_back(Item { id, json, batch: 0 });
        true
    }

    fn unwait(&mut self, item: &Item) {
        if item.batch == 0 {
            self.waiting_n -= 1;
            self.waiting_bytes -= item.json.len() + 1;
        }
    }

    fn recount(&mut self) {
        let (n, b) = self
            .items
            .iter()
            .filter(|i| i.batch == 0)
            .fold((0, 0), |(n, b), i| (n + 1, b + i.json.len() + 1));
        self.waiting_n = n;
        self.waiting_bytes = b;
    }

    /// Number and bytes of waiting events.
    pub fn waiting(&self) -> (usize, usize) {
        (self.waiting_n, self.waiting_bytes)
    }

    /// Assigns the oldest waiting events to `batch` — at most `max_events`, and no more than
    /// `max_bytes` of body (but always at least one) — and returns the body.
    pub fn take(
        &mut self,
        batch: u32,
        max_events: usize,
        max_bytes: usize,
        sent_at: &str,
        key: Option<&str>,
    ) -> Option<String> {
        let budget = max_bytes.saturating_sub(ENVELOPE_BYTES);
        let mut body = String::new();
        let mut n = 0;
        for item in self.items.iter_mut().filter(|i| i.batch == 0) {
            if n == max_events || (n > 0 && body.len() + item.json.len() + 1 > budget) {
                break;
            }
            body.push(if n == 0 { '[' } else { ',' });
            body.push_str(&item.json);
            item.batch = batch;
            n += 1;
        }
        if n == 0 {
            return None;
        }
        self.recount();
        body.push(']');
        let dropped = std::mem::take(&mut self.dropped);
        if dropped > 0 {
            self.reported.push((batch, dropped));
        }
        Some(envelope(sent_at, key, dropped, &body))
    }

    /// The events of `batch` went back to waiting (to be retried in a later batch).
    pub fn release(&mut self, batch: u32) {
        for i in self.items.iter_mut().filter(|i| i.batch == batch) {
            i.batch = 0;
        }
        self.recount();
        // The batch did not arrive, so neither did its count of dropped events.
        for &(b, n) in &self.reported {
            if b == batch {
                self.dropped += n;
            }
        }
        self.reported.retain(|(b, _)| *b != batch);
    }

    /// Forgets the events of `batch` (delivered, or refused by the collector).
    pub fn remove_batch(&mut self, batch: u32) -> usize {
        let before = self.items.len();
        self.reported.retain(|(b, _)| *b != batch);
        self.items.retain(|i| i.batch != batch);
        before - self.items.len()
    }

    /// Events in `batch`.
    pub fn batch_len(&self, batch: u32) -> usize {
        self.items.iter().filter(|i| i.batch == batch).count()
    }

    /// Forgets everything (consent withdrawn).
    pub fn clear(&mut self) {
        self.items.clear();
        self.dropped = 0;
        self.reported.clear();
        self.recount();
    }

    /// Storage text: `saved_at` on the first line, then one event per line (JSON text has no
    /// raw newlines). `only_waiting`: leave out events handed to the network.
    pub fn save(&self, saved_at: u64, only_waiting: bool) -> String {
        let mut s = String::new();
        push_u64(&mut s, saved_at);
        for i in &self.items {
            if !only_waiting || i.batch == 0 {
                s.push('\n');
                s.push_str(&i.json);
            }
        }
        s
    }

    /// Adds the events of a [`Queue::save`] text (duplicates by id are skipped).
    pub fn restore(&mut self, text: &str) {
        for line in text.lines().skip(1) {
            let known = event_id(line).is_some_and(|id| self.items.iter().any(|i| i.id == id));
            if line.starts_with('{') && !known {
                self.push(line.into());
            }
        }
    }
}

/// When a saved queue was written (first line of [`Queue::save`]).
pub fn saved_at(text: &str) -> u64 {
    text.lines()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
}

/// The batch envelope, in the field order of `spoor_protocol::Batch`. `dropped` (events the
/// client lost since its last batch) is an extension the collector may ignore.
pub fn envelope(sent_at: &str, key: Option<&str>, dropped: u32, events_json: &str) -> String {
    let mut s = String::with_capacity(events_json.len() + 96);
    s.push_str("{\"v\":1,\"sent_at\":");
    push_str_lit(&mut s, sent_at);
    if let Some(k) = key {
        s.push_str(",\"key\":");
        push_str_lit(&mut s, k);
    }
    if dropped > 0 {
        s.push_str(",\"dropped\":");
        push_u64(&mut s, u64::from(dropped));
    }
    s.push_str(",\"events\":");
    s.push_str(events_json);
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, pad: usize) -> String {
        format!(
            r#"{{"event_id":"{id}","type":"track","name":"{}"}}"#,
            "x".repeat(pad)
        )
    }

    #[test]
    fn bounded_with_drop_counter() {
        let mut q = Queue::new(3);
        for i in 0..5 {
            assert!(q.push(ev(&i.to_string(), 0)));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped, 2);
        let body = q.take(1, 10, BEACON_BYTES, "t", None).unwrap();
        assert!(body.contains(r#""dropped":2"#), "{body}");
        assert!(body.contains(r#""event_id":"2""#) && !body.contains(r#""event_id":"1""#));
        assert_eq!(q.dropped, 0);
        // Oversized and id-less events are refused and counted.
        assert!(!q.push(ev("big", MAX_EVENT_BYTES)));
        assert!(!q.push("{}".into()));
        assert_eq!(q.dropped, 2);
    }

    #[test]
    fn batches_by_count_and_bytes() {
        let mut q = Queue::new(100);
        for i in 0..10 {
            q.push(ev(&i.to_string(), 1000));
        }
        assert_eq!(q.waiting().0, 10);
        let b1 = q.take(1, 4, BEACON_BYTES, "t", None).unwrap();
        assert_eq!(q.batch_len(1), 4);
        assert_eq!(b1.matches("event_id").count(), 4);
        let per = ev("9", 1000).len() + 1;
        let b2 = q.take(2, 100, 3 * per + ENVELOPE_BYTES, "t", None).unwrap();
        assert!(b2.len() <= 3 * per + ENVELOPE_BYTES, "{}", b2.len());
        assert_eq!(q.batch_len(2), 3);
        assert_eq!(q.waiting().0, 3);
        // Delivery removes, failure releases in order.
        assert_eq!(q.remove_batch(1), 4);
        q.release(2);
        assert_eq!(q.waiting().0, 6);
        let b3 = q.take(3, 1, BEACON_BYTES, "t", None).unwrap();
        assert!(
            b3.contains(r#""event_id":"4""#),
            "oldest first after a release"
        );
        // A single event larger than the byte budget still goes, alone.
        let mut q = Queue::new(10);
        q.push(ev("a", 5000));
        q.push(ev("b", 5000));
        assert!(q.take(1, 10, 1000, "t", None).is_some());
        assert_eq!(q.batch_len(1), 1);
        assert_eq!(Queue::new(1).take(1, 10, 1000, "t", None), None);
    }

    #[test]
    fn beacon_split_covers_everything_within_the_limit() {
        let mut q = Queue::new(1000);
        for i in 0..300 {
            q.push(ev(&i.to_string(), 700));
        }
        let mut total = 0;
        let mut batch = 1;
        while let Some(body) = q.take(
            batch,
            usize::MAX,
            BEACON_BYTES,
            "2026-01-01T00:00:00.000Z",
            Some("pk"),
        ) {
            assert!(body.len() <= BEACON_BYTES, "{}", body.len());
            total += q.batch_len(batch);
            batch += 1;
        }
        assert_eq!(total, 300);
        assert!(batch > 4);
    }

    #[test]
    fn envelope_is_a_protocol_batch() {
        let mut q = Queue::new(10);
        q.push(r#"{"event_id":"e1","type":"page_view","timestamp":"t","anonymous_id":"a"}"#.into());
        q.dropped = 3;
        let body = q
            .take(
                7,
                10,
                BEACON_BYTES,
                "2026-11-21T10:00:00.120Z",
                Some("pk_\"1"),
            )
            .unwrap();
        let b: spoor_protocol::Batch<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(b.key.as_deref(), Some("pk_\"1"));
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].event_id, "e1");
        let decoded =
            spoor_protocol::decode_batch(body.as_bytes(), &spoor_protocol::Limits::default())
                .unwrap();
        assert!(decoded.events[0].is_ok());
    }

    #[test]
    fn save_and_restore() {
        let mut q = Queue::new(10);
        q.push(ev("a", 0));
        q.push(ev("b", 0));
        q.take(1, 1, BEACON_BYTES, "t", None);
        let all = q.save(1234, false);
        assert_eq!(saved_at(&all), 1234);
        let mut r = Queue::new(10);
        r.restore(&all);
        assert_eq!(r.waiting().0, 2, "in-flight events come back as waiting");
        let waiting = q.save(1, true);
        let mut r = Queue::new(10);
        r.restore(&waiting);
        assert_eq!(r.len(), 1);
        r.restore(&waiting);
        assert_eq!(r.len(), 1, "restoring twice does not duplicate");
        assert_eq!(saved_at("junk"), 0);
        assert_eq!(event_id(r#"{"event_id":"x-1","a":1}"#), Some("x-1"));
    }
}
