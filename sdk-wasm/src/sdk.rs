//! The wasm edge: the real [`Platform`] over the JS host object (`spoorHost` in
//! js/core.js) and the functions the JS side calls.
//!
//! Everything the page does reaches Rust through these exports; every one of them is
//! guarded so that a second entry while the tracker is busy (which the JS side never
//! causes) is ignored instead of panicking, and nothing is thrown back into the page.

use std::cell::RefCell;

use wasm_bindgen::prelude::*;

use crate::click;
use crate::config::Config;
use crate::tracker::{Area, PageRead, Payload, Platform, Tracker};

#[wasm_bindgen]
extern "C" {
    /// The JS side's host object (`spoorHost(W)` in js/core.js).
    pub type Host;
    #[wasm_bindgen(method)]
    fn now(this: &Host) -> f64;
    #[wasm_bindgen(method)]
    fn random(this: &Host, buf: &mut [u8]);
    /// `href \n title \n referrer`.
    #[wasm_bindgen(method)]
    fn page(this: &Host) -> String;
    #[wasm_bindgen(method)]
    fn get(this: &Host, area: u8, key: &str) -> Option<String>;
    #[wasm_bindgen(method)]
    fn set(this: &Host, area: u8, key: &str, value: &str) -> bool;
    #[wasm_bindgen(method)]
    fn del(this: &Host, area: u8, key: &str);
    /// Local-storage keys starting with `prefix`, newline-separated.
    #[wasm_bindgen(method)]
    fn keys(this: &Host, prefix: &str) -> String;
    #[wasm_bindgen(method)]
    fn send(this: &Host, id: u32, url: &str, body: &JsValue, beacon: bool) -> bool;
    #[wasm_bindgen(method)]
    fn gzip(this: &Host, id: u32, body: &str);
    #[wasm_bindgen(method)]
    fn timer(this: &Host, ms: f64);
    #[wasm_bindgen(method)]
    fn results(this: &Host) -> Option<String>;
    #[wasm_bindgen(method)]
    fn describe(this: &Host, target: &JsValue, clickable: &str, attrs: &str) -> String;
    #[wasm_bindgen(method)]
    fn form(this: &Host, form: &JsValue) -> String;
    #[wasm_bindgen(method)]
    fn value(this: &Host, form: &JsValue, index: u32) -> String;
    #[wasm_bindgen(method)]
    fn log(this: &Host, msg: &str);
}

/// The browser, through the JS host.
pub struct Web {
    host: Host,
    debug: bool,
    /// `Config::attrs` joined with commas, for `describe`.
    attrs: String,
}

impl Web {
    pub fn new(host: Host, cfg: &Config) -> Self {
        Web {
            host,
            debug: cfg.debug,
            attrs: cfg.attrs.join(","),
        }
    }

    pub fn host(&self) -> &Host {
        &self.host
    }
}

fn area(a: Area) -> u8 {
    match a {
        Area::Local => 0,
        Area::Tab => 1,
        Area::Cookie => 2,
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
        let mut it = text.splitn(3, '\n');
        PageRead {
            href: it.next().unwrap_or("").into(),
            title: it.next().unwrap_or("").into(),
            referrer: it.next().unwrap_or("").into(),
        }
    }

    fn get(&self, a: Area, key: &str) -> Option<String> {
        self.host.get(area(a), key)
    }

    fn set(&self, a: Area, key: &str, value: &str) -> bool {
        self.host.set(area(a), key, value)
    }

    fn remove(&self, a: Area, key: &str) {
        self.host.del(area(a), key);
    }

    fn keys(&self, prefix: &str) -> Vec<String> {
        self.host
            .keys(prefix)
            .split('\n')
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect()
    }

    fn send(&self, id: u32, url: &str, body: Payload<'_, JsValue>, beacon: bool) -> bool {
        match body {
            Payload::Text(s) => self.host.send(id, url, &JsValue::from_str(s), beacon),
            Payload::Gzip(b) => self.host.send(id, url, b, beacon),
        }
    }

    fn gzip(&self, id: u32, body: &str) {
        self.host.gzip(id, body);
    }

    fn timer(&self, ms: u64) {
        self.host.timer(ms as f64);
    }

    fn results_count(&self) -> Option<String> {
        self.host.results()
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
        let p = self.platform();
        let desc = p.host.describe(target, click::CLICKABLE, &p.attrs);
        self.on_click(&desc);
    }

    /// A submit of `form`.
    pub fn submit_form(&mut self, form: &JsValue) {
        if !self.is_on() {
            return;
        }
        let desc = self.platform().host.form(form);
        let Some(i) = self.search_field(&desc) else {
            return;
        };
        let value = self.platform().host.value(form, i as u32);
        self.on_submit(&desc, |_| value);
    }
}

thread_local! {
    static TRACKER: RefCell<Option<Tracker<Web>>> = const { RefCell::new(None) };
}

/// Runs `f` on the tracker, if started and not busy.
fn with(f: impl FnOnce(&mut Tracker<Web>)) {
    let _ = TRACKER.try_with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut()
            && let Some(t) = slot.as_mut()
        {
            f(t);
        }
    });
}

/// Starts the SDK with `name=value` option lines (see [`Config::parse`]) and the JS host.
/// Returns false (and does nothing) without a key and a host, or when already started.
#[wasm_bindgen]
pub fn start(config: &str, host: Host) -> bool {
    let Some(cfg) = Config::parse(config) else {
        return false;
    };
    TRACKER
        .try_with(|cell| {
            let Ok(mut slot) = cell.try_borrow_mut() else {
                return false;
            };
            if slot.is_some() {
                return false;
            }
            let web = Web::new(host, &cfg);
            let t = slot.insert(Tracker::new(web, cfg));
            t.start();
            true
        })
        .unwrap_or(false)
}

#[wasm_bindgen]
pub fn track(name: &str, properties: Option<String>) {
    with(|t| t.track(name, properties));
}

#[wasm_bindgen]
pub fn identify(user_id: &str, traits: Option<String>) {
    with(|t| t.identify(user_id, traits));
}

#[wasm_bindgen]
pub fn search(query: &str, results_count: Option<u32>) {
    with(|t| t.search(query, results_count));
}

#[wasm_bindgen]
pub fn on_click(target: JsValue) {
    with(|t| t.click_element(&target));
}

#[wasm_bindgen]
pub fn on_submit(form: JsValue) {
    with(|t| t.submit_form(&form));
}

/// Everything without a payload, in one export (each export costs glue on both sides):
/// 0 timer, 1 hidden/pagehide, 2 visible again, 3 interaction, 4 online, 5 history/hash
/// navigation, 6 `flush()`, 7 `reset()`, 8 `page()`, 9 scroll depth `arg` %,
/// 10 `setConsent(arg != 0)`.
#[wasm_bindgen]
pub fn signal(kind: u32, arg: u32) {
    with(|t| match kind {
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
    });
}

#[wasm_bindgen]
pub fn compressed(id: u32, bytes: JsValue) {
    let bytes = (!bytes.is_null() && !bytes.is_undefined()).then_some(bytes);
    with(|t| t.compressed(id, bytes));
}

#[wasm_bindgen]
pub fn sent(id: u32, status: u16, retry_after_ms: f64, rejected: &str) {
    with(|t| t.sent(id, status, retry_after_ms as u64, rejected));
}
