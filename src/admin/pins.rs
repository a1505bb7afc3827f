//! `GET`, `POST` and `DELETE /storage/pin` (issue 12, item 2): the prefixes whose objects the
//! cache budget never evicts (README, "Cache budget and pinning"). A pin is a prefix stored in
//! the catalog (`store::pins`), matched when eviction runs, so objects written under it later
//! are pinned too. Pins are kept in local-only mode as well, where nothing is evicted anyway.

use bytes::Bytes;
use http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::context::Context;
use crate::replication::Replication;
use crate::store::Pin;

/// The body of `POST` and `DELETE`: a bucket and a key prefix (`""`, or absent: the bucket).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PinRequest {
    bucket: String,
    #[serde(default)]
    prefix: String,
}

fn parse(body: &Bytes) -> Result<PinRequest, ApiError> {
    let r: PinRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::InvalidRequest(format!(
            "the body must be {{\"bucket\": \"...\", \"prefix\": \"...\"}}: {e}"
        ))
    })?;
    if r.bucket.is_empty() || r.bucket.len() > 255 || r.bucket.contains('\0') {
        return Err(ApiError::InvalidRequest(
            "bucket must be a bucket name".into(),
        ));
    }
    Ok(r)
}

fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339())
}

/// One `/storage/pin` request.
pub async fn handle(ctx: &Context, method: &Method, body: &Bytes) -> Result<Value, ApiError> {
    let store = &ctx.store;
    let evicts = matches!(ctx.replication, Replication::Gateway(_));
    if *method == Method::POST {
        let r = parse(body)?;
        let pin = Pin {
            bucket: r.bucket,
            prefix: r.prefix,
            created_ms: crate::time::now_ms(),
        };
        let added = store
            .add_pin(pin.clone())
            .await
            .map_err(ApiError::internal)?;
        tracing::info!(bucket = %pin.bucket, prefix = %pin.prefix, added, "pinned");
        return Ok(json!({
            "bucket": pin.bucket,
            "prefix": pin.prefix,
            "pinned": true,
            "added": added,
        }));
    }
    if *method == Method::DELETE {
        let r = parse(body)?;
        let removed = store
            .remove_pin(&r.bucket, &r.prefix)
            .await
            .map_err(ApiError::internal)?;
        tracing::info!(bucket = %r.bucket, prefix = %r.prefix, removed, "unpinned");
        return Ok(json!({
            "bucket": r.bucket,
            "prefix": r.prefix,
            "pinned": false,
            "removed": removed,
        }));
    }
    let pins: Vec<Value> = store
        .pins()
        .await
        .map_err(ApiError::internal)?
        .into_iter()
        .map(|p| {
            json!({
                "bucket": p.bucket,
                "prefix": p.prefix,
                "created": rfc3339(p.created_ms),
            })
        })
        .collect();
    Ok(json!({ "pins": pins, "evicts": evicts }))
}
