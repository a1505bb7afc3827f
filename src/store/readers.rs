//! Read pinning: a blob being streamed to a client (or copied) stays on disk until its last
//! reader lets go, even when the object is overwritten or deleted meanwhile, so a download
//! never ends early.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{ObjectMeta, Segment, Store, StoreError};

/// Blobs being read: reader count, and whether the blob was removed meanwhile (then the last
/// reader unlinks it).
#[derive(Default)]
pub(super) struct Readers(Mutex<HashMap<String, (usize, bool)>>);

/// An object's blobs, pinned for reading, with the first one open.
pub type OpenBlobs = (Option<tokio::fs::File>, ReadGuard);

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
    fn lock_readers(&self) -> std::sync::MutexGuard<'_, HashMap<String, (usize, bool)>> {
        self.inner
            .readers
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
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

    /// The object's metadata and, unless `head`, its blobs pinned for reading.
    pub async fn open_read(
        &self,
        bucket: &str,
        key: &str,
        head: bool,
    ) -> Result<(ObjectMeta, Option<OpenBlobs>), StoreError> {
        if head {
            Ok((self.object(bucket, key).await?, None))
        } else {
            let (meta, file, guard) = self.open_object(bucket, key).await?;
            Ok((meta, Some((file, guard))))
        }
    }
}
