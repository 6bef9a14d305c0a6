//! Shared harness for the collector's integration tests: a real ClickHouse (from
//! `SPOOR_CLICKHOUSE_URL`, default http://127.0.0.1:8123), a fresh database per test, a real
//! collector on port 0, and a TCP proxy that can cut the collector off from ClickHouse.

#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use spoor_collector::config::{Cli, Config, parse_file};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub fn clickhouse_url() -> String {
    std::env::var("SPOOR_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// Fails the test, with what to do, when ClickHouse does not answer.
pub async fn require_clickhouse() {
    let url = clickhouse_url();
    let client = clickhouse::Client::default().with_url(&url);
    let ping = tokio::time::timeout(
        Duration::from_secs(10),
        client.query("SELECT 1").fetch_one::<u8>(),
    )
    .await;
    match ping {
        Ok(Ok(1)) => {}
        other => panic!(
            "ClickHouse is not reachable at {url} ({other:?}). These tests need a real ClickHouse: \
             start the local one with `local-clickhouse/ctl start --port 8123 --data-dir /tmp/spoor-ch` \
             or point SPOOR_CLICKHOUSE_URL at a server."
        ),
    }
}

/// A database name no other test uses.
pub fn unique_db(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "t_collector_{test}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        fastrand::u32(..)
    )
}

pub fn clickhouse(db: &str) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(clickhouse_url())
        .with_database(db)
}

pub async fn count(ch: &clickhouse::Client, sql: &str) -> u64 {
    ch.query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Polls `sql` until it returns `expected` (or fails the test after `timeout`).
pub async fn wait_for_count(ch: &clickhouse::Client, sql: &str, expected: u64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = ch.query(sql).fetch_one::<u64>().await;
        if got.as_ref().is_ok_and(|got| *got == expected) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("{sql}: expected {expected}, last got {got:?} after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keys every test collector knows.
pub const TEST_KEYS: &str = r#"
[[keys]]
key = "pk_test"
project = "test"
origins = ["https://shop.example"]

[[keys]]
key = "pk_any"
project = "any"
origins = ["*"]

[[keys]]
key = "sk_test"
project = "test"
kind = "secret"
"#;

/// How to start a test collector.
pub struct Options {
    /// Extra TOML (sections other than the test keys).
    pub toml: String,
    /// Where the collector reaches ClickHouse (e.g. through a [`Proxy`]).
    pub clickhouse_url: String,
    pub database: String,
    pub spool_dir: PathBuf,
}

impl Options {
    pub fn new(test: &str) -> Options {
        let db = unique_db(test);
        let spool_dir = std::env::temp_dir().join(format!("spoor-spool-{db}"));
        Options {
            toml: "[writer]\nmax_wait_ms = 100\nretry_initial_ms = 50\nretry_max_ms = 500\n".into(),
            clickhouse_url: clickhouse_url(),
            database: db,
            spool_dir,
        }
    }

    pub fn config(&self) -> Config {
        let file = parse_file(&format!("{}\n{}", self.toml, TEST_KEYS)).expect("test TOML");
        let cli = Cli {
            clickhouse_url: Some(self.clickhouse_url.clone()),
            clickhouse_database: Some(self.database.clone()),
            spool_dir: Some(self.spool_dir.clone()),
            ..Cli::default()
        };
        Config::from_parts(cli, Some(file)).expect("test config")
    }

    /// Writes the config as a TOML file, for starting the real binary.
    pub fn write_file(&self, path: &std::path::Path) {
        let mut f = std::fs::File::create(path).unwrap();
        writeln!(
            f,
            "{}\n[clickhouse]\nurl = \"{}\"\ndatabase = \"{}\"\n[spool]\ndir = \"{}\"\n{}",
            self.toml,
            self.clickhouse_url,
            self.database,
            self.spool_dir.display(),
            TEST_KEYS
        )
        .unwrap();
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.spool_dir);
    }
}

/// A collector served on 127.0.0.1:0 inside the test process.
pub struct TestCollector {
    pub url: String,
    pub db: String,
    pub ch: clickhouse::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestCollector {
    pub async fn start(options: &Options) -> TestCollector {
        require_clickhouse().await;
        let config = options.config();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(spoor_collector::serve(config, listener, async {
            let _ = rx.await;
        }));
        // Ready once it answers.
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http.get(format!("{url}/healthz")).send().await.is_ok() {
                break;
            }
            if task.is_finished() {
                panic!("collector failed to start: {:?}", task.await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        TestCollector {
            url,
            db: options.database.clone(),
            ch: clickhouse(&options.database),
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Graceful stop: in-flight requests finish, the spool drains (within the grace period).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

/// A TCP proxy to ClickHouse whose connections can be cut and refused.
pub struct Proxy {
    pub url: String,
    open: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let target_url = url::Url::parse(&clickhouse_url()).unwrap();
        let target = format!(
            "{}:{}",
            target_url.host_str().unwrap(),
            target_url.port_or_known_default().unwrap()
        );
        let target: SocketAddr = tokio::net::lookup_host(target)
            .await
            .unwrap()
            .next()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let open = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let open = open.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap().push(task);
                }
            })
        };
        Proxy {
            url,
            open,
            connections,
            accept,
        }
    }

    /// ClickHouse "goes down": open connections are killed, new ones refused.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A realistic page view (or other) event as the SDK sends it.
pub fn event(id: &uuid::Uuid, kind: &str, n: usize) -> serde_json::Value {
    let mut e = serde_json::json!({
        "event_id": id.to_string(),
        "type": kind,
        "timestamp": "2026-11-21T10:00:00.100Z",
        "anonymous_id": format!("anon-{}", n % 977),
        "session": { "id": format!("s-{}", n % 3001), "index": 1, "started_at": "2026-11-21T09:58:00.000Z" },
        "page": {
            "url": format!("https://shop.example/products/{}?utm_source=newsletter&utm_medium=email&token=secret", n % 200),
            "path": format!("/products/{}", n % 200),
            "title": "Trail running shoes — Shop",
            "referrer": "https://www.google.com/"
        },
        "properties": { "sku": format!("SKU-{}", n % 500), "price": 89.9, "in_stock": true },
        "context": { "locale": "en-GB", "tz": "Europe/London", "screen_w": 1920, "screen_h": 1080,
                     "viewport_w": 1440, "viewport_h": 900, "lib": "spoor-wasm/0.1.0" }
    });
    match kind {
        "click" => {
            e["click"] = serde_json::json!({ "tag": "a", "text": "Add to cart", "href": "/cart", "selector": "#add" })
        }
        "track" => e["name"] = serde_json::json!("order_completed"),
        "search" => {
            e["search"] =
                serde_json::json!({ "query": "shoes", "results_count": 12, "source": "url" })
        }
        _ => {}
    }
    e
}

pub fn batch(events: &[serde_json::Value]) -> String {
    serde_json::json!({ "sent_at": "2026-11-21T10:00:00.200Z", "events": events }).to_string()
}

/// `n` fresh page views and their ids.
pub fn page_views(n: usize) -> (Vec<uuid::Uuid>, String) {
    let ids: Vec<uuid::Uuid> = (0..n).map(|_| uuid::Uuid::new_v4()).collect();
    let events: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| event(id, "page_view", i))
        .collect();
    (ids, batch(&events))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Maximum compression: a 16 MiB run of one byte shrinks to ~16 KiB (a gzip bomb).
pub fn gzip_best(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

/// `batches` gzip batches of `per_batch` fresh page views.
pub fn gzip_batches(batches: usize, per_batch: usize) -> Vec<(Vec<uuid::Uuid>, Vec<u8>)> {
    (0..batches)
        .map(|_| {
            let (ids, body) = page_views(per_batch);
            (ids, gzip(body.as_bytes()))
        })
        .collect()
}

/// Sends batches from `concurrency` workers. A batch counts as acknowledged only on 200.
/// With `retry`, non-200 answers and connection errors are retried (as the SDK does); without,
/// a worker stops at its first failure (the collector is gone).
pub async fn send_load(
    url: &str,
    batches: Vec<(Vec<uuid::Uuid>, Vec<u8>)>,
    concurrency: usize,
    retry: bool,
    acked_events: Arc<std::sync::atomic::AtomicUsize>,
) -> Vec<uuid::Uuid> {
    let batches = Arc::new(batches);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (batches, next, acked, http, acked_events) = (
            batches.clone(),
            next.clone(),
            acked.clone(),
            http.clone(),
            acked_events.clone(),
        );
        let url = format!("{url}/v1/batch?key=pk_any&compression=gzip");
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((ids, body)) = batches.get(i) else {
                    return;
                };
                let mut tries = 0;
                loop {
                    tries += 1;
                    let sent = http
                        .post(&url)
                        .header("content-type", "text/plain")
                        .body(body.clone())
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            acked.lock().unwrap().extend_from_slice(ids);
                            acked_events.fetch_add(ids.len(), Ordering::SeqCst);
                            break;
                        }
                        _ if !retry => return,
                        other => {
                            assert!(tries < 600, "batch {i} never accepted: {other:?}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    Arc::try_unwrap(acked).unwrap().into_inner().unwrap()
}

/// Every event id stored in `events`.
pub async fn stored_ids(ch: &clickhouse::Client) -> std::collections::HashSet<uuid::Uuid> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Id {
        #[serde(with = "clickhouse::serde::uuid")]
        event_id: uuid::Uuid,
    }
    ch.query("SELECT event_id FROM events")
        .fetch_all::<Id>()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event_id)
        .collect()
}

/// A metric's value from the Prometheus text, 0 when absent.
pub async fn metric(base: &str, line_prefix: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// An HTTP proxy to ClickHouse that answers inserts into `events` whose data holds `poison`
/// with ClickHouse's "bad data" error (code 117, INCORRECT_DATA), and forwards everything
/// else. Fault injection: the local ClickHouse (chDB) cannot be made to refuse a row on
/// demand — it does not enforce CHECK constraints on streamed inserts.
pub struct BadDataProxy {
    pub url: String,
    task: JoinHandle<()>,
}

impl BadDataProxy {
    pub async fn start(poison: &'static str) -> BadDataProxy {
        use axum::extract::Request;
        use axum::response::{IntoResponse, Response};
        let target = clickhouse_url();
        let http = reqwest::Client::new();
        let handler = move |req: Request| {
            let (http, target) = (http.clone(), target.clone());
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let query: String =
                    url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                        .filter(|(k, _)| k == "query")
                        .map(|(_, v)| v.into_owned())
                        .collect();
                let poisoned = body.windows(poison.len()).any(|w| w == poison.as_bytes());
                if query.starts_with("INSERT INTO `events`") && poisoned {
                    return (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [("x-clickhouse-exception-code", "117")],
                        "Code: 117. DB::Exception: Cannot parse input: poisoned row. (INCORRECT_DATA)\n",
                    )
                        .into_response();
                }
                let path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let mut forward = http.request(parts.method.clone(), format!("{target}{path}"));
                for (name, value) in &parts.headers {
                    if name != "host" && name != "content-length" {
                        forward = forward.header(name, value);
                    }
                }
                let answer = forward.body(body).send().await.unwrap();
                let mut response = Response::builder().status(answer.status());
                for (name, value) in answer.headers() {
                    if !["content-length", "transfer-encoding", "connection"]
                        .contains(&name.as_str())
                    {
                        response = response.header(name, value);
                    }
                }
                response
                    .body(axum::body::Body::from(answer.bytes().await.unwrap()))
                    .unwrap()
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(handler);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        BadDataProxy { url, task }
    }
}

impl Drop for BadDataProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
