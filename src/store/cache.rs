//! The store's facade for the gateway's cache budget (issue 12, items 1 and 2): recording
//! reads, persisting them in batches, the eviction scan, pins. Evicting one copy is
//! `Store::delete_if_synced` (mod.rs). Local-only mode uses none of it but the pins, which are
//! kept in either mode.

use super::lru::Candidate;
use super::pins::Pin;
use super::{Store, StoreError};

impl Store {
    /// Records a read of a cached copy at `now_ms`, in memory only; returns how many reads
    /// wait to be persisted (`persist_access`).
    pub fn touch(&self, bucket: &str, key: &str, now_ms: i64) -> usize {
        self.inner.access.touch(bucket, key, now_ms)
    }

    /// Reads recorded and not yet persisted.
    pub fn unpersisted_reads(&self) -> usize {
        self.inner.access.len()
    }

    /// The last recorded read of `bucket/key` (in memory, else persisted), if any.
    pub async fn last_read(&self, bucket: &str, key: &str) -> Result<Option<i64>, StoreError> {
        let k = super::schema::object_key(bucket, key);
        if let Some(t) = self.inner.access.get(&k) {
            return Ok(Some(t));
        }
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |c| c.read_time(&b, &k)).await
    }

    /// Moves the reads recorded in memory into the catalog, in one transaction. Returns how
    /// many were written; on failure they are kept for the next attempt.
    pub async fn persist_access(&self) -> Result<usize, StoreError> {
        let batch = self.inner.access.take();
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        let inner = std::sync::Arc::clone(&self.inner);
        let done = tokio::task::spawn_blocking(move || {
            let r = inner.catalog.persist_access(&batch);
            (r, batch)
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        match done {
            (Ok(()), _) => Ok(n),
            (Err(e), batch) => {
                self.inner.access.restore(batch);
                Err(e)
            }
        }
    }

    /// The `limit` least recently used synced copies not under a pin (a scan of the catalog;
    /// see `Catalog::eviction_candidates`).
    pub async fn eviction_candidates(
        &self,
        pins: Vec<Pin>,
        limit: usize,
    ) -> Result<Vec<Candidate>, StoreError> {
        let inner = std::sync::Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            inner
                .catalog
                .eviction_candidates(&pins, &inner.access, limit)
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    /// Whether any of these blobs is being streamed to a client (or copied) right now.
    pub fn being_read(&self, blobs: &[String]) -> bool {
        self.inner
            .readers
            .any_pinned(blobs.iter().map(String::as_str))
    }

    /// Pins a prefix; false when it was pinned already.
    pub async fn add_pin(&self, pin: Pin) -> Result<bool, StoreError> {
        self.blocking(move |c| c.add_pin(&pin)).await
    }

    /// Unpins a prefix; false when it was not pinned.
    pub async fn remove_pin(&self, bucket: &str, prefix: &str) -> Result<bool, StoreError> {
        let (b, p) = (bucket.to_owned(), prefix.to_owned());
        self.blocking(move |c| c.remove_pin(&b, &p)).await
    }

    pub async fn pins(&self) -> Result<Vec<Pin>, StoreError> {
        self.blocking(|c| c.pins()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{Checksum, ChecksumAlgorithm};
    use crate::store::{BucketMeta, ObjectMeta, Precondition, SyncState};

    async fn put(store: &Store, key: &str, sync: SyncState, cached_ms: i64) {
        let mut w = store.blob_writer().await.unwrap();
        w.write(key.as_bytes()).await.unwrap();
        let blob = store.finish_blob(w).await.unwrap();
        let checksum = Checksum {
            algorithm: ChecksumAlgorithm::Crc64Nvme,
            value: String::new(),
            composite: false,
        };
        let meta = ObjectMeta {
            sync,
            validated_ms: cached_ms,
            last_modified_ms: 0,
            ..ObjectMeta::single(&blob, [0; 16], checksum, None)
        };
        store
            .commit_object("b", key, meta, Precondition::None, false)
            .await
            .unwrap();
    }

    fn keys(c: &[Candidate]) -> Vec<&str> {
        c.iter().map(|c| c.key.as_str()).collect()
    }

    #[tokio::test]
    async fn the_scan_offers_only_unpinned_synced_copies_least_recently_read_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), None).unwrap();
        store
            .create_bucket("b", BucketMeta::new("o", "r"))
            .await
            .unwrap();
        put(&store, "old", SyncState::Synced, 100).await;
        put(&store, "read", SyncState::Synced, 50).await;
        put(&store, "new", SyncState::Synced, 300).await;
        put(&store, "keep/x", SyncState::Synced, 10).await;
        for (k, s) in [
            ("pending", SyncState::Pending),
            ("local", SyncState::LocalOnly),
            ("failed", SyncState::Failed),
        ] {
            put(&store, k, s, 1).await;
        }
        // A read, persisted, makes "read" the youngest; "new" is read but not yet persisted.
        store.touch("b", "read", 1_000);
        assert_eq!(store.persist_access().await.unwrap(), 1);
        store.touch("b", "new", 500);
        assert_eq!(store.unpersisted_reads(), 1);
        assert_eq!(store.last_read("b", "read").await.unwrap(), Some(1_000));
        assert_eq!(store.last_read("b", "new").await.unwrap(), Some(500));
        let pin = Pin {
            bucket: "b".into(),
            prefix: "keep/".into(),
            created_ms: 0,
        };
        assert!(store.add_pin(pin.clone()).await.unwrap());
        assert!(!store.add_pin(pin).await.unwrap(), "already pinned");
        let pins = store.pins().await.unwrap();
        let c = store.eviction_candidates(pins, 10).await.unwrap();
        assert_eq!(keys(&c), ["old", "new", "read"]);
        let c = store.eviction_candidates(Vec::new(), 2).await.unwrap();
        assert_eq!(keys(&c), ["keep/x", "old"], "unpinned, it is the oldest");
        // An evicted copy's read time goes with it.
        let etag = store.object("b", "read").await.unwrap().etag;
        assert!(store.delete_if_synced("b", "read", &etag).await.unwrap());
        assert_eq!(store.last_read("b", "read").await.unwrap(), None);
        assert!(store.remove_pin("b", "keep/").await.unwrap());
        assert!(!store.remove_pin("b", "keep/").await.unwrap());
    }
}
