//! The S3 listener: accepts connections (HTTP/1.1 and HTTP/2 via hyper-util's auto builder),
//! gives every request an id, authenticates, routes, authorizes and dispatches it, and renders
//! every failure as S3 XML at this one edge.
//!
//! The accept loop is generic over the I/O type so that a rustls acceptor can slide in later.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::auth::policy::{Action, Resource};
use crate::auth::{self, AuthSettings, Users};
use crate::body::{RequestBody, ResponseBody};
use crate::config::Config;
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::handlers::{
    S3Response, acl, bucket, copy, delete, get, list, multipart, multipart_list, post, put,
};
use crate::limits::{
    ACCEPT_RETRY, HEADER_BUFFER_FACTOR, HEADER_READ_TIMEOUT, MAX_HEADER_COUNT, MIN_HEADER_BUFFER,
    SHUTDOWN_GRACE, UPLOAD_SWEEP_MAX,
};
use crate::replication::Replication;
use crate::router::{self, Operation, Target};
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

/// Everything a request needs, shared by all connections.
pub struct App {
    ctx: Context,
    users: Users,
    auth: AuthSettings,
}

impl App {
    /// Builds the shared state; in gateway mode this starts the outbox replay worker.
    pub fn new(config: Config, store: Store) -> Result<Self, ServerError> {
        let replication = Replication::start(&config, &store).map_err(ServerError::Refused)?;
        Ok(Self {
            users: Users::new(&config.users),
            auth: AuthSettings {
                clock_skew: config.limits.clock_skew,
            },
            ctx: Context {
                config,
                store,
                replication,
            },
        })
    }
}

/// Opens the store, binds the listener and serves until SIGINT/SIGTERM.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let addr: SocketAddr = config.server.address;
    if config.dev_credentials {
        if !addr.ip().is_loopback() {
            return Err(ServerError::Refused(format!(
                "refusing to listen on non-loopback {addr} with the well-known development credentials; \
                 set LIFEBOAT_ACCESS_KEY/LIFEBOAT_SECRET_KEY or [[users]]"
            )));
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
    let data_dir = config.storage.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&data_dir))
        .await
        .map_err(|e| ServerError::Refused(e.to_string()))?
        .map_err(|source| ServerError::Store {
            path: config.storage.data_dir.display().to_string(),
            source,
        })?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind {
            address: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ServerError::Bind {
        address: addr.to_string(),
        source,
    })?;
    spawn_upload_cleaner(store.clone(), config.limits.abandoned_upload);
    let app = Arc::new(App::new(config, store)?);
    tracing::info!(address = %local, "S3 API listening");
    // Tests and scripts read this line to learn the port when address ends in :0.
    println!("lifeboat listening on http://{local}");
    serve(listener, app, shutdown_signal()).await;
    Ok(())
}

/// Aborts multipart uploads older than `max_age`, checking every half of that (at most
/// hourly, at least every second).
fn spawn_upload_cleaner(store: Store, max_age: Duration) {
    let max_age_secs = max_age.as_secs();
    let every = Duration::from_secs((max_age_secs / 2).clamp(1, UPLOAD_SWEEP_MAX.as_secs()));
    tokio::spawn(async move {
        loop {
            let cutoff = crate::time::now_ms() - (max_age_secs as i64).saturating_mul(1000);
            match store.abort_uploads_before(cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(aborted = n, "aborted abandoned multipart uploads"),
                Err(e) => tracing::warn!(error = %e, "abandoned-upload cleanup failed"),
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

/// Accepts connections until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(listener: TcpListener, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let limits = &app.ctx.config.limits;
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADER_COUNT)
        // Headers past our own limit are answered with RequestHeaderSectionTooLarge by the
        // handler; hyper's own cut-off sits well above it.
        .max_buf_size((limits.max_header_bytes * HEADER_BUFFER_FACTOR).max(MIN_HEADER_BUFFER));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let svc = service_fn(move |req| {
            let app = Arc::clone(&app);
            async move { Ok::<_, std::convert::Infallible>(handle(&app, req, remote).await) }
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

fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

async fn handle(app: &App, req: Request<Incoming>, remote: SocketAddr) -> Response<ResponseBody> {
    let started = Instant::now();
    let id = request_id();
    let (parts, incoming) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .map(str::to_owned);
    let target = router::target(
        host.as_deref(),
        parts.uri.path(),
        &app.ctx.config.server.domains,
    );
    let is_head = parts.method == Method::HEAD;
    // botocore (boto/botocore#3755) leaves a pooled connection stalled after an
    // `Expect: 100-continue` request is answered without a 100 (an empty PUT, or a refusal).
    // Closing that connection costs one reconnect and spares the client a 30 s stall.
    let expects_continue = parts
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let empty_body = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    let mut op_name = "Unknown";
    let mut user_name = String::new();
    // Every line the request causes, in the gateway and the store too, carries these fields;
    // `op` is filled in once the request is routed.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        op = tracing::field::Empty,
        bucket = target.bucket.as_deref().unwrap_or(""),
        key = target.key.as_deref().unwrap_or(""),
    );
    let result = dispatch(app, &parts, incoming, &target, &mut op_name, &mut user_name)
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => error_response(&e, &target, &id, is_head),
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-amz-request-id", v.clone());
        h.insert("x-amz-id-2", v);
    }
    h.insert("server", HeaderValue::from_static("Lifeboat"));
    if expects_continue && (empty_body || !resp.status().is_success()) {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    tracing::info!(
        client = %remote.ip(),
        user = %user_name,
        op = op_name,
        method = %parts.method,
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    resp
}

fn error_response(
    e: &S3Error,
    target: &Target,
    request_id: &str,
    is_head: bool,
) -> Response<ResponseBody> {
    let mut b = Response::builder().status(e.code.status());
    for (name, value) in &e.headers {
        b = b.header(*name, value);
    }
    let built = if is_head || e.code.status() == StatusCode::NOT_MODIFIED {
        b.body(ResponseBody::Empty)
    } else {
        let xml = e.to_xml(&target.resource(), request_id);
        b.header("content-type", "application/xml")
            .header("content-length", xml.len())
            .body(ResponseBody::full(xml))
    };
    built.unwrap_or_else(|_| {
        let mut r = Response::new(ResponseBody::Empty);
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

fn header_block_size(parts: &http::request::Parts) -> usize {
    let mut n = parts.method.as_str().len() + parts.uri.to_string().len() + 12;
    for (k, v) in &parts.headers {
        n += k.as_str().len() + v.len() + 4;
    }
    n
}

async fn dispatch(
    app: &App,
    parts: &http::request::Parts,
    incoming: Incoming,
    target: &Target,
    op_name: &mut &'static str,
    user_name: &mut String,
) -> S3Result<S3Response> {
    let ctx = &app.ctx;
    let limits = &ctx.config.limits;
    if header_block_size(parts) > limits.max_header_bytes {
        return Err(S3ErrorCode::RequestHeaderSectionTooLarge.into());
    }
    let raw_query = parts.uri.query().unwrap_or("");
    let query = auth::sigv4::parse_query(raw_query);
    let form_upload = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    let routed = router::route(
        &parts.method,
        target,
        &query,
        parts
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| v.to_str().ok()),
        form_upload,
    );
    // A browser form upload authenticates with the signed policy inside the form.
    if let Ok(Operation::PostObject { bucket }) = &routed
        && !parts.headers.contains_key(http::header::AUTHORIZATION)
    {
        *op_name = "PostObject";
        tracing::Span::current().record("op", "PostObject");
        return post::post_object(ctx, &app.users, bucket, &parts.headers, incoming).await;
    }
    let authenticated = auth::authenticate(
        &auth::RequestParts {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            query: &query,
            headers: &parts.headers,
            authority: parts.uri.authority().map(|a| a.as_str()),
        },
        &app.users,
        &app.auth,
        SystemTime::now(),
    )?;
    let user = &authenticated.user;
    user_name.clone_from(&user.access_key);
    let op = routed?;
    *op_name = op.name();
    tracing::Span::current().record("op", op.name());
    if !user.allows(op.action(), op.resource()) {
        return Err(S3ErrorCode::AccessDenied.into());
    }
    if let Operation::CopyObject { source, .. } | Operation::UploadPartCopy { source, .. } = &op
        && !user.allows(
            Action::Read,
            Resource::Object {
                bucket: &source.bucket,
                key: &source.key,
            },
        )
    {
        return Err(S3ErrorCode::AccessDenied.into());
    }
    if let Some(b) = op.bucket()
        && !matches!(op, Operation::CreateBucket { .. })
    {
        ctx.replication
            .bucket_used(b, &user.owner_id(), &ctx.config.server.region)
            .await;
    }
    let payload = &authenticated.payload;
    let headers = &parts.headers;
    let mut body = RequestBody::new(incoming, payload, limits.body_idle);
    match &op {
        Operation::ListBuckets => bucket::list_buckets(ctx, user).await,
        Operation::CreateBucket { bucket } => {
            bucket::create_bucket(ctx, user, bucket, &mut body).await
        }
        Operation::HeadBucket { bucket } => bucket::head_bucket(ctx, bucket).await,
        Operation::DeleteBucket { bucket } => bucket::delete_bucket(ctx, bucket).await,
        Operation::GetBucketLocation { bucket } => bucket::get_bucket_location(ctx, bucket).await,
        Operation::GetBucketVersioning { bucket } => acl::get_bucket_versioning(ctx, bucket).await,
        Operation::GetBucketAcl { bucket } => acl::get_bucket_acl(ctx, bucket).await,
        Operation::PutBucketAcl { bucket } => {
            acl::put_bucket_acl(ctx, bucket, headers, &mut body).await
        }
        Operation::ListObjects { bucket, params } => {
            list::list_objects(ctx, bucket, params, false).await
        }
        Operation::ListObjectsV2 { bucket, params } => {
            list::list_objects(ctx, bucket, params, true).await
        }
        Operation::ListMultipartUploads { bucket, params } => {
            multipart_list::list_uploads(ctx, bucket, params).await
        }
        Operation::DeleteObjects { bucket } => {
            delete::delete_objects(ctx, user, bucket, headers, &mut body).await
        }
        Operation::PostObject { .. } => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "A POST form upload carries its signature in the form, not in an Authorization header.",
        )),
        Operation::PutObject { bucket, key } => {
            put::put_object(ctx, bucket, key, headers, payload, parts.version, &mut body).await
        }
        Operation::CopyObject {
            bucket,
            key,
            source,
        } => copy::copy_object(ctx, bucket, key, source, headers).await,
        Operation::GetObject {
            bucket,
            key,
            overrides,
            part_number,
        } => get::get_object(ctx, bucket, key, headers, overrides, *part_number, false).await,
        Operation::HeadObject {
            bucket,
            key,
            part_number,
        } => get::get_object(ctx, bucket, key, headers, &Vec::new(), *part_number, true).await,
        Operation::DeleteObject { bucket, key } => {
            delete::delete_object(ctx, bucket, key, headers).await
        }
        Operation::GetObjectAcl { bucket, key } => acl::get_object_acl(ctx, bucket, key).await,
        Operation::PutObjectAcl { bucket, key } => {
            acl::put_object_acl(ctx, bucket, key, headers, &mut body).await
        }
        Operation::GetObjectTagging { bucket, key } => acl::get_tagging(ctx, bucket, key).await,
        Operation::PutObjectTagging { bucket, key } => {
            acl::put_tagging(ctx, bucket, key, headers, &mut body).await
        }
        Operation::DeleteObjectTagging { bucket, key } => {
            acl::delete_tagging(ctx, bucket, key).await
        }
        Operation::CreateMultipartUpload { bucket, key } => {
            multipart::create(ctx, user, bucket, key, headers).await
        }
        Operation::UploadPart {
            bucket,
            key,
            upload_id,
            part_number,
        } => {
            multipart::upload_part(
                ctx,
                bucket,
                key,
                upload_id,
                *part_number,
                headers,
                payload,
                parts.version,
                &mut body,
            )
            .await
        }
        Operation::UploadPartCopy {
            bucket,
            key,
            upload_id,
            part_number,
            source,
        } => {
            multipart::upload_part_copy(ctx, bucket, key, upload_id, *part_number, source, headers)
                .await
        }
        Operation::CompleteMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::complete(ctx, bucket, key, upload_id, headers, &mut body).await,
        Operation::AbortMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::abort(ctx, bucket, key, upload_id).await,
        Operation::ListParts {
            bucket,
            key,
            upload_id,
            max_parts,
            marker,
        } => multipart_list::list_parts(ctx, bucket, key, upload_id, *max_parts, *marker).await,
    }
}
