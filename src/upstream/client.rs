//! The upstream connection pool and request loop: keep-alive connections over hyper and
//! rustls (system roots plus `upstream.ca_file`), connect / first-byte / idle timeouts, retries
//! of idempotent requests with jittered backoff behind the circuit breaker, and small bodies
//! read whole through a limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::breaker::Breaker;
use super::error::error_from;
use super::retry::{Disposition, backoff};
use super::{Upstream, UpstreamError, UpstreamRequest};
use crate::body::ResponseBody;
use crate::config::UpstreamConfig;
use crate::limits::{
    UPSTREAM_LARGE_BODY as LARGE_BODY, UPSTREAM_POOL_IDLE, UPSTREAM_POOL_MAX_IDLE,
    UPSTREAM_PROGRESS_TICK,
};

/// Upload progress of a request body, so that the first-byte timeout starts once the body is
/// sent and a stalled upload is caught by the idle timeout.
pub(super) struct Progress {
    start: Instant,
    last_ms: AtomicU64,
    done_ms: AtomicU64,
}

impl Progress {
    pub(super) fn new(done: bool) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            done_ms: AtomicU64::new(if done { 1 } else { 0 }),
        })
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// Records that the whole body has been handed to the connection (the first time only).
    fn mark_done(&self) {
        let _ =
            self.done_ms
                .compare_exchange(0, self.now_ms(), Ordering::Relaxed, Ordering::Relaxed);
    }
}

/// A request body that records its progress.
pub(super) struct Tracked {
    pub(super) inner: ResponseBody,
    pub(super) progress: Arc<Progress>,
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
                self.progress.last_ms.store(now, Ordering::Relaxed);
                // hyper stops polling a body that reports its end, so its last frame is when
                // the upload is done: the first-byte timeout runs from here.
                if self.inner.is_end_stream() {
                    self.progress.mark_done();
                }
            }
            std::task::Poll::Ready(None) => self.progress.mark_done(),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let end = self.inner.is_end_stream();
        if end {
            self.progress.mark_done();
        }
        end
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// A TLS client configuration: the system roots plus the certificates in `ca_file`
/// (`label` names the setting in errors). The admin CLI uses it too.
fn tls_config(
    ca_file: Option<&std::path::Path>,
    label: &str,
) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read {label} {}: {e}", path.display()))?
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

/// A plain client over HTTP or HTTPS (system roots plus `ca_file`) for Lifeboat's own calls:
/// the admin CLI, peer notices, and `lifeboat bench`. The upstream's client (`Upstream::new`) adds its
/// timeouts and pool settings.
pub(crate) fn https_client<B>(
    ca_file: Option<&std::path::Path>,
    label: &str,
) -> Result<
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, B>,
    String,
>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
{
    // No Nagle delay: a request's last small segment goes out at once (`lifeboat bench`
    // measures latency through this client).
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(ca_file, label)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
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
            .with_tls_config(tls_config(config.ca_file.as_deref(), "upstream.ca_file")?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(UPSTREAM_POOL_IDLE)
            .pool_max_idle_per_host(UPSTREAM_POOL_MAX_IDLE)
            .build(https);
        Ok(Self {
            client,
            scheme,
            authority,
            base_path,
            breaker: Breaker::new(config.breaker_threshold, config.breaker_cooldown),
            health: super::Health::default(),
            credentials_refused: std::sync::atomic::AtomicBool::new(false),
            config,
        })
    }

    /// Sends a request, retrying idempotent ones on outages with jittered exponential backoff
    /// (`retry.rs` says which failures are retried and which count against the breaker).
    pub async fn send(&self, r: &UpstreamRequest) -> Result<Response<Incoming>, UpstreamError> {
        let attempts = if r.idempotent() && !r.once {
            self.config.retries + 1
        } else {
            1
        };
        let mut attempt = 0;
        // A failure after which the upstream may hold the request: reported over a later,
        // emptier one (an open circuit, a refused connect), so the caller can reconcile.
        let mut maybe_applied: Option<UpstreamError> = None;
        loop {
            let Some(permit) = self.breaker.allow(Instant::now()) else {
                return Err(maybe_applied.unwrap_or(UpstreamError::CircuitOpen));
            };
            let e = match self.send_measured(r).await {
                Ok(resp) => {
                    permit.success();
                    self.note_credentials(false);
                    return Ok(resp);
                }
                Err(e) => e,
            };
            match e.disposition() {
                // Lifeboat's own problem: the upstream was not involved.
                Disposition::Local => return Err(e),
                // The upstream is up and said no.
                Disposition::Refused => {
                    permit.success();
                    self.note_credentials(false);
                    return Err(e);
                }
                // The same credentials would get the same answer: no retry, but the circuit
                // opens, so a wrong secret does not cost every request a round trip.
                Disposition::Denied => {
                    permit.failure(&e.to_string(), Instant::now());
                    self.note_credentials(true);
                    return Err(e);
                }
                Disposition::Unavailable => {
                    permit.failure(&e.to_string(), Instant::now());
                    self.note_credentials(false);
                    tracing::debug!(attempt, error = %e, "upstream request failed");
                    let e = match maybe_applied.take() {
                        Some(earlier) if !e.maybe_applied() => earlier,
                        _ => e,
                    };
                    attempt += 1;
                    if attempt >= attempts {
                        return Err(e);
                    }
                    if e.maybe_applied() {
                        maybe_applied = Some(e);
                    }
                    tokio::time::sleep(backoff(attempt, rand::random::<f64>())).await;
                }
            }
        }
    }

    /// One attempt, counted in the metrics and in `health`.
    async fn send_measured(
        &self,
        r: &UpstreamRequest,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let started = Instant::now();
        let result = self.send_once(r).await;
        let elapsed = started.elapsed();
        let (outcome, answered) = match &result {
            Ok(_) => ("ok", true),
            Err(UpstreamError::Status { status, .. }) if *status < 500 => ("4xx", true),
            Err(UpstreamError::Status { .. }) => ("5xx", true),
            Err(UpstreamError::NoAnswer(_) | UpstreamError::UploadStalled) => ("timeout", false),
            Err(UpstreamError::Connect(_)) => ("connect_error", false),
            Err(UpstreamError::Local(_)) => ("local_error", true),
            Err(_) => ("error", false),
        };
        if outcome != "local_error" {
            self.health.record(answered, elapsed);
        }
        crate::metrics::upstream_request(r.operation(), outcome, elapsed);
        result
    }

    async fn send_once(&self, r: &UpstreamRequest) -> Result<Response<Incoming>, UpstreamError> {
        let (req, progress) = self.build(r)?;
        // A large body may still be draining from the socket buffers when hyper has taken its
        // last frame, and CompleteMultipartUpload and server-side copies do their work before
        // they answer (AWS documents minutes for a large Complete): such requests get the idle
        // timeout for their answer too.
        let large = matches!(&r.body, super::BodySource::Reader { len, .. } if *len > LARGE_BODY);
        let completes =
            r.method == http::Method::POST && r.query.iter().any(|(k, _)| k == "uploadId");
        let copies = r.headers.iter().any(|(k, _)| k == "x-amz-copy-source");
        let first_byte = if large || completes || copies {
            self.config.first_byte_timeout.max(self.config.idle_timeout)
        } else {
            self.config.first_byte_timeout
        };
        let first_byte_ms = first_byte.as_millis() as u64;
        let idle = self.config.idle_timeout.as_millis() as u64;
        let response = self.client.request(req);
        tokio::pin!(response);
        // The first-byte timeout runs from the end of the upload; while uploading, a pause
        // longer than the idle timeout fails the request.
        let resp = loop {
            tokio::select! {
                r = &mut response => break r,
                () = tokio::time::sleep(UPSTREAM_PROGRESS_TICK) => {
                    let now = progress.now_ms();
                    let done = progress.done_ms.load(Ordering::Relaxed);
                    if done > 0 && now.saturating_sub(done) > first_byte_ms {
                        return Err(UpstreamError::NoAnswer(first_byte));
                    }
                    if done == 0 && now.saturating_sub(progress.last_ms.load(Ordering::Relaxed)) > idle.max(first_byte_ms) {
                        return Err(UpstreamError::UploadStalled);
                    }
                }
            }
        }
        .map_err(|e| {
            if e.is_connect() {
                UpstreamError::Connect(e.to_string())
            } else {
                UpstreamError::Protocol(format!("{e:?}"))
            }
        })?;
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
                .map_err(|_| UpstreamError::BodyBroken("stalled".into()))?;
            match frame {
                None => break,
                Some(Err(e)) => return Err(UpstreamError::BodyBroken(e.to_string())),
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        if out.len() + d.len() > limit {
                            return Err(UpstreamError::BadAnswer("response too large".into()));
                        }
                        out.extend_from_slice(&d);
                    }
                }
            }
        }
        Ok(Bytes::from(out))
    }
}
