//! The SDK's state machine: identity, consent, sessions, page views and leaves, clicks,
//! searches, the queue and its delivery. Everything outside — clock, randomness, storage,
//! the page, timers, compression, the network — goes through [`Platform`], so the whole
//! machine runs in native tests with a fake platform and in the browser with the real one
//! (`sdk.rs`).
//!
//! Delivery: the front of the queue (what the next batch takes) is kept compressed ahead of
//! time — whenever it changes and no compression is running, it is handed to the platform's
//! gzip. A batch whose events are compressed goes out at once as three gzip members (see
//! [`gzip`]): the envelope head with the current `sent_at`, the precompressed events, and
//! the tail. So neither a timer flush nor the unload path (`pagehide`) waits for a
//! compressor; at unload, events that arrived after the last compression follow in the
//! stored tail or, beyond 64 KiB, in plain beacons.
//!
//! Page leaves: one `page_leave` per page view, with one `event_id` and the time of the
//! first leave. It is sent when the page is hidden (the last moment mobile browsers
//! reliably give), on `pagehide` and on SPA navigation; if a hidden page comes back and is
//! hidden again, the same event is sent again with the engaged time and scroll depth so far
//! (a waiting older version is replaced in the queue). Storage keeps one row per `event_id`
//! (`ReplacingMergeTree`; `FINAL` or `argMax(engaged_ms, …)` per `event_id`).

use alloc::string::String;
use alloc::vec::Vec;

use crate::config::Config;
use crate::consent::{self, Signals};
use crate::engage::Engagement;
use crate::json::{num_field, str_field};
use crate::queue::{self, BEACON_BYTES, ENVELOPE_BYTES, ENVELOPE_TAIL, HELD, Queue};
use crate::retry::{self, Verdict};
use crate::session::{self, Session};
use crate::text::{cut, cut_or_all, in_list};
use crate::{click, gzip, ids, search, time, url};

/// Where a value is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    Local,
    /// Per tab; survives reloads.
    Tab,
    Cookie,
}

/// What the page looks like now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRead {
    pub href: String,
    pub title: String,
    pub referrer: String,
    /// `href`'s parts as the browser's `location` gives them: `host` (with the port),
    /// `pathname`, and `search` and `hash` without their `?` and `#`.
    pub host: String,
    pub path: String,
    pub query: String,
    pub hash: String,
}

/// A batch body as handed to the network.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a, B> {
    /// Plain JSON text.
    Text(&'a str),
    /// Gzip members, one after the other: `head` and `tail` stored ([`gzip::stored`]),
    /// `events` compressed ahead of time by [`Platform::gzip`].
    Gzip {
        head: &'a [u8],
        events: &'a B,
        tail: &'a [u8],
    },
}

/// The outside world.
pub trait Platform {
    /// Compressed bytes, kept opaque (a `Uint8Array` in the browser).
    type Bytes;
    fn now(&self) -> u64;
    fn random(&mut self, buf: &mut [u8]);
    fn page(&self) -> PageRead;
    fn get(&self, area: Area, key: &str) -> Option<String>;
    /// False when the value could not be stored.
    fn set(&self, area: Area, key: &str, value: &str) -> bool;
    fn remove(&self, area: Area, key: &str);
    /// Keys in local storage that start with `prefix`.
    fn keys(&self, prefix: &str) -> Vec<String>;
    /// Starts a send; the outcome comes back through [`Tracker::sent`] (unless `beacon`).
    /// Returns false when the browser refused to queue it.
    fn send(&self, id: u32, url: &str, body: Body<'_, Self::Bytes>, beacon: bool) -> bool;
    /// Starts gzipping `text` (one gzip member); the bytes come back through
    /// [`Tracker::compressed`].
    fn gzip(&self, id: u32, text: &str);
    /// Asks for one [`Tracker::tick`] after `ms` (replacing any earlier request).
    fn timer(&self, ms: u64);
    /// The `data-spoor-results` value on the page, if any.
    fn results_count(&self) -> Option<String>;
    fn log(&self, msg: &str);
    /// Appends `ms` as RFC 3339 UTC with milliseconds (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
    fn push_time(&self, out: &mut String, ms: u64) {
        time::push_rfc3339(out, ms);
    }
}

/// Event types by their wire names (`spoor_protocol::EventType`; a test checks they agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

const KEY_IDS: &str = "spoor.id";
const KEY_SESSION: &str = "spoor.s";
const KEY_CONSENT: &str = "spoor.c";
const KEY_SEARCH: &str = "spoor.ls";
const KEY_TAB: &str = "spoor.tab";
/// A GET search form submitted on the previous page of this tab (`time|query`).
const KEY_FORM: &str = "spoor.fs";
const QUEUE_PREFIX: &str = "spoor.q.";
/// A saved queue of another tab older than this is adopted (its tab is gone).
const ORPHAN_MS: u64 = 60_000;
/// Event text shorter than this is not worth compressing.
const GZIP_MIN_BYTES: usize = 1024;
/// A GET search form's query is expected in the next page's URL within this time.
const FORM_SEARCH_WAIT_MS: u64 = 1_500;
/// … and in the URL of the next page loaded within this time.
const FORM_SEARCH_NEXT_MS: u64 = 10_000;
/// How often a continuing session's last-activity time is written to storage.
const SESSION_SAVE_MS: u64 = 5_000;

/// Where stored values live, chosen at start: local storage, else a cookie, else nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Local,
    Cookie,
    Memory,
}

#[derive(Debug, Clone, Default)]
struct PageCtx {
    url: String,
    host: String,
    route: String,
    /// `,"page":{…}` as written into every event of this page view.
    json: String,
    /// The id and time of this page view's `page_leave`, fixed at the first leave.
    leave: Option<(String, u64)>,
}

/// The front of the queue, compressed.
struct Ready<B> {
    /// The events it holds ([`Queue::front_is`]).
    seqs: Vec<u32>,
    bytes: B,
    len: usize,
}

pub struct Tracker<P: Platform> {
    p: P,
    cfg: Config,
    store: Store,
    /// Values kept when storage is off or unavailable.
    memory: Vec<(String, String)>,
    anon: String,
    /// The identified user (empty: none).
    user: String,
    session: Option<Session>,
    consent: Option<bool>,
    /// Consent allows it and the visitor is in the sample.
    on: bool,
    page: Option<PageCtx>,
    engage: Engagement,
    /// A `page_leave` was sent and nothing has been engaged since (hidden, not yet shown).
    left: bool,
    visible: bool,
    queue: Queue,
    /// The batch in flight (`fetch`), until [`Tracker::sent`].
    out: Option<u32>,
    ready: Option<Ready<P::Bytes>>,
    /// The compression in flight: its id and the events it covers.
    job: Option<(u32, Vec<u32>)>,
    /// A batch is due and waits for the compression in flight.
    want_send: bool,
    /// Last id given to a batch or a compression.
    next_id: u32,
    /// Failed attempts since the last delivery; 0 means the collector looks healthy.
    attempt: u32,
    retry_at: u64,
    /// When the pending timer fires (0: none).
    due_at: u64,
    /// Batch size limit, halved after a 413.
    batch_cap: usize,
    url_text: String,
    url_gzip: String,
    queue_key: String,
    /// Local storage holds a copy of the queue (written on unload and after failures; in
    /// steady state the queue is never written, keeping storage off the hot path).
    persisted: bool,
    last_search: Option<(String, u64)>,
    /// When the session was last written to storage.
    session_saved_ms: u64,
    /// The session start as written in events (`started_at`) and the time it is of: formatted
    /// once per session, not per event (each is a call into JS; measured).
    started: (u64, String),
    /// A GET search form was submitted; its query should show up in the next URL.
    form_search: Option<(String, u64)>,
    rand: [u8; 64],
    rand_pos: usize,
    /// `,"context":{…}`, the same in every event.
    context: String,
}

impl<P: Platform> Tracker<P> {
    /// Builds the tracker; nothing is captured or stored until [`Tracker::start`].
    pub fn new(p: P, cfg: Config) -> Self {
        let mut url_text = cfg.host.clone();
        url_text.push_str("/v1/batch?key=");
        url_text.push_str(&url::encode(&cfg.key));
        let url_gzip = url_text.clone() + "&compression=gzip";
        let env = &cfg.env;
        let mut context = String::with_capacity(160);
        str_field(&mut context, ",\"context\":{\"locale\":", &env.lang);
        str_field(&mut context, ",\"tz\":", &env.tz);
        for (key, n) in [
            (",\"screen_w\":", env.screen.0),
            (",\"screen_h\":", env.screen.1),
            (",\"viewport_w\":", env.viewport.0),
            (",\"viewport_h\":", env.viewport.1),
        ] {
            num_field(&mut context, key, n.into());
        }
        str_field(&mut context, ",\"lib\":", crate::LIB);
        context.push('}');
        Tracker {
            queue: Queue::new(cfg.max_queue),
            batch_cap: cfg.batch_events,
            engage: Engagement::new(0, true),
            p,
            store: Store::Memory,
            memory: Vec::new(),
            anon: String::new(),
            user: String::new(),
            session: None,
            consent: None,
            on: false,
            page: None,
            left: false,
            visible: true,
            out: None,
            ready: None,
            job: None,
            want_send: false,
            next_id: 0,
            attempt: 0,
            retry_at: 0,
            due_at: 0,
            url_text,
            url_gzip,
            queue_key: String::new(),
            persisted: false,
            last_search: None,
            session_saved_ms: 0,
            started: (u64::MAX, String::new()),
            form_search: None,
            rand: [0; 64],
            rand_pos: 64,
            context,
            cfg,
        }
    }

    pub fn platform(&self) -> &P {
        &self.p
    }

    pub fn platform_mut(&mut self) -> &mut P {
        &mut self.p
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Whether events are being captured (consent given, in the sample).
    pub fn is_on(&self) -> bool {
        self.on
    }

    pub fn anonymous_id(&self) -> &str {
        &self.anon
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.id.as_str())
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    // ----- randomness, storage -----

    fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        for x in &mut b {
            if self.rand_pos >= self.rand.len() {
                self.p.random(&mut self.rand);
                self.rand_pos = 0;
            }
            *x = self.rand.get(self.rand_pos).copied().unwrap_or(0);
            self.rand_pos += 1;
        }
        ids::uuid_v4(b)
    }

    fn area(&self) -> Area {
        if self.store == Store::Cookie {
            Area::Cookie
        } else {
            Area::Local
        }
    }

    fn load(&self, key: &str) -> Option<String> {
        if self.store == Store::Memory {
            return self
                .memory
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone());
        }
        self.p.get(self.area(), key)
    }

    /// Stores `value` — only while tracking is on, except for the consent choice itself.
    fn save(&mut self, key: &str, value: &str) {
        if !self.on && key != KEY_CONSENT {
            return;
        }
        if self.store != Store::Memory && self.p.set(self.area(), key, value) {
            return;
        }
        match self.memory.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.into(),
            None => self.memory.push((key.into(), value.into())),
        }
    }

    fn forget(&mut self, key: &str) {
        if self.store != Store::Memory {
            self.p.remove(self.area(), key);
        }
        self.memory.retain(|(k, _)| k != key);
    }

    fn save_ids(&mut self) {
        let v = self.anon.clone() + "|" + &self.user;
        self.save(KEY_IDS, &v);
    }

    fn save_session(&mut self, now: u64) {
        if let Some(s) = &self.session {
            let v = s.encode();
            self.save(KEY_SESSION, &v);
            self.session_saved_ms = now;
        }
    }

    /// Writes the queue to local storage. `all`: also events handed to the network, which
    /// are then sent again after a reload unless delivery is confirmed first.
    fn save_queue(&mut self, all: bool) {
        if self.store != Store::Local || !self.on || self.queue_key.is_empty() {
            return;
        }
        let text = self.queue.save(self.p.now(), !all);
        // A byte loop (`text::cut`), not `str::contains`: core's `memchr` is 0.4 KB of wasm.
        self.persisted = cut(&text, b'\n').is_some();
        if !self.persisted {
            self.p.remove(Area::Local, &self.queue_key);
        } else if !self.p.set(Area::Local, &self.queue_key, &text) {
            self.p.log("queue not saved: storage full");
        }
    }

    // ----- start -----

    /// Chooses storage, loads identity and consent, restores queued events, and records the
    /// first page view.
    pub fn start(&mut self) {
        let now = self.p.now();
        self.store = Store::Memory;
        if !self.cfg.cookieless {
            for (area, store) in [(Area::Local, Store::Local), (Area::Cookie, Store::Cookie)] {
                if self.p.set(area, "spoor.t", "1") {
                    self.p.remove(area, "spoor.t");
                    self.store = store;
                    break;
                }
            }
        }
        self.consent = self.load(KEY_CONSENT).map(|v| v == "1");
        let ids = self.load(KEY_IDS);
        match ids.as_deref().map(|v| cut_or_all(v, b'|')) {
            Some((a, u)) if !a.is_empty() => {
                self.anon = a.into();
                self.user = u.into();
            }
            _ => self.anon = self.uuid(),
        }
        self.session = self.load(KEY_SESSION).and_then(|s| Session::decode(&s));
        self.last_search = self
            .load(KEY_SEARCH)
            .and_then(|s| search::decode_last(&s).map(|(q, t)| (q.into(), t)));
        self.visible = self.cfg.env.visible;
        self.engage = Engagement::new(now, self.visible);
        self.update_on();
        if self.on {
            if ids.is_none() {
                self.save_ids();
            }
            self.open_queue(now);
        }
        // A GET search form submitted on the previous page: recorded from this URL when it
        // carries the query (in `page_view`), else now, as a form search.
        let pending = (self.store != Store::Memory)
            .then(|| self.p.get(Area::Tab, KEY_FORM))
            .flatten();
        if let Some(v) = pending {
            self.forget_form();
            self.form_search = search::decode_last(&v).map(|(q, t)| (q.into(), t));
        }
        self.page_view(None);
        if let Some((q, _)) = self.form_search.take() {
            self.record_search(q, None, "form", now);
        }
    }

    fn update_on(&mut self) {
        let signals = Signals {
            dnt: self.cfg.env.dnt,
            gpc: self.cfg.env.gpc,
        };
        self.on = consent::allowed(
            self.cfg.consent,
            self.consent,
            signals,
            self.cfg.respect_dnt,
        ) && ids::in_sample(&self.anon, self.cfg.sample_per_million);
    }

    /// Finds this tab's saved queue (and orphans of closed tabs) and resumes delivery.
    fn open_queue(&mut self, now: u64) {
        if self.store != Store::Local || !self.queue_key.is_empty() {
            return;
        }
        let tab = match self.p.get(Area::Tab, KEY_TAB) {
            Some(t) if !t.is_empty() => t,
            _ => {
                let t = self.uuid();
                self.p.set(Area::Tab, KEY_TAB, &t);
                t
            }
        };
        self.queue_key = String::from(QUEUE_PREFIX) + &tab;
        for key in self.p.keys(QUEUE_PREFIX) {
            let Some(text) = self.p.get(Area::Local, &key) else {
                continue;
            };
            let mine = key == self.queue_key;
            if mine || now.saturating_sub(queue::saved_at(&text)) > ORPHAN_MS {
                self.queue.restore(&text);
                if !mine {
                    self.p.remove(Area::Local, &key);
                }
            }
        }
        if !self.queue.is_empty() {
            self.save_queue(true);
            self.schedule(now);
        }
    }

    // ----- events -----

    /// The start of an event's JSON, up to and including the page.
    fn head(&mut self, kind: EventType, id: &str, name: Option<&str>, at: u64) -> String {
        let mut e = String::with_capacity(1024);
        str_field(&mut e, "{\"event_id\":", id);
        str_field(&mut e, ",\"type\":", kind.as_str());
        if let Some(n) = name {
            str_field(&mut e, ",\"name\":", n);
        }
        e.push_str(",\"timestamp\":\"");
        self.p.push_time(&mut e, at);
        str_field(&mut e, "\",\"anonymous_id\":", &self.anon);
        if !self.user.is_empty() {
            str_field(&mut e, ",\"user_id\":", &self.user);
        }
        if let Some(s) = &self.session {
            str_field(&mut e, ",\"session\":{\"id\":", &s.id);
            num_field(&mut e, ",\"index\":", s.index.into());
            if self.started.0 != s.started_ms {
                let mut t = String::new();
                self.p.push_time(&mut t, s.started_ms);
                self.started = (s.started_ms, t);
            }
            str_field(&mut e, ",\"started_at\":", &self.started.1);
            if let Some(p) = &s.previous_id {
                str_field(&mut e, ",\"previous_id\":", p);
            }
            e.push('}');
        }
        if let Some(p) = &self.page {
            e.push_str(&p.json);
        }
        e
    }

    /// Starts an event now: session bookkeeping first. `None` while tracking is off.
    fn begin(&mut self, kind: EventType, name: Option<&str>, campaign: &str) -> Option<String> {
        if !self.on {
            return None;
        }
        let now = self.p.now();
        self.touch_session(now, campaign);
        let id = self.uuid();
        Some(self.head(kind, &id, name, now))
    }

    /// Ends an event (`properties`, `traits`, the context) and queues it; `replace`: it is
    /// a newer version of a waiting event with the same id.
    fn finish(&mut self, mut e: String, props: Option<&str>, traits: Option<&str>, replace: bool) {
        for (key, v) in [(",\"properties\":", props), (",\"traits\":", traits)] {
            if let Some(v) = v {
                e.push_str(key);
                e.push_str(v);
            }
        }
        e.push_str(&self.context);
        e.push('}');
        let queued = if replace {
            self.queue.put(e)
        } else {
            self.queue.push(e)
        };
        if !queued {
            self.p.log("event too large: dropped");
        }
        let now = self.p.now();
        self.schedule(now);
    }

    /// Starts a new session when the rules say so (emitting `session_start`) and records
    /// activity in the current one.
    fn touch_session(&mut self, now: u64, campaign: &str) {
        if session::needs_new(
            self.session.as_ref(),
            now,
            campaign,
            self.cfg.session_timeout_ms,
        )
        .is_some()
        {
            let id = self.uuid();
            self.session = Some(session::next(self.session.as_ref(), id, now, campaign));
            self.save_session(now);
            let id = self.uuid();
            let e = self.head(EventType::SessionStart, &id, None, now);
            self.finish(e, None, None, false);
        } else if let Some(s) = &mut self.session {
            s.touch(now);
            // A few seconds of staleness in storage cannot matter to a 30-minute rule, and
            // it keeps storage writes off the per-event path.
            if now.saturating_sub(self.session_saved_ms) >= SESSION_SAVE_MS {
                self.save_session(now);
            }
        }
    }

    /// Records a page view of the current URL (initial load, SPA navigation, `page()`).
    /// `referrer`: the previous URL for SPA navigations.
    fn page_view(&mut self, referrer: Option<String>) {
        let now = self.p.now();
        let read = self.p.page();
        let cfg = &self.cfg;
        let scrub = cfg.scrubber();
        let page_url = url::scrub(&read.href, scrub);
        let referrer = referrer.unwrap_or_else(|| url::scrub(&read.referrer, scrub));
        let mut json = String::with_capacity(page_url.len() + referrer.len() + 96);
        str_field(&mut json, ",\"page\":{\"url\":", &page_url);
        str_field(&mut json, ",\"path\":", &read.path);
        str_field(&mut json, ",\"title\":", &read.title);
        str_field(&mut json, ",\"referrer\":", &referrer);
        json.push('}');
        let campaign = url::campaign(&read.query);
        let found = search::query_from_url(&read.query, &cfg.search_params);
        self.page = Some(PageCtx {
            route: url::route_key(&read.path, &read.query, &read.hash),
            host: read.host,
            url: page_url,
            json,
            leave: None,
        });
        self.engage = Engagement::new(now, self.visible);
        self.left = false;
        if let Some(e) = self.begin(EventType::PageView, None, &campaign) {
            self.finish(e, None, None, false);
        }
        if let Some(q) = found {
            if self
                .form_search
                .as_ref()
                .is_some_and(|(f, at)| *f == q && now.saturating_sub(*at) < FORM_SEARCH_NEXT_MS)
            {
                self.form_search = None;
                self.forget_form();
            }
            let last = self.last_search.as_ref().map(|(q, t)| (q.as_str(), *t));
            if !search::is_repeat(last, &q, now) {
                let count = self.p.results_count().and_then(|c| search::parse_count(&c));
                self.record_search(q, count, "url", now);
            }
        }
    }

    fn record_search(&mut self, query: String, results_count: Option<u32>, source: &str, now: u64) {
        if query.is_empty() {
            return;
        }
        if let Some(mut e) = self.begin(EventType::Search, None, "") {
            str_field(&mut e, ",\"search\":{\"query\":", &query);
            if let Some(n) = results_count {
                num_field(&mut e, ",\"results_count\":", n.into());
            }
            str_field(&mut e, ",\"source\":", source);
            e.push('}');
            self.finish(e, None, None, false);
        }
        let v = search::encode_last(&query, now);
        self.save(KEY_SEARCH, &v);
        self.last_search = Some((query, now));
    }

    /// Drops the stored copy of a pending form search.
    fn forget_form(&self) {
        if self.store != Store::Memory {
            self.p.remove(Area::Tab, KEY_FORM);
        }
    }

    /// This page view's `page_leave`, with everything engaged so far. Leaving is no
    /// activity: the session is not touched.
    fn page_leave(&mut self) {
        if self.left || !self.on {
            return;
        }
        let now = self.p.now();
        let fresh = self.uuid();
        let Some(page) = &mut self.page else { return };
        let (id, at) = page.leave.get_or_insert((fresh, now)).clone();
        self.left = true;
        let (engaged_ms, max_scroll_pct) = self.engage.read(now);
        let mut e = self.head(EventType::PageLeave, &id, None, at);
        num_field(&mut e, ",\"leave\":{\"engaged_ms\":", engaged_ms);
        num_field(&mut e, ",\"max_scroll_pct\":", max_scroll_pct.into());
        e.push('}');
        self.finish(e, None, None, true);
    }

    // ----- public API -----

    /// A custom event. `properties`: JSON object text (from `JSON.stringify`).
    pub fn track(&mut self, name: &str, properties: Option<String>) {
        self.track_json(name, properties.as_deref());
    }

    /// [`Tracker::track`] with borrowed properties (the wasm edge's form: no copy).
    pub fn track_json(&mut self, name: &str, properties: Option<&str>) {
        if name.is_empty() {
            return;
        }
        if let Some(e) = self.begin(EventType::Track, Some(name), "") {
            self.finish(e, properties, None, false);
        }
    }

    pub fn identify(&mut self, user_id: &str, traits: Option<String>) {
        self.identify_json(user_id, traits.as_deref());
    }

    /// [`Tracker::identify`] with borrowed traits (the wasm edge's form: no copy).
    pub fn identify_json(&mut self, user_id: &str, traits: Option<&str>) {
        if user_id.is_empty() {
            return;
        }
        self.user = user_id.into();
        self.save_ids();
        if let Some(e) = self.begin(EventType::Identify, None, "") {
            self.finish(e, None, traits, false);
        }
    }

    /// Forgets the user: new anonymous id, no session (the next event starts one).
    pub fn reset(&mut self) {
        self.user.clear();
        self.anon = self.uuid();
        self.session = None;
        self.forget(KEY_SESSION);
        self.save_ids();
        self.update_on();
    }

    /// A page view for the current URL, on request.
    pub fn page(&mut self) {
        self.page_leave();
        let prev = self.page.as_ref().map(|p| p.url.clone());
        self.page_view(prev);
    }

    /// A site search reported by the page.
    pub fn search(&mut self, query: &str, results_count: Option<u32>) {
        let now = self.p.now();
        self.record_search(search::clean(query), results_count, "api", now);
    }

    pub fn set_consent(&mut self, granted: bool) {
        let was_on = self.on;
        self.consent = Some(granted);
        self.save(KEY_CONSENT, if granted { "1" } else { "0" });
        self.update_on();
        if self.on && !was_on {
            let now = self.p.now();
            self.save_ids();
            self.open_queue(now);
            let referrer = self.page.as_ref().map(|p| p.url.clone());
            self.page_view(referrer);
        } else if !granted {
            self.queue.clear();
            self.out = None;
            self.ready = None;
            for key in [KEY_IDS, KEY_SESSION, KEY_SEARCH] {
                self.forget(key);
            }
            if !self.queue_key.is_empty() {
                self.p.remove(Area::Local, &self.queue_key);
                self.queue_key.clear();
            }
            self.session = None;
            self.user.clear();
            self.anon = self.uuid();
        }
    }

    /// Sends what is queued now, without waiting for a backoff to end.
    pub fn flush(&mut self) {
        self.retry_at = 0;
        let now = self.p.now();
        self.send_batch(now);
    }

    // ----- page signals -----

    /// History or hash navigation: a leave for the old route, a view for the new one.
    pub fn on_route(&mut self) {
        if !self.cfg.spa {
            return;
        }
        let read = self.p.page();
        let route = url::route_key(&read.path, &read.query, &read.hash);
        let Some(prev) = &self.page else { return };
        if prev.route == route {
            return;
        }
        let referrer = prev.url.clone();
        self.page_leave();
        self.page_view(Some(referrer));
    }

    /// A click, described by the JS side (see [`click`]).
    pub fn on_click(&mut self, desc: &str) {
        if !self.on || !self.cfg.autocapture {
            return;
        }
        self.engage.activity(self.p.now());
        let Some(target) = click::parse(desc) else {
            return;
        };
        let host = self.page.as_ref().map_or("", |p| p.host.as_str());
        let cfg = &self.cfg;
        let Some(c) = click::capture(&target, host, cfg.scrubber()) else {
            return;
        };
        if let Some(mut e) = self.begin(EventType::Click, None, "") {
            e.push_str(&c.click);
            self.finish(e, c.properties.as_deref(), None, false);
        }
    }

    /// A form was submitted; `desc` from the JS side, `value_of(i)` reads control `i`.
    pub fn on_submit(&mut self, desc: &str, value_of: impl FnOnce(usize) -> String) {
        if !self.on {
            return;
        }
        let (form, get) = search::parse_form(desc);
        let Some(i) = search::search_control(&form, &self.cfg.search_params) else {
            return;
        };
        let query = search::clean(&value_of(i));
        if query.is_empty() {
            return;
        }
        let now = self.p.now();
        let named_param = form
            .controls
            .get(i)
            .is_some_and(|c| in_list(&self.cfg.search_params, c.name));
        if get && named_param {
            // The query will be in the next URL, with the results count on that page.
            self.form_search = Some((query, now));
            self.arm(now, FORM_SEARCH_WAIT_MS);
        } else {
            self.record_search(query, None, "form", now);
        }
    }

    /// The page was hidden or is being unloaded: leave, then hand everything to the beacon.
    pub fn on_hide(&mut self) {
        let now = self.p.now();
        self.save_session(now);
        self.visible = false;
        self.engage.visibility(false, now);
        if let Some((q, at)) = self.form_search.take() {
            // Still expected in the next URL: kept for the next page of this tab, which
            // records it from its URL or, failing that, as a form search. Sent now only
            // when it cannot be stored.
            let stored = self.store != Store::Memory
                && self
                    .p
                    .set(Area::Tab, KEY_FORM, &search::encode_last(&q, at));
            if stored {
                self.form_search = Some((q, at));
            } else {
                self.record_search(q, None, "form", now);
            }
        }
        self.page_leave();
        self.unload(now);
    }

    /// The page is visible again: engaged time goes on adding up in the same leave.
    pub fn on_show(&mut self) {
        self.visible = true;
        self.engage.visibility(true, self.p.now());
        self.left = false;
    }

    /// The page came back from the back/forward cache (`pageshow` with `persisted`): the
    /// visitor navigated back (or forward) to it, so it is a new view of the page, with its
    /// own leave. The old view's leave went out when the page was hidden.
    pub fn on_restore(&mut self) {
        self.visible = true;
        self.page_view(None);
    }

    pub fn on_scroll(&mut self, pct: u32) {
        self.engage.scroll(pct);
        self.on_activity();
    }

    pub fn on_activity(&mut self) {
        self.engage.activity(self.p.now());
    }

    /// The browser is back online: retry now.
    pub fn on_online(&mut self) {
        self.flush();
    }

    // ----- delivery -----

    fn arm(&mut self, now: u64, ms: u64) {
        let at = now + ms;
        if self.due_at == 0 || self.due_at <= now || at < self.due_at {
            self.due_at = at;
            self.p.timer(ms);
        }
    }

    /// Keeps the front of the queue compressed ahead of time, one compression at a time.
    fn prepare(&mut self) {
        if !self.cfg.env.compress || !self.on || self.job.is_some() {
            return;
        }
        let (text, seqs) = self.queue.peek(self.batch_cap, self.cfg.batch_bytes);
        let current = self.ready.as_ref().is_some_and(|r| r.seqs == seqs);
        if text.len() >= GZIP_MIN_BYTES && !current {
            self.next_id += 1;
            self.p.gzip(self.next_id, &text);
            self.job = Some((self.next_id, seqs));
        }
    }

    /// Decides when to send next.
    fn schedule(&mut self, now: u64) {
        self.prepare();
        if self.out.is_some() {
            return;
        }
        let (n, bytes) = self.queue.waiting();
        if n == 0 {
            return;
        }
        if self.retry_at > now {
            let wait = self.retry_at - now;
            self.arm(now, wait);
        } else if n >= self.batch_cap || bytes >= self.cfg.batch_bytes {
            self.send_batch(now);
        } else {
            self.arm(now, self.cfg.flush_ms);
        }
    }

    /// The timer fired.
    pub fn tick(&mut self) {
        let now = self.p.now();
        if self.due_at <= now {
            self.due_at = 0;
        }
        if let Some((q, at)) = self.form_search.take() {
            if now.saturating_sub(at) >= FORM_SEARCH_WAIT_MS {
                self.forget_form();
                self.record_search(q, None, "form", now);
            } else {
                self.form_search = Some((q, at));
                self.arm(now, FORM_SEARCH_WAIT_MS);
            }
        }
        if self.retry_at <= now {
            self.retry_at = 0;
            self.send_batch(now);
        } else {
            self.schedule(now);
        }
    }

    /// Sends the next batch: the compressed front of the queue when it is ready, else —
    /// unless its compression is still running — the waiting events as plain text.
    fn send_batch(&mut self, now: u64) {
        if self.out.is_some() || !self.on || self.queue.waiting().0 == 0 {
            return;
        }
        self.prepare();
        let ready = self.ready.as_ref().filter(|r| self.queue.front_is(&r.seqs));
        if ready.is_none() && self.job.is_some() {
            self.want_send = true;
            return;
        }
        self.want_send = false;
        self.next_id += 1;
        let id = self.next_id;
        let n = ready.map_or(self.batch_cap, |r| r.seqs.len());
        let gz = ready.is_some();
        let Some(events) = self.queue.take(id, n, self.cfg.batch_bytes, true) else {
            return;
        };
        let mut sent_at = String::new();
        self.p.push_time(&mut sent_at, now);
        self.transmit(id, &sent_at, &events, gz, None, false);
        self.out = Some(id);
    }

    /// Hands batch `id` to the network, its envelope around `events` (the events taken,
    /// as text) — or, when `gz`, around the compressed front of the queue ([`Ready`]) with
    /// `more` (events taken after it) in the stored tail. Beacons carry the key in the body
    /// too. One path for timed sends and the unload beacons.
    fn transmit(
        &mut self,
        id: u32,
        sent_at: &str,
        events: &str,
        gz: bool,
        more: Option<String>,
        beacon: bool,
    ) -> bool {
        let key = beacon.then_some(self.cfg.key.as_str());
        let head = queue::envelope_head(sent_at, key, self.queue.report(id));
        match self.ready.as_ref().filter(|_| gz) {
            Some(r) => {
                let mut tail = more.map_or(String::new(), |m| String::from(",") + &m);
                tail.push_str(ENVELOPE_TAIL);
                let body = Body::Gzip {
                    head: &gzip::stored(head.as_bytes()),
                    events: &r.bytes,
                    tail: &gzip::stored(tail.as_bytes()),
                };
                self.p.send(id, &self.url_gzip, body, beacon)
            }
            None => {
                let body = head + events + ENVELOPE_TAIL;
                self.p.send(id, &self.url_text, Body::Text(&body), beacon)
            }
        }
    }

    /// Compression `id` finished with the bytes and their length (`None`: it failed, and
    /// compression is off for this page).
    pub fn compressed(&mut self, id: u32, result: Option<(P::Bytes, usize)>) {
        let Some((job, seqs)) = self.job.take() else {
            return;
        };
        if job != id {
            self.job = Some((job, seqs));
            return;
        }
        self.ready = match result {
            Some((bytes, len)) => Some(Ready { seqs, bytes, len }),
            None => {
                self.cfg.env.compress = false;
                self.p.log("gzip failed: plain text");
                None
            }
        };
        let now = self.p.now();
        if self.want_send {
            self.send_batch(now);
        }
        self.prepare();
    }

    /// The collector answered batch `id` (`status` 0: network error). `retry_after_ms`: its
    /// `Retry-After`, 0 if none. `rejected`: comma-separated ids of events it refused.
    pub fn sent(&mut self, id: u32, status: u16, retry_after_ms: u64, rejected: &str) {
        if self.out != Some(id) {
            return;
        }
        self.out = None;
        let now = self.p.now();
        let verdict = retry::verdict(status);
        // Events beaconed while the collector looked healthy: a failure now means they may
        // not have arrived either, so they are sent again; any other answer confirms them
        // (after a 413 they may hold the batch in flight at the hide: sent again, smaller).
        if matches!(verdict, Verdict::Retry | Verdict::TooLarge) {
            self.queue.release(HELD);
        } else {
            self.queue.remove_batch(HELD);
        }
        match verdict {
            Verdict::Delivered => {
                if !rejected.is_empty() {
                    // Refused events are final (invalid data): they are not sent again.
                    self.p.log("events rejected");
                }
                self.queue.remove_batch(id);
                self.attempt = 0;
                self.retry_at = 0;
            }
            Verdict::Retry => {
                self.queue.release(id);
                self.attempt = self.attempt.saturating_add(1);
                let mut jitter = [0u8; 4];
                self.p.random(&mut jitter);
                self.retry_at = now
                    + retry::backoff_ms(self.attempt, u32::from_le_bytes(jitter), retry_after_ms);
                self.due_at = 0;
            }
            Verdict::TooLarge => {
                let n = self.queue.batch_len(id);
                self.ready = None;
                if n > 1 {
                    self.batch_cap = (n / 2).max(1);
                    self.queue.release(id);
                } else if n == 1 {
                    self.queue.remove_batch(id);
                    self.queue.dropped += 1;
                    self.p.log("event too large: dropped");
                }
            }
            Verdict::Refused => {
                self.queue.dropped += self.queue.remove_batch(id) as u32;
                self.p.log("batch refused: dropped");
            }
        }
        if self.attempt > 0 {
            // The collector is failing: the stored copy follows the queue, so that a reload
            // loses nothing.
            self.save_queue(true);
        } else if self.persisted {
            // Healthy: back to the steady state, where the queue is stored only on unload.
            // (Rewriting it on every answer cost as much as the queue is long: long tasks
            // on a busy page after a reload.)
            self.persisted = false;
            self.p.remove(Area::Local, &self.queue_key);
        }
        self.schedule(now);
    }

    /// Hands everything waiting to `sendBeacon` in bodies under 64 KiB — first the
    /// compressed front of the queue with what arrived since in its stored tail, then plain
    /// text — and saves the queue. While the collector looks healthy, beaconed and
    /// in-flight events are trusted to arrive; after failures they stay saved and are sent
    /// again by the next page (the collector counts an `event_id` once), so an outage loses
    /// nothing.
    fn unload(&mut self, now: u64) {
        if !self.on {
            return;
        }
        let healthy = self.attempt == 0;
        self.want_send = false;
        let mut sent_at = String::new();
        self.p.push_time(&mut sent_at, now);
        let mut handed = Vec::new();
        loop {
            self.next_id += 1;
            let id = self.next_id;
            let ready = self
                .ready
                .as_ref()
                .filter(|r| r.len + ENVELOPE_BYTES < BEACON_BYTES && self.queue.front_is(&r.seqs));
            let gz = ready.is_some();
            let (first, more) = match ready {
                Some(r) => (
                    self.queue.take(id, r.seqs.len(), usize::MAX, true),
                    self.queue.take(id, usize::MAX, BEACON_BYTES - r.len, false),
                ),
                None => (self.queue.take(id, usize::MAX, BEACON_BYTES, true), None),
            };
            let Some(events) = first else {
                break;
            };
            let queued = self.transmit(id, &sent_at, &events, gz, more, true);
            handed.push((id, queued));
            if !queued {
                break;
            }
        }
        for (id, queued) in handed {
            if !queued || !healthy {
                self.queue.release(id);
            }
        }
        if healthy {
            // Trusted, but kept (stored) until an answer to this or the next page's first
            // batch shows the collector was still up: a beacon "succeeds" even when it is not.
            self.queue.hold();
        }
        self.save_queue(true);
    }
}

#[cfg(test)]
mod tests {
    use super::EventType;

    #[test]
    fn event_types_are_the_protocol_ones() {
        let ours: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        let theirs: Vec<&str> = spoor_protocol::EventType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect();
        assert_eq!(ours, theirs);
    }
}
