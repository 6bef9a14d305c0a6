//! The wasm edge: the real [`Platform`] over the JS host object (`spoorHost` in
//! js/core.js) and the two exports the JS side calls ([`start`], [`call`]).
//!
//! The shipped JS does not use wasm-bindgen's generated glue: `spoorWasm` in js/core.js
//! implements these imports and exports by hand (wasm-bindgen 0.2.130's ABI). Changing a
//! signature here means changing it there; `sdk-wasm/build` fails when an import has no
//! handler of the same arity (`spoor-sdk-tools check-glue`).
//!
//! The running tracker lives in a `static` behind a lock ([`SDK`]: `spin`'s mutex, which
//! makes a `static` with interior mutability possible without `unsafe` and without `std`),
//! and the two exports are plain functions. An exported wasm-bindgen object instead (what
//! the SDK had before) costs its borrow cell and error messages, and every method takes the
//! tracker's address; with a `static` its fields are at constant addresses (measured: README
//! "Size"). A nested call, which the JS side never makes, finds the lock taken and is ignored.

use alloc::string::String;
use alloc::vec::Vec;

use wasm_bindgen::prelude::*;

use crate::click;
use crate::config::Config;
use crate::text::{int, pieces};
use crate::tracker::{Area, Body, PageRead, Platform, Tracker};

// The JS host's methods, called as `spoorH.name(…)` (wasm-bindgen's own glue, in the
// browser suites, finds the host there); the shipped glue (js/core.js) calls the host
// it was started with. No JS value crosses into the wasm at all — not the host, not the
// clicked element (the host keeps it: `focus`), not the compressed bytes (the host keeps
// those of the latest compression; the wasm names them by the compression's id) — so
// wasm-bindgen's externref table machinery is not in the binary (measured: 0.6 KB gzipped).
#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = spoorH)]
    fn now() -> f64;
    #[wasm_bindgen(js_namespace = spoorH)]
    fn random(buf: &mut [u8]);
    /// `href \n title \n referrer \n data-spoor-results \n host \n pathname \n search \n
    /// hash` (`search` and `hash` without `?` and `#`).
    #[wasm_bindgen(js_namespace = spoorH)]
    fn page() -> String;
    /// Storage, in one import (each import costs glue on both sides): `op` 0 get, 1 set
    /// (`Some` when stored), 2 delete, 3 the local-storage keys starting with `key`,
    /// newline-separated; `area` 0 local storage, 1 this tab's, 2 cookies.
    #[wasm_bindgen(js_namespace = spoorH)]
    fn store(op: u8, area: u8, key: &str, value: &str) -> Option<String>;
    /// The body is `a`, or `a`, the bytes of compression `events`, `b` one after the other
    /// when `events` is not 0 (the host keeps the bytes of the latest compression).
    #[wasm_bindgen(js_namespace = spoorH)]
    fn send(id: u32, url: &str, a: &[u8], events: u32, b: &[u8], beacon: bool) -> bool;
    #[wasm_bindgen(js_namespace = spoorH)]
    fn gzip(id: u32, text: &str);
    #[wasm_bindgen(js_namespace = spoorH)]
    fn timer(ms: f64);
    /// The element the host was last given (`focus`, or a listener of js/core.js).
    /// `clickable` must be static text: the shipped glue decodes it once per address.
    #[wasm_bindgen(js_namespace = spoorH)]
    fn describe(clickable: &'static str, attrs: &str) -> String;
    /// The form last given: its description (`index` < 0), or the value of its control
    /// `index`.
    #[wasm_bindgen(js_namespace = spoorH)]
    fn form(index: i32) -> String;
    /// Gives the host the element the next `describe` or `form` reads.
    #[wasm_bindgen(js_namespace = spoorH)]
    fn focus(el: &JsValue);
    #[wasm_bindgen(js_namespace = spoorH, js_name = log)]
    fn warn(msg: &str);
    /// `new Date(ms).toISOString()`.
    #[wasm_bindgen(js_namespace = spoorH)]
    fn iso(ms: f64) -> String;
    /// Whether the case-insensitive `RegExp` `pattern` matches in `text` ([`crate::pattern`]).
    /// `pattern` must be static text: the shipped glue decodes it once per address.
    #[wasm_bindgen(js_namespace = spoorH)]
    pub(crate) fn re(pattern: &'static str, text: &str) -> bool;
    /// `decodeURIComponent` with `+` as space; `s` itself when that throws.
    #[wasm_bindgen(js_namespace = spoorH, js_name = decode)]
    pub(crate) fn unescape(s: &str) -> String;
}

/// The browser, through the JS host.
pub struct Web {
    debug: bool,
}

impl Web {
    pub fn new(cfg: &Config) -> Self {
        Web { debug: cfg.debug }
    }
}

impl Platform for Web {
    type Bytes = u32;

    fn now(&self) -> u64 {
        now() as u64
    }

    fn random(&mut self, buf: &mut [u8]) {
        random(buf);
    }

    fn page(&self) -> PageRead {
        let text = page();
        let mut lines = pieces(&text, b'\n');
        let mut next = || String::from(lines.next().unwrap_or(""));
        let (href, title, referrer, _results) = (next(), next(), next(), next());
        PageRead {
            href,
            title,
            referrer,
            host: next(),
            path: next(),
            query: next(),
            hash: next(),
        }
    }

    fn get(&self, a: Area, key: &str) -> Option<String> {
        store(0, a as u8, key, "")
    }

    fn set(&self, a: Area, key: &str, value: &str) -> bool {
        store(1, a as u8, key, value).is_some()
    }

    fn remove(&self, a: Area, key: &str) {
        store(2, a as u8, key, "");
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        let keys = store(3, 0, prefix, "").unwrap_or_default();
        pieces(&keys, b'\n')
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect()
    }

    fn send(&self, id: u32, url: &str, body: Body<'_, u32>, beacon: bool) -> bool {
        let (a, events, b) = match body {
            Body::Text(s) => (s.as_bytes(), 0, &[][..]),
            Body::Gzip { head, events, tail } => (head, *events, tail),
        };
        send(id, url, a, events, b, beacon)
    }

    fn gzip(&self, id: u32, text: &str) {
        gzip(id, text);
    }

    fn timer(&self, ms: u64) {
        timer(ms as f64);
    }

    fn results_count(&self) -> Option<String> {
        let page = page();
        let results = pieces(&page, b'\n').nth(3)?;
        (!results.is_empty()).then(|| results.into())
    }

    /// The browser's `toISOString` instead of the date arithmetic of [`crate::time`]
    /// (measured: less wasm).
    fn push_time(&self, out: &mut String, ms: u64) {
        out.push_str(&iso(ms as f64));
    }

    fn log(&self, msg: &str) {
        if self.debug {
            warn(msg);
        }
    }
}

impl Tracker<Web> {
    /// A click on `target` (the event's target element).
    pub fn click_element(&mut self, target: &JsValue) {
        focus(target);
        self.click();
    }

    /// A click on the element the host holds.
    pub fn click(&mut self) {
        if !self.is_on() || !self.config().autocapture {
            return;
        }
        let desc = describe(click::CLICKABLE, &self.config().attrs);
        self.on_click(&desc);
    }

    /// A submit of `form`.
    pub fn submit_form(&mut self, form: &JsValue) {
        focus(form);
        self.submit();
    }

    /// A submit of the form the host holds: its control values are read only for the
    /// search box chosen.
    pub fn submit(&mut self) {
        if !self.is_on() {
            return;
        }
        let desc = form(-1);
        self.on_submit(&desc, |i| form(i as i32));
    }
}

/// The running SDK (see the module's documentation). The lock (`spin`, already in the graph
/// through `lol_alloc`) is only ever tried: a call made while another one runs (which the JS
/// side never does) is ignored, never waited for. A trap (a bug) leaves it taken: the SDK
/// then does nothing more on this page, as a stuck borrow of the former exported object did.
static SDK: spin::Mutex<Option<Tracker<Web>>> = spin::Mutex::new(None);

/// Starts the SDK with `name=value` option lines (see [`Config::parse`]); false (and
/// nothing done) without a key and a host, or when it is already started.
#[wasm_bindgen]
pub fn start(config: &str) -> bool {
    let Some(mut sdk) = SDK.try_lock() else {
        return false;
    };
    if sdk.is_some() {
        return false;
    }
    let Some(cfg) = Config::parse(config) else {
        return false;
    };
    let web = Web::new(&cfg);
    // The slot is empty (checked above): nothing to drop, so no drop glue for the tracker
    // (`Option::insert` would bring it in; measured).
    core::mem::forget(sdk.replace(Tracker::new(web, cfg)));
    sdk.as_mut().map(Tracker::start).is_some()
}

/// Every other call from the JS side, in one export (each export costs an ABI shim on
/// both sides; measured). `kind`:
/// * 0–10, without a payload (`n`: the argument): 0 timer, 1 hidden/pagehide, 2 visible
///   again (`n` = 1: restored from the back/forward cache), 3 interaction, 4 online, 5 history/hash navigation, 6 `flush()`, 7
///   `reset()`, 8 `page()`, 9 scroll depth `n` %, 10 `setConsent(n != 0)`;
/// * 11 `track(a, b = properties JSON)`, 12 `identify(a, b = traits JSON)`, 13
///   `search(a, b = results count)` — `b` empty: none (`&str` rather than
///   `Option<String>`, whose conversion from the ABI costs more wasm);
/// * 14 a click on the element, 15 a submit of the form the host was given;
/// * 16 compression `n` finished with `m` bytes (0: it failed), which the host keeps;
/// * 17 the collector answered batch `n` with status `m`, `Retry-After` `x` ms and the
///   rejected event ids `a` (see [`Tracker::sent`]).
#[wasm_bindgen]
pub fn call(kind: u32, n: u32, m: u32, x: f64, a: &str, b: &str) {
    let Some(mut sdk) = SDK.try_lock() else {
        return;
    };
    let Some(t) = sdk.as_mut() else {
        return;
    };
    let b = (!b.is_empty()).then_some(b);
    match kind {
        0 => t.tick(),
        1 => t.on_hide(),
        2 if n != 0 => t.on_restore(),
        2 => t.on_show(),
        3 => t.on_activity(),
        4 => t.on_online(),
        5 => t.on_route(),
        6 => t.flush(),
        7 => t.reset(),
        8 => t.page(),
        9 => t.on_scroll(n),
        10 => t.set_consent(n != 0),
        11 => t.track_json(a, b),
        12 => t.identify_json(a, b),
        13 => t.search(a, b.and_then(int).map(|n| n as u32)),
        14 => t.click(),
        15 => t.submit(),
        16 => t.compressed(n, (m > 0).then_some((n, m as usize))),
        17 => t.sent(n, m as u16, x as u64, a),
        _ => {}
    }
}
