//! The collector's schema: cluster DDL rendered from the same source (pure — it cannot run
//! here), and migrations + TTL against a real ClickHouse.

mod common;

use common::*;
use spoor_schema::{EVENTS, INGEST_MIGRATIONS, Layout, ttl_statement};

#[test]
fn cluster_mode_renders_replicated_local_and_distributed_tables() {
    let layout = Layout {
        database: "spoor".into(),
        cluster: Some("prod".into()),
    };
    let statements: Vec<String> = INGEST_MIGRATIONS
        .iter()
        .flat_map(|m| (m.statements)(&layout))
        .collect();
    assert_eq!(statements.len(), 4, "{statements:#?}");
    for (i, table) in ["events", "events_rejected"].iter().enumerate() {
        let local = &statements[2 * i];
        let distributed = &statements[2 * i + 1];
        assert!(
            local.starts_with(&format!(
                "CREATE TABLE IF NOT EXISTS spoor.{table}_local ON CLUSTER prod\n"
            )),
            "{local}"
        );
        assert!(
            local.contains(&format!(
                "('/clickhouse/tables/{{shard}}/spoor/{table}_local', '{{replica}}'"
            )),
            "{local}"
        );
        assert!(local.contains("ENGINE = Replicated"), "{local}");
        if *table == "events" {
            // Copies of an event collapse to the one received last, on every replica.
            assert!(
                local.contains("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/spoor/events_local', '{replica}', received_at)"),
                "{local}"
            );
        }
        assert!(local.contains("COMMENT '"), "{local}");
        assert!(
            distributed.starts_with(&format!(
                "CREATE TABLE IF NOT EXISTS spoor.{table} ON CLUSTER prod AS spoor.{table}_local\nENGINE = Distributed(prod, spoor, {table}_local, "
            )),
            "{distributed}"
        );
    }
    // Every column of events is documented.
    let columns = statements[0]
        .lines()
        .filter(|l| l.starts_with("    `"))
        .count();
    assert_eq!(columns, EVENTS.columns.len());
    assert_eq!(
        statements[0]
            .lines()
            .filter(|l| l.starts_with("    `") && l.contains(" COMMENT '"))
            .count(),
        columns
    );
    assert_eq!(
        ttl_statement(
            &EVENTS,
            &layout,
            Some("toDateTime(timestamp) + INTERVAL 30 DAY")
        ),
        "ALTER TABLE spoor.events_local ON CLUSTER prod MODIFY TTL toDateTime(timestamp) + INTERVAL 30 DAY"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_ttl_is_optional() {
    let mut options = Options::new("schema");
    options
        .toml
        .push_str("[clickhouse]\nevents_ttl_days = 30\n");
    let c = TestCollector::start(&options).await;
    let ch = c.ch.clone();
    c.stop().await;
    let ddl: String = ch.query("SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'events'")
        .fetch_one()
        .await
        .unwrap();
    assert!(
        ddl.contains("TTL toDateTime(timestamp) + toIntervalDay(30)"),
        "{ddl}"
    );
    assert!(ddl.contains("ReplacingMergeTree"), "{ddl}");
    // A second start applies nothing new and keeps the data; 0 removes the TTL.
    options.toml = options
        .toml
        .replace("events_ttl_days = 30", "events_ttl_days = 0");
    let c = TestCollector::start(&options).await;
    c.stop().await;
    let ddl: String = ch.query("SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = 'events'")
        .fetch_one()
        .await
        .unwrap();
    assert!(!ddl.contains("TTL"), "{ddl}");
    assert_eq!(
        count(
            &ch,
            "SELECT count() FROM spoor_migrations FINAL WHERE component = 'collector'"
        )
        .await,
        INGEST_MIGRATIONS.len() as u64
    );
}
