//! Acknowledged means stored: ClickHouse outages, restarts, retries and refused rows, against a
//! real ClickHouse (through a TCP proxy that can cut it off).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Fault (a): ClickHouse unreachable for a while in the middle of 50 000 events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_outage_during_50k_events_loses_and_duplicates_nothing() {
    let proxy = Arc::new(Proxy::start().await);
    let mut options = Options::new("outage");
    options.clickhouse_url = proxy.url.clone();
    let c = TestCollector::start(&options).await;

    let acked_events = Arc::new(AtomicUsize::new(0));
    let fault = {
        let (proxy, acked_events) = (proxy.clone(), acked_events.clone());
        tokio::spawn(async move {
            while acked_events.load(Ordering::SeqCst) < 10_000 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            proxy.cut();
            let cut_at = acked_events.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(4)).await;
            let during = acked_events.load(Ordering::SeqCst) - cut_at;
            proxy.restore();
            during
        })
    };
    let started = Instant::now();
    let acked = send_load(&c.url, gzip_batches(1000, 50), 8, true, acked_events).await;
    let acked_during_outage = fault.await.unwrap();
    eprintln!(
        "sent {} events in {:?}; {acked_during_outage} acknowledged while ClickHouse was cut off",
        acked.len(),
        started.elapsed()
    );
    assert_eq!(acked.len(), 50_000);
    assert!(acked_during_outage > 0, "the outage must overlap the load");
    assert!(
        metric(
            &c.url,
            "spoor_collector_clickhouse_insert_retries_total{table=\"events\"}"
        )
        .await
            > 0.0,
        "the writer must have felt the outage"
    );

    wait_for_count(
        &c.ch,
        "SELECT count() FROM events FINAL",
        50_000,
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(
        count(&c.ch, "SELECT uniqExact(event_id) FROM events").await,
        50_000
    );
    // Not even transient duplicates: retried inserts were deduplicated by their token.
    assert_eq!(count(&c.ch, "SELECT count() FROM events").await, 50_000);
    let stored = stored_ids(&c.ch).await;
    let acked: HashSet<_> = acked.into_iter().collect();
    assert_eq!(stored, acked);
    c.stop().await;
}

/// Fault (c): the same batch three times is counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_batch_three_times_is_counted_once() {
    let c = TestCollector::start(&Options::new("thrice")).await;
    let (_, body) = page_views(50);
    let body = gzip(body.as_bytes());
    for _ in 0..3 {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/batch?key=pk_any&compression=gzip", c.url))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    wait_for_count(
        &c.ch,
        "SELECT count() FROM events FINAL",
        50,
        Duration::from_secs(20),
    )
    .await;
    // Wait until all three copies are in, then check every reading rule.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&c.ch, "SELECT count() FROM events FINAL").await, 50);
    assert_eq!(
        count(&c.ch, "SELECT uniqExact(event_id) FROM events").await,
        50
    );
    c.ch.query("OPTIMIZE TABLE events FINAL")
        .execute()
        .await
        .unwrap();
    assert_eq!(count(&c.ch, "SELECT count() FROM events").await, 50);
    c.stop().await;
}

/// Rows ClickHouse refuses as bad data are not retried forever: the batch is bisected, the
/// refused row goes to events_rejected and its neighbours are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_clickhouse_refuses_go_to_events_rejected() {
    let proxy = BadDataProxy::start("poison-7f3a9c").await;
    let mut options = Options::new("bad_data");
    options.clickhouse_url = proxy.url.clone();
    let c = TestCollector::start(&options).await;
    let events: Vec<_> = (0..10)
        .map(|i| {
            let mut e = event(&uuid::Uuid::new_v4(), "track", i);
            if i == 6 {
                e["name"] = "poison-7f3a9c".into();
            }
            e
        })
        .collect();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/batch?key=pk_any", c.url))
        .body(batch(&events))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_for_count(&c.ch, "SELECT count() FROM events_rejected WHERE reason = 'clickhouse_rejected' AND position(raw, 'poison-7f3a9c') > 0", 1, Duration::from_secs(30)).await;
    wait_for_count(
        &c.ch,
        "SELECT count() FROM events FINAL",
        9,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        count(
            &c.ch,
            "SELECT count() FROM events WHERE name = 'poison-7f3a9c'"
        )
        .await,
        0
    );
    // Bad data is never retried.
    assert_eq!(
        metric(&c.url, "spoor_collector_clickhouse_insert_retries_total").await,
        0.0
    );
    c.stop().await;
}

/// Graceful shutdown drains what the writer holds, even before its batch would close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_the_spool() {
    let mut options = Options::new("drain");
    options.toml = "[writer]\nmax_wait_ms = 600000\nmax_rows = 1000000\n".into();
    let c = TestCollector::start(&options).await;
    let acked = send_load(
        &c.url,
        gzip_batches(20, 50),
        4,
        false,
        Arc::new(AtomicUsize::new(0)),
    )
    .await;
    assert_eq!(acked.len(), 1000);
    let ch = c.ch.clone();
    assert_eq!(
        count(&ch, "SELECT count() FROM events").await,
        0,
        "held by the writer"
    );
    c.stop().await;
    assert_eq!(count(&ch, "SELECT count() FROM events FINAL").await, 1000);
}

/// Acknowledged batches survive a restart while ClickHouse is away: replayed at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_is_replayed_on_start() {
    let proxy = Proxy::start().await;
    let mut options = Options::new("replay");
    options.clickhouse_url = proxy.url.clone();
    options.toml.push_str("[http]\nshutdown_grace_secs = 0\n");
    let c = TestCollector::start(&options).await;
    proxy.cut();
    let acked = send_load(
        &c.url,
        gzip_batches(30, 50),
        4,
        false,
        Arc::new(AtomicUsize::new(0)),
    )
    .await;
    assert_eq!(acked.len(), 1500);
    let ch = c.ch.clone();
    c.stop().await;
    assert_eq!(count(&ch, "SELECT count() FROM events").await, 0);

    proxy.restore();
    let c = TestCollector::start(&options).await;
    wait_for_count(
        &ch,
        "SELECT count() FROM events FINAL",
        1500,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(stored_ids(&ch).await, acked.into_iter().collect());
    assert!(metric(&c.url, "spoor_collector_spool_replayed_records_total").await >= 30.0);
    c.stop().await;
}
