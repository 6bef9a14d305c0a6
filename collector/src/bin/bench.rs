//! `spoor-collector-bench`: how fast the collector gets events into ClickHouse.
//!
//! ```text
//! cargo run --release -p spoor-collector --bin spoor-collector-bench -- --clickhouse-url http://127.0.0.1:8123
//! ```
//!
//! Measures, with gzip batches of 50 realistic events:
//! 1. the floor: gzip-decode + JSON-parse of the same payloads only (on as many threads as the
//!    collector has workers), and the whole pure pipeline (+ validate + enrich) for reference;
//! 2. ClickHouse alone: rows/s of plain 20 000-row inserts of the same rows;
//! 3. throughput: every batch sent by concurrent keep-alive clients, acknowledged (durable in
//!    the spool) and then counted in ClickHouse;
//! 4. latency at a fixed open-loop rate (default 20 000 events/s), measured from each request's
//!    scheduled send time, so a stall is not hidden.
//!
//! Prints the figures against the budgets (≥ 100 000 events/s into ClickHouse, p99 ≤ 20 ms,
//! collector/floor ≥ 0.5). The collector runs in this process on its own 2-thread runtime;
//! the load generator has its own runtime. On one 2-core machine they share the cores (and
//! with the local ClickHouse).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::json;
use spoor_collector::config::{Cli, Config, parse_file};
use spoor_protocol::Limits;

#[derive(Debug, Parser)]
#[command(about = "Benchmark: spoor-collector throughput and latency into ClickHouse")]
struct Args {
    /// ClickHouse HTTP URL.
    #[arg(
        long,
        env = "SPOOR_CLICKHOUSE_URL",
        default_value = "http://127.0.0.1:8123"
    )]
    clickhouse_url: String,
    /// Events for the throughput run (in batches of 50).
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Concurrent client connections for the throughput run.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Fixed rate for the latency run, events per second.
    #[arg(long, default_value_t = 20_000)]
    rate: usize,
    /// Length of the latency run.
    #[arg(long, default_value_t = 10)]
    latency_secs: u64,
    /// Collector worker threads (the machine has 2 cores).
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PER_BATCH: usize = 50;

fn realistic_event(n: usize) -> serde_json::Value {
    let kinds = [
        "page_view",
        "page_view",
        "click",
        "page_view",
        "click",
        "page_leave",
        "track",
        "page_view",
        "search",
        "click",
    ];
    let kind = kinds[n % kinds.len()];
    let referrer = [
        "",
        "https://www.google.com/",
        "https://t.co/abc",
        "https://shop.example/",
    ][n % 4];
    let mut e = json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "type": kind,
        "timestamp": "2026-11-21T10:00:00.100Z",
        "anonymous_id": format!("a-{:016x}", fastrand::u64(..) % 50_000),
        "session": { "id": format!("s-{:016x}", fastrand::u64(..) % 80_000), "index": 1 + n % 7,
                     "started_at": "2026-11-21T09:58:00.000Z" },
        "page": {
            "url": format!("https://shop.example/products/{}?utm_source=newsletter&utm_medium=email&utm_campaign=spring", n % 500),
            "path": format!("/products/{}", n % 500),
            "title": "Trail running shoes, size 42 — Example Shop",
            "referrer": referrer
        },
        "context": { "locale": "de-DE", "tz": "Europe/Berlin", "screen_w": 1920, "screen_h": 1080,
                     "viewport_w": 1440, "viewport_h": 900, "lib": "spoor-wasm/0.1.0" }
    });
    match kind {
        "click" => {
            e["click"] = json!({ "tag": "button", "text": "Add to cart", "selector": "main > div.product > button.add", "href": null })
        }
        "page_leave" => e["leave"] = json!({ "engaged_ms": 12_345, "max_scroll_pct": 80 }),
        "search" => {
            e["search"] = json!({ "query": "trail shoes", "results_count": 24, "source": "url" })
        }
        "track" => {
            e["name"] = json!("add_to_cart");
            e["properties"] = json!({ "sku": format!("SKU-{}", n % 900), "price": 129.95, "currency": "EUR", "qty": 1 });
        }
        _ => {}
    }
    e
}

/// `count` gzip batches of 50 events, and the total uncompressed bytes.
fn payloads(count: usize) -> (Vec<Vec<u8>>, usize) {
    let mut raw_total = 0;
    let batches = (0..count)
        .map(|b| {
            let events: Vec<_> = (0..PER_BATCH)
                .map(|i| realistic_event(b * PER_BATCH + i))
                .collect();
            let text =
                json!({ "sent_at": "2026-11-21T10:00:00.200Z", "events": events }).to_string();
            raw_total += text.len();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(text.as_bytes()).unwrap_or_default();
            gz.finish().unwrap_or_default()
        })
        .collect();
    (batches, raw_total)
}

/// Runs `f` over the payloads on `threads` threads; returns events per second.
fn parallel_rate(payloads: &[Vec<u8>], threads: usize, f: fn(&[u8]) -> usize) -> f64 {
    let started = Instant::now();
    let chunk = payloads.len().div_ceil(threads);
    let events: usize = std::thread::scope(|s| {
        let handles: Vec<_> = payloads
            .chunks(chunk)
            .map(|part| s.spawn(move || part.iter().map(|p| f(p)).sum::<usize>()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    events as f64 / started.elapsed().as_secs_f64()
}

/// The floor: gzip-decode + JSON-parse, nothing else.
fn decode_only(payload: &[u8]) -> usize {
    let limits = Limits::default();
    spoor_collector::body::decompress(
        payload,
        spoor_collector::body::Encoding::Gzip,
        limits.max_decompressed_bytes,
    )
    .ok()
    .and_then(|text| spoor_protocol::decode_batch(&text, &limits).ok())
    .map_or(0, |b| b.events.len())
}

/// The whole pure pipeline: decode + validate + enrich into rows.
fn pipeline(payload: &[u8]) -> usize {
    rows_of(payload).len()
}

fn rows_of(payload: &[u8]) -> Vec<spoor_schema::EventRow> {
    let limits = Limits::default();
    let record = spoor_collector::ingest::IngestRecord {
        received_at: 1_795_255_200_000,
        project_id: "bench".into(),
        source: spoor_collector::ingest::Source::Browser,
        ip: "203.0.113.0".into(),
        user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36".into(),
        encoding: spoor_collector::body::Encoding::Gzip,
        body: bytes::Bytes::copy_from_slice(payload),
    };
    let Ok(decoded) =
        spoor_collector::ingest::decode_record(record.encoding, &record.body, &limits)
    else {
        return Vec::new();
    };
    let ctx = spoor_collector::ingest::context_of(&record, &decoded.sent_at);
    spoor_collector::ingest::build_rows(decoded, &ctx, &limits, &Default::default()).rows
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers)
        .enable_all()
        .build()?;
    let database = format!("bench_{}", std::process::id());
    let spool = std::env::temp_dir().join(format!("spoor-bench-spool-{}", std::process::id()));

    println!("Generating payloads…");
    let batches = args.events / PER_BATCH;
    let (throughput_payloads, raw_bytes) = payloads(batches);
    let latency_batches = args.rate * args.latency_secs as usize / PER_BATCH;
    let (latency_payloads, _) = payloads(latency_batches);
    let gz_bytes: usize = throughput_payloads.iter().map(Vec::len).sum();
    println!(
        "  {batches} batches of {PER_BATCH} events: {:.0} B gzip / {:.0} B JSON per batch",
        gz_bytes as f64 / batches as f64,
        raw_bytes as f64 / batches as f64
    );

    // 1. Floor.
    let floor = parallel_rate(&throughput_payloads, args.workers, decode_only);
    let pure = parallel_rate(&throughput_payloads, args.workers, pipeline);
    println!(
        "Floor (gzip-decode + JSON-parse, {} threads): {floor:>10.0} events/s",
        args.workers
    );
    println!("Pure pipeline (+ validate + enrich → rows):   {pure:>10.0} events/s");

    // 2. ClickHouse alone.
    let config = {
        let file =
            parse_file("[[keys]]\nkey = \"pk_bench\"\nproject = \"bench\"\norigins = [\"*\"]\n")?;
        let cli = Cli {
            clickhouse_url: Some(args.clickhouse_url.clone()),
            clickhouse_database: Some(database.clone()),
            spool_dir: Some(spool.clone()),
            ..Cli::default()
        };
        Config::from_parts(cli, Some(file)).map_err(anyhow::Error::msg)?
    };
    let ch = spoor_collector::clickhouse_client(&config);
    let (ch_rate, ch_rate_big) = server_rt.block_on(async {
        spoor_collector::migrate(&config, &ch).await?;
        let rows: Vec<_> = throughput_payloads
            .iter()
            .take(2000)
            .flat_map(|p| rows_of(p))
            .collect();
        let mut rates = Vec::new();
        let variants = [
            (
                "20 000-row inserts (as the writer)",
                20_000usize,
                ch.clone(),
            ),
            ("100 000-row inserts", 100_000, ch.clone()),
            (
                "20 000 rows, no LZ4",
                20_000,
                ch.clone().with_compression(clickhouse::Compression::None),
            ),
            (
                "20 000 rows, RowBinary without schema validation",
                20_000,
                ch.clone().with_validation(false),
            ),
        ];
        for (round, (name, size, client)) in variants.into_iter().enumerate() {
            let started = Instant::now();
            for (i, chunk) in rows.chunks(size).enumerate() {
                spoor_collector::sink::insert(
                    &client,
                    "events",
                    chunk,
                    &format!("bench-direct-{round}-{i}"),
                )
                .await?;
            }
            let rate = rows.len() as f64 / started.elapsed().as_secs_f64();
            println!("ClickHouse alone, {name}: {rate:>8.0} rows/s");
            rates.push(rate);
            ch.query("TRUNCATE TABLE events").execute().await?;
        }
        // Two inserts in flight at once.
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (i, chunk) in rows.chunks(20_000).enumerate() {
            let (client, chunk) = (ch.clone(), chunk.to_vec());
            tasks.push(tokio::spawn(async move {
                spoor_collector::sink::insert(&client, "events", &chunk, &format!("bench-par-{i}"))
                    .await
            }));
            if tasks.len() == 2 {
                tasks.remove(0).await??;
            }
        }
        for t in tasks {
            t.await??;
        }
        println!(
            "ClickHouse alone, 20 000-row inserts, 2 in flight: {:>8.0} rows/s",
            rows.len() as f64 / started.elapsed().as_secs_f64()
        );
        ch.query("TRUNCATE TABLE events").execute().await?;
        anyhow::Ok((rates[0], rates[1]))
    })?;
    let _ = ch_rate_big;

    // 3. Throughput through the collector.
    let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(spoor_collector::serve(config, listener, async {
        let _ = stop_rx.await;
    }));
    let url = format!("{base}/v1/batch?key=pk_bench&compression=gzip");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let count_rows = |ch: clickhouse::Client| async move {
        ch.query("SELECT count() FROM events")
            .fetch_one::<u64>()
            .await
            .unwrap_or(0)
    };

    let payloads = Arc::new(throughput_payloads);
    let (ack_time, e2e_time, failures) = client_rt.block_on(async {
        for _ in 0..100 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..args.connections)
            .map(|_| {
                let (http, url, payloads, next, failures) = (
                    http.clone(),
                    url.clone(),
                    payloads.clone(),
                    next.clone(),
                    failures.clone(),
                );
                tokio::spawn(async move {
                    while let Some(p) = payloads.get(next.fetch_add(1, Ordering::Relaxed)) {
                        loop {
                            match http
                                .post(&url)
                                .header("content-type", "text/plain")
                                .body(p.clone())
                                .send()
                                .await
                            {
                                Ok(r) if r.status() == 200 => {
                                    let _ = r.bytes().await;
                                    break;
                                }
                                _ => {
                                    failures.fetch_add(1, Ordering::Relaxed);
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.await;
        }
        let ack_time = started.elapsed();
        let expected = (payloads.len() * PER_BATCH) as u64;
        while count_rows(ch.clone()).await < expected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (
            ack_time,
            started.elapsed(),
            failures.load(Ordering::Relaxed),
        )
    });
    let total = (payloads.len() * PER_BATCH) as f64;
    let acked_rate = total / ack_time.as_secs_f64();
    let e2e_rate = total / e2e_time.as_secs_f64();
    println!(
        "Throughput, {} connections: acknowledged (durable in spool) {acked_rate:>8.0} events/s; \
         in ClickHouse {e2e_rate:>8.0} events/s ({:.1} s for {total} events; {failures} retried requests)",
        args.connections,
        e2e_time.as_secs_f64()
    );

    // 4. Latency at a fixed rate.
    let period = Duration::from_secs_f64(PER_BATCH as f64 / args.rate as f64);
    let latency_payloads = Arc::new(latency_payloads);
    let (mut latencies, errors, behind) = client_rt.block_on(async {
        let before = count_rows(ch.clone()).await;
        let start = tokio::time::Instant::now() + Duration::from_millis(100);
        let mut tasks = Vec::with_capacity(latency_payloads.len());
        for i in 0..latency_payloads.len() {
            let at = start + period * i as u32;
            tokio::time::sleep_until(at).await;
            let (http, url, payloads) = (http.clone(), url.clone(), latency_payloads.clone());
            tasks.push(tokio::spawn(async move {
                let r = http
                    .post(&url)
                    .header("content-type", "text/plain")
                    .body(payloads[i].clone())
                    .send()
                    .await;
                let ok = matches!(&r, Ok(r) if r.status() == 200);
                if let Ok(r) = r {
                    let _ = r.bytes().await;
                }
                (at.elapsed(), ok)
            }));
        }
        let mut latencies = Vec::with_capacity(tasks.len());
        let mut errors = 0;
        for t in tasks {
            if let Ok((d, ok)) = t.await {
                latencies.push(d);
                errors += usize::from(!ok);
            }
        }
        // Did ClickHouse keep up with the fixed rate? Rows still missing 2 s after the end.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let expected = before + (latency_payloads.len() * PER_BATCH) as u64;
        let behind = expected.saturating_sub(count_rows(ch.clone()).await);
        (latencies, errors, behind)
    });
    latencies.sort();
    let (p50, p99, max) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "Latency at {} events/s ({} requests over {} s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         {errors} errors; {behind} rows not yet in ClickHouse 2 s after the run",
        args.rate,
        latencies.len(),
        args.latency_secs,
        ms(p50),
        ms(p99),
        ms(max)
    );

    let _ = stop_tx.send(());
    let _ = server_rt.block_on(server);
    let _ = server_rt.block_on(async {
        ch.clone()
            .with_database("default")
            .query(&format!("DROP DATABASE IF EXISTS {database}"))
            .execute()
            .await
    });

    let _ = std::fs::remove_dir_all(&spool);
    let ratio = e2e_rate / floor;
    println!();
    println!("Budget                                   measured        verdict");
    println!(
        "throughput into ClickHouse ≥ 100000/s    {e2e_rate:>10.0}/s    {}",
        verdict(e2e_rate >= 100_000.0)
    );
    println!(
        "p99 latency at {:>6}/s ≤ 20 ms          {:>10.2} ms   {}",
        args.rate,
        ms(p99),
        verdict(p99 <= Duration::from_millis(20))
    );
    println!(
        "collector / floor ≥ 0.5                  {ratio:>10.2}       {}",
        verdict(ratio >= 0.5)
    );
    println!(
        "(acknowledged-only throughput {acked_rate:.0}/s = {:.2} of the floor; ClickHouse alone {ch_rate:.0} rows/s)",
        acked_rate / floor
    );
    Ok(())
}
