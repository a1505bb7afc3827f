//! Buckets in gateway mode: a bucket that exists upstream but not yet locally is adopted on
//! first use (a fresh cache, or a migration); CreateBucket and DeleteBucket are mirrored
//! upstream (without a bucket map); a missing upstream bucket is created on the first push when
//! `auto_create_buckets` is on.

use http::Method;

use super::Gateway;
use crate::store::{BucketMeta, ListQuery, StoreError};
use crate::upstream::{Disposition, UpstreamError, UpstreamRequest};

impl Gateway {
    /// Creates the local record of a bucket that exists upstream, on first use.
    pub async fn adopt_bucket(&self, bucket: &str, owner: &str, region: &str) {
        if self.lock_known().contains(bucket) {
            return;
        }
        match self.store.bucket(bucket).await {
            Ok(_) => {
                self.lock_known().insert(bucket.to_owned());
                return;
            }
            Err(StoreError::NoSuchBucket) => {}
            Err(_) => return,
        }
        let (ub, _) = self.upstream.map(bucket, "");
        if self
            .upstream
            .send(&UpstreamRequest::new(Method::HEAD, &ub, None))
            .await
            .is_ok()
        {
            let meta = BucketMeta::new(owner, region);
            if self.store.create_bucket(bucket, meta).await.is_ok() {
                tracing::info!(bucket, "adopted a bucket that exists upstream");
            }
        }
    }

    /// DeleteBucket found objects here: when every one is a synced copy and the upstream
    /// bucket is empty (another node deleted them), they are stale cache and are dropped, and
    /// true is returned so the delete is tried again. Anything not yet upstream, an object
    /// still upstream, or an upstream that does not answer keeps the bucket (`BucketNotEmpty`).
    pub async fn drop_stale_bucket_copies(&self, bucket: &str) -> bool {
        let store = self.store();
        let only_synced = match store.usage_by_bucket().await {
            Ok(by_bucket) => by_bucket.get(bucket).is_none_or(|u| {
                let o = &u.objects;
                o.local_only == 0 && o.pending == 0 && o.failed == 0
            }),
            Err(_) => false,
        };
        if !only_synced {
            return false;
        }
        let probe = ListQuery {
            max_keys: 1,
            ..ListQuery::default()
        };
        match self.list(bucket, probe).await {
            Ok(page) if !page.from_local_index && page.objects.is_empty() => {}
            _ => return false,
        }
        let mut start_after = None;
        loop {
            let q = ListQuery {
                start_after: start_after.take(),
                max_keys: 1000,
                ..ListQuery::default()
            };
            let Ok(page) = store.list(bucket, q).await else {
                return false;
            };
            for (key, meta) in &page.objects {
                let _guard = self.key_lock(bucket, key).await;
                if !matches!(
                    store.delete_if_synced(bucket, key, &meta.etag).await,
                    Ok(true)
                ) {
                    return false;
                }
            }
            if !page.is_truncated {
                break;
            }
            start_after = page.last;
        }
        tracing::info!(
            bucket,
            "dropped cached copies the upstream no longer has, to delete the bucket"
        );
        true
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.known_buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets that a bucket exists locally (it was deleted).
    pub fn forget_bucket(&self, bucket: &str) {
        self.lock_known().remove(bucket);
    }

    /// Mirrors CreateBucket / DeleteBucket upstream (without a bucket map). While the upstream
    /// cannot be reached this is best effort: the local bucket is the one clients use, and a
    /// push later creates a missing upstream bucket when `auto_create_buckets` is on. A
    /// CreateBucket the upstream refuses (its credentials, or a definitive no) is returned, so
    /// the caller can undo the local bucket rather than answer 200 for a bucket that will
    /// never reach the upstream.
    pub async fn mirror_bucket(&self, bucket: &str, create: bool) -> Result<(), UpstreamError> {
        if self.upstream.config.bucket.is_some() {
            return Ok(());
        }
        let result = if create {
            self.create_upstream_bucket(bucket).await
        } else {
            self.upstream
                .send(&UpstreamRequest::new(Method::DELETE, bucket, None))
                .await
                .map(|_| ())
        };
        // An open circuit opened by refused credentials is a refusal too.
        let result = match result {
            Err(UpstreamError::CircuitOpen) if self.upstream.credentials_refused() => {
                Err(UpstreamError::Status {
                    status: 403,
                    code: "AccessDenied".into(),
                    message: "the upstream refused this gateway's credentials".into(),
                })
            }
            other => other,
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if create && self.disposition(&e) != Disposition::Unavailable => {
                tracing::warn!(bucket, error = %e, "the upstream refused CreateBucket");
                Err(e)
            }
            Err(e) => {
                tracing::warn!(bucket, create, error = %e, "could not mirror the bucket upstream");
                Ok(())
            }
        }
    }

    pub async fn create_upstream_bucket(&self, bucket: &str) -> Result<(), UpstreamError> {
        let ub = match &self.upstream.config.bucket {
            Some(u) => u.clone(),
            None => bucket.to_owned(),
        };
        match self
            .upstream
            .send(&UpstreamRequest::new(Method::PUT, &ub, None))
            .await
        {
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
}
