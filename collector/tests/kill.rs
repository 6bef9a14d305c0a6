//! Fault (b): the real collector binary killed with SIGKILL in the middle of a load. After a
//! restart on the same spool, every acknowledged event is in ClickHouse, once.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_collector(config: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_spoor-collector"))
        .arg("--config")
        .arg(config)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("SPOOR_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn spoor-collector")
}

async fn wait_healthy(url: &str, child: &mut Child) {
    for _ in 0..300 {
        if reqwest::get(format!("{url}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("spoor-collector exited at start: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("spoor-collector did not become healthy at {url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_load_loses_no_acknowledged_event() {
    require_clickhouse().await;
    let mut options = Options::new("sigkill");
    // Inserts of 5000 rows, so that at the kill some records are in flight or not yet sent.
    options.toml = "[writer]\nmax_rows = 5000\nmax_wait_ms = 2000\n".into();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.toml");
    options.write_file(&config);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");

    let mut child = spawn_collector(&config, port);
    wait_healthy(&url, &mut child).await;
    let acked_events = Arc::new(AtomicUsize::new(0));
    let load = {
        let (url, acked_events) = (url.clone(), acked_events.clone());
        tokio::spawn(async move {
            send_load(&url, gzip_batches(1000, 50), 8, false, acked_events).await
        })
    };
    while acked_events.load(Ordering::SeqCst) < 15_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let acked: HashSet<_> = load.await.unwrap().into_iter().collect();
    eprintln!("{} events acknowledged before SIGKILL", acked.len());
    assert!(
        acked.len() >= 15_000 && acked.len() < 50_000,
        "{}",
        acked.len()
    );

    let mut child = spawn_collector(&config, port);
    wait_healthy(&url, &mut child).await;
    let ch = clickhouse(&options.database);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let stored = stored_ids(&ch).await;
        let missing = acked.difference(&stored).count();
        if missing == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} acknowledged events missing after restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let replayed = metric(&url, "spoor_collector_spool_replayed_records_total").await;
    eprintln!("{replayed} spooled requests replayed after the restart");
    assert!(replayed > 0.0, "the kill must leave work in the spool");
    // Once: a batch inserted just before the kill and replayed after it is deduplicated.
    assert_eq!(
        count(&ch, "SELECT count() FROM events FINAL").await,
        count(&ch, "SELECT uniqExact(event_id) FROM events").await
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
