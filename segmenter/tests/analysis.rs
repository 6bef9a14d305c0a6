//! Funnels and retention cohorts on hand-computed fixtures, against real ClickHouse; and their
//! dashboard pages.

mod common;

use axum::http::StatusCode;
use common::*;
use spoor_segmenter::analysis::funnel::{Breakdown, Conversion};
use spoor_segmenter::analysis::paths::{Around, Paths};
use spoor_segmenter::analysis::retention::Period;
use spoor_segmenter::analysis::{Cohort, Funnel, Retention, Step, StepKind};
use time::Duration;
use time::macros::date;

/// Steps: a page under /shop, a search, an order; window 1 day; step 1 from 2026-11-20 to
/// 2026-11-22 (exclusive).
///
/// | who | events | steps reached |
/// |---|---|---|
/// | a1 → u1 | /shop/boots, search, identify, order (server, as u1) 3 h later | 3 (joined by identify) |
/// | a2 | search, then /shop | 1 (out of order) |
/// | a3 → u3 | /shop, search, order 26 h after /shop | 2 (order outside the window) |
/// | a4 | /blog, search | 0 |
/// | a5, a bot | /shop, search | – |
/// | a6 | /shop the day before the range, search inside it | 0 |
/// | a7 | /shop at 23:00 on the range's last day, search the next morning | 2 |
/// | a8 | /shop and a search the day after the range | 0 (step 1 outside it) |
fn funnel_events() -> Vec<Ev> {
    let on = |device: &str, mut e: Ev| {
        e.0.device_class = device.to_owned();
        e
    };
    vec![
        on(
            "mobile",
            page("2026-11-21T09:00:00Z", "a1", "s1", "/shop/boots")
                .referrer("www.google.com", "search"),
        ),
        ev("search", "2026-11-21T09:05:00Z", "a1")
            .session("s1")
            .search("boots", Some(3)),
        ev("identify", "2026-11-21T09:10:00Z", "a1")
            .user("u1")
            .session("s1"),
        track(
            "2026-11-21T12:00:00Z",
            "u1",
            "order_completed",
            r#"{"order_id":"o1","revenue":10}"#,
        ),
        ev("search", "2026-11-21T08:00:00Z", "a2")
            .session("s2")
            .search("hats", Some(1)),
        on("desktop", page("2026-11-21T10:00:00Z", "a2", "s2", "/shop")),
        on(
            "mobile",
            page("2026-11-21T09:00:00Z", "a3", "s3", "/shop").referrer("t.co", "social"),
        ),
        ev("search", "2026-11-21T09:30:00Z", "a3")
            .session("s3")
            .search("socks", Some(2)),
        ev("identify", "2026-11-21T09:31:00Z", "a3")
            .user("u3")
            .session("s3"),
        track(
            "2026-11-22T11:00:00Z",
            "u3",
            "order_completed",
            r#"{"order_id":"o3","revenue":5}"#,
        ),
        page("2026-11-21T09:00:00Z", "a4", "s4", "/blog"),
        ev("search", "2026-11-21T09:01:00Z", "a4")
            .session("s4")
            .search("news", Some(0)),
        page("2026-11-21T09:00:00Z", "a5", "s5", "/shop").bot(),
        ev("search", "2026-11-21T09:01:00Z", "a5")
            .session("s5")
            .search("x", Some(0))
            .bot(),
        page("2026-11-19T22:00:00Z", "a6", "s6", "/shop"),
        ev("search", "2026-11-20T01:00:00Z", "a6")
            .session("s6")
            .search("y", Some(0)),
        on("tablet", page("2026-11-21T23:00:00Z", "a7", "s7", "/shop")),
        ev("search", "2026-11-22T08:00:00Z", "a7")
            .session("s7b")
            .search("z", Some(0)),
        page("2026-11-22T01:00:00Z", "a8", "s8", "/shop"),
        ev("search", "2026-11-22T01:01:00Z", "a8")
            .session("s8")
            .search("z", Some(0)),
    ]
}

fn shop_funnel(project: &str, window: Duration) -> Funnel {
    Funnel::new(
        project,
        vec![
            Step::new(StepKind::Page, "/shop").unwrap(),
            Step::new(StepKind::Event, "search").unwrap(),
            Step::new(StepKind::Event, "order_completed").unwrap(),
        ],
        window,
        at("2026-11-20T00:00:00Z"),
        at("2026-11-22T00:00:00Z"),
    )
    .unwrap()
}

#[tokio::test]
async fn funnel_counts_people_through_the_steps() {
    let db = fresh_db("funnel").await;
    insert(&db, &funnel_events()).await;

    // Before any run nobody's identity is resolved: a1's visit and u1's order are two people.
    let before = shop_funnel("p1", Duration::days(1))
        .people(&db)
        .await
        .unwrap();
    assert_eq!(before, [4, 3, 0]);

    run(&db, "2026-11-23T00:00:00Z").await;
    let people = shop_funnel("p1", Duration::days(1))
        .people(&db)
        .await
        .unwrap();
    assert_eq!(
        people,
        [4, 3, 1],
        "a1+u1, a2, a3+u3, a7 start; a2 stops; only u1 orders in time"
    );

    // A two-day window lets u3's order (26 h after step 1) in.
    let wider = shop_funnel("p1", Duration::days(2))
        .people(&db)
        .await
        .unwrap();
    assert_eq!(wider, [4, 3, 2]);
    // A 1-hour window: a7's search (9 h later) and u1's order (3 h later) fall out.
    let narrow = shop_funnel("p1", Duration::hours(1))
        .people(&db)
        .await
        .unwrap();
    assert_eq!(narrow, [4, 2, 0]);

    // By the step-1 event's device, and by the first touch's channel (a1 came from a search
    // engine, a3 from a social site, the others without a referrer).
    let by_device = shop_funnel("p1", Duration::days(1))
        .by(Some(Breakdown::Device))
        .conversion(&db)
        .await
        .unwrap();
    assert_eq!(
        by_device,
        Conversion {
            total: vec![4, 3, 1],
            groups: vec![
                ("mobile".into(), vec![2, 2, 1]),
                ("desktop".into(), vec![1, 0, 0]),
                ("tablet".into(), vec![1, 1, 0]),
            ],
        }
    );
    let by_channel = shop_funnel("p1", Duration::days(1))
        .by(Some(Breakdown::Channel))
        .conversion(&db)
        .await
        .unwrap();
    assert_eq!(
        by_channel.groups,
        [
            (String::new(), vec![2, 1, 0]),
            ("search".into(), vec![1, 1, 1]),
            ("social".into(), vec![1, 1, 0]),
        ]
    );
    assert_eq!(by_channel.total, [4, 3, 1]);

    // Another project has none of these events.
    let other = shop_funnel("p2", Duration::days(1))
        .people(&db)
        .await
        .unwrap();
    assert_eq!(other, [0, 0, 0]);

    // Hostile step values are values: they match nothing and break nothing.
    let hostile = Funnel::new(
        "p1",
        vec![
            Step::new(StepKind::Page, "/shop' OR 1=1 --").unwrap(),
            Step::new(StepKind::Event, "search'); DROP TABLE events; --").unwrap(),
        ],
        Duration::days(1),
        at("2026-11-20T00:00:00Z"),
        at("2026-11-22T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(hostile.people(&db).await.unwrap(), [0, 0]);
    assert_eq!(rows(&db, "SELECT count() FROM {db}.events").await, ["20"]);
}

/// Weekly cohorts up to Saturday 2026-11-21 (weeks of 11-02, 11-09, 11-16):
///
/// | who | active days | cohort | weeks active |
/// |---|---|---|---|
/// | b1 | 11-03, 11-10, 11-20, 11-23 (after the end) | 11-02 | 0, 1, 2 |
/// | b2 | 11-04, 11-18 | 11-02 | 0, 2 |
/// | a9 → u9 | 11-05 (anonymous), 11-11 (signed in) | 11-02 | 0, 1 |
/// | b3 | 11-12, 11-13 | 11-09 | 0 |
/// | b4 | 11-10, 11-17 | 11-09 | 0, 1 |
/// | b5 | 10-28, 11-03 | before the first cohort | – |
/// | b6 | 11-16 | 11-16 | 0 |
/// | b7 | 11-22 only | after the end | – |
/// | b8, a bot | 11-03 | – | – |
fn retention_events() -> Vec<Ev> {
    let visit = |day: &str, who: &str| {
        page(
            &format!("{day}T10:00:00Z"),
            who,
            &format!("{who}-{day}"),
            "/",
        )
    };
    vec![
        visit("2026-11-03", "b1"),
        visit("2026-11-10", "b1"),
        visit("2026-11-20", "b1"),
        visit("2026-11-23", "b1"),
        visit("2026-11-04", "b2"),
        visit("2026-11-18", "b2"),
        visit("2026-11-05", "a9"),
        visit("2026-11-11", "a9").user("u9"),
        visit("2026-11-12", "b3"),
        visit("2026-11-13", "b3"),
        visit("2026-11-10", "b4"),
        visit("2026-11-17", "b4"),
        visit("2026-10-28", "b5"),
        visit("2026-11-03", "b5"),
        visit("2026-11-16", "b6"),
        visit("2026-11-22", "b7"),
        visit("2026-11-03", "b8").bot(),
        // Not visits: b1 searches in its week 1, b4 adds to its wishlist in its week 1.
        ev("search", "2026-11-10T10:05:00Z", "b1")
            .session("b1-2026-11-10")
            .search("hats", Some(2)),
        {
            let mut e = ev("track", "2026-11-17T10:05:00Z", "b4").session("b4-2026-11-17");
            e.0.name = "wishlist_added".into();
            e
        },
    ]
}

fn cohort(start: time::Date, active: &[u64]) -> Cohort {
    Cohort {
        start,
        people: active[0],
        active: active.to_vec(),
    }
}

#[tokio::test]
async fn retention_follows_each_cohort() {
    let db = fresh_db("retention").await;
    insert(&db, &retention_events()).await;
    run(&db, "2026-11-24T00:00:00Z").await;

    let weekly = Retention::new("p1", Period::Week, 3, date!(2026 - 11 - 21))
        .unwrap()
        .cohorts(&db)
        .await
        .unwrap();
    assert_eq!(
        weekly,
        [
            cohort(date!(2026 - 11 - 02), &[3, 2, 2]),
            cohort(date!(2026 - 11 - 09), &[2, 1]),
            cohort(date!(2026 - 11 - 16), &[1]),
        ]
    );

    // Months: b5 is October's cohort (back in November); everyone else is November's.
    let monthly = Retention::new("p1", Period::Month, 2, date!(2026 - 11 - 21))
        .unwrap()
        .cohorts(&db)
        .await
        .unwrap();
    assert_eq!(
        monthly,
        [
            cohort(date!(2026 - 10 - 01), &[1, 1]),
            cohort(date!(2026 - 11 - 01), &[6]),
        ]
    );

    // Active as doing an event: a type, or a track event's name. Cohorts keep their size.
    let doing = |event: &'static str| {
        let db = db.clone();
        async move {
            Retention::new("p1", Period::Week, 3, date!(2026 - 11 - 21))
                .unwrap()
                .doing(Some(event))
                .unwrap()
                .cohorts(&db)
                .await
                .unwrap()
        }
    };
    let sized = |start, people, active: &[u64]| Cohort {
        start,
        people,
        active: active.to_vec(),
    };
    assert_eq!(
        doing("search").await,
        [
            sized(date!(2026 - 11 - 02), 3, &[0, 1, 0]),
            sized(date!(2026 - 11 - 09), 2, &[0, 0]),
            sized(date!(2026 - 11 - 16), 1, &[0]),
        ]
    );
    assert_eq!(
        doing("wishlist_added").await,
        [
            sized(date!(2026 - 11 - 02), 3, &[0, 0, 0]),
            sized(date!(2026 - 11 - 09), 2, &[0, 1]),
            sized(date!(2026 - 11 - 16), 1, &[0]),
        ]
    );
    assert_eq!(doing("page_view").await, weekly);

    // A week with nobody new is a cohort of 0 people, not a missing row.
    let later = Retention::new("p1", Period::Week, 2, date!(2026 - 12 - 01))
        .unwrap()
        .cohorts(&db)
        .await
        .unwrap();
    assert_eq!(
        later,
        [
            cohort(date!(2026 - 11 - 23), &[0, 0]),
            cohort(date!(2026 - 11 - 30), &[0]),
        ]
    );
}

#[tokio::test]
async fn the_pages_show_funnels_and_cohorts() {
    let db = fresh_db("analysis_pages").await;
    let mut events = funnel_events();
    events.extend(retention_events());
    insert(&db, &events).await;
    run(&db, "2026-11-24T00:00:00Z").await;

    page_with(
        &db,
        "/funnels?project=p1&k=page&v=%2Fshop&k=event&v=search&k=event&v=order_completed&window=1d&days=2&at=2026-11-21",
        &[
        "1. Viewed /shop</td><td class=\"num\">4<",
        "2. Did search</td><td class=\"num\">3<",
        "<td class=\"num\">75.0%</td>",
        "3. Did order_completed</td><td class=\"num\">1<",
        "<div class=\"label\">Conversion</div><div class=\"value\">25.0%</div>",
        "<option value=\"1d\" selected>",
        ],
    )
    .await;

    let (status, html) = get(
        &db,
        "/funnels?project=p1&k=page&v=%2Fshop&k=event&v=search&k=event&v=order_completed&window=1d&days=2&at=2026-11-21&by=device",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("<h2>By device</h2>")
            && html.contains("<tr><td>mobile</td><td class=\"num\">2</td><td class=\"num\">2</td><td class=\"num\">1</td><td class=\"num\">50.0%</td></tr>")
            && html.contains("<option value=\"device\" selected>"),
        "{html}"
    );

    // Who reached step 2, and who stopped there or at step 1, as CSV.
    let funnel = "/funnels/people.csv?project=p1&k=page&v=%2Fshop&k=event&v=search&k=event&v=order_completed&window=1d&days=2&at=2026-11-21";
    assert!(html.contains(
        "/funnels/people.csv?project=p1&amp;k=page&amp;v=%2Fshop&amp;k=event&amp;v=search"
    ));
    for (query, expected) in [
        (
            "&reached=2",
            "\"p1\",\"anon:a7\",2\n\"p1\",\"u1\",3\n\"p1\",\"u3\",2\n",
        ),
        (
            "&reached=2&stopped=1",
            "\"p1\",\"anon:a7\",2\n\"p1\",\"u3\",2\n",
        ),
        ("&reached=1&stopped=1", "\"p1\",\"anon:a2\",1\n"),
        ("&reached=3", "\"p1\",\"u1\",3\n"),
    ] {
        let (status, csv) = get(&db, &format!("{funnel}{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}: {csv}");
        assert_eq!(
            csv,
            format!("\"project_id\",\"person_id\",\"steps\"\n{expected}"),
            "{query}"
        );
    }
    for query in ["&reached=4", "&reached=0", "&reached=x", ""] {
        let (status, _) = get(&db, &format!("{funnel}{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }

    // No steps yet: the form and examples; bad input: 400 with what to change, escaped.
    let (status, html) = get(&db, "/funnels?project=p1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Add at least two steps") && html.contains("name=\"k\""));
    for (uri, message) in [
        (
            "/funnels?project=p1&k=page&v=shop&k=event&v=x",
            "step 1: a page step&#39;s path starts with",
        ),
        (
            "/funnels?project=p1&k=page&v=/&k=event&v=x&window=7w",
            "the window is a number and a unit",
        ),
        (
            "/funnels?project=p1&k=page&v=/&k=event&v=x&window=91d",
            "between 1 minute and 90 days",
        ),
        (
            "/funnels?project=p1&k=page&v=/&k=bogus&v=x",
            "step 2: a step is a",
        ),
        (
            "/funnels?project=p1&k=page&v=/&k=event&v=x&at=21.11.2026",
            "YYYY-MM-DD",
        ),
        (
            "/funnels?project=p1&k=page&v=/&k=event&v=%3Cscript%3E&days=0",
            "days is a number",
        ),
    ] {
        let (status, html) = get(&db, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(html.contains(message), "{uri}: no {message:?} in {html}");
        assert!(!html.contains("<script>"), "{uri}: unescaped");
    }

    page_with(
        &db,
        "/retention?project=p1&period=week&cohorts=3&at=2026-11-21",
        &[
            "3 cohorts up to 2026-11-21",
            "<td>2026-11-02</td><td class=\"num\">3</td>",
            "title=\"2 of 3\">66.7%</td>",
            // Seven of the funnel fixture's visitors are that week's too (a8 comes after it).
            "<td>2026-11-16</td><td class=\"num\">7</td>",
            // Week 1 over the two cohorts that have one: (2 + 1) of (3 + 2).
            "title=\"3 of 5\">60.0%</td>",
        ],
    )
    .await;
    // Active as searching: b1 in week 1 of its cohort; five of the seven of 2026-11-16's.
    page_with(
        &db,
        "/retention?project=p1&period=week&cohorts=3&at=2026-11-21&event=search",
        &[
        "name=\"event\" value=\"search\"",
        "<td>2026-11-02</td><td class=\"num\">3</td><td class=\"heat\" style=\"background:rgba(59,91,219,0.06);color:inherit\" title=\"0 of 3\">0.0%</td>",
        "title=\"1 of 3\">33.3%</td>",
        "title=\"5 of 7\">71.4%</td>",
        ],
    )
    .await;
    let (status, html) = get(&db, "/retention?project=p1&period=day").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("cohorts are by"));
    let (status, _) = get(&db, "/retention?project=p1&cohorts=400").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_commands_print_funnels_and_cohorts() {
    let db = fresh_db("analysis_cli").await;
    let mut events = funnel_events();
    events.extend(retention_events());
    insert(&db, &events).await;
    run(&db, "2026-11-24T00:00:00Z").await;

    assert_eq!(
        stdout_of(
            &db,
            &[
                "funnel",
                "--project",
                "p1",
                "--step",
                "page:/shop",
                "--step",
                "event:search",
                "--step",
                "event:order_completed",
                "--window",
                "1d",
                "--days",
                "2",
                "--at",
                "2026-11-21",
                "--by",
                "device",
                "--csv",
            ],
        ),
        "group,step,label,people\n\
         ,1,Viewed /shop,4\n,2,Did search,3\n,3,Did order_completed,1\n\
         mobile,1,Viewed /shop,2\nmobile,2,Did search,2\nmobile,3,Did order_completed,1\n\
         desktop,1,Viewed /shop,1\ndesktop,2,Did search,0\ndesktop,3,Did order_completed,0\n\
         tablet,1,Viewed /shop,1\ntablet,2,Did search,1\ntablet,3,Did order_completed,0\n"
    );

    assert_eq!(
        stdout_of(
            &db,
            &[
                "retention",
                "--project",
                "p1",
                "--cohorts",
                "3",
                "--at",
                "2026-11-21",
                "--csv",
            ],
        ),
        "cohort,people,period,active\n\
         2026-11-02,3,0,3\n2026-11-02,3,1,2\n2026-11-02,3,2,2\n\
         2026-11-09,2,0,2\n2026-11-09,2,1,1\n\
         2026-11-16,7,0,7\n"
    );

    // A question that cannot be asked: exit code 2 and what to change.
    for (args, message) in [
        (
            &[
                "funnel",
                "--project",
                "p1",
                "--step",
                "shop",
                "--step",
                "event:x",
            ][..],
            "step 1 is KIND:VALUE",
        ),
        (
            &["funnel", "--project", "p1", "--step", "page:/"][..],
            "at least 2 steps",
        ),
        (
            &[
                "funnel",
                "--project",
                "p1",
                "--step",
                "page:/",
                "--step",
                "event:x",
                "--by",
                "city",
            ][..],
            "broken down by one of",
        ),
        (
            &["retention", "--project", "p1", "--period", "day"][..],
            "cohorts are by",
        ),
    ] {
        let out = segmenter_command(&db, args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Sessions around /shop on 2026-11-21: s1 `/ → /shop → /shop (reload) → /cart → /shop`,
/// s2 `/shop → /blog`, s3 `/blog → /shop → /cart`; a bot's s4 `/ → /shop → /cart`; s5 views
/// /shop the day before.
#[tokio::test]
async fn paths_around_a_page() {
    let db = fresh_db("paths").await;
    let at = |m: u32| format!("2026-11-21T10:{m:02}:00Z");
    let mut events = Vec::new();
    for (who, session, pages) in [
        ("a1", "s1", &["/", "/shop", "/shop", "/cart", "/shop"][..]),
        ("a2", "s2", &["/shop", "/blog"][..]),
        ("a3", "s3", &["/blog", "/shop", "/cart"][..]),
        ("a4", "s4", &["/", "/shop", "/cart"][..]),
    ] {
        for (m, path) in pages.iter().enumerate() {
            let e = page(&at(m as u32), who, session, path);
            events.push(if who == "a4" { e.bot() } else { e });
        }
    }
    events.push(page("2026-11-20T10:00:00Z", "a5", "s5", "/shop"));
    insert(&db, &events).await;

    let around = Paths::new(
        "p1",
        "/shop",
        at_("2026-11-21T00:00:00Z"),
        at_("2026-11-22T00:00:00Z"),
    )
    .unwrap()
    .around(&db)
    .await
    .unwrap();
    let pairs = |v: &[(&str, u64)]| {
        v.iter()
            .map(|(p, n)| ((*p).to_owned(), *n))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        around,
        Around {
            views: 4,
            came_from: pairs(&[("(entry)", 1), ("/", 1), ("/blog", 1), ("/cart", 1)]),
            went_to: pairs(&[("/cart", 2), ("(exit)", 1), ("/blog", 1)]),
        }
    );
    // A page nobody viewed; and hostile text is a value like any other.
    for page in ["/nowhere", "/shop' OR '1'='1"] {
        let none = Paths::new(
            "p1",
            page,
            at_("2026-11-21T00:00:00Z"),
            at_("2026-11-22T00:00:00Z"),
        )
        .unwrap()
        .around(&db)
        .await
        .unwrap();
        assert_eq!(none, Around::default(), "{page}");
    }
    assert!(
        Paths::new(
            "p1",
            "shop",
            at_("2026-11-21T00:00:00Z"),
            at_("2026-11-22T00:00:00Z")
        )
        .is_err()
    );

    let (status, html) = get(&db, "/paths?project=p1&page=%2Fshop&days=1&at=2026-11-21").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Views of /shop</div><div class=\"value\">4</div>"),
        "{html}"
    );
    assert!(html.contains("page=%2Fcart&amp;days=1&amp;at=2026-11-21\">/cart</a></td><td class=\"num\">2</td><td class=\"num\">50.0%</td>"), "{html}");
    let (status, html) = get(&db, "/paths?project=p1&days=1&at=2026-11-21").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Most viewed pages")
            && html.contains(">/shop</a></td><td class=\"num\">5</td>"), // page views, the reload too
        "{html}"
    );
    let (status, html) = get(&db, "/paths?project=p1&page=shop").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("a page is a path"));
}

fn at_(text: &str) -> time::OffsetDateTime {
    common::at(text)
}

/// What the command printed, after checking that it succeeded.
fn stdout_of(db: &spoor_segmenter::Db, args: &[&str]) -> String {
    let out = segmenter_command(db, args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
