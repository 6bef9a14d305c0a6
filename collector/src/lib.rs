//! Spoor's collector: the HTTP intake between browsers/backends and ClickHouse.
//!
//! Code map:
//! * [`config`]: CLI + env + TOML → a validated [`Config`].
//! * [`keys`]: write keys, origin allowlists, secret keys, rate limits.
//! * [`http`]: routes and thin handlers ([`app`]); [`error`]: the one error → status mapping.
//! * [`body`]: capped reading and bomb-safe decompression.
//! * [`ingest`]: the spooled form of a request and the pure request → rows function.
//! * [`enrich`]: pure enrichment (clock skew, IP, user agent, referrer, UTM, URL scrubbing).
//! * [`store`]: the durability seam the handlers wait on; [`spool`]: the write-ahead log behind it.
//! * [`writer`]: the task that drains the spool into ClickHouse.
//! * [`sink`]: the only code that inserts into ClickHouse.
//! * [`metrics`]: Prometheus metrics.
//!
//! Architecture invariants: an HTTP 2xx means the request is durable; enrichment and
//! validation are pure and deterministic, so replaying a spooled request yields the same rows.

pub mod body;
pub mod config;
pub mod enrich;
pub mod error;
pub mod http;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod sink;
pub mod spool;
pub mod store;
pub mod writer;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;

pub use config::{Cli, Config};
pub use http::{AppState, app};

/// A ClickHouse client for the configured server, without a default database.
pub fn clickhouse_client(config: &Config) -> clickhouse::Client {
    let client = clickhouse::Client::default()
        .with_url(&config.clickhouse.url)
        .with_user(&config.clickhouse.user)
        .with_password(&config.clickhouse.password)
        .with_database(&config.clickhouse.database);
    match config.clickhouse.cluster {
        // Inserts into the Distributed table return once the shards have the rows, so a
        // confirmed insert is really stored.
        Some(_) => client.with_setting("distributed_foreground_insert", "1"),
        None => client,
    }
}

/// Applies the collector's migrations (and the TTL, when configured).
pub async fn migrate(config: &Config, client: &clickhouse::Client) -> anyhow::Result<()> {
    let layout = config.layout();
    let applied = spoor_schema::migrate(
        client,
        "collector",
        &layout,
        spoor_schema::INGEST_MIGRATIONS,
    )
    .await
    .with_context(|| format!("migrating ClickHouse at {}", config.clickhouse.url))?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "Applied migrations");
    }
    if let Some(days) = config.clickhouse.events_ttl_days {
        let ttl = (days > 0).then(|| format!("toDateTime(timestamp) + INTERVAL {days} DAY"));
        let sql = spoor_schema::ttl_statement(&spoor_schema::EVENTS, &layout, ttl.as_deref());
        client
            .clone()
            .with_database("default")
            .query(&sql)
            .execute()
            .await
            .with_context(|| format!("setting the events TTL: {sql}"))?;
    }
    Ok(())
}

/// A started collector: the shared state for [`app`], plus the writer and spool behind it.
pub struct Running {
    pub state: Arc<AppState>,
    writer: tokio::task::JoinHandle<()>,
    spool_thread: std::thread::JoinHandle<()>,
    shutdown: tokio::sync::watch::Sender<Option<tokio::time::Instant>>,
}

/// Migrates ClickHouse, opens the spool (replaying what it holds) and starts the writer.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    if config.dev_mode {
        tracing::warn!(
            key = config::DEV_KEY,
            "No --config given: dev mode, write key pk_dev for project dev, any origin allowed"
        );
    }
    let client = clickhouse_client(&config);
    migrate(&config, &client).await?;
    let opened = spool::Spool::<ingest::Ingested>::open(
        &config.spool.dir,
        config.spool.segment_bytes,
        config.spool.high_water_bytes,
        config.writer.memory_queue_bytes,
    )
    .with_context(|| format!("opening the spool in {}", config.spool.dir.display()))?;
    let metrics = Arc::new(metrics::Metrics::new());
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(None);
    let writer = writer::Writer {
        spool: opened.spool.clone(),
        appended: opened.appended,
        client: client.clone(),
        config: config.writer.clone(),
        limits: config.limits.clone(),
        enrich: config.enrich.clone(),
        metrics: metrics.clone(),
    };
    let writer = tokio::spawn(writer.run(opened.recovered, shutdown_rx));
    let state = Arc::new(AppState {
        keys: keys::KeyRing::new(&config.keys, config.limits.max_events_per_batch),
        store: Arc::new(store::SpoolStore {
            spool: opened.spool,
        }),
        clock: Arc::new(http::SystemClock),
        readiness: Arc::new(http::ClickHousePing(client)),
        metrics,
        config,
    });
    Ok(Running {
        state,
        writer,
        spool_thread: opened.thread,
        shutdown,
    })
}

impl Running {
    /// Drains the spool into ClickHouse (up to the configured grace period), then closes it.
    /// Call after the HTTP server has stopped taking requests.
    pub async fn stop(self) {
        let grace = self.state.config.shutdown_grace;
        let _ = self
            .shutdown
            .send(Some(tokio::time::Instant::now() + grace));
        if let Err(error) = self.writer.await {
            tracing::error!(error = %error, "Writer task failed");
        }
        // The last spool handle goes with the state; then the appender thread ends.
        drop(self.state);
        let join = tokio::task::spawn_blocking(move || self.spool_thread.join());
        if tokio::time::timeout(std::time::Duration::from_secs(10), join)
            .await
            .is_err()
        {
            tracing::warn!("The spool is still in use; its last records are synced already");
        }
    }
}

/// Runs the collector on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let running = start(config).await?;
    tracing::info!(address = %listener.local_addr()?, "Collector listening");
    let served = axum::serve(
        listener,
        app(running.state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    running.stop().await;
    served?;
    Ok(())
}
