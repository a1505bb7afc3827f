//! Upstream failures typed by what happened (`UpstreamError`), and how an error answer becomes
//! one. What each failure means for retries is `retry.rs`.

use std::time::Duration;

use http::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::retry::{Disposition, status_disposition};
use crate::limits::{UPSTREAM_ERROR_BODY, UPSTREAM_ERROR_BODY_TIMEOUT};

/// An upstream failure, by what happened. What each means for retries, the breaker and the
/// outbox is `retry::Disposition`, decided in one place (`UpstreamError::disposition`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The connection could not be made (refused, unreachable, connect timeout): nothing sent.
    #[error("cannot connect to the upstream: {0}")]
    Connect(String),
    /// The circuit breaker is open: nothing was sent.
    #[error("the upstream's circuit is open")]
    CircuitOpen,
    /// The request was sent, but no response came within the first-byte timeout.
    #[error("the upstream sent no answer within {0:?}")]
    NoAnswer(Duration),
    /// The request body stalled on its way up (the upstream stopped reading it).
    #[error("the upload to the upstream stalled")]
    UploadStalled,
    /// The response body stalled or broke off.
    #[error("the upstream's response body broke off: {0}")]
    BodyBroken(String),
    /// The connection failed after it was made (a reset, an HTTP protocol error).
    #[error("the upstream connection failed: {0}")]
    Protocol(String),
    /// The upstream answered with an error status (and its S3 code when the body had one).
    #[error("upstream answered {status} {code}: {message}")]
    Status {
        status: u16,
        code: String,
        message: String,
    },
    /// The upstream answered something Lifeboat cannot use (unreadable or inconsistent).
    #[error("unusable upstream answer: {0}")]
    BadAnswer(String),
    /// Lifeboat's own problem (a local I/O error, a request it cannot build): never the
    /// upstream's fault, and never final.
    #[error("local error while talking to the upstream: {0}")]
    Local(String),
}

impl UpstreamError {
    /// What the failure means; see `retry.rs`.
    pub fn disposition(&self) -> Disposition {
        match self {
            UpstreamError::Connect(_)
            | UpstreamError::CircuitOpen
            | UpstreamError::NoAnswer(_)
            | UpstreamError::UploadStalled
            | UpstreamError::BodyBroken(_)
            | UpstreamError::Protocol(_)
            | UpstreamError::BadAnswer(_) => Disposition::Unavailable,
            UpstreamError::Status { status, code, .. } => status_disposition(*status, code),
            UpstreamError::Local(_) => Disposition::Local,
        }
    }

    /// The upstream is down or overloaded (rather than saying "no").
    pub fn is_outage(&self) -> bool {
        self.disposition() == Disposition::Unavailable
    }

    /// A refusal that retrying the same request cannot change.
    pub fn is_permanent(&self) -> bool {
        self.disposition() == Disposition::Refused
    }

    /// Whether the upstream may have applied the request although it failed: it was sent, but
    /// no (complete) answer came back. A failed connect or an open circuit sent nothing; an
    /// answer, even an error, is an outcome.
    pub fn maybe_applied(&self) -> bool {
        matches!(
            self,
            UpstreamError::NoAnswer(_)
                | UpstreamError::UploadStalled
                | UpstreamError::BodyBroken(_)
                | UpstreamError::Protocol(_)
        )
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

pub(crate) async fn error_from(resp: Response<Incoming>) -> UpstreamError {
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
        let status = |s: u16, code: &str| UpstreamError::Status {
            status: s,
            code: code.into(),
            message: String::new(),
        };
        assert!(status(503, "SlowDown").is_outage() && !status(503, "").is_permanent());
        assert!(status(429, "").is_outage() && !status(429, "").is_permanent());
        assert!(status(400, "KeyTooLongError").is_permanent());
        assert!(status(501, "NotImplemented").is_permanent());
        assert!(
            status(200, "InternalError").is_outage(),
            "an error in a 200 body"
        );
        assert_eq!(
            status(403, "").disposition(),
            Disposition::Refused,
            "a HEAD's 403"
        );
        for (s, code) in [
            (403, "AccessDenied"),
            (403, "InvalidAccessKeyId"),
            (403, "SignatureDoesNotMatch"),
        ] {
            let e = status(s, code);
            assert_eq!(e.disposition(), Disposition::Denied, "{code}");
            assert!(!e.is_permanent() && !e.is_outage(), "{code}");
        }
        assert!(UpstreamError::NoAnswer(Duration::from_secs(3)).maybe_applied());
        assert!(UpstreamError::Protocol("reset".into()).maybe_applied());
        assert!(!UpstreamError::CircuitOpen.maybe_applied());
        assert!(!UpstreamError::Connect("refused".into()).maybe_applied());
        let local = UpstreamError::Local("too many open files".into());
        assert_eq!(local.disposition(), Disposition::Local);
        assert!(!local.is_permanent(), "a local error is never final");
    }
}
