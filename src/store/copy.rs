//! Server-side copies (CopyObject, UploadPartCopy): a byte range of an object's segments into a
//! new blob file, hashed as it goes, through one fixed buffer, so a 5 GiB copy costs the same
//! memory as a 5 KiB one. Runs on a blocking thread; `Store::copy_range` pins the source and
//! makes the copy durable. Sealed sources are decrypted frame by frame, and the copy is sealed
//! when the store seals (`BlobSink`), whatever its source was.

use std::io::{Read, Write};

use super::blob::{BlobDirs, BlobSink};
use super::meta::Segment;
use crate::checksum::{BodyDigests, BodyHashes, ChecksumAlgorithm};
use crate::limits::COPY_BUFFER;

/// Copies `len` bytes from `offset` of `segments` into `out`, and finishes it.
pub fn copy_segments(
    dirs: &BlobDirs,
    segments: &[Segment],
    offset: u64,
    len: u64,
    mut out: BlobSink,
    checksum: ChecksumAlgorithm,
    sha256: bool,
) -> std::io::Result<BodyDigests> {
    let mut hashes = BodyHashes::new(checksum).with_sha256(sha256);
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut skip = offset;
    let mut left = len;
    for seg in segments {
        if left == 0 {
            break;
        }
        if skip >= seg.size {
            skip -= seg.size;
            continue;
        }
        let mut f = dirs.read_sync(seg, skip)?;
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
    out.finish()?;
    Ok(hashes.finish())
}
