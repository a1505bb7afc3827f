//! PUT bodies: one buffer of incompressible bytes, generated once, sent again and again as
//! clones of the same `Bytes` (a reference count, never a copy), so a body of any size, 5 GiB
//! included, costs the benchmark one chunk of memory.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};

/// The largest chunk a body is sent in: bigger bodies repeat it.
const CHUNK: u64 = 1 << 20;

/// What one PUT sends: `len` bytes, `chunk` repeated (the last one cut short).
#[derive(Clone)]
pub(super) struct Payload {
    chunk: Bytes,
    len: u64,
}

impl Payload {
    pub(super) fn new(len: u64) -> Self {
        let mut buf = vec![0u8; len.min(CHUNK) as usize];
        // xorshift64: cheap, and incompressible enough that no layer can shrink the body.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = (x >> 24) as u8;
        }
        Self {
            chunk: Bytes::from(buf),
            len,
        }
    }

    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// The whole body's hex SHA-256 (hashed chunk by chunk: nothing is built in memory).
    pub(super) fn sha256_hex(&self) -> String {
        let mut h = Sha256::new();
        let mut left = self.len;
        while left > 0 {
            let n = left.min(self.chunk.len() as u64);
            h.update(&self.chunk[..n as usize]);
            left -= n;
        }
        hex::encode(h.finalize())
    }

    pub(super) fn body(&self) -> BenchBody {
        BenchBody::Repeat {
            chunk: self.chunk.clone(),
            remaining: self.len,
        }
    }
}

/// A request body: nothing, or a `Payload` being sent.
pub(super) enum BenchBody {
    Empty,
    Repeat { chunk: Bytes, remaining: u64 },
}

impl Body for BenchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut *self {
            BenchBody::Empty => Poll::Ready(None),
            BenchBody::Repeat { remaining: 0, .. } => Poll::Ready(None),
            BenchBody::Repeat { chunk, remaining } => {
                let n = (*remaining).min(chunk.len() as u64);
                *remaining -= n;
                Poll::Ready(Some(Ok(Frame::data(chunk.slice(..n as usize)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(
            self,
            BenchBody::Empty | BenchBody::Repeat { remaining: 0, .. }
        )
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            BenchBody::Empty => SizeHint::with_exact(0),
            BenchBody::Repeat { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn collect(body: BenchBody) -> Vec<u8> {
        body.collect()
            .await
            .map(|c| c.to_bytes().to_vec())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_body_is_the_chunk_repeated_to_its_length() {
        let p = Payload::new(CHUNK * 2 + 5);
        let bytes = collect(p.body()).await;
        assert_eq!(bytes.len() as u64, CHUNK * 2 + 5);
        assert_eq!(bytes[..5], bytes[CHUNK as usize..CHUNK as usize + 5]);
        assert_eq!(hex::encode(Sha256::digest(&bytes)), p.sha256_hex());
        assert!(collect(Payload::new(0).body()).await.is_empty());
        assert_eq!(
            crate::auth::sigv4::EMPTY_SHA256,
            Payload::new(0).sha256_hex()
        );
    }
}
