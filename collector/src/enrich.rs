//! Enrichment: pure functions from a validated event and what the request tells about its
//! sender to an [`EventRow`]. No I/O, no clock: the received time comes in the context.

use std::net::IpAddr;
use std::sync::OnceLock;

use spoor_protocol::{JsonEvent, UnixMillis, parse_timestamp};
use spoor_schema::EventRow;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::config::{ContactTraits, EnrichConfig, IpMode};

/// Where the batch came from, worked out once per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub project_id: String,
    /// `browser` (public key) or `server` (secret key).
    pub source: &'static str,
    /// Server time the request arrived.
    pub received_at: UnixMillis,
    /// The batch's `sent_at` by the client's clock, if it parsed.
    pub sent_at: Option<UnixMillis>,
    /// The client IP as it will be stored (already anonymised per config).
    pub ip: String,
    pub user_agent: String,
    pub ua: UaInfo,
}

/// Earliest and latest instants ClickHouse's `DateTime64(3)` can hold.
const MIN_MILLIS: UnixMillis = -2_208_988_800_000; // 1900-01-01
const MAX_MILLIS: UnixMillis = 10_413_791_999_999; // 2299-12-31T23:59:59.999

/// Corrected event time: `received_at + (timestamp − sent_at)`, so a client whose clock is
/// wrong still lands at the right server time. Results outside `[received_at − max_past,
/// received_at + max_future]` are clamped into that window and flagged.
pub fn corrected_timestamp(
    client: UnixMillis,
    sent_at: Option<UnixMillis>,
    received_at: UnixMillis,
    max_past_ms: i64,
    max_future_ms: i64,
) -> (UnixMillis, bool) {
    let offset = sent_at.map_or(0, |sent| received_at.saturating_sub(sent));
    let corrected = client.saturating_add(offset);
    let low = received_at.saturating_sub(max_past_ms);
    let high = received_at.saturating_add(max_future_ms);
    if corrected < low {
        (low, true)
    } else if corrected > high {
        (high, true)
    } else {
        (corrected, false)
    }
}

/// The address a request came from: the socket peer, or — behind `trusted_hops` reverse
/// proxies — the entry that many places from the right of `X-Forwarded-For`.
pub fn client_ip(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trusted_hops: usize,
) -> Option<IpAddr> {
    if trusted_hops == 0 {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if entries.is_empty() {
        return peer;
    }
    let at = entries.len().saturating_sub(trusted_hops);
    parse_ip_entry(entries[at]).or(peer)
}

/// `1.2.3.4`, `1.2.3.4:80`, `[::1]:80` or `::1`.
fn parse_ip_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Ok(addr) = entry.parse::<std::net::SocketAddr>() {
        return Some(addr.ip());
    }
    entry
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The IP as stored: the network prefix only (default), the whole address, or nothing.
pub fn stored_ip(ip: Option<IpAddr>, config: &EnrichConfig) -> String {
    let Some(ip) = ip else {
        return String::new();
    };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match config.ip {
        IpMode::Drop => String::new(),
        IpMode::Full => ip.to_string(),
        IpMode::Anonymize => match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4);
                let mask = prefix_mask_32(config.ipv4_prefix);
                std::net::Ipv4Addr::from(bits & mask).to_string()
            }
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let mask = prefix_mask_128(config.ipv6_prefix);
                std::net::Ipv6Addr::from(bits & mask).to_string()
            }
        },
    }
}

fn prefix_mask_32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - p),
    }
}

fn prefix_mask_128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX << (128 - p),
    }
}

/// What the user agent says about the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UaInfo {
    pub browser: String,
    pub browser_version: String,
    pub os: String,
    pub os_version: String,
    /// desktop, mobile, tablet, bot or other.
    pub device_class: &'static str,
    pub is_bot: bool,
}

/// Substrings (lower case) of user agents that are automated clients.
const BOT_MARKERS: &[&str] = &[
    "bot",
    "spider",
    "crawl",
    "slurp",
    "headless",
    "phantomjs",
    "lighthouse",
    "pagespeed",
    "gtmetrix",
    "pingdom",
    "uptime",
    "monitor",
    "preview",
    "facebookexternalhit",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "java/",
    "curl/",
    "wget/",
    "libwww",
    "httpclient",
    "axios/",
    "node-fetch",
    "scrapy",
    "puppeteer",
    "playwright",
    "selenium",
];

fn ua_parser() -> &'static woothee::parser::Parser {
    static PARSER: OnceLock<woothee::parser::Parser> = OnceLock::new();
    PARSER.get_or_init(woothee::parser::Parser::new)
}

/// Parses a User-Agent header (memoised: a site sees few distinct user agents).
pub fn parse_user_agent(ua: &str) -> UaInfo {
    type Cache = std::sync::Mutex<std::collections::HashMap<String, UaInfo>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(info) = cache.lock().ok().and_then(|c| c.get(ua).cloned()) {
        return info;
    }
    let info = parse_user_agent_uncached(ua);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= 4096 {
            c.clear();
        }
        c.insert(ua.to_owned(), info.clone());
    }
    info
}

/// Parses a User-Agent header with `woothee` and adds bot and tablet detection.
fn parse_user_agent_uncached(ua: &str) -> UaInfo {
    let lower = ua.to_ascii_lowercase();
    let marker_bot = BOT_MARKERS.iter().any(|m| lower.contains(m));
    let unknown = |s: &str| {
        if s == "UNKNOWN" {
            String::new()
        } else {
            s.to_owned()
        }
    };
    let mut info = match ua_parser().parse(ua) {
        Some(r) => {
            let category = r.category;
            let tablet = lower.contains("ipad")
                || lower.contains("tablet")
                || (lower.contains("android") && !lower.contains("mobile"));
            UaInfo {
                browser: unknown(r.name),
                browser_version: unknown(r.version.split('.').next().unwrap_or("")),
                os: unknown(r.os),
                os_version: unknown(&r.os_version),
                device_class: match category {
                    "crawler" => "bot",
                    "pc" => "desktop",
                    "smartphone" | "mobilephone" if tablet => "tablet",
                    "smartphone" | "mobilephone" => "mobile",
                    _ => "other",
                },
                is_bot: category == "crawler",
            }
        }
        None => UaInfo {
            device_class: "other",
            ..UaInfo::default()
        },
    };
    if ua.trim().is_empty() || marker_bot {
        info.is_bot = true;
    }
    if info.is_bot {
        info.device_class = "bot";
    }
    info
}

/// Where a visit came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerInfo {
    /// Host without `www.`; for `android-app://` referrers, the app's package.
    pub domain: String,
    /// direct, search, social, email, internal or other.
    pub class: &'static str,
}

const SEARCH_FIRST_LABELS: &[&str] = &[
    "google",
    "bing",
    "duckduckgo",
    "yahoo",
    "baidu",
    "yandex",
    "ecosia",
    "qwant",
    "startpage",
    "naver",
    "seznam",
    "sogou",
    "ask",
];
const SEARCH_HOSTS: &[&str] = &[
    "search.yahoo.com",
    "search.brave.com",
    "kagi.com",
    "so.com",
    "search.aol.com",
    "com.google.android.googlequicksearchbox",
];
const SOCIAL_DOMAINS: &[&str] = &[
    "facebook.com",
    "fb.com",
    "fb.me",
    "instagram.com",
    "t.co",
    "twitter.com",
    "x.com",
    "linkedin.com",
    "lnkd.in",
    "reddit.com",
    "pinterest.com",
    "tiktok.com",
    "youtube.com",
    "youtu.be",
    "news.ycombinator.com",
    "threads.net",
    "bsky.app",
    "mastodon.social",
    "t.me",
    "vk.com",
    "tumblr.com",
    "quora.com",
    "snapchat.com",
    "whatsapp.com",
    "wa.me",
    "discord.com",
    "com.facebook.katana",
    "com.instagram.android",
    "com.twitter.android",
    "com.linkedin.android",
    "com.reddit.frontpage",
];
const EMAIL_HOSTS: &[&str] = &[
    "mail.google.com",
    "outlook.live.com",
    "outlook.office.com",
    "outlook.office365.com",
    "mail.yahoo.com",
    "mail.proton.me",
    "mail.aol.com",
    "mail.yandex.ru",
    "com.google.android.gm",
    "com.microsoft.office.outlook",
];
const EMAIL_MEDIUMS: &[&str] = &["email", "e-mail", "newsletter", "mail"];

fn is_domain_or_sub(host: &str, domain: &str) -> bool {
    host == domain
        || (host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

fn strip_www(host: &str) -> &str {
    host.strip_prefix("www.").unwrap_or(host)
}

/// Host of an absolute URL, lower case, without `www.`; for `android-app://pkg/…`, the
/// package. A hand-written scan rather than a full URL parse: this runs twice per event.
fn host_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '%') {
        return None;
    }
    let host = host.trim_end_matches('.');
    Some(strip_www(&host.to_ascii_lowercase()).to_owned())
}

/// Classifies a referrer relative to the page it led to.
pub fn classify_referrer(referrer: &str, page_url: &str, utm_medium: &str) -> ReferrerInfo {
    let referrer = referrer.trim();
    if referrer.is_empty() {
        let class = if EMAIL_MEDIUMS.contains(&utm_medium.to_ascii_lowercase().as_str()) {
            "email"
        } else {
            "direct"
        };
        return ReferrerInfo {
            domain: String::new(),
            class,
        };
    }
    let Some(host) = host_of(referrer) else {
        return ReferrerInfo {
            domain: String::new(),
            class: "other",
        };
    };
    let first_label = host.split('.').next().unwrap_or("");
    let class = if host_of(page_url).is_some_and(|page| page == host) {
        "internal"
    } else if EMAIL_HOSTS.contains(&host.as_str())
        || host.starts_with("webmail.")
        || host.starts_with("mail.")
    {
        "email"
    } else if SEARCH_HOSTS.contains(&host.as_str()) || SEARCH_FIRST_LABELS.contains(&first_label) {
        "search"
    } else if SOCIAL_DOMAINS.iter().any(|d| is_domain_or_sub(&host, d))
        || first_label == "pinterest"
    {
        "social"
    } else if EMAIL_MEDIUMS.contains(&utm_medium.to_ascii_lowercase().as_str()) {
        "email"
    } else {
        "other"
    };
    ReferrerInfo {
        domain: host,
        class,
    }
}

/// The five UTM parameters of a page URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Utm {
    pub source: String,
    pub medium: String,
    pub campaign: String,
    pub term: String,
    pub content: String,
}

/// The query string of a URL (between `?` and `#`), if any.
fn query_of(url: &str) -> Option<&str> {
    let after = &url[url.find('?')? + 1..];
    Some(after.split('#').next().unwrap_or(after))
}

pub fn utm_parameters(url: &str) -> Utm {
    let mut utm = Utm::default();
    let Some(query) = query_of(url) else {
        return utm;
    };
    if !query.contains("tm_") && !query.contains("TM_") && !query.contains('%') {
        return utm;
    }
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.to_ascii_lowercase().as_str() {
            "utm_source" => &mut utm.source,
            "utm_medium" => &mut utm.medium,
            "utm_campaign" => &mut utm.campaign,
            "utm_term" => &mut utm.term,
            "utm_content" => &mut utm.content,
            _ => continue,
        };
        if slot.is_empty() {
            *slot = value.into_owned();
        }
    }
    utm
}

/// Removes the named query parameters (case-insensitive) from a URL, leaving every other
/// byte as it was.
pub fn scrub_url(url: &str, params: &[String]) -> String {
    let Some(q_start) = url.find('?') else {
        return url.to_owned();
    };
    let (head, rest) = url.split_at(q_start);
    let rest = &rest[1..];
    let (query, fragment) = match rest.find('#') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let mut dropped = false;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            let drop = if name.contains(['%', '+']) {
                let decoded = url::form_urlencoded::parse(name.as_bytes())
                    .next()
                    .map(|(n, _)| n.to_ascii_lowercase())
                    .unwrap_or_default();
                params.contains(&decoded)
            } else {
                params.iter().any(|p| p.eq_ignore_ascii_case(name))
            };
            dropped |= drop;
            !drop
        })
        .collect();
    if !dropped {
        return url.to_owned();
    }
    let mut out = head.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    out.push_str(fragment);
    out
}

/// Milliseconds to a `DateTime64(3)` value, kept within what ClickHouse can store.
pub fn datetime(ms: UnixMillis) -> OffsetDateTime {
    let ms = ms.clamp(MIN_MILLIS, MAX_MILLIS);
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The trait a key names, if it is a contact detail: `email`, `e-mail`, `emailAddress`,
/// `phone_number`, `mobile`, `tel`… (case, `_` and `-` ignored).
fn contact_kind(key: &str) -> Option<&'static str> {
    let k: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    match k.as_str() {
        "email" | "emailaddress" | "mail" => Some("email_sha256"),
        "phone" | "phonenumber" | "mobile" | "mobilephone" | "mobilenumber" | "tel"
        | "telephone" => Some("phone_sha256"),
        _ => None,
    }
}

/// E-mail addresses and phone numbers among the top-level keys of `identify` traits, as
/// [`ContactTraits`] says: by default replaced by `email_sha256` / `phone_sha256` — the same
/// hashes as [`spoor_protocol::conventions::hash_email`] and [`spoor_protocol::conventions::hash_phone`] give a backend —,
/// so that no address or number reaches ClickHouse from a page that sent one. A value that is
/// not text or a number (or is blank) is left out.
pub fn protect_contacts(traits: &mut serde_json::Value, mode: ContactTraits) {
    let serde_json::Value::Object(map) = traits else {
        return;
    };
    if mode == ContactTraits::Keep {
        return;
    }
    let found: Vec<(String, &'static str)> = map
        .keys()
        .filter_map(|k| contact_kind(k).map(|hashed| (k.clone(), hashed)))
        .collect();
    for (key, hashed) in found {
        let value = map.remove(&key);
        if mode != ContactTraits::Hash {
            continue;
        }
        let text = match value {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        if text.trim().is_empty() {
            continue;
        }
        let hash = if hashed == "email_sha256" {
            spoor_protocol::conventions::hash_email(&text)
        } else {
            spoor_protocol::conventions::hash_phone(&text)
        };
        map.insert(hashed.to_owned(), serde_json::Value::String(hash));
    }
}

fn u16_sat(v: u32) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Builds the stored row for a validated event. `truncated` is what validation reported.
pub fn event_row(
    event: JsonEvent,
    truncated: bool,
    ctx: &RequestContext,
    config: &EnrichConfig,
) -> EventRow {
    let client_ts = parse_timestamp(&event.timestamp).unwrap_or(ctx.received_at);
    let (timestamp, clamped) = corrected_timestamp(
        client_ts,
        ctx.sent_at,
        ctx.received_at,
        i64::try_from(config.max_past.as_millis()).unwrap_or(i64::MAX),
        i64::try_from(config.max_future.as_millis()).unwrap_or(i64::MAX),
    );
    let event_id = Uuid::parse_str(&event.event_id).unwrap_or(Uuid::nil());
    let mut row = EventRow::empty(
        &ctx.project_id,
        event_id,
        event.kind.as_str(),
        datetime(timestamp),
    );
    row.client_timestamp = datetime(client_ts);
    row.sent_at = datetime(ctx.sent_at.unwrap_or(ctx.received_at));
    row.received_at = datetime(ctx.received_at);
    row.timestamp_clamped = clamped;
    row.name = event.name.unwrap_or_default();
    row.anonymous_id = event.anonymous_id;
    row.user_id = event.user_id.unwrap_or_default();
    if let Some(session) = event.session {
        row.session_started_at =
            datetime(parse_timestamp(&session.started_at).unwrap_or(client_ts));
        row.session_id = session.id;
        row.session_index = session.index;
        row.previous_session_id = session.previous_id.unwrap_or_default();
    } else {
        row.session_started_at = datetime(client_ts);
    }
    if let Some(page) = event.page {
        let utm = utm_parameters(&page.url);
        let referrer = classify_referrer(&page.referrer, &page.url, &utm.medium);
        row.url = scrub_url(&page.url, &config.scrub_query_params);
        row.referrer = scrub_url(&page.referrer, &config.scrub_query_params);
        row.referrer_domain = referrer.domain;
        row.referrer_class = referrer.class.to_owned();
        row.path = page.path;
        row.title = page.title;
        row.utm_source = utm.source;
        row.utm_medium = utm.medium;
        row.utm_campaign = utm.campaign;
        row.utm_term = utm.term;
        row.utm_content = utm.content;
    }
    if let Some(click) = event.click {
        row.click_tag = click.tag;
        row.click_text = click.text;
        row.click_href = click
            .href
            .map(|h| scrub_url(&h, &config.scrub_query_params))
            .unwrap_or_default();
        row.click_selector = click.selector;
        row.click_outbound = click.outbound;
        row.click_download = click.download;
    }
    if let Some(search) = event.search {
        row.search_query = search.query;
        row.search_results_count = search.results_count;
        row.search_source = search.source;
    }
    if let Some(leave) = event.leave {
        row.engaged_ms = leave.engaged_ms;
        row.max_scroll_pct = leave.max_scroll_pct.min(100);
    }
    if let Some(properties) = event.properties {
        row.properties = properties.to_string();
    }
    if let Some(mut traits) = event.traits {
        protect_contacts(&mut traits, config.contact_traits);
        row.traits = traits.to_string();
    }
    if let Some(context) = event.context {
        row.locale = context.locale;
        row.timezone = context.tz;
        row.screen_w = u16_sat(context.screen_w);
        row.screen_h = u16_sat(context.screen_h);
        row.viewport_w = u16_sat(context.viewport_w);
        row.viewport_h = u16_sat(context.viewport_h);
        row.lib = context.lib;
    }
    row.ip = ctx.ip.clone();
    row.user_agent = ctx.user_agent.clone();
    row.browser = ctx.ua.browser.clone();
    row.browser_version = ctx.ua.browser_version.clone();
    row.os = ctx.ua.os.clone();
    row.os_version = ctx.ua.os_version.clone();
    row.device_class = ctx.ua.device_class.to_owned();
    row.is_bot = ctx.ua.is_bot;
    row.source = ctx.source.to_owned();
    row.truncated = truncated;
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn clock_skew_correction_and_clamping() {
        // (client ts, sent_at, received_at) → (timestamp, clamped)
        type Case = (i64, Option<i64>, i64, (i64, bool));
        let cases: &[Case] = &[
            // Clock right: unchanged.
            (1_000, Some(1_100), 1_100, (1_000, false)),
            // Client clock 1 h slow: shifted forward by 1 h.
            (1_000, Some(1_100), 1_100 + H, (1_000 + H, false)),
            // Client clock 2 days fast.
            (
                10 * 24 * H,
                Some(10 * 24 * H + 50),
                8 * 24 * H + 50,
                (8 * 24 * H, false),
            ),
            // No sent_at: no correction.
            (5_000, None, 6_000, (5_000, false)),
            // Far future after correction: clamped to received + 1 h.
            (100 * H, Some(1_000), 1_000, (1_000 + H, true)),
            // Far past (older than the 31-day window): clamped.
            (0, Some(40 * 24 * H), 40 * 24 * H, (9 * 24 * H, true)),
            // Absurd values do not overflow.
            (i64::MAX, Some(i64::MIN), 0, (H, true)),
        ];
        for &(client, sent, received, expected) in cases {
            assert_eq!(
                corrected_timestamp(client, sent, received, 31 * 24 * H, H),
                expected,
                "client={client} sent={sent:?} received={received}"
            );
        }
    }

    #[test]
    fn ip_anonymisation() {
        let config = |ip| EnrichConfig {
            ip,
            ..EnrichConfig::default()
        };
        let cases: &[(&str, IpMode, &str)] = &[
            ("203.0.113.77", IpMode::Anonymize, "203.0.113.0"),
            (
                "2001:db8:abcd:12:1:2:3:4",
                IpMode::Anonymize,
                "2001:db8:abcd::",
            ),
            ("::ffff:198.51.100.9", IpMode::Anonymize, "198.51.100.0"),
            ("203.0.113.77", IpMode::Full, "203.0.113.77"),
            ("203.0.113.77", IpMode::Drop, ""),
        ];
        for &(ip, mode, expected) in cases {
            assert_eq!(
                stored_ip(Some(ip.parse().unwrap()), &config(mode)),
                expected,
                "{ip} {mode:?}"
            );
        }
        let wide = EnrichConfig {
            ipv4_prefix: 16,
            ..EnrichConfig::default()
        };
        assert_eq!(
            stored_ip(Some("203.0.113.77".parse().unwrap()), &wide),
            "203.0.0.0"
        );
        assert_eq!(stored_ip(None, &wide), "");
    }

    #[test]
    fn client_ip_from_forwarded_for() {
        let peer = Some("10.0.0.1".parse().unwrap());
        let cases: &[(Option<&str>, usize, &str)] = &[
            (Some("1.1.1.1"), 0, "10.0.0.1"),
            (Some("1.1.1.1"), 1, "1.1.1.1"),
            (Some("9.9.9.9, 1.1.1.1"), 1, "1.1.1.1"),
            (Some("9.9.9.9, 1.1.1.1, 2.2.2.2"), 2, "1.1.1.1"),
            (Some("1.1.1.1"), 3, "1.1.1.1"),
            (Some("[2001:db8::1]:443"), 1, "2001:db8::1"),
            (Some("1.1.1.1:8080"), 1, "1.1.1.1"),
            (Some("garbage"), 1, "10.0.0.1"),
            (None, 1, "10.0.0.1"),
        ];
        for &(xff, hops, expected) in cases {
            assert_eq!(
                client_ip(peer, xff, hops).unwrap().to_string(),
                expected,
                "{xff:?} {hops}"
            );
        }
    }

    #[test]
    fn user_agents() {
        let cases: &[(&str, &str, &str, &str, &str, bool)] = &[
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.71 Safari/537.36",
                "Chrome",
                "120",
                "Windows 10",
                "desktop",
                false,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                "Safari",
                "17",
                "iPhone",
                "mobile",
                false,
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
                "Safari",
                "16",
                "iPad",
                "tablet",
                false,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
                "Firefox",
                "121",
                "Linux",
                "desktop",
                false,
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                "Googlebot",
                "",
                "",
                "bot",
                true,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
                "",
                "",
                "Linux",
                "bot",
                true,
            ),
            ("curl/8.5.0", "", "", "", "bot", true),
            ("", "", "", "", "bot", true),
        ];
        for &(ua, browser, version, os, class, bot) in cases {
            let info = parse_user_agent(ua);
            if !browser.is_empty() {
                assert_eq!(info.browser, browser, "{ua}");
                assert_eq!(info.browser_version, version, "{ua}");
            }
            if !os.is_empty() {
                assert_eq!(info.os, os, "{ua}");
            }
            assert_eq!(info.device_class, class, "{ua}");
            assert_eq!(info.is_bot, bot, "{ua}");
        }
    }

    #[test]
    fn referrer_classes() {
        let page = "https://shop.example/p?x=1";
        let cases: &[(&str, &str, &str, &str)] = &[
            ("", "", "", "direct"),
            ("", "newsletter", "", "email"),
            ("https://www.google.com/", "", "google.com", "search"),
            (
                "https://www.google.co.uk/search?q=x",
                "",
                "google.co.uk",
                "search",
            ),
            ("https://duckduckgo.com/", "", "duckduckgo.com", "search"),
            (
                "https://search.brave.com/search?q=x",
                "",
                "search.brave.com",
                "search",
            ),
            ("https://t.co/abc", "", "t.co", "social"),
            (
                "https://l.facebook.com/l.php",
                "",
                "l.facebook.com",
                "social",
            ),
            (
                "https://news.ycombinator.com/item",
                "",
                "news.ycombinator.com",
                "social",
            ),
            (
                "https://mail.google.com/mail/u/0",
                "",
                "mail.google.com",
                "email",
            ),
            (
                "android-app://com.google.android.gm/",
                "",
                "com.google.android.gm",
                "email",
            ),
            (
                "https://www.shop.example/cart",
                "",
                "shop.example",
                "internal",
            ),
            ("https://blog.example/post", "", "blog.example", "other"),
            (
                "https://blog.example/post",
                "email",
                "blog.example",
                "email",
            ),
            ("https://notfacebook.com/", "", "notfacebook.com", "other"),
            ("not a url", "", "", "other"),
        ];
        for &(referrer, medium, domain, class) in cases {
            assert_eq!(
                classify_referrer(referrer, page, medium),
                ReferrerInfo {
                    domain: domain.into(),
                    class
                },
                "{referrer}"
            );
        }
    }

    #[test]
    fn hosts() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://Shop.Example/x", Some("shop.example")),
            ("https://www.shop.example:8080/x?y#z", Some("shop.example")),
            ("https://user:pw@shop.example/", Some("shop.example")),
            ("http://[2001:db8::1]:80/", Some("2001:db8::1")),
            (
                "android-app://com.google.android.gm/",
                Some("com.google.android.gm"),
            ),
            ("https://shop.example.", Some("shop.example")),
            ("shop.example/x", None),
            ("://x", None),
            ("https:///x", None),
            ("ht tp://x.example/", None),
        ];
        for &(url, expected) in cases {
            assert_eq!(host_of(url).as_deref(), expected, "{url}");
        }
    }

    #[test]
    fn utm() {
        assert_eq!(
            utm_parameters(
                "https://x.example/?utm_source=news&UTM_MEDIUM=email&utm_campaign=spring%20sale&utm_term=a+b&utm_content=hero#top"
            ),
            Utm {
                source: "news".into(),
                medium: "email".into(),
                campaign: "spring sale".into(),
                term: "a b".into(),
                content: "hero".into(),
            }
        );
        assert_eq!(utm_parameters("https://x.example/"), Utm::default());
        assert_eq!(utm_parameters("/relative?utm_source=a").source, "a");
    }

    #[test]
    fn contact_details_in_traits_are_hashed_dropped_or_kept() {
        use serde_json::json;
        let sent = json!({
            "level": "gold",
            "Email": " Ada@Example.com ",
            "phoneNumber": "+1 (555) 010-2030",
            "tel": "  ",
            "e-mail": {"work": "x"},
            "address": {"city": "Lyon", "email": "nested@example.com"}
        });
        let mut t = sent.clone();
        protect_contacts(&mut t, ContactTraits::Hash);
        assert_eq!(
            t,
            json!({
                "level": "gold",
                "email_sha256": spoor_protocol::conventions::hash_email("ada@example.com"),
                "phone_sha256": spoor_protocol::conventions::hash_phone("+15550102030"),
                "address": {"city": "Lyon", "email": "nested@example.com"}
            }),
            "blank and non-text values are left out; only top-level keys"
        );
        let mut t = json!({"mobile": 5550102030u64});
        protect_contacts(&mut t, ContactTraits::Hash);
        assert_eq!(
            t,
            json!({"phone_sha256": spoor_protocol::conventions::hash_phone("555 010 2030")})
        );
        assert_eq!(
            spoor_protocol::conventions::hash_email("ada@example.com"),
            spoor_protocol::conventions::hash_email(" Ada@Example.com ")
        );
        let mut t = sent.clone();
        protect_contacts(&mut t, ContactTraits::Drop);
        assert_eq!(
            t,
            json!({"level": "gold", "address": {"city": "Lyon", "email": "nested@example.com"}})
        );
        let mut t = sent.clone();
        protect_contacts(&mut t, ContactTraits::Keep);
        assert_eq!(t, sent);
        let mut not_object = json!("ada@example.com");
        protect_contacts(&mut not_object, ContactTraits::Hash);
        assert_eq!(not_object, json!("ada@example.com"));
    }

    #[test]
    fn url_scrubbing() {
        let params: Vec<String> = ["token", "email"].iter().map(|s| s.to_string()).collect();
        let cases: &[(&str, &str)] = &[
            ("https://x.example/", "https://x.example/"),
            (
                "https://x.example/?a=1&b=%20",
                "https://x.example/?a=1&b=%20",
            ),
            ("https://x.example/?token=s3cr3t", "https://x.example/"),
            (
                "https://x.example/p?a=1&Token=s&b=2#frag",
                "https://x.example/p?a=1&b=2#frag",
            ),
            (
                "https://x.example/?email=a%40b.c&q=shoes",
                "https://x.example/?q=shoes",
            ),
            ("https://x.example/?tok%65n=x", "https://x.example/"),
            (
                "https://x.example/?tokenish=1",
                "https://x.example/?tokenish=1",
            ),
            ("/p?token", "/p"),
        ];
        for &(url, expected) in cases {
            assert_eq!(scrub_url(url, &params), expected, "{url}");
        }
    }

    #[test]
    fn datetimes_stay_in_clickhouse_range() {
        assert_eq!(datetime(0), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(datetime(i64::MAX).year(), 2299);
        assert_eq!(datetime(i64::MIN).year(), 1900);
    }
}
