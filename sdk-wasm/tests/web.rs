//! Browser suites (wasm-bindgen-test, headless Chromium): the tracker with the real JS host
//! from js/core.js — real DOM, localStorage, sessionStorage, cookies, CompressionStream —
//! with only the network, the timer and the clock replaced by recorders.
//!
//! Run with `sdk-wasm/test` (or `cargo test -p spoor-sdk --target wasm32-unknown-unknown`
//! with `CHROMEDRIVER` set and wasm-bindgen-test-runner as the target runner).
#![cfg(target_arch = "wasm32")]

use js_sys::{Array, Reflect};
use serde_json::Value;
use spoor_sdk::config::Config;
use spoor_sdk::sdk::Web;
use spoor_sdk::tracker::Tracker;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const CORE_JS: &str = include_str!("../js/core.js");

/// The real host with recorders for the network, timer and clock.
fn host() -> JsValue {
    let script = String::from(CORE_JS)
        + r#"
;(function () {
  var log = [];
  var h = spoorHost();
  // The wasm's imports call the host as `spoorH` (src/sdk.rs).
  globalThis.spoorH = h;
  // The running SDK's one entry (call(kind, …), src/sdk.rs `call`), recorded; a finished
  // compression (kind 16) with the bytes the host keeps.
  h.sdk = function (k, n, m) {
    log.push(k == 16 ? ['compressed', n, h.z, m] : [k].concat([].slice.call(arguments, 1)));
  };
  // The element the next describe or form reads (src/sdk.rs `focus`: only the Rust entry
  // points these suites call, `click_element` and `submit_form`, import it).
  h.focus = function (el) { h.el = el; };
  h.log_ = log;
  h.clock = { t: 1795255200000 };
  h.now = function () { return h.clock.t; };
  h.sends = [];
  h.timers = [];
  // Plain bodies are recorded as text; gzip bodies as their three members (the middle one
  // the bytes of compression `ev`, which the host keeps).
  h.send = function (id, url, a, ev, b, beacon) {
    h.sends.push([id, url, ev ? undefined : new TextDecoder().decode(a), beacon, ev && [a.slice(), h.z, b.slice()]]);
    return true;
  };
  h.timer = function (ms) { h.timers.push(ms); };
  return h;
})()"#;
    js_sys::eval(&script).expect("core.js evaluates")
}

fn get(o: &JsValue, k: &str) -> JsValue {
    Reflect::get(o, &k.into()).unwrap()
}

fn set_clock(h: &JsValue, t: f64) {
    Reflect::set(&get(h, "clock"), &"t".into(), &t.into()).unwrap();
}

fn clock(h: &JsValue) -> f64 {
    get(&get(h, "clock"), "t").as_f64().unwrap()
}

fn fresh_storage() {
    let w = web_window();
    let ls = get(&w, "localStorage");
    let _ = js_sys::eval(
        "localStorage.clear(); sessionStorage.clear(); document.cookie.split('; ').forEach(function (c) { document.cookie = c.split('=')[0] + '=; path=/; max-age=0'; });",
    );
    let _ = ls;
}

fn web_window() -> JsValue {
    js_sys::global().into()
}

fn tracker(h: &JsValue, extra: &str) -> Tracker<Web> {
    let mut lines = String::from("key=pk_test\nhost=https://c.example\ncompress=false\n");
    lines.push_str(extra);
    let cfg = Config::parse(&lines).unwrap();
    // The wasm talks to the host installed as `spoorH` (src/sdk.rs).
    Reflect::set(&js_sys::global(), &"spoorH".into(), h).unwrap();
    let mut t = Tracker::new(Web::new(&cfg), cfg);
    t.start();
    t
}

/// (id, url, body text, beacon) of every recorded send.
fn sends(h: &JsValue) -> Vec<(u32, String, String, bool)> {
    Array::from(&get(h, "sends"))
        .iter()
        .map(|s| {
            let a = Array::from(&s);
            (
                a.get(0).as_f64().unwrap() as u32,
                a.get(1).as_string().unwrap(),
                a.get(2).as_string().unwrap_or_default(),
                a.get(3).as_bool().unwrap(),
            )
        })
        .collect()
}

fn events(h: &JsValue) -> Vec<Value> {
    sends(h)
        .iter()
        .flat_map(|(_, _, body, _)| {
            let v: Value = serde_json::from_str(body).unwrap();
            v["events"].as_array().unwrap().clone()
        })
        .collect()
}

fn of_type(evs: &[Value], ty: &str) -> Vec<Value> {
    evs.iter().filter(|e| e["type"] == ty).cloned().collect()
}

fn last_timer(h: &JsValue) -> f64 {
    let t = Array::from(&get(h, "timers"));
    t.get(t.length() - 1).as_f64().unwrap()
}

fn body_el() -> JsValue {
    js_sys::eval("document.body").unwrap()
}

/// Test markup goes into its own element: the runner reports results through the body.
fn fixture(html: &str) {
    let f = js_sys::eval(
        "document.getElementById('fixture') || document.body.appendChild(Object.assign(document.createElement('div'), { id: 'fixture' }))",
    )
    .unwrap();
    Reflect::set(&f, &"innerHTML".into(), &html.into()).unwrap();
}

fn el(selector: &str) -> JsValue {
    js_sys::eval(&format!("document.querySelector({selector:?})")).unwrap()
}

// ----- selector generation, sensitive-field refusal -----

#[wasm_bindgen_test]
fn click_selectors_from_the_real_dom() {
    fresh_storage();
    fixture(
        r#"<main><ul class="list css-1x9f2a">
             <li class="card active"><a href="/p/1">One</a></li>
             <li class="card"><a href="/p/2" class="more" data-product-id="p2"><span id="inner">Two <b>items</b></span></a></li>
           </ul>
           <div id="hero"><button data-testid="buy">  Buy
              now </button></div>
           <nav><div role="button" class="x">Menu</div><div class="plain">Not clickable</div></nav>
           <a id="out" href="https://www.other.example/x?y=1">Out</a>
           <a id="file" href="files/Report.PDF?v=2">Report</a>
           <a id="www">Same site</a></main>"#,
    );
    js_sys::eval(
        "document.getElementById('www').href = 'https://www.' + location.hostname + ':1/'",
    )
    .unwrap();
    let h = host();
    let mut t = tracker(&h, "attrs=product-id");
    t.click_element(&el("#inner")); // bubbles up to the <a>
    t.click_element(&el("[data-testid=buy]"));
    t.click_element(&el("[role=button]"));
    t.click_element(&el(".plain"));
    // Outbound and download flags from the link's parts as the browser parses them (the
    // test page is served from localhost).
    for link in ["#out", "#file", "#www"] {
        t.click_element(&el(link));
    }
    t.flush();
    let clicks = of_type(&events(&h), "click");
    assert_eq!(clicks.len(), 6, "{clicks:?}");
    let flags = |i: usize| {
        let c = &clicks[i]["click"];
        (
            c["outbound"].as_bool().unwrap(),
            c["download"].as_bool().unwrap(),
        )
    };
    assert_eq!(
        [flags(0), flags(3), flags(4), flags(5)],
        [(false, false), (true, false), (false, true), (false, false)]
    );
    assert!(
        clicks[4]["click"]["href"]
            .as_str()
            .unwrap()
            .ends_with("/files/Report.PDF?v=2")
    );
    let c = &clicks[0]["click"];
    assert_eq!(c["tag"], "a");
    assert_eq!(c["text"], "Two items");
    assert_eq!(
        c["selector"],
        "div#fixture > main > ul.list > li.card:nth-of-type(2) > a.more"
    );
    assert!(c["href"].as_str().unwrap().ends_with("/p/2"), "{c}");
    assert_eq!(clicks[0]["properties"]["product-id"], "p2");
    assert_eq!(
        clicks[1]["click"]["selector"],
        r#"button[data-testid="buy"]"#
    );
    assert_eq!(clicks[1]["click"]["text"], "Buy now");
    assert_eq!(
        clicks[2]["click"]["selector"],
        "div#fixture > main > nav > div.x:nth-of-type(1)"
    );
}

mod cases {
    include!("cases/patterns.rs");
}

/// The rules that run on the browser's own engines (src/pattern.rs) — Chromium's `RegExp`
/// and `decodeURIComponent` through the host — give the answers the native tests get from
/// the `regex` crate and the Rust decoder.
#[wasm_bindgen_test]
fn rule_patterns_and_decoding_on_the_browser_engines() {
    let _h = host();
    for &(s, want) in cases::SENSITIVE_NAMES {
        assert_eq!(spoor_sdk::sensitive::is_sensitive_name(s), want, "{s:?}");
    }
    for &(s, want) in cases::NUMBER_SECRETS {
        assert_eq!(
            spoor_sdk::sensitive::looks_like_number_secret(s),
            want,
            "{s:?}"
        );
    }
    for &(s, want) in cases::DOWNLOADS {
        assert_eq!(spoor_sdk::url::is_download(s), want, "{s:?}");
    }
    for &(s, want) in cases::DECODED {
        assert_eq!(spoor_sdk::url::decode(s), want, "{s:?}");
    }
}

#[wasm_bindgen_test]
fn sensitive_fields_and_opted_out_elements_are_refused() {
    fresh_storage();
    fixture(
        r#"<form><input type="password" id="pw" name="pw">
             <input type="text" name="cardnumber" id="cc">
             <input type="text" name="nickname" id="nick">
             <input type="text" autocomplete="cc-csc" id="csc">
             <textarea id="notes">private words</textarea></form>
           <div data-spoor-no-capture><button id="hidden-btn">Secret</button></div>
           <button id="ok">Fine</button>"#,
    );
    js_sys::eval("document.getElementById('nick').value = 'SECRETVALUE123'; document.getElementById('pw').value = 'hunter2';").unwrap();
    let h = host();
    let mut t = tracker(&h, "");
    for id in [
        "#pw",
        "#cc",
        "#csc",
        "#hidden-btn",
        "#nick",
        "#notes",
        "#ok",
    ] {
        t.click_element(&el(id));
    }
    t.flush();
    let all: String = sends(&h).into_iter().map(|s| s.2).collect();
    for secret in ["SECRETVALUE123", "hunter2", "private words", "Secret\""] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    let clicks = of_type(&events(&h), "click");
    let sels: Vec<&str> = clicks
        .iter()
        .map(|c| c["click"]["selector"].as_str().unwrap())
        .collect();
    assert_eq!(sels, ["input#nick", "textarea#notes", "button#ok"]);
    assert_eq!(clicks[0]["click"]["text"], "");
    assert_eq!(clicks[1]["click"]["text"], "");
}

// ----- search detection -----

#[wasm_bindgen_test]
fn searches_from_url_forms_and_results_attribute() {
    fresh_storage();
    fixture(
        r#"<p>Found <span data-spoor-results="1,024">1,024</span> results</p>
           <form id="get" role="search" action="/search"><input name="q" id="q"><button>Go</button></form>
           <form id="post" method="post" action="/find"><input type="search" name="x" id="x"></form>
           <form id="login" method="post"><input name="user" value="bob"><input type="password" name="p" value="pw"></form>"#,
    );
    let h = host();
    // The page URL carries a search.
    js_sys::eval("void 0").unwrap();
    Reflect::set(
        &h,
        &"page".into(),
        &js_sys::Function::new_no_args(
            "return 'https://shop.example/search?q=red+shoes\\nShop\\n\\n' + document.querySelector('[data-spoor-results]').getAttribute('data-spoor-results') + '\\nshop.example\\n/search\\nq=red+shoes\\n'",
        ),
    )
    .unwrap();
    let mut t = tracker(&h, "");
    js_sys::eval("document.getElementById('x').value = '  wool   socks ';").unwrap();
    t.submit_form(&el("#post"));
    t.submit_form(&el("#login"));
    js_sys::eval("document.getElementById('q').value = 'hats';").unwrap();
    t.submit_form(&el("#get")); // GET + q: expected in the next URL; recorded after 1.5 s otherwise
    set_clock(&h, clock(&h) + 2_000.0);
    t.tick();
    t.flush();
    let s: Vec<(String, String, Value)> = of_type(&events(&h), "search")
        .iter()
        .map(|e| {
            (
                e["search"]["query"].as_str().unwrap().into(),
                e["search"]["source"].as_str().unwrap().into(),
                e["search"]["results_count"].clone(),
            )
        })
        .collect();
    assert_eq!(
        s,
        [
            ("red shoes".into(), "url".into(), Value::from(1024)),
            ("wool socks".into(), "form".into(), Value::Null),
            ("hats".into(), "form".into(), Value::Null),
        ]
    );
    assert!(!sends(&h).iter().any(|s| s.2.contains("bob")));
}

// ----- sessions -----

#[wasm_bindgen_test]
fn sessions_persist_in_local_storage_and_expire() {
    fresh_storage();
    let h = host();
    let t1 = tracker(&h, "");
    let s1 = t1.session_id().unwrap().to_string();
    let anon = t1.anonymous_id().to_string();
    drop(t1);
    set_clock(&h, clock(&h) + 29.0 * 60_000.0);
    let t2 = tracker(&h, "");
    assert_eq!(t2.session_id(), Some(s1.as_str()));
    assert_eq!(t2.anonymous_id(), anon);
    drop(t2);
    set_clock(&h, clock(&h) + 31.0 * 60_000.0);
    let mut t3 = tracker(&h, "");
    assert_ne!(t3.session_id(), Some(s1.as_str()));
    t3.flush();
    let starts = of_type(&events(&h), "session_start");
    let last = starts.last().unwrap();
    assert_eq!(last["session"]["index"], 2);
    assert_eq!(last["session"]["previous_id"], s1.as_str());
    let stored = js_sys::eval("localStorage.getItem('spoor.s')")
        .unwrap()
        .as_string()
        .unwrap();
    assert!(stored.starts_with(t3.session_id().unwrap()));
}

#[wasm_bindgen_test]
fn cookie_fallback_and_cookieless() {
    fresh_storage();
    let h = host();
    // localStorage unavailable (as in some sandboxed frames): ids go to a cookie.
    js_sys::eval(
        "(function (h) { var s = h.store;
           h.store = function (op, a, k, v) { return a == 0 ? undefined : s(op, a, k, v); }; })",
    )
    .unwrap()
    .unchecked_into::<js_sys::Function>()
    .call1(&JsValue::NULL, &h)
    .unwrap();
    let t = tracker(&h, "");
    let cookie = js_sys::eval("document.cookie")
        .unwrap()
        .as_string()
        .unwrap();
    assert!(cookie.contains("spoor.id="), "{cookie}");
    assert!(cookie.contains(t.anonymous_id()), "{cookie}");
    assert_eq!(tracker(&h, "").anonymous_id(), t.anonymous_id());

    fresh_storage();
    let h = host();
    let mut t = tracker(&h, "cookieless");
    t.track("x", None);
    t.on_hide();
    let n = js_sys::eval("localStorage.length + (document.cookie ? 1 : 0)").unwrap();
    assert_eq!(n.as_f64(), Some(0.0));
    assert!(!sends(&h).is_empty(), "cookieless still tracks");
}

// ----- queue and retry -----

#[wasm_bindgen_test]
fn retry_backoff_and_resume_after_reload_with_the_same_event_ids() {
    fresh_storage();
    let h = host();
    let mut t = tracker(&h, "");
    t.track("a", None);
    t.tick();
    let first = sends(&h)[0].clone();
    t.sent(first.0, 503, 0, "");
    let wait = last_timer(&h);
    assert!((500.0..1000.0).contains(&wait), "{wait}");
    t.tick(); // too early: nothing
    assert_eq!(sends(&h).len(), 1);
    // The queue is in localStorage; a reload picks it up and sends the same events.
    let saved = js_sys::eval("Object.keys(localStorage).filter(function (k) { return k.indexOf('spoor.q.') == 0; }).map(function (k) { return localStorage.getItem(k); }).join('')")
        .unwrap()
        .as_string()
        .unwrap();
    let ids: Vec<String> = serde_json::from_str::<Value>(&first.2).unwrap()["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    for id in &ids {
        assert!(saved.contains(id.as_str()), "{id} not saved");
    }
    drop(t);
    Reflect::set(&h, &"sends".into(), &Array::new()).unwrap();
    set_clock(&h, clock(&h) + 3_000.0);
    let mut t2 = tracker(&h, "");
    t2.flush();
    let resent = sends(&h)[0].2.clone();
    for id in &ids {
        assert!(resent.contains(id.as_str()), "{id} not resent");
    }
    // A 4xx is final: dropped, never retried, removed from storage.
    let id = sends(&h)[0].0;
    t2.sent(id, 400, 0, "");
    set_clock(&h, clock(&h) + 600_000.0);
    t2.tick();
    t2.flush();
    assert_eq!(sends(&h).len(), 1);
    let left = js_sys::eval("Object.keys(localStorage).filter(function (k) { return k.indexOf('spoor.q.') == 0; }).length").unwrap();
    assert_eq!(left.as_f64(), Some(0.0));
}

#[wasm_bindgen_test]
async fn real_compression_stream_produces_gzip_members_the_collector_can_read() {
    fresh_storage();
    let h = host();
    let cfg = Config::parse("key=pk_test\nhost=https://c.example\nflush-ms=10\n").unwrap();
    let mut t = Tracker::new(Web::new(&cfg), cfg);
    t.start();
    // The front of the queue is compressed ahead of time (by the real CompressionStream).
    t.track("big", Some(format!(r#"{{"pad":"{}"}}"#, "z".repeat(4000))));
    t.tick();
    assert!(
        sends(&h).is_empty(),
        "a due batch waits for the compression"
    );
    let log = get(&h, "log_");
    for _ in 0..100 {
        if Array::from(&log).length() > 0 {
            break;
        }
        sleep(20).await;
    }
    let entry = Array::from(&Array::from(&log).get(0));
    assert_eq!(entry.get(0).as_string().as_deref(), Some("compressed"));
    let bytes = entry.get(2);
    let len = entry.get(3).as_f64().unwrap() as usize;
    let u8s: js_sys::Uint8Array = bytes.clone().unchecked_into();
    assert_eq!(
        (u8s.get_index(0), u8s.get_index(1)),
        (0x1f, 0x8b),
        "gzip magic"
    );
    // The host keeps the bytes; the wasm names them by the compression's id.
    let id = entry.get(1).as_f64().unwrap() as u32;
    t.compressed(id, Some((id, len)));
    let s = Array::from(&Array::from(&get(&h, "sends")).get(0));
    assert!(s.get(1).as_string().unwrap().ends_with("&compression=gzip"));
    // Head, precompressed events, tail: each member read back in the browser.
    let mut text = String::new();
    for part in Array::from(&s.get(4)).iter() {
        text += &gunzip(&part).await;
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["v"], 1);
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "big")
    );
}

async fn sleep(ms: i32) {
    let p = js_sys::Promise::new(&mut |ok, _| {
        let f: js_sys::Function = js_sys::eval("(function (ok, ms) { setTimeout(ok, ms); })")
            .unwrap()
            .unchecked_into();
        f.call2(&JsValue::NULL, &ok, &ms.into()).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(p).await.unwrap();
}

async fn gunzip(bytes: &JsValue) -> String {
    let f: js_sys::Function = js_sys::eval(
        "(function (b) { return new Response(new Blob([b]).stream().pipeThrough(new DecompressionStream('gzip'))).text(); })",
    )
    .unwrap()
    .unchecked_into();
    let p: js_sys::Promise = f.call1(&JsValue::NULL, bytes).unwrap().unchecked_into();
    wasm_bindgen_futures::JsFuture::from(p)
        .await
        .unwrap()
        .as_string()
        .unwrap()
}

// ----- consent -----

#[wasm_bindgen_test]
fn consent_opt_in_stores_nothing_until_granted() {
    fresh_storage();
    let h = host();
    let mut t = tracker(&h, "consent=opt-in");
    t.track("before", None);
    t.click_element(&body_el());
    t.on_hide();
    assert!(sends(&h).is_empty());
    let keys = js_sys::eval("Object.keys(localStorage).join(',') + '|' + document.cookie")
        .unwrap()
        .as_string()
        .unwrap();
    assert_eq!(keys, "|", "nothing stored before consent");
    t.set_consent(true);
    t.flush();
    let evs = events(&h);
    assert!(evs.iter().any(|e| e["type"] == "page_view"));
    assert!(!evs.iter().any(|e| e["name"] == "before"));
    let keys = js_sys::eval("Object.keys(localStorage).sort().join(',')")
        .unwrap()
        .as_string()
        .unwrap();
    assert!(
        keys.contains("spoor.c") && keys.contains("spoor.id"),
        "{keys}"
    );
    // Withdrawing forgets the ids.
    t.set_consent(false);
    let id = js_sys::eval("localStorage.getItem('spoor.id')").unwrap();
    assert!(id.is_null());
    assert!(!tracker(&h, "consent=opt-in").is_on());
    // DNT is an opt-out by default.
    fresh_storage();
    let h = host();
    let mut t = tracker(&h, "dnt=true");
    t.track("x", None);
    t.flush();
    assert!(sends(&h).is_empty());
}
