//! Hand-computed fixtures through the real pipeline on a real ClickHouse.

mod common;

use common::*;
use uuid::Uuid;

#[tokio::test]
async fn sessions_across_midnight_count_on_their_first_day() {
    let db = fresh_db("midnight").await;
    insert(
        &db,
        &[
            page("2026-11-20T23:50:00Z", "a1", "s1", "/").referrer("google.com", "search"),
            page("2026-11-21T00:10:00Z", "a1", "s1", "/shoes"),
            ev("page_leave", "2026-11-21T00:11:00Z", "a1")
                .session("s1")
                .path("/shoes")
                .engaged(30_000),
            page("2026-11-21T09:00:00Z", "a2", "s2", "/"),
        ],
    )
    .await;
    run(&db, "2026-11-21T12:00:00Z").await;

    assert_eq!(
        rows(&db, "SELECT session_id, day, duration_ms, page_views, engaged_ms, entry_path, exit_path, referrer_domain, is_bounce FROM {db}.sessions ORDER BY session_id").await,
        [
            "s1\t2026-11-20\t1260000\t2\t30000\t/\t/shoes\tgoogle.com\tfalse",
            "s2\t2026-11-21\t0\t1\t0\t/\t/\t\ttrue",
        ]
    );
    assert_eq!(
        rows(&db, "SELECT day, visitors, new_visitors, sessions, page_views, bounces, bounce_rate, avg_session_seconds, avg_engaged_seconds FROM {db}.report_daily ORDER BY day").await,
        [
            "2026-11-20\t1\t1\t1\t1\t0\t0\t1260\t30",
            "2026-11-21\t2\t1\t1\t2\t1\t1\t0\t0",
        ]
    );
    assert_eq!(
        rows(&db, "SELECT week, visitors, new_visitors, sessions, page_views, bounces, bounce_rate FROM {db}.report_weekly").await,
        ["2026-11-16\t2\t2\t2\t3\t1\t0.5"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT month, visitors, sessions, page_views FROM {db}.report_monthly"
        )
        .await,
        ["2026-11-01\t2\t2\t3"]
    );
    assert_eq!(
        rows(&db, "SELECT day, path, views, visitors, entries, exits, engaged_ms, avg_engaged_seconds FROM {db}.report_daily_pages ORDER BY day, path").await,
        [
            "2026-11-20\t/\t1\t1\t1\t0\t0\t0",
            "2026-11-20\t/shoes\t0\t0\t0\t1\t0\t0",
            "2026-11-21\t/\t1\t1\t1\t1\t0\t0",
            "2026-11-21\t/shoes\t1\t1\t0\t0\t30000\t30",
        ]
    );
    assert_eq!(
        rows(&db, "SELECT day, referrer_class, referrer_domain, sessions, visitors, bounces, page_views FROM {db}.report_daily_sources ORDER BY day").await,
        [
            "2026-11-20\tsearch\tgoogle.com\t1\t1\t0\t2",
            "2026-11-21\t\t\t1\t1\t1\t1",
        ]
    );
}

#[tokio::test]
async fn identify_merges_earlier_anonymous_history_and_it_stays_merged() {
    let db = fresh_db("identify").await;
    insert(
        &db,
        &[
            page("2026-11-20T10:00:00Z", "a1", "s1", "/").utm("newsletter", "email", "nov"),
            page("2026-11-20T10:05:00Z", "a1", "s1", "/pricing"),
        ],
    )
    .await;
    run(&db, "2026-11-20T12:00:00Z").await;
    assert_eq!(
        rows(
            &db,
            "SELECT person_id, is_identified FROM {db}.profiles_static FINAL"
        )
        .await,
        ["anon:a1\tfalse"]
    );

    insert(
        &db,
        &[
            ev("identify", "2026-11-21T09:00:00Z", "a1")
                .user("u1")
                .session("s2")
                .traits(r#"{"level":"gold","plan":"pro"}"#),
            page("2026-11-21T09:00:01Z", "a1", "s2", "/account").user("u1"),
            // The same person on a second device, already logged in.
            page("2026-11-21T10:00:00Z", "a9", "s3", "/").user("u1"),
            ev("identify", "2026-11-21T10:00:01Z", "a9")
                .user("u1")
                .session("s3")
                .traits(r#"{"plan":"team"}"#),
        ],
    )
    .await;
    let report = run(&db, "2026-11-21T12:00:00Z").await;
    assert!(!report.full);

    assert_eq!(
        rows(&db, "SELECT anonymous_id, old_user_id, new_user_id FROM {db}.identity_changes ORDER BY anonymous_id").await,
        ["a1\t\tu1", "a9\t\tu1"]
    );
    // One profile, first seen on the anonymous visit, with first-touch UTM and merged traits.
    assert_eq!(
        rows(&db, "SELECT person_id, is_identified, anonymous_ids, first_seen_at, first_utm_source, first_path, traits FROM {db}.profiles_static FINAL").await,
        [r#"u1	true	['a1','a9']	2026-11-20 10:00:00.000	newsletter	/	{"level":"gold","plan":"team"}"#]
    );
    assert_eq!(
        rows(&db, "SELECT person_id, page_views_total, sessions_total, active_days_7d, first_seen_at FROM {db}.profiles_dynamic FINAL").await,
        ["u1\t4\t3\t2\t2026-11-20 10:00:00.000"]
    );
    // The 20th was re-aggregated: its visitor is now u1, who is returning on the 21st.
    assert_eq!(
        rows(&db, "SELECT day, visitors, new_visitors, returning_visitors FROM {db}.report_daily ORDER BY day").await,
        ["2026-11-20\t1\t1\t0", "2026-11-21\t1\t0\t1"]
    );
    assert_eq!(
        rows(&db, "SELECT week, visitors FROM {db}.report_weekly").await,
        ["2026-11-16\t1"]
    );

    // A later anonymous event of a1 (no user id) still counts for u1.
    insert(&db, &[page("2026-11-22T08:00:00Z", "a1", "s4", "/")]).await;
    run(&db, "2026-11-22T12:00:00Z").await;
    assert_eq!(
        rows(
            &db,
            "SELECT person_id, page_views_total FROM {db}.profiles_dynamic FINAL"
        )
        .await,
        ["u1\t5"]
    );
    assert_eq!(
        rows(&db, "SELECT person_id FROM {db}.profiles_static FINAL").await,
        ["u1"]
    );
}

#[tokio::test]
async fn duplicate_events_count_once_and_bots_not_at_all() {
    let db = fresh_db("duplicates").await;
    let id = Uuid::new_v4();
    let e = page("2026-11-21T10:00:00Z", "a1", "s1", "/").id(id);
    insert(&db, std::slice::from_ref(&e)).await;
    // The retry arrives in another insert.
    insert(&db, &[e.received("2026-11-21T10:00:05Z")]).await;
    insert(
        &db,
        &[page("2026-11-21T10:00:00Z", "bot1", "sb", "/").bot()],
    )
    .await;
    run(&db, "2026-11-21T12:00:00Z").await;
    assert_eq!(
        rows(
            &db,
            "SELECT page_views, visitors, sessions FROM {db}.report_daily"
        )
        .await,
        ["1\t1\t1"]
    );
    assert_eq!(
        rows(&db, "SELECT events, page_views FROM {db}.activity_daily").await,
        ["1\t1"]
    );
}

#[tokio::test]
async fn late_events_reaggregate_their_day_and_reruns_are_idempotent() {
    let db = fresh_db("late").await;
    insert(
        &db,
        &[
            page("2026-11-21T10:00:00Z", "a1", "s1", "/"),
            page("2026-11-21T11:00:00Z", "a2", "s2", "/"),
        ],
    )
    .await;
    run(&db, "2026-11-21T12:00:00Z").await;
    let snapshot = "SELECT day, visitors, new_visitors, sessions, page_views FROM {db}.report_daily ORDER BY day";
    assert_eq!(rows(&db, snapshot).await, ["2026-11-21\t2\t2\t2\t2"]);

    // An event from two days ago arrives late (an offline device).
    insert(
        &db,
        &[page("2026-11-19T08:00:00Z", "a1", "s0", "/old").received("2026-11-21T12:30:00Z")],
    )
    .await;
    let report = run(&db, "2026-11-21T13:00:00Z").await;
    assert_eq!(
        (report.full, report.new_events, report.affected_days),
        (false, 1, 1)
    );
    assert_eq!(
        rows(&db, snapshot).await,
        ["2026-11-19\t1\t1\t1\t1", "2026-11-21\t2\t1\t2\t2"]
    );
    assert_eq!(
        rows(&db, "SELECT person_id, first_seen_at FROM {db}.profiles_static FINAL WHERE person_id = 'anon:a1'").await,
        ["anon:a1\t2026-11-19 08:00:00.000"]
    );

    // Same inputs, same outputs: an incremental rerun and a full rebuild change nothing.
    let everything = [
        snapshot,
        "SELECT * EXCEPT computed_at FROM {db}.report_weekly ORDER BY ALL",
        "SELECT * EXCEPT computed_at FROM {db}.report_monthly ORDER BY ALL",
        "SELECT * FROM {db}.report_daily_pages ORDER BY ALL",
        "SELECT * EXCEPT version FROM {db}.sessions ORDER BY ALL",
        "SELECT * FROM {db}.activity_daily ORDER BY ALL",
        "SELECT * EXCEPT version FROM {db}.profiles_static FINAL ORDER BY ALL",
        "SELECT * EXCEPT (version, as_of) FROM {db}.profiles_dynamic FINAL ORDER BY ALL",
    ];
    let mut before = Vec::new();
    for sql in everything {
        before.push(rows(&db, sql).await);
    }
    let report = run(&db, "2026-11-21T13:00:00Z").await;
    assert_eq!(report.new_events, 0);
    run_full(&db, "2026-11-21T13:00:00Z").await;
    for (sql, before) in everything.iter().zip(before) {
        assert_eq!(rows(&db, sql).await, before, "{sql}");
    }
}

/// A migration that changes a derived table (and so empties it) asks for a full rebuild: the
/// next run is full even with no new events, and gives the tables back.
#[tokio::test]
async fn a_rebuild_request_makes_the_next_run_full() {
    let db = fresh_db("rebuild").await;
    insert(&db, &[page("2026-11-21T10:00:00Z", "a1", "s1", "/")]).await;
    assert!(run(&db, "2026-11-21T12:00:00Z").await.full);
    assert!(!run(&db, "2026-11-21T12:00:00Z").await.full);
    let report = "SELECT day, visitors, page_views FROM {db}.report_daily";
    assert_eq!(rows(&db, report).await, ["2026-11-21\t1\t1"]);

    // What migration 5 does to activity_daily: dropped, created anew (empty), rebuild asked.
    let client = db.client();
    let activity = &spoor_schema::segmenter::ACTIVITY_DAILY;
    for sql in activity.drop_statements(db.layout()) {
        client.query(&sql).execute().await.unwrap();
    }
    for sql in activity.create_statements(db.layout(), None) {
        client.query(&sql).execute().await.unwrap();
    }
    let request = spoor_schema::segmenter::request_rebuild(db.layout());
    client.query(&request).execute().await.unwrap();
    assert_eq!(
        rows(&db, "SELECT count() FROM {db}.activity_daily").await,
        ["0"]
    );

    let rebuilt = run(&db, "2026-11-21T12:00:00Z").await;
    assert!(rebuilt.full);
    assert_eq!(rebuilt.new_events, 1);
    assert_eq!(
        rows(&db, "SELECT count() FROM {db}.activity_daily").await,
        ["1"]
    );
    assert_eq!(rows(&db, report).await, ["2026-11-21\t1\t1"]);
    // Asked once: the run after is incremental again.
    assert!(!run(&db, "2026-11-21T12:00:00Z").await.full);
}

#[tokio::test]
async fn a_members_points_and_level_over_time() {
    let db = fresh_db("member").await;
    insert(
        &db,
        &[
            track(
                "2026-11-01T10:00:00Z",
                "m1",
                "member_signup",
                r#"{"member_id":"M-1","method":"email"}"#,
            ),
            track(
                "2026-11-01T10:01:00Z",
                "m1",
                "points_earned",
                r#"{"points":100,"reason":"welcome"}"#,
            ),
            track(
                "2026-11-01T10:02:00Z",
                "m1",
                "level_changed",
                r#"{"level":"silver"}"#,
            ),
        ],
    )
    .await;
    run(&db, "2026-11-01T12:00:00Z").await;
    let member = "SELECT member_id, level, points_earned, points_redeemed, points_balance, signins, last_login_at, city, orders, revenue FROM {db}.members";
    assert_eq!(
        rows(&db, member).await,
        ["m1\tsilver\t100\t0\t100\t0\t\\N\t\t0\t0"]
    );

    insert(
        &db,
        &[
            track("2026-11-02T09:00:00Z", "m1", "member_signin", "{}"),
            ev("identify", "2026-11-02T09:00:01Z", "srv-m1")
                .user("m1")
                .traits(r#"{"address":{"city":"Berlin","country":"DE"}}"#),
            track("2026-11-02T09:05:00Z", "m1", "points_redeemed", r#"{"points":30,"reason":"voucher"}"#),
            page("2026-11-03T14:59:00Z", "am1", "sm1", "/checkout").user("m1"),
            track("2026-11-03T15:00:00Z", "m1", "points_earned", r#"{"points":50,"reason":"order"}"#),
            track("2026-11-03T15:00:01Z", "m1", "level_changed", r#"{"level":"gold"}"#),
            track(
                "2026-11-03T15:00:02Z",
                "m1",
                "order_completed",
                r#"{"order_id":"o-1","revenue":42.5,"currency":"EUR","items":[{"sku":"A","quantity":1,"price":42.5}]}"#,
            ),
        ],
    )
    .await;
    run(&db, "2026-11-03T18:00:00Z").await;
    assert_eq!(
        rows(&db, member).await,
        ["m1\tgold\t150\t30\t120\t1\t2026-11-02 09:00:00.000\tBerlin\t1\t42.5"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT member_id, level, signup_at FROM {db}.profiles_static FINAL"
        )
        .await,
        ["M-1\tgold\t2026-11-01 10:00:00.000"]
    );
    assert_eq!(
        rows(&db, "SELECT day, signups, signins, points_earned, points_redeemed, orders, revenue, buyers, conversion_rate FROM {db}.report_daily ORDER BY day").await,
        [
            "2026-11-01\t1\t0\t100\t0\t0\t0\t0\t0",
            "2026-11-02\t0\t1\t0\t30\t0\t0\t0\t0",
            "2026-11-03\t0\t0\t50\t0\t1\t42.5\t1\t1",
        ]
    );
}

#[tokio::test]
async fn a_tickets_lifecycle() {
    let db = fresh_db("ticket").await;
    insert(
        &db,
        &[
            track(
                "2026-11-21T10:00:00Z",
                "u1",
                "ticket_opened",
                r#"{"ticket_id":"t1","channel":"email","priority":"high","subject":"Broken zip"}"#,
            ),
            track(
                "2026-11-21T10:05:00Z",
                "u1",
                "ticket_replied",
                r#"{"ticket_id":"t1","by":"customer"}"#,
            ),
            track(
                "2026-11-21T10:30:00Z",
                "agent-7",
                "ticket_replied",
                r#"{"ticket_id":"t1","by":"agent"}"#,
            ),
            track(
                "2026-11-21T12:00:00Z",
                "agent-7",
                "ticket_resolved",
                r#"{"ticket_id":"t1"}"#,
            ),
            track(
                "2026-11-21T12:10:00Z",
                "u1",
                "ticket_rated",
                r#"{"ticket_id":"t1","score":4}"#,
            ),
            track(
                "2026-11-21T11:00:00Z",
                "u2",
                "ticket_opened",
                r#"{"ticket_id":"t2","channel":"chat","priority":"low","subject":"Hi"}"#,
            ),
        ],
    )
    .await;
    run(&db, "2026-11-21T13:00:00Z").await;
    assert_eq!(
        rows(&db, "SELECT ticket_id, user_id, channel, priority, subject, status, response_seconds, resolution_seconds, csat, replies FROM {db}.tickets ORDER BY ticket_id").await,
        [
            "t1\tu1\temail\thigh\tBroken zip\tresolved\t1800\t7200\t4\t2",
            "t2\tu2\tchat\tlow\tHi\topen\t\\N\t\\N\t\\N\t0",
        ]
    );
    assert_eq!(
        rows(&db, "SELECT tickets_opened, tickets_resolved, median_first_response_seconds, median_resolution_seconds, csat_avg, csat_responses FROM {db}.report_daily").await,
        ["2\t1\t1800\t7200\t4\t1"]
    );
}

#[tokio::test]
async fn searches_and_zero_results() {
    let db = fresh_db("search").await;
    insert(
        &db,
        &[
            ev("search", "2026-11-21T10:00:00Z", "a1")
                .session("s1")
                .search("Shoes ", Some(12)),
            ev("search", "2026-11-21T10:01:00Z", "a2")
                .session("s2")
                .search("shoes", Some(3)),
            ev("search", "2026-11-21T10:02:00Z", "a2")
                .session("s2")
                .search("unicorn", Some(0)),
        ],
    )
    .await;
    run(&db, "2026-11-21T12:00:00Z").await;
    assert_eq!(
        rows(&db, "SELECT query, searches, searchers, zero_results FROM {db}.report_daily_searches ORDER BY query").await,
        ["shoes\t2\t2\t0", "unicorn\t1\t1\t1"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT searches, zero_result_searches FROM {db}.report_daily"
        )
        .await,
        ["3\t1"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT person_id, top_searches FROM {db}.profiles_dynamic FINAL ORDER BY person_id"
        )
        .await,
        ["anon:a1\t['shoes']", "anon:a2\t['shoes','unicorn']"]
    );
}

/// A run that recomputes everyone (a new as-of day, a full rebuild) swaps in the new profiles
/// at once: nobody's old row is left behind, the staging table is emptied, and a rebuild
/// over no events at all (every event erased) leaves no profile.
#[tokio::test]
async fn runs_that_recompute_everyone_replace_every_dynamic_profile() {
    let db = fresh_db("replace_dynamic").await;
    insert(
        &db,
        &[
            page("2026-11-20T10:00:00Z", "a1", "s1", "/"),
            page("2026-11-20T11:00:00Z", "a2", "s2", "/"),
            ev("identify", "2026-11-21T09:00:00Z", "a2")
                .user("u2")
                .session("s3")
                .received("2026-11-21T09:00:01Z"),
        ],
    )
    .await;
    run(&db, "2026-11-20T12:00:00Z").await;
    let profiles =
        "SELECT person_id, toDate(as_of), active_days_7d FROM {db}.profiles_dynamic ORDER BY ALL";
    assert_eq!(
        rows(&db, profiles).await,
        ["anon:a1\t2026-11-20\t1", "u2\t2026-11-20\t1"]
    );
    // The next day: everyone recomputed; a2's identify (received since) is in.
    run(&db, "2026-11-21T12:00:00Z").await;
    assert_eq!(
        rows(&db, profiles).await,
        ["anon:a1\t2026-11-21\t1", "u2\t2026-11-21\t2"]
    );
    assert_eq!(
        rows(&db, "SELECT count() FROM {db}.profiles_dynamic_next").await,
        ["0"]
    );
    db.client()
        .query(&format!("TRUNCATE TABLE {}.events", db.database()))
        .execute()
        .await
        .expect("erase events");
    run_full(&db, "2026-11-21T12:00:00Z").await;
    assert!(rows(&db, profiles).await.is_empty());
}

/// `identity_map` keeps one row per pair after a merge (the last written): seeing a pair again
/// later must not make it look newer than a second user's pair, or the identity would move.
#[tokio::test]
async fn a_pair_seen_again_later_keeps_its_first_time() {
    let db = fresh_db("pair_again").await;
    let identify = |when: &str, user: &str| {
        ev("identify", when, "a1")
            .user(user)
            .session("s1")
            .received(when)
    };
    let resolved = "SELECT anonymous_id, user_id, identified_at FROM {db}.identities";
    insert(&db, &[identify("2026-11-21T09:00:00Z", "u1")]).await;
    run(&db, "2026-11-21T23:00:00Z").await;
    insert(&db, &[identify("2026-11-21T10:00:00Z", "u2")]).await;
    run(&db, "2026-11-21T23:00:00Z").await;
    insert(&db, &[identify("2026-11-21T11:00:00Z", "u1")]).await;
    run(&db, "2026-11-21T23:00:00Z").await;
    db.client()
        .query(&format!(
            "OPTIMIZE TABLE {}.identity_map FINAL",
            db.database()
        ))
        .execute()
        .await
        .expect("merge identity_map");
    insert(&db, &[identify("2026-11-21T12:00:00Z", "u2")]).await;
    run(&db, "2026-11-21T23:00:00Z").await;
    assert_eq!(
        rows(&db, resolved).await,
        ["a1\tu1\t2026-11-21 09:00:00.000"]
    );
    assert_eq!(
        rows(
            &db,
            "SELECT user_id, identified_at FROM {db}.identity_map FINAL ORDER BY ALL"
        )
        .await,
        ["u1\t2026-11-21 09:00:00.000", "u2\t2026-11-21 10:00:00.000"]
    );
}

/// An incremental run re-aggregates, on a day, only the (anonymous id) pairs with new events
/// and swaps the day in whole: the day's other rows stay as they were, and a day whose only new
/// events are bots' gets no rows (its swap comes from an empty staging partition).
#[tokio::test]
async fn a_day_is_re_aggregated_for_its_new_pairs_and_keeps_the_rest() {
    let db = fresh_db("day_pairs").await;
    insert(
        &db,
        &[
            page("2026-11-21T10:00:00Z", "a1", "s1", "/"),
            page("2026-11-21T11:00:00Z", "a2", "s2", "/"),
        ],
    )
    .await;
    run(&db, "2026-11-21T12:00:00Z").await;
    insert(
        &db,
        &[
            page("2026-11-21T11:30:00Z", "a2", "s2", "/b").received("2026-11-21T12:10:00Z"),
            page("2026-11-20T09:00:00Z", "bot1", "sb", "/")
                .bot()
                .received("2026-11-21T12:10:00Z"),
        ],
    )
    .await;
    let report = run(&db, "2026-11-21T13:00:00Z").await;
    assert_eq!((report.full, report.affected_days), (false, 2));
    let activity =
        "SELECT day, anonymous_id, events, page_views, paths FROM {db}.activity_daily ORDER BY ALL";
    assert_eq!(
        rows(&db, activity).await,
        [
            "2026-11-21\ta1\t1\t1\t['/']",
            "2026-11-21\ta2\t2\t2\t['/','/b']"
        ]
    );
    run_full(&db, "2026-11-21T13:00:00Z").await;
    assert_eq!(
        rows(&db, "SELECT * FROM {db}.activity_daily ORDER BY ALL")
            .await
            .len(),
        2
    );
    assert_eq!(
        rows(&db, "SELECT count() FROM {db}.activity_daily_next").await,
        ["0"]
    );
}
