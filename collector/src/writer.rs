//! The writer task: drains the spool into ClickHouse in batches.
//!
//! A batch closes at `max_rows` rows, `max_bytes` bytes or `max_wait` after its first record.
//! Before inserting, the writer seals the batch in the spool (`first..=last`), so that after a
//! crash the same records form the same insert with the same `insert_deduplication_token`.
//! It keeps the rows until ClickHouse confirms, retries with jittered exponential backoff, and
//! never retries bad-data errors: it bisects the batch to find the refused rows and stores
//! those in `events_rejected`. Then it commits the batch in the spool. Two batches can be in
//! flight at once (the next one's rows travel while ClickHouse writes the previous one); the
//! spool commits a prefix, so each batch commits only after the one before it.
//!
//! Records normally arrive in memory straight from the spool's appender; whatever is not in
//! memory (start-up replay, or records the bounded memory queue had no room for) is read
//! back from disk and decoded again — the same pure functions give the same rows.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use spoor_protocol::Limits;
use spoor_schema::{EventRow, RejectedRow};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::config::{EnrichConfig, WriterConfig};
use crate::enrich::datetime;
use crate::ingest::{
    IngestRecord, Ingested, MAX_REJECTED_RAW, build_rows, cap, context_of, decode_record,
};
use crate::metrics::{Metrics, TableLabels};
use crate::sink::{self, InsertError};
use crate::spool::{Appended, DiskReader, MemoryQueue, Recovered, Spool};

/// Longest time one INSERT may take before it counts as failed (and is retried).
const INSERT_TIMEOUT: Duration = Duration::from_secs(60);
/// Batches being inserted at once: the next batch's rows are sent while ClickHouse writes the
/// previous one (its HTTP server reads a body before running the insert).
const MAX_IN_FLIGHT: usize = 2;
/// Most payload bytes read from disk at a time.
const DISK_CHUNK: usize = 4 << 20;

/// `None` while running; `Some(deadline)` once shutdown began: drain what is durable, give
/// up retrying at the deadline (the rest stays in the spool for the next start).
pub type ShutdownSignal = watch::Receiver<Option<Instant>>;

pub struct Writer {
    pub spool: Spool<Ingested>,
    pub appended: MemoryQueue<Ingested>,
    pub client: clickhouse::Client,
    pub config: WriterConfig,
    pub limits: Limits,
    pub enrich: EnrichConfig,
    pub metrics: Arc<Metrics>,
}

struct Batch {
    first: u64,
    last: u64,
    rows: Vec<EventRow>,
    rejected: Vec<RejectedRow>,
    bytes: usize,
    records: u64,
    spool_bytes: u64,
    /// Re-forming a batch sealed before a restart.
    sealed: bool,
}

impl Batch {
    fn new(first: u64) -> Batch {
        Batch {
            first,
            last: first.saturating_sub(1),
            rows: Vec::new(),
            rejected: Vec::new(),
            bytes: 0,
            records: 0,
            spool_bytes: 0,
            sealed: false,
        }
    }

    fn add(&mut self, seq: u64, size: u64, ingested: Ingested) {
        self.last = seq;
        self.records += 1;
        self.spool_bytes += size;
        self.bytes += ingested.approx_bytes;
        self.rows.extend(ingested.rows);
        self.rejected.extend(ingested.rejected);
    }

    fn is_empty(&self) -> bool {
        self.records == 0
    }
}

/// Why an insert stopped without success.
enum Stop {
    BadData { code: u32, message: String },
    ShuttingDown,
}

struct Run {
    w: Writer,
    disk: DiskReader,
    head: Option<Appended<Ingested>>,
    next_seq: u64,
    seals: VecDeque<(u64, u64)>,
    shutdown: ShutdownSignal,
}

impl Writer {
    /// Runs until shutdown has drained everything durable (or hit its deadline).
    pub async fn run(self, recovered: Recovered, shutdown: ShutdownSignal) {
        if !recovered.pending.is_empty() {
            tracing::info!(
                records = recovered.pending.len(),
                sealed_batches = recovered.seals.len(),
                "Replaying spooled requests into ClickHouse"
            );
        }
        let disk = DiskReader::new(&self.spool.shared.dir);
        let mut run = Run {
            w: self,
            disk,
            head: None,
            next_seq: recovered.committed + 1,
            seals: recovered.seals.into_iter().collect(),
            shutdown,
        };
        if let Some(&(first, _)) = recovered.pending.first() {
            run.next_seq = run.next_seq.max(first);
        }
        let inserter = Inserter {
            spool: run.w.spool.clone(),
            client: run.w.client.clone(),
            config: run.w.config.clone(),
            metrics: run.w.metrics.clone(),
            shutdown: run.shutdown.clone(),
        };
        // Up to MAX_IN_FLIGHT batches are inserted at once (the next one's rows travel
        // while ClickHouse writes the previous); each commits after the one before it.
        let mut in_flight: VecDeque<tokio::task::JoinHandle<bool>> = VecDeque::new();
        let mut previous: Option<oneshot::Receiver<bool>> = None;
        let mut completed = true;
        while let Some(batch) = run.collect().await {
            if !batch.sealed
                && let Err(error) = run.w.spool.seal(batch.first, batch.last).await
            {
                // Without the seal a replay may form a different insert; ReplacingMergeTree
                // still collapses the duplicates.
                tracing::warn!(error = %error, "Could not seal a batch in the spool");
            }
            let (done, next) = oneshot::channel();
            let before = previous.replace(next);
            let mut inserter = inserter.clone();
            in_flight.push_back(tokio::spawn(async move {
                let ok = inserter.flush(batch, before).await;
                let _ = done.send(ok);
                ok
            }));
            if in_flight.len() >= MAX_IN_FLIGHT
                && let Some(oldest) = in_flight.pop_front()
                && !oldest.await.unwrap_or(false)
            {
                completed = false;
                break;
            }
        }
        for task in in_flight {
            completed &= task.await.unwrap_or(false);
        }
        if !completed {
            tracing::warn!(
                "Shutdown deadline reached; unsent batches stay in the spool for the next start"
            );
            return;
        }
        tracing::info!("Writer drained");
    }
}

impl Run {
    /// The shutdown deadline, marking the signal as seen (so `changed` waits for a new one).
    fn deadline(&mut self) -> Option<Instant> {
        *self.shutdown.borrow_and_update()
    }

    /// Gathers the next batch; `None` when shutting down with nothing left.
    async fn collect(&mut self) -> Option<Batch> {
        while self
            .seals
            .front()
            .is_some_and(|&(_, last)| last < self.next_seq)
        {
            self.seals.pop_front();
        }
        let mut batch = Batch::new(self.next_seq);
        let sealed_last = match self.seals.front() {
            Some(&(first, last)) if first == self.next_seq => {
                self.seals.pop_front();
                batch.sealed = true;
                Some(last)
            }
            _ => None,
        };
        let mut closes_at: Option<Instant> = None;
        loop {
            match sealed_last {
                Some(last) if self.next_seq > last => return Some(batch),
                None if batch.rows.len() >= self.w.config.max_rows
                    || batch.bytes >= self.w.config.max_bytes =>
                {
                    return Some(batch);
                }
                _ => {}
            }
            let shared = self.w.spool.shared.clone();
            // Registered before looking, so a record appended in between still wakes us.
            let appended = shared.appended.notified();
            let durable = shared.durable_seq.load(Ordering::SeqCst);
            if self.next_seq <= durable {
                let upto = sealed_last.map_or(durable, |last| last.min(durable));
                self.load(&mut batch, upto).await;
                closes_at.get_or_insert_with(|| Instant::now() + self.w.config.max_wait);
                continue;
            }
            if self.deadline().is_some() {
                return (!batch.is_empty()).then_some(batch);
            }
            if closes_at.is_some_and(|at| Instant::now() >= at) && !batch.is_empty() {
                return Some(batch);
            }
            let wake_at = closes_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = appended => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = shutdown_changed(&mut self.shutdown) => {}
            }
        }
    }

    /// Adds record `next_seq` (and possibly a few more from disk) to the batch.
    async fn load(&mut self, batch: &mut Batch, upto: u64) {
        let disk_to = loop {
            if self.head.is_none() {
                self.head = self.w.appended.try_recv();
            }
            match &self.head {
                Some(h) if h.seq < self.next_seq => self.head = None,
                Some(h) if h.seq == self.next_seq => {
                    if let Some(h) = self.head.take() {
                        batch.add(h.seq, h.size, h.value);
                        self.next_seq += 1;
                    }
                    return;
                }
                Some(h) => break upto.min(h.seq - 1),
                None => break upto,
            }
        };
        let from = self.next_seq;
        let dir_reader = &mut self.disk;
        // Rare path (replay, overflow): read in place rather than hop threads.
        let read = dir_reader.read(from, disk_to, DISK_CHUNK);
        let records = match read {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(error = %error, seq = from, "Could not read the spool; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                return;
            }
        };
        if records.is_empty() {
            tracing::error!(
                seq = from,
                "A durable spool record is missing from disk; skipping it"
            );
            self.next_seq += 1;
            return;
        }
        for (seq, size, payload) in records {
            if seq != self.next_seq {
                tracing::error!(
                    expected = self.next_seq,
                    found = seq,
                    "Spool records missing from disk; skipping them"
                );
            }
            let ingested = self.derive(&payload);
            batch.add(seq, size, ingested);
            self.next_seq = seq + 1;
            self.w.metrics.spool_replayed_records.inc();
        }
    }

    /// The rows of a spooled record, decoded again.
    fn derive(&self, payload: &[u8]) -> Ingested {
        let Some(record) = IngestRecord::decode(payload) else {
            return unreplayable(0, "", "spool record does not decode", payload);
        };
        match decode_record(record.encoding, &record.body, &self.w.limits) {
            Ok(decoded) => {
                let ctx = context_of(&record, &decoded.sent_at);
                build_rows(decoded, &ctx, &self.w.limits, &self.w.enrich)
            }
            Err(error) => unreplayable(
                record.received_at,
                &record.project_id,
                &error.to_string(),
                &record.body,
            ),
        }
    }
}

/// What inserting a batch needs; each in-flight insert has its own copy.
#[derive(Clone)]
struct Inserter {
    spool: Spool<Ingested>,
    client: clickhouse::Client,
    config: WriterConfig,
    metrics: Arc<Metrics>,
    shutdown: ShutdownSignal,
}

impl Inserter {
    /// The shutdown deadline, marking the signal as seen (so `changed` waits for a new one).
    fn deadline(&mut self) -> Option<Instant> {
        *self.shutdown.borrow_and_update()
    }

    /// Inserts one (sealed) batch, waits for the batch before it (`before`) to be committed,
    /// then commits it. False when shutdown cut it (or the batch before) short.
    async fn flush(&mut self, batch: Batch, before: Option<oneshot::Receiver<bool>>) -> bool {
        let spool = self.spool.clone();
        let token = format!("{}-{}-{}", spool.shared.id, batch.first, batch.last);
        let mut rejected = batch.rejected;
        if !self.insert_events(&batch.rows, &token, &mut rejected).await {
            return false;
        }
        match self
            .insert_retrying("events_rejected", &rejected, &token)
            .await
        {
            Ok(()) => {}
            Err(Stop::ShuttingDown) => return false,
            Err(Stop::BadData { code, message }) => {
                tracing::error!(rows = rejected.len(), code, error = %message, "ClickHouse refused rows for events_rejected; they are lost");
            }
        }
        // The spool commits a prefix: never past a batch that is not in ClickHouse yet.
        if let Some(before) = before
            && !before.await.unwrap_or(false)
        {
            return false;
        }
        spool.commit(batch.last).await;
        let shared = &spool.shared;
        shared.pending_bytes.fetch_sub(
            batch
                .spool_bytes
                .min(shared.pending_bytes.load(Ordering::SeqCst)),
            Ordering::SeqCst,
        );
        shared.pending_records.fetch_sub(
            batch
                .records
                .min(shared.pending_records.load(Ordering::SeqCst)),
            Ordering::SeqCst,
        );
        true
    }

    /// Inserts event rows; rows ClickHouse refuses as bad data are found by bisection and
    /// moved to `rejected`. False when shutdown cut it short.
    async fn insert_events(
        &mut self,
        rows: &[EventRow],
        token: &str,
        rejected: &mut Vec<RejectedRow>,
    ) -> bool {
        let mut stack = vec![(0usize, rows.len(), token.to_owned())];
        while let Some((lo, hi, token)) = stack.pop() {
            match self.insert_retrying("events", &rows[lo..hi], &token).await {
                Ok(()) => {}
                Err(Stop::ShuttingDown) => return false,
                Err(Stop::BadData { code, message }) if hi - lo == 1 => {
                    tracing::warn!(event_id = %rows[lo].event_id, code, error = %message, "ClickHouse refused an event; storing it in events_rejected");
                    rejected.push(refused_row(&rows[lo], code, &message));
                }
                Err(Stop::BadData { .. }) => {
                    let mid = lo + (hi - lo) / 2;
                    stack.push((mid, hi, format!("{token}-1")));
                    stack.push((lo, mid, format!("{token}-0")));
                }
            }
        }
        true
    }

    async fn insert_retrying<T: clickhouse::RowOwned + clickhouse::RowWrite>(
        &mut self,
        table: &'static str,
        rows: &[T],
        token: &str,
    ) -> Result<(), Stop> {
        if rows.is_empty() {
            return Ok(());
        }
        let labels = TableLabels { table };
        let mut backoff = self.config.retry_initial;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let started = std::time::Instant::now();
            let result = match tokio::time::timeout(
                INSERT_TIMEOUT,
                sink::insert(&self.client, table, rows, token),
            )
            .await
            {
                Ok(result) => result,
                Err(_) => Err(InsertError::Retryable("insert timed out".into())),
            };
            match result {
                Ok(()) => {
                    let m = &self.metrics;
                    m.insert_seconds
                        .get_or_create(&labels)
                        .observe(started.elapsed().as_secs_f64());
                    m.batch_rows
                        .get_or_create(&labels)
                        .observe(rows.len() as f64);
                    m.rows_inserted
                        .get_or_create(&labels)
                        .inc_by(rows.len() as u64);
                    if attempt > 1 {
                        tracing::info!(
                            table,
                            attempt,
                            rows = rows.len(),
                            "ClickHouse insert succeeded after retries"
                        );
                    }
                    return Ok(());
                }
                Err(InsertError::BadData { code, message }) => {
                    return Err(Stop::BadData { code, message });
                }
                Err(InsertError::Retryable(message)) => {
                    self.metrics.insert_retries.get_or_create(&labels).inc();
                    // Full jitter over [backoff/2, backoff].
                    let sleep = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
                    tracing::warn!(table, attempt, rows = rows.len(), retry_in_ms = sleep.as_millis() as u64, error = %message, "ClickHouse insert failed; retrying");
                    let wake = Instant::now() + sleep;
                    if self.deadline().is_some_and(|deadline| wake >= deadline) {
                        return Err(Stop::ShuttingDown);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep_until(wake) => {}
                        _ = shutdown_changed(&mut self.shutdown) => {}
                    }
                    backoff = (backoff * 2).min(self.config.retry_max);
                }
            }
        }
    }
}

/// Resolves when the shutdown signal changes; never if its sender is gone.
async fn shutdown_changed(signal: &mut ShutdownSignal) {
    if signal.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The rejection row for an event ClickHouse refused.
fn refused_row(row: &EventRow, code: u32, message: &str) -> RejectedRow {
    RejectedRow {
        received_at: row.received_at,
        project_id: row.project_id.clone(),
        event_id: row.event_id.to_string(),
        reason: "clickhouse_rejected".into(),
        message: cap(format!("ClickHouse code {code}: {message}"), 4096),
        raw: cap(
            serde_json::to_string(row).unwrap_or_default(),
            MAX_REJECTED_RAW,
        ),
    }
}

/// A spooled record that cannot be decoded any more (e.g. limits lowered since): kept whole in
/// `events_rejected` rather than dropped.
fn unreplayable(received_at: i64, project: &str, why: &str, body: &[u8]) -> Ingested {
    let raw = cap(String::from_utf8_lossy(body).into_owned(), MAX_REJECTED_RAW);
    Ingested {
        rows: Vec::new(),
        approx_bytes: raw.len() + 128,
        rejected: vec![RejectedRow {
            received_at: datetime(received_at),
            project_id: project.to_owned(),
            event_id: String::new(),
            reason: "unreplayable".into(),
            message: why.to_owned(),
            raw,
        }],
    }
}
