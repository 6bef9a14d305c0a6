//! The HTTP surface against a real collector and a real ClickHouse: every status, CORS,
//! sendBeacon, the single-event and pixel endpoints, health, readiness and metrics.

mod common;

use std::time::Duration;

use common::*;
use reqwest::StatusCode;
use serde_json::Value;

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_style_gzip_text_plain_batch_is_stored_and_enriched() {
    let c = TestCollector::start(&Options::new("sdk_style")).await;
    let (ids, body) = page_views(3);
    let bad = serde_json::json!({"event_id": "not-a-uuid", "type": "page_view", "timestamp": "2026-11-21T10:00:00Z", "anonymous_id": "a", "page": {"url": "u", "path": "/"}});
    let mut value: Value = serde_json::from_str(&body).unwrap();
    value["events"].as_array_mut().unwrap().push(bad);
    let response = http()
        .post(format!("{}/v1/batch?key=pk_test&compression=gzip", c.url))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", "https://shop.example")
        .header("user-agent", FIREFOX)
        .header("x-forwarded-for", "198.51.100.77")
        .body(gzip(value.to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 3);
    assert_eq!(
        body["rejected"],
        serde_json::json!([{"event_id": "not-a-uuid", "reason": "invalid_event_id", "message": "event_id must be a UUID"}])
    );
    wait_for_count(
        &c.ch,
        "SELECT count() FROM events FINAL",
        3,
        Duration::from_secs(20),
    )
    .await;
    wait_for_count(
        &c.ch,
        "SELECT count() FROM events_rejected",
        1,
        Duration::from_secs(20),
    )
    .await;

    #[derive(clickhouse::Row, serde::Deserialize, Debug)]
    struct Enriched {
        project_id: String,
        url: String,
        utm_source: String,
        referrer_class: String,
        browser: String,
        device_class: String,
        ip: String,
        source: String,
    }
    let row: Enriched =
        c.ch.query("SELECT ?fields FROM events WHERE event_id = ?")
            .bind(ids[0])
            .fetch_one()
            .await
            .unwrap();
    assert_eq!(row.project_id, "test");
    assert!(!row.url.contains("token="), "{}", row.url);
    assert_eq!(row.utm_source, "newsletter");
    assert_eq!(row.referrer_class, "search");
    assert_eq!(row.browser, "Firefox");
    assert_eq!(row.device_class, "desktop");
    // No trusted proxy configured: the socket peer, anonymised.
    assert_eq!(row.ip, "127.0.0.0");
    assert_eq!(row.source, "browser");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_details_in_identify_traits_are_stored_hashed() {
    let c = TestCollector::start(&Options::new("contacts")).await;
    let id = uuid::Uuid::new_v4();
    let mut e = event(&id, "identify", 0);
    e["user_id"] = serde_json::json!("u1");
    e["traits"] = serde_json::json!({"level": "gold", "email": "Ada@Example.com", "phone": "+44 20 7946 0958"});
    let response = http()
        .post(format!("{}/v1/batch?key=pk_test", c.url))
        .header("origin", "https://shop.example")
        .body(batch(&[e]))
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(
        (status.as_u16(), &body["accepted"]),
        (200, &serde_json::json!(1)),
        "{body}"
    );
    wait_for_count(
        &c.ch,
        "SELECT count() FROM events",
        1,
        Duration::from_secs(20),
    )
    .await;
    let traits: String =
        c.ch.query("SELECT traits FROM events WHERE event_id = ?")
            .bind(id)
            .fetch_one()
            .await
            .unwrap();
    let traits: Value = serde_json::from_str(&traits).unwrap();
    assert_eq!(
        traits,
        serde_json::json!({
            "level": "gold",
            "email_sha256": spoor_protocol::conventions::hash_email("ada@example.com"),
            "phone_sha256": spoor_protocol::conventions::hash_phone("+442079460958"),
        })
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_beacon_body_key_and_content_encoding_variants() {
    let c = TestCollector::start(&Options::new("beacon")).await;
    // sendBeacon: text/plain, no custom headers, the key in the body.
    let (_, body) = page_views(2);
    let mut value: Value = serde_json::from_str(&body).unwrap();
    value["key"] = "pk_test".into();
    let (status, body) = json(
        http()
            .post(format!("{}/v1/batch", c.url))
            .header("content-type", "text/plain;charset=UTF-8")
            .header("origin", "https://shop.example")
            .body(value.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["accepted"].clone()),
        (StatusCode::OK, 2.into())
    );

    // A backend client: Content-Encoding gzip and deflate, the key in a header.
    let (_, body) = page_views(2);
    let (status, _) = json(
        http()
            .post(format!("{}/v1/batch", c.url))
            .header("x-spoor-key", "pk_any")
            .header("content-encoding", "gzip")
            .body(gzip(body.as_bytes()))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (_, body) = page_views(2);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, body.as_bytes()).unwrap();
    let (status, _) = json(
        http()
            .post(format!("{}/v1/batch", c.url))
            .header("authorization", "Bearer sk_test")
            .header("content-encoding", "deflate")
            .body(z.finish().unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    wait_for_count(
        &c.ch,
        "SELECT count() FROM events FINAL",
        6,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        count(&c.ch, "SELECT count() FROM events WHERE source = 'server'").await,
        2
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status() {
    let mut options = Options::new("statuses");
    options.toml.push_str(
        "[limits]\nmax_body_bytes = 20000\nmax_decompressed_bytes = 100000\nmax_events_per_batch = 20\n",
    );
    let c = TestCollector::start(&options).await;
    let post = |path: &str| http().post(format!("{}{path}", c.url));
    let (_, good) = page_views(2);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "not json",
            post("/v1/batch?key=pk_any").body("hello"),
            400,
            "not a Spoor batch",
        ),
        (
            "wrong version",
            post("/v1/batch?key=pk_any").body(r#"{"v":9,"sent_at":"x","events":[]}"#),
            400,
            "version 9",
        ),
        (
            "bad gzip",
            post("/v1/batch?key=pk_any&compression=gzip").body("nope"),
            400,
            "not valid gzip",
        ),
        (
            "no key",
            post("/v1/batch").body(good.clone()),
            401,
            "no write key",
        ),
        (
            "unknown key",
            post("/v1/batch?key=pk_nope").body(good.clone()),
            401,
            "unknown write key",
        ),
        (
            "unknown key in body",
            post("/v1/batch").body(good.replace("\"sent_at\"", "\"key\":\"pk_nope\",\"sent_at\"")),
            401,
            "unknown write key",
        ),
        (
            "origin not allowed",
            post("/v1/batch?key=pk_test")
                .header("origin", "https://evil.example")
                .body(good.clone()),
            403,
            "origin https://evil.example is not allowed",
        ),
        (
            "secret key from a browser",
            post("/v1/batch")
                .header("x-spoor-key", "sk_test")
                .header("origin", "https://shop.example")
                .body(good.clone()),
            403,
            "never be used from a browser",
        ),
        (
            "secret key in the URL",
            post("/v1/batch?key=sk_test").body(good.clone()),
            403,
            "only in the Authorization",
        ),
        (
            "declared too large",
            post("/v1/batch?key=pk_any").body(vec![b' '; 30_000]),
            413,
            "larger than 20000 bytes",
        ),
        (
            "gzip bomb",
            post("/v1/batch?key=pk_any&compression=gzip").body(gzip_best(&vec![b' '; 16 << 20])),
            413,
            "decompressed body is larger than 100000",
        ),
        (
            "too many events",
            post("/v1/batch?key=pk_any").body(page_views(21).1),
            413,
            "21 events; at most 20",
        ),
        (
            "unsupported encoding",
            post("/v1/batch?key=pk_any")
                .header("content-encoding", "br")
                .body(good.clone()),
            415,
            "not supported",
        ),
        (
            "single event not json",
            post("/v1/event?key=pk_any").body("[1,"),
            400,
            "not one JSON event",
        ),
    ];
    for (name, request, status, message) in cases {
        let (got, body) = json(request.send().await.unwrap()).await;
        assert_eq!(got.as_u16(), status, "{name}: {body}");
        let text = body["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message),
            "{name}: {text:?} should contain {message:?}"
        );
    }
    // Streamed without Content-Length: refused once it passes the cap.
    let (status, text) = chunked_post(&c.url, "/v1/batch?key=pk_any", 30_000).await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("larger than 20000 bytes"), "{text}");
    assert_eq!(count(&c.ch, "SELECT count() FROM events").await, 0);
    c.stop().await;
}

/// POSTs `total` bytes with chunked transfer encoding (no Content-Length); returns the status
/// line and body.
async fn chunked_post(base: &str, path: &str, total: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut sent = 0;
    while sent < total {
        let n = 4096.min(total - sent);
        let chunk = format!("{n:x}\r\n{}\r\n", " ".repeat(n));
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break; // the server may answer and close before the whole body is sent
        }
        sent += n;
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = s.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_is_429_with_retry_after() {
    let mut options = Options::new("rate");
    options.toml = options.toml.replace(
        "[writer]",
        "[[keys]]\nkey = \"pk_slow\"\nproject = \"slow\"\norigins = [\"*\"]\nevents_per_second = 1\nburst = 10\n\n[writer]",
    );
    let c = TestCollector::start(&options).await;
    let send = || async {
        http()
            .post(format!("{}/v1/batch?key=pk_slow", c.url))
            .body(page_views(10).1)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(send().await.status(), 200);
    let limited = send().await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry_after), "{retry_after}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_above_high_water_is_503_and_not_ready() {
    let proxy = Proxy::start().await;
    let mut options = Options::new("high_water");
    options.clickhouse_url = proxy.url.clone();
    options.toml.push_str(
        "[spool]\nhigh_water_bytes = 1000\n[http]\nretry_after_secs = 7\nshutdown_grace_secs = 0\n",
    );
    let c = TestCollector::start(&options).await;
    proxy.cut();
    // The first batch is taken (the spool is empty), the next ones find it above the mark.
    let send = || async {
        http()
            .post(format!("{}/v1/batch?key=pk_any", c.url))
            .body(page_views(5).1)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(send().await.status(), 200);
    let full = send().await;
    assert_eq!(full.status(), 503);
    assert_eq!(full.headers()["retry-after"], "7");
    let (_, body) = json(full).await;
    assert!(
        body["message"].as_str().unwrap().contains("spool is full"),
        "{body}"
    );
    let ready = http()
        .get(format!("{}/readyz", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    // ClickHouse back: the spool drains and the collector takes batches again.
    proxy.restore();
    wait_for_count(
        &c.ch,
        "SELECT count() FROM events FINAL",
        5,
        Duration::from_secs(30),
    )
    .await;
    for _ in 0..100 {
        if http()
            .get(format!("{}/readyz", c.url))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(send().await.status(), 200);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_echoes_allowed_origins_only() {
    let c = TestCollector::start(&Options::new("cors")).await;
    let preflight = |query: &str, origin: &str| {
        http()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/batch{query}", c.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let ok = preflight("?key=pk_test", "https://shop.example")
        .await
        .unwrap();
    assert_eq!(ok.status(), 204);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    assert!(
        ok.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        ok.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("content-type")
    );

    for (query, origin) in [
        ("?key=pk_test", "https://evil.example"),
        ("?key=sk_test", "https://shop.example"),
        ("?key=pk_nope", "https://shop.example"),
    ] {
        let denied = preflight(query, origin).await.unwrap();
        assert_eq!(denied.status(), 403, "{query} {origin}");
        assert!(
            denied
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
    // Without a key in the URL (header key to follow): allowed if some public key allows it.
    let any = preflight("", "https://whatever.example").await.unwrap();
    assert_eq!(
        any.headers()["access-control-allow-origin"],
        "https://whatever.example"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_event_pixel_health_and_metrics() {
    let c = TestCollector::start(&Options::new("pixel")).await;
    let id = uuid::Uuid::new_v4();
    let (status, body) = json(
        http()
            .post(format!("{}/v1/event", c.url))
            .header("authorization", "Bearer sk_test")
            .body(event(&id, "track", 1).to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["accepted"].clone()),
        (200, 1.into()),
        "{body}"
    );

    let pixel = http()
        .get(format!(
            "{}/v1/pixel.gif?key=pk_test&u=https%3A%2F%2Fshop.example%2Fnojs%3Futm_source%3Dprint&ti=No%20JS",
            c.url
        ))
        .header("referer", "https://shop.example/nojs")
        .header("user-agent", FIREFOX)
        .send()
        .await
        .unwrap();
    assert_eq!(pixel.status(), 200);
    assert_eq!(pixel.headers()["content-type"], "image/gif");
    assert_eq!(&pixel.bytes().await.unwrap()[..6], b"GIF89a");
    let foreign = http()
        .get(format!("{}/v1/pixel.gif?key=pk_test", c.url))
        .header("referer", "https://evil.example/")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);

    wait_for_count(
        &c.ch,
        "SELECT count() FROM events FINAL",
        2,
        Duration::from_secs(20),
    )
    .await;
    assert_eq!(
        count(&c.ch, "SELECT count() FROM events WHERE path = '/nojs' AND utm_source = 'print' AND startsWith(anonymous_id, 'px-')").await,
        1
    );

    assert_eq!(
        http()
            .get(format!("{}/healthz", c.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(format!("{}/readyz", c.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = http()
        .get(format!("{}/metrics", c.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "spoor_collector_http_requests_total{endpoint=\"event\",status=\"200\"} 1",
        "spoor_collector_http_requests_total{endpoint=\"pixel\",status=\"403\"} 1",
        "spoor_collector_events_accepted_total 2",
        "spoor_collector_clickhouse_rows_inserted_total{table=\"events\"}",
        "spoor_collector_spool_pending_bytes",
    ] {
        assert!(metrics.contains(needle), "{needle} missing:\n{metrics}");
    }
    c.stop().await;
}
