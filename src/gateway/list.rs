//! Listing in gateway mode: when the upstream answers, its listing is the truth, merged with
//! what the outbox has not replayed yet (queued puts shown, queued deletes hidden); when it does
//! not, the listing comes from the local index.

use std::sync::Arc;

use http::Method;

use super::Gateway;
use crate::error::S3Result;
use crate::handlers::Context;
use crate::store::outbox::OutboxOp;
use crate::store::{ListPage, ListQuery, ObjectMeta, SyncState};
use crate::upstream::{UpstreamError, UpstreamRequest};

pub async fn page(
    ctx: &Context,
    gw: &Arc<Gateway>,
    bucket: &str,
    q: ListQuery,
) -> S3Result<ListPage> {
    match upstream_page(gw, bucket, &q).await {
        Ok(page) => Ok(merge(ctx, bucket, &q, page).await?),
        Err(e) => {
            tracing::info!(bucket, error = %e, "upstream listing failed: listing from the local index");
            Ok(ctx.store.list(bucket, q).await?)
        }
    }
}

fn listed_meta(size: u64, etag: String, last_modified_ms: i64) -> ObjectMeta {
    ObjectMeta {
        segments: Vec::new(),
        size,
        etag,
        last_modified_ms,
        content: Default::default(),
        user_metadata: Vec::new(),
        checksum: None,
        multipart: false,
        tags: Vec::new(),
        acl: None,
        sync: SyncState::Synced,
        validated_ms: 0,
        sse: None,
    }
}

async fn upstream_page(
    gw: &Gateway,
    bucket: &str,
    q: &ListQuery,
) -> Result<ListPage, UpstreamError> {
    let base = gw.upstream.key_prefix(bucket);
    let (ub, _) = gw.upstream.map(bucket, "");
    let mut r = UpstreamRequest::new(Method::GET, &ub, None)
        .query("list-type", "2")
        .query("prefix", format!("{base}{}", q.prefix))
        .query("max-keys", q.max_keys.max(1).to_string());
    if let Some(d) = &q.delimiter {
        r = r.query("delimiter", d.clone());
    }
    if let Some(s) = &q.start_after {
        r = r.query("start-after", format!("{base}{s}"));
    }
    let resp = gw.upstream.send(&r).await?;
    let body = gw.upstream.read_body(resp, 16 << 20).await?;
    let root = crate::xml::parse(&body)
        .map_err(|_| UpstreamError::Local("unreadable upstream listing".into()))?;
    let strip = |k: &str| k.strip_prefix(base.as_str()).unwrap_or(k).to_owned();
    let mut page = ListPage {
        is_truncated: root.child_text("IsTruncated") == Some("true"),
        ..ListPage::default()
    };
    for c in root.children_named("Contents") {
        let Some(key) = c.child_text("Key") else {
            continue;
        };
        let lm = c
            .child_text("LastModified")
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp_millis());
        page.objects.push((
            strip(key),
            listed_meta(
                c.child_text("Size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                c.child_text("ETag")
                    .unwrap_or("")
                    .trim_matches('"')
                    .to_owned(),
                lm,
            ),
        ));
    }
    for p in root.children_named("CommonPrefixes") {
        if let Some(prefix) = p.child_text("Prefix") {
            let cp = strip(prefix);
            // A prefix the previous page ended on is not repeated.
            if q.start_after.as_deref() != Some(cp.as_str()) {
                page.common_prefixes.push(cp);
            }
        }
    }
    // Where the upstream page ended: the next page starts there even if every entry on this
    // one is hidden by a queued delete.
    page.last = last_of(&page);
    Ok(page)
}

/// Overlays the outbox's queued puts and deletes on an upstream page.
async fn merge(
    ctx: &Context,
    bucket: &str,
    q: &ListQuery,
    mut page: ListPage,
) -> S3Result<ListPage> {
    let pending = ctx.store.pending_under(bucket, &q.prefix).await?;
    let upstream_last = page.last.take();
    if pending.is_empty() {
        page.last = upstream_last;
        return Ok(page);
    }
    // The upstream page covers keys up to its last entry (or everything when not truncated).
    let horizon = if page.is_truncated {
        upstream_last.clone()
    } else {
        None
    };
    let in_window = |k: &str| {
        q.start_after.as_deref().is_none_or(|s| k > s) && horizon.as_deref().is_none_or(|h| k <= h)
    };
    for op in pending {
        match op {
            OutboxOp::Delete { key, .. } => page.objects.retain(|(k, _)| *k != key),
            OutboxOp::Revert { .. } => {}
            OutboxOp::Put { key, .. } => {
                if !in_window(&key) {
                    continue;
                }
                let rolled = q.delimiter.as_deref().and_then(|d| {
                    key[q.prefix.len()..]
                        .find(d)
                        .map(|i| key[..q.prefix.len() + i + d.len()].to_owned())
                });
                match rolled {
                    Some(cp) => {
                        if !page.common_prefixes.contains(&cp)
                            && q.start_after.as_deref() != Some(cp.as_str())
                        {
                            page.common_prefixes.push(cp);
                        }
                    }
                    None => {
                        if let Ok(meta) = ctx.store.object(bucket, &key).await {
                            page.objects.retain(|(k, _)| *k != key);
                            page.objects.push((key, meta));
                        }
                    }
                }
            }
        }
    }
    page.objects.sort_by(|a, b| a.0.cmp(&b.0));
    page.common_prefixes.sort();
    // Trim back to max-keys over keys and prefixes together, in order.
    let mut all: Vec<(String, bool)> = page
        .objects
        .iter()
        .map(|(k, _)| (k.clone(), true))
        .chain(page.common_prefixes.iter().map(|p| (p.clone(), false)))
        .collect();
    all.sort();
    if all.len() > q.max_keys {
        let cut = &all[q.max_keys..];
        page.objects
            .retain(|(k, _)| !cut.iter().any(|(c, o)| *o && c == k));
        page.common_prefixes
            .retain(|p| !cut.iter().any(|(c, o)| !*o && c == p));
        page.is_truncated = true;
        page.last = last_of(&page);
    } else {
        page.last = last_of(&page).max(horizon);
    }
    Ok(page)
}

fn last_of(page: &ListPage) -> Option<String> {
    let k = page.objects.last().map(|(k, _)| k.clone());
    let p = page.common_prefixes.last().cloned();
    k.max(p)
}
