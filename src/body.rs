//! Request and response bodies.
//!
//! `RequestBody` reads a client body frame by frame, decoding aws-chunked and checking the signed
//! payload hash as it goes; nothing is held whole. `ResponseBody` is either a small in-memory body
//! (XML) or a bounded channel fed by a task that reads a blob from disk.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::auth::PayloadMode;
use crate::auth::chunked::{ChunkDecoder, ChunkError};
use crate::error::{S3Error, S3ErrorCode};
use crate::limits::{CHANNEL_DEPTH, READ_CHUNK};
use crate::store::{ReadGuard, Segment, Store};

/// A client's request body, decoded and checked as it streams.
pub struct RequestBody {
    incoming: Incoming,
    decoder: Option<ChunkDecoder>,
    pending: VecDeque<Bytes>,
    sha256: Option<(Sha256, [u8; 32])>,
    ended: bool,
    idle: std::time::Duration,
    /// Body bytes read off the connection (before aws-chunked decoding).
    received: u64,
}

fn chunk_error(e: ChunkError) -> S3Error {
    match e {
        ChunkError::SignatureMismatch => S3Error::new(S3ErrorCode::SignatureDoesNotMatch),
        ChunkError::Truncated => S3Error::new(S3ErrorCode::IncompleteBody),
        ChunkError::Malformed(why) => S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            format!("Malformed aws-chunked body: {why}"),
        ),
    }
}

impl RequestBody {
    /// `idle` bounds the pause between two pieces of body: a client that stops sending
    /// mid-upload is answered `RequestTimeout` instead of holding a temp file forever.
    pub fn new(incoming: Incoming, payload: &PayloadMode, idle: std::time::Duration) -> Self {
        let (decoder, sha256) = match payload {
            PayloadMode::Sha256(h) => (None, Some((Sha256::new(), *h))),
            PayloadMode::Unsigned => (None, None),
            PayloadMode::Chunked {
                signer,
                signed_trailer,
            } => (
                Some(ChunkDecoder::new(signer.clone(), *signed_trailer)),
                None,
            ),
        };
        Self {
            incoming,
            decoder,
            pending: VecDeque::new(),
            sha256,
            ended: false,
            idle,
            received: 0,
        }
    }

    /// Body bytes read off the connection so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next piece of decoded body, or `None` once the body has ended and checked out.
    pub async fn next(&mut self) -> Result<Option<Bytes>, S3Error> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Ok(Some(b));
            }
            if self.ended {
                return Ok(None);
            }
            let frame = tokio::time::timeout(self.idle, self.incoming.frame())
                .await
                .map_err(|_| S3Error::new(S3ErrorCode::RequestTimeout))?;
            match frame {
                None => {
                    self.ended = true;
                    self.finish()?;
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "request body failed");
                    return Err(S3Error::new(S3ErrorCode::IncompleteBody));
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // HTTP trailers: not used by S3 clients
                    };
                    crate::metrics::received(data.len());
                    self.received += data.len() as u64;
                    if let Some((h, _)) = &mut self.sha256 {
                        h.update(&data);
                    }
                    match &mut self.decoder {
                        Some(d) => {
                            let mut out = Vec::new();
                            d.push(data, &mut out).map_err(chunk_error)?;
                            self.pending
                                .extend(out.into_iter().filter(|b| !b.is_empty()));
                        }
                        None if data.is_empty() => {}
                        None => return Ok(Some(data)),
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> Result<(), S3Error> {
        if let Some(d) = &mut self.decoder {
            d.finish().map_err(chunk_error)?;
        }
        if let Some((h, expected)) = self.sha256.take() {
            let got: [u8; 32] = h.finalize().into();
            if got != expected {
                return Err(S3Error::new(S3ErrorCode::XAmzContentSHA256Mismatch)
                    .extra("ClientComputedContentSHA256", hex::encode(expected))
                    .extra("S3ComputedContentSHA256", hex::encode(got)));
            }
        }
        Ok(())
    }

    /// Trailing headers of an aws-chunked body (valid once `next` returned `None`).
    pub fn trailers(&self) -> &[(String, String)] {
        self.decoder.as_ref().map_or(&[], |d| d.trailers())
    }

    /// Reads a small body (an XML document) whole, refusing more than `limit` bytes.
    pub async fn read_small(&mut self, limit: usize) -> Result<Vec<u8>, S3Error> {
        let mut out = Vec::new();
        while let Some(b) = self.next().await? {
            if out.len() + b.len() > limit {
                return Err(S3Error::new(S3ErrorCode::MaxMessageLengthExceeded));
            }
            out.extend_from_slice(&b);
        }
        Ok(out)
    }
}

/// A response body.
pub enum ResponseBody {
    Empty,
    Full(Option<Bytes>),
    /// Fed by a task through a bounded channel; `remaining` is the exact length still to come
    /// (`None` when the length is not known, e.g. an upstream answer without Content-Length).
    Stream {
        rx: mpsc::Receiver<std::io::Result<Bytes>>,
        remaining: Option<u64>,
    },
}

impl ResponseBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        ResponseBody::Full(Some(b.into()))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ResponseBody::Empty => Poll::Ready(None),
            ResponseBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Stream { rx, remaining } => match rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(b))) => {
                    if let Some(r) = remaining {
                        *r = r.saturating_sub(b.len() as u64);
                    }
                    Poll::Ready(Some(Ok(Frame::data(b))))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    if remaining.is_some_and(|r| r > 0) {
                        Poll::Ready(Some(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "blob ended early",
                        ))))
                    } else {
                        Poll::Ready(None)
                    }
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Empty => true,
            ResponseBody::Full(b) => b.is_none(),
            ResponseBody::Stream { remaining, .. } => *remaining == Some(0),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Empty => SizeHint::with_exact(0),
            ResponseBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ResponseBody::Stream { remaining, .. } => match remaining {
                Some(r) => SizeHint::with_exact(*r),
                None => SizeHint::default(),
            },
        }
    }
}

/// Streams `len` bytes from `offset` of an object made of `segments` through a bounded channel.
/// `first` is the already-open file of the first segment; `guard` keeps every segment's blob on
/// disk until the stream ends, even if the object is overwritten or deleted meanwhile. Sealed
/// segments are decrypted frame by frame (`Store::open_segment`); a frame that fails its check
/// ends the stream with an error, so the client never gets its bytes.
pub fn stream_object(
    store: Store,
    segments: Vec<Segment>,
    first: tokio::fs::File,
    guard: ReadGuard,
    offset: u64,
    len: u64,
) -> ResponseBody {
    use tracing::Instrument;
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let task = async move {
        // The blobs stay on disk until this stream is done, even if the object is replaced.
        let _guard = guard;
        let mut first = Some(first);
        let mut skip = offset;
        let mut left = len;
        for (i, seg) in segments.iter().enumerate() {
            if left == 0 {
                break;
            }
            let file = if i == 0 { first.take() } else { None };
            if skip >= seg.size {
                skip -= seg.size;
                continue;
            }
            let take = left.min(seg.size - skip);
            if !send_range(&store, seg, file, skip, take, &tx).await {
                return;
            }
            left -= take;
            skip = 0;
        }
    };
    // In the request's span, so that a failed frame is logged with its bucket and key.
    tokio::spawn(task.instrument(tracing::Span::current()));
    ResponseBody::Stream {
        rx,
        remaining: Some(len),
    }
}

/// Sends `len` bytes of one segment from `offset`; false when the stream should stop.
async fn send_range(
    store: &Store,
    seg: &Segment,
    file: Option<tokio::fs::File>,
    offset: u64,
    len: u64,
    tx: &mpsc::Sender<std::io::Result<Bytes>>,
) -> bool {
    let mut reader = match store.open_segment(seg, file, offset, len).await {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return false;
        }
    };
    loop {
        match reader.next_chunk().await {
            Ok(None) => return true,
            Ok(Some(chunk)) => {
                if tx.send(Ok(chunk)).await.is_err() {
                    return false; // the client went away
                }
            }
            Err(e) => {
                tracing::error!(error = %e, blob = %seg.blob, "reading an object's blob failed");
                let _ = tx.send(Err(e)).await;
                return false;
            }
        }
    }
}

/// Streams the first `len` bytes of a blocking reader through a bounded channel, reading on the
/// blocking pool (for upstream request bodies: a blob, decrypted if sealed; each retry opens it
/// again).
pub fn stream_reader(mut file: impl std::io::Read + Send + 'static, len: u64) -> ResponseBody {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut left = len;
        while left > 0 {
            let want = left.min(READ_CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            match file.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "blob shorter than its metadata",
                    )));
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    ResponseBody::Stream {
        rx,
        remaining: Some(len),
    }
}

/// Runs once when a response body is done (sent in full, or dropped with its connection),
/// with the body bytes sent: the access log line, the connection's in-flight count.
pub type OnEnd = Box<dyn FnOnce(u64) + Send>;

/// A client response body that counts the bytes it sends (`lifeboat_sent_bytes_total`) and
/// runs its end hooks when it is done.
pub struct CountedBody {
    body: ResponseBody,
    sent: u64,
    on_end: Vec<OnEnd>,
}

impl CountedBody {
    pub fn new(body: ResponseBody) -> Self {
        Self {
            body,
            sent: 0,
            on_end: Vec::new(),
        }
    }

    /// The response with its body counted.
    pub fn wrap(r: http::Response<ResponseBody>) -> http::Response<CountedBody> {
        r.map(CountedBody::new)
    }

    /// Adds a hook run once the body is done, with the bytes sent.
    pub fn on_end(&mut self, hook: OnEnd) {
        self.on_end.push(hook);
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        for hook in self.on_end.drain(..) {
            hook(self.sent);
        }
    }
}

impl Body for CountedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            crate::metrics::sent(data.len());
            this.sent += data.len() as u64;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
