//! Segments previewed, saved and deleted from the dashboard, against real ClickHouse.

mod common;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::*;
use http_body_util::BodyExt;
use spoor_segmenter::dashboard::{AppState, app};
use spoor_segmenter::lease::{self, Lease};
use spoor_segmenter::segment::store;
use tower::ServiceExt;

/// u1 viewed /shop and ordered; a2 viewed /shop/hats; a3 only read the blog.
async fn visited() -> spoor_segmenter::Db {
    let db = fresh_db("dashboard_edit").await;
    insert(
        &db,
        &[
            page("2026-11-20T09:00:00Z", "a1", "s1", "/shop").user("u1"),
            track(
                "2026-11-20T09:05:00Z",
                "u1",
                "order_completed",
                r#"{"order_id":"o1","revenue":20}"#,
            ),
            page("2026-11-20T10:00:00Z", "a2", "s2", "/shop/hats"),
            page("2026-11-20T11:00:00Z", "a3", "s3", "/blog"),
        ],
    )
    .await;
    run(&db, "2026-11-21T00:00:00Z").await;
    db
}

struct Answer {
    status: StatusCode,
    location: String,
    body: String,
}

async fn send(db: &spoor_segmenter::Db, request: Request<Body>) -> Answer {
    let response = app(AppState { db: db.clone() })
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The editor's form posted, with `headers` (name, value) added.
fn post(uri: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Request<Body> {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    let mut request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:8490");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from(body.join("&"))).unwrap()
}

/// The editor's form posted for project p1: `definition`, `action` (preview or save).
fn editor_form(definition: &str, action: &str, headers: &[(&str, &str)]) -> Request<Body> {
    post(
        "/segments/new",
        &[
            ("project", "p1"),
            ("definition", definition),
            ("action", action),
        ],
        headers,
    )
}

const SHOPPERS: &str = "id = \"shoppers\"\nname = \"Shoppers\"\nproject = \"p1\"\n[rule]\nvisited = \"/shop\"\nwithin_days = 30\n";

#[tokio::test]
async fn preview_then_save_then_delete() {
    let db = visited().await;

    let editor = send(
        &db,
        Request::get("/segments/new?project=p1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(editor.status, StatusCode::OK);
    assert!(
        editor.body.contains("<textarea name=\"definition\"")
            && editor.body.contains("project = &quot;p1&quot;")
    );

    // Preview: who the rule selects now, nothing saved.
    let same_site = [("sec-fetch-site", "same-origin")];
    let preview = send(&db, editor_form(SHOPPERS, "preview", &same_site)).await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(
        preview
            .body
            .contains("People it selects now</div><div class=\"value\">2</div>"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains(">anon:a2</a>") && preview.body.contains(">u1</a>"));
    assert!(!preview.body.contains(">anon:a3</a>"));
    assert!(
        store::list(&db).await.unwrap().is_empty(),
        "a preview saves nothing"
    );

    // An invalid definition comes back with the reason, and the text as typed.
    let bad = SHOPPERS.replace("visited", "visitd");
    for action in ["preview", "save"] {
        let answer = send(&db, editor_form(&bad, action, &same_site)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{action}");
        assert!(
            answer.body.contains("<div class=\"error\">") && answer.body.contains("visitd"),
            "{}",
            answer.body
        );
    }
    assert!(store::list(&db).await.unwrap().is_empty());

    // Save: stored, then the run computes its members.
    let saved = send(&db, editor_form(SHOPPERS, "save", &same_site)).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    assert_eq!(saved.location, "/segments/shoppers?project=p1");
    let list = store::list(&db).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].segment_id.as_str(), list[0].name.as_str()),
        ("shoppers", "Shoppers")
    );
    run(&db, "2026-11-21T00:00:00Z").await;
    assert_eq!(store::list(&db).await.unwrap()[0].members, 2);

    // Its page offers edit and delete; the editor opens with its definition.
    let page = send(
        &db,
        Request::get("/segments/shoppers?project=p1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        page.body
            .contains("/segments/new?project=p1&amp;from=shoppers")
            && page.body.contains("/segments/shoppers/delete?project=p1")
    );
    let edit = send(
        &db,
        Request::get("/segments/new?project=p1&from=shoppers")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(
        edit.body.contains("visited = &quot;/shop&quot;"),
        "{}",
        edit.body
    );

    // Delete asks first, then deletes; the history stays.
    let ask = send(
        &db,
        Request::get("/segments/shoppers/delete?project=p1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Delete Shoppers?") && ask.body.contains("Its 2 current members"));
    assert!(
        !store::list(&db).await.unwrap().is_empty(),
        "asking deletes nothing"
    );
    let deleted = send(
        &db,
        post("/segments/shoppers/delete?project=p1", &[], &same_site),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.body);
    assert_eq!(deleted.location, "/segments?project=p1");
    assert!(store::list(&db).await.unwrap().is_empty());
    assert_eq!(
        rows(
            &db,
            "SELECT count() FROM {db}.segment_changes WHERE segment_id = 'shoppers'"
        )
        .await,
        ["2"]
    );
}

#[tokio::test]
async fn writes_from_other_sites_are_refused() {
    let db = visited().await;
    let save = [
        ("project", "p1"),
        ("definition", SHOPPERS),
        ("action", "save"),
    ];
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("origin", "http://127.0.0.1:8491")],
    ] {
        let answer = send(&db, post("/segments/new", &save, &headers)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    assert!(store::list(&db).await.unwrap().is_empty());

    // The browser's own form (its origin is this host), and a script without browser headers.
    let answer = send(
        &db,
        post(
            "/segments/new",
            &save,
            &[("origin", "http://127.0.0.1:8490")],
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    let delete = send(&db, post("/segments/shoppers/delete", &[], &[])).await;
    assert_eq!(delete.status, StatusCode::SEE_OTHER, "{}", delete.body);
    assert!(store::list(&db).await.unwrap().is_empty());
    // A cross-site delete of a saved segment is refused too.
    send(&db, post("/segments/new", &save, &[])).await;
    let refused = send(
        &db,
        post(
            "/segments/shoppers/delete",
            &[],
            &[("sec-fetch-site", "cross-site")],
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(store::list(&db).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_save_waits_for_a_running_segmenter() {
    let db = visited().await;
    let other = Lease::try_acquire(&db, "another-segmenter", lease::TTL)
        .await
        .unwrap();
    let release = {
        let db = db.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            other.release(&db).await.unwrap();
        })
    };
    let started = Instant::now();
    let answer = send(&db, editor_form(SHOPPERS, "save", &[])).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "saved while another segmenter held the lease"
    );
    release.await.unwrap();
    assert_eq!(store::list(&db).await.unwrap().len(), 1);
}
