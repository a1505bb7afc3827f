//! The retry policy toward the upstream, written down in one place. Every failure is one of
//! four dispositions, and each limit below says why it has its value.
//!
//! | disposition | examples | request path | breaker | outbox |
//! |---|---|---|---|---|
//! | `Unavailable` | connect failed, no answer, reset, 5xx, 429, `SlowDown` | idempotent requests retried (`upstream.retries`) with backoff | failure | stays queued, backoff |
//! | `Denied` | 401, or a 403 with `AccessDenied`, `InvalidAccessKeyId`, `SignatureDoesNotMatch` | not retried (the same credentials get the same answer) | failure: a wrong secret opens the circuit | stays queued, backoff: fixing the secret must not lose writes |
//! | `Refused` | any other 4xx (`KeyTooLongError`, `InvalidRequest`, a HEAD's bare 403, …), 501 | the client's answer (`through`, `strict`) | success: the upstream is up | dead letter, object `failed` |
//! | `Local` | Lifeboat's own I/O error | returned | not counted | stays queued, backoff: never final |
//!
//! Only idempotent requests are retried on the request path, and a `through` write is tried
//! once (the outbox retries it; the client should not wait on an outage). A timeout of a
//! request that was sent may still be applied upstream (`UpstreamError::maybe_applied`).

use std::time::Duration;

/// What an upstream failure means (see the table above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Unavailable,
    Denied,
    Refused,
    Local,
}

/// Codes that say the upstream is overloaded, timed out or failed itself, whatever the status
/// (CompleteMultipartUpload and CopyObject can answer 200 with `InternalError` in the body;
/// `OperationAborted` is a conflicting operation in progress; `NoSuchUpload` during a push is
/// Lifeboat's own upstream upload gone, which a fresh push replaces).
const TRANSIENT: [&str; 7] = [
    "SlowDown",
    "Throttling",
    "RequestTimeout",
    "ServiceUnavailable",
    "InternalError",
    "OperationAborted",
    "NoSuchUpload",
];

/// Codes that refuse the credentials, the signature or the authorization: a configuration
/// problem that an operator fixes, never a verdict on the data. A 403 without a code (the
/// answer to a HEAD, which has no body) is not counted: a HEAD of a bucket someone else owns
/// says nothing about this gateway's credentials.
const DENIED: [&str; 6] = [
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestTimeTooSkewed",
    "ExpiredToken",
    "InvalidToken",
];

/// The disposition of an error answer.
pub fn status_disposition(status: u16, code: &str) -> Disposition {
    if status == 501 || code == "NotImplemented" {
        // The upstream does not do it: retrying changes nothing.
        Disposition::Refused
    } else if status >= 500 || status == 429 || status == 408 || TRANSIENT.contains(&code) {
        Disposition::Unavailable
    } else if status == 401 || DENIED.contains(&code) {
        Disposition::Denied
    } else {
        Disposition::Refused
    }
}

/// The first retry waits up to this long; each further one doubles it.
const BACKOFF_BASE_MS: u64 = 100;
/// No wait is longer: it keeps a client's write from waiting long on an upstream that is down.
const BACKOFF_CAP_MS: u64 = 5_000;
/// Added to every wait, so that a jitter of 0 still yields the CPU.
const BACKOFF_FLOOR_MS: u64 = 10;

/// Exponential backoff with full jitter: `BACKOFF_BASE_MS` × 2^attempt, capped at
/// `BACKOFF_CAP_MS`, times `jitter` in [0, 1).
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = BACKOFF_BASE_MS
        .saturating_mul(1 << attempt.min(6))
        .min(BACKOFF_CAP_MS);
    Duration::from_millis(((base as f64) * jitter.clamp(0.0, 1.0)) as u64 + BACKOFF_FLOOR_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert!(backoff(1, 0.0) < backoff(1, 0.99));
        assert!(backoff(3, 0.99) > backoff(1, 0.99));
        assert!(backoff(30, 1.0) <= Duration::from_millis(5_010));
    }
}
