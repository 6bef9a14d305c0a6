//! Erasure on a real ClickHouse: forgetting a user takes their events and every row derived
//! from them, in every table of the database; everyone else's rows stay; a later run does not
//! bring them back. An anonymous id that belongs to a user is refused.

mod common;

use common::*;
use spoor_segmenter::forget::{Request, forget};
use spoor_segmenter::segment::{Definition, Format, store};

/// Rows that mention `needle` anywhere in any column, per table of the test database (every
/// table, so that a table `forget` does not know about shows up here).
async fn mentions(db: &spoor_segmenter::Db, needle: &str) -> Vec<String> {
    let tables = rows(
        db,
        &format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND engine LIKE '%MergeTree%' ORDER BY name",
            db.database()
        ),
    )
    .await;
    let mut found = Vec::new();
    for table in tables {
        let n = rows(
            db,
            &format!(
                "SELECT count() FROM {{db}}.{table} WHERE position(toString(tuple(*)), '{needle}') > 0"
            ),
        )
        .await;
        if n != ["0"] {
            found.push(format!("{table}: {}", n.join("")));
        }
    }
    found
}

/// Asserts that no row of any table mentions any of `needles`.
async fn assert_no_mentions(db: &spoor_segmenter::Db, needles: &[&str]) {
    for needle in needles {
        assert_eq!(mentions(db, needle).await, Vec::<String>::new(), "{needle}");
    }
}

async fn shop() -> spoor_segmenter::Db {
    let db = fresh_db("forget").await;
    insert(
        &db,
        &[
            // Ada: two devices, anonymous first, then identified; an order from the backend.
            page("2026-11-20T09:00:00Z", "ada-phone", "s1", "/"),
            ev("identify", "2026-11-20T09:01:00Z", "ada-phone")
                .user("ada-user")
                .session("s1")
                .traits(r#"{"level":"gold","email_sha256":"ada-hash"}"#),
            page("2026-11-21T10:00:00Z", "ada-laptop", "s2", "/shoes"),
            ev("identify", "2026-11-21T10:01:00Z", "ada-laptop")
                .user("ada-user")
                .session("s2"),
            track(
                "2026-11-21T10:05:00Z",
                "ada-user",
                "order_completed",
                r#"{"order_id":"o1","revenue":50}"#,
            ),
            // Bob, identified, and a visitor who never was.
            page("2026-11-21T11:00:00Z", "bob-phone", "s3", "/").user("bob-user"),
            track(
                "2026-11-21T11:05:00Z",
                "bob-user",
                "order_completed",
                r#"{"order_id":"o2","revenue":70}"#,
            ),
            page("2026-11-21T12:00:00Z", "cyd-tablet", "s4", "/blog"),
        ],
    )
    .await;
    rows(
        &db,
        "INSERT INTO {db}.events_rejected (received_at, project_id, event_id, reason, message, raw)
         VALUES (now64(3), 'p1', 'x', 'malformed', 'bad', '{\"user_id\":\"ada-user\",\"bad\":1}'),
                (now64(3), 'p1', 'y', 'malformed', 'bad', '{\"user_id\":\"bob-user\",\"bad\":1}')",
    )
    .await;
    let buyers = Definition::parse(
        "id = \"buyers\"\n[rule]\ndid = \"order_completed\"\n",
        Format::Toml,
    )
    .unwrap();
    store::add(&db, &buyers, None).await.unwrap();
    run(&db, "2026-11-21T23:00:00Z").await;
    db
}

#[tokio::test]
async fn forgetting_a_user_deletes_every_row_about_them_and_nothing_else() {
    let db = shop().await;
    let ada = ["ada-user", "ada-phone", "ada-laptop", "ada-hash"];
    for needle in ada {
        assert!(
            !mentions(&db, needle).await.is_empty(),
            "the fixture stores {needle}"
        );
    }
    let others_before = (mentions(&db, "bob-").await, mentions(&db, "cyd-").await);

    let request = Request {
        project: "p1".into(),
        users: vec!["ada-user".into()],
        anonymous_ids: vec![],
    };
    let forgotten = forget(&db, &request).await.unwrap();
    // Her devices, and the backend's id for her (the order came from the server).
    assert_eq!(
        forgotten.anonymous_ids,
        ["ada-laptop", "ada-phone", "srv-ada-user"]
    );
    let deleted: Vec<&str> = forgotten.rows.iter().map(|(t, _)| *t).collect();
    assert!(
        deleted.contains(&"events") && deleted.contains(&"events_rejected"),
        "{deleted:?}"
    );
    assert_eq!(
        forgotten.rows.iter().find(|(t, _)| *t == "events"),
        Some(&("events", 5))
    );
    assert_no_mentions(&db, &ada).await;
    assert_eq!(
        (mentions(&db, "bob-").await, mentions(&db, "cyd-").await),
        others_before,
        "nobody else's rows changed"
    );

    // The next runs (the same day, and a full rebuild) do not bring Ada back.
    run(&db, "2026-11-21T23:30:00Z").await;
    run_full(&db, "2026-11-21T23:30:00Z").await;
    assert_no_mentions(&db, &ada).await;
    assert_eq!(
        rows(
            &db,
            "SELECT person_id FROM {db}.segment_members ORDER BY person_id"
        )
        .await,
        ["bob-user"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT visitors, orders FROM {db}.report_daily WHERE day = '2026-11-21'"
        )
        .await,
        ["2\t1"],
        "a full rebuild recounts the reports without her"
    );
}

#[tokio::test]
async fn anonymous_ids_are_forgotten_alone_only_when_no_user_owns_them() {
    let db = shop().await;
    let request = |users: &[&str], anons: &[&str]| Request {
        project: "p1".into(),
        users: users.iter().map(|s| s.to_string()).collect(),
        anonymous_ids: anons.iter().map(|s| s.to_string()).collect(),
    };
    let refused = forget(&db, &request(&[], &["ada-phone"]))
        .await
        .unwrap_err();
    assert_eq!(refused.exit_code(), 5);
    assert!(
        refused.to_string().contains("belongs to user \"ada-user\""),
        "{refused}"
    );
    assert!(forget(&db, &request(&[], &[])).await.is_err());
    assert!(
        !mentions(&db, "ada-phone").await.is_empty(),
        "nothing deleted"
    );

    let forgotten = forget(&db, &request(&[], &["cyd-tablet"])).await.unwrap();
    assert_eq!(forgotten.anonymous_ids, ["cyd-tablet"]);
    assert_eq!(mentions(&db, "cyd-").await, Vec::<String>::new());
    assert!(!mentions(&db, "bob-").await.is_empty());
    // Nobody by that name: nothing to delete, no error.
    let none = forget(&db, &request(&["nobody"], &[])).await.unwrap();
    assert!(none.rows.is_empty(), "{none:?}");
}

#[tokio::test]
async fn the_cli_says_what_it_deleted() {
    let db = shop().await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_spoor-segmenter"))
            .arg("forget")
            .args(args)
            .args([
                "--project",
                "p1",
                "--clickhouse-url",
                &clickhouse_url(),
                "--database",
                db.database(),
            ])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["--user", "bob-user"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("events") && out.contains("2 rows deleted"),
        "{out}"
    );
    assert!(
        out.contains("Anonymous ids forgotten: bob-phone, srv-bob-user"),
        "{out}"
    );
    let (code, _, err) = cli(&["--anonymous-id", "ada-phone"]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("forget the user (--user ada-user)"), "{err}");
    let (code, _, err) = cli(&[]);
    assert_eq!(code, Some(5), "{err}");
}
