//! Versioned, idempotent migrations, recorded in `spoor_migrations`.
//!
//! Each component (collector, segmenter) owns a list of migrations. `migrate` creates the
//! database, applies the versions not yet recorded for that component in order, and records
//! each one. Every statement is `IF NOT EXISTS`-style, so two processes starting at once, or a
//! crash between applying and recording, leave a correct schema.

use clickhouse::Client;

use crate::{Engine, Layout, Table, col};

/// One schema change. `statements` renders it for a layout.
#[derive(Clone, Copy)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub statements: fn(&Layout) -> Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    #[error("invalid schema layout: {0}")]
    Layout(String),
    #[error("migration {component} v{version} ({name}) failed: {source}")]
    Statement {
        component: String,
        version: u32,
        name: &'static str,
        #[source]
        source: clickhouse::error::Error,
    },
    #[error("could not read or write spoor_migrations: {0}")]
    Bookkeeping(#[from] clickhouse::error::Error),
}

const MIGRATIONS: Table = Table {
    name: "spoor_migrations",
    comment: "Spoor: schema migrations applied, per component",
    columns: &[
        col!(
            component,
            "LowCardinality(String)",
            "collector or segmenter"
        ),
        col!(version, "UInt32", "Migration version"),
        col!(name, "String", "What the migration does"),
        col!(applied_at, "DateTime64(3, 'UTC')", "When it was applied"),
    ],
    engine: Engine::ReplacingMergeTree { version: None },
    partition_by: None,
    order_by: "(component, version)",
    sharding_key: "rand()",
    settings: &[],
};

/// Applies the migrations of `component` that are not yet recorded. Returns the versions
/// applied by this call (empty when the schema was already current).
///
/// `client` may point at any database: every statement names `layout.database` explicitly.
pub async fn migrate(
    client: &Client,
    component: &str,
    layout: &Layout,
    migrations: &[Migration],
) -> Result<Vec<u32>, MigrateError> {
    layout.validate().map_err(MigrateError::Layout)?;
    let client = client.clone().with_database("default");
    let db = &layout.database;
    let on_cluster = layout.on_cluster();
    client
        .query(&format!("CREATE DATABASE IF NOT EXISTS {db}{on_cluster}"))
        .execute()
        .await?;
    for statement in MIGRATIONS.create_statements(layout, None) {
        client.query(&statement).execute().await?;
    }
    let applied: Vec<u32> = client
        .query(&format!(
            "SELECT DISTINCT version FROM {db}.spoor_migrations WHERE component = ?"
        ))
        .bind(component)
        .fetch_all()
        .await?;

    let mut done = Vec::new();
    for migration in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        tracing::info!(
            component,
            version = migration.version,
            name = migration.name,
            "Applying migration"
        );
        for statement in (migration.statements)(layout) {
            client
                .query(&statement)
                .execute()
                .await
                .map_err(|source| MigrateError::Statement {
                    component: component.to_owned(),
                    version: migration.version,
                    name: migration.name,
                    source,
                })?;
        }
        client
            .query(&format!(
                "INSERT INTO {db}.spoor_migrations (component, version, name, applied_at) VALUES (?, ?, ?, now64(3))"
            ))
            .bind(component)
            .bind(migration.version)
            .bind(migration.name)
            .execute()
            .await?;
        done.push(migration.version);
    }
    Ok(done)
}

/// `ALTER TABLE … MODIFY TTL` (or `REMOVE TTL` for `None`) on the table that stores the rows:
/// the local table in cluster mode.
pub fn ttl_statement(table: &Table, layout: &Layout, ttl: Option<&str>) -> String {
    let local = match layout.cluster {
        Some(_) => format!("{}_local", table.name),
        None => table.name.to_owned(),
    };
    let action = match ttl {
        Some(ttl) => format!("MODIFY TTL {ttl}"),
        None => "REMOVE TTL".to_owned(),
    };
    format!(
        "ALTER TABLE {}.{local}{} {action}",
        layout.database,
        layout.on_cluster()
    )
}
