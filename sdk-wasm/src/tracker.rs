//! The SDK's state machine: identity, consent, sessions, page views and leaves, clicks,
//! searches, the queue and its delivery. Everything outside — clock, randomness, storage,
//! the page, timers, compression, the network — goes through [`Platform`], so the whole
//! machine runs in native tests with a fake platform and in the browser with the real one
//! (`sdk.rs`).

use spoor_protocol::{Context, Event, EventType, Page, PageLeave, Search, Session as WireSession};

use crate::config::Config;
use crate::consent::{self, Signals};
use crate::engage::Engagement;
use crate::json::{self, Raw};
use crate::queue::{self, Queue};
use crate::retry::{self, Verdict};
use crate::search;
use crate::session::{self, Session};
use crate::{click, ids, time, url};

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
}

/// A batch body as handed to the network.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a, B> {
    Text(&'a str),
    Gzip(&'a B),
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
    fn send(&self, id: u32, url: &str, body: Payload<'_, Self::Bytes>, beacon: bool) -> bool;
    /// Starts compressing; the result comes back through [`Tracker::compressed`].
    fn gzip(&self, id: u32, body: &str);
    /// Asks for one [`Tracker::tick`] after `ms` (replacing any earlier request).
    fn timer(&self, ms: u64);
    /// The `data-spoor-results` value on the page, if any.
    fn results_count(&self) -> Option<String>;
    fn log(&self, msg: &str);
}

const KEY_IDS: &str = "spoor.id";
const KEY_SESSION: &str = "spoor.s";
const KEY_CONSENT: &str = "spoor.c";
const KEY_SEARCH: &str = "spoor.ls";
const KEY_TAB: &str = "spoor.tab";
const QUEUE_PREFIX: &str = "spoor.q.";
/// A saved queue of another tab older than this is adopted (its tab is gone).
const ORPHAN_MS: u64 = 60_000;
/// Bodies smaller than this are not worth a compression round trip.
const GZIP_MIN_BYTES: usize = 1024;
/// A GET search form's query is expected in the next page's URL within this time.
const FORM_SEARCH_WAIT_MS: u64 = 1_500;
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
    path: String,
    title: String,
    referrer: String,
    route: String,
    host: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    Compressing,
    Sending,
}

/// The one batch between the queue and the collector.
struct Out {
    id: u32,
    /// The text, kept while it is being compressed (sent as is if compression fails).
    body: String,
    state: OutState,
}

pub struct Tracker<P: Platform> {
    p: P,
    cfg: Config,
    store: Store,
    /// Values kept when storage is off or unavailable.
    memory: Vec<(String, String)>,
    anon: String,
    user: Option<String>,
    session: Option<Session>,
    consent: Option<bool>,
    /// Consent allows it and the visitor is in the sample.
    on: bool,
    page: Option<PageCtx>,
    engage: Engagement,
    /// A `page_leave` was sent for the current page view (hidden, not yet shown again).
    left: bool,
    visible: bool,
    queue: Queue,
    out: Option<Out>,
    next_batch: u32,
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
    /// A GET search form was submitted; its query should show up in the next URL.
    form_search: Option<(String, u64)>,
    rand: [u8; 64],
    rand_pos: usize,
    context: Context,
}

impl<P: Platform> Tracker<P> {
    /// Builds the tracker; nothing is captured or stored until [`Tracker::start`].
    pub fn new(p: P, cfg: Config) -> Self {
        let mut url_text = cfg.host.clone();
        url_text.push_str("/v1/batch?key=");
        url_text.push_str(&url::encode(&cfg.key));
        let mut url_gzip = url_text.clone();
        url_gzip.push_str("&compression=gzip");
        let context = Context {
            locale: cfg.env.lang.clone(),
            tz: cfg.env.tz.clone(),
            screen_w: cfg.env.screen.0,
            screen_h: cfg.env.screen.1,
            viewport_w: cfg.env.viewport.0,
            viewport_h: cfg.env.viewport.1,
            lib: crate::LIB.into(),
        };
        Tracker {
            queue: Queue::new(cfg.max_queue),
            batch_cap: cfg.batch_events,
            engage: Engagement::new(0, true),
            p,
            store: Store::Memory,
            memory: Vec::new(),
            anon: String::new(),
            user: None,
            session: None,
            consent: None,
            on: false,
            page: None,
            left: false,
            visible: true,
            out: None,
            next_batch: 0,
            attempt: 0,
            retry_at: 0,
            due_at: 0,
            url_text,
            url_gzip,
            queue_key: String::new(),
            persisted: false,
            last_search: None,
            session_saved_ms: 0,
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

    fn random_bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            if self.rand_pos >= self.rand.len() {
                let mut pool = [0u8; 64];
                self.p.random(&mut pool);
                self.rand = pool;
                self.rand_pos = 0;
            }
            *b = self.rand[self.rand_pos];
            self.rand_pos += 1;
        }
        out
    }

    fn uuid(&mut self) -> String {
        ids::uuid_v4(self.random_bytes::<16>())
    }

    fn load(&self, key: &str) -> Option<String> {
        match self.store {
            Store::Local => self.p.get(Area::Local, key),
            Store::Cookie => self.p.get(Area::Cookie, key),
            Store::Memory => self
                .memory
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
        }
    }

    /// Stores `value` — only while tracking is on, except for the consent choice itself.
    fn save(&mut self, key: &str, value: &str) {
        if !self.on && key != KEY_CONSENT {
            return;
        }
        let ok = match self.store {
            Store::Local => self.p.set(Area::Local, key, value),
            Store::Cookie => self.p.set(Area::Cookie, key, value),
            Store::Memory => false,
        };
        if !ok {
            match self.memory.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.into(),
                None => self.memory.push((key.into(), value.into())),
            }
        }
    }

    fn forget(&mut self, key: &str) {
        match self.store {
            Store::Local => self.p.remove(Area::Local, key),
            Store::Cookie => self.p.remove(Area::Cookie, key),
            Store::Memory => {}
        }
        self.memory.retain(|(k, _)| k != key);
    }

    fn save_ids(&mut self) {
        let mut v = self.anon.clone();
        v.push('|');
        v.push_str(self.user.as_deref().unwrap_or(""));
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
        self.persisted = text.contains('\n');
        if !self.persisted {
            self.p.remove(Area::Local, &self.queue_key);
        } else if !self.p.set(Area::Local, &self.queue_key, &text) {
            self.p.log("queue not saved (storage full)");
        }
    }

    // ----- start -----

    /// Chooses storage, loads identity and consent, restores queued events, and records the
    /// first page view.
    pub fn start(&mut self) {
        let now = self.p.now();
        self.store = if self.cfg.cookieless {
            Store::Memory
        } else if self.p.set(Area::Local, "spoor.t", "1") {
            self.p.remove(Area::Local, "spoor.t");
            Store::Local
        } else if self.p.set(Area::Cookie, "spoor.t", "1") {
            self.p.remove(Area::Cookie, "spoor.t");
            Store::Cookie
        } else {
            Store::Memory
        };
        self.consent = self.load(KEY_CONSENT).map(|v| v == "1");
        match self.load(KEY_IDS) {
            Some(v) if v.len() > 1 => {
                let (a, u) = v.split_once('|').unwrap_or((&v, ""));
                self.anon = a.into();
                self.user = (!u.is_empty()).then(|| u.into());
            }
            _ => self.anon = self.uuid(),
        }
        let fresh_ids = self.load(KEY_IDS).is_none();
        self.session = self.load(KEY_SESSION).and_then(|s| Session::decode(&s));
        self.last_search = self
            .load(KEY_SEARCH)
            .and_then(|s| search::decode_last(&s).map(|(q, t)| (q.into(), t)));
        self.visible = self.cfg.env.visible;
        self.engage = Engagement::new(now, self.visible);
        self.update_on();
        if self.on {
            if fresh_ids {
                self.save_ids();
            }
            self.open_queue(now);
        }
        self.page_view(None);
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
        self.queue_key = String::from(QUEUE_PREFIX);
        self.queue_key.push_str(&tab);
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

    fn wire_session(s: &Session) -> WireSession {
        WireSession {
            id: s.id.clone(),
            index: s.index,
            started_at: time::rfc3339(s.started_ms),
            previous_id: s.previous_id.clone(),
        }
    }

    fn base(&mut self, kind: EventType, now: u64) -> Event<Raw> {
        Event {
            event_id: self.uuid(),
            kind,
            name: None,
            timestamp: time::rfc3339(now),
            anonymous_id: self.anon.clone(),
            user_id: self.user.clone(),
            session: self.session.as_ref().map(Self::wire_session),
            page: self.page.as_ref().map(|p| Page {
                url: p.url.clone(),
                path: p.path.clone(),
                title: p.title.clone(),
                referrer: p.referrer.clone(),
            }),
            click: None,
            search: None,
            leave: None,
            properties: None,
            traits: None,
            context: Some(self.context.clone()),
        }
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
            let ev = self.base(EventType::SessionStart, now);
            self.enqueue(&ev, now);
        } else if let Some(s) = &mut self.session {
            s.touch(now);
            // A few seconds of staleness in storage cannot matter to a 30-minute rule, and
            // it keeps storage writes off the per-event path.
            if now.saturating_sub(self.session_saved_ms) >= SESSION_SAVE_MS {
                self.save_session(now);
            }
        }
    }

    /// Captures one event: session bookkeeping first, then into the queue.
    fn emit(&mut self, kind: EventType, campaign: &str, fill: impl FnOnce(&mut Event<Raw>)) {
        if !self.on {
            return;
        }
        let now = self.p.now();
        self.touch_session(now, campaign);
        let mut ev = self.base(kind, now);
        fill(&mut ev);
        self.enqueue(&ev, now);
    }

    fn enqueue(&mut self, ev: &Event<Raw>, now: u64) {
        match json::to_string(ev) {
            Some(text) => {
                if !self.queue.push(text) {
                    self.p.log("event too large; dropped");
                }
            }
            None => self.p.log("event not serialisable; dropped"),
        }
        self.schedule(now);
    }

    /// Records a page view of the current URL (initial load, SPA navigation, `page()`).
    /// `referrer`: the previous URL for SPA navigations.
    fn page_view(&mut self, referrer: Option<String>) {
        let now = self.p.now();
        let read = self.p.page();
        let scrub = |k: &str| self.cfg.scrubs(k);
        let page_url = url::scrub(&read.href, scrub);
        let parts = url::split(&read.href);
        let ctx = PageCtx {
            path: parts.path.into(),
            title: read.title,
            referrer: referrer.unwrap_or_else(|| url::scrub(&read.referrer, scrub)),
            route: url::route_key(&read.href),
            host: parts.host.into(),
            url: page_url,
        };
        let campaign = url::campaign(parts.query);
        let found = search::query_from_url(parts.query, &self.cfg.search_params);
        self.page = Some(ctx);
        self.engage = Engagement::new(now, self.visible);
        self.left = false;
        self.emit(EventType::PageView, &campaign, |_| {});
        if let Some(q) = found {
            self.form_search = None;
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
        self.emit(EventType::Search, "", |e| {
            e.search = Some(Search {
                query: query.clone(),
                results_count,
                source: source.into(),
            })
        });
        let v = search::encode_last(&query, now);
        self.save(KEY_SEARCH, &v);
        self.last_search = Some((query, now));
    }

    fn page_leave(&mut self) {
        if self.left || self.page.is_none() {
            return;
        }
        self.left = true;
        let (engaged_ms, max_scroll_pct) = self.engage.read(self.p.now());
        self.emit(EventType::PageLeave, "", |e| {
            e.leave = Some(PageLeave {
                engaged_ms,
                max_scroll_pct,
            })
        });
    }

    // ----- public API -----

    /// A custom event. `properties`: JSON object text (from `JSON.stringify`).
    pub fn track(&mut self, name: &str, properties: Option<String>) {
        if name.is_empty() {
            return;
        }
        self.emit(EventType::Track, "", |e| {
            e.name = Some(name.into());
            e.properties = properties.map(Raw);
        });
    }

    pub fn identify(&mut self, user_id: &str, traits: Option<String>) {
        if user_id.is_empty() {
            return;
        }
        self.user = Some(user_id.into());
        self.save_ids();
        self.emit(EventType::Identify, "", |e| e.traits = traits.map(Raw));
    }

    /// Forgets the user: new anonymous id, no session (the next event starts one).
    pub fn reset(&mut self) {
        self.user = None;
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
            let referrer = self.page.as_ref().map(|p| p.referrer.clone());
            self.page_view(referrer);
        } else if !granted {
            self.queue.clear();
            self.out = None;
            for key in [KEY_IDS, KEY_SESSION, KEY_SEARCH] {
                self.forget(key);
            }
            if !self.queue_key.is_empty() {
                self.p.remove(Area::Local, &self.queue_key);
                self.queue_key.clear();
            }
            self.session = None;
            self.user = None;
            self.anon = self.uuid();
        }
    }

    /// Sends what is queued now, without waiting for a backoff to end.
    pub fn flush(&mut self) {
        self.retry_at = 0;
        let now = self.p.now();
        self.flush_now(now);
    }

    // ----- page signals -----

    /// History or hash navigation: a leave for the old route, a view for the new one.
    pub fn on_route(&mut self) {
        if !self.cfg.spa {
            return;
        }
        let href = self.p.page().href;
        let route = url::route_key(&href);
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
        let now = self.p.now();
        self.engage.activity(now);
        let Some(target) = click::parse(desc) else {
            return;
        };
        let host = self
            .page
            .as_ref()
            .map(|p| p.host.clone())
            .unwrap_or_default();
        let cfg = &self.cfg;
        let Some((c, props)) = click::capture(&target, &host, |k| cfg.scrubs(k)) else {
            return;
        };
        self.emit(EventType::Click, "", |e| {
            e.click = Some(c);
            e.properties = props.map(Raw);
        });
    }

    /// Which control of a submitted form (described by the JS side) holds a search query.
    pub fn search_field(&self, desc: &str) -> Option<usize> {
        search::search_control(&parse_form(desc).0, &self.cfg.search_params)
    }

    /// A form was submitted; `desc` from the JS side, `value_of(i)` reads control `i`.
    pub fn on_submit(&mut self, desc: &str, value_of: impl FnOnce(usize) -> String) {
        if !self.on {
            return;
        }
        let (form, get) = parse_form(desc);
        let Some(i) = search::search_control(&form, &self.cfg.search_params) else {
            return;
        };
        let query = search::clean(&value_of(i));
        if query.is_empty() {
            return;
        }
        let now = self.p.now();
        let named_param = form.controls.get(i).is_some_and(|c| {
            self.cfg
                .search_params
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&c.name))
        });
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
        if let Some((q, _)) = self.form_search.take() {
            // Still expected in the next URL; if it never comes, the next page has no
            // record of it, so send it now.
            self.record_search(q, None, "form", now);
        }
        self.page_leave();
        self.unload(now);
    }

    pub fn on_show(&mut self) {
        let now = self.p.now();
        self.visible = true;
        self.engage.visibility(true, now);
        if self.left {
            self.left = false;
            self.engage.restart(now);
        }
    }

    pub fn on_scroll(&mut self, pct: u32) {
        self.engage.scroll(pct);
        self.engage.activity(self.p.now());
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

    /// Decides when to send next.
    fn schedule(&mut self, now: u64) {
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
            self.flush_now(now);
        } else {
            self.arm(now, u64::from(self.cfg.flush_ms));
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
                self.record_search(q, None, "form", now);
            } else {
                self.form_search = Some((q, at));
                self.arm(now, FORM_SEARCH_WAIT_MS);
            }
        }
        if self.retry_at <= now {
            self.retry_at = 0;
            self.flush_now(now);
        } else {
            self.schedule(now);
        }
    }

    fn flush_now(&mut self, now: u64) {
        if self.out.is_some() || !self.on {
            return;
        }
        self.next_batch += 1;
        let id = self.next_batch;
        let sent_at = time::rfc3339(now);
        let Some(body) = self
            .queue
            .take(id, self.batch_cap, self.cfg.batch_bytes, &sent_at, None)
        else {
            return;
        };
        if self.cfg.env.compress && body.len() >= GZIP_MIN_BYTES {
            self.p.gzip(id, &body);
            self.out = Some(Out {
                id,
                body,
                state: OutState::Compressing,
            });
        } else {
            self.p.send(id, &self.url_text, Payload::Text(&body), false);
            self.out = Some(Out {
                id,
                body: String::new(),
                state: OutState::Sending,
            });
        }
    }

    /// Compression of batch `id` finished (`None`: it failed; send it uncompressed).
    pub fn compressed(&mut self, id: u32, bytes: Option<P::Bytes>) {
        let Some(out) = self.out.as_mut().filter(|o| o.id == id) else {
            return;
        };
        if out.state != OutState::Compressing {
            return;
        }
        match bytes {
            Some(b) => {
                self.p.send(id, &self.url_gzip, Payload::Gzip(&b), false);
            }
            None => {
                self.p
                    .send(id, &self.url_text, Payload::Text(&out.body), false);
            }
        }
        out.body = String::new();
        out.state = OutState::Sending;
    }

    /// The collector answered batch `id` (`status` 0: network error). `retry_after_ms`: its
    /// `Retry-After`, 0 if none. `rejected`: comma-separated ids of events it refused.
    pub fn sent(&mut self, id: u32, status: u16, retry_after_ms: u64, rejected: &str) {
        if self.out.as_ref().is_none_or(|o| o.id != id) {
            return;
        }
        self.out = None;
        let now = self.p.now();
        match retry::verdict(status) {
            Verdict::Delivered => {
                if !rejected.is_empty() {
                    // Refused events are final (invalid data): they are not sent again.
                    self.p.log("collector rejected events; see the response");
                }
                self.queue.remove_batch(id);
                self.attempt = 0;
                self.retry_at = 0;
            }
            Verdict::Retry => {
                self.queue.release(id);
                self.attempt = self.attempt.saturating_add(1);
                let jitter = u32::from_le_bytes(self.random_bytes::<4>());
                self.retry_at = now + retry::backoff_ms(self.attempt, jitter, retry_after_ms);
                self.due_at = 0;
            }
            Verdict::TooLarge => {
                let n = self.queue.batch_len(id);
                if n > 1 {
                    self.batch_cap = (n / 2).max(1);
                    self.queue.release(id);
                } else {
                    self.queue.remove_batch(id);
                    self.queue.dropped += 1;
                    self.p.log("event too large for the collector; dropped");
                }
            }
            Verdict::Refused => {
                self.queue.dropped += self.queue.remove_batch(id) as u32;
                self.p.log("collector refused a batch; dropped");
            }
        }
        if self.attempt > 0 || self.persisted {
            self.save_queue(true);
        }
        self.schedule(now);
    }

    /// Hands everything waiting to `sendBeacon` in chunks under 64 KiB and saves the queue.
    /// While the collector looks healthy, beaconed and in-flight events are trusted to
    /// arrive; after failures they stay saved and are sent again by the next page (the
    /// collector counts an `event_id` once), so an outage loses nothing.
    fn unload(&mut self, now: u64) {
        if !self.on {
            return;
        }
        let healthy = self.attempt == 0;
        if let Some(out) = self.out.take() {
            if out.state == OutState::Sending {
                self.out = Some(out);
            } else {
                self.queue.release(out.id);
            }
        }
        let sent_at = time::rfc3339(now);
        let key = self.cfg.key.clone();
        let mut handed = Vec::new();
        loop {
            self.next_batch += 1;
            let id = self.next_batch;
            let Some(body) =
                self.queue
                    .take(id, usize::MAX, queue::BEACON_BYTES, &sent_at, Some(&key))
            else {
                break;
            };
            let queued = self.p.send(id, &self.url_text, Payload::Text(&body), true);
            handed.push((id, queued));
            if !queued {
                break;
            }
        }
        for (id, queued) in handed {
            if queued && healthy {
                self.queue.remove_batch(id);
            } else {
                self.queue.release(id);
            }
        }
        self.save_queue(!healthy);
    }
}

/// Reads the JS side's form description (records U+001E, fields U+001F): first the form —
/// role=search (`1`), action, id, class, method — then one record per control — type,
/// name, id, role. Returns the form and whether it submits with GET.
pub fn parse_form(desc: &str) -> (search::Form, bool) {
    let mut recs = desc.split('\u{1e}');
    let mut f = recs.next().unwrap_or("").split('\u{1f}');
    let mut form = search::Form {
        role_search: f.next() == Some("1"),
        action: f.next().unwrap_or("").into(),
        id: f.next().unwrap_or("").into(),
        class: f.next().unwrap_or("").into(),
        controls: Vec::new(),
    };
    let get = !f.next().unwrap_or("").eq_ignore_ascii_case("post");
    for rec in recs {
        let mut c = rec.split('\u{1f}');
        form.controls.push(search::Control {
            kind: c.next().unwrap_or("").to_ascii_lowercase(),
            name: c.next().unwrap_or("").into(),
            id: c.next().unwrap_or("").into(),
            role: c.next().unwrap_or("").into(),
        });
    }
    (form, get)
}
