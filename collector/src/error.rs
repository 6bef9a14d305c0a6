//! The one HTTP error type and its one mapping to statuses.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything a request can fail with. Each variant has one status; the body says, in a
/// sentence a developer can act on, what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 400: the body is not a batch, a parameter is wrong, …
    #[error("{0}")]
    BadRequest(String),
    /// 401: no write key anywhere in the request.
    #[error(
        "no write key: send it in the X-Spoor-Key header, the `key` query parameter or the batch's `key` field"
    )]
    MissingKey,
    /// 401: a key that is not configured.
    #[error("unknown write key; check the key in your snippet or the collector's config")]
    UnknownKey,
    /// 403: the key may not be used from where it was used.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 413: a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// 415: a content encoding the collector does not decode.
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// 429: the key's rate limit.
    #[error("rate limit of this write key exceeded; retry after {} s", retry_secs(*retry_after))]
    RateLimited { retry_after: Duration },
    /// 503: retryable storage trouble (spool full or failing).
    #[error("{message}; retry after {} s", retry_secs(*retry_after))]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
}

fn retry_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MissingKey | ApiError::UnknownKey => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable code for the response body and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::MissingKey => "missing_key",
            ApiError::UnknownKey => "unknown_key",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::TooLarge(_) => "too_large",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after } | ApiError::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.code(), "message": self.to_string() });
        let mut response = (self.status(), axum::Json(body)).into_response();
        if let Some(after) = self.retry_after() {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_secs(after).max(1)),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_retry_after() {
        let cases = [
            (ApiError::BadRequest("x".into()), 400, None),
            (ApiError::MissingKey, 401, None),
            (ApiError::UnknownKey, 401, None),
            (ApiError::Forbidden("x".into()), 403, None),
            (ApiError::TooLarge("x".into()), 413, None),
            (ApiError::UnsupportedEncoding("x".into()), 415, None),
            (
                ApiError::RateLimited {
                    retry_after: Duration::from_millis(1500),
                },
                429,
                Some("2"),
            ),
            (
                ApiError::Unavailable {
                    message: "spool full".into(),
                    retry_after: Duration::from_millis(10),
                },
                503,
                Some("1"),
            ),
        ];
        for (error, status, retry_after) in cases {
            let response = error.clone().into_response();
            assert_eq!(response.status().as_u16(), status, "{error:?}");
            assert_eq!(
                response
                    .headers()
                    .get(header::RETRY_AFTER)
                    .map(|v| v.to_str().unwrap()),
                retry_after,
                "{error:?}"
            );
        }
    }
}
