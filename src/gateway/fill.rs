//! Upstream bodies on their way to a client and into the cache. A miss is streamed to the
//! client and written to a blob at once; the copy becomes visible only once complete and
//! checked against the upstream's length, ETag and checksum, so a client that disconnects, or
//! a body that is cut or corrupted, leaves nothing half-cached, and a corrupted body reaches the
//! client as a broken transfer. A client too slow to take data is cut off rather than holding
//! the key's lock.

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
use crate::checksum::{BodyHashes, Checksum, ChecksumAlgorithm};
use crate::limits::CHANNEL_DEPTH;
use crate::store::{ContentHeaders, ObjectMeta, Segment, Store, SyncState};
use crate::time::{now_ms, parse_http_date_ms};
use crate::upstream::{UpstreamError, UpstreamRequest, header};

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
                        let _ = tokio::time::timeout(idle, tx.send(Err(e))).await;
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

impl Gateway {
    /// GETs a whole object from the upstream, with its stored checksums, to fill the cache.
    pub async fn fetch_whole(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let (ub, uk) = self.upstream.map(bucket, key);
        let r = UpstreamRequest::new(Method::GET, &ub, Some(&uk))
            .header("x-amz-checksum-mode", "ENABLED");
        self.upstream.send(&r).await
    }
}

/// Fetches a whole object into the cache in the background (after a Range miss).
pub async fn prefetch(gw: Arc<Gateway>, bucket: String, key: String) {
    let guard = gw.key_lock(&bucket, &key).await;
    if gw.store.object(&bucket, &key).await.is_ok() {
        return;
    }
    match gw.fetch_whole(&bucket, &key).await {
        Ok(resp) => {
            let fill = Fill::new(&gw, &bucket, &key, guard);
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

/// A full-object checksum the upstream declared (`x-amz-checksum-*` with checksum mode on),
/// as (algorithm, base64 value). A composite one (`…-N`) covers parts, not the body.
fn declared_checksum(headers: &HeaderMap) -> Option<(ChecksumAlgorithm, String)> {
    let composite =
        header(headers, "x-amz-checksum-type").is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE"));
    ChecksumAlgorithm::ALL.into_iter().find_map(|alg| {
        let v = header(headers, alg.header())?;
        (!composite && !v.contains('-')).then(|| (alg, v.to_owned()))
    })
}

/// A composite checksum the upstream declared for a multipart object (`…-N`, checksum type
/// COMPOSITE): the client's choice, kept with a cached copy so a read reports it as AWS would.
fn composite_checksum(headers: &HeaderMap) -> Option<Checksum> {
    let composite =
        header(headers, "x-amz-checksum-type").is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE"));
    ChecksumAlgorithm::ALL.into_iter().find_map(|alg| {
        let v = header(headers, alg.header())?;
        (composite || v.contains('-')).then(|| Checksum {
            algorithm: alg,
            value: v.to_owned(),
            composite: true,
        })
    })
}

/// The ETag as an MD5 of the body, when it is one: 32 hex digits (not a multipart `…-N` or
/// another server's scheme), of an object not encrypted with KMS or a customer key (AWS
/// documents other ETags for those).
fn etag_md5(headers: &HeaderMap, etag: &str) -> Option<String> {
    let kms =
        header(headers, "x-amz-server-side-encryption").is_some_and(|v| v.starts_with("aws:kms"));
    let sse_c = headers.contains_key("x-amz-server-side-encryption-customer-algorithm");
    let e = etag.trim_start_matches("W/").trim_matches('"');
    let hex32 = e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit());
    (hex32 && !kms && !sse_c).then(|| e.to_ascii_lowercase())
}

/// Sends a failure to the client, without waiting longer than `idle` on one that stopped
/// reading (the fill holds the key's lock).
async fn fail_client(
    client: &Option<mpsc::Sender<std::io::Result<Bytes>>>,
    e: std::io::Error,
    idle: Duration,
) {
    if let Some(tx) = client {
        let _ = tokio::time::timeout(idle, tx.send(Err(e))).await;
    }
}

/// Hands a chunk to the client. False when the client went away; a client too slow to take
/// data within `idle` is cut off (`client` becomes `None`) and the fill goes on without it.
async fn forward(
    client: &mut Option<mpsc::Sender<std::io::Result<Bytes>>>,
    chunk: Bytes,
    idle: Duration,
) -> bool {
    let Some(tx) = client.as_ref() else {
        return true;
    };
    match tokio::time::timeout(idle, tx.send(Ok(chunk))).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            *client = None;
            true
        }
    }
}

impl Fill {
    pub fn new(gw: &Arc<Gateway>, bucket: &str, key: &str, guard: OwnedMutexGuard<()>) -> Self {
        Self {
            store: gw.store.clone(),
            gw: Arc::clone(gw),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            guard,
        }
    }

    /// Streams the upstream body into a blob and to the client. The last chunk is held back
    /// until the whole body has been checked against every declared digest (the length, the
    /// ETag when it is an MD5, a full-object `x-amz-checksum-*`), so a corrupted body reaches
    /// the client as a broken transfer, never as a complete wrong object, and is not cached.
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
        let declared = declared_checksum(&headers);
        let idle = self.gw.upstream.config.idle_timeout;
        let mut writer = self.store.blob_writer().await.ok();
        let mut hashes = BodyHashes::new(ChecksumAlgorithm::Crc64Nvme)
            .with_sha256(true)
            .with_extra(declared.as_ref().map(|(a, _)| *a));
        let mut body = resp.into_body();
        let mut client = client;
        let mut held: Option<Bytes> = None;
        let mut received = 0u64;
        loop {
            if writer.is_none() && client.is_none() {
                return; // nobody wants the rest
            }
            match next_data(&mut body, idle).await {
                Ok(Some(d)) => {
                    received += d.len() as u64;
                    hashes.update(&d);
                    if let Some(w) = writer.as_mut()
                        && w.write(&d).await.is_err()
                    {
                        writer = None;
                    }
                    if let Some(prev) = held.replace(d)
                        && !forward(&mut client, prev, idle).await
                    {
                        // The client went away: nothing half-cached may become visible.
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    fail_client(&client, e, idle).await;
                    return;
                }
            }
        }
        let digests = hashes.finish();
        let md5 = hex::encode(digests.md5);
        let computed = |alg: ChecksumAlgorithm| {
            [digests.extra.as_ref(), Some(&digests.checksum)]
                .into_iter()
                .flatten()
                .find(|c| c.algorithm == alg)
                .map(|c| c.value.clone())
        };
        let mismatch = if expected_len.is_some_and(|n| n != received) {
            Some("length")
        } else if etag_md5(&headers, &etag).is_some_and(|e| e != md5) {
            Some("ETag (MD5)")
        } else if let Some((alg, value)) = &declared
            && computed(*alg).as_deref() != Some(value.as_str())
        {
            Some(alg.header())
        } else {
            None
        };
        if let Some(what) = mismatch {
            crate::metrics::integrity_error();
            tracing::error!(bucket = %self.bucket, key = %self.key, mismatch = what, received, "upstream integrity error: the body does not match what the upstream declared; not served whole, not cached");
            let e =
                std::io::Error::new(std::io::ErrorKind::InvalidData, "upstream integrity error");
            fail_client(&client, e, idle).await;
            return;
        }
        if let Some(last) = held.take()
            && !forward(&mut client, last, idle).await
        {
            return;
        }
        drop(client);
        let Some(writer) = writer else { return };
        let size = writer.len();
        let Ok(blob) = self.store.finish_blob(writer).await else {
            return;
        };
        // The upstream's own full-object checksum is kept with the copy (the client that
        // uploaded it may have chosen it); else the CRC64NVME computed here.
        let checksum = match composite_checksum(&headers) {
            // A composite checksum covers the parts, not the body: kept as the upstream
            // reports it (the object's length and ETag were checked above).
            Some(c) => c,
            None => match &declared {
                Some((alg, _)) => [digests.extra.clone(), Some(digests.checksum.clone())]
                    .into_iter()
                    .flatten()
                    .find(|c| c.algorithm == *alg)
                    .unwrap_or_else(|| digests.checksum.clone()),
                None => digests.checksum.clone(),
            },
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
                checksum: Some(checksum.value.clone()),
                sha256: digests.sha256,
                part_number: 0,
                sealed: blob.sealed,
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
            checksum: Some(checksum),
            multipart: false,
            tags: Vec::new(),
            acl: None,
            sync: SyncState::Synced,
            validated_ms: now_ms(),
            sse: get("x-amz-server-side-encryption"),
        };
        // A local write or delete that landed meanwhile is newer: keep it.
        match self.store.commit_fill(&self.bucket, &self.key, meta).await {
            Ok(true) => self.gw.cache_kick(),
            Ok(false) => tracing::debug!("cache fill superseded by a local change"),
            Err(e) => tracing::warn!(error = %e, "cache fill not committed"),
        }
        drop(self.guard);
    }
}
