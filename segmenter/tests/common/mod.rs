//! Shared test harness: a fresh database per test on the real ClickHouse named by
//! `SPOOR_CLICKHOUSE_URL` (default http://127.0.0.1:8123), and an event builder.
//!
//! Tests fail, with a message saying how to start one, when ClickHouse is unreachable.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};

use spoor_schema::{EventRow, Layout};
use spoor_segmenter::{Db, RunOptions, RunReport};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

pub fn clickhouse_url() -> String {
    std::env::var("SPOOR_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".to_owned())
}

/// `spoor-segmenter ARGS` against `db`, without the environment's cluster and lease settings.
pub fn segmenter_command(db: &Db, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_spoor-segmenter"));
    command
        .args(args)
        .args([
            "--clickhouse-url",
            &clickhouse_url(),
            "--database",
            db.database(),
        ])
        .env_remove("SPOOR_CLICKHOUSE_CLUSTER")
        .env_remove("SPOOR_LEASE_WAIT");
    command
}

/// A migrated, empty database whose name is unique to this test and process.
pub async fn fresh_db(test: &str) -> Db {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "seg_{}_{}_{}",
        test,
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let url = clickhouse_url();
    let db = Db::new(&url, Layout::single(&name)).expect("valid database name");
    if let Err(error) = db.ping().await {
        panic!(
            "ClickHouse is not reachable at {url} ({error}).\n\
             These tests need a real ClickHouse: start one with\n  \
             local-clickhouse/ctl start --port 18300 --data-dir /tmp/spoor-ch\n\
             and run them with SPOOR_CLICKHOUSE_URL=http://127.0.0.1:18300"
        );
    }
    db.client()
        .query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute()
        .await
        .expect("drop old test database");
    spoor_segmenter::migrate(&db)
        .await
        .expect("migrations apply");
    db
}

pub fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("bad time {text}: {e}"))
}

/// Builds an [`EventRow`] for project `p1`. Received one second after it happened unless
/// [`Ev::received`] says otherwise.
#[derive(Clone)]
pub struct Ev(pub EventRow);

pub fn ev(kind: &str, when: &str, anonymous_id: &str) -> Ev {
    let t = at(when);
    let mut row = EventRow::empty("p1", Uuid::new_v4(), kind, t);
    row.received_at = t + time::Duration::seconds(1);
    row.anonymous_id = anonymous_id.to_owned();
    row.source = "browser".to_owned();
    Ev(row)
}

pub fn page(when: &str, anonymous_id: &str, session: &str, path: &str) -> Ev {
    ev("page_view", when, anonymous_id)
        .session(session)
        .path(path)
}

pub fn track(when: &str, user: &str, name: &str, properties: &str) -> Ev {
    let mut e = ev("track", when, &format!("srv-{user}")).user(user);
    e.0.name = name.to_owned();
    e.0.properties = properties.to_owned();
    e.0.source = "server".to_owned();
    e
}

impl Ev {
    pub fn user(mut self, user: &str) -> Ev {
        self.0.user_id = user.to_owned();
        self
    }
    pub fn session(mut self, id: &str) -> Ev {
        self.0.session_id = id.to_owned();
        self
    }
    pub fn path(mut self, path: &str) -> Ev {
        self.0.path = path.to_owned();
        self.0.url = format!("https://shop.example{path}");
        self
    }
    pub fn id(mut self, id: Uuid) -> Ev {
        self.0.event_id = id;
        self
    }
    pub fn received(mut self, when: &str) -> Ev {
        self.0.received_at = at(when);
        self
    }
    pub fn traits(mut self, traits: &str) -> Ev {
        self.0.traits = traits.to_owned();
        self
    }
    pub fn search(mut self, query: &str, results: Option<u32>) -> Ev {
        self.0.search_query = query.to_owned();
        self.0.search_results_count = results;
        self
    }
    pub fn engaged(mut self, ms: u64) -> Ev {
        self.0.engaged_ms = ms;
        self
    }
    pub fn referrer(mut self, domain: &str, class: &str) -> Ev {
        self.0.referrer = format!("https://{domain}/");
        self.0.referrer_domain = domain.to_owned();
        self.0.referrer_class = class.to_owned();
        self
    }
    pub fn utm(mut self, source: &str, medium: &str, campaign: &str) -> Ev {
        self.0.utm_source = source.to_owned();
        self.0.utm_medium = medium.to_owned();
        self.0.utm_campaign = campaign.to_owned();
        self
    }
    pub fn bot(mut self) -> Ev {
        self.0.is_bot = true;
        self
    }
}

pub async fn insert(db: &Db, events: &[Ev]) {
    let client = db.client().clone().with_database(db.database());
    let mut insert = client
        .insert::<EventRow>("events")
        .await
        .expect("start insert");
    for e in events {
        insert.write(&e.0).await.expect("write row");
    }
    insert.end().await.expect("insert events");
}

pub async fn run(db: &Db, as_of: &str) -> RunReport {
    run_with(db, as_of, false).await
}

/// A full rebuild as of `as_of`.
pub async fn run_full(db: &Db, as_of: &str) -> RunReport {
    run_with(db, as_of, true).await
}

async fn run_with(db: &Db, as_of: &str, full: bool) -> RunReport {
    let options = RunOptions {
        full,
        as_of: Some(at(as_of)),
        // Fixtures set received_at freely; no overlap keeps "new" exact.
        overlap: std::time::Duration::ZERO,
        ..RunOptions::default()
    };
    spoor_segmenter::run_once(db, &options)
        .await
        .unwrap_or_else(|e| panic!("run failed: {e}"))
}

/// Rows of `sql` (with `{db}`) as tab-separated text, one string per row.
pub async fn rows(db: &Db, sql: &str) -> Vec<String> {
    let sql = sql.replace("{db}", db.database());
    let mut cursor = db
        .client()
        .query(&sql)
        .fetch_bytes("TSV")
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let bytes = cursor
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `GET uri` from the dashboard's router (no socket): the status and the body.
pub async fn get(db: &Db, uri: &str) -> (axum::http::StatusCode, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let response =
        spoor_segmenter::dashboard::app(spoor_segmenter::dashboard::AppState { db: db.clone() })
            .oneshot(
                axum::http::Request::get(uri)
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// [`get`], checked: 200 and a body with each of `expected`. Returns the body.
pub async fn page_with(db: &Db, uri: &str, expected: &[&str]) -> String {
    let (status, html) = get(db, uri).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{uri}: {html}");
    for e in expected {
        assert!(html.contains(e), "{uri} lacks {e:?}");
    }
    html
}
