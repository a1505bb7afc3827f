//! Server-side copies (CopyObject, UploadPartCopy): a byte range of an object's segments into a
//! new durable blob, hashed as it goes, through one fixed buffer on a blocking thread.

use super::{DurableBlob, Segment, Store, StoreError};
use crate::checksum::{BodyDigests, BodyHashes, ChecksumAlgorithm};
use crate::limits::COPY_BUFFER;

impl Store {
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
            let mut buf = vec![0u8; COPY_BUFFER];
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
                    let want = take.min(COPY_BUFFER as u64) as usize;
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
}
