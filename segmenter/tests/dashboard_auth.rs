//! The dashboard's sign-in, on real ClickHouse data: the router behind it (no sockets), the
//! `users` commands, and `serve` over a real socket.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use argon2::Params;
use argon2::password_hash::PasswordVerifier;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use base64::Engine as _;
use common::*;
use http_body_util::BodyExt;
use spoor_segmenter::dashboard::auth::{Auth, CHECKS_PER_MINUTE, Users, hash_with};
use spoor_segmenter::dashboard::{AppState, app, signed_in};
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery";
const BO_PASSWORD: &str = "bo's own password";

async fn visited() -> spoor_segmenter::Db {
    let db = fresh_db("auth").await;
    insert(&db, &[page("2026-11-21T09:00:00Z", "a1", "s1", "/shoes")]).await;
    run(&db, "2026-11-21T12:00:00Z").await;
    db
}

fn router(db: &spoor_segmenter::Db) -> Router {
    let mut users = Users::default();
    // Cheap hashing parameters: the PHC string records them and checking uses them.
    let cheap = Params::new(8, 1, 1, None).unwrap();
    users
        .set("ana", hash_with(PASSWORD, cheap.clone()).unwrap())
        .unwrap();
    users
        .set("bo", hash_with(BO_PASSWORD, cheap).unwrap())
        .unwrap();
    signed_in(app(AppState { db: db.clone() }), Auth::new(users))
}

fn basic(name: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
    format!("Basic {encoded}")
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(router: &Router, uri: &str, authorization: Option<&str>, client: u8) -> Answer {
    let mut request = Request::get(uri);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let mut request = request.body(Body::empty()).unwrap();
    let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, client)), 40000);
    request.extensions_mut().insert(ConnectInfo(address));
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

#[tokio::test]
async fn every_page_but_health_needs_a_user() {
    let db = visited().await;
    let router = router(&db);
    for uri in [
        "/",
        "/reports?project=p1",
        "/funnels?project=p1&k=page&v=/&k=event&v=x",
        "/retention",
        "/paths?project=p1&page=/",
        "/segments/new",
        "/segments",
        "/profiles?project=p1&person=anon:a1",
        "/members",
        "/tickets",
        "/segments/x/members.csv",
        "/nowhere",
    ] {
        let answer = get(&router, uri, None, 1).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(
            answer.headers[header::WWW_AUTHENTICATE],
            "Basic realm=\"Spoor dashboard\", charset=\"UTF-8\"",
            "{uri}"
        );
        assert!(!answer.body.contains("/shoes"), "{uri}: {}", answer.body);
    }
    for wrong in [
        basic("ana", "correct horse batterY"),
        basic("cy", PASSWORD),
        basic("bo", PASSWORD),
        basic("ana", ""),
        "Bearer abc".to_owned(),
        "Basic not-base64!".to_owned(),
    ] {
        let answer = get(&router, "/reports?project=p1", Some(&wrong), 2).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(!answer.body.contains("/shoes"), "{wrong}");
    }
    let ana = basic("ana", PASSWORD);
    let answer = get(&router, "/reports?project=p1", Some(&ana), 3).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body.contains("/shoes"), "{}", answer.body);
    // The CSV download is behind the same door; past it, an unknown segment is a 404.
    let answer = get(&router, "/segments/x/members.csv", Some(&ana), 3).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = get(&router, "/healthz", None, 1).await;
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (StatusCode::OK, "ok")
    );
}

#[tokio::test]
async fn guessing_is_limited_per_address_and_a_signed_in_user_stays_in() {
    let db = visited().await;
    let router = router(&db);
    let ana = basic("ana", PASSWORD);
    // Signed in from address 7 before the guessing starts there. (Until the limit is reached,
    // the requests go to a page that reads nothing — past the door, a 404 — so that they all
    // fall within a few milliseconds: a slow page could let the quota refill, one check per
    // six seconds.)
    assert_eq!(
        get(&router, "/nowhere", Some(&ana), 7).await.status,
        StatusCode::NOT_FOUND
    );
    for attempt in 0..CHECKS_PER_MINUTE - 1 {
        let guess = basic("ana", &format!("guess {attempt}"));
        let answer = get(&router, "/nowhere", Some(&guess), 7).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let answer = get(&router, "/nowhere", Some(&basic("ana", "one more")), 7).await;
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.body
    );
    let wait: u64 = answer.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    assert!(
        answer.body.contains("Too many sign-in attempts"),
        "{}",
        answer.body
    );
    // Even a right password is not checked from there now…
    let bo = basic("bo", BO_PASSWORD);
    let answer = get(&router, "/nowhere", Some(&bo), 7).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    // …but the session signed in before keeps working, and other addresses are not limited.
    assert_eq!(
        get(&router, "/segments", Some(&ana), 7).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/segments", Some(&bo), 8).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&router, "/segments", Some(&basic("ana", "nope")), 8)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

fn cli(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spoor-segmenter"))
        .args(args)
        .env_remove("SPOOR_DASHBOARD_USERS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn users_commands_write_the_file_and_serve_uses_it() {
    let dir = std::env::temp_dir().join(format!("spoor-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users");
    let _ = std::fs::remove_file(&file);
    let f = file.to_str().unwrap();

    // Beyond loopback, no sign-in is refused before ClickHouse is even asked (it is down here).
    let down = ["--clickhouse-url", "http://127.0.0.1:9"];
    let (code, _, err) = cli(
        &[&["serve", "--listen", "0.0.0.0:0"][..], &down].concat(),
        "",
    );
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("pass --users FILE"), "{err}");

    let (code, out, err) = cli(
        &["users", "add", "ana", "--file", f],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), format!("Added ana in {f}"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let (code, _, err) = cli(&["users", "add", "bo", "--file", f], "short\n");
    assert_eq!(code, Some(5));
    assert!(err.contains("shorter than 10 characters"), "{err}");
    let (code, _, err) = cli(
        &["users", "add", "b o", "--file", f],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, Some(5));
    assert!(err.contains("is not a user name"), "{err}");
    let (code, _, _) = cli(&["users", "add", "bo", "--file", f], "another long one\n");
    assert_eq!(code, Some(0));
    let (_, out, _) = cli(&["users", "list", "--file", f], "");
    assert_eq!(out, "ana\nbo\n");
    let users = std::fs::read_to_string(&file).unwrap();
    let ana_hash = users.lines().find_map(|l| l.strip_prefix("ana:")).unwrap();
    assert!(ana_hash.starts_with("$argon2id$"), "{users}");
    assert!(
        argon2::Argon2::default()
            .verify_password(PASSWORD.as_bytes(), ana_hash)
            .is_ok()
    );
    let (code, _, err) = cli(&["users", "remove", "cy", "--file", f], "");
    assert_eq!(code, Some(5));
    assert!(err.contains("has no user \"cy\""), "{err}");
    let (code, _, _) = cli(&["users", "remove", "bo", "--file", f], "");
    assert_eq!(code, Some(0));
    let (_, out, _) = cli(&["users", "list", "--file", f], "");
    assert_eq!(out, "ana\n");

    // `serve` with the file, over a real socket.
    let db = visited().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let url = clickhouse_url();
    let mut server = Command::new(env!("CARGO_BIN_EXE_spoor-segmenter"))
        .args(["serve", "--listen", &listen, "--users", f])
        .args(["--clickhouse-url", &url, "--database", db.database()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = |path: &str, authorization: Option<&str>| -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
        let extra = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n"
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    let started = Instant::now();
    while http("/healthz", None).is_none_or(|a| !a.starts_with("HTTP/1.1 200")) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = http("/reports?project=p1", None).unwrap();
    let shown = http("/reports?project=p1", Some(&basic("ana", PASSWORD))).unwrap();
    let removed = http(
        "/reports?project=p1",
        Some(&basic("bo", "another long one")),
    )
    .unwrap();
    // The file changes while serve runs: a user added can sign in, one removed no longer can,
    // even with a sign-in remembered from before.
    let (code, _, _) = cli(&["users", "add", "cy", "--file", f], "cy's long password\n");
    assert_eq!(code, Some(0));
    let (code, _, _) = cli(&["users", "remove", "ana", "--file", f], "");
    assert_eq!(code, Some(0));
    std::thread::sleep(Duration::from_millis(2500));
    let cy = http("/segments", Some(&basic("cy", "cy's long password"))).unwrap();
    let ana_after = http("/segments", Some(&basic("ana", PASSWORD))).unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(cy.starts_with("HTTP/1.1 200"), "{cy}");
    assert!(ana_after.starts_with("HTTP/1.1 401"), "{ana_after}");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        shown.starts_with("HTTP/1.1 200") && shown.contains("/shoes"),
        "{shown}"
    );
    assert!(removed.starts_with("HTTP/1.1 401"), "{removed}");

    // An empty users file is a mistake, not an open door.
    std::fs::write(&file, "# nobody\n").unwrap();
    let (code, _, err) = cli(
        &[&["serve", "--listen", "0.0.0.0:0", "--users", f][..], &down].concat(),
        "",
    );
    assert_eq!(code, Some(5), "{err}");
    assert!(err.contains("lists no users"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
