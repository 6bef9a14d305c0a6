//! The demo shop's web server. It serves `examples/site` and fills the SDK tag's placeholders
//! (`__SPOOR_SDK__`, `__SPOOR_KEY__`, `__SPOOR_HOST__`) in HTML pages, so one copy of the site
//! works against any collector. Paths under `/app.html/` fall back to `app.html`, the demo's
//! single-page app, as a real SPA host would.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// Where the pages send their events.
#[derive(Debug, Clone)]
pub struct SiteConfig {
    /// The folder with the site's files.
    pub root: PathBuf,
    /// Base URL the SDK's `spoor.js` is loaded from, without a trailing slash.
    pub sdk_base: String,
    /// The collector's base URL, without a trailing slash.
    pub collector: String,
    /// The write key the pages use.
    pub key: String,
}

pub fn app(config: SiteConfig) -> Router {
    Router::new()
        .fallback(serve_file)
        .with_state(Arc::new(config))
}

async fn serve_file(State(config): State<Arc<SiteConfig>>, uri: Uri) -> Response {
    let Some(relative) = safe_relative(uri.path()) else {
        return (StatusCode::BAD_REQUEST, "bad path").into_response();
    };
    let mut path = config.root.join(&relative);
    if path.is_dir() {
        path = path.join("index.html");
    }
    if !path.is_file() && uri.path().starts_with("/app.html/") {
        path = config.root.join("app.html");
    }
    let Ok(bytes) = tokio::fs::read(&path).await else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let content_type = content_type(&path);
    let body = if content_type.starts_with("text/html") {
        String::from_utf8_lossy(&bytes)
            .replace("__SPOOR_SDK__", &config.sdk_base)
            .replace("__SPOOR_KEY__", &config.key)
            .replace("__SPOOR_HOST__", &config.collector)
            .into_bytes()
    } else {
        bytes
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The request path as a relative file path, or `None` if it tries to leave the root.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let relative = Path::new(path.trim_start_matches('/'));
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| relative.to_path_buf())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js" | "mjs") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("pdf") => "application/pdf",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    fn site() -> Router {
        app(SiteConfig {
            root: Path::new(env!("CARGO_MANIFEST_DIR")).join("../site"),
            sdk_base: "http://c.test/sdk".into(),
            collector: "http://c.test".into(),
            key: "pk_test".into(),
        })
    }

    async fn get(path: &str) -> (StatusCode, String) {
        let response = site()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn pages_get_the_sdk_tag_filled_in() {
        let (status, body) = get("/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(r#"<script async src="http://c.test/sdk/spoor.js" data-key="pk_test" data-host="http://c.test"></script>"#),
            "{body}"
        );
    }

    #[tokio::test]
    async fn spa_routes_fall_back_to_the_app() {
        let (status, body) = get("/app.html/orders").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("<h1>My account</h1>"));
    }

    #[tokio::test]
    async fn paths_cannot_leave_the_root() {
        assert_eq!(get("/../Cargo.toml").await.0, StatusCode::BAD_REQUEST);
        assert_eq!(get("/missing.html").await.0, StatusCode::NOT_FOUND);
    }
}
