//! The upstream client: S3 requests to the upstream S3 or MinIO, re-signed with the upstream's
//! own credentials (docs/ARCHITECTURE.md, "The upstream client").
//!
//! - `client`: the connection pool (hyper + rustls), timeouts (connect, first byte, idle) and
//!   retries of idempotent requests, with bodies replayed from the local blob file, never from
//!   memory;
//! - `signing`: turning an `UpstreamRequest` into a signed HTTP request (SigV4, built from the
//!   same pure functions that verify clients);
//! - `error`: failures typed by what happened; `retry`: what each means (retry, breaker, outbox)
//!   and the backoff;
//! - `breaker`: the circuit breaker in front of it all.
//!
//! Toward the upstream Lifeboat speaks the plain dialect every S3 server accepts (README,
//! "Gateway mode", upstream dialect): plain bodies, a real `x-amz-content-sha256`,
//! `Content-MD5` on PUTs, and the client's `x-amz-checksum-*` only where the upstream has not
//! refused them (gateway/push.rs).

pub mod breaker;
mod client;
mod error;
mod retry;
mod signing;

use bytes::Bytes;
use http::{HeaderMap, Method};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::config::UpstreamConfig;
use breaker::Breaker;
use client::Tracked;
pub(crate) use client::https_client;
pub use error::UpstreamError;
pub(crate) use error::error_from;
pub use retry::{Disposition, backoff};

/// Where a request body comes from; retries re-open it, so nothing is replayed from memory.
#[derive(Debug, Clone)]
pub enum BodySource {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of a local blob, opened afresh for every attempt.
    Reader {
        open: OpenBody,
        len: u64,
    },
}

/// Opens a blocking reader over a request body, once per attempt: the gateway hands one that
/// reads a blob's plaintext (decrypting a sealed blob), so the upstream never sees ciphertext.
#[derive(Clone)]
pub struct OpenBody(
    pub std::sync::Arc<dyn Fn() -> std::io::Result<Box<dyn std::io::Read + Send>> + Send + Sync>,
);

impl std::fmt::Debug for OpenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpenBody")
    }
}

/// One request to the upstream, before signing.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    pub method: Method,
    /// Upstream bucket and key (already mapped).
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: BodySource,
    /// Hex SHA-256 of the body; `None` for an empty body.
    pub sha256: Option<String>,
    /// One attempt only, even when idempotent (a caller with its own fallback, such as a
    /// `through` write that is queued when the upstream fails).
    pub once: bool,
}

impl UpstreamRequest {
    pub fn new(method: Method, bucket: &str, key: Option<&str>) -> Self {
        Self {
            method,
            bucket: Some(bucket.to_owned()),
            key: key.map(str::to_owned),
            query: Vec::new(),
            headers: Vec::new(),
            body: BodySource::Empty,
            sha256: None,
            once: false,
        }
    }

    /// One attempt only (see `once`) when `once` is true.
    pub fn once(mut self, once: bool) -> Self {
        self.once = once;
        self
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_ascii_lowercase(), v.into()));
        self
    }

    fn idempotent(&self) -> bool {
        self.method != Method::POST
    }

    /// The S3 operation this request is, for metrics (a fixed word, never a key).
    pub fn operation(&self) -> &'static str {
        let has = |k: &str| self.query.iter().any(|(q, _)| q == k);
        let copy = self.headers.iter().any(|(h, _)| h == "x-amz-copy-source");
        match (&self.method, self.key.is_some()) {
            (&Method::GET, true) if has("uploadId") => "ListParts",
            (&Method::GET, true) => "GetObject",
            (&Method::HEAD, true) => "HeadObject",
            (&Method::PUT, true) if has("partNumber") && copy => "UploadPartCopy",
            (&Method::PUT, true) if has("partNumber") => "UploadPart",
            (&Method::PUT, true) if copy => "CopyObject",
            (&Method::PUT, true) => "PutObject",
            (&Method::DELETE, true) if has("uploadId") => "AbortMultipartUpload",
            (&Method::DELETE, true) => "DeleteObject",
            (&Method::POST, true) if has("uploads") => "CreateMultipartUpload",
            (&Method::POST, true) if has("uploadId") => "CompleteMultipartUpload",
            (&Method::GET, false) if has("uploads") => "ListMultipartUploads",
            (&Method::GET, false) if has("list-type") => "ListObjectsV2",
            (&Method::GET, false) if self.bucket.is_none() => "ListBuckets",
            (&Method::GET, false) => "ListObjects",
            (&Method::HEAD, false) => "HeadBucket",
            (&Method::PUT, false) => "CreateBucket",
            (&Method::DELETE, false) => "DeleteBucket",
            (&Method::POST, false) if has("delete") => "DeleteObjects",
            _ => "Other",
        }
    }
}

/// What the last upstream attempts showed, for the status document.
#[derive(Debug)]
pub struct Health {
    /// The last attempt got an HTTP answer (any status).
    reachable: std::sync::atomic::AtomicBool,
    /// Whether any attempt has been made yet.
    tried: std::sync::atomic::AtomicBool,
    /// Latency of the last answered attempt, to the response head (`u64::MAX`: none yet).
    latency_ms: std::sync::atomic::AtomicU64,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            reachable: std::sync::atomic::AtomicBool::new(false),
            tried: std::sync::atomic::AtomicBool::new(false),
            latency_ms: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }
}

impl Health {
    pub(crate) fn record(&self, answered: bool, latency: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.tried.store(true, Relaxed);
        self.reachable.store(answered, Relaxed);
        if answered {
            self.latency_ms.store(
                u64::try_from(latency.as_millis()).unwrap_or(u64::MAX - 1),
                Relaxed,
            );
        }
    }

    /// `None` before the first attempt.
    pub fn reachable(&self) -> Option<bool> {
        use std::sync::atomic::Ordering::Relaxed;
        self.tried
            .load(Relaxed)
            .then(|| self.reachable.load(Relaxed))
    }

    /// `None` until an attempt got an answer.
    pub fn latency_ms(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        Some(self.latency_ms.load(Relaxed)).filter(|l| *l != u64::MAX)
    }
}

pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Tracked>,
    scheme: String,
    authority: String,
    base_path: String,
    pub config: UpstreamConfig,
    pub breaker: Breaker,
    pub health: Health,
    /// Set while the upstream's last verdict was a refusal of the credentials (`Denied`), so
    /// that callers that meet an open circuit still know why it opened.
    credentials_refused: std::sync::atomic::AtomicBool,
}

impl Upstream {
    /// Whether the upstream refused the credentials last time it answered.
    pub fn credentials_refused(&self) -> bool {
        self.credentials_refused
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn note_credentials(&self, refused: bool) {
        self.credentials_refused
            .store(refused, std::sync::atomic::Ordering::Relaxed);
    }

    /// The upstream bucket and key for a gateway bucket and key (the bucket map).
    pub fn map(&self, bucket: &str, key: &str) -> (String, String) {
        match &self.config.bucket {
            Some(u) => (u.clone(), format!("{bucket}/{key}")),
            None => (bucket.to_owned(), key.to_owned()),
        }
    }

    /// The gateway bucket and key of an upstream bucket and key (`map` undone); `None` for an
    /// upstream object outside what this gateway maps.
    pub fn unmap(&self, bucket: &str, key: &str) -> Option<(String, String)> {
        match &self.config.bucket {
            Some(u) if u == bucket => key
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .map(|(b, k)| (b.to_owned(), k.to_owned())),
            Some(_) => None,
            None => Some((bucket.to_owned(), key.to_owned())),
        }
    }

    /// The upstream key prefix that holds a gateway bucket's keys ("" without a bucket map).
    pub fn key_prefix(&self, bucket: &str) -> String {
        match &self.config.bucket {
            Some(_) => format!("{bucket}/"),
            None => String::new(),
        }
    }
}

/// Headers of an upstream response, for callers that pass some of them on.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}
