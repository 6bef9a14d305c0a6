//! An INSERT whose data travels in the request body (how the `clickhouse`
//! crate inserts) must fail as ClickHouse fails it: a non-200 status, the
//! `X-ClickHouse-Exception-Code` header and a `Code: N. DB::Exception` body,
//! with nothing of the failed insert stored. Callers route rejected rows by
//! that code and must never believe a failed insert was committed.

mod common;

use clickhouse::error::Error;
use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use common::{RawResponse, TestDb, raw_post, test_db};

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Named {
    name: String,
}

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Reading {
    id: u32,
    value: i32,
}

/// A table whose MATERIALIZED column throws (code 395) for the name `poison`.
async fn create_guarded(db: &TestDb) {
    db.client
        .query("CREATE TABLE guarded (name String) ENGINE = MergeTree ORDER BY name")
        .execute()
        .await
        .expect("create table");
    db.client
        .query(
            "ALTER TABLE guarded ADD COLUMN checked UInt8 \
             MATERIALIZED throwIf(name = 'poison', 'poisoned row')",
        )
        .execute()
        .await
        .expect("add materialized column");
}

async fn insert_names(client: &Client, names: &[&str]) -> Result<(), Error> {
    let mut insert = client.insert::<Named>("guarded").await?;
    for name in names {
        insert
            .write(&Named {
                name: (*name).to_owned(),
            })
            .await?;
    }
    insert.end().await
}

async fn insert_readings(client: &Client, rows: &[(u32, i32)]) -> Result<(), Error> {
    let mut insert = client.insert::<Reading>("readings").await?;
    for &(id, value) in rows {
        insert.write(&Reading { id, value }).await?;
    }
    insert.end().await
}

/// Asserts the crate reported the server error `code` (ClickHouse's text).
fn assert_server_error(result: Result<(), Error>, code: u32, name: &str) {
    match result {
        Err(Error::BadResponse(message)) => {
            assert!(
                message.starts_with(&format!("Code: {code}. DB::Exception:")),
                "expected code {code}, got: {message}"
            );
            assert!(message.contains(name), "expected {name} in: {message}");
        }
        Err(other) => panic!("expected Error::BadResponse with code {code}, got {other:?}"),
        Ok(()) => panic!("the insert succeeded, but the server must refuse it with code {code}"),
    }
}

/// Asserts a raw response is ClickHouse's error `code` with a non-200 status.
fn assert_raw_error(response: &RawResponse, code: u16, status: u16) {
    assert_ne!(
        response.status,
        200,
        "the insert was answered 200: {}",
        response.text()
    );
    assert_eq!(
        response.header("X-ClickHouse-Exception-Code"),
        Some(code.to_string().as_str()),
        "{}",
        response.text()
    );
    assert!(
        response
            .text()
            .starts_with(&format!("Code: {code}. DB::Exception:")),
        "{}",
        response.text()
    );
    assert_eq!(response.status, status, "{}", response.text());
}

async fn names(db: &TestDb) -> Vec<String> {
    db.client
        .query("SELECT name FROM guarded ORDER BY name")
        .fetch_all::<String>()
        .await
        .expect("read names")
}

#[tokio::test]
async fn throw_if_in_a_materialized_column_fails_the_crate_insert_with_code_395() {
    let db = test_db("throwif").await;
    create_guarded(&db).await;

    let failed = insert_names(&db.client, &["alpha", "poison", "omega"]).await;
    assert_server_error(failed, 395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO");
    assert_eq!(db.count("guarded").await, 0, "no row of the failed insert");

    // Also across many chunks of the body: nothing may be half-stored.
    let mut many: Vec<String> = (0..150_000).map(|n| format!("row-{n:06}")).collect();
    many.push("poison".to_owned());
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let failed = insert_names(&db.client, &many).await;
    assert_server_error(failed, 395, "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO");
    assert_eq!(db.count("guarded").await, 0, "no row of the failed insert");

    insert_names(&db.client, &["alpha", "omega"])
        .await
        .expect("a good insert after a failed one");
    assert_eq!(names(&db).await, ["alpha", "omega"]);
}

#[tokio::test]
async fn check_constraint_violation_fails_the_crate_insert_with_code_469() {
    let db = test_db("check").await;
    db.client
        .query(
            "CREATE TABLE readings (id UInt32, value Int32, \
             CONSTRAINT non_negative CHECK value >= 0) ENGINE = MergeTree ORDER BY id",
        )
        .execute()
        .await
        .expect("create table");

    let failed = insert_readings(&db.client, &[(1, 10), (2, -5), (3, 30)]).await;
    assert_server_error(failed, 469, "VIOLATED_CONSTRAINT");
    assert_eq!(db.count("readings").await, 0, "no row of the failed insert");

    insert_readings(&db.client, &[(1, 10), (3, 30)])
        .await
        .expect("a good insert after a failed one");
    let stored = db
        .client
        .query("SELECT id, value FROM readings ORDER BY id")
        .fetch_all::<(u32, i32)>()
        .await
        .expect("read back");
    assert_eq!(stored, [(1, 10), (3, 30)]);
}

#[tokio::test]
async fn server_side_insert_errors_over_raw_http_carry_the_code() {
    let db = test_db("rawinsert").await;
    create_guarded(&db).await;
    let insert_tsv = [
        ("database", db.name.as_str()),
        ("query", "INSERT INTO guarded FORMAT TSV"),
    ];

    // The data in the body, as curl sends it.
    let refused = raw_post(&db.url, &insert_tsv, &[], b"ok\npoison\n").expect("request");
    assert_raw_error(&refused, 395, 500);
    let insert_values = [
        ("database", db.name.as_str()),
        ("query", "INSERT INTO guarded VALUES"),
    ];
    let refused = raw_post(&db.url, &insert_values, &[], b"('ok'), ('poison')").expect("request");
    assert_raw_error(&refused, 395, 500);
    // The query and its data both in the body.
    let refused = raw_post(
        &db.url,
        &[("database", db.name.as_str())],
        &[],
        b"INSERT INTO guarded FORMAT TSV\nok\npoison\n",
    )
    .expect("request");
    assert_raw_error(&refused, 395, 500);
    assert_eq!(db.count("guarded").await, 0, "no row of the failed inserts");

    let accepted = raw_post(&db.url, &insert_tsv, &[], b"ok\nfine\n").expect("request");
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    assert_eq!(names(&db).await, ["fine", "ok"]);
}

#[tokio::test]
async fn malformed_insert_bodies_fail_with_the_parse_error_code() {
    let db = test_db("malformed").await;
    db.client
        .query("CREATE TABLE small (id UInt32, n UInt8) ENGINE = MergeTree ORDER BY id")
        .execute()
        .await
        .expect("create table");
    let insert_tsv = [
        ("database", db.name.as_str()),
        ("query", "INSERT INTO small FORMAT TSV"),
    ];

    // A word where a UInt8 belongs: CANNOT_PARSE_INPUT_ASSERTION_FAILED, 400.
    let refused = raw_post(&db.url, &insert_tsv, &[], b"1\t7\n2\tseven\n").expect("request");
    assert_raw_error(&refused, 27, 400);
    assert!(
        refused
            .text()
            .contains("CANNOT_PARSE_INPUT_ASSERTION_FAILED")
    );
    assert_eq!(db.count("small").await, 0, "no row of the failed insert");

    // RowBinary that ends inside a row, in a native LZ4 block as the crate sends
    // it: CANNOT_READ_ALL_DATA.
    let mut rows = Vec::new();
    for id in 1_u32..=3 {
        rows.extend_from_slice(&id.to_le_bytes());
        rows.push(u8::try_from(id).expect("small"));
    }
    rows.truncate(rows.len() - 2);
    let block = clickhouse::_priv::lz4_compress(&rows)
        .expect("compress")
        .to_vec();
    let insert_binary = [
        ("database", db.name.as_str()),
        ("query", "INSERT INTO small FORMAT RowBinary"),
        ("decompress", "1"),
    ];
    let refused = raw_post(&db.url, &insert_binary, &[], &block).expect("request");
    assert_raw_error(&refused, 33, 500);
    assert!(refused.text().contains("CANNOT_READ_ALL_DATA"));
    assert_eq!(db.count("small").await, 0, "no row of the failed insert");

    let accepted = raw_post(&db.url, &insert_tsv, &[], b"1\t7\n2\t8\n").expect("request");
    assert_eq!(accepted.status, 200, "{}", accepted.text());
    let stored = db
        .client
        .query("SELECT id, n FROM small ORDER BY id")
        .fetch_all::<(u32, u8)>()
        .await
        .expect("read back");
    assert_eq!(stored, [(1, 7), (2, 8)]);
}
