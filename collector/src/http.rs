//! The HTTP surface: routes, handlers and CORS. Handlers are thin: they read the request,
//! call the pure decode/validate/enrich functions and hand the result to the [`Store`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use spoor_protocol::Limits;

use crate::body::{Encoding, encoding_of, read_limited, too_large_compressed};
use crate::config::Config;
use crate::enrich::{client_ip, stored_ip};
use crate::error::ApiError;
use crate::ingest::{
    IngestRecord, Ingested, RejectedEvent, Source, build_rows, context_of, decode_record,
};
use crate::keys::{KeyRing, KeySource, WriteKey};
use crate::metrics::{Metrics, ReasonLabels, RequestLabels};
use crate::store::{Store, StoreError};

/// Milliseconds since the Unix epoch, from a clock that tests can replace.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Is ClickHouse there? Behind a trait so `/readyz` can be tested without one.
pub trait Readiness: Send + Sync + 'static {
    fn clickhouse_ok(&self) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

/// Pings ClickHouse with `SELECT 1`.
pub struct ClickHousePing(pub clickhouse::Client);

impl Readiness for ClickHousePing {
    fn clickhouse_ok(&self) -> std::pin::Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move {
            let ping = self.0.query("SELECT 1").fetch_one::<u8>();
            matches!(
                tokio::time::timeout(Duration::from_secs(2), ping).await,
                Ok(Ok(1))
            )
        })
    }
}

/// Everything the handlers share.
pub struct AppState {
    pub config: Config,
    pub keys: KeyRing,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub readiness: Arc<dyn Readiness>,
    pub metrics: Arc<Metrics>,
}

/// The router the binary serves and the tests call.
pub fn app(state: Arc<AppState>) -> Router {
    let mut router = Router::new()
        .route("/v1/batch", post(post_batch).options(preflight))
        .route("/v1/event", post(post_event).options(preflight))
        .route("/v1/pixel.gif", get(get_pixel))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics));
    if let Some(dir) = &state.config.sdk_dir {
        // The SDK as built (`sdk-wasm/build`): a client that accepts gzip gets `FILE.gz`
        // (zopfli, precompressed at build time) with `Content-Encoding: gzip` and FILE's
        // `Content-Type` (`application/wasm` for the wasm: streaming compile); others get
        // FILE. Either way the answer depends on `Accept-Encoding`, which caches must know.
        let files = tower::ServiceBuilder::new()
            .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ))
            .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ))
            .layer(tower_http::set_header::SetResponseHeaderLayer::appending(
                header::VARY,
                HeaderValue::from_static("accept-encoding"),
            ))
            .service(tower_http::services::ServeDir::new(dir).precompressed_gzip());
        router = router.nest_service("/sdk", files);
    }
    router.with_state(state)
}

/// The success body. The SDK relies on exactly this shape.
#[derive(Debug, Serialize)]
pub struct BatchResponse {
    pub accepted: usize,
    pub rejected: Vec<RejectedEvent>,
}

/// What the handlers read from a request before its body.
struct RequestInfo {
    origin: Option<String>,
    query_key: Option<String>,
    header_key: Option<String>,
    compression: Option<String>,
    content_encoding: Option<String>,
    content_length: Option<usize>,
    user_agent: String,
    referer: Option<String>,
    peer: Option<IpAddr>,
    forwarded_for: Option<String>,
    /// Sent by a web page: an `Origin` or a `Sec-Fetch-*` header.
    browser: bool,
    query: Vec<(String, String)>,
}

impl RequestInfo {
    fn of(parts: &Parts) -> RequestInfo {
        let h = |name: &str| header_str(&parts.headers, name);
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let param = |name: &str| {
            query
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let header_key = h("x-spoor-key").or_else(|| {
            h("authorization").and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("bearer "))
                    .map(|k| k.trim().to_owned())
            })
        });
        RequestInfo {
            origin: h("origin").filter(|o| o != "null"),
            query_key: param("key"),
            header_key,
            compression: param("compression"),
            content_encoding: h("content-encoding"),
            content_length: h("content-length").and_then(|l| l.parse().ok()),
            user_agent: h("user-agent").unwrap_or_default(),
            referer: h("referer"),
            peer: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            forwarded_for: h("x-forwarded-for"),
            browser: parts.headers.contains_key("origin")
                || parts.headers.contains_key("sec-fetch-mode")
                || parts.headers.contains_key("sec-fetch-site"),
            query,
        }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The key from a header or the query, checked, before the body is read.
    fn early_key(&self, keys: &KeyRing) -> Result<Option<Arc<WriteKey>>, ApiError> {
        let (key, source) = match (&self.header_key, &self.query_key) {
            (Some(k), _) => (k, KeySource::Header),
            (None, Some(k)) => (k, KeySource::Query),
            (None, None) => return Ok(None),
        };
        keys.authorise(key, source, self.origin.as_deref(), self.browser)
            .map(Some)
    }
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Adds the CORS headers a browser needs to read the response, when the origin is allowed.
fn with_cors(state: &AppState, info: &RequestInfo, mut response: Response) -> Response {
    if let Some(origin) = &info.origin {
        let key = info.query_key.as_deref();
        if state.keys.preflight_allows(key, origin)
            && let Ok(value) = HeaderValue::from_str(origin)
        {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("retry-after"),
            );
        }
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
    }
    response
}

fn count(state: &AppState, endpoint: &'static str, response: &Response) {
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            endpoint,
            status: response.status().as_u16(),
        })
        .inc();
}

/// `OPTIONS`: a CORS preflight. Allowed origins are echoed; others get 403 without CORS
/// headers, so the browser blocks the request.
async fn preflight(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let info = RequestInfo::of(&parts);
    let Some(origin) = info.origin.as_deref() else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if !state
        .keys
        .preflight_allows(info.query_key.as_deref(), origin)
    {
        return ApiError::Forbidden(format!(
            "origin {origin} is not allowed for this key; add it to the key's `origins`"
        ))
        .into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, content-encoding, x-spoor-key"),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("origin"));
    response
}

async fn post_batch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let info = RequestInfo::of(&parts);
    let response = match accept(&state, &info, body, BodyKind::Batch).await {
        Ok(ok) => (StatusCode::OK, axum::Json(ok)).into_response(),
        Err(e) => e.into_response(),
    };
    count(&state, "batch", &response);
    with_cors(&state, &info, response)
}

async fn post_event(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let info = RequestInfo::of(&parts);
    let response = match accept(&state, &info, body, BodyKind::SingleEvent).await {
        Ok(ok) => (StatusCode::OK, axum::Json(ok)).into_response(),
        Err(e) => e.into_response(),
    };
    count(&state, "event", &response);
    with_cors(&state, &info, response)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Batch,
    SingleEvent,
}

/// The path of every POST: key, size, decode, key from the body, rate limit, rows, store.
async fn accept(
    state: &AppState,
    info: &RequestInfo,
    body: Body,
    kind: BodyKind,
) -> Result<BatchResponse, ApiError> {
    let limits = &state.config.limits;
    let early_key = info.early_key(&state.keys)?;
    if info
        .content_length
        .is_some_and(|l| l > limits.max_body_bytes)
    {
        return Err(too_large_compressed(limits.max_body_bytes));
    }
    if state.store.is_full() {
        return Err(unavailable(state, StoreError::Full));
    }
    let encoding = encoding_of(
        info.content_encoding.as_deref(),
        info.compression.as_deref(),
    )?;
    let body = read_limited(body, limits.max_body_bytes).await?;
    state.metrics.bytes_in.inc_by(body.len() as u64);
    let received_at = state.clock.now_millis();
    let started = Instant::now();

    // A single event is wrapped into a batch; the wrapped batch is what gets spooled.
    let (encoding, body) = match kind {
        BodyKind::Batch => (encoding, body),
        BodyKind::SingleEvent => (
            Encoding::Identity,
            wrap_single_event(encoding, &body, limits, received_at)?,
        ),
    };
    let decoded = decode_record(encoding, &body, limits)?;
    let key = match early_key {
        Some(key) => key,
        None => {
            let key = decoded.key.as_deref().ok_or(ApiError::MissingKey)?;
            state
                .keys
                .authorise(key, KeySource::Body, info.origin.as_deref(), info.browser)?
        }
    };
    key.take(decoded.events.len())?;
    if decoded.events.is_empty() {
        return Ok(BatchResponse {
            accepted: 0,
            rejected: Vec::new(),
        });
    }
    let ip = client_ip(
        info.peer,
        info.forwarded_for.as_deref(),
        state.config.enrich.trusted_proxy_hops,
    );
    let record = IngestRecord {
        received_at,
        project_id: key.project.clone(),
        source: if key.is_secret() {
            Source::Server
        } else {
            Source::Browser
        },
        ip: stored_ip(ip, &state.config.enrich),
        user_agent: crate::ingest::cap(info.user_agent.clone(), 1024),
        encoding,
        body,
    };
    let ctx = context_of(&record, &decoded.sent_at);
    let ingested = build_rows(decoded, &ctx, limits, &state.config.enrich);
    state
        .metrics
        .decode_seconds
        .observe(started.elapsed().as_secs_f64());
    let response = BatchResponse {
        accepted: ingested.rows.len(),
        rejected: ingested.response_rejections(),
    };
    let accepted = ingested.rows.len() as u64;
    let rejected = ingested.rejected.clone();
    store(state, record, ingested).await?;
    state.metrics.events_accepted.inc_by(accepted);
    for r in rejected {
        state
            .metrics
            .events_rejected
            .get_or_create(&ReasonLabels { reason: r.reason })
            .inc();
    }
    Ok(response)
}

async fn store(state: &AppState, record: IngestRecord, rows: Ingested) -> Result<(), ApiError> {
    let started = Instant::now();
    let result = state.store.store(record, rows).await;
    state
        .metrics
        .spool_append_seconds
        .observe(started.elapsed().as_secs_f64());
    result.map_err(|e| unavailable(state, e))
}

fn unavailable(state: &AppState, error: StoreError) -> ApiError {
    if !matches!(error, StoreError::Full) {
        tracing::error!(error = %error, "Could not store a batch");
    }
    ApiError::Unavailable {
        message: error.to_string(),
        retry_after: state.config.retry_after,
    }
}

/// `{event}` → `{"sent_at": received_at, "events": [{event}]}`. The event must be one JSON
/// value, so nothing in it can reach the envelope.
fn wrap_single_event(
    encoding: Encoding,
    body: &[u8],
    limits: &Limits,
    received_at: i64,
) -> Result<bytes::Bytes, ApiError> {
    let text = crate::body::decompress(body, encoding, limits.max_decompressed_bytes)?;
    let raw: &serde_json::value::RawValue = serde_json::from_slice(&text)
        .map_err(|e| ApiError::BadRequest(format!("body is not one JSON event: {e}")))?;
    let sent_at = crate::enrich::datetime(received_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let wrapped = format!(
        "{{\"sent_at\":{},\"events\":[{}]}}",
        serde_json::Value::String(sent_at),
        raw.get()
    );
    Ok(bytes::Bytes::from(wrapped))
}

/// A 1×1 transparent GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /v1/pixel.gif?key=…` for pages without JavaScript. Parameters: `t` (event type,
/// default `page_view`), `n` (event name for `track`), `u` (page URL; default the Referer
/// header), `r` (referrer), `ti` (title), `a` (anonymous id; default a daily hash of IP,
/// user agent and project, so no cookie is needed).
async fn get_pixel(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let info = RequestInfo::of(&parts);
    let response = match pixel(&state, &info).await {
        Ok(()) => {
            let mut r = (StatusCode::OK, PIXEL).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-store, max-age=0"),
            );
            r
        }
        Err(e) => e.into_response(),
    };
    count(&state, "pixel", &response);
    response
}

async fn pixel(state: &AppState, info: &RequestInfo) -> Result<(), ApiError> {
    let key = info.query_key.as_deref().ok_or(ApiError::MissingKey)?;
    // An <img> sends no Origin; the page's origin is in the Referer.
    let page_origin = info
        .referer
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
        .map(|u| u.origin().ascii_serialization());
    let key = state
        .keys
        .authorise(key, KeySource::Query, page_origin.as_deref(), true)?;
    if state.store.is_full() {
        return Err(unavailable(state, StoreError::Full));
    }
    key.take(1)?;
    let received_at = state.clock.now_millis();
    let ip = client_ip(
        info.peer,
        info.forwarded_for.as_deref(),
        state.config.enrich.trusted_proxy_hops,
    );
    let event = pixel_event(
        info,
        &key.project,
        ip,
        received_at,
        &state.config.enrich.pixel_salt,
    );
    let body = serde_json::json!({
        "sent_at": event["timestamp"].clone(),
        "events": [event],
    })
    .to_string();
    let record = IngestRecord {
        received_at,
        project_id: key.project.clone(),
        source: Source::Browser,
        ip: stored_ip(ip, &state.config.enrich),
        user_agent: crate::ingest::cap(info.user_agent.clone(), 1024),
        encoding: Encoding::Identity,
        body: bytes::Bytes::from(body),
    };
    let limits = &state.config.limits;
    let decoded = decode_record(record.encoding, &record.body, limits)?;
    let ctx = context_of(&record, &decoded.sent_at);
    let ingested = build_rows(decoded, &ctx, limits, &state.config.enrich);
    if let Some(r) = ingested.rejected.first() {
        return Err(ApiError::BadRequest(format!(
            "pixel parameters do not make a valid event: {}",
            r.message
        )));
    }
    store(state, record, ingested).await?;
    state.metrics.events_accepted.inc();
    Ok(())
}

/// The event a pixel hit stands for.
fn pixel_event(
    info: &RequestInfo,
    project: &str,
    ip: Option<IpAddr>,
    received_at: i64,
    salt: &str,
) -> serde_json::Value {
    let url = info
        .param("u")
        .map(str::to_owned)
        .or_else(|| info.referer.clone())
        .unwrap_or_default();
    let path = url::Url::parse(&url)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| "/".into());
    let timestamp = crate::enrich::datetime(received_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let day = received_at.div_euclid(86_400_000);
    let anonymous_id = info.param("a").map(str::to_owned).unwrap_or_else(|| {
        let ip = ip.map(|ip| ip.to_string()).unwrap_or_default();
        format!(
            "px-{:016x}",
            fnv1a(&[salt, &day.to_string(), project, &ip, &info.user_agent])
        )
    });
    let kind = info.param("t").unwrap_or("page_view");
    let mut event = serde_json::json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "type": kind,
        "timestamp": timestamp,
        "anonymous_id": anonymous_id,
        "page": {
            "url": url,
            "path": path,
            "title": info.param("ti").unwrap_or(""),
            "referrer": info.param("r").unwrap_or(""),
        },
        "context": { "lib": "spoor-pixel" },
    });
    if let Some(name) = info.param("n") {
        event["name"] = serde_json::Value::String(name.to_owned());
    }
    event
}

/// FNV-1a over the parts, separated: stable across builds and platforms.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain(std::iter::once(&0xffu8)) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when ClickHouse answers and the spool is below its high-water mark.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let spool_ok = !state.store.is_full();
    let clickhouse_ok = state.readiness.clickhouse_ok().await;
    let body =
        serde_json::json!({ "clickhouse": clickhouse_ok, "spool_below_high_water": spool_ok });
    let status = if spool_ok && clickhouse_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let (bytes, records) = state.store.pending();
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    state.metrics.spool_pending_bytes.set(gauge(bytes));
    state.metrics.spool_pending_records.set(gauge(records));
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
