//! Blob files: object bodies on disk, named by an internal id and never by the object key.
//!
//! A blob is written to `tmp/<id>.tmp`, fsynced, renamed to `blobs/<id[..2]>/<id>`, and the
//! directory is fsynced, before the metadata that points at it is committed. A writer dropped
//! before `finish` (a client that went away, a failed check) removes its temp file.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncWriteExt, BufWriter};

use crate::limits::WRITE_BUFFER;

/// A random 128-bit id in hex.
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Where blobs and temp files live under the data directory.
#[derive(Debug, Clone)]
pub struct BlobDirs {
    pub blobs: PathBuf,
    pub tmp: PathBuf,
}

impl BlobDirs {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            blobs: data_dir.join("blobs"),
            tmp: data_dir.join("tmp"),
        }
    }

    /// Start-up recovery: removes every temp file and every blob not in `referenced`; returns
    /// how many of each.
    pub fn remove_unreferenced(
        &self,
        referenced: &std::collections::HashSet<String>,
    ) -> std::io::Result<(usize, usize)> {
        let mut removed_tmp = 0usize;
        for entry in std::fs::read_dir(&self.tmp)? {
            std::fs::remove_file(entry?.path())?;
            removed_tmp += 1;
        }
        let mut removed_orphans = 0usize;
        for fan in std::fs::read_dir(&self.blobs)? {
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
        Ok((removed_tmp, removed_orphans))
    }

    pub fn path_of(&self, id: &str) -> PathBuf {
        let fan = id.get(..2).unwrap_or("00");
        self.blobs.join(fan).join(id)
    }
}

/// A blob being written. Dropping it before `finish` deletes the temp file.
pub struct BlobWriter {
    id: String,
    tmp_path: PathBuf,
    file: Option<BufWriter<tokio::fs::File>>,
    len: u64,
}

/// A blob that is durable on disk but not yet referenced by metadata.
#[derive(Debug)]
pub struct DurableBlob {
    pub id: String,
    pub path: PathBuf,
    pub len: u64,
}

impl BlobWriter {
    pub async fn create(dirs: &BlobDirs) -> std::io::Result<Self> {
        let id = new_id();
        let tmp_path = dirs.tmp.join(format!("{id}.tmp"));
        let file = tokio::fs::File::create(&tmp_path).await?;
        Ok(Self {
            id,
            tmp_path,
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            len: 0,
        })
    }

    /// The temp file, for writers that fill it by other means (a file-to-file copy).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }

    /// Records bytes written to the temp file through `tmp_path`.
    pub fn assume_written(&mut self, len: u64) {
        self.len += len;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other("blob writer already finished"));
        };
        f.write_all(data).await?;
        self.len += data.len() as u64;
        Ok(())
    }

    /// Flushes, fsyncs, renames into place and fsyncs the directory.
    pub async fn finish(mut self, dirs: &BlobDirs) -> std::io::Result<DurableBlob> {
        let Some(mut f) = self.file.take() else {
            return Err(std::io::Error::other("blob writer already finished"));
        };
        f.flush().await?;
        let file = f.into_inner();
        file.sync_all().await?;
        drop(file);
        let dest = dirs.path_of(&self.id);
        let tmp = self.tmp_path.clone();
        let dest2 = dest.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let dir = dest2
                .parent()
                .ok_or_else(|| std::io::Error::other("blob path has no parent"))?;
            // The store creates every fan-out directory at open; this covers a bare BlobDirs.
            if !dir.exists() {
                std::fs::create_dir_all(dir)?;
                if let Some(parent) = dir.parent() {
                    sync_dir(parent)?;
                }
            }
            std::fs::rename(&tmp, &dest2)?;
            sync_dir(dir)
        })
        .await
        .map_err(std::io::Error::other)??;
        // The temp file is gone: nothing for Drop to clean up.
        self.tmp_path = PathBuf::new();
        Ok(DurableBlob {
            id: std::mem::take(&mut self.id),
            path: dest,
            len: self.len,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp_path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

/// fsyncs a directory so that a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropped_writer_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = BlobDirs::new(dir.path());
        std::fs::create_dir_all(&dirs.tmp).unwrap();
        let mut w = BlobWriter::create(&dirs).await.unwrap();
        w.write(b"partial").await.unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(&dirs.tmp).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn finished_blob_is_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = BlobDirs::new(dir.path());
        std::fs::create_dir_all(&dirs.tmp).unwrap();
        let mut w = BlobWriter::create(&dirs).await.unwrap();
        w.write(b"hello").await.unwrap();
        let blob = w.finish(&dirs).await.unwrap();
        assert_eq!(std::fs::read(&blob.path).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(&dirs.tmp).unwrap().count(), 0);
        assert_eq!(blob.len, 5);
    }
}
