//! Encryption at rest (`storage.encryption_key_file`): a sealed blob is AES-256-GCM in frames
//! of 64 KiB of plaintext, so a Range read decrypts only the frames it touches, and a frame
//! that was changed, moved, swapped in from another blob or cut off fails its tag and is never
//! served. Only bodies are sealed: keys, metadata and the catalog are not.
//!
//! Layout: a header (`MAGIC`, then a random 128-bit salt), then the frames, each its ciphertext
//! (`FRAME` bytes; the last one 0 to `FRAME`) followed by its 16-byte tag. The plaintext size
//! stays in the metadata (`Segment::size`), so frame `i` starts at `HEADER + i * (FRAME + TAG)`
//! and the file's length is known before a byte is read (`Layout`).
//!
//! Keys and nonces: every blob has its own key, HMAC-SHA256(master key, `KDF_LABEL` ‖ salt),
//! and frame `i` uses the 96-bit nonce `i`. A (key, nonce) pair never repeats: the key is new
//! with every blob (a fresh random salt) and the nonce with every frame of it. The associated
//! data is the blob id, the frame index and whether the frame is the last one, so a frame
//! reordered within its blob, copied into another blob, or a blob cut after a whole frame fails
//! to open. A tag that fails is logged at error level with the blob id and counted
//! (`lifeboat_sealed_frames_rejected_total`); every frame opened is counted too
//! (`lifeboat_sealed_frames_read_total`), which is how a test sees a Range read stay small.

use std::io::{self, Read, Seek, SeekFrom, Write};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit, Nonce, Tag};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::secret::EncryptionKey;

/// Plaintext bytes per frame: small enough that a Range read wastes little, large enough that
/// the 16-byte tag costs 0.02 %.
pub const FRAME: usize = 64 * 1024;
/// The AES-GCM tag after each frame's ciphertext.
pub const TAG: usize = 16;
/// A sealed blob starts with these bytes (format version 1).
const MAGIC: [u8; 8] = *b"LBSEAL01";
const SALT: usize = 16;
/// Magic and salt.
pub const HEADER: usize = MAGIC.len() + SALT;
/// Domain separation for the per-blob key.
const KDF_LABEL: &[u8] = b"lifeboat sealed blob v1";
/// Domain separation for the key's fingerprint (`fingerprint`).
const FINGERPRINT_LABEL: &[u8] = b"lifeboat key fingerprint v1";

/// Why a sealed blob cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("blob {blob} is sealed, and storage.encryption_key_file is not set")]
    NoKey { blob: String },
    #[error("blob {blob} does not start with a sealed blob's header")]
    BadHeader { blob: String },
    #[error(
        "blob {blob}: {found} bytes on disk where its size needs {expected}: truncated or changed"
    )]
    WrongLength {
        blob: String,
        found: u64,
        expected: u64,
    },
    #[error(
        "blob {blob}: frame {frame} failed authentication: changed on disk, or sealed with \
         another key"
    )]
    Tampered { blob: String, frame: u64 },
    #[error("AES-GCM refused the input")]
    Cipher,
    #[error("a finished sealer was written to")]
    Finished,
}

impl From<SealError> for io::Error {
    fn from(e: SealError) -> Self {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Where a sealed blob's frames lie, from its plaintext size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    size: u64,
}

impl Layout {
    pub fn new(size: u64) -> Self {
        Self { size }
    }

    /// Frames in the blob: an empty blob still has one (empty, final) frame.
    pub fn frames(self) -> u64 {
        self.size.div_ceil(FRAME as u64).max(1)
    }

    pub fn last(self) -> u64 {
        self.frames() - 1
    }

    /// Plaintext bytes in frame `i`.
    pub fn plain_len(self, i: u64) -> usize {
        if i < self.last() {
            FRAME
        } else {
            // At most FRAME, so the cast cannot truncate.
            (self.size - self.last() * FRAME as u64) as usize
        }
    }

    /// Where frame `i` starts in the file.
    pub fn offset(self, i: u64) -> u64 {
        HEADER as u64 + i * (FRAME + TAG) as u64
    }

    /// The file's length.
    pub fn sealed_len(self) -> u64 {
        HEADER as u64 + self.size + self.frames() * TAG as u64
    }

    /// The frame holding plaintext byte `offset` (the last one for the end of the blob).
    pub fn frame_of(self, offset: u64) -> u64 {
        (offset / FRAME as u64).min(self.last())
    }
}

/// One blob's derived key and id: seals and opens its frames.
struct FrameKey {
    aead: Aes256Gcm,
    blob: String,
}

impl FrameKey {
    fn derive(master: &EncryptionKey, salt: &[u8], blob: &str) -> Result<Self, SealError> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(master.expose())
            .map_err(|_| SealError::Cipher)?;
        mac.update(KDF_LABEL);
        mac.update(salt);
        let mut derived = mac.finalize().into_bytes();
        let aead = Aes256Gcm::new_from_slice(&derived).map_err(|_| SealError::Cipher);
        derived.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&derived);
        Ok(Self {
            aead: aead?,
            blob: blob.to_owned(),
        })
    }

    fn nonce(index: u64) -> Nonce<Aes256Gcm> {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&index.to_be_bytes());
        n.into()
    }

    /// The blob id, the frame index and the final flag.
    fn aad(&self, index: u64, last: bool) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.blob.len() + 9);
        aad.extend_from_slice(self.blob.as_bytes());
        aad.extend_from_slice(&index.to_be_bytes());
        aad.push(u8::from(last));
        aad
    }

    fn seal(&self, index: u64, last: bool, buf: &mut [u8]) -> Result<Tag<Aes256Gcm>, SealError> {
        self.aead
            .encrypt_inout_detached(&Self::nonce(index), &self.aad(index, last), buf.into())
            .map_err(|_| SealError::Cipher)
    }

    fn open(&self, index: u64, last: bool, buf: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = Tag::<Aes256Gcm>::try_from(tag) else {
            return false;
        };
        self.aead
            .decrypt_inout_detached(
                &Self::nonce(index),
                &self.aad(index, last),
                buf.into(),
                &tag,
            )
            .is_ok()
    }
}

/// A hex fingerprint of the master key (HMAC of a fixed label: it reveals nothing of the key),
/// kept beside the blobs so that a store opened with another key refuses to start.
pub fn fingerprint(master: &EncryptionKey) -> String {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(master.expose()) {
        Ok(mut mac) => {
            mac.update(FINGERPRINT_LABEL);
            hex::encode(&mac.finalize().into_bytes()[..16])
        }
        Err(_) => String::new(),
    }
}

/// Seals one blob as it is written: takes plaintext, gives back whole sealed frames (the header
/// comes before the first). Holds at most one frame of plaintext and one of output.
pub struct Sealer {
    key: FrameKey,
    header: Option<[u8; HEADER]>,
    index: u64,
    pending: Vec<u8>,
    out: Vec<u8>,
    done: bool,
}

impl Sealer {
    /// A sealer for the blob `blob`, with a fresh random salt.
    pub fn new(master: &EncryptionKey, blob: &str) -> Result<Self, SealError> {
        let salt = rand::random::<u128>().to_be_bytes();
        let mut header = [0u8; HEADER];
        header[..MAGIC.len()].copy_from_slice(&MAGIC);
        header[MAGIC.len()..].copy_from_slice(&salt);
        Ok(Self {
            key: FrameKey::derive(master, &salt, blob)?,
            header: Some(header),
            index: 0,
            pending: Vec::with_capacity(FRAME),
            out: Vec::with_capacity(HEADER + FRAME + TAG),
            done: false,
        })
    }

    /// Takes bytes from the front of `input`; `Some` is a sealed frame to write before calling
    /// again, `None` means `input` is used up. A full frame is held until more input shows it
    /// is not the last.
    pub fn update(&mut self, input: &mut &[u8]) -> Result<Option<&[u8]>, SealError> {
        if self.done {
            return Err(SealError::Finished);
        }
        loop {
            if input.is_empty() {
                return Ok(None);
            }
            if self.pending.len() == FRAME {
                return self.seal(false).map(Some);
            }
            let take = (FRAME - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            *input = &input[take..];
        }
    }

    /// The final frame (with the header, for a blob shorter than a frame).
    pub fn finish(&mut self) -> Result<&[u8], SealError> {
        if self.done {
            return Err(SealError::Finished);
        }
        self.done = true;
        self.seal(true)
    }

    fn seal(&mut self, last: bool) -> Result<&[u8], SealError> {
        self.out.clear();
        if let Some(h) = self.header.take() {
            self.out.extend_from_slice(&h);
        }
        let start = self.out.len();
        self.out.extend_from_slice(&self.pending);
        let tag = self.key.seal(self.index, last, &mut self.out[start..])?;
        self.out.extend_from_slice(&tag);
        self.pending.clear();
        self.index += 1;
        Ok(&self.out)
    }
}

/// A blocking writer that seals what it is given into `out` (server-side copies).
pub struct SealedWriter<W: Write> {
    out: W,
    sealer: Sealer,
}

impl<W: Write> SealedWriter<W> {
    pub fn new(out: W, sealer: Sealer) -> Self {
        Self { out, sealer }
    }

    /// Writes the final frame and flushes.
    pub fn finish(mut self) -> io::Result<W> {
        let last = self.sealer.finish()?;
        self.out.write_all(last)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealedWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while let Some(frame) = self.sealer.update(&mut rest)? {
            self.out.write_all(frame)?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Opens the frames of one sealed blob, given its header and plaintext size.
pub struct Unsealer {
    key: FrameKey,
    layout: Layout,
}

impl Unsealer {
    pub fn new(
        master: &EncryptionKey,
        blob: &str,
        size: u64,
        header: &[u8; HEADER],
    ) -> Result<Self, SealError> {
        if header[..MAGIC.len()] != MAGIC {
            report(blob, "a sealed blob's header is not there");
            return Err(SealError::BadHeader {
                blob: blob.to_owned(),
            });
        }
        Ok(Self {
            key: FrameKey::derive(master, &header[MAGIC.len()..], blob)?,
            layout: Layout::new(size),
        })
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Refuses a file whose length does not fit the blob's size.
    pub fn check_len(&self, found: u64) -> Result<(), SealError> {
        let expected = self.layout.sealed_len();
        if found == expected {
            return Ok(());
        }
        report(
            &self.key.blob,
            "a sealed blob's length does not fit its size",
        );
        Err(SealError::WrongLength {
            blob: self.key.blob.clone(),
            found,
            expected,
        })
    }

    /// Decrypts frame `i` in place: `buf` holds the frame as read from `layout().offset(i)`,
    /// ciphertext and tag. Returns its plaintext, the front of `buf`.
    pub fn open<'a>(&self, i: u64, buf: &'a mut [u8]) -> Result<&'a [u8], SealError> {
        let n = self.layout.plain_len(i);
        let ok = buf.len() == n + TAG && {
            let (data, tag) = buf.split_at_mut(n);
            self.key.open(i, i == self.layout.last(), data, tag)
        };
        if !ok {
            crate::metrics::sealed_frame_rejected();
            tracing::error!(
                blob = %self.key.blob,
                frame = i,
                "a sealed frame failed authentication (changed on disk, or sealed with another \
                 key): not served"
            );
            return Err(SealError::Tampered {
                blob: self.key.blob.clone(),
                frame: i,
            });
        }
        crate::metrics::sealed_frame_read();
        Ok(&buf[..n])
    }
}

fn report(blob: &str, what: &str) {
    crate::metrics::sealed_frame_rejected();
    tracing::error!(blob, "{what}: not served");
}

/// A blocking reader of a sealed blob's plaintext from an offset to its end (copies, pushes
/// upstream). Holds one frame.
pub struct SealedReader<R> {
    inner: R,
    unsealer: Unsealer,
    next: u64,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl<R: Read + Seek> SealedReader<R> {
    pub fn open(
        mut inner: R,
        master: &EncryptionKey,
        blob: &str,
        size: u64,
        offset: u64,
    ) -> io::Result<Self> {
        let found = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(0))?;
        let mut header = [0u8; HEADER];
        if found >= HEADER as u64 {
            inner.read_exact(&mut header)?;
        }
        let unsealer = Unsealer::new(master, blob, size, &header)?;
        unsealer.check_len(found)?;
        let layout = unsealer.layout();
        let first = layout.frame_of(offset);
        inner.seek(SeekFrom::Start(layout.offset(first)))?;
        let mut r = Self {
            inner,
            unsealer,
            next: first,
            buf: Vec::with_capacity(FRAME + TAG),
            pos: 0,
            end: 0,
        };
        let skip = offset.saturating_sub(first * FRAME as u64);
        if skip > 0 {
            r.fill()?;
            r.pos = r.end.min(usize::try_from(skip).unwrap_or(usize::MAX));
        }
        Ok(r)
    }

    /// Reads and opens the next frame; false past the last one.
    fn fill(&mut self) -> io::Result<bool> {
        let layout = self.unsealer.layout();
        if self.next > layout.last() {
            return Ok(false);
        }
        self.buf.resize(layout.plain_len(self.next) + TAG, 0);
        self.inner.read_exact(&mut self.buf)?;
        self.end = self.unsealer.open(self.next, &mut self.buf)?.len();
        self.pos = 0;
        self.next += 1;
        Ok(true)
    }
}

impl<R: Read + Seek> Read for SealedReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.end {
            if !self.fill()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// An async reader of `len` plaintext bytes from an offset of a sealed blob (GET), one frame
/// at a time: it reads only the frames the range touches.
pub struct SealedStream {
    file: tokio::fs::File,
    unsealer: Unsealer,
    next: u64,
    skip: usize,
    left: u64,
}

impl SealedStream {
    pub async fn open(
        mut file: tokio::fs::File,
        master: &EncryptionKey,
        blob: &str,
        size: u64,
        offset: u64,
        len: u64,
    ) -> io::Result<Self> {
        let found = file.metadata().await?.len();
        file.seek(SeekFrom::Start(0)).await?;
        let mut header = [0u8; HEADER];
        if found >= HEADER as u64 {
            file.read_exact(&mut header).await?;
        }
        let unsealer = Unsealer::new(master, blob, size, &header)?;
        unsealer.check_len(found)?;
        let layout = unsealer.layout();
        let first = layout.frame_of(offset);
        file.seek(SeekFrom::Start(layout.offset(first))).await?;
        Ok(Self {
            file,
            unsealer,
            next: first,
            skip: usize::try_from(offset.saturating_sub(first * FRAME as u64))
                .unwrap_or(usize::MAX),
            left: len,
        })
    }

    /// The range's bytes in the next frame; `None` once the range is done.
    pub async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.left == 0 {
            return Ok(None);
        }
        let layout = self.unsealer.layout();
        if self.next > layout.last() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "range beyond the sealed blob",
            ));
        }
        let mut buf = vec![0u8; layout.plain_len(self.next) + TAG];
        self.file.read_exact(&mut buf).await?;
        let plain = self.unsealer.open(self.next, &mut buf)?.len();
        self.next += 1;
        let start = std::mem::take(&mut self.skip).min(plain);
        let take = (plain - start).min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.left -= take as u64;
        buf.truncate(start + take);
        Ok(Some(Bytes::from(buf).slice(start..)))
    }
}

#[cfg(test)]
mod tests;
