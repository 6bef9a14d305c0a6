//! SDK options, parsed from `name=value` lines.
//!
//! Both entries produce the same text: the script-tag loader from the tag's `data-*`
//! attributes (`data-flush-ms="500"` → `flush-ms=500`), the ESM `init()` from its options
//! object (`flushMs: 500` → `flush-ms=500`). One parser, tested natively, serves both.

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
    /// Query parameters removed from every captured URL (added to [`DEFAULT_SCRUB`]).
    pub scrub: Vec<String>,
    /// Share of visitors tracked, in millionths (1 000 000 = all).
    pub sample_per_million: u32,
    /// URL parameters whose value is a site-search query.
    pub search_params: Vec<String>,
    /// `data-*` attribute names (without `data-`) copied from clicked elements into properties.
    pub attrs: Vec<String>,
    pub session_timeout_ms: u64,
    pub flush_ms: u32,
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
    let (w, h) = value.split_once('x').unwrap_or(("", ""));
    (w.parse().unwrap_or(0), h.parse().unwrap_or(0))
}

/// Query parameters that never leave the browser, whatever the configuration.
pub const DEFAULT_SCRUB: &[&str] = &[
    "password",
    "pass",
    "pwd",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "auth",
    "secret",
    "api_key",
    "apikey",
    "email",
    "sessionid",
    "session_id",
];

/// The default site-search URL parameters.
pub const DEFAULT_SEARCH_PARAMS: &[&str] = &["q", "query", "search", "s", "keyword", "keywords"];

impl Default for Config {
    fn default() -> Self {
        Config {
            key: String::new(),
            host: String::new(),
            consent: ConsentMode::OptOut,
            respect_dnt: true,
            cookieless: false,
            scrub: Vec::new(),
            sample_per_million: 1_000_000,
            search_params: DEFAULT_SEARCH_PARAMS.iter().map(|s| (*s).into()).collect(),
            attrs: Vec::new(),
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
        for line in text.lines() {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            let value = value.trim_ascii();
            match name.trim_ascii() {
                "key" => c.key = value.into(),
                "host" => c.host = value.trim_end_matches('/').into(),
                "consent" => {
                    c.consent = match value {
                        "opt-in" | "optin" | "required" => ConsentMode::OptIn,
                        _ => ConsentMode::OptOut,
                    }
                }
                "respect-dnt" => c.respect_dnt = flag(value, c.respect_dnt),
                "cookieless" => c.cookieless = flag(value, true),
                "scrub" => c.scrub = list(value),
                "sample" => {
                    if let Some(p) = parse_share(value) {
                        c.sample_per_million = p;
                    }
                }
                "search-params" => c.search_params = list(value),
                "attrs" => {
                    c.attrs = list(value)
                        .into_iter()
                        .map(|a| a.strip_prefix("data-").map(Into::into).unwrap_or(a))
                        .collect()
                }
                "session-timeout" => num(value, &mut c.session_timeout_ms, |m: u64| m * 60_000),
                "flush-ms" => num(value, &mut c.flush_ms, |n| n),
                "batch-size" => num(value, &mut c.batch_events, |n: usize| n.clamp(1, 500)),
                "max-queue" => num(value, &mut c.max_queue, |n: usize| n.max(1)),
                "autocapture" => c.autocapture = flag(value, true),
                "spa" => c.spa = flag(value, true),
                "debug" => c.debug = flag(value, true),
                "compress" => c.env.compress = c.env.compress && flag(value, true),
                "lang" => c.env.lang = value.into(),
                "tz" => c.env.tz = value.into(),
                "screen" => c.env.screen = size(value),
                "viewport" => c.env.viewport = size(value),
                "dnt" => c.env.dnt = flag(value, true),
                "gpc" => c.env.gpc = flag(value, true),
                "visible" => c.env.visible = flag(value, true),
                _ => {}
            }
        }
        (!c.key.is_empty() && !c.host.is_empty()).then_some(c)
    }

    /// Whether `param` must be removed from captured URLs.
    pub fn scrubs(&self, param: &str) -> bool {
        DEFAULT_SCRUB.iter().any(|s| s.eq_ignore_ascii_case(param))
            || self.scrub.iter().any(|s| s.eq_ignore_ascii_case(param))
    }
}

fn flag(value: &str, if_empty: bool) -> bool {
    match value {
        "" => if_empty,
        "false" | "0" | "no" | "off" => false,
        _ => true,
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim_ascii)
        .filter(|s| !s.is_empty())
        .map(Into::into)
        .collect()
}

fn num<T: std::str::FromStr>(value: &str, slot: &mut T, map: impl Fn(T) -> T) {
    if let Ok(n) = value.parse::<T>() {
        *slot = map(n);
    }
}

/// `0.25`, `.25`, `1`, `25%` → parts per million. No float parsing (it costs wasm size).
pub fn parse_share(s: &str) -> Option<u32> {
    let (s, scale) = match s.strip_suffix('%') {
        Some(p) => (p.trim_ascii(), 10_000u64),
        None => (s, 1_000_000u64),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(int) || !all_digits(frac) || int.len() > 7 {
        return None;
    }
    let mut v = if int.is_empty() {
        0
    } else {
        int.parse::<u64>().ok()?
    } * scale;
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
        assert_eq!(c.scrub, ["ref", "utm_id"]);
        assert_eq!(c.sample_per_million, 250_000);
        assert_eq!(c.search_params, ["term"]);
        assert_eq!(c.attrs, ["product-id", "variant"]);
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
