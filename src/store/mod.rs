//! The local store: blob files on disk plus the catalog, a transactional metadata database
//! (redb). This module is the async facade the rest of the server calls; the layers beneath it
//! are described in docs/ARCHITECTURE.md ("The store"):
//!
//! - `schema`: the tables, key layout and encoding (the bottom; everything imports it);
//! - `objects`, `outbox`, `uploads`: the tables of one concern each, inside a caller's
//!   transaction (peers: none imports another);
//! - `catalog`: one transaction per operation, composing the three (`catalog/replay.rs` for
//!   the outbox and dead letters, `catalog/multipart.rs` for uploads);
//! - this facade, with `replay.rs` and `multipart.rs` holding the same two sides;
//! - `blob`, `readers`, `copy`: blob files, read pinning, server-side copies; `sealed`: the
//!   encrypted blob format (`storage.encryption_key_file`) that `blob` reads and writes.
//! - `access`, `pins`, `lru` (with `cache.rs` and `catalog/cache.rs`): what the gateway's
//!   cache budget needs: read times kept in batches, pinned prefixes, the eviction order.
//!
//! Writes go temp file → fsync → rename → fsync of the directory → metadata commit, so a crash
//! leaves either the old object or the new one. Start-up recovery removes temp files and blobs
//! that no metadata references. Listings are served from the catalog, never from a directory walk.

mod access;
pub mod blob;
mod cache;
mod catalog;
mod copy;
mod error;
mod lru;
mod meta;
mod multipart;
mod objects;
pub mod outbox;
mod pins;
mod readers;
mod replay;
mod schema;
mod sealed;
mod space;
mod uploads;
mod usage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checksum::{BodyDigests, ChecksumAlgorithm};
use crate::secret::EncryptionKey;

use access::AccessTimes;
pub use blob::{BlobDirs, BlobWriter, DurableBlob, SegmentRead, SegmentStream};
use catalog::Catalog;
pub use catalog::Retried;
pub use catalog::{MigrationPage, Unreachable};
pub use error::{StoreError, is_no_space};
pub use lru::Candidate;
pub use meta::{
    BucketMeta, CompletedUpload, ContentHeaders, ObjectMeta, PartMeta, Precondition, Segment,
    SyncState, UploadMeta,
};
pub use objects::{ListPage, ListQuery};
pub use outbox::{Attempts, DeadLetter, DeadLetterFilter, OutboxStats};
pub use pins::Pin;
use readers::Readers;
pub use readers::{OpenBlobs, ReadGuard};
/// The catalog's bucket and object tables, their key layout and value encoding, for
/// `benches/list.rs` alone: it loads a million rows in a few transactions, where one
/// `commit_object` per key would cost a million commits, and times the decoding of a page's
/// rows apart. The server goes through `Store`.
pub use schema::{BUCKETS, OBJECTS, decode, encode, object_key};
pub use usage::{ByState, Usage};

/// The file in the data directory that records which key sealed the blobs (`sealed::fingerprint`,
/// an HMAC of a fixed label: it reveals nothing of the key).
pub const KEY_FINGERPRINT: &str = "encryption-key.fingerprint";

/// The local store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    dirs: BlobDirs,
    catalog: Catalog,
    /// Blobs being read; a blob removed meanwhile is unlinked by its last reader.
    readers: Readers,
    /// Reads of cached copies not yet persisted (`access.rs`).
    access: AccessTimes,
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir` and runs crash recovery. With
    /// `key` (`storage.encryption_key_file`) new blobs are sealed; without it a store that
    /// holds sealed blobs refuses to open, and so does one whose sealed blobs were written
    /// with another key (`KEY_FINGERPRINT` records which).
    pub fn open(data_dir: &Path, key: Option<EncryptionKey>) -> Result<Self, StoreError> {
        let dirs = BlobDirs::new(data_dir).with_key(key);
        std::fs::create_dir_all(&dirs.blobs)?;
        std::fs::create_dir_all(&dirs.tmp)?;
        // All 256 fan-out directories exist (and are durable) before any blob is renamed into
        // one, so no commit can race the creation of its directory.
        let mut created = false;
        for i in 0..=255u8 {
            let fan = dirs.blobs.join(format!("{i:02x}"));
            if !fan.exists() {
                std::fs::create_dir(&fan)?;
                created = true;
            }
        }
        if created {
            blob::sync_dir(&dirs.blobs)?;
        }
        let catalog = Catalog::open(&data_dir.join("index.redb"))?;
        let store = Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                dirs: dirs.clone(),
                catalog,
                readers: Readers::new(dirs),
                access: AccessTimes::default(),
            }),
        };
        store.recover()?;
        space::create_reserve(data_dir);
        Ok(store)
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn dirs(&self) -> &BlobDirs {
        &self.inner.dirs
    }

    /// Removes temp files and blobs that no metadata references; refuses a store whose sealed
    /// blobs this process has no key for.
    fn recover(&self) -> Result<(), StoreError> {
        let referenced = self.inner.catalog.referenced_blobs()?;
        self.check_key(referenced.sealed)?;
        let (removed_tmp, removed_orphans) = self.inner.dirs.remove_unreferenced(&referenced)?;
        if removed_tmp + removed_orphans > 0 {
            tracing::info!(
                removed_tmp,
                removed_orphans,
                "recovery cleaned up after an unclean stop"
            );
        }
        Ok(())
    }

    /// Without a key, sealed blobs are unreadable: refuse to start rather than fail every read.
    /// With one, its fingerprint must be the one recorded (when sealed blobs exist), and is
    /// recorded for the next start.
    fn check_key(&self, sealed: u64) -> Result<(), StoreError> {
        let path = self.inner.data_dir.join(KEY_FINGERPRINT);
        let Some(fingerprint) = self.inner.dirs.fingerprint() else {
            return match sealed {
                0 => Ok(()),
                sealed => Err(StoreError::KeyRequired { sealed }),
            };
        };
        match std::fs::read_to_string(&path) {
            Ok(recorded) if recorded.trim() == fingerprint => return Ok(()),
            Ok(_) if sealed > 0 => {
                return Err(StoreError::WrongKey {
                    path: path.display().to_string(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        std::fs::write(&path, format!("{fingerprint}\n"))?;
        if sealed == 0 {
            tracing::info!("encryption at rest is on: new blobs are sealed");
        }
        Ok(())
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner.catalog))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    pub async fn create_bucket(&self, name: &str, meta: BucketMeta) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.blocking(move |ix| ix.create_bucket(&name, &meta))
            .await
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.blocking(move |ix| ix.delete_bucket(&name)).await
    }

    pub async fn bucket(&self, name: &str) -> Result<BucketMeta, StoreError> {
        let name = name.to_owned();
        self.blocking(move |ix| ix.bucket(&name)?.ok_or(StoreError::NoSuchBucket))
            .await
    }

    pub async fn list_buckets(&self) -> Result<Vec<(String, BucketMeta)>, StoreError> {
        self.blocking(|ix| ix.list_buckets()).await
    }

    pub async fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        Ok(BlobWriter::create(&self.inner.dirs).await?)
    }

    /// Makes the blob durable (fsync, rename, fsync of the directory).
    pub async fn finish_blob(&self, writer: BlobWriter) -> Result<DurableBlob, StoreError> {
        Ok(writer.finish(&self.inner.dirs).await?)
    }

    /// Commits metadata whose blobs are already durable, with an outbox entry when `replicate`;
    /// removes the replaced object's blobs. Returns the entry's sequence number.
    pub async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        precondition: Precondition,
        replicate: bool,
    ) -> Result<(ObjectMeta, Option<u64>), StoreError> {
        let (b, k, m) = (bucket.to_owned(), key.to_owned(), meta.clone());
        let (old, seq) = self
            .blocking(move |ix| ix.put_object(&b, &k, &m, &precondition, replicate))
            .await?;
        if let Some(old) = old {
            self.remove_replaced(&old, &meta).await;
        }
        Ok((meta, seq))
    }

    /// Commits a write whose blobs are durable: a new object, or (with `upload`) the object
    /// made of that multipart upload's parts. With `replicate`, an outbox entry commits in the
    /// same transaction.
    pub async fn commit(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        precondition: Precondition,
        replicate: bool,
        upload: Option<&str>,
    ) -> Result<(ObjectMeta, Option<u64>), StoreError> {
        match upload {
            None => {
                self.commit_object(bucket, key, meta, precondition, replicate)
                    .await
            }
            Some(id) => {
                self.complete_upload(id, meta, precondition, replicate)
                    .await
            }
        }
    }

    /// Removes the blobs of `old` that `new` does not reuse.
    async fn remove_replaced(&self, old: &ObjectMeta, new: &ObjectMeta) {
        for blob in old.blobs() {
            if !new.blobs().any(|b| b == blob) {
                self.remove_blob(blob).await;
            }
        }
    }

    pub async fn object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |ix| ix.object(&b, &k)).await
    }

    /// The object's metadata and, unless `head`, its blobs opened for reading, in one blocking
    /// call: a plain object of one blob up to `limits::SMALL_READ` is read whole there
    /// (`OpenBlobs::Read`), a larger one pinned with its first blob open. A concurrent overwrite
    /// may remove the blob between the metadata read and the open; then the metadata is read
    /// again.
    pub async fn open_read(
        &self,
        bucket: &str,
        key: &str,
        head: bool,
    ) -> Result<(ObjectMeta, Option<OpenBlobs>), StoreError> {
        if head {
            return Ok((self.object(bucket, key).await?, None));
        }
        let inner = Arc::clone(&self.inner);
        let (b, k) = (bucket.to_owned(), key.to_owned());
        tokio::task::spawn_blocking(move || {
            for _ in 0..3 {
                let meta = inner.catalog.object(&b, &k)?;
                if let [only] = meta.segments.as_slice()
                    && !only.sealed
                    && only.size <= crate::limits::SMALL_READ
                {
                    match read_whole(&inner.dirs.path_of(&only.blob), only.size) {
                        Ok(bytes) => return Ok((meta, Some(OpenBlobs::Read(bytes)))),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                if let Some((guard, first)) = inner.readers.pin_blocking(&meta.segments)? {
                    let first = first.map(tokio::fs::File::from_std);
                    return Ok((meta, Some(OpenBlobs::Pinned(first, guard))));
                }
            }
            Err(StoreError::NoSuchKey)
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    /// Pins the blobs of `segments` for reading (a copy's source), in one blocking call. `None`
    /// when a blob is already gone (the object was replaced since its metadata was read).
    pub async fn pin(&self, segments: &[Segment]) -> Result<Option<ReadGuard>, StoreError> {
        let readers = self.inner.readers.clone();
        let segments = segments.to_vec();
        tokio::task::spawn_blocking(move || {
            Ok(readers.pin_blocking(&segments)?.map(|(guard, _)| guard))
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    async fn remove_blob(&self, id: &str) {
        self.inner.readers.remove_blob(id).await;
    }

    /// Copies `len` bytes from `offset` of an object's segments into a new durable blob, hashing
    /// as it goes (`copy::copy_segments`, on a blocking thread), with the source pinned.
    pub async fn copy_range(
        &self,
        segments: &[Segment],
        offset: u64,
        len: u64,
        checksum: ChecksumAlgorithm,
        sha256: bool,
    ) -> Result<(DurableBlob, BodyDigests), StoreError> {
        let Some(source_guard) = self.pin(segments).await? else {
            return Err(StoreError::NoSuchKey);
        };
        let mut writer = self.blob_writer().await?;
        let sink = writer.blocking_sink()?;
        let dirs = self.inner.dirs.clone();
        let segments = segments.to_vec();
        let digests = tokio::task::spawn_blocking(move || {
            copy::copy_segments(&dirs, &segments, offset, len, sink, checksum, sha256)
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        drop(source_guard);
        writer.assume_written(len);
        Ok((self.finish_blob(writer).await?, digests))
    }

    /// Deletes `bucket/key`; absent keys are not an error (S3 answers 204 either way). With
    /// `tombstone` (the time), the delete is queued for the upstream in the same transaction.
    ///
    /// A delete must work on a full disk, since it frees space: when its commit finds no
    /// room, the reserve file is released and the commit tried again.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        tombstone: Option<i64>,
    ) -> Result<Option<u64>, StoreError> {
        let attempt = || {
            let (b, k) = (bucket.to_owned(), key.to_owned());
            self.blocking(move |ix| ix.delete_object(&b, &k, tombstone))
        };
        let (old, seq) = match attempt().await {
            Err(StoreError::NoSpace(_)) if space::release_reserve(self.data_dir()) => {
                tracing::warn!("disk full: released the reserve so a delete can commit");
                attempt().await?
            }
            other => other?,
        };
        if let Some(old) = old {
            for blob in old.blobs() {
                self.remove_blob(blob).await;
            }
            let dir = self.data_dir().to_owned();
            let _ = tokio::task::spawn_blocking(move || space::create_reserve(&dir)).await;
        }
        Ok(seq)
    }

    /// Bytes free on the data disk (for Lifeboat's user).
    pub async fn free_bytes(&self) -> Result<u64, StoreError> {
        let dir = self.data_dir().to_owned();
        tokio::task::spawn_blocking(move || space::available(&dir))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
            .map_err(StoreError::Io)
    }

    /// `NoSpace` unless `needed` bytes fit on the data disk with `min_free` to spare.
    pub async fn check_space(&self, needed: u64, min_free: u64) -> Result<(), StoreError> {
        let available = self.free_bytes().await?;
        if needed.saturating_add(min_free) > available {
            return Err(StoreError::NoSpace(format!(
                "{needed} bytes do not fit: {available} available, storage.min_free_bytes = {min_free}"
            )));
        }
        Ok(())
    }

    /// As `delete_if_synced`, for the cache budget: the eviction is recorded (`EVICTED`), so
    /// a server turned local-only can say what only the upstream holds.
    pub async fn evict_if_synced(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<bool, StoreError> {
        let (b, k, e) = (bucket.to_owned(), key.to_owned(), etag.to_owned());
        let removed = self
            .blocking(move |ix| ix.evict_if_synced(&b, &k, &e))
            .await?;
        Ok(self.discard_removed(removed).await)
    }

    /// Removes the blobs of a copy the catalog dropped; true when there was one.
    async fn discard_removed(&self, removed: Option<ObjectMeta>) -> bool {
        match removed {
            Some(old) => {
                self.discard(&old).await;
                true
            }
            None => false,
        }
    }

    /// Evicted objects that are not local again (`sample` of them named).
    pub async fn unreachable(&self, sample: usize) -> Result<Unreachable, StoreError> {
        self.blocking(move |ix| ix.unreachable(sample)).await
    }

    /// See `Catalog::delete_if_synced`; removes the deleted copy's blobs.
    pub async fn delete_if_synced(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<bool, StoreError> {
        let (b, k, e) = (bucket.to_owned(), key.to_owned(), etag.to_owned());
        let removed = self
            .blocking(move |ix| ix.delete_if_synced(&b, &k, &e))
            .await?;
        Ok(self.discard_removed(removed).await)
    }

    /// See `Catalog::commit_fill`; on refusal the fill's blob is removed.
    pub async fn commit_fill(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
    ) -> Result<bool, StoreError> {
        let (b, k, m) = (bucket.to_owned(), key.to_owned(), meta.clone());
        let done = self.blocking(move |ix| ix.commit_fill(&b, &k, &m)).await;
        if !matches!(done, Ok(true)) {
            self.discard(&meta).await;
        }
        done
    }

    pub async fn check_precondition(
        &self,
        bucket: &str,
        key: &str,
        p: &Precondition,
    ) -> Result<(), StoreError> {
        if *p == Precondition::None {
            return Ok(());
        }
        let (b, k, p) = (bucket.to_owned(), key.to_owned(), p.clone());
        self.blocking(move |ix| ix.check_precondition(&b, &k, &p))
            .await
    }

    /// Removes the blobs of an object that was never committed.
    pub async fn discard(&self, meta: &ObjectMeta) {
        for blob in meta.blobs() {
            self.remove_blob(blob).await;
        }
    }

    /// Replaces an object's tags (or ACL) without touching its body.
    pub async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(&mut ObjectMeta) + Send + 'static,
    ) -> Result<ObjectMeta, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |ix| ix.update_object(&b, &k, change))
            .await
    }

    /// A reader of `len` plaintext bytes from `offset` of one segment (decrypted when it is
    /// sealed), from `file` when the segment's blob is already open (`pin`).
    pub async fn open_segment(
        &self,
        segment: &Segment,
        file: Option<tokio::fs::File>,
        offset: u64,
        len: u64,
    ) -> std::io::Result<SegmentStream> {
        self.inner
            .dirs
            .open_stream(segment, file, offset, len)
            .await
    }

    pub async fn list(&self, bucket: &str, query: ListQuery) -> Result<ListPage, StoreError> {
        let b = bucket.to_owned();
        self.blocking(move |ix| ix.list(&b, &query)).await
    }

    /// Objects and bytes by sync state, over every bucket (kept by every write, not scanned).
    pub async fn usage(&self) -> Result<Usage, StoreError> {
        self.blocking(|c| c.usage()).await
    }

    /// Objects and bytes by sync state, per bucket.
    pub async fn usage_by_bucket(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Usage>, StoreError> {
        self.blocking(|c| c.usage_by_bucket()).await
    }

    /// Sets or removes a bucket's CORS rules.
    pub async fn set_bucket_cors(
        &self,
        bucket: &str,
        cors: Option<crate::cors::CorsConfig>,
    ) -> Result<(), StoreError> {
        let b = bucket.to_owned();
        self.blocking(move |c| c.update_bucket(&b, |m| m.cors = cors))
            .await
    }
}

/// Reads exactly `size` bytes, the whole of a plain blob.
fn read_whole(path: &Path, size: u64) -> std::io::Result<bytes::Bytes> {
    use std::io::Read;
    let len = usize::try_from(size).map_err(std::io::Error::other)?;
    let mut buf = vec![0u8; len];
    let mut file = std::fs::File::open(path)?;
    file.read_exact(&mut buf)?;
    Ok(bytes::Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{Checksum, ChecksumAlgorithm};

    /// A store on `dir` with bucket `b`.
    async fn with_bucket(dir: &Path) -> Store {
        let store = Store::open(dir, None).unwrap();
        store
            .create_bucket("b", BucketMeta::new("o", "r"))
            .await
            .unwrap();
        store
    }

    async fn put(store: &Store, key: &str, body: &[u8]) -> ObjectMeta {
        let mut w = store.blob_writer().await.unwrap();
        w.write(body).await.unwrap();
        let blob = store.finish_blob(w).await.unwrap();
        let checksum = Checksum {
            algorithm: ChecksumAlgorithm::Crc64Nvme,
            value: String::new(),
            composite: false,
        };
        let meta = ObjectMeta::single(&blob, [0; 16], checksum, None);
        store
            .commit_object("b", key, meta, Precondition::None, false)
            .await
            .unwrap()
            .0
    }

    #[tokio::test]
    async fn a_store_with_sealed_blobs_needs_its_own_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = |b| EncryptionKey::from_bytes(&[b; 32]);
        {
            let store = with_bucket(dir.path()).await;
            put(&store, "plain", b"old").await;
        }
        {
            // A key on a store with only plain blobs: fine; new blobs are sealed.
            let store = Store::open(dir.path(), key(1)).unwrap();
            let meta = put(&store, "sealed", b"new").await;
            assert!(meta.segments[0].sealed);
            assert!(!store.object("b", "plain").await.unwrap().segments[0].sealed);
        }
        let refused = Store::open(dir.path(), None).err().unwrap();
        assert!(
            matches!(refused, StoreError::KeyRequired { sealed: 1 }),
            "{refused}"
        );
        let refused = Store::open(dir.path(), key(2)).err().unwrap();
        assert!(matches!(refused, StoreError::WrongKey { .. }), "{refused}");
        assert!(Store::open(dir.path(), key(1)).is_ok());
    }

    #[tokio::test]
    async fn a_replaced_blob_stays_until_its_last_reader_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = with_bucket(dir.path()).await;
        let old = put(&store, "k", b"old").await;
        let guard = store.pin(&old.segments).await.unwrap().unwrap();
        put(&store, "k", b"new").await;
        let old_path = store.dirs().path_of(&old.segments[0].blob);
        assert!(old_path.exists(), "removed while a reader still streams it");
        drop(guard);
        assert!(!old_path.exists(), "the last reader removes it");
        store.delete_object("b", "k", None).await.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs"))
                .unwrap()
                .flatten()
                .map(|d| std::fs::read_dir(d.path()).unwrap().count())
                .sum::<usize>(),
            0
        );
    }

    #[tokio::test]
    async fn a_small_plain_object_is_read_whole_a_larger_one_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let store = with_bucket(dir.path()).await;
        put(&store, "small", b"a few bytes").await;
        let big = vec![7u8; crate::limits::SMALL_READ as usize + 1];
        put(&store, "big", &big).await;
        match store.open_read("b", "small", false).await.unwrap() {
            (meta, Some(OpenBlobs::Read(bytes))) => {
                assert_eq!(&bytes[..], b"a few bytes");
                assert_eq!(meta.size, 11);
            }
            _ => panic!("a small object is read whole"),
        }
        assert!(matches!(
            store.open_read("b", "big", false).await.unwrap().1,
            Some(OpenBlobs::Pinned(Some(_), _))
        ));
        assert!(
            store
                .open_read("b", "small", true)
                .await
                .unwrap()
                .1
                .is_none()
        );
        assert!(matches!(
            store.open_read("b", "missing", false).await,
            Err(StoreError::NoSuchKey)
        ));
    }
}
