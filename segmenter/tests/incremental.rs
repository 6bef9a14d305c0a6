//! Incremental runs agree with a full rebuild, on random event streams.
//!
//! Each case inserts a seeded random stream in batches — page views in sessions (some across
//! midnight), searches, clicks, identifies (two devices per user, a shared device), member
//! events, orders, bots, retried duplicates and late events — and runs the segmenter
//! incrementally after every batch, as of one day. Then a full rebuild as of the same time must
//! give the same derived tables, reports, profiles and segment members.

mod common;

use common::{Ev, ev, fresh_db, insert, rows, run, run_full};
use spoor_segmenter::segment::{Definition, Format, store};

/// SplitMix64: a small deterministic generator, so a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const AS_OF: &str = "2026-11-21T23:00:00Z";
const BATCHES: u64 = 4;
const PER_BATCH: u64 = 18;

/// One random event. Day 0 is 2026-11-19; `batch` sets its arrival time.
fn random_event(rng: &mut Rng, batch: u64, index: u64) -> Ev {
    let anon = rng.below(6);
    let day = rng.below(3);
    let hour = rng.below(24);
    let minute = rng.below(60);
    let when = format!("2026-11-{:02}T{hour:02}:{minute:02}:00Z", 19 + day);
    // Six-hour session blocks; the one from 21:00 to 03:00 crosses midnight.
    let block = (day * 24 + hour + 3) / 6;
    let mut e = ev("page_view", &when, &format!("a{anon}")).session(&format!("s{anon}-{block}"));
    e.0.received_at =
        common::at(&format!("2026-11-22T0{batch}:00:00Z")) + time::Duration::seconds(index as i64);
    // Anonymous ids 0 and 3 are one user's two devices; 5 is shared by users 2 and 0.
    let user = match anon {
        5 if rng.below(2) == 0 => "u0".to_owned(),
        _ => format!("u{}", anon % 3),
    };
    let identified = rng.below(10) < 3;
    if identified {
        e = e.user(&user);
    }
    match rng.below(100) {
        0..=39 => {
            e = e.path(rng.pick(&["/", "/shop/1", "/shop/2", "/blog/x", "/checkout"]));
            match rng.below(4) {
                0 => e = e.referrer("www.google.com", "search"),
                1 => e = e.utm("newsletter", "email", "nov"),
                _ => {}
            }
        }
        40..=49 => {
            e.0.kind = "page_leave".to_owned();
            e = e
                .path(rng.pick(&["/", "/shop/1"]))
                .engaged(rng.below(90_000));
        }
        50..=59 => e.0.kind = "click".to_owned(),
        60..=69 => {
            e.0.kind = "search".to_owned();
            let results = if rng.below(3) == 0 { 0 } else { 4 };
            e = e.search(
                rng.pick(&["Shoes", "shoes ", "red hat", "gift"]),
                Some(results),
            );
        }
        70..=77 => {
            e.0.kind = "identify".to_owned();
            e = e.user(&user).traits(rng.pick(&[
                r#"{"level":"gold"}"#,
                r#"{"level":"silver","member_id":"m-7"}"#,
                r#"{"city":"Lyon"}"#,
            ]));
        }
        78..=89 => {
            e.0.kind = "track".to_owned();
            e = e.user(&user);
            let (name, properties) = match rng.below(4) {
                0 => ("member_signup", r#"{"member_id":"m-1"}"#),
                1 => ("member_signin", "{}"),
                2 => ("points_earned", r#"{"points":10,"reason":"order"}"#),
                _ => ("level_changed", r#"{"level":"platinum"}"#),
            };
            e.0.name = name.to_owned();
            e.0.properties = properties.to_owned();
        }
        _ => {
            e.0.kind = "track".to_owned();
            e = e.user(&user);
            e.0.name = "order_completed".to_owned();
            e.0.properties = format!(
                r#"{{"order_id":"o{batch}-{index}","revenue":{}}}"#,
                rng.below(200)
            );
        }
    }
    // A backend sends a third of the track events: no session (so a person's first event can
    // come before their first session).
    if e.0.kind == "track" && rng.below(3) == 0 {
        e = e.session("");
        e.0.source = "server".to_owned();
    }
    if rng.below(30) == 0 {
        e = e.bot();
    }
    e
}

/// Everything a run derives, as text; columns stamped with the run's time are left out.
const EVERYTHING: &[&str] = &[
    "SELECT * FROM {db}.identities ORDER BY ALL",
    "SELECT * FROM {db}.activity_daily ORDER BY ALL",
    "SELECT * EXCEPT version FROM {db}.sessions ORDER BY ALL",
    "SELECT * EXCEPT version FROM {db}.profiles_static FINAL ORDER BY ALL",
    "SELECT * EXCEPT (version, as_of) FROM {db}.profiles_dynamic FINAL ORDER BY ALL",
    "SELECT * EXCEPT computed_at FROM {db}.report_daily ORDER BY ALL",
    "SELECT * EXCEPT computed_at FROM {db}.report_weekly ORDER BY ALL",
    "SELECT * EXCEPT computed_at FROM {db}.report_monthly ORDER BY ALL",
    "SELECT * FROM {db}.report_daily_pages ORDER BY ALL",
    "SELECT * FROM {db}.report_weekly_pages ORDER BY ALL",
    "SELECT * FROM {db}.report_monthly_sources ORDER BY ALL",
    "SELECT * FROM {db}.report_weekly_searches ORDER BY ALL",
    "SELECT * FROM {db}.members ORDER BY ALL",
    "SELECT segment_id, person_id FROM {db}.segment_members ORDER BY ALL",
];

const SEGMENTS: &[&str] = &[
    "id = \"buyers\"\n[rule]\ndid = \"order_completed\"\n",
    "id = \"shop_7d\"\n[rule]\nvisited = \"/shop\"\nwithin_days = 7\n",
    "id = \"gold\"\n[rule]\nany = [{ field = \"level\", op = \"eq\", value = \"gold\" }, { field = \"rfm_monetary\", op = \"gte\", value = 4 }]\n",
    "id = \"shoe_searchers\"\n[rule]\nsearched = \"shoe\"\n",
];

async fn case(seed: u64) {
    let db = fresh_db(&format!("incr{seed}")).await;
    for text in SEGMENTS {
        let definition = Definition::parse(text, Format::Toml).expect("valid segment");
        store::add(&db, &definition, None)
            .await
            .expect("add segment");
    }
    let mut rng = Rng(seed);
    let mut sent: Vec<Ev> = Vec::new();
    for batch in 0..BATCHES {
        let mut events: Vec<Ev> = (0..PER_BATCH)
            .map(|i| random_event(&mut rng, batch, i))
            .collect();
        // Retries: an earlier event again, same id and content, received now.
        for i in 0..2 {
            if !sent.is_empty() && rng.below(2) == 0 {
                let mut again = sent[rng.below(sent.len() as u64) as usize].clone();
                again.0.received_at = common::at(&format!("2026-11-22T0{batch}:30:0{i}Z"));
                events.push(again);
            }
        }
        insert(&db, &events).await;
        sent.extend(events);
        let report = run(&db, AS_OF).await;
        assert_eq!(report.full, batch == 0, "seed {seed} batch {batch}");
    }
    let incremental = full_rebuild_agrees(&db, &format!("seed {seed}")).await;
    assert!(
        !incremental[0].is_empty() && !incremental[3].is_empty(),
        "seed {seed}: the stream produced activity and profiles"
    );
}

/// Snapshots [`EVERYTHING`], runs a full rebuild as of [`AS_OF`], and asserts that it gives
/// the same rows. Returns the snapshot.
async fn full_rebuild_agrees(db: &spoor_segmenter::Db, case: &str) -> Vec<Vec<String>> {
    let mut incremental = Vec::new();
    for sql in EVERYTHING {
        incremental.push(rows(db, sql).await);
    }
    run_full(db, AS_OF).await;
    for (sql, before) in EVERYTHING.iter().zip(&incremental) {
        assert_eq!(
            &rows(db, sql).await,
            before,
            "{case}: incremental runs and a full rebuild disagree on\n{sql}"
        );
    }
    incremental
}

#[tokio::test]
async fn incremental_runs_agree_with_a_full_rebuild_on_random_streams() {
    for seed in 1..=6 {
        case(seed).await;
    }
}

/// A session moves to another person when a later event in it carries a second user id (a
/// shared device): the person who had it must be recomputed too, though none of their own
/// rows received an event.
#[tokio::test]
async fn a_session_taken_over_by_a_second_user_updates_the_first() {
    let db = fresh_db("takeover").await;
    insert(
        &db,
        &[
            common::page("2026-11-21T10:00:00Z", "a1", "s1", "/"),
            ev("identify", "2026-11-21T10:01:00Z", "a1")
                .user("u1")
                .session("s1"),
        ],
    )
    .await;
    run(&db, AS_OF).await;
    let sessions = "SELECT person_id, sessions_total FROM {db}.profiles_dynamic FINAL ORDER BY ALL";
    assert_eq!(rows(&db, sessions).await, ["u1\t1"]);
    insert(
        &db,
        &[common::page("2026-11-21T10:05:00Z", "a1", "s1", "/x").user("u2")],
    )
    .await;
    run(&db, AS_OF).await;
    full_rebuild_agrees(&db, "takeover").await;
    assert_eq!(rows(&db, sessions).await, ["u1\t0", "u2\t1"]);
}

/// A late session that starts before a person's first session, after their first event (a
/// backend order): their first-touch fields move to it.
#[tokio::test]
async fn a_late_session_before_the_first_becomes_the_first_touch() {
    let db = fresh_db("firsttouch").await;
    let mut order = ev("track", "2026-11-21T08:00:00Z", "srv-u1").user("u1");
    order.0.name = "order_completed".to_owned();
    order.0.properties = r#"{"order_id":"o1","revenue":10}"#.to_owned();
    insert(
        &db,
        &[
            order,
            common::page("2026-11-21T12:00:00Z", "a1", "s2", "/later").user("u1"),
        ],
    )
    .await;
    run(&db, AS_OF).await;
    let first = "SELECT person_id, first_seen_at, first_session_id, first_path FROM {db}.profiles_static FINAL";
    assert_eq!(
        rows(&db, first).await,
        ["u1\t2026-11-21 08:00:00.000\ts2\t/later"]
    );
    insert(
        &db,
        &[common::page("2026-11-21T10:00:00Z", "a1", "s1", "/earlier")
            .user("u1")
            .received("2026-11-21T13:00:00Z")],
    )
    .await;
    run(&db, AS_OF).await;
    assert_eq!(
        rows(&db, first).await,
        ["u1\t2026-11-21 08:00:00.000\ts1\t/earlier"]
    );
}
