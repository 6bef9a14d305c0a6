//! Property tests over the whole pure pipeline: decompress → decode → validate → enrich.
//! No input may panic, and every event comes out as exactly one row or one rejection.
//!
//! Case counts: `SPOOR_FUZZ_CASES` (default 1 000) for the main property — CI runs it with
//! `SPOOR_FUZZ_CASES=1000000 cargo test --release -p spoor-collector --test fuzz` (about 8 min
//! on 2 cores; ~430 µs a case). The smaller properties run a quarter as many.

use std::io::Write;

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, FileFailurePersistence};
use serde_json::{Value, json};
use spoor_collector::body::Encoding;
use spoor_collector::config::EnrichConfig;
use spoor_collector::enrich::{self, RequestContext};
use spoor_collector::ingest::{build_rows, decode_record};
use spoor_protocol::Limits;

fn cases() -> u32 {
    std::env::var("SPOOR_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

fn config(cases: u32) -> PropConfig {
    PropConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        max_shrink_iters: 2_000,
        ..PropConfig::default()
    }
}

/// Strings worth trying. Made from one random seed each (cheap to generate, so a million
/// cases run in minutes); the kinds cover ids, timestamps, URLs, unicode and long text.
fn text() -> impl Strategy<Value = String> {
    (any::<u8>(), any::<u64>()).prop_map(|(kind, seed)| seeded_text(kind, seed))
}

const TRICKY: &[&str] = &[
    "",
    " ",
    "null",
    "0",
    "-1",
    "1e400",
    "\u{0}",
    "\u{feff}",
    "\u{fffd}",
    "%",
    "%zz",
    "?",
    "??=&",
    "?token",
    "#",
    "//",
    "http://",
    "https://[::1]:8080/x?a=b",
    "android-app://com.google.android.gm/",
    "https://www.google.com/search?q=x",
    "https://t.co/x",
    "mailto:x@y.z",
    "javascript:alert(1)",
    "2026-11-21T10:00:00.100Z",
    "2026-11-21T10:00:00+14:00",
    "9999-12-31T23:59:59.999Z",
    "0000-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999Z",
    "2026-02-30T10:00:00Z",
    "0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6e",
    "00000000-0000-0000-0000-000000000000",
    "0b6a3c4e-8f7d-4a51-9d0e-3f1c2b4a5d6",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X)",
    "Googlebot/2.1",
    "curl/8.0",
    "203.0.113.9",
    "::ffff:1.2.3.4",
    "[2001:db8::1]:443",
    "1.2.3.4, 5.6.7.8",
];

fn seeded_text(kind: u8, seed: u64) -> String {
    let mut rng = fastrand::Rng::with_seed(seed);
    let len = rng.usize(0..48);
    match kind % 8 {
        0 | 1 => (0..len)
            .map(|_| {
                *rng.choice(b"abcXYZ019_-/:.?=&%#@ +".iter())
                    .unwrap_or(&b'a') as char
            })
            .collect(),
        2 => (0..len)
            .map(|_| char::from_u32(rng.u32(0..0x11_0000)).unwrap_or('\u{fffd}'))
            .collect(),
        3 => TRICKY[rng.usize(..TRICKY.len())].to_owned(),
        4 => format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            rng.u32(..),
            rng.u16(..),
            rng.u16(..),
            rng.u16(..),
            rng.u64(..) & 0xffff_ffff_ffff
        ),
        5 => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}",
            rng.u32(0..10_000),
            rng.u32(0..14),
            rng.u32(0..33),
            rng.u32(0..25),
            rng.u32(0..61),
            rng.u32(0..62),
            rng.u32(0..1000),
            ["Z", "+02:00", "-11:30", "", "+99:99"][rng.usize(..5)]
        ),
        6 => {
            let mut url = format!(
                "{}://{}{}.{}/{}",
                ["https", "http", "ftp", "android-app"][rng.usize(..4)],
                ["", "www.", "m.", "mail."][rng.usize(..4)],
                ["google", "shop", "t", "facebook", "bing", "x"][rng.usize(..6)],
                ["com", "co.uk", "example", "co"][rng.usize(..4)],
                ["", "p", "search", "a/b/c"][rng.usize(..4)]
            );
            for i in 0..rng.usize(0..5) {
                url.push(if i == 0 { '?' } else { '&' });
                url.push_str(
                    [
                        "utm_source",
                        "utm_medium",
                        "token",
                        "Email",
                        "q",
                        "utm_campaign",
                        "",
                    ][rng.usize(..7)],
                );
                if rng.bool() {
                    url.push('=');
                    url.push_str(["x", "email", "%41%zz", "a+b", ""][rng.usize(..5)]);
                }
            }
            if rng.bool() {
                url.push_str("#frag");
            }
            url
        }
        _ => "é".repeat(rng.usize(0..3000)),
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::from),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field that is usually plausible and sometimes anything at all.
fn field(
    plausible: impl Strategy<Value = Value> + 'static,
) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => plausible.prop_map(Some),
        1 => any_json().prop_map(Some),
        1 => Just(None),
    ]
}

fn object(fields: Vec<(&'static str, BoxedStrategy<Option<Value>>)>) -> BoxedStrategy<Value> {
    let (names, strategies): (Vec<_>, Vec<_>) = fields.into_iter().unzip();
    strategies
        .prop_map(move |values| {
            let mut map = serde_json::Map::new();
            for (name, value) in names.iter().zip(values) {
                if let Some(value) = value {
                    map.insert((*name).to_owned(), value);
                }
            }
            Value::Object(map)
        })
        .boxed()
}

fn s() -> BoxedStrategy<Option<Value>> {
    field(text().prop_map(Value::from)).boxed()
}

fn n() -> BoxedStrategy<Option<Value>> {
    field(any::<u32>().prop_map(Value::from)).boxed()
}

fn event() -> BoxedStrategy<Value> {
    let kind = prop_oneof![
        Just("page_view"),
        Just("page_leave"),
        Just("click"),
        Just("search"),
        Just("session_start"),
        Just("identify"),
        Just("track"),
        Just("teleport"),
    ]
    .prop_map(Value::from);
    let page = object(vec![
        ("url", s()),
        ("path", s()),
        ("title", s()),
        ("referrer", s()),
    ]);
    let session = object(vec![
        ("id", s()),
        ("index", n()),
        ("started_at", s()),
        ("previous_id", s()),
    ]);
    let click = object(vec![
        ("tag", s()),
        ("text", s()),
        ("href", s()),
        ("selector", s()),
        (
            "outbound",
            field(any::<bool>().prop_map(Value::from)).boxed(),
        ),
    ]);
    let search = object(vec![
        ("query", s()),
        ("results_count", n()),
        ("source", s()),
    ]);
    let leave = object(vec![
        (
            "engaged_ms",
            field(any::<u64>().prop_map(Value::from)).boxed(),
        ),
        (
            "max_scroll_pct",
            field(any::<u8>().prop_map(Value::from)).boxed(),
        ),
    ]);
    let context = object(vec![
        ("locale", s()),
        ("tz", s()),
        ("screen_w", n()),
        ("screen_h", n()),
        ("viewport_w", n()),
        ("viewport_h", n()),
        ("lib", s()),
    ]);
    object(vec![
        ("event_id", s()),
        ("type", field(kind).boxed()),
        ("name", s()),
        ("timestamp", s()),
        ("anonymous_id", s()),
        ("user_id", s()),
        ("session", field(session).boxed()),
        ("page", field(page).boxed()),
        ("click", field(click).boxed()),
        ("search", field(search).boxed()),
        ("leave", field(leave).boxed()),
        ("properties", field(any_json()).boxed()),
        ("traits", field(any_json()).boxed()),
        ("context", field(context).boxed()),
    ])
}

fn batch() -> impl Strategy<Value = Value> {
    (
        field(prop_oneof![Just(1u32), any::<u32>()].prop_map(Value::from)),
        s(),
        s(),
        prop::collection::vec(event(), 0..8),
    )
        .prop_map(|(v, sent_at, key, events)| {
            let mut b = json!({ "events": events });
            for (name, value) in [("v", v), ("sent_at", sent_at), ("key", key)] {
                if let Some(value) = value {
                    b[name] = value;
                }
            }
            b
        })
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Truncate(usize),
    Flip(usize, u8),
    InvalidUtf8(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Damage::Flip(at, b)),
        1 => any::<usize>().prop_map(Damage::InvalidUtf8),
    ]
}

fn compress(data: &[u8], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Identity => data.to_vec(),
        Encoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Encoding::Deflate => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
    }
}

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        3 => Just(Limits::default()),
        1 => (1usize..20, 16usize..4096, 1usize..64, 1usize..64, 64usize..100_000).prop_map(
            |(events, event_bytes, string_bytes, id_bytes, decompressed)| Limits {
                max_events_per_batch: events,
                max_event_bytes: event_bytes,
                max_string_bytes: string_bytes,
                max_id_bytes: id_bytes,
                max_decompressed_bytes: decompressed,
                ..Limits::default()
            }
        ),
    ]
}

fn context() -> impl Strategy<Value = RequestContext> {
    (any::<i64>(), prop::option::of(any::<i64>()), text(), text()).prop_map(
        |(received_at, sent_at, ip, user_agent)| RequestContext {
            project_id: "fuzz".into(),
            source: "browser",
            received_at: received_at.clamp(0, 10_000_000_000_000),
            sent_at,
            ip,
            ua: enrich::parse_user_agent(&user_agent),
            user_agent,
        },
    )
}

fn run_pipeline(body: &[u8], encoding: Encoding, limits: &Limits, ctx: &RequestContext) {
    let Ok(decoded) = decode_record(encoding, body, limits) else {
        return;
    };
    let events = decoded.events.len();
    let out = build_rows(decoded, ctx, limits, &EnrichConfig::default());
    assert_eq!(out.rows.len() + out.rejected.len(), events);
    for row in &out.rows {
        assert!(!row.event_id.is_nil());
        let ms = row.timestamp.unix_timestamp_nanos() / 1_000_000;
        let received = i128::from(ctx.received_at);
        assert!(
            ms >= received - 31 * 86_400_000 && ms <= received + 3_600_000,
            "{ms} vs {received}"
        );
        for s in [
            &row.title,
            &row.path,
            &row.click_text,
            &row.search_query,
            &row.name,
        ] {
            assert!(s.len() <= limits.max_string_bytes);
        }
        assert!(row.max_scroll_pct <= 100);
    }
    for r in &out.rejected {
        assert!(r.raw.len() <= spoor_collector::ingest::MAX_REJECTED_RAW);
        assert!(!r.reason.is_empty());
    }
}

proptest! {
    #![proptest_config(config(cases()))]

    /// Structured, mostly plausible batches with damage, under every encoding and limit set.
    #[test]
    fn decode_validate_enrich_never_panics(
        batch in batch(),
        damage in damage(),
        encoding in prop_oneof![Just(Encoding::Identity), Just(Encoding::Gzip), Just(Encoding::Deflate)],
        limits in limits(),
        ctx in context(),
    ) {
        let mut text = batch.to_string().into_bytes();
        match damage {
            Damage::None => {}
            Damage::Truncate(at) => text.truncate(at % (text.len() + 1)),
            Damage::Flip(at, b) => if !text.is_empty() { let i = at % text.len(); text[i] = b },
            Damage::InvalidUtf8(at) => { let i = at % (text.len() + 1); text.insert(i, 0xff) }
        }
        run_pipeline(&compress(&text, encoding), encoding, &limits, &ctx);
    }
}

proptest! {
    #![proptest_config(config((cases() / 4).max(1)))]

    /// Arbitrary bytes under any encoding.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
        encoding in prop_oneof![Just(Encoding::Identity), Just(Encoding::Gzip), Just(Encoding::Deflate)],
        ctx in context(),
    ) {
        run_pipeline(&bytes, encoding, &Limits::default(), &ctx);
    }

    /// The enrichment functions on arbitrary text.
    #[test]
    fn enrichment_functions_never_panic(
        url in text(), referrer in text(), medium in text(), ua in text(), xff in text(),
        hops in 0usize..4, client in any::<i64>(), sent in any::<i64>(), received in any::<i64>(),
    ) {
        let params = vec!["token".to_owned(), "email".to_owned()];
        let scrubbed = enrich::scrub_url(&url, &params);
        prop_assert!(scrubbed.len() <= url.len());
        let _ = enrich::classify_referrer(&referrer, &url, &medium);
        let _ = enrich::utm_parameters(&url);
        let _ = enrich::parse_user_agent(&ua);
        let ip = enrich::client_ip(Some("10.0.0.1".parse().unwrap()), Some(&xff), hops);
        let _ = enrich::stored_ip(ip, &EnrichConfig::default());
        let (ts, _) = enrich::corrected_timestamp(client, Some(sent), received, 1000, 1000);
        prop_assert!(ts >= received.saturating_sub(1000) && ts <= received.saturating_add(1000));
        let _ = enrich::datetime(ts);
    }
}
