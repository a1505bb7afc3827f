//! `POST /storage/sync {"bucket"?, "prefix"?, "dry_run"?, "rate"?}` queues the local-only
//! objects for the upstream (202) and `GET /storage/sync` reports the last sync with what is
//! still to go (`gateway::migrate`; `lifeboat sync` drives both). Gateway mode only.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::context::Context;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SyncRequest {
    bucket: Option<String>,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    dry_run: bool,
    /// Bytes per second, or a size such as "20MiB" (per second).
    rate: Option<Value>,
}

fn rate_of(v: Option<&Value>) -> Result<u64, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| ApiError::InvalidRequest("rate must be a positive number".into())),
        Some(Value::String(s)) => {
            crate::config::parse_size(s.trim_end_matches("/s")).map_err(ApiError::InvalidRequest)
        }
        Some(_) => Err(ApiError::InvalidRequest(
            "rate: bytes per second, or a size such as \"20MiB\"".into(),
        )),
    }
}

pub async fn handle(
    ctx: &Context,
    method: &Method,
    body: &Bytes,
) -> Result<(StatusCode, Value), ApiError> {
    let gw = super::error::gateway(
        ctx,
        "a sync pushes local objects to the upstream; turn the upstream on first",
    )?;
    if method == Method::POST {
        let req: SyncRequest = match body.is_empty() {
            true => SyncRequest::default(),
            false => serde_json::from_slice(body).map_err(|e| {
                ApiError::InvalidRequest(format!(
                    "expected {{\"bucket\", \"prefix\", \"dry_run\", \"rate\"}}: {e}"
                ))
            })?,
        };
        if req.bucket.is_none() && !req.prefix.is_empty() {
            return Err(ApiError::InvalidRequest("a prefix needs a bucket".into()));
        }
        let rate = rate_of(req.rate.as_ref())?;
        return Ok(
            match gw.start_sync(req.bucket, req.prefix, req.dry_run, rate) {
                Ok(run) => (StatusCode::ACCEPTED, json!({ "sync": run })),
                Err(running) => (
                    StatusCode::CONFLICT,
                    json!({ "error": { "code": "SyncRunning", "message": "a sync is still queueing; wait for it (GET /storage/sync)" }, "sync": running }),
                ),
            },
        );
    }
    let run = gw.sync_status();
    let usage = ctx
        .store
        .usage_by_bucket()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let only = run.as_ref().and_then(|r| r.bucket.clone());
    let (mut local_only, mut pending, mut failed) = (0u64, 0u64, 0u64);
    for (name, u) in &usage {
        if only.as_ref().is_none_or(|b| b == name) {
            local_only += u.objects.local_only;
            pending += u.objects.pending;
            failed += u.objects.failed;
        }
    }
    Ok((
        StatusCode::OK,
        json!({
            "sync": run,
            "remaining": { "local_only": local_only, "pending": pending, "failed": failed },
        }),
    ))
}
