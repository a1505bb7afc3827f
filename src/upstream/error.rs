//! What an upstream failure means, and the retry policy: an outage (unreachable, 5xx, 429)
//! is retried and queued; a refusal (another 4xx) is the client's answer or a dead letter; a
//! request that was sent but not answered may have been applied (`maybe_applied`).

use std::time::Duration;

use http::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::limits::{UPSTREAM_ERROR_BODY, UPSTREAM_ERROR_BODY_TIMEOUT};

#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Connect error, timeout, reset, or the circuit is open: the upstream is not there.
    #[error("upstream unreachable: {0}")]
    Unreachable(String),
    /// The upstream answered with an error.
    #[error("upstream answered {status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    #[error("upstream request could not be built: {0}")]
    Local(String),
}

impl UpstreamError {
    /// Failures that say the upstream is down or overloaded rather than "no".
    pub fn is_outage(&self) -> bool {
        match self {
            UpstreamError::Unreachable(_) => true,
            UpstreamError::Status { status, .. } => *status >= 500 || *status == 429,
            UpstreamError::Local(_) => false,
        }
    }

    /// A refusal that retrying will not change (a 4xx other than 408 and 429, or a request
    /// Lifeboat cannot build): replaying it again and again would only block the queue.
    pub fn is_permanent(&self) -> bool {
        match self {
            UpstreamError::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            UpstreamError::Local(_) => true,
            UpstreamError::Unreachable(_) => false,
        }
    }

    /// Whether the upstream may have applied the request although it failed (it was sent, but
    /// no answer came back in time). A refused connection or an open circuit sent nothing.
    pub fn maybe_applied(&self) -> bool {
        match self {
            UpstreamError::Unreachable(m) => m != CIRCUIT_OPEN && !m.contains("Connect"),
            UpstreamError::Status { .. } | UpstreamError::Local(_) => false,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            UpstreamError::Status { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            UpstreamError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub(super) const CIRCUIT_OPEN: &str = "circuit open";

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

pub(super) async fn error_from(resp: Response<Incoming>) -> UpstreamError {
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(UPSTREAM_ERROR_BODY_TIMEOUT, async {
        let mut b = resp.into_body();
        let mut out = Vec::new();
        while let Some(Ok(f)) = b.frame().await {
            if let Ok(d) = f.into_data()
                && out.len() < UPSTREAM_ERROR_BODY
            {
                out.extend_from_slice(&d);
            }
        }
        out
    })
    .await
    .unwrap_or_default();
    let parsed = crate::xml::parse(&body).ok();
    let code = parsed
        .as_ref()
        .and_then(|e| e.child_text("Code"))
        .map(str::to_owned)
        .unwrap_or_else(|| match status {
            404 => "NotFound".into(),
            412 => "PreconditionFailed".into(),
            _ => format!("HTTP{status}"),
        });
    let message = parsed
        .as_ref()
        .and_then(|e| e.child_text("Message"))
        .unwrap_or("")
        .to_owned();
    UpstreamError::Status {
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_classes() {
        let status = |s: u16| UpstreamError::Status {
            status: s,
            code: String::new(),
            message: String::new(),
        };
        assert!(status(503).is_outage() && !status(503).is_permanent());
        assert!(status(429).is_outage() && !status(429).is_permanent());
        assert!(status(403).is_permanent() && !status(403).is_outage());
        let timeout = UpstreamError::Unreachable("timed out waiting for the first byte".into());
        assert!(timeout.maybe_applied());
        assert!(!UpstreamError::Unreachable(CIRCUIT_OPEN.into()).maybe_applied());
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        assert!(backoff(1, 0.0) < backoff(1, 0.99));
        assert!(backoff(3, 0.99) > backoff(1, 0.99));
        assert!(backoff(30, 1.0) <= Duration::from_millis(5_010));
    }
}
