//! `GET /storage/status`: what Lifeboat is doing right now, from the catalog's running totals
//! and the outbox (never a scan of the blob tree), and the upstream as the last requests saw
//! it. `/health/ready` and `/metrics` read the same sources.

use std::time::Instant;

use serde_json::{Value, json};

use super::error::ApiError;
use crate::context::Context;
use crate::replication::Replication;
use crate::store::{ByState, OutboxStats, Usage};
use crate::upstream::breaker::CircuitState;

fn by_state(b: &ByState) -> Value {
    json!({
        "local_only": b.local_only,
        "pending": b.pending,
        "synced": b.synced,
        "failed": b.failed,
    })
}

fn rfc3339(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.to_rfc3339())
}

fn age_seconds(now_ms: i64, then_ms: Option<i64>) -> u64 {
    then_ms.map_or(0, |t| {
        u64::try_from((now_ms - t).max(0) / 1000).unwrap_or(0)
    })
}

/// The upstream part of the document (`null` in local-only mode).
pub fn upstream(ctx: &Context) -> Value {
    let Replication::Gateway(gw) = &ctx.replication else {
        return Value::Null;
    };
    let u = &gw.upstream;
    let circuit = u.breaker.state();
    let reachable = match circuit {
        CircuitState::Open => Some(false),
        _ => u.health.reachable(),
    };
    json!({
        "endpoint": u.config.endpoint,
        "reachable": reachable,
        "circuit": circuit.as_str(),
        "last_error": u.breaker.last_error(),
        "latency_ms": u.health.latency_ms(),
        "credentials_refused": u.credentials_refused(),
    })
}

/// The circuit's state, in gateway mode.
pub fn circuit(ctx: &Context) -> Option<CircuitState> {
    match &ctx.replication {
        Replication::Gateway(gw) => Some(gw.upstream.breaker.state()),
        Replication::Local(_) => None,
    }
}

/// What the store holds and owes, at one moment.
pub struct Totals {
    pub usage: Usage,
    pub outbox: OutboxStats,
}

pub async fn totals(ctx: &Context) -> Result<Totals, ApiError> {
    Ok(Totals {
        usage: ctx.store.usage().await.map_err(ApiError::internal)?,
        outbox: ctx.store.outbox_stats().await.map_err(ApiError::internal)?,
    })
}

pub async fn document(ctx: &Context, started: Instant, buckets: bool) -> Result<Value, ApiError> {
    let t = totals(ctx).await?;
    let free = ctx.store.free_bytes().await.ok();
    let now_ms = crate::time::now_ms();
    let up = ctx.config.upstream.as_ref();
    let mut doc = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": started.elapsed().as_secs(),
        "mode": if up.is_some() { "gateway" } else { "local-only" },
        "write": up.map(|u| u.write),
        "read": up.map(|u| u.read),
        "local": {
            "data_dir": ctx.config.storage.data_dir.display().to_string(),
            "bytes_used": t.usage.bytes.total(),
            "max_bytes": ctx.config.storage.max_bytes,
            "free_bytes": free,
            "min_free_bytes": ctx.config.storage.min_free_bytes,
            "objects": by_state(&t.usage.objects),
            "bytes": by_state(&t.usage.bytes),
        },
        "upstream": upstream(ctx),
        "outbox": {
            "depth": t.outbox.depth,
            "oldest_age_seconds": age_seconds(now_ms, t.outbox.oldest_enqueued_ms),
        },
        "dead_letters": {
            "count": t.outbox.dead_letters,
            "oldest": t.outbox.oldest_dead_letter_ms.and_then(rfc3339),
        },
    });
    if buckets {
        let per = ctx
            .store
            .usage_by_bucket()
            .await
            .map_err(ApiError::internal)?;
        let names = ctx.store.list_buckets().await.map_err(ApiError::internal)?;
        let list: Vec<Value> = names
            .into_iter()
            .map(|(name, _)| {
                let u = per.get(&name).copied().unwrap_or_default();
                json!({
                    "name": name,
                    "objects": by_state(&u.objects),
                    "bytes": by_state(&u.bytes),
                })
            })
            .collect();
        doc["buckets"] = Value::Array(list);
    }
    Ok(doc)
}
