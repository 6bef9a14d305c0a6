//! Segments on a real ClickHouse: every rule kind, enter/exit history, static segments,
//! hostile definitions, and the CLI.

mod common;

use common::*;
use spoor_segmenter::segment::{Definition, Format, store};

/// Three people, as of 2026-11-21 12:00 UTC:
/// * u1 (anonymous a1 identified 10 days ago): three orders (10, 20, 30) in the last 10 days,
///   searched "Running Shoes" and viewed /shoes/runner 5 days ago, signed up 3 days ago.
/// * u2: one order 42 days ago, a page view and a "socks" search 2 days ago.
/// * a3: anonymous, one page view of /blog today.
async fn three_people(test: &str) -> spoor_segmenter::Db {
    let db = fresh_db(test).await;
    insert(
        &db,
        &[
            ev("identify", "2026-11-11T09:00:00Z", "a1")
                .user("u1")
                .traits(r#"{"level":"gold"}"#),
            track(
                "2026-11-12T09:00:00Z",
                "u1",
                "order_completed",
                r#"{"order_id":"o1","revenue":10}"#,
            ),
            track(
                "2026-11-14T09:00:00Z",
                "u1",
                "order_completed",
                r#"{"order_id":"o2","revenue":20}"#,
            ),
            track(
                "2026-11-16T09:00:00Z",
                "u1",
                "order_completed",
                r#"{"order_id":"o3","revenue":30}"#,
            ),
            page("2026-11-16T10:00:00Z", "a1", "s1", "/shoes/runner").user("u1"),
            ev("search", "2026-11-16T10:01:00Z", "a1")
                .user("u1")
                .session("s1")
                .search("Running Shoes", Some(4)),
            track(
                "2026-11-18T09:00:00Z",
                "u1",
                "member_signup",
                r#"{"member_id":"M-1"}"#,
            ),
            track(
                "2026-10-10T09:00:00Z",
                "u2",
                "order_completed",
                r#"{"order_id":"o4","revenue":40}"#,
            ),
            page("2026-11-19T10:00:00Z", "a2", "s2", "/").user("u2"),
            ev("search", "2026-11-19T10:01:00Z", "a2")
                .user("u2")
                .session("s2")
                .search("socks", Some(1)),
            page("2026-11-21T08:00:00Z", "a3", "s3", "/blog"),
        ],
    )
    .await;
    db
}

async fn add(db: &spoor_segmenter::Db, toml: &str) -> u64 {
    let definition =
        Definition::parse(toml, Format::Toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    store::add(db, &definition, None).await.unwrap()
}

async fn members(db: &spoor_segmenter::Db, segment: &str) -> Vec<String> {
    rows(
        db,
        &format!("SELECT person_id FROM {{db}}.segment_members WHERE segment_id = '{segment}' ORDER BY person_id"),
    )
    .await
}

#[tokio::test]
async fn each_rule_kind_selects_the_right_people() {
    let db = three_people("rules").await;
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "orders3",
            r#"field = "orders_total"
op = "gte"
value = 3"#,
            &["u1"],
        ),
        (
            "identified",
            "field = \"is_identified\"\nop = \"eq\"\nvalue = true",
            &["u1", "u2"],
        ),
        (
            "gold",
            "field = \"traits.level\"\nop = \"eq\"\nvalue = \"gold\"",
            &["u1"],
        ),
        (
            "stage_new",
            "field = \"lifecycle_stage\"\nop = \"eq\"\nvalue = \"new\"",
            &["anon:a3"],
        ),
        (
            "stage_kept",
            "field = \"lifecycle_stage\"\nop = \"in\"\nvalue = [\"loyal\", \"returning\"]",
            &["u1", "u2"],
        ),
        (
            "revenue",
            "field = \"revenue_total\"\nop = \"between\"\nvalue = [50, 70]",
            &["u1"],
        ),
        (
            "recent_rfm",
            "field = \"rfm_recency\"\nop = \"eq\"\nvalue = 5",
            &["u1"],
        ),
        (
            "signed_up",
            "field = \"signup_at\"\nop = \"within_days\"\nvalue = 7",
            &["u1"],
        ),
        (
            "old_timers",
            "field = \"first_seen_at\"\nop = \"before\"\nvalue = \"2026-11-01\"",
            &["u2"],
        ),
        (
            "buyers",
            "did = \"order_completed\"\nat_least = 2\nwithin_days = 30",
            &["u1"],
        ),
        (
            "few_orders",
            "did = \"order_completed\"\nat_most = 0\nwithin_days = 30",
            &["anon:a3", "u2"],
        ),
        (
            "never_bought",
            "did_not = \"order_completed\"",
            &["anon:a3"],
        ),
        (
            "new_members",
            "first_did = \"member_signup\"\nwithin_days = 7",
            &["u1"],
        ),
        (
            "shoe_search",
            "searched = \"shoes\"\nwithin_days = 30",
            &["u1"],
        ),
        ("sock_search", "searched = \"SOCKS\"", &["u2"]),
        (
            "shoe_pages",
            "visited = \"/shoes\"\nwithin_days = 7",
            &["u1"],
        ),
        (
            "lapsed",
            "all = [{ field = \"is_identified\", op = \"eq\", value = true }, { not = { did = \"order_completed\", within_days = 30 } }]",
            &["u2"],
        ),
        (
            "either",
            "any = [{ visited = \"/blog\" }, { field = \"traits.level\", op = \"eq\", value = \"gold\" }]",
            &["anon:a3", "u1"],
        ),
    ];
    for (id, rule, _) in cases {
        let toml = format!("id = \"{id}\"\n[rule]\n{rule}\n");
        assert_eq!(
            add(&db, &toml).await,
            0,
            "no profiles before the first run (which evaluates the segments)"
        );
    }
    let report = run(&db, "2026-11-21T12:00:00Z").await;
    assert_eq!(report.segments, cases.len());
    for (id, _, expected) in cases {
        assert_eq!(members(&db, id).await, *expected, "segment {id}");
    }
    let listed = store::list(&db).await.unwrap();
    assert_eq!(listed.len(), cases.len());
    let buyers = listed.iter().find(|s| s.segment_id == "buyers").unwrap();
    assert_eq!((buyers.kind.as_str(), buyers.members), ("dynamic", 1));

    // A dynamic segment added after a run gets its members at once, as of that run; the next
    // run of the same day (which recomputes only the people it touched: none here) keeps them.
    for (id, rule, expected) in cases {
        let toml = format!("id = \"{id}_again\"\n[rule]\n{rule}\n");
        assert_eq!(add(&db, &toml).await, expected.len() as u64, "segment {id}");
    }
    let report = run(&db, "2026-11-21T13:00:00Z").await;
    assert_eq!(report.recomputed, spoor_segmenter::Recomputed::Touched);
    for (id, _, expected) in cases {
        assert_eq!(
            members(&db, &format!("{id}_again")).await,
            *expected,
            "segment {id}"
        );
    }
}

#[tokio::test]
async fn enter_and_exit_history_across_two_runs_and_static_segments_stay_frozen() {
    let db = fresh_db("history").await;
    insert(
        &db,
        &[track(
            "2026-11-09T10:00:00Z",
            "u1",
            "order_completed",
            r#"{"order_id":"o1","revenue":5}"#,
        )],
    )
    .await;
    add(&db, "id = \"buyers_7d\"\nname = \"Bought this week\"\n[rule]\ndid = \"order_completed\"\nwithin_days = 7\n").await;
    run(&db, "2026-11-10T12:00:00Z").await;
    assert_eq!(members(&db, "buyers_7d").await, ["u1"]);

    // A static segment is frozen when added.
    let frozen = add(&db, "id = \"first_buyers\"\nkind = \"static\"\n[rule]\nfield = \"orders_total\"\nop = \"gte\"\nvalue = 1\n").await;
    assert_eq!(frozen, 1);

    insert(
        &db,
        &[track(
            "2026-11-11T10:00:00Z",
            "u2",
            "order_completed",
            r#"{"order_id":"o2","revenue":7}"#,
        )],
    )
    .await;
    // A week later u1's order has left the window; u2's has not.
    run(&db, "2026-11-17T12:00:00Z").await;
    assert_eq!(members(&db, "buyers_7d").await, ["u2"]);
    assert_eq!(members(&db, "first_buyers").await, ["u1"]);
    let history = rows(
        &db,
        "SELECT person_id, change FROM {db}.segment_changes WHERE segment_id = 'buyers_7d' ORDER BY run_id, change, person_id",
    )
    .await;
    assert_eq!(history, ["u1\tentered", "u2\tentered", "u1\texited"]);
    let runs = rows(
        &db,
        "SELECT count(DISTINCT run_id) FROM {db}.segment_changes WHERE segment_id = 'buyers_7d'",
    )
    .await;
    assert_eq!(runs, ["2"]);

    // A full rebuild re-evaluates everyone (as a day's first run does): u2 stays, and keeps
    // the row (the run that added it, the time it entered) — only changes are written.
    let row = "SELECT person_id, run_id, entered_at FROM {db}.segment_members WHERE segment_id = 'buyers_7d'";
    let before = rows(&db, row).await;
    run_full(&db, "2026-11-17T12:00:00Z").await;
    assert_eq!(rows(&db, row).await, before);
    assert_eq!(
        rows(
            &db,
            "SELECT count() FROM {db}.segment_changes WHERE segment_id = 'buyers_7d'"
        )
        .await,
        ["3"]
    );

    // A static segment from an id list, replaced later: the replacement's exits are recorded.
    let listed = Definition::parse(
        "id = \"vip\"\nkind = \"static\"\nproject = \"p1\"\n",
        Format::Toml,
    )
    .unwrap();
    let n = store::add(&db, &listed, Some(&["u1".to_owned(), "u9".to_owned()]))
        .await
        .unwrap();
    assert_eq!(n, 2);
    let n = store::add(&db, &listed, Some(&["u9".to_owned()]))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        rows(&db, "SELECT person_id, change FROM {db}.segment_changes WHERE segment_id = 'vip' ORDER BY run_id, person_id").await,
        ["u1\tentered", "u9\tentered", "u1\texited"]
    );
    // Deleting keeps the history.
    store::delete(&db, "vip").await.unwrap();
    assert!(members(&db, "vip").await.is_empty());
    assert_eq!(
        rows(
            &db,
            "SELECT count() FROM {db}.segment_changes WHERE segment_id = 'vip'"
        )
        .await,
        ["3"]
    );
    assert!(matches!(
        store::get(&db, "vip").await,
        Err(spoor_segmenter::Error::UnknownSegment(_))
    ));
}

#[tokio::test]
async fn hostile_values_compile_to_safe_sql_and_match_nothing() {
    let db = three_people("hostile").await;
    let hostile = [
        r#"id = "h1"
project = "p1' OR '1'='1"
[rule]
searched = "x'); DROP TABLE events; --""#,
        r#"id = "h2"
[rule]
visited = "/*' UNION SELECT 1 --*/""#,
        r#"id = "h3"
[rule]
field = "level"
op = "in"
value = ["gold' --", "\\'; SELECT 1", "{p0:String}"]"#,
        r#"id = "h4"
[rule]
did = "order_completed' OR 1=1 --"
within_days = 3650"#,
        r#"id = "h5"
[rule]
field = "first_utm_source"
op = "contains"
value = "`; DROP DATABASE x; /*"
"#,
    ];
    let mut errors = Vec::new();
    for toml in hostile {
        match Definition::parse(toml, Format::Toml) {
            Ok(definition) => {
                store::add(&db, &definition, None).await.unwrap();
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    // The track name with a quote is not an event name: refused with a clear message.
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("must be an event type"), "{}", errors[0]);
    let report = run(&db, "2026-11-21T12:00:00Z").await;
    assert_eq!(report.segments, 4);
    for id in ["h1", "h2", "h3", "h5"] {
        assert!(members(&db, id).await.is_empty(), "{id}");
    }
    // Nothing was dropped.
    assert_eq!(rows(&db, "SELECT count() FROM {db}.events").await, ["11"]);
}

#[test]
fn hostile_definitions_are_refused_with_clear_errors() {
    let cases: &[(&str, Format, &str)] = &[
        (
            "id = \"x\"\n[rule]\nfield = \"orders_total; DROP TABLE events\"\nop = \"eq\"\nvalue = 1\n",
            Format::Toml,
            "unknown profile field",
        ),
        (
            "id = \"x\"\n[rule]\nflied = \"orders_total\"\n",
            Format::Toml,
            "unknown field `flied`",
        ),
        (
            "id = \"x\"\ncolour = \"red\"\n[rule]\nvisited = \"/\"\n",
            Format::Toml,
            "unknown field `colour`",
        ),
        (
            "id = \"x\"\n[rule]\ndid = \"page_view\"\nat_least = 99999999999999999999\n",
            Format::Toml,
            "not a valid segment definition",
        ),
        (
            r#"{"id":"x","rule":{"did":"page_view","at_least":1e30}}"#,
            Format::Json,
            "not a valid segment definition",
        ),
        (
            r#"{"id":"x","rule":{"did":"page_view","at_least":2000000000}}"#,
            Format::Json,
            "at_least must be at most",
        ),
        (
            r#"{"id":"x","rule":{"did":"page_view","within_days":100000}}"#,
            Format::Json,
            "within_days must be between",
        ),
        (
            r#"{"id":"x","rule":{"field":"revenue_total","op":"gt","value":1e400}}"#,
            Format::Json,
            "not a valid segment definition",
        ),
        (
            r#"{"id":"x","rule":{"field":"orders_total","op":"gt","value":1.5e300}}"#,
            Format::Json,
            "not a whole number",
        ),
        (
            r#"{"id":"x","rule":{"field":"orders_total","op":"contains","value":"1"}}"#,
            Format::Json,
            "does not apply",
        ),
        (
            r#"{"id":"x","rule":{"field":"lifecycle_stage","op":"eq","value":"vip'--"}}"#,
            Format::Json,
            "not a lifecycle stage",
        ),
        (
            r#"{"id":"x","rule":{"field":"traits.a'b","op":"eq","value":"1"}}"#,
            Format::Json,
            "trait name",
        ),
        (
            r#"{"id":"x","rule":{"did":"page_view","visited":"/"}}"#,
            Format::Json,
            "exactly one of",
        ),
        (r#"{"id":"x","rule":{}}"#, Format::Json, "found none"),
        (
            r#"{"id":"x","rule":{"visited":"/","op":"eq"}}"#,
            Format::Json,
            "`op` has no meaning",
        ),
        (
            r#"{"id":"X Y","rule":{"visited":"/"}}"#,
            Format::Json,
            "segment id",
        ),
        (r#"{"id":"x"}"#, Format::Json, "needs a rule"),
        (
            r#"{"id":"x","rule":{"all":[]}}"#,
            Format::Json,
            "at least one rule",
        ),
        (
            r#"{"id":"x","rule":{"did":"page_view","at_least":5,"at_most":2}}"#,
            Format::Json,
            "greater than at_most",
        ),
        (
            "id = \"x\" # comment\n[rule]\nvisited = \"/\" /* not toml */\n",
            Format::Toml,
            "not a valid segment definition",
        ),
    ];
    for (text, format, expected) in cases {
        let error = Definition::parse(text, *format).unwrap_err().to_string();
        assert!(
            error.contains(expected),
            "{text}\n→ {error}\n(expected {expected:?})"
        );
    }
    let deep = format!(
        r#"{{"id":"x","rule":{}{{"visited":"/"}}{}}}"#,
        r#"{"not":"#.repeat(12),
        "}".repeat(12)
    );
    let error = Definition::parse(&deep, Format::Json)
        .unwrap_err()
        .to_string();
    assert!(error.contains("nest deeper"), "{error}");
}

#[tokio::test]
async fn cli_manages_segments_and_exit_codes_are_clear() {
    let db = three_people("cli").await;
    run(&db, "2026-11-21T12:00:00Z").await;
    let bin = env!("CARGO_BIN_EXE_spoor-segmenter");
    let dir = std::env::temp_dir().join(format!("spoor-seg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("buyers.toml");
    std::fs::write(
        &file,
        "id = \"cli_buyers\"\nname = \"Buyers\"\n[rule]\ndid = \"order_completed\"\n",
    )
    .unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"id":"bad","rule":{"field":"nope","op":"eq","value":1}}"#,
    )
    .unwrap();
    let cli = |args: &[&str]| {
        let out = segmenter_command(&db, args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = cli(&["segments", "add", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Segment cli_buyers (dynamic) saved"), "{out}");
    let (code, out, _) = cli(&["run", "--quiet"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("incremental"), "{out}");
    let (_, out, _) = cli(&["segments", "list"]);
    assert!(
        out.contains("cli_buyers") && out.contains("2 members"),
        "{out}"
    );
    let (_, out, _) = cli(&["segments", "show", "cli_buyers"]);
    assert!(
        out.contains("compiled SQL:") && out.contains("activity_daily"),
        "{out}"
    );
    let (code, out, err) = cli(&["segments", "export", "cli_buyers"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some(
            "\"person_id\",\"project_id\",\"user_id\",\"member_id\",\"email_sha256\",\"phone_sha256\",\"entered_at\""
        ),
        "{out}"
    );
    assert_eq!(lines.len(), 3, "a header and the two members: {out}");
    let (code, _, err) = cli(&["segments", "export", "nope"]);
    assert_eq!(code, Some(6), "{err}");
    let (code, _, err) = cli(&["segments", "add", bad.to_str().unwrap()]);
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("unknown profile field \"nope\""), "{err}");
    let (code, _, _) = cli(&["segments", "delete", "cli_buyers"]);
    assert_eq!(code, Some(0));
    let (code, _, err) = cli(&["segments", "show", "cli_buyers"]);
    assert_eq!(code, Some(6), "{err}");
    let (code, _, err) = cli(&["run", "--every", "0s"]);
    assert_eq!(code, Some(2), "{err}");

    let unreachable = std::process::Command::new(bin)
        .args([
            "run",
            "--clickhouse-url",
            "http://127.0.0.1:9",
            "--database",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("ClickHouse is unreachable"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn example_definitions_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/segments");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let definition = Definition::parse(&text, Format::from_path(&path))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Some(rule) = &definition.rule {
            let compiled =
                spoor_segmenter::segment::compile(&rule.validate().unwrap(), &definition.project);
            assert!(!compiled.params.is_empty());
        }
        seen += 1;
    }
    assert!(seen >= 8, "{seen} examples");
}

#[tokio::test]
async fn runs_within_a_day_update_only_the_people_touched_and_agree_with_a_full_run() {
    let db = fresh_db("sameday").await;
    add(&db, "id = \"buyers\"\n[rule]\ndid = \"order_completed\"\n").await;
    add(
        &db,
        "id = \"no_orders\"\n[rule]\ndid_not = \"order_completed\"\n",
    )
    .await;
    add(
        &db,
        "id = \"gold\"\n[rule]\nfield = \"rfm_monetary\"\nop = \"eq\"\nvalue = 5\n",
    )
    .await;
    insert(
        &db,
        &[
            page("2026-11-21T08:00:00Z", "a1", "s1", "/"),
            track(
                "2026-11-21T08:30:00Z",
                "u1",
                "order_completed",
                r#"{"order_id":"o1","revenue":50}"#,
            ),
        ],
    )
    .await;
    let first = run(&db, "2026-11-21T10:00:00Z").await;
    assert_eq!(first.recomputed, spoor_segmenter::Recomputed::Everyone);
    assert_eq!(members(&db, "buyers").await, ["u1"]);
    assert_eq!(members(&db, "no_orders").await, ["anon:a1"]);
    assert_eq!(members(&db, "gold").await, ["u1"]);

    // a1 logs in as u2 and buys more than u1; a3 arrives.
    insert(
        &db,
        &[
            ev("identify", "2026-11-21T11:00:00Z", "a1")
                .user("u2")
                .session("s1"),
            track(
                "2026-11-21T11:05:00Z",
                "u2",
                "order_completed",
                r#"{"order_id":"o2","revenue":80}"#,
            ),
            page("2026-11-21T11:10:00Z", "a3", "s3", "/"),
        ],
    )
    .await;
    let second = run(&db, "2026-11-21T12:00:00Z").await;
    assert_eq!(second.recomputed, spoor_segmenter::Recomputed::Touched);
    assert_eq!(members(&db, "buyers").await, ["u1", "u2"]);
    assert_eq!(members(&db, "no_orders").await, ["anon:a3"]);
    // u1 was not touched, but its RFM score fell when u2 outspent it.
    assert_eq!(members(&db, "gold").await, ["u2"]);
    assert_eq!(
        rows(&db, "SELECT segment_id, person_id, change FROM {db}.segment_changes WHERE run_id = (SELECT max(run_id) FROM {db}.segment_changes) ORDER BY ALL").await,
        [
            "buyers\tu2\tentered",
            "gold\tu1\texited",
            "gold\tu2\tentered",
            "no_orders\tanon:a1\texited",
            "no_orders\tanon:a3\tentered",
        ]
    );
    let profiles = "SELECT * EXCEPT (version, as_of) FROM {db}.profiles_dynamic FINAL ORDER BY ALL";
    let memberships = "SELECT segment_id, person_id FROM {db}.segment_members ORDER BY ALL";
    let (patched, patched_members) = (rows(&db, profiles).await, rows(&db, memberships).await);
    assert_eq!(patched.len(), 3);
    run_full(&db, "2026-11-21T12:00:00Z").await;
    assert_eq!(rows(&db, profiles).await, patched);
    assert_eq!(rows(&db, memberships).await, patched_members);
}
