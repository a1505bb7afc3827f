//! Gateway mode: the write, read and listing policies between the local store, the upstream
//! client and the outbox (docs/ARCHITECTURE.md, "Gateway mode"). Handlers never call this module
//! directly: they go through `replication::Replication`, which is local-only or this.
//!
//! - `write`: writes commit locally first, with their outbox entry in the same transaction.
//!   `through` then replicates at once and answers `x-lifeboat-sync: synced`, or `pending` when
//!   the upstream cannot be reached; `back` answers `pending` and leaves it to the replay worker;
//!   `strict` pushes upstream before committing and fails with 503 when it cannot. Deletes apply
//!   locally at once and leave a tombstone until the upstream has applied them.
//! - `push`: what one replication does upstream (a PUT, a multipart upload with the same part
//!   boundaries, a server-side copy, a delete, a revert).
//! - `worker`: the replay worker drains the outbox in order, under the per-key lock shared with
//!   the request path, guarded by ETag, with jittered backoff.
//! - `read`, `fill`: cached reads, misses streamed to the client and into the cache at once.
//! - `list`: upstream listings merged with the outbox. `buckets`: adopting and mirroring buckets.
//! - `evict`: the cache budget: least-recently-used eviction of synced copies in the
//!   background, and the 507 when what cannot be evicted fills it.
//!
//! The gateway returns data (metadata, `read::ObjectSource`, pages); the handlers render HTTP.

pub mod buckets;
pub mod coherence;
pub mod conditional;
pub mod evict;
pub mod fill;
pub mod list;
pub mod migrate;
pub mod push;
pub mod read;
pub mod warm;
pub mod worker;
pub mod write;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use http::HeaderMap;
use tokio::sync::{Notify, OwnedMutexGuard};

use crate::config::{ReadPolicy, UpstreamConfig, WritePolicy};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::Store;
use crate::upstream::Upstream;

pub struct Gateway {
    pub upstream: Upstream,
    pub write: WritePolicy,
    pub read: ReadPolicy,
    store: Store,
    wake: Notify,
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Buckets known to exist locally, so a request does not look its bucket up again.
    known_buckets: Mutex<HashSet<String>>,
    /// Whether the upstream takes `x-amz-checksum-*` headers on single-part writes, and on
    /// multipart uploads (older servers take the first and not the second).
    checksums: ChecksumSupport,
    checksums_multipart: ChecksumSupport,
    /// Whether the upstream enforces conditional writes (found out by a probe).
    pub conditional: conditional::ConditionalSupport,
    /// The last migration (`lifeboat sync`), and the replication pace.
    sync_run: Mutex<Option<migrate::SyncRun>>,
    pace: migrate::Pace,
    /// The cache warm-up this node runs (or ran last).
    warmer: warm::Warmer,
    /// The cache budget and the eviction task's state.
    pub cache: evict::Cache,
    /// `[cluster] peers`, told of every change this node makes upstream.
    peers: Option<coherence::Peers>,
    /// Turned true on shutdown: the replay worker stops after its current entry.
    stopping: tokio::sync::watch::Sender<bool>,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What Lifeboat has found out about the upstream's support for the checksum headers: unknown
/// until the first write that carries them, then yes or no for the life of the process.
#[derive(Default)]
pub struct ChecksumSupport(std::sync::atomic::AtomicU8);

impl ChecksumSupport {
    // 0 (the default): not known yet.
    const YES: u8 = 1;
    const NO: u8 = 2;

    fn load(&self) -> u8 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether to send them (unknown counts as yes: that is how it is found out).
    pub fn allowed(&self) -> bool {
        self.load() != Self::NO
    }

    pub fn note(&self, accepted: bool) {
        let v = if accepted { Self::YES } else { Self::NO };
        self.0.store(v, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Gateway {
    pub fn new(
        config: UpstreamConfig,
        store: Store,
        peers: Option<coherence::Peers>,
        budget: evict::Budget,
    ) -> Result<Arc<Self>, String> {
        let replication_rate = config.replication_rate;
        Ok(Arc::new(Self {
            peers,
            warmer: warm::Warmer::default(),
            sync_run: Mutex::new(None),
            pace: migrate::Pace::new(replication_rate),
            cache: evict::Cache::new(budget),
            write: config.write,
            read: config.read,
            upstream: Upstream::new(config)?,
            store,
            wake: Notify::new(),
            locks: Mutex::new(HashMap::new()),
            known_buckets: Mutex::new(HashSet::new()),
            checksums: ChecksumSupport::default(),
            checksums_multipart: ChecksumSupport::default(),
            conditional: conditional::ConditionalSupport::default(),
            stopping: tokio::sync::watch::Sender::new(false),
            worker: Mutex::new(None),
        }))
    }

    pub fn store(&self) -> &Store {
        &self.store
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

    /// Stops the replay worker after the entry it is replaying (waiting at most `wait`; an
    /// entry cut off stays queued and is replayed after the restart).
    pub async fn stop(&self, wait: std::time::Duration) {
        self.stopping.send_replace(true);
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = worker
            && tokio::time::timeout(wait, w).await.is_err()
        {
            tracing::warn!("the replay worker did not stop in time; its entry stays queued");
        }
        self.stop_evictor().await;
    }

    /// Wakes the replay worker.
    pub fn kick(&self) {
        self.wake.notify_one();
    }

    /// The write policy of a request: the gateway's, or `x-lifeboat-write` when allowed.
    pub fn write_policy(&self, headers: &HeaderMap) -> S3Result<WritePolicy> {
        let Some(v) = headers
            .get("x-lifeboat-write")
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(self.write);
        };
        if !self.upstream.config.allow_write_override {
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
}
