//! What to do with a delivery outcome, and when to try again.

/// First retry delay.
pub const BASE_MS: u64 = 1_000;
/// Longest backoff delay (before jitter), so a returning collector is found quickly.
pub const CAP_MS: u64 = 30_000;
/// Longest `Retry-After` honoured; beyond it the SDK retries at this interval.
pub const MAX_RETRY_AFTER_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: the batch is delivered (minus any per-event rejections listed in the body).
    Delivered,
    /// Network error (status 0), 5xx or 429: keep the events, try again later.
    Retry,
    /// 413: the batch was too large. Try again in smaller batches; a lone event is dropped.
    TooLarge,
    /// Any other 4xx (or an unexpected status): the collector refused the batch. Retrying
    /// would not help, so the events are dropped.
    Refused,
}

pub fn verdict(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        0 | 429 | 500..=599 => Verdict::Retry,
        413 => Verdict::TooLarge,
        _ => Verdict::Refused,
    }
}

/// Delay before retry number `attempt` (1-based): exponential from [`BASE_MS`], capped at
/// [`CAP_MS`], with "equal jitter" (half fixed, half random: `jitter` is uniform over
/// `u32`), and never shorter than the server's `Retry-After`.
pub fn backoff_ms(attempt: u32, jitter: u32, retry_after_ms: u64) -> u64 {
    let exp = BASE_MS
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(CAP_MS);
    let half = exp / 2;
    let d = half + ((half * u64::from(jitter)) >> 32);
    d.max(retry_after_ms.min(MAX_RETRY_AFTER_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        for (s, v) in [
            (200, Verdict::Delivered),
            (202, Verdict::Delivered),
            (204, Verdict::Delivered),
            (0, Verdict::Retry),
            (429, Verdict::Retry),
            (500, Verdict::Retry),
            (503, Verdict::Retry),
            (599, Verdict::Retry),
            (413, Verdict::TooLarge),
            (400, Verdict::Refused),
            (401, Verdict::Refused),
            (403, Verdict::Refused),
            (404, Verdict::Refused),
            (408, Verdict::Refused),
            (302, Verdict::Refused),
        ] {
            assert_eq!(verdict(s), v, "{s}");
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert_eq!(backoff_ms(1, 0, 0), 500);
        assert_eq!(backoff_ms(1, u32::MAX, 0), 999);
        assert_eq!(backoff_ms(2, 0, 0), 1_000);
        assert_eq!(backoff_ms(3, 0, 0), 2_000);
        assert_eq!(backoff_ms(6, 0, 0), 15_000);
        assert_eq!(backoff_ms(7, 0, 0), 15_000);
        assert_eq!(backoff_ms(u32::MAX, u32::MAX, 0), 29_999);
        for a in 1..40 {
            for j in [0, 1, u32::MAX / 2, u32::MAX] {
                let d = backoff_ms(a, j, 0);
                assert!((BASE_MS / 2..CAP_MS).contains(&d), "{a} {j} {d}");
            }
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        assert_eq!(backoff_ms(1, 0, 5_000), 5_000);
        assert_eq!(backoff_ms(6, 0, 1_000), 15_000);
        assert_eq!(backoff_ms(1, 0, u64::MAX), MAX_RETRY_AFTER_MS);
    }
}
