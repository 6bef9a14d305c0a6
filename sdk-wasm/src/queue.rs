//! The event queue: serialised events waiting for (or in) delivery, bounded (oldest dropped
//! and counted), cut into batches by count and bytes, written to and read from storage.
//!
//! Every event has a sequence number, fresh whenever its text changes, so that a batch
//! compressed ahead of time can tell whether it still holds exactly the events waiting at
//! the front of the queue ([`Queue::front_is`]).

use alloc::string::String;
use alloc::vec::Vec;

use crate::json::push_u64;
use crate::text::{cut, int, pieces};

/// Largest event accepted into the queue; the collector's per-event limit.
pub const MAX_EVENT_BYTES: usize = 32 * 1024;
/// What a browser lets `sendBeacon`/`fetch(keepalive)` carry.
pub const BEACON_BYTES: usize = 64 * 1024;
/// Room for the envelope (`{"v":1,"sent_at":…,"key":…,"dropped":…,"events":[]}`) and, for
/// gzip bodies, the gzip framing around it.
pub const ENVELOPE_BYTES: usize = 512;
/// The batch of events handed to the network while the collector looked healthy, with no
/// answer yet (beacons at unload): kept until the next answer tells whether they arrived.
pub const HELD: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub json: String,
    /// The batch carrying it, 0 while it waits.
    pub batch: u32,
    pub seq: u32,
}

#[derive(Debug, Clone, Default)]
pub struct Queue {
    items: Vec<Item>,
    max_items: usize,
    /// Events dropped because the queue was full or an event was too large, not yet
    /// reported to the collector.
    pub dropped: u32,
    /// Dropped-event counts reported in batches not yet delivered: (batch, count).
    reported: Vec<(u32, u32)>,
    seq: u32,
    /// Count and bytes of waiting events (kept up to date: `push` is on the hot path).
    waiting_n: usize,
    waiting_bytes: usize,
}

/// The `event_id` of a serialised event (the tracker writes it first).
pub fn event_id(json: &str) -> Option<&str> {
    let rest = json.strip_prefix("{\"event_id\":\"")?;
    cut(rest, b'"').map(|(id, _)| id)
}

impl Queue {
    pub fn new(max_items: usize) -> Self {
        Queue {
            max_items: max_items.max(1),
            ..Queue::default()
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// Adds an event, dropping the oldest when full. Returns false when `json` itself was
    /// refused (too large, or without an id).
    pub fn push(&mut self, json: String) -> bool {
        if event_id(&json).is_none() || json.len() > MAX_EVENT_BYTES {
            self.dropped += 1;
            return false;
        }
        let excess = (self.items.len() + 1).saturating_sub(self.max_items);
        if excess > 0 {
            let mut n = 0;
            self.items.retain(|_| {
                n += 1;
                n > excess
            });
            self.dropped += excess as u32;
            self.recount();
        }
        self.waiting_n += 1;
        self.waiting_bytes += json.len() + 1;
        let seq = self.next_seq();
        self.items.push(Item {
            json,
            batch: 0,
            seq,
        });
        true
    }

    /// Adds an event, or replaces the waiting event with the same id (a newer version of
    /// it, e.g. a cumulative `page_leave`).
    pub fn put(&mut self, json: String) -> bool {
        let seq = self.next_seq();
        let id = event_id(&json);
        let old = self
            .items
            .iter_mut()
            .find(|i| i.batch == 0 && id.is_some() && event_id(&i.json) == id);
        match old {
            Some(item) if json.len() <= MAX_EVENT_BYTES => {
                item.json = json;
                item.seq = seq;
                self.recount();
                true
            }
            _ => self.push(json),
        }
    }

    fn recount(&mut self) {
        let (n, b) = self
            .waiting_items()
            .fold((0, 0), |(n, b), i| (n + 1, b + i.json.len() + 1));
        self.waiting_n = n;
        self.waiting_bytes = b;
    }

    fn waiting_items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.batch == 0)
    }

    /// Number and bytes of waiting events.
    pub fn waiting(&self) -> (usize, usize) {
        (self.waiting_n, self.waiting_bytes)
    }

    /// The oldest waiting events a batch of at most `max_events` and `max_bytes` of body
    /// takes — at least one when `force_one` (a lone event larger than the budget still goes).
    fn front(
        &self,
        max_events: usize,
        max_bytes: usize,
        force_one: bool,
    ) -> impl Iterator<Item = &Item> {
        let budget = max_bytes.saturating_sub(ENVELOPE_BYTES);
        let (mut n, mut bytes) = (0, 0);
        self.waiting_items().take_while(move |i| {
            bytes += i.json.len() + 1;
            n += 1;
            n <= max_events && (bytes <= budget || force_one && n == 1)
        })
    }

    /// The events [`Queue::take`] would take now, joined with commas, and their sequence
    /// numbers: what is compressed ahead of time.
    pub fn peek(&self, max_events: usize, max_bytes: usize) -> (String, Vec<u32>) {
        let mut text = String::new();
        let mut seqs = Vec::new();
        for i in self.front(max_events, max_bytes, true) {
            join(&mut text, &i.json);
            seqs.push(i.seq);
        }
        (text, seqs)
    }

    /// Whether the oldest waiting events are exactly those numbered `seqs`, unchanged.
    pub fn front_is(&self, seqs: &[u32]) -> bool {
        !seqs.is_empty()
            && self.waiting_n >= seqs.len()
            && self.waiting_items().zip(seqs).all(|(i, s)| i.seq == *s)
    }

    /// Assigns the oldest waiting events to `batch` (see [`Queue::front`]) and returns them
    /// joined with commas, or `None` when none fit.
    pub fn take(
        &mut self,
        batch: u32,
        max_events: usize,
        max_bytes: usize,
        force_one: bool,
    ) -> Option<String> {
        let n = self.front(max_events, max_bytes, force_one).count();
        if n == 0 {
            return None;
        }
        let mut text = String::new();
        for i in self.items.iter_mut().filter(|i| i.batch == 0).take(n) {
            join(&mut text, &i.json);
            i.batch = batch;
        }
        self.recount();
        Some(text)
    }

    /// The dropped-event count to report with `batch` (counted again if it is not
    /// delivered).
    pub fn report(&mut self, batch: u32) -> u32 {
        let n = core::mem::take(&mut self.dropped);
        if n > 0 {
            self.reported.push((batch, n));
        }
        n
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

    /// Every event handed to the network goes to [`HELD`].
    pub fn hold(&mut self) {
        for i in self.items.iter_mut().filter(|i| i.batch != 0) {
            i.batch = HELD;
        }
        for r in &mut self.reported {
            r.0 = HELD;
        }
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
    /// raw newlines; [`HELD`] ones after a `~`). `only_waiting`: leave out events handed
    /// to the network (but not held ones).
    pub fn save(&self, saved_at: u64, only_waiting: bool) -> String {
        let mut s = String::new();
        push_u64(&mut s, saved_at);
        for i in &self.items {
            let held = i.batch == HELD;
            if !only_waiting || i.batch == 0 || held {
                s.push_str(if held { "\n~" } else { "\n" });
                s.push_str(&i.json);
            }
        }
        s
    }

    /// Adds the events of a [`Queue::save`] text; those already in the queue (by id) are
    /// skipped. Only the events queued before are compared: a saved text holds each of its
    /// events once, and comparing each line with every event restored before it made a
    /// restore quadratic (7 000 events: 0.6 s natively, a long task at page load).
    pub fn restore(&mut self, text: &str) {
        let before = self.items.len();
        for line in pieces(text, b'\n').skip(1) {
            let (line, held) = match line.strip_prefix('~') {
                Some(l) => (l, true),
                None => (line, false),
            };
            let earlier = self.items.get(..before).unwrap_or_default();
            let known = event_id(line)
                .is_some_and(|id| earlier.iter().any(|i| event_id(&i.json) == Some(id)));
            if line.starts_with('{')
                && !known
                && self.push(line.into())
                && held
                && let Some(i) = self.items.last_mut()
            {
                i.batch = HELD;
            }
        }
        self.recount();
    }
}

fn join(text: &mut String, json: &str) {
    if !text.is_empty() {
        text.push(',');
    }
    text.push_str(json);
}

/// When a saved queue was written (first line of [`Queue::save`]).
pub fn saved_at(text: &str) -> u64 {
    int(pieces(text, b'\n').next().unwrap_or("")).unwrap_or(0)
}

/// The batch envelope up to the events array, in the field order of
/// `spoor_protocol::Batch`: `{"v":1,"sent_at":…,"key":…,"dropped":…,"events":[`. `key`
/// for transports that cannot carry it in the URL (`sendBeacon` bodies carry both);
/// `dropped` (events the client lost since its last batch) is an extension the collector
/// may ignore.
pub fn envelope_head(sent_at: &str, key: Option<&str>, dropped: u32) -> String {
    let mut s = String::with_capacity(96);
    s.push_str("{\"v\":1");
    crate::json::str_field(&mut s, ",\"sent_at\":", sent_at);
    if let Some(k) = key {
        crate::json::str_field(&mut s, ",\"key\":", k);
    }
    if dropped > 0 {
        crate::json::num_field(&mut s, ",\"dropped\":", u64::from(dropped));
    }
    s.push_str(",\"events\":[");
    s
}

/// What closes the envelope.
pub const ENVELOPE_TAIL: &str = "]}";

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, pad: usize) -> String {
        format!(
            r#"{{"event_id":"{id}","type":"track","name":"{}"}}"#,
            "x".repeat(pad)
        )
    }

    fn body(q: &mut Queue, batch: u32, max_events: usize, max_bytes: usize) -> Option<String> {
        let events = q.take(batch, max_events, max_bytes, true)?;
        let dropped = q.report(batch);
        Some(envelope_head("t", Some("pk"), dropped) + &events + ENVELOPE_TAIL)
    }

    #[test]
    fn bounded_with_drop_counter() {
        let mut q = Queue::new(3);
        for i in 0..5 {
            assert!(q.push(ev(&i.to_string(), 0)));
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.dropped, 2);
        let b = body(&mut q, 1, 10, BEACON_BYTES).unwrap();
        assert!(b.contains(r#""dropped":2"#), "{b}");
        assert!(b.contains(r#""event_id":"2""#) && !b.contains(r#""event_id":"1""#));
        assert_eq!(q.dropped, 0);
        // Oversized and id-less events are refused and counted.
        assert!(!q.push(ev("big", MAX_EVENT_BYTES)));
        assert!(!q.push("{}".into()));
        assert_eq!(q.dropped, 2);
        // A lost batch's count is reported again.
        q.release(1);
        assert_eq!(q.dropped, 4);
    }

    #[test]
    fn batches_by_count_and_bytes() {
        let mut q = Queue::new(100);
        for i in 0..10 {
            q.push(ev(&i.to_string(), 1000));
        }
        assert_eq!(q.waiting().0, 10);
        let b1 = q.take(1, 4, BEACON_BYTES, true).unwrap();
        assert_eq!(q.batch_len(1), 4);
        assert_eq!(b1.matches("event_id").count(), 4);
        let per = ev("9", 1000).len() + 1;
        let b2 = q.take(2, 100, 3 * per + ENVELOPE_BYTES, true).unwrap();
        assert!(b2.len() < 3 * per, "{}", b2.len());
        assert_eq!(q.batch_len(2), 3);
        assert_eq!(q.waiting().0, 3);
        // Delivery removes, failure releases in order.
        assert_eq!(q.remove_batch(1), 4);
        q.release(2);
        assert_eq!(q.waiting().0, 6);
        let b3 = q.take(3, 1, BEACON_BYTES, true).unwrap();
        assert!(
            b3.contains(r#""event_id":"4""#),
            "oldest first after a release"
        );
        // A single event larger than the byte budget still goes, alone — unless told not to.
        let mut q = Queue::new(10);
        q.push(ev("a", 5000));
        q.push(ev("b", 5000));
        assert_eq!(q.take(1, 10, 1000, false), None);
        assert!(q.take(1, 10, 1000, true).is_some());
        assert_eq!(q.batch_len(1), 1);
        assert_eq!(Queue::new(1).take(1, 10, 1000, true), None);
    }

    #[test]
    fn beacon_split_covers_everything_within_the_limit() {
        let mut q = Queue::new(1000);
        for i in 0..300 {
            q.push(ev(&i.to_string(), 700));
        }
        let mut total = 0;
        let mut batch = 1;
        while let Some(b) = body(&mut q, batch, usize::MAX, BEACON_BYTES) {
            assert!(b.len() <= BEACON_BYTES, "{}", b.len());
            total += q.batch_len(batch);
            batch += 1;
        }
        assert_eq!(total, 300);
        assert!(batch > 4);
    }

    #[test]
    fn envelope_is_a_protocol_batch() {
        assert_eq!(spoor_protocol::WIRE_VERSION, 1);
        let mut q = Queue::new(10);
        q.push(r#"{"event_id":"e1","type":"page_view","timestamp":"t","anonymous_id":"a"}"#.into());
        q.dropped = 3;
        let events = q.take(7, 10, BEACON_BYTES, true).unwrap();
        let body = envelope_head("2026-11-21T10:00:00.120Z", Some("pk_\"1"), q.report(7))
            + &events
            + ENVELOPE_TAIL;
        let b: spoor_protocol::Batch<serde_json::Value> = serde_json::from_str(&body).unwrap();
        assert_eq!(b.key.as_deref(), Some("pk_\"1"));
        assert_eq!(b.dropped, Some(3));
        assert_eq!(b.events.len(), 1);
        assert_eq!(b.events[0].event_id, "e1");
        let decoded =
            spoor_protocol::decode_batch(body.as_bytes(), &spoor_protocol::Limits::default())
                .unwrap();
        assert!(decoded.events[0].is_ok());
    }

    #[test]
    fn front_tracks_what_was_compressed() {
        let mut q = Queue::new(10);
        q.push(ev("a", 0));
        q.push(ev("b", 0));
        let (text, seqs) = q.peek(10, BEACON_BYTES);
        assert_eq!(text, format!("{},{}", ev("a", 0), ev("b", 0)));
        assert!(q.front_is(&seqs));
        // New events behind it keep it valid...
        q.push(ev("c", 0));
        assert!(q.front_is(&seqs));
        // ...taking, replacing or dropping them does not.
        q.take(1, 1, BEACON_BYTES, true);
        assert!(!q.front_is(&seqs));
        q.release(1);
        assert!(q.front_is(&seqs));
        q.put(ev("b", 3));
        assert!(!q.front_is(&seqs));
        assert_eq!(q.len(), 3, "a newer version replaces the waiting one");
        assert!(!q.front_is(&[]));
    }

    #[test]
    fn save_and_restore() {
        let mut q = Queue::new(10);
        q.push(ev("a", 0));
        q.push(ev("b", 0));
        q.take(1, 1, BEACON_BYTES, true);
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

    #[test]
    fn held_events_are_stored_marked_and_resolved() {
        let mut q = Queue::new(10);
        for i in 0..3 {
            q.push(ev(&i.to_string(), 0));
        }
        q.dropped = 2;
        assert!(q.take(7, 2, BEACON_BYTES, true).is_some());
        q.report(7);
        q.hold();
        assert_eq!(q.waiting().0, 1);
        let text = q.save(5, true);
        assert_eq!(text.lines().filter(|l| l.starts_with("~{")).count(), 2);
        let mut r = Queue::new(10);
        r.restore(&text);
        assert_eq!((r.len(), r.waiting().0), (3, 1));
        assert_eq!(r.save(5, true), text);
        // A failure sends them again (with their dropped count); a delivery forgets them.
        q.release(HELD);
        assert_eq!((q.waiting().0, q.dropped), (3, 2));
        r.remove_batch(HELD);
        assert_eq!((r.len(), r.waiting().0), (1, 1));
    }
}
