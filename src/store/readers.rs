//! Read pinning: a blob being streamed to a client (or copied) stays on disk until its last
//! reader lets go, even when the object is overwritten or deleted meanwhile, so a download
//! never ends early. A leaf of the store: it knows blob ids and paths, nothing of the catalog.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::blob::BlobDirs;
use super::error::StoreError;
use super::meta::Segment;

/// Blobs being read: reader count, and whether the blob was removed meanwhile (then the last
/// reader unlinks it).
#[derive(Clone)]
pub struct Readers {
    pinned: Arc<Mutex<HashMap<String, (usize, bool)>>>,
    dirs: BlobDirs,
}

/// An object opened for reading.
pub enum OpenBlobs {
    /// Its blobs pinned, with the first one open, to be streamed.
    Pinned(Option<tokio::fs::File>, ReadGuard),
    /// The whole of a small plain object, read with its metadata in one blocking call
    /// (`Store::open_read`): no file, stream task or channel for a few KiB.
    Read(bytes::Bytes),
}

/// Keeps an object's blobs on disk while it is read: a blob replaced or deleted meanwhile is
/// unlinked only when the last reader lets go.
pub struct ReadGuard {
    readers: Readers,
    blobs: Vec<String>,
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let mut doomed = Vec::new();
        {
            let mut pinned = self.readers.lock();
            for b in &self.blobs {
                if let Some(entry) = pinned.get_mut(b) {
                    entry.0 -= 1;
                    if entry.0 == 0 {
                        if entry.1 {
                            doomed.push(b.clone());
                        }
                        pinned.remove(b);
                    }
                }
            }
        }
        for b in doomed {
            let _ = std::fs::remove_file(self.readers.dirs.path_of(&b));
        }
    }
}

impl Readers {
    pub fn new(dirs: BlobDirs) -> Self {
        Self {
            pinned: Arc::new(Mutex::new(HashMap::new())),
            dirs,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (usize, bool)>> {
        self.pinned.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn guard(&self, segments: &[Segment]) -> ReadGuard {
        let mut pinned = self.lock();
        for s in segments {
            pinned.entry(s.blob.clone()).or_insert((0, false)).0 += 1;
        }
        ReadGuard {
            readers: self.clone(),
            blobs: segments.iter().map(|s| s.blob.clone()).collect(),
        }
    }

    /// Pins the blobs of `segments` for reading and opens the first, on the calling (blocking)
    /// thread. `None` when a blob is already gone (the object was replaced between the metadata
    /// read and the pin).
    pub fn pin_blocking(
        &self,
        segments: &[Segment],
    ) -> Result<Option<(ReadGuard, Option<std::fs::File>)>, StoreError> {
        let guard = self.guard(segments);
        let mut first = None;
        for (i, s) in segments.iter().enumerate() {
            let path = self.dirs.path_of(&s.blob);
            let found = if i == 0 {
                match std::fs::File::open(&path) {
                    Ok(f) => {
                        first = Some(f);
                        true
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                    Err(e) => return Err(e.into()),
                }
            } else {
                std::fs::exists(&path)?
            };
            if !found {
                return Ok(None);
            }
        }
        Ok(Some((guard, first)))
    }

    /// Whether any of `blobs` is being read right now.
    pub fn any_pinned<'a>(&self, mut blobs: impl Iterator<Item = &'a str>) -> bool {
        let pinned = self.lock();
        blobs.any(|b| pinned.contains_key(b))
    }

    /// Removes a blob no metadata references any more; while it is being read, the last reader
    /// removes it instead.
    pub async fn remove_blob(&self, id: &str) {
        {
            let mut pinned = self.lock();
            if let Some(entry) = pinned.get_mut(id) {
                entry.1 = true; // the last reader removes it
                return;
            }
        }
        let path = self.dirs.path_of(id);
        if let Err(e) = tokio::fs::remove_file(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(blob = id, error = %e, "could not remove a replaced blob; recovery will");
        }
    }
}
