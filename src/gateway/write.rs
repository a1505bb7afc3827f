//! Writes and deletes in gateway mode, per the write policy (docs/ARCHITECTURE.md, "Where each
//! policy lives"; README, "Gateway mode"): `through`, `back` and `strict`, and the
//! reconciliation of a strict write whose outcome is unknown.

use http::HeaderMap;

use super::Gateway;
use super::push::Origin;
use crate::config::WritePolicy;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::outbox::OutboxOp;
use crate::store::{ObjectMeta, Precondition, SyncState};
use crate::upstream::UpstreamError;

/// A write whose blobs are durable, ready to commit: a new object (`upload` unset) or the
/// completion of a multipart upload.
pub struct Write<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub meta: ObjectMeta,
    pub precondition: Precondition,
    pub origin: Origin<'a>,
    /// The multipart upload whose parts become the object.
    pub upload: Option<&'a str>,
}

fn unavailable(e: &UpstreamError) -> S3Error {
    tracing::warn!(error = %e, "strict write refused: upstream failed");
    S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        "The upstream could not take the write, and this write is strict.",
    )
}

impl Gateway {
    /// A strict write or delete that failed upstream. When the outcome is unknown (a timeout:
    /// the upstream may still apply it), a reconciliation is queued so the upstream ends up
    /// matching the local state again (the local version, or undoing exactly this write).
    async fn strict_failed(
        &self,
        bucket: &str,
        key: &str,
        failed_etag: Option<&str>,
        e: &UpstreamError,
    ) -> S3Error {
        if e.maybe_applied() {
            match self
                .store
                .enqueue_reconcile(bucket, key, failed_etag, crate::time::now_ms())
                .await
            {
                Ok(true) => self.kick(),
                Ok(false) => {}
                Err(err) => tracing::error!(error = %err, "cannot queue a reconciliation"),
            }
        }
        unavailable(e)
    }

    /// Commits a write per the request's write policy and replicates it; the returned
    /// metadata carries the sync state to report. The caller removes the blobs on error.
    pub async fn commit(&self, w: Write<'_>, headers: &HeaderMap) -> S3Result<ObjectMeta> {
        let Write {
            bucket,
            key,
            mut meta,
            precondition,
            origin,
            upload,
        } = w;
        let store = &self.store;
        match self.write_policy(headers)? {
            WritePolicy::Strict => {
                let guard = self.key_lock(bucket, key).await;
                // Checked before the upstream is touched (and again in the commit).
                store.check_precondition(bucket, key, &precondition).await?;
                if let Err(e) = self.replicate_new(bucket, key, &meta, origin).await {
                    drop(guard);
                    return Err(self.strict_failed(bucket, key, Some(&meta.etag), &e).await);
                }
                meta.sync = SyncState::Synced;
                let (meta, _) = store
                    .commit(bucket, key, meta, precondition, false, upload)
                    .await?;
                Ok(meta)
            }
            policy => {
                meta.sync = SyncState::Pending;
                let (mut meta, seq) = store
                    .commit(bucket, key, meta, precondition, true, upload)
                    .await?;
                if policy == WritePolicy::Through
                    && let Some(seq) = seq
                {
                    let guard = self.key_lock(bucket, key).await;
                    // Still the key's newest entry (a newer write may have landed meanwhile)?
                    let current = store
                        .entry_is_current(bucket, key, seq)
                        .await
                        .unwrap_or(false);
                    let result = if current {
                        self.replicate_new(bucket, key, &meta, origin).await
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
                            if let Err(e) = store.finish_entry(seq, &op).await {
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
                self.kick();
                Ok(meta)
            }
        }
    }

    /// Deletes locally at once and replicates the delete (a tombstone waits in the outbox
    /// until the upstream has applied it).
    pub async fn delete(&self, bucket: &str, key: &str, headers: &HeaderMap) -> S3Result<()> {
        let policy = self.write_policy(headers)?;
        if policy == WritePolicy::Strict {
            let guard = self.key_lock(bucket, key).await;
            if let Err(e) = self.delete_upstream(bucket, key).await {
                drop(guard);
                return Err(self.strict_failed(bucket, key, None, &e).await);
            }
            self.store.delete_object(bucket, key, None).await?;
            return Ok(());
        }
        let seq = self
            .store
            .delete_object(bucket, key, Some(crate::time::now_ms()))
            .await?;
        if policy == WritePolicy::Through
            && let Some(seq) = seq
        {
            let op = OutboxOp::Delete {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            };
            if let Err(e) = self.replay(seq, &op).await {
                tracing::info!(bucket, key, error = %e, "upstream unavailable: delete queued");
            }
        }
        self.kick();
        Ok(())
    }
}
