//! The listeners: the S3 API (`dispatch` answers each request) and the admin API
//! (`crate::admin`), both HTTP/1.1 and HTTP/2 (hyper-util's auto builder) through one accept
//! loop with graceful shutdown. The admin listener is bound first, so health checks answer
//! while the store recovers.

mod dispatch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::admin::Admin;
use crate::auth::{AuthSettings, Users};
use crate::body::CountedBody;
use crate::config::Config;
use crate::context::Context;
use crate::limits::{
    ACCEPT_RETRY, FIRST_BYTE_QUEUE, HEADER_BUFFER_FACTOR, MAX_HEADER_COUNT, MIN_HEADER_BUFFER,
    SHUTDOWN_GRACE, UPLOAD_SWEEP_MAX,
};
use crate::replication::Replication;
use crate::store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot open the store in {path}: {source}")]
    Store {
        path: String,
        source: crate::store::StoreError,
    },
    #[error("{0}")]
    Refused(String),
}

/// Everything a request needs, shared by all connections (and by the admin API).
pub struct App {
    ctx: Context,
    users: Users,
    auth: AuthSettings,
    /// Where the S3 listener is bound (presigned URLs point here without `public_url`).
    s3_address: SocketAddr,
}

impl App {
    /// Builds the shared state; in gateway mode this starts the outbox replay worker.
    pub fn new(config: Config, store: Store, s3_address: SocketAddr) -> Result<Self, ServerError> {
        let replication = Replication::start(&config, &store).map_err(ServerError::Refused)?;
        Ok(Self {
            s3_address,
            users: Users::new(&config.users),
            auth: AuthSettings {
                clock_skew: config.limits.clock_skew,
                sigv2: config.server.sigv2,
            },
            ctx: Context {
                config,
                store,
                replication,
            },
        })
    }
}

impl App {
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    pub fn users(&self) -> &Users {
        &self.users
    }

    pub fn auth_settings(&self) -> &AuthSettings {
        &self.auth
    }

    pub fn s3_address(&self) -> SocketAddr {
        self.s3_address
    }
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServerError> {
    let bind_error = |source| ServerError::Bind {
        address: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Binds the admin listener (health answers during recovery), opens the store, binds the S3
/// listener and serves both until SIGINT/SIGTERM.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let addr: SocketAddr = config.server.address;
    if config.dev_credentials {
        for a in [addr, config.server.admin_address] {
            if !a.ip().is_loopback() {
                return Err(ServerError::Refused(format!(
                    "refusing to listen on non-loopback {a} with the well-known development credentials; \
                     set LIFEBOAT_ACCESS_KEY/LIFEBOAT_SECRET_KEY or [[users]]"
                )));
            }
        }
        tracing::warn!(
            access_key = crate::config::DEV_ACCESS_KEY,
            "no users configured: using the well-known development credentials (loopback only)"
        );
        eprintln!(
            "WARNING: no credentials configured; using the development pair\n  access key: {}\n  secret key: {}",
            crate::config::DEV_ACCESS_KEY,
            crate::config::DEV_SECRET_KEY
        );
    }
    let (admin_listener, admin_local) = bind(config.server.admin_address).await?;
    let admin = Arc::new(Admin::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let header_timeout = config.limits.header_timeout;
    let admin_builder = connection_builder(config.limits.max_header_bytes, header_timeout);
    let admin_task = {
        let admin = Arc::clone(&admin);
        let stop = stopped();
        tokio::spawn(async move {
            let handler = move |req, remote| {
                let admin = Arc::clone(&admin);
                async move { crate::admin::handle(&admin, req, remote).await }
            };
            accept_loop(admin_listener, admin_builder, header_timeout, handler, stop).await;
        })
    };
    tracing::info!(address = %admin_local, "admin API listening");
    println!("lifeboat admin listening on http://{admin_local}");
    let data_dir = config.storage.data_dir.clone();
    let key = config.storage.encryption_key.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&data_dir, key))
        .await
        .map_err(|e| ServerError::Refused(e.to_string()))?
        .map_err(|source| ServerError::Store {
            path: config.storage.data_dir.display().to_string(),
            source,
        })?;
    let (listener, local) = bind(addr).await?;
    spawn_upload_cleaner(
        store.clone(),
        config.limits.abandoned_upload,
        config.limits.completed_upload,
    );
    let app = Arc::new(App::new(config, store, local)?);
    admin.ready(Arc::clone(&app));
    tracing::info!(address = %local, "S3 API listening");
    // Tests and scripts read this line to learn the port when address ends in :0.
    println!("lifeboat listening on http://{local}");
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    serve(listener, app, stopped()).await;
    let _ = admin_task.await;
    Ok(())
}

/// Aborts multipart uploads older than `max_age`, checking every half of that (at most
/// hourly, at least every second), and forgets completed uploads older than `keep_completed`.
fn spawn_upload_cleaner(store: Store, max_age: Duration, keep_completed: Duration) {
    let max_age_secs = max_age.as_secs();
    let shortest = max_age_secs.min(keep_completed.as_secs());
    let every = Duration::from_secs((shortest / 2).clamp(1, UPLOAD_SWEEP_MAX.as_secs()));
    let ago = |d: u64| crate::time::now_ms() - (d as i64).saturating_mul(1000);
    tokio::spawn(async move {
        loop {
            match store.abort_uploads_before(ago(max_age_secs)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(aborted = n, "aborted abandoned multipart uploads"),
                Err(e) => tracing::warn!(error = %e, "abandoned-upload cleanup failed"),
            }
            if let Err(e) = store
                .forget_completed_before(ago(keep_completed.as_secs()))
                .await
            {
                tracing::warn!(error = %e, "cannot forget old completed uploads");
            }
            tokio::time::sleep(every).await;
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// HTTP/1.1 and HTTP/2 (by preface) with the header limits of both listeners.
fn connection_builder(
    max_header_bytes: usize,
    header_timeout: Duration,
) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_headers(MAX_HEADER_COUNT)
        // Headers past our own limit are answered with RequestHeaderSectionTooLarge by the
        // handler; hyper's own cut-off sits well above it.
        .max_buf_size((max_header_bytes * HEADER_BUFFER_FACTOR).max(MIN_HEADER_BUFFER));
    builder
}

/// Serves the S3 API on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let limits = &app.ctx.config.limits;
    let header_timeout = limits.header_timeout;
    let builder = connection_builder(limits.max_header_bytes, header_timeout);
    let handler = move |req, remote| {
        let app = Arc::clone(&app);
        async move { CountedBody::wrap(dispatch::handle(&app, req, remote).await) }
    };
    accept_loop(listener, builder, header_timeout, handler, shutdown).await;
}

/// Accepts connections until `shutdown` resolves, answering each request with `handler`, then
/// drains in-flight requests (both listeners run this loop).
async fn accept_loop<H, Fut>(
    listener: TcpListener,
    builder: auto::Builder<TokioExecutor>,
    first_byte: Duration,
    handler: H,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<CountedBody>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    // A connection is served once its first byte arrives, within `first_byte`; one that sends
    // nothing is closed then (hyper's protocol detection has no deadline of its own).
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(FIRST_BYTE_QUEUE);
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    let ready = ready_tx.clone();
                    tokio::spawn(async move {
                        let mut one = [0u8; 1];
                        if let Ok(Ok(n)) = tokio::time::timeout(first_byte, stream.peek(&mut one)).await
                            && n > 0
                        {
                            let _ = ready.send((stream, remote)).await;
                        }
                    });
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            Some(ready) = ready_rx.recv() => ready,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let svc = service_fn(move |req| {
            let answer = handler(req, remote);
            async move { Ok::<_, std::convert::Infallible>(answer.await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests did not finish in time");
    }
}

/// A request id: 16 upper-case hex digits, as AWS's look.
pub fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}
