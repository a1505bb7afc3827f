//! The local store: blob files on disk plus a transactional metadata index (redb).
//!
//! Writes go temp file → fsync → rename → fsync of the directory → metadata commit, so a crash
//! leaves either the old object or the new one. Start-up recovery removes temp files and blobs
//! that no metadata references. Listings are served from the index, never from a directory walk.

pub mod blob;
mod index;
pub mod outbox;
mod uploads;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checksum::{BodyDigests, BodyHashes, Checksum, ChecksumAlgorithm};
pub use blob::{BlobDirs, BlobWriter, DurableBlob};
pub use index::{ListPage, ListQuery};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("no such key")]
    NoSuchKey,
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("bucket already owned by you")]
    BucketAlreadyOwnedByYou,
    #[error("bucket already exists")]
    BucketAlreadyExists,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("a part changed while the upload was being completed")]
    PartChanged,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("index: {0}")]
    Index(Box<redb::Error>),
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}

macro_rules! index_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Index(Box::new(e.into()))
            }
        }
    )*};
}
index_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketMeta {
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    pub owner: String,
    pub region: String,
}

/// The standard content headers stored with an object and returned on GET and HEAD.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
}

/// One piece of an object's body: a blob file. A simple PUT has one segment; a completed
/// multipart upload has one per part, so Complete never copies data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Segment {
    pub blob: String,
    pub size: u64,
    /// The part's ETag (hex MD5) and checksum, for GET/HEAD with `partNumber`.
    #[serde(default)]
    pub etag: String,
    #[serde(default)]
    pub checksum: Option<String>,
    /// Hex SHA-256 of the segment, sent upstream as `x-amz-content-sha256`.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// Where an object stands with respect to the upstream (`x-lifeboat-sync`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum SyncState {
    /// Written while no upstream was configured; `lifeboat sync` would push it.
    #[default]
    LocalOnly,
    /// Queued in the outbox.
    Pending,
    /// The upstream holds this version.
    Synced,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::LocalOnly => "local-only",
            SyncState::Pending => "pending",
            SyncState::Synced => "synced",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub segments: Vec<Segment>,
    pub size: u64,
    /// Hex MD5 of the body (or `md5(part md5s)-N` for multipart), without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub content: ContentHeaders,
    /// `x-amz-meta-*` pairs, names lower-case without the prefix.
    #[serde(default)]
    pub user_metadata: Vec<(String, String)>,
    pub checksum: Option<Checksum>,
    /// True when the segments are the parts of a multipart upload.
    #[serde(default)]
    pub multipart: bool,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The canned ACL given at write time (`private` when absent).
    #[serde(default)]
    pub acl: Option<String>,
    #[serde(default)]
    pub sync: SyncState,
    /// When the cached copy was last checked against the upstream (gateway reads).
    #[serde(default)]
    pub validated_ms: i64,
    /// `x-amz-server-side-encryption` the client asked for (forwarded upstream, echoed back).
    #[serde(default)]
    pub sse: Option<String>,
}

impl ObjectMeta {
    /// An object made of one durable blob, its ETag the blob's MD5; the attributes beside the
    /// body (content headers, metadata, tags, ACL, SSE) start empty.
    pub fn single(
        blob: &DurableBlob,
        md5: [u8; 16],
        checksum: Checksum,
        sha256: Option<String>,
    ) -> Self {
        let etag = hex::encode(md5);
        let now = chrono::Utc::now().timestamp_millis();
        Self {
            segments: vec![Segment {
                blob: blob.id.clone(),
                size: blob.len,
                etag: etag.clone(),
                checksum: Some(checksum.value.clone()),
                sha256,
            }],
            size: blob.len,
            etag,
            last_modified_ms: now,
            content: ContentHeaders::default(),
            user_metadata: Vec::new(),
            checksum: Some(checksum),
            multipart: false,
            tags: Vec::new(),
            acl: None,
            sync: SyncState::LocalOnly,
            validated_ms: now,
            sse: None,
        }
    }

    pub fn quoted_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }

    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| s.blob.as_str())
    }
}

/// A condition checked inside the commit transaction, so it is atomic against concurrent writers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// `If-None-Match: *`: the key must not exist.
    IfNoneMatch,
    /// `If-Match: <etag>`: the key must exist with this ETag (unquoted).
    IfMatch(String),
}

/// An in-progress multipart upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMeta {
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub owner: String,
    #[serde(default)]
    pub content: ContentHeaders,
    #[serde(default)]
    pub user_metadata: Vec<(String, String)>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub acl: Option<String>,
    /// The checksum every part carries, and whether the final one is composite (`-N`).
    pub checksum: ChecksumAlgorithm,
    pub composite: bool,
    /// Whether the client named the algorithm (parts must then use it) or took the default.
    #[serde(default)]
    pub explicit_checksum: bool,
    #[serde(default)]
    pub sse: Option<String>,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartMeta {
    pub blob: String,
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
    /// Base64 checksum of the part in the upload's algorithm.
    pub checksum: String,
    #[serde(default)]
    pub sha256: Option<String>,
}

/// The local store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    dirs: BlobDirs,
    index: index::Index,
    /// Blobs being read, with their reader count and whether they were removed meanwhile
    /// (then the last reader unlinks them).
    readers: std::sync::Mutex<std::collections::HashMap<String, (usize, bool)>>,
}

/// Keeps an object's blobs on disk while it is read: a blob replaced or deleted meanwhile is
/// unlinked only when the last reader lets go.
pub struct ReadGuard {
    store: Store,
    blobs: Vec<String>,
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let mut doomed = Vec::new();
        {
            let mut readers = self.store.lock_readers();
            for b in &self.blobs {
                if let Some(entry) = readers.get_mut(b) {
                    entry.0 -= 1;
                    if entry.0 == 0 {
                        if entry.1 {
                            doomed.push(b.clone());
                        }
                        readers.remove(b);
                    }
                }
            }
        }
        for b in doomed {
            let _ = std::fs::remove_file(self.store.inner.dirs.path_of(&b));
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir` and runs crash recovery.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dirs = BlobDirs::new(data_dir);
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
        let index = index::Index::open(&data_dir.join("index.redb"))?;
        let store = Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                dirs,
                index,
                readers: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        };
        store.recover()?;
        Ok(store)
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    pub fn dirs(&self) -> &BlobDirs {
        &self.inner.dirs
    }

    /// Removes temp files and blobs that no metadata references.
    fn recover(&self) -> Result<(), StoreError> {
        let mut removed_tmp = 0usize;
        for entry in std::fs::read_dir(&self.inner.dirs.tmp)? {
            std::fs::remove_file(entry?.path())?;
            removed_tmp += 1;
        }
        let referenced = self.inner.index.referenced_blobs()?;
        let mut removed_orphans = 0usize;
        for fan in std::fs::read_dir(&self.inner.dirs.blobs)? {
            let fan = fan?;
            if !fan.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(fan.path())? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !referenced.contains(&name) {
                    std::fs::remove_file(entry.path())?;
                    removed_orphans += 1;
                }
            }
        }
        if removed_tmp + removed_orphans > 0 {
            tracing::info!(
                removed_tmp,
                removed_orphans,
                "recovery cleaned up after an unclean stop"
            );
        }
        Ok(())
    }

    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&index::Index) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner.index))
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

    /// Opens an object for reading: its metadata and its first segment's file. A concurrent
    /// overwrite may remove the blob between the metadata read and the open; then the metadata
    /// is read again.
    pub async fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectMeta, Option<tokio::fs::File>, ReadGuard), StoreError> {
        for _ in 0..3 {
            let meta = self.object(bucket, key).await?;
            let Some((guard, first)) = self.pin(&meta.segments).await? else {
                continue; // replaced meanwhile: read the metadata again
            };
            return Ok((meta, first, guard));
        }
        Err(StoreError::NoSuchKey)
    }

    fn lock_readers(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (usize, bool)>> {
        self.inner.readers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Pins the blobs of `segments` for reading and opens the first. `None` when a blob is
    /// already gone (the object was replaced between the metadata read and the pin).
    pub async fn pin(
        &self,
        segments: &[Segment],
    ) -> Result<Option<(ReadGuard, Option<tokio::fs::File>)>, StoreError> {
        let guard = {
            let mut readers = self.lock_readers();
            for s in segments {
                readers.entry(s.blob.clone()).or_insert((0, false)).0 += 1;
            }
            ReadGuard {
                store: self.clone(),
                blobs: segments.iter().map(|s| s.blob.clone()).collect(),
            }
        };
        let mut first = None;
        for (i, s) in segments.iter().enumerate() {
            let path = self.inner.dirs.path_of(&s.blob);
            let found = if i == 0 {
                match tokio::fs::File::open(&path).await {
                    Ok(f) => {
                        first = Some(f);
                        true
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                    Err(e) => return Err(e.into()),
                }
            } else {
                tokio::fs::try_exists(&path).await?
            };
            if !found {
                return Ok(None);
            }
        }
        Ok(Some((guard, first)))
    }

    /// Deletes `bucket/key`; absent keys are not an error (S3 answers 204 either way). With
    /// `tombstone` (the time), the delete is queued for the upstream in the same transaction.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        tombstone: Option<i64>,
    ) -> Result<Option<u64>, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let (old, seq) = self
            .blocking(move |ix| ix.delete_object(&b, &k, tombstone))
            .await?;
        if let Some(old) = old {
            for blob in old.blobs() {
                self.remove_blob(blob).await;
            }
        }
        Ok(seq)
    }

    /// See `Index::delete_if_synced`; removes the deleted copy's blobs.
    pub async fn delete_if_synced(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<bool, StoreError> {
        let (b, k, e) = (bucket.to_owned(), key.to_owned(), etag.to_owned());
        match self
            .blocking(move |ix| ix.delete_if_synced(&b, &k, &e))
            .await?
        {
            Some(old) => {
                self.discard(&old).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// See `Index::commit_fill`; on refusal the fill's blob is removed.
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

    /// Copies `len` bytes from `offset` of an object's segments into a new durable blob, hashing
    /// as it goes. The copy streams through one fixed buffer on a blocking thread, so a 5 GiB
    /// copy costs the same memory as a 5 KiB one.
    pub async fn copy_range(
        &self,
        segments: &[Segment],
        offset: u64,
        len: u64,
        checksum: ChecksumAlgorithm,
        sha256: bool,
    ) -> Result<(DurableBlob, BodyDigests), StoreError> {
        const BUF: usize = 1 << 20;
        let Some((source_guard, _)) = self.pin(segments).await? else {
            return Err(StoreError::NoSuchKey);
        };
        let mut writer = self.blob_writer().await?;
        let tmp = writer.tmp_path().to_owned();
        let dirs = self.inner.dirs.clone();
        let segments = segments.to_vec();
        let digests = tokio::task::spawn_blocking(move || -> std::io::Result<BodyDigests> {
            use std::io::{Read, Seek, SeekFrom, Write};
            let mut hashes = BodyHashes::new(checksum).with_sha256(sha256);
            let mut out = std::fs::OpenOptions::new().write(true).open(&tmp)?;
            let mut buf = vec![0u8; BUF];
            let mut skip = offset;
            let mut left = len;
            for seg in &segments {
                if left == 0 {
                    break;
                }
                if skip >= seg.size {
                    skip -= seg.size;
                    continue;
                }
                let mut f = std::fs::File::open(dirs.path_of(&seg.blob))?;
                f.seek(SeekFrom::Start(skip))?;
                let mut take = left.min(seg.size - skip);
                left -= take;
                while take > 0 {
                    let want = take.min(BUF as u64) as usize;
                    let n = f.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "source blob shorter than its metadata",
                        ));
                    }
                    hashes.update(&buf[..n]);
                    out.write_all(&buf[..n])?;
                    take -= n as u64;
                }
                skip = 0;
            }
            out.flush()?;
            Ok(hashes.finish())
        })
        .await
        .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        drop(source_guard);
        writer.assume_written(len);
        Ok((self.finish_blob(writer).await?, digests))
    }

    /// Opens one segment's blob.
    pub async fn open_segment(&self, segment: &Segment) -> std::io::Result<tokio::fs::File> {
        tokio::fs::File::open(self.inner.dirs.path_of(&segment.blob)).await
    }

    pub async fn list(&self, bucket: &str, query: ListQuery) -> Result<ListPage, StoreError> {
        let b = bucket.to_owned();
        self.blocking(move |ix| ix.list(&b, &query)).await
    }

    pub(crate) async fn remove_blob(&self, id: &str) {
        {
            let mut readers = self.lock_readers();
            if let Some(entry) = readers.get_mut(id) {
                entry.1 = true; // the last reader removes it
                return;
            }
        }
        let path = self.inner.dirs.path_of(id);
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(blob = id, error = %e, "could not remove a replaced blob; recovery will");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::ChecksumAlgorithm;

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
    async fn a_replaced_blob_stays_until_its_last_reader_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bm = BucketMeta {
            created_ms: 0,
            owner: "o".into(),
            region: "r".into(),
        };
        store.create_bucket("b", bm).await.unwrap();
        let old = put(&store, "k", b"old").await;
        let (_, _, guard) = store.open_object("b", "k").await.unwrap();
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
}
