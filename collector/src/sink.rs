//! The only code that writes to ClickHouse: one `INSERT` of a batch of rows, with the settings
//! that make retries safe, and the classification of its errors.
//!
//! Architecture invariant: only this module (driven by `writer`) talks to ClickHouse on the
//! write path.

use clickhouse::{Client, RowOwned, RowWrite};

/// ClickHouse error codes that mean "this data can never be inserted": retrying is useless,
/// the rows go to `events_rejected` instead.
pub const BAD_DATA_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    469, // VIOLATED_CONSTRAINT
];

/// What went wrong with an insert, as far as retrying is concerned.
#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    /// The rows themselves are refused; retrying cannot help.
    #[error("ClickHouse refused the data (code {code}): {message}")]
    BadData { code: u32, message: String },
    /// Anything else: network, server down, overload, schema being migrated…
    #[error("ClickHouse insert failed: {0}")]
    Retryable(String),
}

/// `Code: 117. DB::Exception: …` → 117.
pub fn exception_code(message: &str) -> Option<u32> {
    let at = message.find("Code: ")? + "Code: ".len();
    let digits: String = message[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

pub fn classify(error: clickhouse::error::Error) -> InsertError {
    let message = error.to_string();
    match exception_code(&message) {
        Some(code) if BAD_DATA_CODES.contains(&code) => InsertError::BadData { code, message },
        _ => InsertError::Retryable(message),
    }
}

/// Inserts `rows` into `table` as one `INSERT`. `token` is the batch's stable
/// `insert_deduplication_token`: a retry of the same rows with the same token is stored once.
pub async fn insert<T: RowOwned + RowWrite>(
    client: &Client,
    table: &str,
    rows: &[T],
    token: &str,
) -> Result<(), InsertError> {
    if rows.is_empty() {
        return Ok(());
    }
    let run = async {
        let mut insert = client
            .insert::<T>(table)
            .await?
            // Synchronous insert: the reply means the rows are in a part on disk. (ClickHouse
            // turns async_insert on by default since 26.3; its ack would come before that.)
            .with_setting("async_insert", "0")
            .with_setting("insert_deduplicate", "1")
            // Duplicates within one block are collapsed by ReplacingMergeTree at merge time and
            // by FINAL at read time; collapsing them at insert too doubles the insert's cost.
            .with_setting("optimize_on_insert", "0")
            .with_setting("insert_deduplication_token", token);
        for (i, row) in rows.iter().enumerate() {
            insert.write(row).await?;
            // Serialising thousands of rows never waits on I/O; let request handlers run.
            if i % 512 == 511 {
                tokio::task::yield_now().await;
            }
        }
        insert.end().await
    };
    run.await.map_err(classify)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_codes() {
        let cases: &[(&str, Option<u32>)] = &[
            (
                "bad response: Code: 117. DB::Exception: Cannot parse input. (INCORRECT_DATA)",
                Some(117),
            ),
            (
                "Code: 469. DB::Exception: Constraint `c` violated",
                Some(469),
            ),
            ("network error: connection refused", None),
            ("Code: x", None),
        ];
        for &(message, expected) in cases {
            assert_eq!(exception_code(message), expected, "{message}");
        }
    }
}
