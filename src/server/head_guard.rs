//! The S3 listener's guard on HTTP/1.1 request heads, below hyper: a head longer than
//! `limits.max_header_bytes`, or with `MAX_HEADER_COUNT` header lines or more, is answered
//! `400 RequestHeaderSectionTooLarge` in S3 XML and the connection closed, before hyper sees
//! the bytes that would make it answer a bare `431` or `414` of its own. A head whose framing
//! two parsers could read differently (Content-Length with Transfer-Encoding, which hyper
//! would quietly read as chunked; two different Content-Lengths, which hyper answers with a
//! bare 400) is `400 InvalidRequest`: a proxy in front may have framed it the other way.
//!
//! The guard reads for hyper and follows the request framing itself (`framing.rs`): heads are
//! held to the limits, bodies (Content-Length or chunked) are passed over, never scanned. The
//! bytes that break a limit are taken back from hyper's buffer before it parses them. The
//! refusal is written only while no request is in flight on the connection (hyper has handed
//! over every byte of its last answer); a pipelined head that breaks a limit while an answer
//! is still being written is left to hyper. An HTTP/2 connection (its preface) is passed
//! through untouched, and so is framing the guard does not follow (another transfer coding).
//! Every close is a lingering one (`poll_shutdown`), so an early answer is not lost to a reset.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::framing::{Framing, Verdict};
use super::listener::Activity;
use crate::error::{S3Error, S3ErrorCode};

/// The limits a head is held to.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_bytes: usize,
    pub max_headers: usize,
}

enum State {
    /// Following HTTP/1.1 requests.
    Watching(Framing),
    /// HTTP/2, or framing the guard does not follow: bytes pass through.
    Off,
    /// Writing the refusal, then end of stream for hyper.
    Refusing {
        out: Vec<u8>,
        written: usize,
    },
    /// The refusal is sent: what the client still sends is read and dropped for a moment, so
    /// that closing with unread bytes (a reset) does not destroy the answer in flight.
    Draining(Pin<Box<tokio::time::Sleep>>),
    Closed,
}

pub struct HeadGuard<I> {
    inner: I,
    activity: Arc<Activity>,
    limits: HeadLimits,
    state: State,
}

impl<I> HeadGuard<I> {
    pub fn new(inner: I, activity: Arc<Activity>, limits: HeadLimits) -> Self {
        Self {
            inner,
            activity,
            limits,
            state: State::Watching(Framing::default()),
        }
    }
}

fn refusal(code: S3ErrorCode, message: &str) -> Vec<u8> {
    let id = super::request_id();
    let xml = S3Error::with_message(code, message).to_xml("", &id);
    let mut out = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\nServer: Lifeboat\r\nx-amz-request-id: {id}\r\n\r\n",
        xml.len()
    )
    .into_bytes();
    out.extend_from_slice(xml.as_bytes());
    out
}

impl<I: AsyncRead + AsyncWrite + Unpin> HeadGuard<I> {
    /// Writes the refusal and shuts the write side; ready once done (or failed).
    fn poll_refuse(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match &mut self.state {
                State::Refusing { out, written } if *written < out.len() => {
                    match ready!(Pin::new(&mut self.inner).poll_write(cx, &out[*written..])) {
                        Ok(0) | Err(_) => self.state = State::Closed,
                        Ok(n) => *written += n,
                    }
                }
                State::Refusing { .. } => {
                    let _ = ready!(Pin::new(&mut self.inner).poll_flush(cx));
                    let _ = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
                    self.state = State::Draining(Box::pin(tokio::time::sleep(
                        crate::limits::REFUSAL_LINGER,
                    )));
                }
                State::Draining(deadline) if deadline.is_elapsed() => self.state = State::Closed,
                State::Draining(deadline) => {
                    let mut scratch = [0u8; 8192];
                    let mut rb = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                        Poll::Ready(Ok(())) if !rb.filled().is_empty() => {}
                        Poll::Ready(_) => self.state = State::Closed,
                        Poll::Pending => {
                            ready!(deadline.as_mut().poll(cx));
                            self.state = State::Closed;
                        }
                    }
                }
                _ => return Poll::Ready(()),
            }
        }
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncRead for HeadGuard<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.state {
            State::Off => return Pin::new(&mut this.inner).poll_read(cx, buf),
            State::Refusing { .. } | State::Draining(_) => {
                ready!(this.poll_refuse(cx));
                return Poll::Ready(Ok(()));
            }
            State::Closed => return Poll::Ready(Ok(())),
            State::Watching(_) => {}
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let State::Watching(framing) = &mut this.state else {
            return Poll::Ready(Ok(()));
        };
        let (code, message) = match framing.check(&buf.filled()[before..], this.limits) {
            Verdict::Pass => return Poll::Ready(Ok(())),
            Verdict::Http2 | Verdict::GiveUp => {
                this.state = State::Off;
                return Poll::Ready(Ok(()));
            }
            Verdict::TooLarge(m) => (S3ErrorCode::RequestHeaderSectionTooLarge, m),
            Verdict::Ambiguous(m) => (S3ErrorCode::InvalidRequest, m),
        };
        if !this.activity.idle() {
            // An answer is still on its way out: writing here could cut into it. hyper has
            // its own (bare) answer for this pipelined head.
            this.state = State::Off;
            return Poll::Ready(Ok(()));
        }
        // hyper never sees these bytes: it gets the end of the stream instead.
        buf.set_filled(before);
        tracing::debug!(message, "request head refused before parsing");
        crate::metrics::request("Unknown", 400, std::time::Duration::ZERO);
        this.state = State::Refusing {
            out: refusal(code, message),
            written: 0,
        };
        ready!(this.poll_refuse(cx));
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for HeadGuard<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.state {
            State::Watching(_) | State::Off => Pin::new(&mut this.inner).poll_write(cx, data),
            _ => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.state {
            State::Watching(_) | State::Off => {
                Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
            }
            _ => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    /// A lingering close: once hyper closes the connection, the write side is shut and what
    /// the client still sends is read and dropped for a moment (`REFUSAL_LINGER`, or until it
    /// closes). An answer sent before its request body was read (a refused upload) then
    /// reaches the client, or a proxy still sending that body, rather than being lost to the
    /// reset that closing with unread bytes causes.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.state {
            State::Watching(_) | State::Off => {
                let _ = ready!(Pin::new(&mut this.inner).poll_flush(cx));
                let _ = ready!(Pin::new(&mut this.inner).poll_shutdown(cx));
                this.state =
                    State::Draining(Box::pin(tokio::time::sleep(crate::limits::REFUSAL_LINGER)));
                ready!(this.poll_refuse(cx));
                Poll::Ready(Ok(()))
            }
            State::Draining(_) => {
                ready!(this.poll_refuse(cx));
                Poll::Ready(Ok(()))
            }
            _ => Poll::Ready(Ok(())),
        }
    }
}
