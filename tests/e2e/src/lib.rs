//! End-to-end harness: real headless Chromium, the real collector and segmenter, the demo shop
//! and the local ClickHouse (or any ClickHouse named by `SPOOR_CLICKHOUSE_URL`).
//!
//! Each test gets a fresh ClickHouse database and its own ports, so tests run in parallel.

pub mod browser;
pub mod events;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

pub use browser::Browser;
pub use events::StoredEvent;

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

/// The collector and the demo shop, running in this process on their own ports, writing to a
/// fresh ClickHouse database.
pub struct Stack {
    pub database: String,
    pub clickhouse: clickhouse::Client,
    /// The collector's base URL.
    pub collector: String,
    /// The demo shop's base URL.
    pub site: String,
    collector_task: Option<CollectorTask>,
    spool: tempfile::TempDir,
}

struct CollectorTask {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Stack {
    pub async fn start(test: &str) -> anyhow::Result<Stack> {
        let (clickhouse, database) = fresh_database(test).await?;
        let spool = tempfile::tempdir()?;
        let collector_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let collector = format!("http://{}", collector_listener.local_addr()?);
        let mut stack = Stack {
            database,
            clickhouse,
            collector: collector.clone(),
            site: String::new(),
            collector_task: None,
            spool,
        };
        stack.start_collector(collector_listener).await?;

        let site_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        stack.site = format!("http://{}", site_listener.local_addr()?);
        let site = spoor_example_site::app(spoor_example_site::SiteConfig {
            root: repo_root().join("examples/site"),
            sdk_base: format!("{collector}/sdk"),
            collector,
            key: "pk_dev".to_owned(),
        });
        tokio::spawn(async move { axum_serve(site_listener, site).await });
        Ok(stack)
    }

    async fn start_collector(&mut self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let url = spoor_local_clickhouse::url_from_env();
        let sdk = sdk_dir()?;
        let spool = self.spool.path().to_string_lossy().into_owned();
        let cli = spoor_collector::Cli::try_parse_from([
            "spoor-collector",
            "--clickhouse-url",
            &url,
            "--clickhouse-database",
            &self.database,
            "--spool-dir",
            &spool,
            "--sdk-dir",
            &sdk.to_string_lossy(),
        ])?;
        let config = spoor_collector::Config::load(cli)?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let done = tokio::spawn(spoor_collector::serve(config, listener, async {
            let _ = stopped.await;
        }));
        self.collector_task = Some(CollectorTask { stop, done });
        let health = format!("{}/healthz", self.collector);
        eventually(
            "the collector to answer /healthz",
            Duration::from_secs(30),
            || async {
                Ok(reqwest::get(&health)
                    .await
                    .ok()
                    .filter(|r| r.status().is_success()))
            },
        )
        .await?;
        Ok(())
    }

    /// Stops the collector gracefully (it drains its spool into ClickHouse).
    pub async fn stop_collector(&mut self) -> anyhow::Result<()> {
        if let Some(task) = self.collector_task.take() {
            let _ = task.stop.send(());
            task.done.await??;
        }
        Ok(())
    }

    /// Starts the collector again on the same port and spool.
    pub async fn restart_collector(&mut self) -> anyhow::Result<()> {
        let addr = self.collector.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        self.start_collector(listener).await
    }

    /// Runs `sql` until it returns a row, then returns that row.
    pub async fn wait_for_row<T>(&self, sql: &str, timeout: Duration) -> anyhow::Result<T>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        eventually(sql, timeout, || async {
            Ok(self.clickhouse.query(sql).fetch_optional::<T>().await?)
        })
        .await
    }
}

async fn axum_serve(listener: tokio::net::TcpListener, app: axum::Router) {
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "Demo shop server stopped");
    }
}
