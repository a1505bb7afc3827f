//! The gateway read path (docs/ARCHITECTURE.md, "Where each policy lives"). It answers with
//! data, an `ObjectSource`; `handlers::get` renders it, so a hit, a miss and a 304 of either
//! carry the same headers.
//!
//! - `local-first`: a cached copy is served from disk with no upstream round trip (`HIT`),
//!   unless `revalidate_after` says to check it first. A miss streams from the upstream to the
//!   client and into the store at once (`fill`). Concurrent misses on one key share the key's
//!   lock: the first fetch fills the cache, the others then hit it. A Range (or partNumber) miss
//!   is served from the upstream's range while the whole object is fetched in the background.
//! - `upstream-first`: a conditional request on the cached ETag; 304 serves the local copy.
//! - When the upstream fails, a cached copy is served as `STALE`; with none, 503.
//! - A key deleted locally whose delete has not reached the upstream yet is a 404, never fetched.

use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::Gateway;
use super::fill::{Fill, content_length, last_modified_ms, prefetch, relay};
use crate::body::ResponseBody;
use crate::config::ReadPolicy;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::limits::CHANNEL_DEPTH;
use crate::store::outbox::OutboxOp;
use crate::store::{ObjectMeta, OpenBlobs, StoreError, SyncState};
use crate::time::now_ms;
use crate::upstream::{UpstreamError, UpstreamRequest, header};

/// What a GetObject or HeadObject asks of the read path.
pub struct ReadRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// The client's headers: Range and the conditional headers are forwarded on a partial miss.
    pub headers: &'a HeaderMap,
    pub part_number: Option<u16>,
    pub head: bool,
}

/// Where a read's answer comes from, as the gateway reports it in `x-cache`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// The upstream failed; the cached copy may be older than the upstream's.
    Stale,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
        }
    }

    /// The `result` label of `lifeboat_cache_results_total`.
    pub fn label(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Stale => "stale",
        }
    }
}

/// An object about to be served: from the local store, or streaming from the upstream.
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived, one per request or entry; boxing would only add an allocation"
)]
pub enum ObjectSource {
    Local {
        meta: ObjectMeta,
        /// The blobs, pinned and open, or a small object's bytes (none for a HEAD).
        blobs: Option<OpenBlobs>,
        /// `x-cache`, in gateway mode.
        cache: Option<CacheStatus>,
    },
    Upstream(UpstreamObject),
}

/// An object as the upstream answered for it (always `x-cache: MISS`).
pub struct UpstreamObject {
    /// 200, 206 (a ranged or part miss), or 304 (the upstream evaluated forwarded conditions).
    pub status: StatusCode,
    /// The object's headers as the upstream sent them: content headers, ETag, Last-Modified,
    /// Content-Length and Content-Range, user metadata, checksums (when asked for).
    pub headers: HeaderMap,
    pub etag: String,
    pub last_modified_ms: i64,
    /// The body on its way (none for a HEAD or a 304).
    pub body: Option<ResponseBody>,
}

/// Headers of an upstream object response that describe the object to a client.
const OBJECT_HEADERS: [&str; 13] = [
    "content-type",
    "content-length",
    "content-range",
    "etag",
    "last-modified",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "accept-ranges",
    "x-amz-mp-parts-count",
    "x-amz-tagging-count",
];

fn object_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in upstream {
        let n = name.as_str();
        if OBJECT_HEADERS.contains(&n)
            || n.starts_with("x-amz-meta-")
            || n.starts_with("x-amz-checksum-")
        {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

fn upstream_object(
    status: StatusCode,
    headers: &HeaderMap,
    body: Option<ResponseBody>,
) -> ObjectSource {
    ObjectSource::Upstream(UpstreamObject {
        status,
        etag: header(headers, "etag")
            .unwrap_or("")
            .trim_matches('"')
            .to_owned(),
        last_modified_ms: last_modified_ms(headers),
        headers: object_headers(headers),
        body,
    })
}

fn unavailable() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        "The object is not cached locally and the upstream cannot be reached.",
    )
}

fn miss_error(e: UpstreamError) -> S3Error {
    match e.status() {
        Some(404) => S3ErrorCode::NoSuchKey.into(),
        Some(416) => S3ErrorCode::InvalidRange.into(),
        Some(412) => S3ErrorCode::PreconditionFailed.into(),
        Some(403) => {
            S3Error::with_message(S3ErrorCode::AccessDenied, "The upstream refused the read.")
        }
        Some(s) if s < 500 && s != 429 => S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!("The upstream refused the read: {e}"),
        ),
        _ => {
            tracing::info!(error = %e, "cache miss and the upstream failed");
            unavailable()
        }
    }
}

/// Headers a partial miss forwards to the upstream.
const FORWARDED: [&str; 6] = [
    "x-amz-checksum-mode",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

impl Gateway {
    /// The local copy, opened for serving, as `cache`.
    async fn local(&self, r: &ReadRequest<'_>, cache: CacheStatus) -> S3Result<ObjectSource> {
        let (meta, blobs) = self.store.open_read(r.bucket, r.key, r.head).await?;
        if !r.head {
            self.cache_read(r.bucket, r.key);
        }
        Ok(ObjectSource::Local {
            meta,
            blobs,
            cache: Some(cache),
        })
    }

    pub async fn read(self: &Arc<Self>, r: &ReadRequest<'_>) -> S3Result<ObjectSource> {
        match self.store.open_read(r.bucket, r.key, r.head).await {
            Ok((meta, blobs)) => {
                let check = meta.sync == SyncState::Synced
                    && match self.read {
                        ReadPolicy::UpstreamFirst => true,
                        ReadPolicy::LocalFirst => {
                            self.upstream.config.revalidate_after.is_some_and(|d| {
                                let after = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
                                now_ms() - meta.validated_ms > after
                            })
                        }
                    };
                // A hit (or a copy not yet upstream: the newest there is) is served from what
                // is already open, with no second look-up.
                if !check {
                    if !r.head {
                        self.cache_read(r.bucket, r.key);
                    }
                    return Ok(ObjectSource::Local {
                        meta,
                        blobs,
                        cache: Some(CacheStatus::Hit),
                    });
                }
                drop(blobs);
                self.revalidate(r, &meta).await
            }
            Err(StoreError::NoSuchKey) => {
                if let Ok(Some(OutboxOp::Delete { .. })) =
                    self.store.pending_op(r.bucket, r.key).await
                {
                    return Err(S3ErrorCode::NoSuchKey.into());
                }
                self.miss(r).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Checks a cached copy with a conditional request on its ETag.
    async fn revalidate(
        self: &Arc<Self>,
        r: &ReadRequest<'_>,
        meta: &ObjectMeta,
    ) -> S3Result<ObjectSource> {
        let (ub, uk) = self.upstream.map(r.bucket, r.key);
        let req = UpstreamRequest::new(Method::HEAD, &ub, Some(&uk))
            .header("if-none-match", meta.quoted_etag());
        match self.upstream.send(&req).await {
            Ok(resp) => {
                let same = resp.status() == StatusCode::NOT_MODIFIED
                    || header(resp.headers(), "etag")
                        .is_some_and(|e| e.trim_matches('"') == meta.etag);
                if same {
                    self.touch(r.bucket, r.key).await;
                    return self.local(r, CacheStatus::Hit).await;
                }
                // A newer version upstream: drop the stale copy (only if it is still that
                // synced version with nothing queued) and fetch.
                let _ = self
                    .store
                    .delete_if_synced(r.bucket, r.key, &meta.etag)
                    .await;
                self.miss(r).await
            }
            Err(e) if e.status() == Some(404) => {
                let _ = self
                    .store
                    .delete_if_synced(r.bucket, r.key, &meta.etag)
                    .await;
                Err(S3ErrorCode::NoSuchKey.into())
            }
            Err(e) => {
                tracing::info!(bucket = r.bucket, key = r.key, error = %e, "upstream failed: serving the cached copy");
                self.local(r, CacheStatus::Stale).await
            }
        }
    }

    async fn touch(&self, bucket: &str, key: &str) {
        let now = now_ms();
        let _ = self
            .store
            .update_object(bucket, key, move |m| m.validated_ms = now)
            .await;
    }

    async fn miss(self: &Arc<Self>, r: &ReadRequest<'_>) -> S3Result<ObjectSource> {
        let (ub, uk) = self.upstream.map(r.bucket, r.key);
        // `x-lifeboat-cache: warm` on a HEAD: fetch the object into the cache meanwhile.
        if r.head
            && header(r.headers, "x-lifeboat-cache").is_some_and(|v| v.eq_ignore_ascii_case("warm"))
        {
            let fetch = prefetch(Arc::clone(self), r.bucket.to_owned(), r.key.to_owned());
            tokio::spawn(fetch.in_current_span());
        }
        let partial = r.part_number.is_some() || r.headers.contains_key("range");
        if r.head || partial {
            let method = if r.head { Method::HEAD } else { Method::GET };
            let mut req = UpstreamRequest::new(method, &ub, Some(&uk));
            if let Some(n) = r.part_number {
                req = req.query("partNumber", n.to_string());
            }
            for h in FORWARDED {
                if let Some(v) = header(r.headers, h) {
                    req = req.header(h, v);
                }
            }
            let resp = self.upstream.send(&req).await.map_err(miss_error)?;
            let status = resp.status();
            if status == StatusCode::NOT_MODIFIED || r.head {
                return Ok(upstream_object(status, resp.headers(), None));
            }
            // The whole object comes in the background, so the next read is a hit.
            let fetch = prefetch(Arc::clone(self), r.bucket.to_owned(), r.key.to_owned());
            tokio::spawn(fetch.in_current_span());
            let headers = resp.headers().clone();
            return Ok(upstream_object(status, &headers, Some(relay(self, resp))));
        }
        // Concurrent misses on one key wait here, then find the first one's copy.
        let guard = self.key_lock(r.bucket, r.key).await;
        if self.store.object(r.bucket, r.key).await.is_ok() {
            drop(guard);
            return self.local(r, CacheStatus::Hit).await;
        }
        let resp = self
            .fetch_whole(r.bucket, r.key)
            .await
            .map_err(miss_error)?;
        let headers = resp.headers().clone();
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let fill = Fill::new(self, r.bucket, r.key, guard);
        // The client's conditions are evaluated when the answer is rendered; a 304 drops the
        // body, and the fill, which then sees nobody listening, caches nothing.
        tokio::spawn(fill.run(resp, Some(tx)).in_current_span());
        let body = ResponseBody::Stream {
            rx,
            remaining: content_length(&headers),
        };
        Ok(upstream_object(StatusCode::OK, &headers, Some(body)))
    }

    /// The local copy of an object, fetched from the upstream first when it is not cached (the
    /// source of a CopyObject or UploadPartCopy in gateway mode).
    pub async fn copy_source(self: &Arc<Self>, bucket: &str, key: &str) -> S3Result<ObjectMeta> {
        match self.store.object(bucket, key).await {
            Err(StoreError::NoSuchKey) => {}
            other => return Ok(other?),
        }
        if let Ok(Some(OutboxOp::Delete { .. })) = self.store.pending_op(bucket, key).await {
            return Err(S3ErrorCode::NoSuchKey.into());
        }
        let guard = self.key_lock(bucket, key).await;
        if let Ok(meta) = self.store.object(bucket, key).await {
            return Ok(meta);
        }
        let resp = self.fetch_whole(bucket, key).await.map_err(miss_error)?;
        let fill = Fill::new(self, bucket, key, guard);
        fill.run(resp, None).await;
        self.store.object(bucket, key).await.map_err(|e| match e {
            StoreError::NoSuchKey => unavailable(),
            e => e.into(),
        })
    }
}
