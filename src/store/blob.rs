//! Blob files: object bodies on disk, named by an internal id and never by the object key.
//!
//! A blob is written to `tmp/<id>.tmp`, fsynced, renamed to `blobs/<id[..2]>/<id>`, and the
//! directory is fsynced, before the metadata that points at it is committed. A writer dropped
//! before `finish` (a client that went away, a failed check) removes its temp file.
//!
//! With an encryption key, every new blob is sealed (`sealed/`) and says so
//! (`DurableBlob::sealed`, then `Segment::sealed`); blobs written before the key was set stay
//! plain and readable. Every read and write of a blob's bytes goes through this module: the
//! writer, `BlobSink` for copies, `SegmentStream` for GET and `BlobDirs::read_sync` for the
//! blocking readers.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::meta::Segment;
use super::sealed::{SealError, SealedReader, SealedStream, SealedWriter, Sealer};
use crate::limits::{READ_CHUNK, WRITE_BUFFER};
use crate::secret::EncryptionKey;

/// A random 128-bit id in hex.
pub fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Where blobs and temp files live under the data directory, and the key new blobs are sealed
/// with.
#[derive(Debug, Clone)]
pub struct BlobDirs {
    pub blobs: PathBuf,
    pub tmp: PathBuf,
    key: Option<Arc<EncryptionKey>>,
}

impl BlobDirs {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            blobs: data_dir.join("blobs"),
            tmp: data_dir.join("tmp"),
            key: None,
        }
    }

    /// New blobs are sealed with `key`, and sealed blobs can be read.
    pub fn with_key(mut self, key: Option<EncryptionKey>) -> Self {
        self.key = key.map(Arc::new);
        self
    }

    /// The key's fingerprint (`sealed::fingerprint`), when there is a key.
    pub fn fingerprint(&self) -> Option<String> {
        self.key.as_deref().map(super::sealed::fingerprint)
    }

    fn key_for(&self, blob: &str) -> Result<&EncryptionKey, SealError> {
        self.key.as_deref().ok_or_else(|| SealError::NoKey {
            blob: blob.to_owned(),
        })
    }

    /// A blocking reader of `segment`'s plaintext from `offset` to its end.
    pub fn read_sync(&self, segment: &Segment, offset: u64) -> std::io::Result<SegmentRead> {
        use std::io::{Seek, SeekFrom};
        let mut file = std::fs::File::open(self.path_of(&segment.blob))?;
        if segment.sealed {
            let key = self.key_for(&segment.blob)?;
            let r = SealedReader::open(file, key, &segment.blob, segment.size, offset)?;
            return Ok(SegmentRead::Sealed(Box::new(r)));
        }
        file.seek(SeekFrom::Start(offset))?;
        Ok(SegmentRead::Plain(file))
    }

    /// An async reader of `len` plaintext bytes from `offset` of `segment`, from `file` when
    /// it is already open.
    pub async fn open_stream(
        &self,
        segment: &Segment,
        file: Option<tokio::fs::File>,
        offset: u64,
        len: u64,
    ) -> std::io::Result<SegmentStream> {
        let mut file = match file {
            Some(f) => f,
            None => tokio::fs::File::open(self.path_of(&segment.blob)).await?,
        };
        if segment.sealed {
            let key = self.key_for(&segment.blob)?;
            let s = SealedStream::open(file, key, &segment.blob, segment.size, offset, len).await?;
            return Ok(SegmentStream::Sealed(Box::new(s)));
        }
        if offset > 0 {
            file.seek(std::io::SeekFrom::Start(offset)).await?;
        }
        Ok(SegmentStream::Plain { file, left: len })
    }

    /// Start-up recovery: removes every temp file and every blob not in `referenced`; returns
    /// how many of each.
    pub fn remove_unreferenced(
        &self,
        referenced: &super::meta::Referenced,
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
                if !referenced.ids.contains(&name) {
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

/// A blocking reader of one segment's plaintext (`BlobDirs::read_sync`).
pub enum SegmentRead {
    Plain(std::fs::File),
    Sealed(Box<SealedReader<std::fs::File>>),
}

impl Read for SegmentRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SegmentRead::Plain(f) => f.read(buf),
            SegmentRead::Sealed(r) => r.read(buf),
        }
    }
}

/// An async reader of a range of one segment's plaintext (`BlobDirs::open_stream`).
pub enum SegmentStream {
    Plain { file: tokio::fs::File, left: u64 },
    Sealed(Box<SealedStream>),
}

impl SegmentStream {
    /// The next bytes of the range (up to `READ_CHUNK`, or one frame); `None` when it is done.
    pub async fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        match self {
            SegmentStream::Sealed(s) => s.next_chunk().await,
            SegmentStream::Plain { file, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                let want = (*left).min(READ_CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob shorter than its metadata",
                    ));
                }
                buf.truncate(n);
                *left -= n as u64;
                Ok(Some(Bytes::from(buf)))
            }
        }
    }
}

/// A blob being written. Dropping it before `finish` deletes the temp file.
pub struct BlobWriter {
    id: String,
    tmp_path: PathBuf,
    file: Option<BufWriter<tokio::fs::File>>,
    len: u64,
    /// Seals what `write` is given; taken by `blocking_sink`.
    sealer: Option<Box<Sealer>>,
    sealed: bool,
}

/// A blob that is durable on disk but not yet referenced by metadata.
#[derive(Debug)]
pub struct DurableBlob {
    pub id: String,
    pub path: PathBuf,
    /// Plaintext bytes (a sealed blob's file is longer).
    pub len: u64,
    /// Written sealed (encrypted at rest).
    pub sealed: bool,
}

/// A blocking writer of a whole blob (a file-to-file copy on a blocking thread), from
/// `BlobWriter::blocking_sink`; `finish` it, then `BlobWriter::assume_written`.
pub enum BlobSink {
    Plain(std::fs::File),
    Sealed(Box<SealedWriter<std::fs::File>>),
}

impl Write for BlobSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            BlobSink::Plain(f) => f.write(buf),
            BlobSink::Sealed(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            BlobSink::Plain(f) => f.flush(),
            BlobSink::Sealed(w) => w.flush(),
        }
    }
}

impl BlobSink {
    /// Flushes (a sealed blob: writes its final frame first).
    pub fn finish(self) -> std::io::Result<()> {
        match self {
            BlobSink::Plain(mut f) => f.flush(),
            BlobSink::Sealed(w) => w.finish().map(drop),
        }
    }
}

impl BlobWriter {
    /// A new blob: sealed when `dirs` has a key.
    pub async fn create(dirs: &BlobDirs) -> std::io::Result<Self> {
        let id = new_id();
        let sealer = match &dirs.key {
            Some(k) => Some(Box::new(Sealer::new(k, &id)?)),
            None => None,
        };
        let tmp_path = dirs.tmp.join(format!("{id}.tmp"));
        let file = tokio::fs::File::create(&tmp_path).await?;
        Ok(Self {
            id,
            tmp_path,
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            len: 0,
            sealed: sealer.is_some(),
            sealer,
        })
    }

    /// A blocking writer of the whole body, in place of `write` (a file-to-file copy); it seals
    /// when this blob is sealed.
    pub fn blocking_sink(&mut self) -> std::io::Result<BlobSink> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.tmp_path)?;
        Ok(match self.sealer.take() {
            Some(s) => BlobSink::Sealed(Box::new(SealedWriter::new(file, *s))),
            None => BlobSink::Plain(file),
        })
    }

    /// Records plaintext bytes written through `blocking_sink`.
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
        match self.sealer.as_mut() {
            None => f.write_all(data).await?,
            Some(sealer) => {
                let mut rest = data;
                while let Some(frame) = sealer.update(&mut rest)? {
                    f.write_all(frame).await?;
                }
            }
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// Flushes, fsyncs, renames into place and fsyncs the directory.
    pub async fn finish(mut self, dirs: &BlobDirs) -> std::io::Result<DurableBlob> {
        let Some(mut f) = self.file.take() else {
            return Err(std::io::Error::other("blob writer already finished"));
        };
        if let Some(sealer) = self.sealer.as_mut() {
            f.write_all(sealer.finish()?).await?;
        }
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
            sealed: self.sealed,
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
    use std::io::{Read, Write};

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
        assert!(!blob.sealed);
    }

    fn segment(blob: &DurableBlob) -> Segment {
        Segment {
            blob: blob.id.clone(),
            size: blob.len,
            etag: String::new(),
            checksum: None,
            sha256: None,
            part_number: 0,
            sealed: blob.sealed,
        }
    }

    async fn read_range(dirs: &BlobDirs, seg: &Segment, offset: u64, len: u64) -> Vec<u8> {
        let mut s = dirs.open_stream(seg, None, offset, len).await.unwrap();
        let mut got = Vec::new();
        while let Some(c) = s.next_chunk().await.unwrap() {
            got.extend_from_slice(&c);
        }
        got
    }

    #[tokio::test]
    async fn a_sealed_blob_is_written_and_read_back_through_every_path() {
        let dir = tempfile::tempdir().unwrap();
        let key = EncryptionKey::from_bytes(&[9; 32]);
        let dirs = BlobDirs::new(dir.path()).with_key(key);
        std::fs::create_dir_all(&dirs.tmp).unwrap();
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let mut w = BlobWriter::create(&dirs).await.unwrap();
        for piece in body.chunks(70_000) {
            w.write(piece).await.unwrap();
        }
        let blob = w.finish(&dirs).await.unwrap();
        assert!(blob.sealed);
        assert_eq!(blob.len, body.len() as u64);
        let on_disk = std::fs::read(&blob.path).unwrap();
        assert_ne!(on_disk.get(..1000), body.get(..1000));
        let seg = segment(&blob);
        assert_eq!(read_range(&dirs, &seg, 0, blob.len).await, body);
        assert_eq!(
            read_range(&dirs, &seg, 65_530, 20).await,
            body[65_530..65_550]
        );
        let mut sync = Vec::new();
        dirs.read_sync(&seg, 131_072)
            .unwrap()
            .read_to_end(&mut sync)
            .unwrap();
        assert_eq!(sync, body[131_072..]);

        // A copy through the blocking sink is sealed too.
        let mut w = BlobWriter::create(&dirs).await.unwrap();
        let mut sink = w.blocking_sink().unwrap();
        sink.write_all(&body[..100]).unwrap();
        sink.finish().unwrap();
        w.assume_written(100);
        let copy = w.finish(&dirs).await.unwrap();
        assert!(copy.sealed);
        assert_eq!(
            read_range(&dirs, &segment(&copy), 0, 100).await,
            body[..100]
        );

        // Without the key, a sealed segment is a clear error, never its ciphertext.
        let keyless = BlobDirs::new(dir.path());
        let err = keyless.read_sync(&seg, 0).err().unwrap();
        assert!(
            err.to_string().contains("storage.encryption_key_file"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_plain_blob_stays_readable_once_a_key_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let plain = BlobDirs::new(dir.path());
        std::fs::create_dir_all(&plain.tmp).unwrap();
        let mut w = BlobWriter::create(&plain).await.unwrap();
        w.write(b"written before the key").await.unwrap();
        let blob = w.finish(&plain).await.unwrap();
        let keyed = BlobDirs::new(dir.path()).with_key(EncryptionKey::from_bytes(&[1; 32]));
        assert_eq!(read_range(&keyed, &segment(&blob), 8, 6).await, b"before");
    }
}
