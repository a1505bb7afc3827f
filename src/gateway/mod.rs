//! Gateway mode: the policies of DESIGN.md ("Policies") between the local store, the upstream
//! client and the outbox.
//!
//! - Writes commit locally first, with their outbox entry in the same transaction. `through`
//!   then replicates at once and answers `x-lifeboat-sync: synced`, or `pending` when the
//!   upstream cannot be reached; `back` answers `pending` and leaves it to the replay worker;
//!   `strict` pushes upstream before committing and fails with 503 when it cannot.
//! - Deletes apply locally at once and leave a tombstone in the outbox until the upstream has
//!   applied them, so a deleted object never reappears.
//! - One replay worker drains the outbox in order, under a per-key lock shared with the request
//!   path, guarded by ETag (a superseded version is never pushed), with jittered backoff.
//! - Multipart objects are pushed as multipart uploads with the same part boundaries, so both
//!   sides report the same ETag.

pub mod list;
pub mod read;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use http::{HeaderMap, Method};
use tokio::sync::{Notify, OwnedMutexGuard};

use crate::checksum;
use crate::config::{ReadPolicy, UpstreamConfig, WritePolicy};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::handlers::Context;
use crate::store::outbox::OutboxOp;
use crate::store::{ObjectMeta, Precondition, Segment, Store, SyncState};
use crate::upstream::{BodySource, Upstream, UpstreamError, UpstreamRequest, backoff};

pub struct Gateway {
    pub upstream: Upstream,
    pub write: WritePolicy,
    pub read: ReadPolicy,
    store: Store,
    wake: Notify,
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Buckets known to exist locally, so a request does not look its bucket up again.
    known_buckets: Mutex<std::collections::HashSet<String>>,
}

impl Gateway {
    pub fn new(config: UpstreamConfig, store: Store) -> Result<Arc<Self>, String> {
        Ok(Arc::new(Self {
            write: config.write,
            read: config.read,
            upstream: Upstream::new(config)?,
            store,
            wake: Notify::new(),
            locks: Mutex::new(HashMap::new()),
            known_buckets: Mutex::new(std::collections::HashSet::new()),
        }))
    }

    /// Serialises replication (and cache fills) of one key.
    pub async fn key_lock(&self, bucket: &str, key: &str) -> OwnedMutexGuard<()> {
        let name = format!("{bucket}\0{key}");
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, w| w.strong_count() > 0);
            match map.get(&name).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(name, Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }

    /// Wakes the replay worker.
    pub fn kick(&self) {
        self.wake.notify_one();
    }

    async fn sha256_of(&self, seg: &Segment) -> Result<String, UpstreamError> {
        if let Some(h) = &seg.sha256 {
            return Ok(h.clone());
        }
        // Written before gateway mode was on: hash the blob once now.
        let path = self.store.dirs().path_of(&seg.blob);
        tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            use sha2::Digest;
            use std::io::Read;
            let mut f = std::fs::File::open(path)?;
            let mut h = sha2::Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(hex::encode(h.finalize()))
        })
        .await
        .map_err(|e| UpstreamError::Local(e.to_string()))?
        .map_err(|e| UpstreamError::Local(e.to_string()))
    }

    fn with_object_headers(&self, mut r: UpstreamRequest, meta: &ObjectMeta) -> UpstreamRequest {
        let c = &meta.content;
        for (name, value) in [
            ("content-type", &c.content_type),
            ("cache-control", &c.cache_control),
            ("content-disposition", &c.content_disposition),
            ("content-encoding", &c.content_encoding),
            ("content-language", &c.content_language),
            ("expires", &c.expires),
        ] {
            if let Some(v) = value {
                r = r.header(name, v.clone());
            }
        }
        for (k, v) in &meta.user_metadata {
            r = r.header(&format!("x-amz-meta-{k}"), v.clone());
        }
        // The gateway's own setting wins; else the client's own SSE header is forwarded.
        if let Some(sse) = self.upstream.config.sse.as_ref().or(meta.sse.as_ref()) {
            r = r.header("x-amz-server-side-encryption", sse.clone());
        }
        r
    }

    /// Pushes one version of an object upstream from its local blobs.
    pub async fn push_object(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<(), UpstreamError> {
        match self.push_once(bucket, key, meta).await {
            Err(e)
                if e.code() == Some("NoSuchBucket") && self.upstream.config.auto_create_buckets =>
            {
                self.create_upstream_bucket(bucket).await?;
                self.push_once(bucket, key, meta).await
            }
            other => other,
        }
    }

    async fn push_once(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<(), UpstreamError> {
        let (ub, uk) = self.upstream.map(bucket, key);
        if !meta.multipart {
            let mut r =
                self.with_object_headers(UpstreamRequest::new(Method::PUT, &ub, Some(&uk)), meta);
            if let Some(seg) = meta.segments.first() {
                r.sha256 = Some(self.sha256_of(seg).await?);
                r.body = BodySource::File {
                    path: self.store.dirs().path_of(&seg.blob),
                    len: seg.size,
                };
            }
            if let Ok(raw) = hex::decode(&meta.etag) {
                r = r.header("content-md5", checksum::base64(&raw));
            }
            self.upstream.send(&r).await?;
            return Ok(());
        }
        // Same part boundaries upstream, so the upstream's ETag equals ours.
        let create = self.with_object_headers(
            UpstreamRequest::new(Method::POST, &ub, Some(&uk)).query("uploads", ""),
            meta,
        );
        let resp = self.upstream.send(&create).await?;
        let body = self.upstream.read_body(resp, 64 * 1024).await?;
        let upload_id = crate::xml::parse(&body)
            .ok()
            .and_then(|x| x.child_text("UploadId").map(str::to_owned))
            .ok_or_else(|| UpstreamError::Local("no UploadId from the upstream".into()))?;
        let result = self.push_parts(&ub, &uk, &upload_id, meta).await;
        if result.is_err() {
            let abort = UpstreamRequest::new(Method::DELETE, &ub, Some(&uk))
                .query("uploadId", upload_id.clone());
            let _ = self.upstream.send(&abort).await;
        }
        result
    }

    async fn push_parts(
        &self,
        ub: &str,
        uk: &str,
        upload_id: &str,
        meta: &ObjectMeta,
    ) -> Result<(), UpstreamError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, seg) in meta.segments.iter().enumerate() {
            let n = (i + 1).to_string();
            let mut r = UpstreamRequest::new(Method::PUT, ub, Some(uk))
                .query("partNumber", n.clone())
                .query("uploadId", upload_id);
            r.sha256 = Some(self.sha256_of(seg).await?);
            r.body = BodySource::File {
                path: self.store.dirs().path_of(&seg.blob),
                len: seg.size,
            };
            if let Ok(raw) = hex::decode(&seg.etag) {
                r = r.header("content-md5", checksum::base64(&raw));
            }
            let resp = self.upstream.send(&r).await?;
            let etag = crate::upstream::header(resp.headers(), "etag")
                .unwrap_or("")
                .to_owned();
            xml.push_str(&format!(
                "<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let mut r = UpstreamRequest::new(Method::POST, ub, Some(uk)).query("uploadId", upload_id);
        r.sha256 = Some(crate::auth::sigv4::sha256_hex(xml.as_bytes()));
        r.body = BodySource::Bytes(xml.into());
        let resp = self.upstream.send(&r).await?;
        // Complete can answer 200 with an error in the body.
        let body = self.upstream.read_body(resp, 64 * 1024).await?;
        if let Ok(x) = crate::xml::parse(&body)
            && x.name == "Error"
        {
            return Err(UpstreamError::Status {
                status: 200,
                code: x.child_text("Code").unwrap_or("").to_owned(),
                message: x.child_text("Message").unwrap_or("").to_owned(),
            });
        }
        Ok(())
    }

    pub async fn delete_upstream(&self, bucket: &str, key: &str) -> Result<(), UpstreamError> {
        let (ub, uk) = self.upstream.map(bucket, key);
        match self
            .upstream
            .send(&UpstreamRequest::new(Method::DELETE, &ub, Some(&uk)))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes the upstream object only if it carries `etag` (the write being undone).
    async fn revert_upstream(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<(), UpstreamError> {
        let (ub, uk) = self.upstream.map(bucket, key);
        match self
            .upstream
            .send(&UpstreamRequest::new(Method::HEAD, &ub, Some(&uk)))
            .await
        {
            Ok(resp) => {
                let theirs = crate::upstream::header(resp.headers(), "etag")
                    .unwrap_or("")
                    .trim_matches('"');
                if theirs == etag {
                    tracing::info!(
                        bucket,
                        key,
                        "undoing a strict write that reached the upstream after it failed"
                    );
                    self.delete_upstream(bucket, key).await?;
                }
                Ok(())
            }
            Err(e) if e.status() == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn create_upstream_bucket(&self, bucket: &str) -> Result<(), UpstreamError> {
        let ub = match &self.upstream.config.bucket {
            Some(u) => u.clone(),
            None => bucket.to_owned(),
        };
        let mut r = UpstreamRequest::new(Method::PUT, &ub, None);
        r.method = Method::PUT;
        match self.upstream.send(&r).await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou" | "BucketAlreadyExists")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Replays one outbox entry under the key's lock. Only the key's newest entry acts: a
    /// superseded one is dropped without touching the upstream, so an older version (or an
    /// older tombstone) never lands after a newer write. Err only when the entry must stay.
    pub async fn replay(&self, seq: u64, op: &OutboxOp) -> Result<(), UpstreamError> {
        let (bucket, key) = op.bucket_key();
        let _guard = self.key_lock(bucket, key).await;
        let local = |e: crate::store::StoreError| UpstreamError::Local(e.to_string());
        if self
            .store
            .entry_is_current(bucket, key, seq)
            .await
            .map_err(local)?
        {
            match op {
                OutboxOp::Put { etag, .. } => match self.store.object(bucket, key).await {
                    Ok(meta) if meta.etag == *etag => self.push_object(bucket, key, &meta).await?,
                    Ok(_) | Err(crate::store::StoreError::NoSuchKey) => {}
                    Err(e) => return Err(local(e)),
                },
                OutboxOp::Revert { etag, .. } => match self.store.object(bucket, key).await {
                    Err(crate::store::StoreError::NoSuchKey) => {
                        self.revert_upstream(bucket, key, etag).await?
                    }
                    Ok(_) => {}
                    Err(e) => return Err(local(e)),
                },
                OutboxOp::Delete { .. } => match self.store.object(bucket, key).await {
                    Err(crate::store::StoreError::NoSuchKey) => {
                        self.delete_upstream(bucket, key).await?
                    }
                    Ok(_) => {}
                    Err(e) => return Err(local(e)),
                },
            }
        }
        if let Err(e) = self.store.finish_entry(seq, op).await {
            tracing::error!(seq, error = %e, "cannot record a replayed outbox entry");
        }
        Ok(())
    }

    /// The replay worker: drains the outbox in order, backing off while the upstream fails.
    pub fn spawn_worker(self: &Arc<Self>) {
        let gw = Arc::clone(self);
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let batch = match gw.store.outbox_batch(64).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the outbox");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if batch.is_empty() {
                    let _ = tokio::time::timeout(Duration::from_secs(5), gw.wake.notified()).await;
                    continue;
                }
                for (seq, entry) in batch {
                    match gw.replay(seq, &entry.op).await {
                        Ok(()) => failures = 0,
                        Err(e) if e.is_permanent() => {
                            // Retrying cannot help; keep the queue moving and keep the entry.
                            tracing::error!(seq, op = ?entry.op, error = %e, "upstream refused a replay for good: moved to the dead letters");
                            if let Err(err) =
                                gw.store.dead_letter(seq, &entry.op, &e.to_string()).await
                            {
                                tracing::error!(seq, error = %err, "cannot move an entry to the dead letters");
                            }
                        }
                        Err(e) => {
                            failures = failures.saturating_add(1);
                            let wait = backoff(failures, rand::random::<f64>())
                                .max(Duration::from_millis(200));
                            tracing::warn!(seq, error = %e, retry_in_ms = wait.as_millis() as u64, "outbox replay failed");
                            tokio::time::sleep(wait).await;
                            break;
                        }
                    }
                }
            }
        });
    }
}

impl Gateway {
    /// In gateway mode a bucket may exist upstream before this node has seen it (a fresh cache,
    /// or a migration): then its local record is created on first use.
    pub async fn adopt_bucket(&self, store: &Store, bucket: &str, owner: &str, region: &str) {
        if self.lock_known().contains(bucket) {
            return;
        }
        match store.bucket(bucket).await {
            Ok(_) => {
                self.lock_known().insert(bucket.to_owned());
                return;
            }
            Err(crate::store::StoreError::NoSuchBucket) => {}
            Err(_) => return,
        }
        let (ub, _) = self.upstream.map(bucket, "");
        if self
            .upstream
            .send(&UpstreamRequest::new(Method::HEAD, &ub, None))
            .await
            .is_ok()
        {
            let meta = crate::store::BucketMeta {
                created_ms: crate::handlers::now_ms(),
                owner: owner.to_owned(),
                region: region.to_owned(),
            };
            if store.create_bucket(bucket, meta).await.is_ok() {
                tracing::info!(bucket, "adopted a bucket that exists upstream");
            }
        }
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.known_buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets that a bucket exists locally (it was deleted).
    pub fn forget_bucket(&self, bucket: &str) {
        self.lock_known().remove(bucket);
    }

    /// Mirrors CreateBucket / DeleteBucket upstream (without a bucket map). Best effort: the
    /// local bucket is the one clients use; a push later creates a missing upstream bucket
    /// when `auto_create_buckets` is on.
    pub async fn mirror_bucket(&self, bucket: &str, create: bool) {
        if self.upstream.config.bucket.is_some() {
            return;
        }
        let result = if create {
            self.create_upstream_bucket(bucket).await
        } else {
            self.upstream
                .send(&UpstreamRequest::new(Method::DELETE, bucket, None))
                .await
                .map(|_| ())
        };
        if let Err(e) = result {
            tracing::warn!(bucket, create, error = %e, "could not mirror the bucket upstream");
        }
    }
}

/// The write policy of a request: the gateway's, or `x-lifeboat-write` when allowed.
pub fn write_policy(gw: &Gateway, headers: &HeaderMap) -> S3Result<WritePolicy> {
    let Some(v) = headers
        .get("x-lifeboat-write")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(gw.write);
    };
    if !gw.upstream.config.allow_write_override {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "x-lifeboat-write is not allowed by this gateway's configuration.",
        ));
    }
    match v.trim() {
        "through" => Ok(WritePolicy::Through),
        "back" => Ok(WritePolicy::Back),
        "strict" => Ok(WritePolicy::Strict),
        other => Err(S3Error::invalid_argument(
            "x-lifeboat-write must be strict, through or back",
            "x-lifeboat-write",
            other,
        )),
    }
}

/// A strict write or delete that failed upstream. When the outcome is unknown (a timeout: the
/// upstream may still apply it), a reconciliation is queued so the upstream ends up matching
/// the local state again, and nothing diverges.
async fn strict_failed(
    gw: &Gateway,
    store: &Store,
    bucket: &str,
    key: &str,
    failed_etag: Option<&str>,
    e: &UpstreamError,
) -> S3Error {
    // The upstream may still apply a write that timed out: queue what makes it match the
    // local state again (the local version, or undoing exactly this write).
    if e.maybe_applied() {
        match store
            .enqueue_reconcile(bucket, key, failed_etag, crate::handlers::now_ms())
            .await
        {
            Ok(true) => gw.kick(),
            Ok(false) => {}
            Err(err) => tracing::error!(error = %err, "cannot queue a reconciliation"),
        }
    }
    unavailable(e)
}

fn unavailable(e: &UpstreamError) -> S3Error {
    tracing::warn!(error = %e, "strict write refused: upstream failed");
    S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        "The upstream could not take the write, and this write is strict.",
    )
}

/// Commits a write whose blobs are durable, replicating it per the write policy; on error the
/// blobs are removed. The returned metadata carries the sync state to report.
pub async fn commit_write(
    ctx: &Context,
    bucket: &str,
    key: &str,
    meta: ObjectMeta,
    precondition: Precondition,
    headers: &HeaderMap,
    origin: Origin<'_>,
) -> S3Result<ObjectMeta> {
    let store = ctx.store.clone();
    let (b, k) = (bucket.to_owned(), key.to_owned());
    let check = precondition.clone();
    let uncommitted = meta.clone();
    let result = commit_with(
        ctx,
        bucket,
        key,
        meta,
        headers,
        origin,
        &check,
        async move |meta, replicate| {
            store
                .commit_object(&b, &k, meta, precondition, replicate)
                .await
        },
    )
    .await;
    if result.is_err() {
        ctx.store.discard(&uncommitted).await;
    }
    result
}

/// Where a write's bytes can come from upstream.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// Uploaded from the local blobs.
    Local,
    /// A copy of an object the upstream already holds (synced): a server-side upstream copy.
    CopyOf {
        bucket: &'a str,
        key: &'a str,
        /// The source version copied locally; the upstream copy is conditional on it.
        etag: &'a str,
    },
}

impl Gateway {
    /// Replicates a freshly committed write: a server-side copy when the upstream already has
    /// the source, else an upload from the local blobs. Must be called under the key's lock.
    async fn replicate_new(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        origin: Origin<'_>,
    ) -> Result<(), UpstreamError> {
        if let Origin::CopyOf {
            bucket: sb,
            key: sk,
            etag,
        } = origin
        {
            match self.copy_upstream(sb, sk, etag, bucket, key, meta).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_outage() => return Err(e),
                Err(e) => tracing::info!(error = %e, "server-side copy refused: uploading instead"),
            }
        }
        self.push_object(bucket, key, meta).await
    }

    /// CopyObject on the upstream, carrying the local object's headers; accepted only when the
    /// upstream's resulting ETag equals the local one (so both sides agree).
    async fn copy_upstream(
        &self,
        src_bucket: &str,
        src_key: &str,
        src_etag: &str,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<(), UpstreamError> {
        let (sb, sk) = self.upstream.map(src_bucket, src_key);
        let (ub, uk) = self.upstream.map(bucket, key);
        let r = self
            .with_object_headers(UpstreamRequest::new(Method::PUT, &ub, Some(&uk)), meta)
            .header(
                "x-amz-copy-source",
                format!(
                    "/{}/{}",
                    crate::auth::sigv4::uri_encode(&sb, true),
                    crate::auth::sigv4::uri_encode(&sk, false)
                ),
            )
            .header("x-amz-metadata-directive", "REPLACE")
            .header("x-amz-copy-source-if-match", format!("\"{src_etag}\""));
        let resp = self.upstream.send(&r).await?;
        let body = self.upstream.read_body(resp, 64 * 1024).await?;
        let x = crate::xml::parse(&body)
            .map_err(|_| UpstreamError::Local("unreadable copy result".into()))?;
        if x.name == "Error" {
            return Err(UpstreamError::Status {
                status: 200,
                code: x.child_text("Code").unwrap_or("").to_owned(),
                message: x.child_text("Message").unwrap_or("").to_owned(),
            });
        }
        let etag = x
            .child_text("ETag")
            .unwrap_or("")
            .trim_matches('"')
            .to_owned();
        if etag != meta.etag {
            return Err(UpstreamError::Local(format!(
                "upstream copy ETag {etag} differs from {}",
                meta.etag
            )));
        }
        Ok(())
    }
}

/// As `commit_write`, with the store commit given by the caller (`replicate` says whether to
/// queue an outbox entry in the same transaction).
#[allow(clippy::too_many_arguments)]
pub async fn commit_with(
    ctx: &Context,
    bucket: &str,
    key: &str,
    mut meta: ObjectMeta,
    headers: &HeaderMap,
    origin: Origin<'_>,
    precondition: &Precondition,
    commit: impl AsyncFnOnce(
        ObjectMeta,
        bool,
    ) -> Result<(ObjectMeta, Option<u64>), crate::store::StoreError>,
) -> S3Result<ObjectMeta> {
    let Some(gw) = &ctx.gateway else {
        meta.sync = SyncState::LocalOnly;
        return Ok(commit(meta, false).await?.0);
    };
    match write_policy(gw, headers)? {
        WritePolicy::Strict => {
            let guard = gw.key_lock(bucket, key).await;
            // Checked before the upstream is touched (and again in the commit).
            ctx.store
                .check_precondition(bucket, key, precondition)
                .await?;
            if let Err(e) = gw.replicate_new(bucket, key, &meta, origin).await {
                drop(guard);
                return Err(strict_failed(gw, &ctx.store, bucket, key, Some(&meta.etag), &e).await);
            }
            meta.sync = SyncState::Synced;
            Ok(commit(meta, false).await?.0)
        }
        policy => {
            meta.sync = SyncState::Pending;
            let (mut meta, seq) = commit(meta, true).await?;
            if policy == WritePolicy::Through
                && let Some(seq) = seq
            {
                let guard = gw.key_lock(bucket, key).await;
                // Still the key's newest entry (a newer write may have landed meanwhile)?
                let current = ctx
                    .store
                    .entry_is_current(bucket, key, seq)
                    .await
                    .unwrap_or(false);
                let result = if current {
                    gw.replicate_new(bucket, key, &meta, origin).await
                } else {
                    Ok(())
                };
                let op = OutboxOp::Put {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    etag: meta.etag.clone(),
                };
                match result {
                    Ok(()) => {
                        if let Err(e) = ctx.store.finish_entry(seq, &op).await {
                            tracing::error!(seq, error = %e, "cannot record a replicated write");
                        } else if current {
                            meta.sync = SyncState::Synced;
                        }
                    }
                    Err(e) => {
                        tracing::info!(bucket, key, error = %e, "upstream unavailable: write queued")
                    }
                }
                drop(guard);
            }
            gw.kick();
            Ok(meta)
        }
    }
}

/// Deletes locally at once and replicates the delete (a tombstone waits in the outbox until the
/// upstream has applied it).
pub async fn delete(ctx: &Context, bucket: &str, key: &str, headers: &HeaderMap) -> S3Result<()> {
    let Some(gw) = &ctx.gateway else {
        ctx.store.delete_object(bucket, key, None).await?;
        return Ok(());
    };
    let policy = write_policy(gw, headers)?;
    if policy == WritePolicy::Strict {
        let guard = gw.key_lock(bucket, key).await;
        if let Err(e) = gw.delete_upstream(bucket, key).await {
            drop(guard);
            return Err(strict_failed(gw, &ctx.store, bucket, key, None, &e).await);
        }
        ctx.store.delete_object(bucket, key, None).await?;
        return Ok(());
    }
    let seq = ctx
        .store
        .delete_object(bucket, key, Some(crate::handlers::now_ms()))
        .await?;
    if policy == WritePolicy::Through
        && let Some(seq) = seq
    {
        let op = OutboxOp::Delete {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        };
        if let Err(e) = gw.replay(seq, &op).await {
            tracing::info!(bucket, key, error = %e, "upstream unavailable: delete queued");
        }
    }
    gw.kick();
    Ok(())
}
