//! The schema on a real ClickHouse engine: migrations apply once, every column is documented,
//! and `EventRow` round-trips through the `events` table as the DDL declares it.

use clickhouse::Client;
use spoor_schema::{EVENTS, EventRow, INGEST_MIGRATIONS, Layout, migrate, ttl_statement};
use time::macros::datetime;

async fn fresh_layout(name: &str) -> (Client, Layout) {
    let url = spoor_local_clickhouse::url_from_env();
    let client = Client::default().with_url(&url);
    client.query("SELECT 1").execute().await.unwrap_or_else(|e| {
        panic!("ClickHouse at {url} is not reachable ({e}): start it with `local-clickhouse/ctl start` or set SPOOR_CLICKHOUSE_URL")
    });
    let database = format!("schema_{name}_{}", std::process::id());
    client
        .query(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await
        .unwrap();
    (client, Layout::single(database))
}

#[tokio::test]
async fn migrations_apply_once_and_document_every_column() {
    let (client, layout) = fresh_layout("once").await;
    let first = migrate(&client, "collector", &layout, INGEST_MIGRATIONS)
        .await
        .unwrap();
    assert_eq!(first, vec![1]);
    let second = migrate(&client, "collector", &layout, INGEST_MIGRATIONS)
        .await
        .unwrap();
    assert!(second.is_empty(), "re-applied {second:?}");

    let undocumented: Vec<String> = client
        .query("SELECT table || '.' || name FROM system.columns WHERE database = ? AND comment = '' ORDER BY 1")
        .bind(&layout.database)
        .fetch_all()
        .await
        .unwrap();
    assert!(
        undocumented.is_empty(),
        "columns without a comment: {undocumented:?}"
    );
    let columns: u64 = client
        .query("SELECT count() FROM system.columns WHERE database = ? AND table = 'events'")
        .bind(&layout.database)
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(columns, EVENTS.columns.len() as u64);

    client
        .query(&ttl_statement(
            &EVENTS,
            &layout,
            Some("toDateTime(timestamp) + INTERVAL 400 DAY"),
        ))
        .execute()
        .await
        .unwrap();
    client
        .query(&ttl_statement(&EVENTS, &layout, None))
        .execute()
        .await
        .unwrap();
    client
        .query(&format!("DROP DATABASE {}", layout.database))
        .execute()
        .await
        .unwrap();
}

#[tokio::test]
async fn event_rows_round_trip_and_retries_collapse() {
    let (client, layout) = fresh_layout("rows").await;
    migrate(&client, "collector", &layout, INGEST_MIGRATIONS)
        .await
        .unwrap();
    let client = client.with_database(&layout.database);

    let at = datetime!(2026-11-21 23:59:59.250 UTC);
    let mut row = EventRow::empty("shop", uuid::Uuid::new_v4(), "search", at);
    row.anonymous_id = "anon-1".into();
    row.search_query = "rain jacket".into();
    row.search_results_count = Some(3);
    row.max_scroll_pct = 80;
    row.properties = r#"{"page":2}"#.into();
    // The same event twice, as a client retry would send it.
    for _ in 0..2 {
        let mut insert = client.insert::<EventRow>("events").await.unwrap();
        insert.write(&row).await.unwrap();
        insert.end().await.unwrap();
    }
    let stored: Vec<EventRow> = client
        .query("SELECT ?fields FROM events FINAL")
        .fetch_all()
        .await
        .unwrap();
    assert_eq!(stored, vec![row]);
    let page: u64 = client
        .query("SELECT JSONExtractUInt(properties, 'page') FROM events FINAL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(page, 2);
    client
        .query(&format!("DROP DATABASE {}", layout.database))
        .execute()
        .await
        .unwrap();
}
