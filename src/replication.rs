//! The one seam between the S3 handlers and gateway mode (docs/ARCHITECTURE.md, "The seam").
//! A handler commits, deletes, reads and lists through `Replication` without asking which mode
//! it is in: `Local` is the store alone; `Gateway` adds the upstream, the outbox and the read
//! and write policies. The handlers render HTTP from what these methods return.

use std::sync::Arc;

use http::HeaderMap;

use crate::config::Config;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::gateway::Gateway;
pub use crate::gateway::push::Origin;
pub use crate::gateway::read::{CacheStatus, ObjectSource, ReadRequest, UpstreamObject};
pub use crate::gateway::write::Write;
use crate::store::{ListPage, ListQuery, ObjectMeta, Store, StoreError, SyncState};
use crate::upstream::{Disposition, UpstreamError};

pub enum Replication {
    /// Local-only: the store is the only copy.
    Local(Store),
    /// Gateway mode: every object is stored locally first and forwarded upstream.
    Gateway(Arc<Gateway>),
}

impl Replication {
    /// Local-only without `[upstream]`; otherwise the gateway, with its replay worker started.
    pub fn start(config: &Config, store: &Store) -> Result<Self, String> {
        let Some(u) = &config.upstream else {
            return Ok(Replication::Local(store.clone()));
        };
        let peers = match (&config.cluster.peers, &config.server.admin_token) {
            (p, Some(token)) if !p.is_empty() => Some(crate::gateway::coherence::Peers::start(
                p.clone(),
                token.clone(),
            )?),
            _ => None,
        };
        let budget = crate::gateway::evict::Budget {
            max_bytes: config.storage.max_bytes,
            evict_to: config.storage.evict_to,
            min_free_bytes: config.storage.min_free_bytes,
        };
        let gw = Gateway::new(u.clone(), store.clone(), peers, budget)?;
        gw.spawn_worker();
        gw.spawn_evictor();
        tracing::info!(endpoint = %u.endpoint, write = ?u.write, read = ?u.read, "gateway mode");
        Ok(Replication::Gateway(gw))
    }

    /// Shutdown: the replay worker stops after its current entry.
    pub async fn stop(&self) {
        if let Replication::Gateway(gw) = self {
            gw.stop(crate::limits::WORKER_STOP_WAIT).await;
        }
    }

    /// Checks, before a body of `incoming` bytes (0: not declared) is read, that it fits:
    /// on the disk with `storage.min_free_bytes` to spare, and in gateway mode in the cache
    /// budget beside what cannot be evicted. Else `507 InsufficientStorage`.
    pub async fn check_room(&self, incoming: u64, min_free_bytes: u64) -> S3Result<()> {
        match self {
            Replication::Local(store) => Ok(store.check_space(incoming, min_free_bytes).await?),
            Replication::Gateway(gw) => gw.check_room(incoming).await,
        }
    }

    /// Whether writes must hash their bodies with SHA-256 (sent upstream as
    /// `x-amz-content-sha256`).
    pub fn needs_sha256(&self) -> bool {
        matches!(self, Replication::Gateway(_))
    }

    /// The `x-lifeboat-sync` value an object reports (none in local-only mode).
    pub fn sync_header(&self, meta: &ObjectMeta) -> Option<&'static str> {
        match self {
            Replication::Local(_) => None,
            Replication::Gateway(_) => Some(meta.sync.as_str()),
        }
    }

    /// Commits a write whose blobs are durable and replicates it per the write policy; the
    /// returned metadata carries the sync state to report. A new object's blobs are removed
    /// when the commit fails (an upload's parts stay with the upload).
    pub async fn commit(&self, mut w: Write<'_>, headers: &HeaderMap) -> S3Result<ObjectMeta> {
        let uncommitted = w.upload.is_none().then(|| w.meta.clone());
        let result = match self {
            Replication::Local(store) => {
                w.meta.sync = SyncState::LocalOnly;
                store
                    .commit(w.bucket, w.key, w.meta, w.precondition, false, w.upload)
                    .await
                    .map(|(meta, _)| meta)
                    .map_err(Into::into)
            }
            Replication::Gateway(gw) => {
                let done = gw.commit(w, headers).await;
                gw.cache_kick(); // the eviction task sees whether this went over the budget
                done
            }
        };
        if result.is_err()
            && let Some(meta) = uncommitted
        {
            self.store().discard(&meta).await;
        }
        result
    }

    fn store(&self) -> &Store {
        match self {
            Replication::Local(store) => store,
            Replication::Gateway(gw) => gw.store(),
        }
    }

    /// Deletes an object (204 whether or not it existed) and replicates the delete.
    pub async fn delete(&self, bucket: &str, key: &str, headers: &HeaderMap) -> S3Result<()> {
        match self {
            Replication::Local(store) => {
                store.delete_object(bucket, key, None).await?;
                Ok(())
            }
            Replication::Gateway(gw) => gw.delete(bucket, key, headers).await,
        }
    }

    /// Where a GetObject or HeadObject is served from.
    pub async fn read(&self, r: &ReadRequest<'_>) -> S3Result<ObjectSource> {
        match self {
            Replication::Local(store) => {
                let (meta, blobs) = store.open_read(r.bucket, r.key, r.head).await?;
                Ok(ObjectSource::Local {
                    meta,
                    blobs,
                    cache: None,
                })
            }
            Replication::Gateway(gw) => gw.read(r).await,
        }
    }

    /// The source object of a CopyObject or UploadPartCopy, fetched into the cache first in
    /// gateway mode.
    pub async fn copy_source(&self, bucket: &str, key: &str) -> S3Result<ObjectMeta> {
        match self {
            Replication::Local(store) => store.object(bucket, key).await.map_err(|e| match e {
                StoreError::NoSuchKey => S3ErrorCode::NoSuchKey.into(),
                e => e.into(),
            }),
            Replication::Gateway(gw) => gw.copy_source(bucket, key).await,
        }
    }

    /// One page of a bucket's listing.
    pub async fn list(&self, bucket: &str, query: ListQuery) -> S3Result<ListPage> {
        match self {
            Replication::Local(store) => Ok(store.list(bucket, query).await?),
            Replication::Gateway(gw) => gw.list(bucket, query).await,
        }
    }

    /// Before a request uses a bucket: in gateway mode a bucket that exists upstream is adopted.
    pub async fn bucket_used(&self, bucket: &str, owner: &str, region: &str) {
        if let Replication::Gateway(gw) = self {
            gw.adopt_bucket(bucket, owner, region).await;
        }
    }

    /// After CreateBucket: mirrored upstream in gateway mode. An upstream that refuses it
    /// (its credentials, or a definitive no) makes this an error, and the caller undoes the
    /// local bucket; one that cannot be reached does not (the bucket is created on first use).
    pub async fn bucket_created(&self, bucket: &str) -> S3Result<()> {
        let Replication::Gateway(gw) = self else {
            return Ok(());
        };
        match gw.mirror_bucket(bucket, true).await {
            Ok(()) => Ok(()),
            Err(e) => Err(match &e {
                UpstreamError::Status { code, message, .. }
                    if e.disposition() == Disposition::Denied =>
                {
                    S3Error::with_message(
                        S3ErrorCode::AccessDenied,
                        format!(
                            "The upstream refused the credentials of this gateway: {code}: {message}"
                        ),
                    )
                }
                UpstreamError::Status { code, message, .. } => {
                    S3Error::refused_upstream(code, message)
                }
                other => S3Error::internal(other),
            }),
        }
    }

    /// After DeleteBucket: mirrored upstream in gateway mode.
    /// DeleteBucket found objects: in gateway mode, stale cached copies of objects another
    /// node deleted upstream are dropped (true: try the delete again).
    pub async fn drop_stale_bucket_copies(&self, bucket: &str) -> bool {
        match self {
            Replication::Local(_) => false,
            Replication::Gateway(gw) => gw.drop_stale_bucket_copies(bucket).await,
        }
    }

    pub async fn bucket_deleted(&self, bucket: &str) {
        if let Replication::Gateway(gw) = self {
            gw.forget_bucket(bucket);
            let _ = gw.mirror_bucket(bucket, false).await;
        }
    }
}
