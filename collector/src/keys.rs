//! Write keys: which project a key writes to, where it may be used from, and how fast.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::config::{KeyConfig, KeyKind};
use crate::error::ApiError;

/// Where the request carried its key. Secret keys are only taken from headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Header,
    Query,
    Body,
}

/// One configured key, ready to check requests against.
pub struct WriteKey {
    pub project: String,
    pub kind: KeyKind,
    /// Normalised origins (`scheme://host[:port]`); `any_origin` when `*` was listed.
    origins: Vec<String>,
    any_origin: bool,
    limiter: Option<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
}

impl std::fmt::Debug for WriteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteKey")
            .field("project", &self.project)
            .field("kind", &self.kind)
            .field("origins", &self.origins)
            .field("any_origin", &self.any_origin)
            .finish_non_exhaustive()
    }
}

impl WriteKey {
    pub fn is_secret(&self) -> bool {
        self.kind == KeyKind::Secret
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.any_origin || self.origins.iter().any(|o| o == &normalise_origin(origin))
    }

    /// Takes `events` tokens from the key's bucket, or says how long to wait.
    pub fn take(&self, events: usize) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let Some(n) = NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)) else {
            return Ok(());
        };
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(ApiError::RateLimited {
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
            // More events than the whole bucket: can never pass at this rate.
            Err(_) => Err(ApiError::RateLimited {
                retry_after: Duration::from_secs(1),
            }),
        }
    }
}

/// All configured keys.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: HashMap<String, Arc<WriteKey>>,
    /// Every origin some public key allows (for preflights that carry no key).
    any_key_allows_any_origin: bool,
}

impl KeyRing {
    pub fn new(keys: &[KeyConfig], max_events_per_batch: usize) -> KeyRing {
        let mut ring = KeyRing::default();
        for k in keys {
            let any_origin = k.origins.iter().any(|o| o == "*");
            let limiter = k.events_per_second.and_then(NonZeroU32::new).map(|rate| {
                let default_burst = rate
                    .get()
                    .saturating_mul(2)
                    .max(u32::try_from(max_events_per_batch).unwrap_or(u32::MAX));
                let burst = k
                    .burst
                    .and_then(NonZeroU32::new)
                    .or(NonZeroU32::new(default_burst))
                    .unwrap_or(rate);
                RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
            });
            ring.any_key_allows_any_origin |= any_origin && k.kind == KeyKind::Public;
            ring.keys.insert(
                k.key.clone(),
                Arc::new(WriteKey {
                    project: k.project.clone(),
                    kind: k.kind,
                    origins: k.origins.iter().map(|o| normalise_origin(o)).collect(),
                    any_origin,
                    limiter,
                }),
            );
        }
        ring
    }

    /// Checks a key as presented by a request: known (401), used from an allowed place (403).
    /// `browser` says the request came from a web page (an `Origin` or `Sec-Fetch-*` header).
    pub fn authorise(
        &self,
        key: &str,
        source: KeySource,
        origin: Option<&str>,
        browser: bool,
    ) -> Result<Arc<WriteKey>, ApiError> {
        let Some(found) = self.keys.get(key) else {
            return Err(ApiError::UnknownKey);
        };
        if found.is_secret() {
            if source != KeySource::Header {
                return Err(ApiError::Forbidden(
                    "secret keys are accepted only in the Authorization: Bearer or X-Spoor-Key header; \
                     rotate this key, it may have leaked in a URL or page"
                        .into(),
                ));
            }
            if browser || origin.is_some() {
                return Err(ApiError::Forbidden(
                    "secret keys must never be used from a browser; use the project's public key"
                        .into(),
                ));
            }
        } else if let Some(origin) = origin
            && !found.origin_allowed(origin)
        {
            return Err(ApiError::Forbidden(format!(
                "origin {origin} is not allowed for this key; add it to the key's `origins`"
            )));
        }
        Ok(found.clone())
    }

    /// For a preflight: is `origin` allowed by the given key, or (no key) by any public key?
    pub fn preflight_allows(&self, key: Option<&str>, origin: &str) -> bool {
        match key {
            Some(key) => self
                .keys
                .get(key)
                .is_some_and(|k| !k.is_secret() && k.origin_allowed(origin)),
            None => {
                self.any_key_allows_any_origin
                    || self
                        .keys
                        .values()
                        .any(|k| !k.is_secret() && k.origin_allowed(origin))
            }
        }
    }
}

/// `https://Shop.Example:443/path` → `https://shop.example`. Unparseable text is kept as is
/// (lower-cased), so it can only match itself.
pub fn normalise_origin(origin: &str) -> String {
    match url::Url::parse(origin) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => origin.trim_end_matches('/').to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::new(
            &[
                KeyConfig {
                    key: "pk_shop".into(),
                    project: "shop".into(),
                    kind: KeyKind::Public,
                    origins: vec!["https://shop.example".into()],
                    events_per_second: Some(10),
                    burst: Some(20),
                },
                KeyConfig {
                    key: "sk_shop".into(),
                    project: "shop".into(),
                    kind: KeyKind::Secret,
                    origins: vec![],
                    events_per_second: None,
                    burst: None,
                },
            ],
            500,
        )
    }

    #[track_caller]
    fn check(key: &str, source: KeySource, origin: Option<&str>, expected: Result<&str, u16>) {
        let got = ring()
            .authorise(key, source, origin, origin.is_some())
            .map(|k| k.project.clone())
            .map_err(|e| e.status().as_u16());
        assert_eq!(got, expected.map(str::to_owned));
    }

    #[test]
    fn authorisation_table() {
        use KeySource::*;
        check("pk_shop", Query, Some("https://shop.example"), Ok("shop"));
        check(
            "pk_shop",
            Body,
            Some("https://SHOP.example:443"),
            Ok("shop"),
        );
        check("pk_shop", Header, None, Ok("shop"));
        check("pk_shop", Query, Some("https://evil.example"), Err(403));
        check("pk_shop", Query, Some("http://shop.example"), Err(403));
        check("pk_nope", Query, None, Err(401));
        check("sk_shop", Header, None, Ok("shop"));
        check("sk_shop", Header, Some("https://shop.example"), Err(403));
        check("sk_shop", Query, None, Err(403));
        check("sk_shop", Body, None, Err(403));
        // A page's fetch without an Origin header still carries Sec-Fetch-*.
        assert!(
            ring()
                .authorise("sk_shop", Header, None, true)
                .is_err_and(|e| e.status() == 403)
        );
    }

    #[test]
    fn preflight() {
        let ring = ring();
        assert!(ring.preflight_allows(Some("pk_shop"), "https://shop.example"));
        assert!(!ring.preflight_allows(Some("pk_shop"), "https://evil.example"));
        assert!(!ring.preflight_allows(Some("sk_shop"), "https://shop.example"));
        assert!(ring.preflight_allows(None, "https://shop.example"));
        assert!(!ring.preflight_allows(None, "https://evil.example"));
    }

    #[test]
    fn rate_limit_takes_events() {
        let ring = ring();
        let key = ring
            .authorise("pk_shop", KeySource::Header, None, false)
            .unwrap();
        assert!(key.take(20).is_ok());
        let err = key.take(5).unwrap_err();
        assert_eq!(err.status().as_u16(), 429);
        assert!(key.take(21).is_err(), "more than the bucket never passes");
    }
}
