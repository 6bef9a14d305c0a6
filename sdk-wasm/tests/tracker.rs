//! The whole tracker state machine, natively, against a fake platform: sessions, queue and
//! retry, unload, resume after reload, consent, storage fallbacks, searches, SPA routes.
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value;
use spoor_sdk::config::Config;
use std::io::Read;

use spoor_sdk::tracker::{Area, Body, PageRead, Platform, Tracker};

#[derive(Default)]
struct World {
    now: u64,
    page: PageRead,
    results: Option<String>,
    local: Option<HashMap<String, String>>,
    tab: HashMap<String, String>,
    cookies: Option<HashMap<String, String>>,
    /// (id, url, body, beacon)
    sends: Vec<(u32, String, String, bool)>,
    gzips: Vec<(u32, String)>,
    timers: Vec<u64>,
    beacon_ok: bool,
}

#[derive(Clone)]
struct Fake(Rc<RefCell<World>>);

impl Platform for Fake {
    type Bytes = Vec<u8>;
    fn now(&self) -> u64 {
        self.0.borrow().now
    }
    fn random(&mut self, buf: &mut [u8]) {
        let mut w = self.0.borrow_mut();
        for b in buf {
            w.now = w.now.wrapping_add(0); // keep the clock; vary bytes below
            *b = rand_byte();
        }
    }
    /// The page as set by the test; its URL's parts as the browser's `location` gives them.
    fn page(&self) -> PageRead {
        let mut p = self.0.borrow().page.clone();
        let parts = spoor_sdk::url::split(&p.href);
        p.host = parts.host.into();
        p.path = parts.path.into();
        p.query = parts.query.into();
        p.hash = parts.hash.into();
        p
    }
    fn get(&self, area: Area, key: &str) -> Option<String> {
        let w = self.0.borrow();
        match area {
            Area::Local => w.local.as_ref()?.get(key).cloned(),
            Area::Tab => w.tab.get(key).cloned(),
            Area::Cookie => w.cookies.as_ref()?.get(key).cloned(),
        }
    }
    fn set(&self, area: Area, key: &str, value: &str) -> bool {
        let mut w = self.0.borrow_mut();
        let map = match area {
            Area::Local => w.local.as_mut(),
            Area::Tab => Some(&mut w.tab),
            Area::Cookie => w.cookies.as_mut(),
        };
        map.map(|m| m.insert(key.into(), value.into())).is_some() || {
            let w = &*w;
            match area {
                Area::Local => w.local.is_some(),
                Area::Tab => true,
                Area::Cookie => w.cookies.is_some(),
            }
        }
    }
    fn remove(&self, area: Area, key: &str) {
        let mut w = self.0.borrow_mut();
        let map = match area {
            Area::Local => w.local.as_mut(),
            Area::Tab => Some(&mut w.tab),
            Area::Cookie => w.cookies.as_mut(),
        };
        if let Some(m) = map {
            m.remove(key);
        }
    }
    fn keys(&self, prefix: &str) -> Vec<String> {
        let w = self.0.borrow();
        w.local
            .as_ref()
            .map(|m| {
                m.keys()
                    .filter(|k| k.starts_with(prefix))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
    fn send(&self, id: u32, url: &str, body: Body<'_, Vec<u8>>, beacon: bool) -> bool {
        let text = match body {
            Body::Text(s) => s.to_string(),
            Body::Gzip { head, events, tail } => {
                assert!(url.ends_with("&compression=gzip"), "{url}");
                gunzip(&[head, events, tail].concat())
            }
        };
        let mut w = self.0.borrow_mut();
        w.sends.push((id, url.into(), text, beacon));
        !beacon || w.beacon_ok
    }
    fn gzip(&self, id: u32, body: &str) {
        self.0.borrow_mut().gzips.push((id, body.into()));
    }
    fn timer(&self, ms: u64) {
        self.0.borrow_mut().timers.push(ms);
    }
    fn results_count(&self) -> Option<String> {
        self.0.borrow().results.clone()
    }
    fn log(&self, _msg: &str) {}
}

/// Real gzip, as the browser's `CompressionStream` makes it.
fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// As the collector reads a body: all gzip members, one after the other.
fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut out)
        .unwrap();
    out
}

fn rand_byte() -> u8 {
    thread_local!(static S: std::cell::Cell<u64> = const { std::cell::Cell::new(0x9e37_79b9_7f4a_7c15) });
    S.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 24) as u8
    })
}

const T0: u64 = 1_795_255_200_000;
const MIN: u64 = 60_000;

fn world(href: &str) -> Rc<RefCell<World>> {
    Rc::new(RefCell::new(World {
        now: T0,
        page: PageRead {
            href: href.into(),
            title: "Shop".into(),
            referrer: "https://ref.example/?token=x".into(),
            ..PageRead::default()
        },
        local: Some(HashMap::new()),
        cookies: Some(HashMap::new()),
        beacon_ok: true,
        ..World::default()
    }))
}

fn tracker(w: &Rc<RefCell<World>>, extra: &str) -> Tracker<Fake> {
    let mut lines = String::from("key=pk_1\nhost=https://c.example\ncompress=false\n");
    lines.push_str(extra);
    let cfg = Config::parse(&lines).unwrap();
    let mut t = Tracker::new(Fake(w.clone()), cfg);
    t.start();
    t
}

/// Events of every non-beacon send so far, in order.
fn events(w: &Rc<RefCell<World>>) -> Vec<Value> {
    let w = w.borrow();
    w.sends
        .iter()
        .flat_map(|(_, _, body, _)| {
            let v: Value = serde_json::from_str(body).unwrap();
            v["events"].as_array().unwrap().clone()
        })
        .collect()
}

fn types(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

fn advance(w: &Rc<RefCell<World>>, ms: u64) {
    w.borrow_mut().now += ms;
}

/// Answers the last send with `status`.
fn answer(t: &mut Tracker<Fake>, w: &Rc<RefCell<World>>, status: u16, retry_after: u64) {
    let id = w.borrow().sends.last().unwrap().0;
    t.sent(id, status, retry_after, "");
}

#[test]
fn first_visit_records_session_page_view_and_url_search() {
    let w = world("https://shop.example/search?q=red+shoes&token=s3cret&utm_source=news");
    w.borrow_mut().results = Some("1,204".into());
    let mut t = tracker(&w, "");
    assert!(w.borrow().sends.is_empty(), "batched, not sent at once");
    assert_eq!(w.borrow().timers.last(), Some(&1000));
    t.tick();
    let evs = events(&w);
    assert_eq!(types(&evs), ["session_start", "page_view", "search"]);
    let pv = &evs[1];
    assert_eq!(
        pv["page"]["url"],
        "https://shop.example/search?q=red+shoes&utm_source=news"
    );
    assert_eq!(pv["page"]["referrer"], "https://ref.example/");
    assert_eq!(pv["page"]["path"], "/search");
    assert_eq!(pv["session"]["index"], 1);
    assert_eq!(pv["session"]["id"], evs[0]["session"]["id"]);
    assert_eq!(evs[2]["search"]["query"], "red shoes");
    assert_eq!(evs[2]["search"]["results_count"], 1204);
    assert_eq!(evs[2]["search"]["source"], "url");
    assert_eq!(w.borrow().sends[0].1, "https://c.example/v1/batch?key=pk_1");
    // Identity and session are stored.
    let local = w.borrow().local.clone().unwrap();
    assert!(local["spoor.id"].starts_with(pv["anonymous_id"].as_str().unwrap()));
    assert!(local["spoor.s"].starts_with(pv["session"]["id"].as_str().unwrap()));
}

#[test]
fn sessions_follow_idle_and_campaign_rules_across_page_loads() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "");
    let first = t.session_id().unwrap().to_string();
    let anon = t.anonymous_id().to_string();
    t.on_hide();
    // A new page load 10 minutes later continues the session.
    advance(&w, 10 * MIN);
    let t2 = tracker(&w, "");
    assert_eq!(t2.session_id(), Some(first.as_str()));
    assert_eq!(t2.anonymous_id(), anon);
    // 31 idle minutes later: a new one, chained to the first.
    advance(&w, 31 * MIN);
    let mut t3 = tracker(&w, "");
    let second = t3.session_id().unwrap().to_string();
    assert_ne!(second, first);
    t3.flush();
    answer(&mut t3, &w, 200, 0);
    let evs = events(&w);
    let start = evs
        .iter()
        .rev()
        .find(|e| e["type"] == "session_start")
        .unwrap();
    assert_eq!(start["session"]["index"], 2);
    assert_eq!(start["session"]["previous_id"], first.as_str());
    // A different campaign starts a third, even a minute later.
    advance(&w, MIN);
    w.borrow_mut().page.href = "https://shop.example/?utm_source=ads&utm_campaign=x".into();
    let t4 = tracker(&w, "");
    assert_ne!(t4.session_id().unwrap(), second);
    // A short timeout is honoured.
    advance(&w, 6 * MIN);
    let t5 = tracker(&w, "session-timeout=5");
    assert_ne!(t5.session_id(), t4.session_id());
}

#[test]
fn retries_keep_event_ids_back_off_and_honour_retry_after() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "");
    t.track("signup", Some(r#"{"plan":"pro"}"#.into()));
    t.tick();
    let ids: Vec<String> = events(&w)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().into())
        .collect();
    assert_eq!(ids.len(), 3);
    // Network error: a backoff timer between 0.5 and 1 s, nothing lost.
    answer(&mut t, &w, 0, 0);
    let wait = *w.borrow().timers.last().unwrap();
    assert!((500..1000).contains(&wait), "{wait}");
    assert_eq!(t.queued(), 3);
    // Not before the timer.
    t.track("more", None);
    assert_eq!(w.borrow().sends.len(), 1);
    advance(&w, wait);
    t.tick();
    assert_eq!(w.borrow().sends.len(), 2);
    // 429 with Retry-After 20 s: waits at least that.
    answer(&mut t, &w, 429, 20_000);
    let wait = *w.borrow().timers.last().unwrap();
    assert!(wait >= 20_000, "{wait}");
    advance(&w, wait);
    t.tick();
    answer(&mut t, &w, 503, 0);
    advance(&w, 60_000);
    t.tick();
    answer(&mut t, &w, 200, 0);
    assert_eq!(t.queued(), 0);
    // Every attempt carried the same event ids.
    let sends = w.borrow().sends.clone();
    assert_eq!(sends.len(), 4);
    for (_, _, body, _) in &sends[1..] {
        for id in &ids {
            assert!(body.contains(id.as_str()), "{id} missing on retry");
        }
    }
    let evs = events(&w);
    assert_eq!(evs.last().unwrap()["name"], "more");
    assert_eq!(evs[2]["properties"]["plan"], "pro");
}

#[test]
fn client_errors_are_never_retried_and_413_splits() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "batch-size=4");
    for i in 0..2 {
        t.track(&format!("e{i}"), None);
    }
    // 4 events waiting (session_start, page_view, e0, e1): a full batch goes at once.
    assert_eq!(w.borrow().sends.len(), 1);
    answer(&mut t, &w, 400, 0);
    assert_eq!(t.queued(), 0, "a 400 drops the batch");
    advance(&w, 120_000);
    t.tick();
    assert_eq!(w.borrow().sends.len(), 1, "and never sends it again");
    // 413: resent in halves.
    for i in 0..4 {
        t.track(&format!("f{i}"), None);
    }
    assert_eq!(w.borrow().sends.len(), 2);
    answer(&mut t, &w, 413, 0);
    let last = w.borrow().sends.last().unwrap().2.clone();
    let v: Value = serde_json::from_str(&last).unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 2);
    // The dropped-event counter reaches the collector.
    assert_eq!(v["dropped"], 4);
}

/// The queue this tab stored in local storage, if any.
fn stored_queue(w: &Rc<RefCell<World>>) -> Option<String> {
    let w = w.borrow();
    let local = w.local.as_ref()?;
    local
        .iter()
        .find(|(k, _)| k.starts_with("spoor.q."))
        .map(|(_, v)| v.clone())
}

#[test]
fn unload_beacons_in_64k_chunks_and_healthy_beacons_are_held() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "flush-ms=60000");
    t.tick();
    answer(&mut t, &w, 200, 0);
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(20_000));
    let before = w.borrow().sends.len();
    for i in 0..10 {
        t.track(&format!("big{i}"), Some(big.clone()));
    }
    t.on_hide();
    let w2 = w.borrow();
    let beacons: Vec<_> = w2.sends[before..].iter().filter(|s| s.3).collect();
    assert!(beacons.len() >= 3, "{}", beacons.len());
    let mut n = 0;
    for (_, url, body, _) in &beacons {
        assert!(body.len() <= 64 * 1024, "{}", body.len());
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["key"], "pk_1");
        assert_eq!(url, "https://c.example/v1/batch?key=pk_1");
        n += v["events"].as_array().unwrap().len();
    }
    // 10 big events + page_leave: in the beacons, or in the batch already in flight.
    let in_flight: usize = w2.sends[before..]
        .iter()
        .filter(|s| !s.3)
        .map(|s| {
            serde_json::from_str::<Value>(&s.2).unwrap()["events"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(n + in_flight, 11);
    // Healthy: trusted, but kept (marked held) until the next answer confirms them.
    let saved = stored_queue(&w).expect("held events are stored");
    assert_eq!(saved.lines().skip(1).count(), 11);
    assert!(saved.lines().skip(1).all(|l| l.starts_with("~{")));
}

/// Next page of the tab: a new tracker over the same storage; returns the ids it sends.
fn next_page(w: &Rc<RefCell<World>>, status: u16) -> Vec<String> {
    advance(w, 1_000);
    w.borrow_mut().sends.clear();
    let mut t = tracker(w, "");
    t.tick();
    answer(&mut t, w, status, 0);
    t.flush();
    events(w)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().into())
        .collect()
}

#[test]
fn healthy_beacons_are_sent_again_only_if_the_next_page_finds_the_collector_down() {
    for (status, resent) in [(200, false), (503, true), (0, true)] {
        let w = world("https://shop.example/");
        let mut t = tracker(&w, "flush-ms=60000");
        t.tick();
        answer(&mut t, &w, 200, 0); // healthy
        t.track("last_click", None);
        t.on_hide(); // beaconed: the beacon "succeeds" even when the collector just went down
        let beaconed: Vec<String> = {
            let wb = w.borrow();
            let (_, _, body, beacon) = wb.sends.last().unwrap();
            assert!(*beacon);
            let v: Value = serde_json::from_str(body).unwrap();
            v["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().into())
                .collect()
        };
        assert_eq!(beaconed.len(), 2);
        let sent = next_page(&w, status);
        for id in &beaconed {
            assert_eq!(sent.contains(id), resent, "status {status}");
        }
        if !resent {
            assert_eq!(stored_queue(&w), None);
        }
    }
}

/// The answer that settles a reloaded page's held events returns the queue to memory: it is
/// stored again only on unload or after a failure, so later answers do not rewrite it (they
/// did, the whole queue on every answer: long tasks on a busy page after a reload).
#[test]
fn a_healthy_answer_after_a_reload_takes_the_queue_out_of_storage() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "flush-ms=60000");
    t.tick();
    answer(&mut t, &w, 200, 0);
    t.track("last_click", None);
    t.on_hide();
    assert!(stored_queue(&w).is_some(), "held events are stored");
    advance(&w, 1_000);
    let mut t = tracker(&w, "flush-ms=60000\nbatch-size=2");
    for i in 0..6 {
        t.track(&format!("e{i}"), None);
    }
    assert!(stored_queue(&w).is_some(), "restored, still held");
    answer(&mut t, &w, 200, 0);
    assert_eq!(stored_queue(&w), None, "settled: back in memory");
    for _ in 0..3 {
        answer(&mut t, &w, 200, 0);
        assert_eq!(stored_queue(&w), None, "answers do not write the queue");
    }
    // A failure stores it again: an outage loses nothing.
    for i in 0..3 {
        t.track(&format!("f{i}"), None);
    }
    answer(&mut t, &w, 503, 0);
    let saved = stored_queue(&w).expect("stored after a failure");
    assert!(saved.lines().skip(1).count() >= 2, "{saved}");
}

#[test]
fn get_search_form_is_recorded_from_the_next_pages_url() {
    let get_form = "1\u{1f}/search.html\u{1f}\u{1f}\u{1f}get\u{1e}search\u{1f}q\u{1f}\u{1f}";
    for (next, want) in [
        (
            "https://shop.example/search.html?q=tent",
            ("url", Value::from(1)),
        ),
        ("https://shop.example/other.html", ("form", Value::Null)),
    ] {
        let w = world("https://shop.example/product.html");
        let mut t = tracker(&w, "");
        t.on_submit(get_form, |_| "tent".into());
        advance(&w, 300);
        t.on_hide(); // the form navigates away before the wait is over
        assert!(events(&w).iter().all(|e| e["type"] != "search"));
        advance(&w, 300);
        w.borrow_mut().page.href = next.into();
        w.borrow_mut().results = Some("1".into());
        let mut t2 = tracker(&w, "");
        t2.flush();
        let evs = events(&w);
        let searches: Vec<&Value> = evs.iter().filter(|e| e["type"] == "search").collect();
        assert_eq!(searches.len(), 1, "{next}");
        let s = &searches[0];
        assert_eq!(s["search"]["query"], "tent");
        assert_eq!(s["search"]["source"], want.0);
        assert_eq!(s["search"]["results_count"], want.1);
        assert_eq!(s["page"]["url"], next);
        assert!(!w.borrow().tab.contains_key("spoor.fs"));
    }
}

#[test]
fn outage_loses_nothing_across_a_reload() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "");
    t.tick();
    answer(&mut t, &w, 0, 0); // collector down
    t.track("during_outage", None);
    w.borrow_mut().beacon_ok = true;
    t.on_hide(); // beacon handed over, but the collector is down: keep them saved
    let sent_ids: Vec<String> = {
        let w = w.borrow();
        let mut ids = Vec::new();
        for (_, _, body, _) in &w.sends {
            let v: Value = serde_json::from_str(body).unwrap();
            for e in v["events"].as_array().unwrap() {
                ids.push(e["event_id"].as_str().unwrap().to_string());
            }
        }
        ids
    };
    // Reload: the same tab, a new tracker over the same storage.
    advance(&w, 5_000);
    w.borrow_mut().sends.clear();
    let mut t2 = tracker(&w, "");
    t2.flush();
    answer(&mut t2, &w, 200, 0);
    t2.flush();
    let resent: Vec<String> = events(&w)
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().into())
        .collect();
    for id in &sent_ids {
        assert!(resent.contains(id), "{id} lost");
    }
    let types = types(&events(&w));
    assert!(types.contains(&"page_leave".to_string()));
    assert_eq!(types.iter().filter(|t| *t == "session_start").count(), 1);
}

#[test]
fn orphaned_queues_of_closed_tabs_are_adopted() {
    let w = world("https://shop.example/");
    let orphan = format!(
        "{}\n{}",
        T0 - 5 * MIN,
        r#"{"event_id":"orphan-1","type":"track","name":"x","timestamp":"t","anonymous_id":"a"}"#
    );
    let fresh = format!(
        "{}\n{}",
        T0 - 1_000,
        r#"{"event_id":"live-1","type":"track","name":"y","timestamp":"t","anonymous_id":"a"}"#
    );
    {
        let mut wm = w.borrow_mut();
        let local = wm.local.as_mut().unwrap();
        local.insert("spoor.q.other".into(), orphan);
        local.insert("spoor.q.live".into(), fresh);
    }
    let mut t = tracker(&w, "");
    t.tick();
    let body = w.borrow().sends[0].2.clone();
    assert!(body.contains("orphan-1"));
    assert!(!body.contains("live-1"), "a live tab keeps its own queue");
}

#[test]
fn consent_modes_and_signals() {
    // Opt-in: nothing captured or stored until consent.
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "consent=opt-in");
    t.track("x", None);
    t.tick();
    assert!(w.borrow().sends.is_empty());
    assert!(
        w.borrow()
            .local
            .as_ref()
            .unwrap()
            .keys()
            .all(|k| k == "spoor.c" || !k.starts_with("spoor."))
    );
    t.set_consent(true);
    t.tick();
    assert_eq!(types(&events(&w)), ["session_start", "page_view"]);
    answer(&mut t, &w, 200, 0);
    // Remembered on the next page.
    let t2 = tracker(&w, "consent=opt-in");
    assert!(t2.is_on());
    // Withdrawal forgets ids and queue.
    let mut t3 = tracker(&w, "");
    t3.track("y", None);
    t3.set_consent(false);
    assert_eq!(t3.queued(), 0);
    assert!(!w.borrow().local.as_ref().unwrap().contains_key("spoor.id"));
    assert!(!tracker(&w, "").is_on());

    // DNT / GPC are respected by default, and can be ignored on purpose.
    for sig in ["dnt=true", "gpc=true"] {
        let w = world("https://shop.example/");
        let mut t = tracker(&w, sig);
        t.tick();
        assert!(!t.is_on() && w.borrow().sends.is_empty(), "{sig}");
        let w = world("https://shop.example/");
        let t = tracker(&w, &format!("{sig}\nrespect-dnt=false"));
        assert!(t.is_on());
    }
    // Sampling out.
    let w = world("https://shop.example/");
    assert!(!tracker(&w, "sample=0").is_on());
}

#[test]
fn storage_falls_back_to_cookies_then_memory() {
    let w = world("https://shop.example/");
    w.borrow_mut().local = None;
    let t = tracker(&w, "");
    let anon = t.anonymous_id().to_string();
    assert!(w.borrow().cookies.as_ref().unwrap()["spoor.id"].starts_with(&anon));
    assert_eq!(tracker(&w, "").anonymous_id(), anon);

    let w = world("https://shop.example/");
    w.borrow_mut().local = None;
    w.borrow_mut().cookies = None;
    let t = tracker(&w, "");
    assert!(t.is_on());
    assert_ne!(tracker(&w, "").anonymous_id(), t.anonymous_id());

    // Cookieless stores nothing even when storage works.
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "cookieless");
    t.on_hide();
    assert!(w.borrow().local.as_ref().unwrap().is_empty());
    assert!(w.borrow().cookies.as_ref().unwrap().is_empty());
}

#[test]
fn identify_and_reset() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "");
    let anon = t.anonymous_id().to_string();
    t.identify("user-7", Some(r#"{"plan":"pro"}"#.into()));
    t.track("after", None);
    assert_eq!(tracker(&w, "").anonymous_id(), anon);
    t.reset();
    assert_ne!(t.anonymous_id(), anon);
    t.track("anon again", None);
    t.flush();
    let evs = events(&w);
    let ident = evs.iter().find(|e| e["type"] == "identify").unwrap();
    assert_eq!(ident["user_id"], "user-7");
    assert_eq!(ident["anonymous_id"], anon.as_str());
    assert_eq!(ident["traits"]["plan"], "pro");
    assert_eq!(
        evs.iter().find(|e| e["name"] == "after").unwrap()["user_id"],
        "user-7"
    );
    let last = evs.last().unwrap();
    assert!(last.get("user_id").is_none());
    assert_eq!(
        evs[evs.len() - 2]["type"],
        "session_start",
        "reset starts a new session"
    );
}

#[test]
fn spa_routes_and_page_leave() {
    let w = world("https://shop.example/app");
    let mut t = tracker(&w, "");
    advance(&w, 5_000);
    t.on_scroll(40);
    // Same route (anchor): nothing. New route: leave + view.
    w.borrow_mut().page.href = "https://shop.example/app#details".into();
    t.on_route();
    w.borrow_mut().page.href = "https://shop.example/app/cart".into();
    t.on_route();
    w.borrow_mut().page.href = "https://shop.example/app/cart#/step2".into();
    t.on_route();
    t.flush();
    let evs = events(&w);
    assert_eq!(
        types(&evs),
        [
            "session_start",
            "page_view",
            "page_leave",
            "page_view",
            "page_leave",
            "page_view"
        ]
    );
    assert_eq!(evs[2]["leave"]["engaged_ms"], 5_000);
    assert_eq!(evs[2]["leave"]["max_scroll_pct"], 40);
    assert_eq!(evs[2]["page"]["path"], "/app");
    assert_eq!(evs[3]["page"]["referrer"], "https://shop.example/app");
    // Hidden: one leave; hidden again: nothing new; shown, engaged and hidden again: the
    // same page_leave (same event_id and timestamp) with the engaged time added up.
    t.on_hide();
    t.on_hide();
    t.on_show();
    advance(&w, 2_000);
    t.on_hide();
    let w2 = w.borrow();
    let leaves: Vec<Value> = w2
        .sends
        .iter()
        .flat_map(|s| {
            serde_json::from_str::<Value>(&s.2).unwrap()["events"]
                .as_array()
                .unwrap()
                .clone()
        })
        .filter(|e| e["type"] == "page_leave")
        .collect();
    assert_eq!(leaves.len(), 4);
    assert_eq!(leaves[2]["leave"]["engaged_ms"], 0);
    assert_eq!(leaves[3]["leave"]["engaged_ms"], 2_000);
    assert_eq!(leaves[3]["event_id"], leaves[2]["event_id"]);
    assert_eq!(leaves[3]["timestamp"], leaves[2]["timestamp"]);
    assert_ne!(leaves[1]["event_id"], leaves[2]["event_id"]);
}

#[test]
fn a_page_back_from_the_back_forward_cache_is_a_new_view() {
    let w = world("https://shop.example/list");
    let mut t = tracker(&w, "");
    advance(&w, 4_000);
    t.on_activity();
    // The visitor follows a link (pagehide, page kept in the cache) and comes back.
    t.on_hide();
    advance(&w, 60_000);
    t.on_restore();
    advance(&w, 2_000);
    t.on_activity();
    // A tab switch and back is no new view: the same leave, engaged time added up.
    t.on_hide();
    t.on_show();
    advance(&w, 1_000);
    t.on_activity();
    t.on_hide();
    let evs = events(&w);
    assert_eq!(
        types(&evs),
        [
            "session_start",
            "page_view",
            "page_leave",
            "page_view",
            "page_leave",
            "page_leave"
        ]
    );
    let (first, back) = (&evs[1], &evs[3]);
    assert_ne!(first["event_id"], back["event_id"]);
    assert_eq!(back["page"]["path"], "/list");
    assert_eq!(back["session"]["id"], first["session"]["id"]);
    assert_eq!(evs[2]["leave"]["engaged_ms"], 4_000);
    // The restored view's leave: its own id, its own engaged time (not the first view's).
    assert_ne!(evs[4]["event_id"], evs[2]["event_id"]);
    assert_eq!(evs[4]["leave"]["engaged_ms"], 2_000);
    assert_eq!(evs[5]["event_id"], evs[4]["event_id"]);
    assert_eq!(evs[5]["leave"]["engaged_ms"], 3_000);
}

#[test]
fn a_waiting_page_leave_is_replaced_by_its_newer_version() {
    let w = world("https://shop.example/");
    // The collector is down: the leave stays queued (and saved) between hides.
    let mut t = tracker(&w, "");
    t.tick();
    answer(&mut t, &w, 0, 0);
    w.borrow_mut().beacon_ok = false;
    t.on_hide();
    t.on_show();
    advance(&w, 3_000);
    t.on_activity();
    t.on_hide();
    w.borrow_mut().sends.clear();
    t.flush();
    answer(&mut t, &w, 200, 0);
    let leaves: Vec<Value> = events(&w)
        .into_iter()
        .filter(|e| e["type"] == "page_leave")
        .collect();
    assert_eq!(leaves.len(), 1, "{leaves:?}");
    assert_eq!(leaves[0]["leave"]["engaged_ms"], 3_000);
}

#[test]
fn form_searches() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "");
    // A GET form with a `q` field: the query will be in the next URL; wait for it there.
    let get_form = "\u{1f}/search\u{1f}\u{1f}\u{1f}get\u{1e}text\u{1f}q\u{1f}\u{1f}";
    t.on_submit(get_form, |i| {
        assert_eq!(i, 0);
        "  blue   hats ".into()
    });
    w.borrow_mut().page.href = "https://shop.example/search?q=blue+hats".into();
    w.borrow_mut().results = Some("3".into());
    t.on_route();
    // A POST search form: recorded at once.
    let post_form = "1\u{1f}\u{1f}\u{1f}\u{1f}post\u{1e}search\u{1f}term\u{1f}\u{1f}\u{1e}password\u{1f}pw\u{1f}\u{1f}";
    t.on_submit(post_form, |i| {
        assert_eq!(i, 0);
        "socks".into()
    });
    // A login form is no search.
    t.on_submit("\u{1f}/login\u{1f}\u{1f}\u{1f}post\u{1e}text\u{1f}user\u{1f}\u{1f}\u{1e}password\u{1f}pw\u{1f}\u{1f}", |_| {
        panic!("never read")
    });
    // A GET form whose query never shows up in a URL is recorded after a moment.
    t.on_submit(get_form, |_| "scarves".into());
    advance(&w, 2_000);
    t.tick();
    t.flush();
    let searches: Vec<(String, String, Value)> = events(&w)
        .iter()
        .filter(|e| e["type"] == "search")
        .map(|e| {
            (
                e["search"]["query"].as_str().unwrap().to_string(),
                e["search"]["source"].as_str().unwrap().to_string(),
                e["search"]["results_count"].clone(),
            )
        })
        .collect();
    assert_eq!(
        searches,
        [
            ("blue hats".into(), "url".into(), Value::from(3)),
            ("socks".into(), "form".into(), Value::Null),
            ("scarves".into(), "form".into(), Value::Null),
        ]
    );
    // The results page reloaded: the same search is not counted twice.
    let n = events(&w).len();
    t.page();
    t.flush();
    assert!(events(&w)[n..].iter().all(|e| e["type"] != "search"));
}

/// A tracker with compression on (the browser has `CompressionStream`).
fn gzip_tracker(w: &Rc<RefCell<World>>, extra: &str) -> Tracker<Fake> {
    let cfg = Config::parse(&format!("key=pk 1\nhost=https://c.example\n{extra}")).unwrap();
    let mut t = Tracker::new(Fake(w.clone()), cfg);
    t.start();
    t
}

/// Completes the last compression the tracker asked for, with real gzip.
fn compress_last(t: &mut Tracker<Fake>, w: &Rc<RefCell<World>>) -> String {
    let (id, text) = w
        .borrow()
        .gzips
        .last()
        .cloned()
        .expect("compression requested");
    let bytes = gzip(&text);
    let len = bytes.len();
    t.compressed(id, Some((bytes, len)));
    text
}

#[test]
fn the_front_of_the_queue_is_compressed_ahead_and_sent_as_gzip_members() {
    let w = world("https://shop.example/");
    let mut t = gzip_tracker(&w, "");
    t.track("x", Some(format!(r#"{{"pad":"{}"}}"#, "y".repeat(2000))));
    // Compressed as soon as it is worth it, before any flush is due.
    assert_eq!(w.borrow().gzips.len(), 1);
    t.tick();
    assert!(
        w.borrow().sends.is_empty(),
        "a due batch waits for the compression in flight"
    );
    let text = compress_last(&mut t, &w);
    let (sid, url, body, beacon) = w.borrow().sends[0].clone();
    assert!(!beacon);
    assert_eq!(
        url,
        "https://c.example/v1/batch?key=pk%201&compression=gzip"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["events"].as_array().unwrap().len(), 3);
    assert!(body.contains(&text));
    t.sent(sid, 200, 0, "");
    assert_eq!(t.queued(), 0);
    // A retry resends the same compressed events (no second compression), fresh sent_at.
    t.track("y", Some(format!(r#"{{"pad":"{}"}}"#, "z".repeat(2000))));
    compress_last(&mut t, &w);
    advance(&w, 5_000);
    t.tick();
    let first = w.borrow().sends.last().unwrap().clone();
    t.sent(first.0, 503, 0, "");
    advance(&w, 60_000);
    t.tick();
    let again = w.borrow().sends.last().unwrap().clone();
    assert_ne!(again.0, first.0);
    assert_eq!(w.borrow().gzips.len(), 2);
    let (a, b): (Value, Value) = (
        serde_json::from_str(&first.2).unwrap(),
        serde_json::from_str(&again.2).unwrap(),
    );
    assert_eq!(a["events"], b["events"]);
    assert_ne!(a["sent_at"], b["sent_at"]);
}

#[test]
fn unload_sends_the_precompressed_events_at_once_with_the_rest_in_the_tail() {
    let w = world("https://shop.example/");
    let mut t = gzip_tracker(&w, "flush-ms=60000");
    t.flush();
    answer(&mut t, &w, 200, 0);
    t.track("big", Some(format!(r#"{{"pad":"{}"}}"#, "y".repeat(3000))));
    compress_last(&mut t, &w);
    advance(&w, 30_000);
    // Arrives after the compression (a new one starts, and is still running at unload).
    t.track("late", None);
    let jobs = w.borrow().gzips.len();
    assert_eq!(jobs, 2);
    t.on_hide();
    assert_eq!(w.borrow().gzips.len(), jobs, "unload compresses nothing");
    let w2 = w.borrow();
    let beacons: Vec<_> = w2.sends.iter().filter(|s| s.3).collect();
    assert_eq!(beacons.len(), 1);
    let (_, url, body, _) = beacons[0];
    assert!(url.ends_with("&compression=gzip"));
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["key"], "pk 1");
    assert_eq!(
        v["sent_at"], "2026-11-21T10:00:30.000Z",
        "the time of sending"
    );
    let names: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap_or(e["type"].as_str().unwrap()))
        .collect();
    assert_eq!(names, ["big", "late", "page_leave"]);
    // What the collector reads.
    let decoded =
        spoor_protocol::decode_batch(body.as_bytes(), &spoor_protocol::Limits::default()).unwrap();
    for e in decoded.events {
        let mut e = e.unwrap();
        let limits = spoor_protocol::Limits::default();
        assert!(
            spoor_protocol::validate_event(&mut e, &limits).is_ok(),
            "{e:?}"
        );
    }
}

#[test]
fn failed_compression_falls_back_to_plain_text() {
    let w = world("https://shop.example/");
    let mut t = gzip_tracker(&w, "");
    t.track("x", Some(format!(r#"{{"pad":"{}"}}"#, "y".repeat(2000))));
    t.tick();
    let id = w.borrow().gzips[0].0;
    t.compressed(id, None);
    let (_, url, body, _) = w.borrow().sends[0].clone();
    assert_eq!(url, "https://c.example/v1/batch?key=pk%201");
    assert!(body.contains("\"pad\""));
}

#[test]
fn clicks_capture_allowed_attributes_and_skip_opted_out() {
    let w = world("https://shop.example/");
    let mut t = tracker(&w, "attrs=product-id");
    let fs = "\u{1f}";
    let rs = "\u{1e}";
    let desc = [
        "a",
        "",
        "",
        "buy",
        "",
        "",
        "",
        "Buy",
        "https://shop.example/cart",
        "",
        "https:",
        "shop.example",
        "/cart",
    ]
    .join(fs)
        + rs
        + &["product-id", "sku-1"].join(fs)
        + rs
        + &["a", "buy", "", "", "", "1", "1"].join(fs);
    t.on_click(&desc);
    t.on_click(""); // opted out / nothing clickable: the JS side describes nothing
    t.flush();
    let evs = events(&w);
    let clicks: Vec<&Value> = evs.iter().filter(|e| e["type"] == "click").collect();
    assert_eq!(clicks.len(), 1);
    assert_eq!(clicks[0]["click"]["selector"], "a#buy");
    assert_eq!(clicks[0]["properties"]["product-id"], "sku-1");
    let none = tracker(&world("https://shop.example/"), "autocapture=false");
    drop(none);
}
