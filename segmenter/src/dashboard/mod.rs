//! The marketers' dashboard: server-rendered HTML over the segmenter's tables.
//!
//! `app(state)` is the whole router, `signed_in(app, auth)` puts it behind the sign-in
//! ([`auth`]); `serve` runs it. Tests call `app(state).oneshot(...)`.

mod analysis;
pub mod auth;
mod data;
mod edit;
mod html;
mod pages;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::{Db, Error};

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
}

/// The dashboard's routes. Every response says: no caching (the pages hold personal data), no
/// referrer to the sites they link to (the dashboard's URLs name people), no framing, no
/// sniffing, and a Content-Security-Policy that allows the pages' inline style and their one
/// inline script (by its hash) and nothing else.
pub fn app(state: AppState) -> Router {
    use axum::http::{HeaderValue, header};
    use base64::Engine as _;
    use sha2::Digest as _;
    use tower_http::set_header::SetResponseHeaderLayer;

    let script = base64::engine::general_purpose::STANDARD
        .encode(sha2::Sha256::digest(html::PICKER_SCRIPT.as_bytes()));
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-hashes' 'sha256-{script}'; \
         img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let policy =
        HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    let header = |name, value| SetResponseHeaderLayer::overriding(name, value);
    Router::new()
        .route("/", get(|| async { Redirect::to("/reports") }))
        .route("/reports", get(pages::reports))
        .route("/funnels", get(analysis::funnels))
        .route("/funnels/people.csv", get(analysis::funnel_people))
        .route("/paths", get(analysis::paths))
        .route("/retention", get(analysis::retention))
        .route("/segments", get(pages::segments))
        .route("/segments/new", get(edit::editor).post(edit::submit))
        .route("/segments/{id}", get(pages::segment))
        .route(
            "/segments/{id}/delete",
            get(edit::confirm_delete).post(edit::delete),
        )
        .route("/segments/{id}/members.csv", get(pages::segment_csv))
        .route("/profiles", get(pages::profiles))
        .route("/members", get(pages::members))
        .route("/tickets", get(pages::tickets))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { PageError::NotFound("There is no such page.".into()) })
        .with_state(state)
        .layer(axum::middleware::from_fn(edit::same_origin))
        .layer(header(header::CONTENT_SECURITY_POLICY, policy))
        .layer(header(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(header(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(header(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(header(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
}

/// `router` behind the sign-in: every route but `/healthz` needs one of `auth`'s users.
pub fn signed_in(router: Router, auth: Arc<auth::Auth>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(
        auth,
        auth::require_user,
    ))
}

/// Serves the dashboard on `listener` until `shutdown` completes; with `auth`, behind the
/// sign-in (the client's address limits its password checks).
pub async fn serve(
    db: Db,
    auth: Option<Arc<auth::Auth>>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(AppState { db });
    let router = match auth {
        Some(auth) => signed_in(router, auth),
        None => router,
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    NotFound(String),
    Data(Error),
}

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        match error {
            Error::UnknownSegment(id) => {
                PageError::NotFound(format!("There is no segment {id:?}."))
            }
            other => PageError::Data(other),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            PageError::NotFound(message) => (StatusCode::NOT_FOUND, message.clone()),
            PageError::Data(error @ Error::Unreachable { .. }) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("ClickHouse is not answering; try again shortly. ({error})"),
            ),
            PageError::Data(error) if error.to_string().contains("TIMEOUT_EXCEEDED") => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "This question took longer than {} s: ask about fewer days (or fewer steps).",
                    analysis::TIME_LIMIT_SECONDS
                ),
            ),
            PageError::Data(error) => {
                tracing::error!(error = %error, "Page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("This page could not be built: {error}"),
                )
            }
        };
        let body = format!(
            "<h1>{}</h1><p class=\"sub\">{}</p><p><a href=\"/reports\">Back to reports</a></p>",
            status.canonical_reason().unwrap_or("Error"),
            html::esc(&message)
        );
        (
            status,
            Html(html::page("Error", "", &html::Chrome::default(), &body)),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A question the server stopped (`max_execution_time`) says what to do, not a 500.
    #[test]
    fn a_stopped_question_says_ask_less() {
        let stopped = clickhouse::error::Error::BadResponse(
            "Code: 159. DB::Exception: Timeout exceeded: elapsed 60001 ms, maximum: 60000 ms. (TIMEOUT_EXCEEDED)".into(),
        );
        let response = PageError::Data(Error::query("funnel", stopped)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let other = clickhouse::error::Error::BadResponse("Code: 60. Unknown table".into());
        let response = PageError::Data(Error::query("funnel", other)).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
