//! Test harness: a fresh database per test on the server named by
//! `SPOOR_CLICKHOUSE_URL`, dropped when the test ends (also when it panics),
//! and a tiny blocking HTTP client for requests the `clickhouse` crate would
//! never send (corrupted blocks, raw headers).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use clickhouse::Client;
use clickhouse::sql::Identifier;

/// A database that exists for one test.
pub(crate) struct TestDb {
    /// A client whose default database is [`TestDb::name`].
    pub(crate) client: Client,
    /// The database name, unique per test run.
    pub(crate) name: String,
    /// The server's URL.
    pub(crate) url: String,
}

/// Creates a fresh database named after `label`; panics with instructions when
/// the server is not reachable, so the tests fail rather than skip.
pub(crate) async fn test_db(label: &str) -> TestDb {
    let url = spoor_local_clickhouse::url_from_env();
    ensure_reachable(&url);
    let name = format!("spoor_test_{label}_{}", uuid::Uuid::new_v4().simple());
    let client = Client::default().with_url(&url);
    client
        .query("CREATE DATABASE ?")
        .bind(Identifier(&name))
        .execute()
        .await
        .unwrap_or_else(|error| panic!("creating database {name} failed: {error}"));
    TestDb {
        client: client.with_database(&name),
        name,
        url,
    }
}

impl TestDb {
    /// `SELECT count() FROM <table>` in this database.
    pub(crate) async fn count(&self, table: &str) -> u64 {
        self.client
            .query("SELECT count() FROM ?")
            .bind(Identifier(table))
            .fetch_one::<u64>()
            .await
            .unwrap_or_else(|error| panic!("counting rows of {table} failed: {error}"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let drop_database = format!("DROP DATABASE IF EXISTS `{}`", self.name);
        if let Err(error) = raw_post(&self.url, &[("query", &drop_database)], &[], &[]) {
            eprintln!(
                "warning: could not drop test database {}: {error}",
                self.name
            );
        }
    }
}

fn ensure_reachable(url: &str) {
    let answer = raw_request(url, "GET", "/ping", &[], &[]);
    match answer {
        Ok(response) if response.status == 200 && response.body == b"Ok.\n" => {}
        Ok(response) => panic!(
            "{url}/ping answered {} {:?}: this is not a ClickHouse HTTP endpoint.\n{HOW_TO_START}",
            response.status,
            response.text()
        ),
        Err(error) => panic!("ClickHouse is not reachable at {url}: {error}.\n{HOW_TO_START}"),
    }
}

const HOW_TO_START: &str = "These tests need a running ClickHouse HTTP server. Start the local one with\n    \
     local-clickhouse/ctl start --port 18123 --data-dir /tmp/lch-test\n\
     and run the tests with\n    \
     SPOOR_CLICKHOUSE_URL=http://127.0.0.1:18123 cargo test -p spoor-local-clickhouse\n\
     (or point SPOOR_CLICKHOUSE_URL at any ClickHouse server; the default is http://127.0.0.1:8123).";

/// A response read by [`raw_post`].
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// POSTs `body` to `url` with `params` in the query string and extra `headers`.
pub(crate) fn raw_post(
    url: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<RawResponse> {
    let query: Vec<String> = params
        .iter()
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect();
    raw_request(
        url,
        "POST",
        &format!("/?{}", query.join("&")),
        headers,
        body,
    )
}

fn raw_request(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<RawResponse> {
    let invalid = |message: String| std::io::Error::new(std::io::ErrorKind::InvalidData, message);
    let authority = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| invalid(format!("only http:// URLs are supported, got {url:?}")))?;

    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| invalid("response without a header end".to_owned()))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line in {head:?}")))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    Ok(RawResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}
