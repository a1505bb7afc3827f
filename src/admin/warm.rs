//! `POST /storage/warm {"bucket", "prefix", "pin"?}` (with `pin`, the prefix is pinned first) starts a cache warm-up in the background (202,
//! or 409 while one runs); `GET /storage/warm` reports the running or last one
//! (`gateway::warm`). Gateway mode only: a local-only server has nothing to fetch.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::context::Context;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WarmRequest {
    bucket: String,
    #[serde(default)]
    prefix: String,
    /// Pin the prefix first, so what the warm-up fetches is never evicted.
    #[serde(default)]
    pin: bool,
}

pub async fn handle(
    ctx: &Context,
    method: &Method,
    body: &Bytes,
) -> Result<(StatusCode, Value), ApiError> {
    let gw = super::error::gateway(ctx, "a warm-up fetches from the upstream")?;
    if method == Method::GET || method == Method::HEAD {
        let doc = match gw.warm_status() {
            Some(s) => json!({ "warm": s }),
            None => json!({ "warm": null }),
        };
        return Ok((StatusCode::OK, doc));
    }
    let req: WarmRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::InvalidRequest(format!("expected {{\"bucket\", \"prefix\"}}: {e}"))
    })?;
    if req.bucket.is_empty() {
        return Err(ApiError::InvalidRequest("bucket must not be empty".into()));
    }
    if req.pin {
        let pin = crate::store::Pin {
            bucket: req.bucket.clone(),
            prefix: req.prefix.clone(),
            created_ms: crate::time::now_ms(),
        };
        ctx.store
            .add_pin(pin)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    // A bucket that exists only upstream is adopted first, as an S3 request would.
    gw.adopt_bucket(&req.bucket, "", ctx.config.server.region())
        .await;
    match gw.start_warm(&req.bucket, &req.prefix) {
        Ok(s) => Ok((StatusCode::ACCEPTED, json!({ "warm": s }))),
        Err(running) => Ok((
            StatusCode::CONFLICT,
            json!({ "error": { "code": "WarmUpRunning", "message": "a warm-up is running; wait for it or watch GET /storage/warm" }, "warm": running }),
        )),
    }
}
