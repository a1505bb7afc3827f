//! The upstream client: S3 requests re-signed with the upstream's own credentials (SigV4, built
//! from the same pure functions that verify clients), over a keep-alive pool, with connect /
//! first-byte timeouts, retries of idempotent requests with jittered exponential backoff
//! (bodies replayed from the local blob file, never from memory), and a circuit breaker.
//!
//! Toward the upstream Lifeboat speaks the plain dialect every S3 server accepts (DESIGN.md,
//! "Upstream compatibility"): plain bodies, a real `x-amz-content-sha256`, `Content-MD5` on
//! PUTs, and no `x-amz-checksum-*` headers.

pub mod breaker;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::auth::sigv4::{self, SigningKey};
use crate::body::ResponseBody;
use crate::config::UpstreamConfig;
use breaker::Breaker;

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

const CIRCUIT_OPEN: &str = "circuit open";

/// Upload progress of a request body, so that the first-byte timeout starts once the body is
/// sent and a stalled upload is caught by the idle timeout.
struct Progress {
    start: Instant,
    last_ms: AtomicU64,
    done_ms: AtomicU64,
}

impl Progress {
    fn new(done: bool) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            done_ms: AtomicU64::new(if done { 1 } else { 0 }),
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }
}

/// A request body that records its progress.
struct Tracked {
    inner: ResponseBody,
    progress: Arc<Progress>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        let now = self.progress.now_ms();
        match &polled {
            std::task::Poll::Ready(Some(Ok(_))) => {
                self.progress.last_ms.store(now, Ordering::Relaxed)
            }
            std::task::Poll::Ready(None) => {
                let _ = self.progress.done_ms.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Where a request body comes from; retries re-open it, so nothing is replayed from memory.
#[derive(Debug, Clone)]
pub enum BodySource {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of a blob file.
    File {
        path: std::path::PathBuf,
        len: u64,
    },
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
        }
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
}

pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Tracked>,
    scheme: String,
    authority: String,
    base_path: String,
    pub config: UpstreamConfig,
    pub breaker: Breaker,
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read upstream.ca_file {}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
        for c in certs {
            roots
                .add(c)
                .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Result<Self, String> {
        let uri: http::Uri = config
            .endpoint
            .parse()
            .map_err(|e| format!("bad upstream.endpoint: {e}"))?;
        let scheme = uri.scheme_str().unwrap_or("http").to_owned();
        let mut authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or("upstream.endpoint has no host")?;
        // hyper leaves a default port out of Host; the signed host must match it.
        for default in [":80", ":443"] {
            let matches_scheme = (default == ":80") == (uri.scheme_str() != Some("https"));
            if matches_scheme && let Some(a) = authority.strip_suffix(default) {
                authority = a.to_owned();
            }
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(config.ca_file.as_deref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build(https);
        Ok(Self {
            client,
            scheme,
            authority,
            base_path,
            breaker: Breaker::new(config.breaker_threshold, config.breaker_cooldown),
            config,
        })
    }

    /// The upstream bucket and key for a gateway bucket and key (the bucket map).
    pub fn map(&self, bucket: &str, key: &str) -> (String, String) {
        match &self.config.bucket {
            Some(u) => (u.clone(), format!("{bucket}/{key}")),
            None => (bucket.to_owned(), key.to_owned()),
        }
    }

    /// The upstream key prefix that holds a gateway bucket's keys ("" without a bucket map).
    pub fn key_prefix(&self, bucket: &str) -> String {
        match &self.config.bucket {
            Some(_) => format!("{bucket}/"),
            None => String::new(),
        }
    }

    fn build(
        &self,
        r: &UpstreamRequest,
    ) -> Result<(Request<Tracked>, Arc<Progress>), UpstreamError> {
        let local = |e: &dyn std::fmt::Display| UpstreamError::Local(e.to_string());
        let (host, mut path) = match (&r.bucket, self.config.path_style) {
            (Some(b), false) => (format!("{b}.{}", self.authority), String::new()),
            (Some(b), true) => (
                self.authority.clone(),
                format!("/{}", sigv4::uri_encode(b, true)),
            ),
            (None, _) => (self.authority.clone(), String::new()),
        };
        path = format!("{}{path}", self.base_path);
        match &r.key {
            Some(k) => {
                path.push('/');
                path.push_str(&sigv4::uri_encode(k, false));
            }
            None => path.push('/'),
        }
        let canonical_query = sigv4::canonical_query(&r.query);
        let uri = if canonical_query.is_empty() {
            format!("{}://{host}{path}", self.scheme)
        } else {
            format!("{}://{host}{path}?{canonical_query}", self.scheme)
        };
        let now = SystemTime::now();
        let amz_date = crate::auth::format_amz_date(now);
        let payload_hash = r
            .sha256
            .clone()
            .unwrap_or_else(|| sigv4::EMPTY_SHA256.to_owned());
        let len = match &r.body {
            BodySource::Empty => 0,
            BodySource::Bytes(b) => b.len() as u64,
            BodySource::File { len, .. } => *len,
        };
        let mut headers: Vec<(String, String)> = r.headers.clone();
        headers.push(("host".into(), host.clone()));
        headers.push(("x-amz-date".into(), amz_date.clone()));
        headers.push(("x-amz-content-sha256".into(), payload_hash.clone()));
        if len > 0 || r.method == Method::PUT || r.method == Method::POST {
            headers.push(("content-length".into(), len.to_string()));
        }
        headers.sort();
        let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        let signed = signed.join(";");
        let scope = sigv4::scope(&amz_date[..8], &self.config.region, "s3");
        let creq = sigv4::canonical_request(
            r.method.as_str(),
            &sigv4::canonical_uri(&path),
            &canonical_query,
            &headers,
            &signed,
            &payload_hash,
        );
        let key = SigningKey::derive(
            self.config.secret_key.expose(),
            now,
            &self.config.region,
            "s3",
        );
        let signature = key.sign(&sigv4::string_to_sign(&amz_date, &scope, &creq));
        let mut b = Request::builder().method(r.method.clone()).uri(uri);
        for (k, v) in &headers {
            if k != "host" {
                b = b.header(k.as_str(), v.as_str());
            }
        }
        b = b.header(
            "authorization",
            format!(
                "{} Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
                sigv4::ALGORITHM,
                self.config.access_key
            ),
        );
        // Bodies held in memory are tiny and count as sent at once.
        let (body, in_memory) = match &r.body {
            BodySource::Empty => (ResponseBody::Empty, true),
            BodySource::Bytes(b) => (ResponseBody::full(b.clone()), true),
            BodySource::File { path, len } => {
                let file = std::fs::File::open(path).map_err(|e| local(&e))?;
                (crate::body::stream_std_file(file, *len), false)
            }
        };
        let progress = Progress::new(in_memory);
        let req = b
            .body(Tracked {
                inner: body,
                progress: Arc::clone(&progress),
            })
            .map_err(|e| local(&e))?;
        Ok((req, progress))
    }

    /// Sends a request, retrying idempotent ones on outages with jittered exponential backoff.
    pub async fn send(&self, r: &UpstreamRequest) -> Result<Response<Incoming>, UpstreamError> {
        let attempts = if r.idempotent() {
            self.config.retries + 1
        } else {
            1
        };
        let mut last = UpstreamError::Unreachable("no attempt made".into());
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt, rand::random::<f64>())).await;
            }
            let Some(permit) = self.breaker.allow(Instant::now()) else {
                return Err(UpstreamError::Unreachable(CIRCUIT_OPEN.into()));
            };
            match self.send_once(r).await {
                Ok(resp) => {
                    permit.success();
                    return Ok(resp);
                }
                // Lifeboat's own problem: the upstream was not involved.
                Err(e @ UpstreamError::Local(_)) => return Err(e),
                Err(e) if !e.is_outage() => {
                    permit.success();
                    return Err(e);
                }
                Err(e) => {
                    permit.failure(&e.to_string(), Instant::now());
                    tracing::debug!(attempt, error = %e, "upstream request failed");
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn send_once(&self, r: &UpstreamRequest) -> Result<Response<Incoming>, UpstreamError> {
        let (req, progress) = self.build(r)?;
        let first_byte = self.config.first_byte_timeout.as_millis() as u64;
        let idle = self.config.idle_timeout.as_millis() as u64;
        let response = self.client.request(req);
        tokio::pin!(response);
        // The first-byte timeout runs from the end of the upload; while uploading, a pause
        // longer than the idle timeout fails the request.
        let resp = loop {
            tokio::select! {
                r = &mut response => break r,
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    let now = progress.now_ms();
                    let done = progress.done_ms.load(Ordering::Relaxed);
                    if done > 0 && now.saturating_sub(done) > first_byte {
                        return Err(UpstreamError::Unreachable("timed out waiting for the first byte".into()));
                    }
                    if done == 0 && now.saturating_sub(progress.last_ms.load(Ordering::Relaxed)) > idle.max(first_byte) {
                        return Err(UpstreamError::Unreachable("upload stalled".into()));
                    }
                }
            }
        }
        .map_err(|e| UpstreamError::Unreachable(format!("{e:?}")))?;
        let status = resp.status();
        if status.is_success()
            || status == StatusCode::NOT_MODIFIED
            || status == StatusCode::PARTIAL_CONTENT
        {
            return Ok(resp);
        }
        Err(error_from(resp).await)
    }

    /// Reads a (small) response body whole, with the idle timeout between frames.
    pub async fn read_body(
        &self,
        resp: Response<Incoming>,
        limit: usize,
    ) -> Result<Bytes, UpstreamError> {
        let mut body = resp.into_body();
        let mut out = Vec::new();
        loop {
            let frame = tokio::time::timeout(self.config.idle_timeout, body.frame())
                .await
                .map_err(|_| UpstreamError::Unreachable("upstream body stalled".into()))?;
            match frame {
                None => break,
                Some(Err(e)) => return Err(UpstreamError::Unreachable(e.to_string())),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        if out.len() + d.len() > limit {
                            return Err(UpstreamError::Local("upstream response too large".into()));
                        }
                        out.extend_from_slice(&d);
                    }
                }
            }
        }
        Ok(Bytes::from(out))
    }
}

/// Exponential backoff with full jitter: 100 ms × 2^attempt, capped at 5 s, times `jitter`
/// in [0, 1). The cap keeps a client's write from waiting long on an upstream that is down.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    Duration::from_millis(((base as f64) * jitter.clamp(0.0, 1.0)) as u64 + 10)
}

async fn error_from(resp: Response<Incoming>) -> UpstreamError {
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(5), async {
        let mut b = resp.into_body();
        let mut out = Vec::new();
        while let Some(Ok(f)) = b.frame().await {
            if let Ok(d) = f.into_data()
                && out.len() < 64 * 1024
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

/// Headers of an upstream response, for callers that pass some of them on.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(endpoint: &str, path_style: bool) -> Upstream {
        let toml = format!(
            "[upstream]\nendpoint = \"{endpoint}\"\naccess_key = \"a\"\nsecret_key = \"s\"\npath_style = {path_style}\n"
        );
        let config = crate::config::Config::from_toml(&toml, &|_| None)
            .ok()
            .and_then(|c| c.upstream)
            .expect("upstream config");
        Upstream::new(config).expect("upstream")
    }

    #[test]
    fn path_style_and_virtual_hosted_urls() {
        let r = UpstreamRequest::new(Method::GET, "my-bucket", Some("dir/a b+c~é"))
            .query("partNumber", "2");
        let (req, _) = upstream("http://127.0.0.1:8333", true)
            .build(&r)
            .expect("build");
        assert_eq!(
            req.uri().to_string(),
            "http://127.0.0.1:8333/my-bucket/dir/a%20b%2Bc~%C3%A9?partNumber=2"
        );
        let (req, _) = upstream("http://127.0.0.1:8333", false)
            .build(&r)
            .expect("build");
        assert_eq!(
            req.uri().to_string(),
            "http://my-bucket.127.0.0.1:8333/dir/a%20b%2Bc~%C3%A9?partNumber=2"
        );
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=a/")
                && auth.contains("SignedHeaders=host;")
        );
    }

    #[test]
    fn a_default_port_is_left_out_of_the_signed_host() {
        let r = UpstreamRequest::new(Method::HEAD, "b", None);
        let (req, _) = upstream("https://s3.example.com:443", true)
            .build(&r)
            .expect("build");
        assert_eq!(req.uri().to_string(), "https://s3.example.com/b/");
        let (req, _) = upstream("http://minio.local:9000/", true)
            .build(&r)
            .expect("build");
        assert_eq!(req.uri().to_string(), "http://minio.local:9000/b/");
    }

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
