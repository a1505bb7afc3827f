//! `POST /storage/events`: S3 event notifications (MinIO's webhook target, AWS's format, or a
//! peer Lifeboat's notice) naming objects changed upstream; the synced cached copies they make
//! stale are dropped (`gateway::coherence`), so the next read is a miss.

use bytes::Bytes;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::context::Context;
use crate::gateway::coherence::parse_events;
use crate::replication::Replication;

pub async fn receive(ctx: &Context, body: &Bytes) -> Result<Value, ApiError> {
    let changes = parse_events(body).map_err(ApiError::InvalidRequest)?;
    let Replication::Gateway(gw) = &ctx.replication else {
        return Ok(json!({
            "changes": changes.len(),
            "dropped": 0,
            "detail": "local-only mode: nothing is cached from an upstream",
        }));
    };
    let mut dropped = 0usize;
    for change in &changes {
        if gw
            .apply_change(change)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
        {
            dropped += 1;
        }
    }
    Ok(json!({ "changes": changes.len(), "dropped": dropped }))
}
