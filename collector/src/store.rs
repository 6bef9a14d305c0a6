//! Where an accepted request goes before the client hears "stored": the seam between the HTTP
//! handlers and durability. The real implementation is the spool ([`crate::spool`]); tests
//! use [`FailingStore`] to inject faults the real disk cannot be made to produce on demand.

use std::future::Future;
use std::pin::Pin;

use crate::ingest::{IngestRecord, Ingested};

pub type StoreFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The spool is above its high-water mark: ClickHouse is not keeping up or is down.
    #[error("the collector's spool is full (ClickHouse is behind or unreachable)")]
    Full,
    /// Writing or syncing the spool failed.
    #[error("the collector could not store the batch durably: {0}")]
    Io(String),
    /// The collector is shutting down.
    #[error("the collector is shutting down")]
    ShuttingDown,
}

/// Durable storage of accepted requests.
pub trait Store: Send + Sync + 'static {
    /// Resolves once `record` is durable (fsynced or committed). `rows` is what the record
    /// decodes to, handed on so the happy path does not decode twice.
    fn store(&self, record: IngestRecord, rows: Ingested) -> StoreFuture<'_>;
    /// True when new requests should be turned away (503).
    fn is_full(&self) -> bool;
    /// Bytes and requests accepted but not yet confirmed by ClickHouse.
    fn pending(&self) -> (u64, u64) {
        (0, 0)
    }
}

/// A store that always fails with the given error.
#[derive(Debug)]
pub struct FailingStore(pub StoreError);

impl Store for FailingStore {
    fn store(&self, _record: IngestRecord, _rows: Ingested) -> StoreFuture<'_> {
        let error = self.0.clone();
        Box::pin(async move { Err(error) })
    }

    fn is_full(&self) -> bool {
        self.0 == StoreError::Full
    }
}

/// The real store: append to the spool and wait for the sync.
pub struct SpoolStore {
    pub spool: crate::spool::Spool<Ingested>,
}

impl Store for SpoolStore {
    fn store(&self, record: IngestRecord, rows: Ingested) -> StoreFuture<'_> {
        Box::pin(async move {
            let shared = &self.spool.shared;
            if shared.broken.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(StoreError::Io(
                    "the spool is broken after a failed write; restart the collector".into(),
                ));
            }
            if shared.is_full() {
                return Err(StoreError::Full);
            }
            self.spool.append(record.encode(), rows).await.map(|_| ())
        })
    }

    fn is_full(&self) -> bool {
        self.spool.shared.is_full()
    }

    fn pending(&self) -> (u64, u64) {
        let shared = &self.spool.shared;
        (
            shared
                .pending_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            shared
                .pending_records
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }
}
