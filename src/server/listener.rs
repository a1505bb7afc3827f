//! One accept loop for both listeners: the connection limit, the first-byte deadline, TLS, the
//! idle timeout, and the drain on shutdown.
//!
//! Each accepted connection is one task, holding one of `limits.max_connections` permits (at
//! the limit the loop stops accepting, so new connections wait in the kernel's backlog while
//! open ones keep working). A connection must send its first byte within
//! `limits.first_byte_timeout_seconds` (hyper's protocol detection has no deadline of its own)
//! and finish a TLS handshake within `limits.header_timeout_seconds`, the deadline hyper then
//! holds each header block to; it is closed after `limits.idle_timeout_seconds`
//! with no request in flight. On shutdown every connection is told to finish its requests in
//! flight and close; the loop waits for that up to `server.shutdown_grace_seconds`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use super::head_guard::{HeadGuard, HeadLimits};
use super::tls::Tls;
use crate::body::CountedBody;
use crate::config::Config;
use crate::limits::{
    ACCEPT_RETRY, CONNECTION_LIMIT_WARN_EVERY, HEADER_BUFFER_FACTOR, MAX_HEADER_COUNT,
    MIN_HEADER_BUFFER,
};

/// What one listener enforces on its connections.
#[derive(Clone)]
pub struct ConnectionRules {
    pub first_byte: Duration,
    /// The TLS handshake's deadline (`limits.header_timeout_seconds`).
    pub handshake: Duration,
    pub idle: Duration,
    pub max_connections: usize,
    pub grace: Duration,
    pub tls: Option<Arc<Tls>>,
    /// HTTP/1.1 heads held to the limits below hyper (the S3 listener: its S3 XML refusal).
    pub head_guard: Option<HeadLimits>,
    builder: auto::Builder<TokioExecutor>,
}

impl ConnectionRules {
    pub fn new(config: &Config, tls: Option<Arc<Tls>>) -> Self {
        let limits = &config.limits;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_headers(MAX_HEADER_COUNT)
            // Headers past our own limit are answered with RequestHeaderSectionTooLarge by the
            // handler; hyper's own cut-off sits well above it.
            .max_buf_size((limits.max_header_bytes * HEADER_BUFFER_FACTOR).max(MIN_HEADER_BUFFER));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(
                u32::try_from(limits.max_header_bytes * HEADER_BUFFER_FACTOR).unwrap_or(u32::MAX),
            );
        Self {
            first_byte: limits.first_byte_timeout,
            handshake: limits.header_timeout,
            idle: limits.idle_timeout,
            max_connections: limits.max_connections,
            grace: config.server.shutdown_grace,
            tls,
            head_guard: None,
            builder,
        }
    }

    /// The same rules, with request heads checked by `HeadGuard` before hyper parses them.
    pub fn with_head_guard(mut self, config: &Config) -> Self {
        self.head_guard = Some(HeadLimits {
            max_bytes: config.limits.max_header_bytes,
            // One less than hyper's own count: hyper may see the start of one more line.
            max_headers: MAX_HEADER_COUNT - 1,
        });
        self
    }
}

/// Requests in flight on one connection, and when the last one ended.
pub(super) struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<Instant>,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(Instant::now()),
        })
    }

    /// No request in flight.
    pub(super) fn idle(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }

    /// Counts a request in; the guard counts it out when dropped.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Resolves once no request has been in flight for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let wait = if self.in_flight.load(Ordering::SeqCst) > 0 {
                idle
            } else {
                let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
                let deadline = last + idle;
                let now = Instant::now();
                if deadline <= now {
                    return;
                }
                deadline - now
            };
            tokio::time::sleep(wait).await;
        }
    }
}

struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections until `stop` turns true, answering each request with `handler`, then
/// waits for the connections to drain, up to the grace period.
pub async fn accept_loop<H, Fut>(
    listener: TcpListener,
    rules: ConnectionRules,
    handler: H,
    mut stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<CountedBody>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(rules.max_connections));
    let mut last_warning: Option<Instant> = None;
    loop {
        if permits.available_permits() == 0
            && last_warning.is_none_or(|t| t.elapsed() >= CONNECTION_LIMIT_WARN_EVERY)
        {
            tracing::warn!(
                max_connections = rules.max_connections,
                "at the connection limit: new connections wait until one closes"
            );
            last_warning = Some(Instant::now());
        }
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let rules = rules.clone();
        let handler = handler.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            connection(stream, remote, rules, handler, stop).await;
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for requests in flight");
    let all = u32::try_from(rules.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(rules.grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            grace_seconds = rules.grace.as_secs(),
            "requests in flight did not finish in the grace period"
        );
    }
}

/// One connection: its first byte, its TLS handshake, then HTTP until it closes.
async fn connection<H, Fut>(
    stream: tokio::net::TcpStream,
    remote: SocketAddr,
    rules: ConnectionRules,
    handler: H,
    mut stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<CountedBody>> + Send + 'static,
{
    let mut one = [0u8; 1];
    let first = tokio::select! {
        r = tokio::time::timeout(rules.first_byte, stream.peek(&mut one)) => r,
        () = stopped(&mut stop) => return,
    };
    if !matches!(first, Ok(Ok(n)) if n > 0) {
        return;
    }
    let _ = stream.set_nodelay(true);
    match &rules.tls {
        None => http(stream, remote, &rules, handler, stop).await,
        Some(tls) => {
            let acceptor = tls.acceptor();
            match tokio::time::timeout(rules.handshake, acceptor.accept(stream)).await {
                Ok(Ok(tls_stream)) => http(tls_stream, remote, &rules, handler, stop).await,
                Ok(Err(e)) => {
                    tracing::debug!(client = %remote.ip(), error = %e, "TLS handshake failed")
                }
                Err(_) => tracing::debug!(client = %remote.ip(), "TLS handshake timed out"),
            }
        }
    }
}

async fn http<I, H, Fut>(
    io: I,
    remote: SocketAddr,
    rules: &ConnectionRules,
    handler: H,
    stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<CountedBody>> + Send + 'static,
{
    let activity = Activity::new();
    match rules.head_guard {
        Some(limits) => {
            let io = HeadGuard::new(io, Arc::clone(&activity), limits);
            serve(io, activity, remote, rules, handler, stop).await;
        }
        None => serve(io, activity, remote, rules, handler, stop).await,
    }
}

async fn serve<I, H, Fut>(
    io: I,
    activity: Arc<Activity>,
    remote: SocketAddr,
    rules: &ConnectionRules,
    handler: H,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<CountedBody>> + Send + 'static,
{
    let svc = {
        let activity = Arc::clone(&activity);
        service_fn(move |req| {
            let in_flight = activity.begin();
            let answer = handler(req, remote);
            async move {
                let mut resp = answer.await;
                resp.body_mut().on_end(Box::new(move |_| drop(in_flight)));
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    };
    let conn = rules.builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = stopped(&mut stop), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = activity.idle_for(rules.idle), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Resolves once shutdown has been asked for.
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
