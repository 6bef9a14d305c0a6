//! Spoor's local ClickHouse: a ClickHouse-HTTP-compatible server over chDB
//! (`spoor_clickhouse.py`, started with `ctl`), for tests and single-machine use.
//! Production points the same client code at a real ClickHouse server.
//!
//! This crate holds the integration tests that drive the server through the
//! `clickhouse` crate, plus the one helper they and other test suites share.

/// The environment variable that names the ClickHouse HTTP endpoint for tests.
pub const URL_ENV: &str = "SPOOR_CLICKHOUSE_URL";

/// The endpoint used when [`URL_ENV`] is not set: the local server's default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8123";

/// The ClickHouse HTTP endpoint to test against: `SPOOR_CLICKHOUSE_URL`, or
/// `http://127.0.0.1:8123` when it is unset or empty. A trailing `/` is removed.
pub fn url_from_env() -> String {
    url_from(std::env::var(URL_ENV).ok())
}

fn url_from(value: Option<String>) -> String {
    match value {
        Some(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
        _ => DEFAULT_URL.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_defaults_to_the_local_server() {
        assert_eq!(url_from(None), "http://127.0.0.1:8123");
        assert_eq!(url_from(Some("  ".to_owned())), "http://127.0.0.1:8123");
    }

    #[test]
    fn url_from_env_value_loses_trailing_slash() {
        assert_eq!(
            url_from(Some("http://127.0.0.1:18123/".to_owned())),
            "http://127.0.0.1:18123"
        );
    }
}
