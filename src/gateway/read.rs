//! The gateway read path (DESIGN.md "Policies": `read`).
//!
//! - `local-first`: a cached copy is served from disk with no upstream round trip (`x-cache:
//!   HIT`), unless `revalidate_after` says to check it first. A miss streams from the upstream
//!   to the client and into the store at the same moment; the copy becomes visible only once
//!   complete and verified, so a client that disconnects leaves nothing half-cached. Concurrent
//!   misses on one key share the key's lock: the first fetch fills the cache, the others then
//!   hit it. A Range (or partNumber) miss is served from the upstream's range while the whole
//!   object is fetched in the background.
//! - `upstream-first`: a conditional GET on the cached ETag; 304 serves the local copy.
//! - When the upstream fails, a cached copy is served as `x-cache: STALE`; with none, 503.
//! - A key deleted locally whose delete has not reached the upstream yet is a 404, never fetched.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedMutexGuard, mpsc};

use super::Gateway;
use crate::body::{CHANNEL_DEPTH, ResponseBody};
use crate::checksum::{BodyHashes, ChecksumAlgorithm};
use crate::config::ReadPolicy;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::handlers::get::{Condition, evaluate_conditions, open_local, serve_local, serve_opened};
use crate::handlers::{Context, S3Response, now_ms};
use crate::router::ResponseOverrides;
use crate::store::outbox::OutboxOp;
use crate::store::{ContentHeaders, ObjectMeta, Segment, Store, StoreError, SyncState};
use crate::upstream::{UpstreamError, UpstreamRequest};

pub struct ReadRequest<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub headers: &'a HeaderMap,
    pub overrides: &'a ResponseOverrides,
    pub part_number: Option<u16>,
    pub head: bool,
}

fn with_cache(mut resp: S3Response, state: &'static str) -> S3Response {
    resp.headers_mut()
        .insert("x-cache", HeaderValue::from_static(state));
    resp
}

async fn local(ctx: &Context, r: &ReadRequest<'_>, state: &'static str) -> S3Result<S3Response> {
    let resp = serve_local(
        ctx,
        r.bucket,
        r.key,
        r.headers,
        r.overrides,
        r.part_number,
        r.head,
    )
    .await?;
    Ok(with_cache(resp, state))
}

fn unavailable() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        "The object is not cached locally and the upstream cannot be reached.",
    )
}

pub async fn get(ctx: &Context, gw: &Arc<Gateway>, r: &ReadRequest<'_>) -> S3Result<S3Response> {
    match open_local(ctx, r.bucket, r.key, r.head).await {
        Ok((meta, file)) => {
            let check = meta.sync == SyncState::Synced
                && match gw.read {
                    ReadPolicy::UpstreamFirst => true,
                    ReadPolicy::LocalFirst => {
                        gw.upstream.config.revalidate_after.is_some_and(|s| {
                            now_ms() - meta.validated_ms > (s as i64).saturating_mul(1000)
                        })
                    }
                };
            // A hit (or a copy not yet upstream: the newest there is) is served from what is
            // already open, with no second look-up.
            if !check {
                let resp = serve_opened(ctx, meta, file, r.headers, r.overrides, r.part_number)?;
                return Ok(with_cache(resp, "HIT"));
            }
            drop(file);
            revalidate(ctx, gw, r, &meta).await
        }
        Err(StoreError::NoSuchKey) => {
            if let Ok(Some(OutboxOp::Delete { .. })) = ctx.store.pending_op(r.bucket, r.key).await {
                return Err(S3ErrorCode::NoSuchKey.into());
            }
            miss(ctx, gw, r).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks a cached copy with a conditional request on its ETag.
async fn revalidate(
    ctx: &Context,
    gw: &Arc<Gateway>,
    r: &ReadRequest<'_>,
    meta: &ObjectMeta,
) -> S3Result<S3Response> {
    let (ub, uk) = gw.upstream.map(r.bucket, r.key);
    let req = UpstreamRequest::new(Method::HEAD, &ub, Some(&uk))
        .header("if-none-match", meta.quoted_etag());
    match gw.upstream.send(&req).await {
        Ok(resp) if resp.status() == StatusCode::NOT_MODIFIED => {
            touch(&ctx.store, r.bucket, r.key).await;
            local(ctx, r, "HIT").await
        }
        Ok(resp) => {
            let same = crate::upstream::header(resp.headers(), "etag")
                .is_some_and(|e| e.trim_matches('"') == meta.etag);
            if same {
                touch(&ctx.store, r.bucket, r.key).await;
                return local(ctx, r, "HIT").await;
            }
            // A newer version upstream: drop the stale copy (only if it is still that synced
            // version with nothing queued) and fetch.
            let _ = ctx
                .store
                .delete_if_synced(r.bucket, r.key, &meta.etag)
                .await;
            miss(ctx, gw, r).await
        }
        Err(e) if e.status() == Some(404) => {
            let _ = ctx
                .store
                .delete_if_synced(r.bucket, r.key, &meta.etag)
                .await;
            Err(S3ErrorCode::NoSuchKey.into())
        }
        Err(e) => {
            tracing::info!(bucket = r.bucket, key = r.key, error = %e, "upstream failed: serving the cached copy");
            local(ctx, r, "STALE").await
        }
    }
}

async fn touch(store: &Store, bucket: &str, key: &str) {
    let now = now_ms();
    let _ = store
        .update_object(bucket, key, move |m| m.validated_ms = now)
        .await;
}

/// Headers of an upstream object response that a client gets.
const PASSED_HEADERS: [&str; 13] = [
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

fn client_response(resp: &Response<Incoming>, r: &ReadRequest<'_>) -> http::response::Builder {
    let mut b = Response::builder().status(resp.status());
    for (name, value) in resp.headers() {
        let n = name.as_str();
        if PASSED_HEADERS.contains(&n) || n.starts_with("x-amz-meta-") {
            let over = r.overrides.iter().find(|(h, _)| *h == n);
            match over {
                Some((_, v)) => b = b.header(name, v.as_str()),
                None => b = b.header(name, value),
            }
        }
    }
    for (h, v) in r.overrides {
        if !resp.headers().contains_key(*h) {
            b = b.header(*h, v.as_str());
        }
    }
    b.header("x-lifeboat-sync", SyncState::Synced.as_str())
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

async fn miss(ctx: &Context, gw: &Arc<Gateway>, r: &ReadRequest<'_>) -> S3Result<S3Response> {
    let (ub, uk) = gw.upstream.map(r.bucket, r.key);
    let partial = r.part_number.is_some() || r.headers.contains_key("range");
    if r.head || partial {
        let mut req = UpstreamRequest::new(
            if r.head { Method::HEAD } else { Method::GET },
            &ub,
            Some(&uk),
        );
        if let Some(n) = r.part_number {
            req = req.query("partNumber", n.to_string());
        }
        for h in [
            "range",
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
        ] {
            if let Some(v) = r.headers.get(h).and_then(|v| v.to_str().ok()) {
                req = req.header(h, v);
            }
        }
        let resp = gw.upstream.send(&req).await.map_err(miss_error)?;
        if resp.status() == StatusCode::NOT_MODIFIED {
            return Ok(with_cache(
                client_response(&resp, r)
                    .body(ResponseBody::Empty)
                    .map_err(S3Error::internal)?,
                "MISS",
            ));
        }
        if !r.head {
            // The whole object comes in the background, so the next read is a hit.
            let gw2 = Arc::clone(gw);
            let (b, k) = (r.bucket.to_owned(), r.key.to_owned());
            let store = ctx.store.clone();
            tokio::spawn(async move { prefetch(store, gw2, b, k).await });
        }
        let b = client_response(&resp, r);
        let body = if r.head {
            ResponseBody::Empty
        } else {
            relay(gw, resp)
        };
        return Ok(with_cache(b.body(body).map_err(S3Error::internal)?, "MISS"));
    }
    // Concurrent misses on one key wait here, then find the first one's copy.
    let guard = gw.key_lock(r.bucket, r.key).await;
    if ctx.store.object(r.bucket, r.key).await.is_ok() {
        drop(guard);
        return local(ctx, r, "HIT").await;
    }
    let resp = gw
        .upstream
        .send(&UpstreamRequest::new(Method::GET, &ub, Some(&uk)))
        .await
        .map_err(miss_error)?;
    let etag = crate::upstream::header(resp.headers(), "etag")
        .unwrap_or("")
        .trim_matches('"')
        .to_owned();
    let lm = crate::upstream::header(resp.headers(), "last-modified")
        .and_then(crate::auth::parse_http_date)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(now_ms(), |d| d.as_millis() as i64);
    match evaluate_conditions(r.headers, &etag, lm) {
        Condition::Proceed => {}
        Condition::NotModified => {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header("etag", format!("\"{etag}\""))
                .body(ResponseBody::Empty)
                .map_err(S3Error::internal);
        }
        Condition::PreconditionFailed => return Err(S3ErrorCode::PreconditionFailed.into()),
    }
    let b = client_response(&resp, r);
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let len = crate::upstream::header(resp.headers(), "content-length")
        .and_then(|v| v.parse::<u64>().ok());
    let fill = Fill {
        store: ctx.store.clone(),
        gw: Arc::clone(gw),
        bucket: r.bucket.to_owned(),
        key: r.key.to_owned(),
        guard,
    };
    tokio::spawn(fill.run(resp, Some(tx)));
    Ok(with_cache(
        b.body(ResponseBody::Stream { rx, remaining: len })
            .map_err(S3Error::internal)?,
        "MISS",
    ))
}

/// Streams an upstream body to the client as it is (no caching), with the idle timeout.
fn relay(gw: &Arc<Gateway>, resp: Response<Incoming>) -> ResponseBody {
    let len = crate::upstream::header(resp.headers(), "content-length")
        .and_then(|v| v.parse::<u64>().ok());
    let idle = gw.upstream.config.idle_timeout;
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    tokio::spawn(async move {
        let mut body = resp.into_body();
        loop {
            match next_data(&mut body, idle).await {
                Ok(Some(d)) => {
                    if tx.send(Ok(d)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    ResponseBody::Stream { rx, remaining: len }
}

async fn next_data(body: &mut Incoming, idle: Duration) -> std::io::Result<Option<Bytes>> {
    loop {
        let frame = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "upstream body stalled")
            })?;
        match frame {
            None => return Ok(None),
            Some(Err(e)) => return Err(std::io::Error::other(e)),
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    return Ok(Some(d));
                }
            }
        }
    }
}

/// Fetches a whole object into the cache in the background (after a Range miss).
async fn prefetch(store: Store, gw: Arc<Gateway>, bucket: String, key: String) {
    let guard = gw.key_lock(&bucket, &key).await;
    if store.object(&bucket, &key).await.is_ok() {
        return;
    }
    let (ub, uk) = gw.upstream.map(&bucket, &key);
    match gw
        .upstream
        .send(&UpstreamRequest::new(Method::GET, &ub, Some(&uk)))
        .await
    {
        Ok(resp) => {
            let fill = Fill {
                store,
                gw: Arc::clone(&gw),
                bucket,
                key,
                guard,
            };
            fill.run(resp, None).await;
        }
        Err(e) => tracing::debug!(error = %e, "background fetch failed"),
    }
}

/// The local copy of an object, fetched from the upstream first when it is not cached (the
/// source of a CopyObject or UploadPartCopy in gateway mode).
pub async fn cached(ctx: &Context, bucket: &str, key: &str) -> S3Result<ObjectMeta> {
    match ctx.store.object(bucket, key).await {
        Err(StoreError::NoSuchKey) => {}
        other => return Ok(other?),
    }
    let Some(gw) = &ctx.gateway else {
        return Err(S3ErrorCode::NoSuchKey.into());
    };
    if let Ok(Some(OutboxOp::Delete { .. })) = ctx.store.pending_op(bucket, key).await {
        return Err(S3ErrorCode::NoSuchKey.into());
    }
    let guard = gw.key_lock(bucket, key).await;
    if let Ok(meta) = ctx.store.object(bucket, key).await {
        return Ok(meta);
    }
    let (ub, uk) = gw.upstream.map(bucket, key);
    let resp = gw
        .upstream
        .send(&UpstreamRequest::new(Method::GET, &ub, Some(&uk)))
        .await
        .map_err(miss_error)?;
    let fill = Fill {
        store: ctx.store.clone(),
        gw: Arc::clone(gw),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        guard,
    };
    fill.run(resp, None).await;
    ctx.store.object(bucket, key).await.map_err(|e| match e {
        StoreError::NoSuchKey => unavailable(),
        e => e.into(),
    })
}

/// One upstream body on its way into the cache (and maybe to a client).
struct Fill {
    store: Store,
    gw: Arc<Gateway>,
    bucket: String,
    key: String,
    /// Held until the copy is committed or abandoned.
    guard: OwnedMutexGuard<()>,
}

impl Fill {
    async fn run(
        self,
        resp: Response<Incoming>,
        client: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    ) {
        let headers = resp.headers().clone();
        let expected_len =
            crate::upstream::header(&headers, "content-length").and_then(|v| v.parse::<u64>().ok());
        let etag = crate::upstream::header(&headers, "etag")
            .unwrap_or("")
            .trim_matches('"')
            .to_owned();
        let idle = self.gw.upstream.config.idle_timeout;
        let mut writer = self.store.blob_writer().await.ok();
        let mut hashes = BodyHashes::new(ChecksumAlgorithm::Crc64Nvme).with_sha256(true);
        let mut body = resp.into_body();
        let mut client = client;
        loop {
            if writer.is_none() && client.is_none() {
                return; // nobody wants the rest
            }
            match next_data(&mut body, idle).await {
                Ok(Some(d)) => {
                    if let Some(w) = writer.as_mut() {
                        hashes.update(&d);
                        if w.write(&d).await.is_err() {
                            writer = None;
                        }
                    }
                    if let Some(tx) = &client {
                        match tokio::time::timeout(idle, tx.send(Ok(d))).await {
                            Ok(Ok(())) => {}
                            // The client went away: nothing half-cached may become visible.
                            Ok(Err(_)) => return,
                            // A client too slow to take data must not hold the key's lock (and
                            // the replay worker) hostage: it is cut off, the copy completes.
                            Err(_) => client = None,
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some(tx) = &client {
                        let _ = tx.send(Err(e)).await;
                    }
                    return;
                }
            }
        }
        drop(client);
        let Some(writer) = writer else { return };
        let size = writer.len();
        let digests = hashes.finish();
        let md5 = hex::encode(digests.md5);
        // A plain ETag is the MD5 of the body: check the copy against it.
        let etag_ok = etag.contains('-') || etag == md5;
        if expected_len.is_some_and(|n| n != size) || !etag_ok {
            tracing::warn!(bucket = %self.bucket, key = %self.key, "cache fill did not match the upstream's length or ETag; not cached");
            return;
        }
        let Ok(blob) = self.store.finish_blob(writer).await else {
            return;
        };
        let get = |n: &str| crate::upstream::header(&headers, n).map(str::to_owned);
        let user_metadata = headers
            .iter()
            .filter_map(|(k, v)| {
                k.as_str().strip_prefix("x-amz-meta-").map(|n| {
                    (
                        n.to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
            })
            .collect();
        let last_modified_ms = get("last-modified")
            .as_deref()
            .and_then(crate::auth::parse_http_date)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now_ms(), |d| d.as_millis() as i64);
        let meta = ObjectMeta {
            segments: vec![Segment {
                blob: blob.id.clone(),
                size,
                etag: md5,
                checksum: Some(digests.checksum.value.clone()),
                sha256: digests.sha256,
            }],
            size,
            etag,
            last_modified_ms,
            content: ContentHeaders {
                content_type: get("content-type"),
                cache_control: get("cache-control"),
                content_disposition: get("content-disposition"),
                content_encoding: get("content-encoding"),
                content_language: get("content-language"),
                expires: get("expires"),
            },
            user_metadata,
            checksum: Some(digests.checksum),
            multipart: false,
            tags: Vec::new(),
            acl: None,
            sync: SyncState::Synced,
            validated_ms: now_ms(),
            sse: get("x-amz-server-side-encryption"),
        };
        // A local write or delete that landed meanwhile is newer: keep it.
        match self.store.commit_fill(&self.bucket, &self.key, meta).await {
            Ok(true) => {}
            Ok(false) => tracing::debug!("cache fill superseded by a local change"),
            Err(e) => tracing::warn!(error = %e, "cache fill not committed"),
        }
        drop(self.guard);
    }
}
