//! End-to-end harness: real headless Chromium, the real collector and segmenter, the demo shop
//! and the local ClickHouse (or any ClickHouse named by `SPOOR_CLICKHOUSE_URL`).
//!
//! Each test gets a fresh ClickHouse database and its own ports, so tests run in parallel.

pub mod browser;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub use browser::Browser;

/// The folder with the built SDK (`spoor.js` + wasm), made by `sdk-wasm/build`.
/// `SPOOR_SDK_DIR` overrides the default `target/spoor-sdk`.
pub fn sdk_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("SPOOR_SDK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/spoor-sdk"));
    if !dir.join("spoor.js").is_file() {
        bail!(
            "no built SDK at {}: run `sdk-wasm/build` first (./spoor test does), or set SPOOR_SDK_DIR",
            dir.display()
        );
    }
    Ok(dir)
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A ClickHouse client for a new, empty database named `e2e_<test>_<random>`.
pub async fn fresh_database(test: &str) -> anyhow::Result<(clickhouse::Client, String)> {
    let url = spoor_local_clickhouse::url_from_env();
    let database = format!("e2e_{test}_{}", uuid::Uuid::new_v4().simple());
    let client = clickhouse::Client::default().with_url(&url);
    client
        .query(&format!("CREATE DATABASE {database}"))
        .execute()
        .await
        .with_context(|| {
            format!("ClickHouse at {url} is not reachable: start it with `local-clickhouse/ctl start` or set SPOOR_CLICKHOUSE_URL")
        })?;
    Ok((client.with_database(&database), database))
}

/// Polls `probe` until it returns `Some`, or fails after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if start.elapsed() > timeout {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
