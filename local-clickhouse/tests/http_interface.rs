//! Drives a ClickHouse HTTP endpoint (by default Spoor's local chDB server)
//! through the `clickhouse` crate exactly as Spoor's services do. The same
//! tests pass against a real ClickHouse server.

mod common;

use clickhouse::error::Error;
use clickhouse::{Compression, Row};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use common::{raw_post, test_db};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Event {
    id: u64,
    name: String,
    amount: i64,
}

fn event(id: u64) -> Event {
    Event {
        id,
        name: format!("event-{}", id % 1000),
        amount: i64::try_from(id).expect("small id") * 3 - 100_000,
    }
}

const CREATE_EVENTS: &str =
    "CREATE TABLE events (id UInt64, name String, amount Int64) ENGINE = MergeTree ORDER BY id";

async fn insert_events(client: &clickhouse::Client, ids: std::ops::Range<u64>) {
    let mut insert = client.insert::<Event>("events").await.expect("insert");
    for id in ids {
        insert.write(&event(id)).await.expect("write row");
    }
    insert.end().await.expect("end insert");
}

/// Reads all events back with the crate's schema validation and checks every row.
async fn check_events(client: &clickhouse::Client, count: u64) {
    let mut cursor = client
        .query("SELECT ?fields FROM events ORDER BY id")
        .fetch::<Event>()
        .expect("fetch");
    let (mut seen, mut id_sum, mut amount_sum) = (0_u64, 0_u64, 0_i64);
    while let Some(row) = cursor.next().await.expect("next row") {
        assert_eq!(row, event(seen), "row {seen} came back different");
        seen += 1;
        id_sum += row.id;
        amount_sum += row.amount;
    }
    let expected_id_sum = count * (count - 1) / 2;
    let expected_amount_sum = 3 * i64::try_from(expected_id_sum).expect("fits")
        - 100_000 * i64::try_from(count).expect("fits");
    assert_eq!(seen, count);
    assert_eq!(id_sum, expected_id_sum);
    assert_eq!(amount_sum, expected_amount_sum);

    let totals = client
        .query("SELECT count(), sum(id), sum(amount) FROM events")
        .fetch_one::<(u64, u64, i64)>()
        .await
        .expect("totals");
    assert_eq!(totals, (count, expected_id_sum, expected_amount_sum));
}

#[tokio::test]
async fn lz4_insert_of_200k_rows_reads_back_validated() {
    let db = test_db("lz4").await;
    let client = db.client.clone().with_compression(Compression::Lz4);
    client
        .query(CREATE_EVENTS)
        .execute()
        .await
        .expect("create table");

    insert_events(&client, 0..200_000).await;

    check_events(&client, 200_000).await;
}

#[tokio::test]
async fn zstd_insert_reads_back_validated() {
    let db = test_db("zstd").await;
    let client = db.client.clone().with_compression(Compression::zstd());
    client
        .query(CREATE_EVENTS)
        .execute()
        .await
        .expect("create table");

    insert_events(&client, 0..20_000).await;

    check_events(&client, 20_000).await;
}

#[tokio::test]
async fn server_side_params_bind_values() {
    let db = test_db("params").await;
    let client = &db.client;
    client
        .query(CREATE_EVENTS)
        .execute()
        .await
        .expect("create table");
    insert_events(client, 0..100).await;

    let tricky = "it's a \"test\"\twith\\escapes\nand 'quotes' {x:UInt8}";
    let (number, text) = client
        .query("SELECT {n:UInt32} + 1, {s:String}")
        .param("n", 41_u32)
        .param("s", tricky)
        .fetch_one::<(u64, String)>() // UInt32 + 1 is UInt64 in ClickHouse
        .await
        .expect("select params");
    assert_eq!((number, text.as_str()), (42, tricky));

    let names = client
        .query("SELECT name FROM events WHERE id >= {from:UInt64} AND name = {name:String} ORDER BY id")
        .param("from", 10_u64)
        .param("name", "event-42")
        .fetch_all::<String>()
        .await
        .expect("filter with params");
    assert_eq!(names, vec!["event-42".to_owned()]);
}

#[tokio::test]
async fn missing_table_is_a_bad_response_with_code_60() {
    let db = test_db("errors").await;

    let error = db
        .client
        .query("SELECT * FROM no_such_table")
        .fetch_all::<u8>()
        .await
        .expect_err("querying a missing table must fail");
    match error {
        Error::BadResponse(message) => {
            assert!(
                message.contains("Code: 60"),
                "unexpected message: {message}"
            );
            assert!(
                message.contains("UNKNOWN_TABLE"),
                "unexpected message: {message}"
            );
        }
        other => panic!("expected Error::BadResponse, got {other:?}"),
    }

    let error = db
        .client
        .clone()
        .with_database("spoor_no_such_database")
        .query("SELECT 1")
        .execute()
        .await
        .expect_err("an unknown database must fail");
    assert!(
        matches!(&error, Error::BadResponse(message) if message.contains("Code: 81")),
        "expected code 81, got {error:?}"
    );
}

#[tokio::test]
async fn insert_with_bad_checksum_is_refused() {
    let db = test_db("checksum").await;
    db.client
        .query("CREATE TABLE t (id UInt32, s String) ENGINE = MergeTree ORDER BY id")
        .execute()
        .await
        .expect("create table");

    let mut rows = Vec::new();
    for (id, text) in [(1_u32, "one"), (2, "two"), (3, "three")] {
        rows.extend_from_slice(&id.to_le_bytes());
        rows.push(u8::try_from(text.len()).expect("short"));
        rows.extend_from_slice(text.as_bytes());
    }
    // The crate's own encoder of ClickHouse's native LZ4 block (checksum + header + data).
    let block = clickhouse::_priv::lz4_compress(&rows)
        .expect("compress")
        .to_vec();
    let params = [
        ("database", db.name.as_str()),
        ("query", "INSERT INTO t FORMAT RowBinary"),
        ("decompress", "1"),
    ];

    let accepted = raw_post(&db.url, &params, &[], &block).expect("request");
    assert_eq!(
        accepted.status,
        200,
        "valid block refused: {}",
        accepted.text()
    );
    assert_eq!(db.count("t").await, 3);

    let mut corrupted = block.clone();
    let last = corrupted.len() - 1;
    corrupted[last] ^= 0x01;
    let refused = raw_post(&db.url, &params, &[], &corrupted).expect("request");
    assert_ne!(refused.status, 200, "corrupted block accepted");
    assert_eq!(refused.header("X-ClickHouse-Exception-Code"), Some("40"));
    assert!(
        refused.text().contains("CHECKSUM_DOESNT_MATCH"),
        "{}",
        refused.text()
    );
    assert_eq!(
        db.count("t").await,
        3,
        "nothing of the corrupted insert may be stored"
    );
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Tagged {
    task: u32,
    n: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_queries_and_inserts_from_many_tasks() {
    let db = test_db("concurrent").await;
    db.client
        .query("CREATE TABLE tagged (task UInt32, n UInt32) ENGINE = MergeTree ORDER BY (task, n)")
        .execute()
        .await
        .expect("create table");

    let tasks: Vec<_> = (0..8_u64)
        .map(|task| {
            let client = db.client.clone();
            tokio::spawn(async move {
                for round in 0..20_u64 {
                    let offset = task * 1000 + round;
                    let sum = client
                        .query("SELECT sum(number + {offset:UInt64}) FROM numbers(1000)")
                        .param("offset", offset)
                        .fetch_one::<u64>()
                        .await
                        .expect("sum");
                    assert_eq!(sum, 499_500 + 1000 * offset, "task {task} round {round}");
                }
                let mut insert = client.insert::<Tagged>("tagged").await.expect("insert");
                for n in 0..500 {
                    let row = Tagged {
                        task: u32::try_from(task).expect("small"),
                        n,
                    };
                    insert.write(&row).await.expect("write");
                }
                insert.end().await.expect("end insert");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task panicked");
    }

    let per_task = db
        .client
        .query("SELECT task, count() FROM tagged GROUP BY task ORDER BY task")
        .fetch_all::<(u32, u64)>()
        .await
        .expect("per task");
    let expected: Vec<(u32, u64)> = (0..8).map(|task| (task, 500)).collect();
    assert_eq!(per_task, expected);
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Typed {
    #[serde(with = "clickhouse::serde::uuid")]
    id: Uuid,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    at: OffsetDateTime,
    kind: String,
    note: Option<String>,
    score: Option<i32>,
    active: bool,
}

#[tokio::test]
async fn uuid_datetime64_lowcardinality_nullable_bool_roundtrip() {
    let db = test_db("types").await;
    db.client
        .query(
            "CREATE TABLE typed (id UUID, at DateTime64(3, 'UTC'), kind LowCardinality(String), \
             note Nullable(String), score Nullable(Int32), active Bool) ENGINE = MergeTree ORDER BY id",
        )
        .execute()
        .await
        .expect("create table");

    let mut rows = vec![
        Typed {
            id: Uuid::new_v4(),
            at: datetime!(2026-05-01 12:34:56.789 UTC),
            kind: "page_view".to_owned(),
            note: None,
            score: Some(-7),
            active: true,
        },
        Typed {
            id: Uuid::new_v4(),
            at: datetime!(1999-12-31 23:59:59.001 UTC),
            kind: "click".to_owned(),
            note: Some("naïve ✓".to_owned()),
            score: None,
            active: false,
        },
        Typed {
            id: Uuid::new_v4(),
            at: datetime!(2026-01-01 00:00:00 UTC),
            kind: "page_view".to_owned(),
            note: Some(String::new()),
            score: Some(i32::MAX),
            active: true,
        },
    ];
    let mut insert = db.client.insert::<Typed>("typed").await.expect("insert");
    for row in &rows {
        insert.write(row).await.expect("write");
    }
    insert.end().await.expect("end insert");

    let mut back = db
        .client
        .query("SELECT ?fields FROM typed")
        .fetch_all::<Typed>()
        .await
        .expect("fetch");
    rows.sort_by_key(|row| row.id);
    back.sort_by_key(|row| row.id);
    assert_eq!(back, rows);

    // The server stored real typed values, not just bytes that happen to roundtrip.
    let (at, kinds, nulls, active) = db
        .client
        .query(
            "SELECT toString(anyIf(at, id = {id:UUID})), uniqExact(kind), countIf(note IS NULL), \
             countIf(active) FROM typed",
        )
        .param(
            "id",
            rows.iter()
                .find(|row| row.kind == "click")
                .expect("click")
                .id
                .to_string(),
        )
        .fetch_one::<(String, u64, u64, u64)>()
        .await
        .expect("typed aggregates");
    assert_eq!(
        (at.as_str(), kinds, nulls, active),
        ("1999-12-31 23:59:59.001", 2, 1, 2)
    );
}

#[tokio::test]
async fn insert_deduplication_token_stores_a_block_once() {
    let db = test_db("dedup").await;
    db.client
        .query(
            "CREATE TABLE events (id UInt64, name String, amount Int64) ENGINE = MergeTree ORDER BY id \
             SETTINGS non_replicated_deduplication_window = 100",
        )
        .execute()
        .await
        .expect("create table");

    async fn insert_with_token(
        client: &clickhouse::Client,
        ids: std::ops::Range<u64>,
        token: &str,
    ) {
        let mut insert = client
            .insert::<Event>("events")
            .await
            .expect("insert")
            .with_setting("async_insert", "0")
            .with_setting("insert_deduplication_token", token);
        for id in ids {
            insert.write(&event(id)).await.expect("write");
        }
        insert.end().await.expect("end insert");
    }

    insert_with_token(&db.client, 0..1000, "batch-1").await;
    assert_eq!(db.count("events").await, 1000);

    // A retry of the same batch with the same token is stored once.
    insert_with_token(&db.client, 0..1000, "batch-1").await;
    assert_eq!(db.count("events").await, 1000);

    // The token decides, not the data: other rows under a used token are dropped ...
    insert_with_token(&db.client, 5000..5010, "batch-1").await;
    assert_eq!(db.count("events").await, 1000);

    // ... and the same rows under a new token are stored again.
    insert_with_token(&db.client, 0..1000, "batch-2").await;
    assert_eq!(db.count("events").await, 2000);
}

#[tokio::test]
async fn settings_apply_to_their_own_request_only() {
    let db = test_db("settings").await;
    let read_setting = || {
        db.client
            .query("SELECT toUInt64(getSetting('max_result_rows'))")
            .fetch_one::<u64>()
    };

    let set_here = db
        .client
        .query("SELECT toUInt64(getSetting('max_result_rows'))")
        .with_setting("max_result_rows", "7")
        .fetch_one::<u64>()
        .await
        .expect("with setting");
    assert_eq!(set_here, 7);
    assert_eq!(read_setting().await.expect("without setting"), 0);

    let error = db
        .client
        .query("SELECT 1")
        .with_setting("spoor_no_such_setting", "1")
        .execute()
        .await
        .expect_err("an unknown setting must fail");
    assert!(
        matches!(&error, Error::BadResponse(message) if message.contains("Code: 115")),
        "expected code 115, got {error:?}"
    );
}

#[tokio::test]
async fn responses_are_compressed_as_asked_and_errors_carry_the_code() {
    let db = test_db("raw").await;
    let params = [("query", "SELECT number FROM system.numbers LIMIT 3")];
    for encoding in ["lz4", "zstd", "gzip"] {
        let response =
            raw_post(&db.url, &params, &[("Accept-Encoding", encoding)], &[]).expect("request");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("Content-Encoding"), Some(encoding));
        assert_ne!(
            response.body, b"0\n1\n2\n",
            "{encoding} body was not compressed"
        );
    }
    let plain = raw_post(&db.url, &params, &[], &[]).expect("request");
    assert_eq!(plain.body, b"0\n1\n2\n");
    assert_eq!(plain.header("X-ClickHouse-Format"), Some("TabSeparated"));

    let failed = raw_post(
        &db.url,
        &[("query", "SELECT * FROM no_such_table")],
        &[],
        &[],
    )
    .expect("request");
    assert_ne!(failed.status, 200);
    assert_eq!(failed.header("X-ClickHouse-Exception-Code"), Some("60"));
    assert!(
        failed.text().starts_with("Code: 60. DB::Exception:"),
        "{}",
        failed.text()
    );
}
