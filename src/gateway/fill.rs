//! Upstream bodies on their way to a client and into the cache. A miss is streamed to the
//! client and written to a blob at once; the copy becomes visible only once complete and
//! checked against the upstream's length and ETag, so a client that disconnects, or a body that
//! is cut, leaves nothing half-cached. A client too slow to take data is cut off rather than
//! holding the key's lock.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{OwnedMutexGuard, mpsc};
use tracing::Instrument;

use super::Gateway;
use crate::body::ResponseBody;
use crate::checksum::{BodyHashes, ChecksumAlgorithm};
use crate::limits::CHANNEL_DEPTH;
use crate::store::{ContentHeaders, ObjectMeta, Segment, Store, SyncState};
use crate::time::{now_ms, parse_http_date_ms};
use crate::upstream::{UpstreamRequest, header};

/// The upstream's Content-Length, if it sent one.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    header(headers, "content-length").and_then(|v| v.parse::<u64>().ok())
}

/// The upstream's Last-Modified in milliseconds (now when it sent none).
pub fn last_modified_ms(headers: &HeaderMap) -> i64 {
    header(headers, "last-modified")
        .and_then(parse_http_date_ms)
        .unwrap_or_else(now_ms)
}

/// Streams an upstream body to the client as it is (no caching), with the idle timeout.
pub fn relay(gw: &Gateway, resp: Response<Incoming>) -> ResponseBody {
    let len = content_length(resp.headers());
    let idle = gw.upstream.config.idle_timeout;
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    tokio::spawn(
        async move {
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
        }
        .in_current_span(),
    );
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
pub async fn prefetch(gw: Arc<Gateway>, bucket: String, key: String) {
    let guard = gw.key_lock(&bucket, &key).await;
    if gw.store.object(&bucket, &key).await.is_ok() {
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
                store: gw.store.clone(),
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

/// One upstream body on its way into the cache (and maybe to a client).
pub struct Fill {
    pub store: Store,
    pub gw: Arc<Gateway>,
    pub bucket: String,
    pub key: String,
    /// Held until the copy is committed or abandoned.
    pub guard: OwnedMutexGuard<()>,
}

impl Fill {
    pub async fn run(
        self,
        resp: Response<Incoming>,
        client: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    ) {
        let headers = resp.headers().clone();
        let expected_len = content_length(&headers);
        let etag = header(&headers, "etag")
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
        let get = |n: &str| header(&headers, n).map(str::to_owned);
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
            last_modified_ms: last_modified_ms(&headers),
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
