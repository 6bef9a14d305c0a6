//! SDK options, parsed from `name=value` lines.
//!
//! Both entries produce the same text: the script-tag loader from the tag's `data-*`
//! attributes (`data-flush-ms="500"` → `flush-ms=500`), the ESM `init()` from its options
//! object (`flushMs: 500` → `flush-ms=500`). One parser, tested natively, serves both.

use alloc::string::String;

use crate::text::{cut_or_all, in_list, int, pieces};

/// Whether events may be sent before the visitor said anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentMode {
    /// Track until the visitor opts out (`setConsent(false)`). The default.
    OptOut,
    /// Track nothing until the visitor opts in (`setConsent(true)`).
    OptIn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Write key (`pk_…`).
    pub key: String,
    /// Collector base URL, without a trailing slash.
    pub host: String,
    pub consent: ConsentMode,
    /// Treat Do-Not-Track and Global Privacy Control as an opt-out (default on).
    pub respect_dnt: bool,
    /// Store nothing on the device: ids live in memory for this page only.
    pub cookieless: bool,
    /// Query parameters removed from every captured URL, space-separated: [`DEFAULT_SCRUB`]
    /// and the `scrub` option.
    pub scrub: String,
    /// Share of visitors tracked, in millionths (1 000 000 = all).
    pub sample_per_million: u32,
    /// URL parameters whose value is a site-search query, space-separated.
    pub search_params: String,
    /// `data-*` attribute names (without `data-`, space-separated) copied from clicked
    /// elements into properties; the JS side reads them.
    pub attrs: String,
    pub session_timeout_ms: u64,
    pub flush_ms: u64,
    pub batch_events: usize,
    pub batch_bytes: usize,
    pub max_queue: usize,
    pub autocapture: bool,
    /// Page views on history/hash navigation.
    pub spa: bool,
    /// Log rejected events and delivery trouble to the console.
    pub debug: bool,
    /// What the JS side reports about the browser (not user options).
    pub env: Env,
}

/// The browser environment, filled in by the JS side at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub lang: String,
    pub tz: String,
    pub screen: (u32, u32),
    pub viewport: (u32, u32),
    pub dnt: bool,
    pub gpc: bool,
    /// Gzip batches (the browser has `CompressionStream` and the user did not turn it off).
    pub compress: bool,
    /// The page is visible at start.
    pub visible: bool,
}

impl Default for Env {
    fn default() -> Self {
        Env {
            lang: String::new(),
            tz: String::new(),
            screen: (0, 0),
            viewport: (0, 0),
            dnt: false,
            gpc: false,
            compress: true,
            visible: true,
        }
    }
}

fn size(value: &str) -> (u32, u32) {
    let (w, h) = cut_or_all(value, b'x');
    (number(w) as u32, number(h) as u32)
}

fn number(s: &str) -> u64 {
    int(s).unwrap_or(0)
}

/// Query parameters that never leave the browser, whatever the configuration.
pub const DEFAULT_SCRUB: &str = "password pass pwd token access_token id_token \
refresh_token auth secret api_key apikey email sessionid session_id";

/// The default site-search URL parameters.
pub const DEFAULT_SEARCH_PARAMS: &str = "q query search s keyword keywords";

/// The option names, in the order of the `match` in [`Config::parse`].
const NAMES: &str = "key host consent respect-dnt cookieless scrub sample search-params attrs \
session-timeout flush-ms batch-size max-queue autocapture spa debug compress lang tz screen \
viewport dnt gpc visible";

impl Default for Config {
    fn default() -> Self {
        Config {
            key: String::new(),
            host: String::new(),
            consent: ConsentMode::OptOut,
            respect_dnt: true,
            cookieless: false,
            scrub: DEFAULT_SCRUB.into(),
            sample_per_million: 1_000_000,
            search_params: DEFAULT_SEARCH_PARAMS.into(),
            attrs: String::new(),
            session_timeout_ms: 30 * 60 * 1000,
            flush_ms: 1000,
            batch_events: 50,
            batch_bytes: 60 * 1024,
            max_queue: 1000,
            autocapture: true,
            spa: true,
            debug: false,
            env: Env::default(),
        }
    }
}

impl Config {
    /// Parses `name=value` lines. Unknown names and malformed values are ignored (the
    /// default stays): a typo in a tag must never break the host page. `None` when the key
    /// or the host is missing.
    pub fn parse(text: &str) -> Option<Config> {
        let mut c = Config::default();
        for line in pieces(text, b'\n') {
            let (name, value) = cut_or_all(line, b'=');
            let value = value.trim_ascii();
            let n = int(value);
            // An option's position in NAMES: one small loop instead of a string compare
            // per option (measured: ~1 KB of wasm).
            let name = name.trim_ascii();
            let Some(i) = pieces(NAMES, b' ').position(|o| o == name) else {
                continue;
            };
            let on = flag(value);
            match i {
                0 => c.key = value.into(),
                1 => {
                    let mut h = value;
                    while let Some(rest) = h.strip_suffix('/') {
                        h = rest;
                    }
                    c.host = h.into();
                }
                2 => {
                    c.consent = if in_list("opt-in optin required", value) {
                        ConsentMode::OptIn
                    } else {
                        ConsentMode::OptOut
                    }
                }
                3 => c.respect_dnt = on,
                4 => c.cookieless = on,
                5 => add_list(&mut c.scrub, value, ""),
                6 => c.sample_per_million = parse_share(value).unwrap_or(c.sample_per_million),
                7 => {
                    c.search_params.clear();
                    add_list(&mut c.search_params, value, "");
                }
                8 => {
                    c.attrs.clear();
                    add_list(&mut c.attrs, value, "data-");
                }
                9 => c.session_timeout_ms = n.map_or(c.session_timeout_ms, |m| m * 60_000),
                10 => c.flush_ms = n.unwrap_or(c.flush_ms),
                11 => c.batch_events = n.map_or(c.batch_events, |n| n.clamp(1, 500) as usize),
                12 => c.max_queue = n.map_or(c.max_queue, |n| n.max(1) as usize),
                13 => c.autocapture = on,
                14 => c.spa = on,
                15 => c.debug = on,
                16 => c.env.compress &= on,
                17 => c.env.lang = value.into(),
                18 => c.env.tz = value.into(),
                19 => c.env.screen = size(value),
                20 => c.env.viewport = size(value),
                21 => c.env.dnt = on,
                22 => c.env.gpc = on,
                _ => c.env.visible = on,
            }
        }
        (!c.key.is_empty() && !c.host.is_empty()).then_some(c)
    }

    /// Whether `param` must be removed from captured URLs.
    pub fn scrubs(&self, param: &str) -> bool {
        in_list(&self.scrub, param)
    }

    /// [`Config::scrubs`] as the filter of `url::scrub`: one closure type for every caller,
    /// so `url::scrub` is instantiated once (measured).
    pub fn scrubber(&self) -> impl Fn(&str) -> bool + Copy + '_ {
        move |k| self.scrubs(k)
    }
}

/// `false`, `0`, `no`, `off` are off; anything else (also no value) is on.
fn flag(value: &str) -> bool {
    !in_list("false 0 no off", value)
}

/// Adds the comma-separated names of `value` to the space-separated `list`, without
/// `prefix`.
fn add_list(list: &mut String, value: &str, prefix: &str) {
    for name in pieces(value, b',').map(str::trim_ascii) {
        let name = name.strip_prefix(prefix).unwrap_or(name);
        if !name.is_empty() && !name.bytes().any(|b| b == b' ') {
            if !list.is_empty() {
                list.push(' ');
            }
            list.push_str(name);
        }
    }
}

/// `0.25`, `.25`, `1`, `25%` → parts per million. No float parsing (it costs wasm size).
pub fn parse_share(s: &str) -> Option<u32> {
    let (s, scale) = match s.strip_suffix('%') {
        Some(p) => (p.trim_ascii(), 10_000u64),
        None => (s, 1_000_000u64),
    };
    let (int_part, frac) = cut_or_all(s, b'.');
    if int_part.is_empty() && frac.is_empty() || int_part.len() > 7 {
        return None;
    }
    let mut v = if int_part.is_empty() {
        0
    } else {
        int(int_part)?
    } * scale;
    if !frac.is_empty() {
        int(frac)?;
    }
    let mut unit = scale;
    for b in frac.bytes().take(8) {
        unit /= 10;
        v += u64::from(b - b'0') * unit;
    }
    Some(v.min(1_000_000) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requires_key_and_host() {
        assert_eq!(Config::parse(""), None);
        assert_eq!(Config::parse("key=pk_1"), None);
        assert_eq!(Config::parse("host=http://h"), None);
        let c = Config::parse("key=pk_1\nhost=http://h:1/\n").unwrap();
        assert_eq!(c.key, "pk_1");
        assert_eq!(c.host, "http://h:1");
        assert_eq!(c.consent, ConsentMode::OptOut);
        assert!(c.respect_dnt && !c.cookieless && c.autocapture);
    }

    #[test]
    fn options() {
        let c = Config::parse(
            "key=k\nhost=h\nconsent=opt-in\nrespect-dnt=false\ncookieless\nscrub=ref, utm_id\n\
             sample=25%\nsearch-params=term\nattrs=data-product-id,variant\nsession-timeout=5\n\
             flush-ms=200\nbatch-size=9999\nunknown=1\nautocapture=false\nmax-queue=x",
        )
        .unwrap();
        assert_eq!(c.consent, ConsentMode::OptIn);
        assert!(!c.respect_dnt && c.cookieless && !c.autocapture && c.spa);
        assert!(c.scrub.ends_with(" ref utm_id"), "{}", c.scrub);
        assert_eq!(c.sample_per_million, 250_000);
        assert_eq!(c.search_params, "term");
        assert_eq!(c.attrs, "product-id variant");
        assert_eq!(c.session_timeout_ms, 300_000);
        assert_eq!(c.flush_ms, 200);
        assert_eq!(c.batch_events, 500);
        assert_eq!(c.max_queue, 1000);
        assert!(c.scrubs("REF") && c.scrubs("token") && !c.scrubs("q"));
    }

    #[test]
    fn environment() {
        let c = Config::parse(
            "key=k\nhost=h\nlang=de-DE\ntz=Europe/Berlin\nscreen=1920x1080\nviewport=800x\n\
             dnt=1\ngpc=false\ncompress=false\ncompress=true\nvisible=0",
        )
        .unwrap();
        assert_eq!(c.env.lang, "de-DE");
        assert_eq!(c.env.tz, "Europe/Berlin");
        assert_eq!(c.env.screen, (1920, 1080));
        assert_eq!(c.env.viewport, (800, 0));
        assert!(c.env.dnt && !c.env.gpc && !c.env.visible);
        // Once off (no CompressionStream), compression stays off.
        assert!(!c.env.compress);
    }

    #[test]
    fn shares() {
        for (s, want) in [
            ("1", Some(1_000_000)),
            ("0", Some(0)),
            ("0.5", Some(500_000)),
            (".25", Some(250_000)),
            ("0.000001", Some(1)),
            ("50%", Some(500_000)),
            ("12.5%", Some(125_000)),
            ("200%", Some(1_000_000)),
            ("2", Some(1_000_000)),
            ("", None),
            (".", None),
            ("-1", None),
            ("abc", None),
            ("1e3", None),
        ] {
            assert_eq!(parse_share(s), want, "{s}");
        }
    }
}
