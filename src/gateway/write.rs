//! Writes and deletes in gateway mode, per the write policy (docs/ARCHITECTURE.md, "Where each
//! policy lives"; README, "Gateway mode"):
//!
//! - `strict` and `through` push upstream first, under the key's lock, from the durable blobs,
//!   then commit locally as `synced`. A refusal (a 4xx retrying cannot change) is the client's
//!   answer in both, and nothing is stored. When the upstream cannot be reached, `strict`
//!   fails with 503 (queuing a reconciliation when the write may have landed), while `through`
//!   commits locally with an outbox entry and answers `pending`.
//! - `back` commits with an outbox entry and leaves the push to the replay worker.

use http::HeaderMap;

use super::Gateway;
use super::push::Origin;
use crate::config::WritePolicy;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::outbox::OutboxOp;
use crate::store::{ObjectMeta, Precondition, SyncState};
use crate::upstream::{Disposition, UpstreamError};

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

/// The upstream's definitive refusal of a write, as the client's answer.
pub(super) fn refusal(e: &UpstreamError) -> S3Error {
    tracing::info!(error = %e, "the upstream refused the write");
    match e {
        UpstreamError::Status { code, message, .. } => S3Error::refused_upstream(code, message),
        other => S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!("The upstream refused the write: {other}"),
        ),
    }
}

impl Gateway {
    /// What an upstream failure means here: a missing upstream bucket is not final while
    /// `auto_create_buckets` is on (creating it failed this time; it is tried again).
    pub fn disposition(&self, e: &UpstreamError) -> Disposition {
        match e.disposition() {
            Disposition::Refused
                if e.code() == Some("NoSuchBucket") && self.upstream.config.auto_create_buckets =>
            {
                Disposition::Unavailable
            }
            d => d,
        }
    }

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
            self.reconcile(bucket, key, failed_etag).await;
        }
        if self.disposition(e) == Disposition::Refused {
            return refusal(e);
        }
        unavailable(e)
    }

    /// Commits a write per the request's write policy and replicates it; the returned
    /// metadata carries the sync state to report. The caller removes the blobs on error.
    pub async fn commit(&self, w: Write<'_>, headers: &HeaderMap) -> S3Result<ObjectMeta> {
        let policy = self.write_policy(headers)?;
        if w.precondition != Precondition::None
            && let Some(done) = self.commit_conditional(&w, policy).await
        {
            return done;
        }
        let Write {
            bucket,
            key,
            mut meta,
            precondition,
            origin,
            upload,
        } = w;
        let store = &self.store;
        if policy == WritePolicy::Back {
            meta.sync = SyncState::Pending;
            // Under the key's lock, so it lands before or after a write being pushed (a
            // through or conditional one), never inside it.
            let guard = self.key_lock(bucket, key).await;
            let (meta, _) = store
                .commit(bucket, key, meta, precondition, true, upload)
                .await?;
            drop(guard);
            self.kick();
            return Ok(meta);
        }
        let guard = self.key_lock(bucket, key).await;
        // Checked before the upstream is touched (and again in the commit).
        store.check_precondition(bucket, key, &precondition).await?;
        // A through write is tried once: when the upstream is down the outbox retries it, and
        // the client gets its answer in the time of one attempt.
        let once = policy == WritePolicy::Through;
        let pushed = self.replicate_new(bucket, key, &meta, origin, once).await;
        // Whether the upstream has (or may have) this version, whatever happens locally now.
        let upstream_has_it = match &pushed {
            Ok(()) => true,
            Err(e) => e.maybe_applied(),
        };
        let etag = meta.etag.clone();
        let queue = match pushed {
            Ok(()) => false,
            Err(e) if policy == WritePolicy::Strict => {
                drop(guard);
                return Err(self.strict_failed(bucket, key, Some(&meta.etag), &e).await);
            }
            Err(e) if self.disposition(&e) == Disposition::Refused => return Err(refusal(&e)),
            Err(e) => {
                tracing::info!(bucket, key, error = %e, "upstream unavailable: write queued");
                true
            }
        };
        meta.sync = if queue {
            SyncState::Pending
        } else {
            SyncState::Synced
        };
        let committed = store
            .commit(bucket, key, meta, precondition, queue, upload)
            .await;
        let meta = match committed {
            Ok((meta, _)) => meta,
            Err(e) => {
                // The upstream is ahead of the local state (a full disk, a precondition lost
                // to a concurrent write): queue what makes it match the local state again.
                if upstream_has_it {
                    self.reconcile(bucket, key, Some(&etag)).await;
                }
                return Err(e.into());
            }
        };
        drop(guard);
        if queue {
            self.kick();
        }
        Ok(meta)
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
        let seq = {
            let _guard = self.key_lock(bucket, key).await;
            self.store
                .delete_object(bucket, key, Some(crate::time::now_ms()))
                .await?
        };
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
