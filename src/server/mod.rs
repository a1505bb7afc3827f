//! The listeners: the S3 API (`dispatch` answers each request) and the admin API
//! (`crate::admin`), both HTTP/1.1 and HTTP/2 (hyper-util's auto builder), optionally over TLS
//! (`tls`), through one accept loop (`listener`) with its connection limits and graceful
//! shutdown. The admin listener is bound first, so health checks answer while the store
//! recovers. On SIGTERM or ctrl-c both stop accepting, requests in flight finish (up to
//! `server.shutdown_grace_seconds`), the replay worker stops after its current entry, and the
//! store closes when the last reference to it goes.

pub mod access;
mod dispatch;
mod framing;
mod head_guard;
mod listener;
mod rate;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::admin::Admin;
use crate::auth::{AuthSettings, Users};
use crate::config::Config;
use crate::context::Context;
use crate::limits::UPLOAD_SWEEP_MAX;
use crate::replication::Replication;
use crate::store::Store;
use listener::{ConnectionRules, accept_loop};
use tls::Tls;

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
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
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
    /// Requests per second per access key, when limited.
    rate: Option<rate::RateLimiter>,
    /// The "user" of an anonymous read of a public bucket: no key, no grants.
    anonymous: Arc<crate::auth::policy::User>,
    /// `server.node_name`, as the `x-lifeboat-node` header and the access log's field.
    node: http::HeaderValue,
    node_name: Arc<str>,
}

impl App {
    /// Builds the shared state; in gateway mode this starts the outbox replay worker.
    pub fn new(config: Config, store: Store, s3_address: SocketAddr) -> Result<Self, ServerError> {
        let replication = Replication::start(&config, &store).map_err(ServerError::Refused)?;
        let rate = rate::RateLimiter::new(
            config.limits.requests_per_second,
            config.limits.request_burst,
        );
        let anonymous = Arc::new(crate::auth::policy::User {
            access_key: String::new(),
            secret_key: crate::secret::Secret::new(String::new()),
            admin: false,
            grants: Vec::new(),
            own_buckets: false,
        });
        // Checked at load: a node name is letters, digits, '.', '_' and '-'.
        let node = http::HeaderValue::from_str(&config.server.node_name)
            .map_err(|_| ServerError::Refused("server.node_name is not a header value".into()))?;
        Ok(Self {
            node,
            node_name: Arc::from(config.server.node_name.as_str()),
            s3_address,
            rate,
            anonymous,
            users: Users::new(&config.users),
            auth: AuthSettings {
                clock_skew: config.limits.clock_skew,
                region: config.server.enforced_region().map(Arc::from),
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

    /// The scheme clients reach the S3 listener with.
    pub fn s3_scheme(&self) -> &'static str {
        match self.ctx.config.server.tls_cert {
            Some(_) => "https",
            None => "http",
        }
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
    crate::metrics::set_node(&config.server.node_name);
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
    let tls = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::load(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let rules = ConnectionRules::new(&config, tls.clone());
    let (admin_listener, admin_local) = bind(config.server.admin_address).await?;
    let admin = Arc::new(Admin::new());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let admin_task = {
        let admin = Arc::clone(&admin);
        let (rules, stop) = (rules.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let handler = move |req, remote| {
                let admin = Arc::clone(&admin);
                async move { crate::admin::handle(&admin, req, remote).await }
            };
            accept_loop(admin_listener, rules, handler, stop).await;
        })
    };
    tracing::info!(address = %admin_local, "admin API listening");
    println!("lifeboat admin listening on {scheme}://{admin_local}");
    tokio::spawn(async move {
        shutdown_signal(tls).await;
        let _ = stop_tx.send(true);
    });
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
    if let Some(region) = app.ctx.config.server.enforced_region() {
        tracing::info!(
            region,
            "server.region is set: credentials scoped to another region are refused"
        );
    }
    // Tests and scripts read this line to learn the port when address ends in :0.
    println!("lifeboat listening on {scheme}://{local}");
    let handler = {
        let app = Arc::clone(&app);
        move |req, remote| {
            let app = Arc::clone(&app);
            async move { dispatch::handle(&app, req, remote).await }
        }
    };
    let rules = rules.with_head_guard(&app.ctx.config);
    accept_loop(listener, rules, handler, stop_rx).await;
    let _ = admin_task.await;
    app.ctx.replication.stop().await;
    tracing::info!("stopped");
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

/// Resolves on SIGTERM or ctrl-c; meanwhile SIGHUP reloads the TLS certificate.
async fn shutdown_signal(tls: Option<Arc<Tls>>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                _ = term.recv() => break,
                _ = hup.recv() => match &tls {
                    Some(t) => match t.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS reload failed; the old certificate stays"),
                    },
                    None => tracing::info!("SIGHUP: nothing to reload (no TLS)"),
                },
            }
        }
        tracing::info!("shutdown requested");
    }
    #[cfg(not(unix))]
    {
        let _ = tls;
        let _ = ctrl_c.await;
    }
}

/// A request id: 16 upper-case hex digits, as AWS's look.
pub fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}
