//! The dashboard's router against real ClickHouse data, without sockets.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use spoor_segmenter::dashboard::{AppState, app};
use spoor_segmenter::segment::{Definition, Format, store};
use tower::ServiceExt;

async fn shop() -> spoor_segmenter::Db {
    let db = fresh_db("dashboard").await;
    insert(
        &db,
        &[
            page("2026-11-21T09:00:00Z", "a1", "s1", "/").referrer("news.example", "other").utm("mail", "email", "black<friday>"),
            page("2026-11-21T09:01:00Z", "a1", "s1", "/shoes").user("u1"),
            ev("identify", "2026-11-21T09:01:30Z", "a1").user("u1").session("s1").traits(r#"{"level":"gold","address":{"city":"Lyon","country":"FR"},"email_sha256":"5f0c"}"#),
            ev("search", "2026-11-21T09:02:00Z", "a1").user("u1").session("s1").search("boots", Some(0)),
            track("2026-11-21T09:03:00Z", "u1", "member_signup", r#"{"member_id":"M-1"}"#),
            track("2026-11-21T09:04:00Z", "u1", "points_earned", r#"{"points":120,"reason":"welcome"}"#),
            track("2026-11-21T09:05:00Z", "u1", "order_completed", r#"{"order_id":"o1","revenue":99.5,"currency":"EUR"}"#),
            track("2026-11-21T10:00:00Z", "u1", "ticket_opened", r#"{"ticket_id":"T-9","channel":"chat","priority":"high","subject":"Where is <my> order?"}"#),
            track("2026-11-21T10:20:00Z", "agent", "ticket_replied", r#"{"ticket_id":"T-9","by":"agent"}"#),
            page("2026-11-21T11:00:00Z", "a2", "s2", "/blog"),
        ],
    )
    .await;
    let def = Definition::parse(
        "id = \"buyers\"\nname = \"Buyers\"\ndescription = \"Ordered at least once\"\n[rule]\ndid = \"order_completed\"\n",
        Format::Toml,
    )
    .unwrap();
    store::add(&db, &def, None).await.unwrap();
    run(&db, "2026-11-21T12:00:00Z").await;
    db
}

#[tokio::test]
async fn every_page_shows_the_numbers() {
    let db = shop().await;

    let (status, _) = get(&db, "/").await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    let (status, html) = get(&db, "/reports?project=p1&period=daily").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for expected in [
        "Daily report",
        "<div class=\"label\">Visitors</div><div class=\"value\">2</div>",
        "<div class=\"label\">Revenue</div><div class=\"value\">99.50</div>",
        "<div class=\"label\">Median 1st response (min)</div><div class=\"value\">20</div>",
        "/shoes",
        "news.example",
        "black&lt;friday&gt;",
        "boots",
        "Searches that found nothing",
    ] {
        assert!(html.contains(expected), "reports page lacks {expected:?}");
    }
    let (_, weekly) = get(&db, "/reports?project=p1&period=weekly").await;
    assert!(weekly.contains("Weekly report") && weekly.contains("2026-11-16"));
    let (_, monthly) = get(&db, "/reports?period=monthly").await;
    assert!(
        monthly.contains("2026-11-01"),
        "defaults to the first project"
    );

    let (status, html) = get(&db, "/segments?project=p1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("href=\"/segments/buyers?project=p1\"")
            && html.contains("Ordered at least once")
    );

    let (status, html) = get(&db, "/segments/buyers?project=p1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<span class=\"tag entered\">entered</span>"),
        "{html}"
    );
    assert!(html.contains("/profiles?project=p1&amp;person=u1"));
    assert!(html.contains("order_completed"));
    assert!(html.contains("href=\"/segments/buyers/members.csv\""));

    let response = app(AppState { db: db.clone() })
        .oneshot(
            Request::get("/segments/buyers/members.csv")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"buyers-members.csv\""
    );
    let csv = response.into_body().collect().await.unwrap().to_bytes();
    let csv = String::from_utf8_lossy(&csv);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[1].starts_with("\"u1\",\"p1\",\"u1\",\"M-1\",\"5f0c\",\"\","),
        "{csv}"
    );
    let (status, _) = get(&db, "/segments/nope/members.csv").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, html) = get(&db, "/profiles?project=p1&person=u1").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "Static profile",
        "Dynamic profile",
        "news.example",
        "gold",
        "buyers",
        "M-1",
    ] {
        assert!(html.contains(expected), "profile page lacks {expected:?}");
    }
    // Looking up by anonymous id finds the user it belongs to.
    let (status, html) = get(&db, "/profiles?project=p1&person=a1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<h2>u1</h2>"));
    let (_, html) = get(&db, "/profiles?project=p1").await;
    assert!(html.contains("anon:a2") && html.contains("Recently seen"));

    let (status, html) = get(&db, "/members?project=p1").await;
    assert_eq!(status, StatusCode::OK);
    for expected in ["<td>Lyon</td>", ">120<", "gold"] {
        assert!(html.contains(expected), "members page lacks {expected:?}");
    }

    let (status, html) = get(&db, "/tickets?project=p1").await;
    assert_eq!(status, StatusCode::OK);
    for expected in [
        "T-9",
        "Where is &lt;my&gt; order?",
        "answered",
        "<td class=\"num\">20</td>",
    ] {
        assert!(html.contains(expected), "tickets page lacks {expected:?}");
    }
    let (_, html) = get(&db, "/tickets?project=p1&status=resolved").await;
    assert!(!html.contains("T-9"));
}

#[tokio::test]
async fn unknown_things_are_404_with_a_sentence() {
    let db = shop().await;
    let (status, html) = get(&db, "/segments/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("There is no segment"));
    let (status, html) = get(&db, "/profiles?project=p1&person=ghost").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("No profile for"));
    let (status, _) = get(&db, "/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Hostile input is escaped, never interpreted.
    let (status, html) = get(&db, "/profiles?project=p1&person=%3Cscript%3E'").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!html.contains("<script>") && html.contains("&lt;script&gt;"));
    let (status, _) = get(&db, "/reports?project=p1&at=2026-13-99'").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn pages_forbid_caching_framing_and_every_script_but_their_own() {
    use base64::Engine as _;
    use sha2::Digest as _;
    let db = shop().await;
    for uri in [
        "/reports?project=p1",
        "/profiles?project=p1&person=u1",
        "/funnels?project=p1&k=page&v=/&k=event&v=order_completed",
        "/retention?project=p1",
        "/paths?project=p1&page=/shoes",
        "/segments/new?project=p1",
        "/segments/buyers/members.csv",
        "/nowhere",
    ] {
        let response = app(AppState { db: db.clone() })
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8_lossy(&body);
        assert_eq!(headers["cache-control"], "no-store", "{uri}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{uri}");
        assert_eq!(headers["x-frame-options"], "DENY", "{uri}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{uri}");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(
            policy.starts_with("default-src 'none'; ") && policy.contains("frame-ancestors 'none'"),
            "{uri}: {policy}"
        );
        // No script element; every inline handler is allowed by its hash.
        assert!(!html.contains("<script"), "{uri}");
        let mut allowed = 0;
        for (at, _) in html.match_indices(" on") {
            let rest = &html[at + 3..];
            let Some(eq) = rest.find("=\"") else { continue };
            if !rest[..eq].chars().all(|c| c.is_ascii_lowercase()) || eq == 0 {
                continue;
            }
            let handler = &rest[eq + 2..][..rest[eq + 2..].find('"').unwrap()];
            let hash = base64::engine::general_purpose::STANDARD
                .encode(sha2::Sha256::digest(handler.as_bytes()));
            assert!(
                policy.contains(&format!("'sha256-{hash}'")),
                "{uri}: handler {handler:?} is not in {policy}"
            );
            allowed += 1;
        }
        if uri.starts_with("/reports") {
            assert!(allowed > 0, "the project picker's handler was found");
        }
    }
}

#[tokio::test]
async fn every_page_says_how_fresh_its_numbers_are() {
    let db = fresh_db("dashboard_fresh").await;
    let (status, html) = get(&db, "/segments").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<div class=\"fresh stale\""), "{html}");
    assert!(html.contains(">No run yet</div>"), "{html}");
    // A run that finished five hours ago: the segmenter has stopped.
    db.client()
        .query(&format!(
            "INSERT INTO {}.segmenter_runs (run_id, mode, started_at, finished_at, as_of, watermark, config, new_events, affected_days)
             SELECT 1, 'incremental', now64(3) - INTERVAL 5 HOUR, now64(3) - INTERVAL 5 HOUR,
                    now64(3), now64(3), '', 0, 0",
            db.database()
        ))
        .execute()
        .await
        .unwrap();
    for uri in [
        "/reports",
        "/funnels",
        "/paths",
        "/retention",
        "/segments",
        "/profiles",
        "/members",
        "/tickets",
    ] {
        let (_, html) = get(&db, uri).await;
        assert!(html.contains("<div class=\"fresh stale\""), "{uri}: {html}");
        assert!(html.contains(">Updated 5 h ago</div>"), "{uri}: {html}");
    }
    run(&db, "2026-11-21T12:00:00Z").await;
    let (_, html) = get(&db, "/reports").await;
    assert!(
        html.contains("<div class=\"fresh\" title=\"Latest segmenter run finished at 20"),
        "{html}"
    );
    assert!(html.contains(">Updated just now</div>"), "{html}");
}
