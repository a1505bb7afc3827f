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
        // Who decides If-None-Match / If-Match writes: "upstream", "local" (it ignores the
        // headers), or "unknown" until the first conditional write finds out.
        "conditional_writes": gw.conditional.get().as_str(),
        "offline_conditional_writes": u.config.offline_conditional_writes,
    })
}

/// The circuit's state, in gateway mode.
pub fn circuit(ctx: &Context) -> Option<CircuitState> {
    match &ctx.replication {
        Replication::Gateway(gw) => Some(gw.upstream.breaker.state()),
        Replication::Local(_) => None,
    }
}

/// The cache budget part of the document (`cache`) and whether writes are refused for lack
/// of room. In local-only mode nothing is evictable, and `full` stays false (a full disk
/// still refuses writes, as `local.free_bytes` shows).
pub fn cache(ctx: &Context, usage: &Usage, free: Option<u64>, pins: usize) -> (Value, bool) {
    let storage = &ctx.config.storage;
    let Replication::Gateway(gw) = &ctx.replication else {
        let doc = json!({
            "evicts": false,
            "max_bytes": storage.max_bytes,
            "full": false,
            "pins": pins,
            "detail": "local-only mode: every object is the only copy, so nothing is evicted",
        });
        return (doc, false);
    };
    let r = gw.cache.report(usage, free);
    let doc = json!({
        "evicts": true,
        "max_bytes": storage.max_bytes,
        "evict_to": storage.evict_to,
        "bytes_used": usage.bytes.total(),
        "evictable_bytes": usage.bytes.synced,
        "full": r.full.is_some(),
        "full_reason": r.full,
        "last_refused": r.last_refusal_ms.and_then(rfc3339),
        "evicted_objects": r.evicted_objects,
        "evicted_bytes": r.evicted_bytes,
        "pins": pins,
        "last_scan": r.last_scan.map(|s| json!({
            "at": rfc3339(s.at_ms),
            "candidates": s.candidates,
            "elapsed_ms": s.elapsed_ms,
        })),
    });
    (doc, r.full.is_some())
}

/// Unreachable objects named in the status document.
const UNREACHABLE_SAMPLE: usize = 20;

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
        "node": ctx.config.server.node_name,
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
    let pins = ctx.store.pins().await.map_err(ApiError::internal)?.len();
    doc["cache"] = cache(ctx, &t.usage, free, pins).0;
    // Turned local-only after gateway mode: what the cache budget evicted is only upstream.
    if up.is_none() {
        let u = ctx
            .store
            .unreachable(UNREACHABLE_SAMPLE)
            .await
            .map_err(ApiError::internal)?;
        doc["unreachable"] = json!({
            "detail": "evicted by the cache budget while in gateway mode: only the upstream has these; turn it on again to read them",
            "objects": u.objects,
            "bytes": u.bytes,
            "sample": u.sample,
        });
    }
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
