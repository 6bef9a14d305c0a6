//! Spoor's ClickHouse schema, in one place for every component.
//!
//! * [`ddl`]: tables as data, rendered for a single server or a cluster (`ON CLUSTER`,
//!   `Replicated*MergeTree` + `Distributed`) from the same definition.
//! * [`events`]: the ingestion tables and their row types.
//! * [`migrate`]: the versioned, idempotent migration runner.
//! * [`segmenter`]: the segmenter's derived tables and views, and [`SEGMENTER_MIGRATIONS`].
//!
//! Architecture invariant: table names and column lists are written here only; identifiers
//! spliced into SQL come from these definitions or pass [`is_identifier`].

pub mod ddl;
pub mod events;
pub mod migrate;
pub mod segmenter;

pub use ddl::{Column, Engine, Layout, Table, is_identifier};
pub use events::{EVENTS, EVENTS_REJECTED, EventRow, RejectedRow};
pub use migrate::{MigrateError, Migration, migrate, ttl_statement};
pub use segmenter::SEGMENTER_MIGRATIONS;

/// The collector's migrations: the ingestion tables.
pub const INGEST_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "create events and events_rejected",
    statements: |layout| {
        let mut all = EVENTS.create_statements(layout, None);
        all.extend(EVENTS_REJECTED.create_statements(layout, None));
        all
    },
}];
