//! The wasm edge: the real [`Platform`] over the JS host object (`spoorHost` in
//! js/core.js) and the object the JS side drives ([`Spoor`]).
//!
//! The shipped JS does not use wasm-bindgen's generated glue: `spoorWasm` in js/core.js
//! implements these imports and exports by hand (wasm-bindgen 0.2.130's ABI). Changing a
//! signature here means changing it there; `sdk-wasm/build` fails when an import has no
//! handler of the same arity (`spoor-sdk-tools check-glue`).
//!
//! The tracker lives in a wasm-bindgen object the JS side holds, not in a global: without
//! `std` there is no `thread_local!`, and a `static` with interior mutability would need
//! `unsafe`. wasm-bindgen checks each call's borrow (a nested call, which the JS side never
//! makes, is refused with an exception the JS side catches).

use alloc::string::String;
use alloc::vec::Vec;

use wasm_bindgen::prelude::*;

use crate::click;
use crate::config::Config;
use crate::text::{int, pieces};
use crate::tracker::{Area, Body, PageRead, Platform, Tracker};

#[wasm_bindgen]
extern "C" {
    /// The JS side's host object (`spoorHost()` in js/core.js).
    pub type Host;
    #[wasm_bindgen(method)]
    fn now(this: &Host) -> f64;
    #[wasm_bindgen(method)]
    fn random(this: &Host, buf: &mut [u8]);
    /// `href \n title \n referrer \n data-spoor-results`.
    #[wasm_bindgen(method)]
    fn page(this: &Host) -> String;
    /// Storage, in one import (each import costs glue on both sides): `op` 0 get, 1 set
    /// (`Some` when stored), 2 delete, 3 the local-storage keys starting with `key`,
    /// newline-separated; `area` 0 local storage, 1 this tab's, 2 cookies.
    #[wasm_bindgen(method)]
    fn store(this: &Host, op: u8, area: u8, key: &str, value: &str) -> Option<String>;
    /// The body is `a`, or `a`, `events`, `b` one after the other when `events` is defined.
    #[wasm_bindgen(method)]
    fn send(
        this: &Host,
        id: u32,
        url: &str,
        a: &[u8],
        events: &JsValue,
        b: &[u8],
        beacon: bool,
    ) -> bool;
    #[wasm_bindgen(method)]
    fn gzip(this: &Host, id: u32, text: &str);
    #[wasm_bindgen(method)]
    fn timer(this: &Host, ms: f64);
    #[wasm_bindgen(method)]
    fn describe(this: &Host, target: &JsValue, clickable: &str, attrs: &str) -> String;
    /// The form's description (`index` < 0), or the value of its control `index`.
    #[wasm_bindgen(method)]
    fn form(this: &Host, form: &JsValue, index: i32) -> String;
    #[wasm_bindgen(method)]
    fn log(this: &Host, msg: &str);
}

/// The browser, through the JS host.
pub struct Web {
    host: Host,
    debug: bool,
}

impl Web {
    pub fn new(host: Host, cfg: &Config) -> Self {
        Web {
            host,
            debug: cfg.debug,
        }
    }

    pub fn host(&self) -> &Host {
        &self.host
    }
}

impl Platform for Web {
    type Bytes = JsValue;

    fn now(&self) -> u64 {
        self.host.now() as u64
    }

    fn random(&mut self, buf: &mut [u8]) {
        self.host.random(buf);
    }

    fn page(&self) -> PageRead {
        let text = self.host.page();
        let mut lines = pieces(&text, b'\n');
        let mut next = || String::from(lines.next().unwrap_or(""));
        PageRead {
            href: next(),
            title: next(),
            referrer: next(),
        }
    }

    fn get(&self, a: Area, key: &str) -> Option<String> {
        self.host.store(0, a as u8, key, "")
    }

    fn set(&self, a: Area, key: &str, value: &str) -> bool {
        self.host.store(1, a as u8, key, value).is_some()
    }

    fn remove(&self, a: Area, key: &str) {
        self.host.store(2, a as u8, key, "");
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let keys = self.host.store(3, 0, prefix, "").unwrap_or_default();
        pieces(&keys, b'\n')
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect()
    }

    fn send(&self, id: u32, url: &str, body: Body<'_, JsValue>, beacon: bool) -> bool {
        let (a, events, b) = match body {
            Body::Text(s) => (s.as_bytes(), &JsValue::UNDEFINED, &[][..]),
            Body::Gzip { head, events, tail } => (head, events, tail),
        };
        self.host.send(id, url, a, events, b, beacon)
    }

    fn gzip(&self, id: u32, text: &str) {
        self.host.gzip(id, text);
    }

    fn timer(&self, ms: u64) {
        self.host.timer(ms as f64);
    }

    fn results_count(&self) -> Option<String> {
        let page = self.host.page();
        let results = pieces(&page, b'\n').nth(3)?;
        (!results.is_empty()).then(|| results.into())
    }

    fn log(&self, msg: &str) {
        if self.debug {
            self.host.log(msg);
        }
    }
}

impl Tracker<Web> {
    /// A click on `target` (the event's target element).
    pub fn click_element(&mut self, target: &JsValue) {
        if !self.is_on() || !self.config().autocapture {
            return;
        }
        let desc = self
            .platform()
            .host
            .describe(target, click::CLICKABLE, &self.config().attrs);
        self.on_click(&desc);
    }

    /// A submit of `form`.
    pub fn submit_form(&mut self, form: &JsValue) {
        if !self.is_on() {
            return;
        }
        let desc = self.platform().host.form(form, -1);
        let Some(i) = self.search_field(&desc) else {
            return;
        };
        let value = self.platform().host.form(form, i as i32);
        self.on_submit(&desc, |_| value);
    }
}

/// The running SDK, as the JS side holds it.
#[wasm_bindgen]
pub struct Spoor(Tracker<Web>);

#[wasm_bindgen]
impl Spoor {
    /// Starts the SDK with `name=value` option lines (see [`Config::parse`]) and the JS
    /// host; `undefined` (and nothing done) without a key and a host.
    pub fn start(config: &str, host: Host) -> Option<Spoor> {
        let cfg = Config::parse(config)?;
        let web = Web::new(host, &cfg);
        let mut t = Tracker::new(web, cfg);
        t.start();
        Some(Spoor(t))
    }

    /// The calls with text: 0 `track(a, b = properties JSON)`, 1 `identify(a, b = traits
    /// JSON)`, 2 `search(a, b = results count)`; `b` empty: none. One export for three (each
    /// export costs glue on both sides); `&str` rather than `Option<String>`, whose
    /// conversion from the ABI costs more wasm.
    pub fn text(&mut self, kind: u32, a: &str, b: &str) {
        let t = &mut self.0;
        let b = (!b.is_empty()).then_some(b);
        match kind {
            0 => t.track(a, b.map(String::from)),
            1 => t.identify(a, b.map(String::from)),
            _ => t.search(a, b.and_then(int).map(|n| n as u32)),
        }
    }

    /// 0 a click on `el`, 1 a submit of the form `el`.
    pub fn element(&mut self, kind: u32, el: JsValue) {
        match kind {
            0 => self.0.click_element(&el),
            _ => self.0.submit_form(&el),
        }
    }

    /// Everything without a payload: 0 timer, 1 hidden/pagehide, 2 visible again,
    /// 3 interaction, 4 online, 5 history/hash navigation, 6 `flush()`, 7 `reset()`,
    /// 8 `page()`, 9 scroll depth `arg` %, 10 `setConsent(arg != 0)`.
    pub fn signal(&mut self, kind: u32, arg: u32) {
        let t = &mut self.0;
        match kind {
            0 => t.tick(),
            1 => t.on_hide(),
            2 => t.on_show(),
            3 => t.on_activity(),
            4 => t.on_online(),
            5 => t.on_route(),
            6 => t.flush(),
            7 => t.reset(),
            8 => t.page(),
            9 => t.on_scroll(arg),
            10 => t.set_consent(arg != 0),
            _ => {}
        }
    }

    /// Compression `id` finished: the gzip bytes and their length (0: it failed).
    pub fn compressed(&mut self, id: u32, bytes: JsValue, len: u32) {
        self.0
            .compressed(id, (len > 0).then_some((bytes, len as usize)));
    }

    /// The collector answered batch `id` (see [`Tracker::sent`]).
    pub fn sent(&mut self, id: u32, status: u16, retry_after_ms: f64, rejected: &str) {
        self.0.sent(id, status, retry_after_ms as u64, rejected);
    }
}
