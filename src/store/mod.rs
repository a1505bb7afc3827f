//! The local store: blob files on disk plus a transactional metadata index (redb).
//!
//! Writes go temp file → fsync → rename → fsync of the directory → metadata commit, so a crash
//! leaves either the old object or the new one. Start-up recovery removes temp files and blobs
//! that no metadata references. Listings are served from the index, never from a directory walk.

pub mod blob;
mod index;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::checksum::Checksum;
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub blob: String,
    pub size: u64,
    /// Hex MD5 of the body, without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub content: ContentHeaders,
    /// `x-amz-meta-*` pairs, names lower-case without the prefix.
    #[serde(default)]
    pub user_metadata: Vec<(String, String)>,
    pub checksum: Option<Checksum>,
}

impl ObjectMeta {
    pub fn quoted_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }
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
}

impl Store {
    /// Opens (creating if needed) the store under `data_dir` and runs crash recovery.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let dirs = BlobDirs::new(data_dir);
        std::fs::create_dir_all(&dirs.blobs)?;
        std::fs::create_dir_all(&dirs.tmp)?;
        let index = index::Index::open(&data_dir.join("index.redb"))?;
        let store = Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                dirs,
                index,
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

    /// Makes the blob durable and commits it as `bucket/key`; the replaced blob, if any, is removed.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        writer: BlobWriter,
        meta_for: impl FnOnce(&DurableBlob) -> ObjectMeta,
    ) -> Result<ObjectMeta, StoreError> {
        let blob = writer.finish(&self.inner.dirs).await?;
        let meta = meta_for(&blob);
        let (b, k, m) = (bucket.to_owned(), key.to_owned(), meta.clone());
        let result = self.blocking(move |ix| ix.put_object(&b, &k, &m)).await;
        match result {
            Ok(old) => {
                if let Some(old) = old {
                    self.remove_blob(&old.blob).await;
                }
                Ok(meta)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&blob.path).await;
                Err(e)
            }
        }
    }

    pub async fn object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |ix| ix.object(&b, &k)).await
    }

    /// Opens the blob of an object. A concurrent overwrite may have removed the blob between the
    /// metadata read and the open; then the metadata is read again.
    pub async fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectMeta, tokio::fs::File), StoreError> {
        for _ in 0..3 {
            let meta = self.object(bucket, key).await?;
            match tokio::fs::File::open(self.inner.dirs.path_of(&meta.blob)).await {
                Ok(f) => return Ok((meta, f)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::NoSuchKey)
    }

    /// Deletes `bucket/key`; absent keys are not an error (S3 answers 204 either way).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        if let Some(old) = self.blocking(move |ix| ix.delete_object(&b, &k)).await? {
            self.remove_blob(&old.blob).await;
        }
        Ok(())
    }

    pub async fn list(&self, bucket: &str, query: ListQuery) -> Result<ListPage, StoreError> {
        let b = bucket.to_owned();
        self.blocking(move |ix| ix.list(&b, &query)).await
    }

    async fn remove_blob(&self, id: &str) {
        let path = self.inner.dirs.path_of(id);
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(blob = id, error = %e, "could not remove a replaced blob; recovery will");
        }
    }
}
