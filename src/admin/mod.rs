//! The admin API: a second listener (`server.admin_address`, loopback by default) with JSON
//! bodies. It is bound before the store opens, so `/health/live` answers during crash
//! recovery and `/health/ready` says when it is done. Routes:
//!
//! | route | auth | module |
//! |---|---|---|
//! | `GET /health/live`, `GET /health/ready` | none | here |
//! | `GET /metrics` | none, or admin with `server.metrics_auth` | `crate::metrics` |
//! | `GET /storage/status[?detail=buckets]` | admin | `status` |
//! | `POST /storage/presigned-upload`, `POST /storage/presigned-download` | admin | `presign` |
//! | `GET`, `DELETE /storage/dead-letters`, `POST /storage/dead-letters/retry` | admin | `dead_letters` |
//! | `GET`, `POST`, `DELETE /storage/pin` | admin | `pins` |
//!
//! Every request gets an id (`x-amz-request-id`) and one log line, like the S3 API's; the query
//! (which may hold a signature) is never logged. Later tools (pin, warm, sync) add routes to
//! `route`.

mod auth;
pub mod cli;
mod dead_letters;
mod error;
mod events;
pub mod filename;
mod pins;
pub mod presign;
mod status;
mod sync;
pub mod sync_cli;
mod warm;
pub mod warm_cli;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::body::{CountedBody, ResponseBody};
use crate::limits::{ADMIN_BODY_IDLE, MAX_ADMIN_BODY};
use crate::server::App;
pub use auth::Caller;
pub use error::ApiError;

/// The admin listener's state: the S3 side's `App` once the store is open.
pub struct Admin {
    app: OnceLock<Arc<App>>,
    started: Instant,
}

impl Default for Admin {
    fn default() -> Self {
        Self::new()
    }
}

impl Admin {
    pub fn new() -> Self {
        Self {
            app: OnceLock::new(),
            started: Instant::now(),
        }
    }

    /// Marks the server ready: the store is open and recovery is done.
    pub fn ready(&self, app: Arc<App>) {
        let _ = self.app.set(app);
    }
}

type AdminResponse = Response<CountedBody>;

fn json_response(status: StatusCode, v: &Value) -> AdminResponse {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    let mut r = Response::new(CountedBody::new(ResponseBody::full(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// One admin request, answered and logged.
pub async fn handle(admin: &Admin, req: Request<Incoming>, remote: SocketAddr) -> AdminResponse {
    let started = Instant::now();
    let id = crate::server::request_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut caller = String::new();
    let result = route(admin, req, &mut caller).await;
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::error!(request_id = %id, error = %e.detail(), "admin request failed");
            }
            json_response(e.status(), &e.body(&id))
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    resp.headers_mut()
        .insert("server", HeaderValue::from_static("Lifeboat"));
    tracing::info!(
        target: "lifeboat::admin",
        request_id = %id,
        client = %remote.ip(),
        caller = %caller,
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "admin request"
    );
    resp
}

async fn route(
    admin: &Admin,
    req: Request<Incoming>,
    caller_name: &mut String,
) -> Result<AdminResponse, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().trim_end_matches('/').to_owned();
    let query = crate::auth::sigv4::parse_query(parts.uri.query().unwrap_or(""));
    let known: &[(&str, Method)] = &[
        ("/health/live", Method::GET),
        ("/health/ready", Method::GET),
        ("/metrics", Method::GET),
        ("/storage/status", Method::GET),
        ("/storage/presigned-upload", Method::POST),
        ("/storage/presigned-download", Method::POST),
        ("/storage/events", Method::POST),
        ("/storage/warm", Method::POST),
        ("/storage/warm", Method::GET),
        ("/storage/sync", Method::POST),
        ("/storage/sync", Method::GET),
        ("/storage/dead-letters", Method::GET),
        ("/storage/dead-letters", Method::DELETE),
        ("/storage/dead-letters/retry", Method::POST),
        ("/storage/pin", Method::GET),
        ("/storage/pin", Method::POST),
        ("/storage/pin", Method::DELETE),
    ];
    match route_method(known, &path, &parts.method) {
        RouteMatch::Found => {}
        RouteMatch::NoPath => return Err(ApiError::NotFound(path)),
        RouteMatch::NoMethod => {
            return Err(ApiError::MethodNotAllowed {
                method: parts.method.to_string(),
                path,
            });
        }
    }
    if path == "/health/live" {
        return Ok(json_response(StatusCode::OK, &json!({"status": "live"})));
    }
    let Some(app) = admin.app.get() else {
        if path == "/health/ready" {
            return Ok(json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"status": "starting", "detail": "the store is opening (crash recovery)"}),
            ));
        }
        return Err(ApiError::NotReady);
    };
    let ctx = app.context();
    if path == "/health/ready" {
        let upstream = status::upstream(ctx);
        let detail = match upstream.get("reachable") {
            Some(Value::Bool(false)) => {
                "ready; the upstream is unreachable, so reads are served from local disk and writes are queued"
            }
            _ => "ready",
        };
        return Ok(json_response(
            StatusCode::OK,
            &json!({"status": "ready", "detail": detail, "upstream": upstream}),
        ));
    }
    let needs_auth = path != "/metrics" || ctx.config.server.metrics_auth;
    // Bodies are small JSON, read (through a limit) before the signature is checked: SigV4
    // signers for other services than S3 (curl's --aws-sigv4) send no x-amz-content-sha256,
    // and the canonical request then carries the body's own hash.
    let body = read_body(body).await?;
    let body_sha256 = hex::encode(Sha256::digest(&body));
    let checked = if needs_auth {
        let c = auth::authenticate(
            &parts,
            &query,
            &body_sha256,
            app.users(),
            app.auth_settings(),
            ctx.config.server.admin_token.as_ref(),
        )?;
        caller_name.push_str(c.caller.name());
        Some(c)
    } else {
        None
    };
    match path.as_str() {
        "/metrics" => {
            let t = status::totals(ctx).await?;
            let free = ctx.store.free_bytes().await.ok();
            let (_, cache_full) = status::cache(ctx, &t.usage, free, 0);
            let text = crate::metrics::render(&crate::metrics::Snapshot {
                usage: t.usage,
                outbox: t.outbox,
                budget_bytes: ctx.config.storage.max_bytes,
                cache_full,
                circuit: status::circuit(ctx),
                now_ms: crate::time::now_ms(),
            });
            let mut r = Response::new(CountedBody::new(ResponseBody::full(text)));
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            Ok(r)
        }
        "/storage/status" => {
            let buckets = query
                .iter()
                .any(|(k, v)| k == "detail" && v.split(',').any(|d| d == "buckets"));
            let doc = status::document(ctx, admin.started, buckets).await?;
            Ok(json_response(StatusCode::OK, &doc))
        }
        "/storage/dead-letters" if parts.method != Method::DELETE => {
            let doc = dead_letters::list(ctx, &query).await?;
            Ok(json_response(StatusCode::OK, &doc))
        }
        _ => {
            let checked = checked.ok_or(ApiError::MissingCredentials)?;
            if let Some(expected) = checked.body_sha256 {
                let got: [u8; 32] = Sha256::digest(&body).into();
                if got != expected {
                    return Err(ApiError::BadCredentials {
                        code: "XAmzContentSHA256Mismatch",
                        message: "the body does not hash to the signed x-amz-content-sha256".into(),
                    });
                }
            }
            if path == "/storage/pin" {
                let doc = pins::handle(ctx, &parts.method, &body).await?;
                return Ok(json_response(StatusCode::OK, &doc));
            }
            if path == "/storage/events" {
                let doc = events::receive(ctx, &body).await?;
                return Ok(json_response(StatusCode::OK, &doc));
            }
            if path == "/storage/sync" {
                let (status, doc) = sync::handle(ctx, &parts.method, &body).await?;
                return Ok(json_response(status, &doc));
            }
            if path == "/storage/warm" {
                let (status, doc) = warm::handle(ctx, &parts.method, &body).await?;
                return Ok(json_response(status, &doc));
            }
            let env = presign::Env {
                ctx,
                caller: &checked.caller,
                s3_address: app.s3_address(),
            };
            let doc = match path.as_str() {
                "/storage/presigned-upload" => presign::upload(&env, parse(&body)?).await?,
                "/storage/presigned-download" => presign::download(&env, parse(&body)?).await?,
                "/storage/dead-letters/retry" => {
                    dead_letters::retry(ctx, &parse_or_default(&body)?).await?
                }
                _ => dead_letters::drop(ctx, &parse_or_default(&body)?).await?,
            };
            Ok(json_response(StatusCode::OK, &doc))
        }
    }
}

enum RouteMatch {
    Found,
    NoPath,
    NoMethod,
}

/// Whether `known` has `path` with `method` (HEAD where GET is known).
fn route_method(known: &[(&str, Method)], path: &str, method: &Method) -> RouteMatch {
    let mut seen = false;
    for (p, m) in known {
        if *p == path {
            seen = true;
            if m == method || (*m == Method::GET && *method == Method::HEAD) {
                return RouteMatch::Found;
            }
        }
    }
    if seen {
        RouteMatch::NoMethod
    } else {
        RouteMatch::NoPath
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidRequest(format!("the body is not the JSON expected: {e}")))
}

/// An empty body is the type's default (a selection of every dead letter).
fn parse_or_default<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(body)
    }
}

/// Reads a small body through `MAX_ADMIN_BODY`.
async fn read_body(mut body: Incoming) -> Result<Bytes, ApiError> {
    let mut buf = Vec::new();
    loop {
        let frame = tokio::time::timeout(ADMIN_BODY_IDLE, body.frame())
            .await
            .map_err(|_| ApiError::InvalidRequest("the request body stalled".into()))?;
        match frame {
            None => break,
            Some(Err(e)) => {
                return Err(ApiError::InvalidRequest(format!(
                    "the request body broke off: {e}"
                )));
            }
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if buf.len() + data.len() > MAX_ADMIN_BODY {
                        return Err(ApiError::InvalidRequest(format!(
                            "the body is larger than {MAX_ADMIN_BODY} bytes"
                        )));
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
    Ok(Bytes::from(buf))
}
