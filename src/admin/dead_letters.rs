//! `/storage/dead-letters`: the outbox entries the upstream refused for good, on a running
//! server (the command line `lifeboat dead-letters` needs the store, which the server locks).
//! `GET` lists them (`?bucket=&prefix=` narrows the list), `POST .../retry` queues the
//! selected ones again and wakes the replay worker, `DELETE` forgets them: the replication is
//! given up, the local object stays. The selection and the listing are `crate::dead_letters`'s,
//! shared with the command line.

use serde_json::{Value, json};

use super::error::ApiError;
use crate::context::Context;
use crate::dead_letters::{Selection, document};

fn filter(sel: &Selection, drop: bool) -> Result<crate::store::DeadLetterFilter, ApiError> {
    sel.filter(drop)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// `GET /storage/dead-letters`. Local-only, the store's own (none, unless it once ran as a
/// gateway).
pub async fn list(ctx: &Context, query: &[(String, String)]) -> Result<Value, ApiError> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let sel = Selection {
        bucket: param("bucket"),
        prefix: param("prefix"),
        ..Selection::default()
    };
    let letters = ctx
        .store
        .dead_letters(filter(&sel, false)?)
        .await
        .map_err(ApiError::internal)?;
    Ok(document(&letters))
}

/// `POST /storage/dead-letters/retry`: `{"queued", "moot"}`. Refused local-only (nothing would
/// replay them).
pub async fn retry(ctx: &Context, sel: &Selection) -> Result<Value, ApiError> {
    let gw = super::error::gateway(ctx, "there is no upstream to retry dead letters against")?;
    let r = ctx
        .store
        .retry_dead_letters(filter(sel, false)?)
        .await
        .map_err(ApiError::internal)?;
    if r.queued > 0 {
        gw.kick();
    }
    Ok(json!({"queued": r.queued, "moot": r.moot}))
}

/// `DELETE /storage/dead-letters`: `{"dropped"}`. The selection must say what it drops.
pub async fn drop(ctx: &Context, sel: &Selection) -> Result<Value, ApiError> {
    let n = ctx
        .store
        .drop_dead_letters(filter(sel, true)?)
        .await
        .map_err(ApiError::internal)?;
    Ok(json!({"dropped": n}))
}
