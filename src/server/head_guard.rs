//! The S3 listener's guard on HTTP/1.1 request heads, below hyper: a head longer than
//! `limits.max_header_bytes`, or with more than `MAX_HEADER_COUNT` header lines, is answered
//! `400 RequestHeaderSectionTooLarge` in S3 XML and the connection closed, before hyper sees
//! the bytes that would make it answer a bare `431` or `414` of its own. A head whose framing
//! two parsers could read differently (Content-Length with Transfer-Encoding, which hyper
//! would quietly read as chunked; two different Content-Lengths, which hyper answers with a
//! bare 400) is `400 InvalidRequest`: a proxy in front may have framed it the other way.
//!
//! The guard reads for hyper and looks only at head bytes: those read while no request is in
//! flight on the connection, up to the blank line that ends the head (a body is never
//! scanned). The bytes that break a limit are taken back from hyper's buffer before it parses
//! them. An HTTP/2 connection (its preface) is passed through untouched.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::listener::Activity;
use crate::error::{S3Error, S3ErrorCode};

/// The limits a head is held to.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_bytes: usize,
    pub max_headers: usize,
}

enum State {
    /// Scanning the heads of HTTP/1.1 requests.
    Watching(Scan),
    /// HTTP/2, or given up: bytes pass through.
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

#[derive(Default)]
struct Scan {
    /// Requests ended on the connection when this head began.
    epoch: u64,
    started: bool,
    bytes: usize,
    lines: usize,
    /// The last four bytes, for the blank line that ends a head.
    tail: [u8; 4],
    /// Something other than CR and LF has been seen (leading blank lines are skipped).
    begun: bool,
    done: bool,
    /// The start of the current line, lower-cased, for the framing headers.
    line: Vec<u8>,
    content_length: Option<Vec<u8>>,
    transfer_encoding: bool,
}

/// Enough of a line for `content-length: <20 digits>`.
const LINE_PREFIX: usize = 48;

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
            state: State::Watching(Scan::default()),
        }
    }
}

enum Verdict {
    Pass,
    Http2,
    TooLarge(&'static str),
    /// Framing a server and a proxy could read two ways (request smuggling).
    Ambiguous(&'static str),
}

impl Scan {
    /// Looks at bytes about to be handed to hyper.
    fn check(&mut self, data: &[u8], idle: bool, epoch: u64, limits: HeadLimits) -> Verdict {
        if !self.started && !data.is_empty() {
            self.started = true;
            if data.starts_with(b"PRI ") {
                return Verdict::Http2;
            }
        }
        if idle && epoch != self.epoch {
            // A new head begins after the last request ended.
            *self = Scan {
                epoch,
                started: true,
                ..Scan::default()
            };
        }
        if !idle || self.done {
            return Verdict::Pass;
        }
        for &b in data {
            self.bytes += 1;
            self.tail = [self.tail[1], self.tail[2], self.tail[3], b];
            if b != b'\r' && b != b'\n' {
                self.begun = true;
            }
            if b == b'\n' && self.begun {
                self.lines += 1;
                if &self.tail == b"\r\n\r\n" || self.tail[2..] == *b"\n\n" {
                    self.done = true;
                    if self.transfer_encoding && self.content_length.is_some() {
                        return Verdict::Ambiguous(
                            "A request must not carry both Content-Length and Transfer-Encoding.",
                        );
                    }
                    return Verdict::Pass;
                }
                if let Some(v) = self.framing_line() {
                    return v;
                }
                self.line.clear();
            } else if self.begun && self.line.len() < LINE_PREFIX {
                self.line.push(b.to_ascii_lowercase());
            }
            if self.bytes > limits.max_bytes {
                return Verdict::TooLarge(
                    "Your request header section exceeds the maximum allowed size.",
                );
            }
            // The request line, then the headers.
            if self.lines > limits.max_headers + 1 {
                return Verdict::TooLarge("Your request has more header fields than allowed.");
            }
        }
        Verdict::Pass
    }

    /// Notes a framing header on the line just ended; a second Content-Length that disagrees
    /// with the first is refused.
    fn framing_line(&mut self) -> Option<Verdict> {
        let line = std::mem::take(&mut self.line);
        let (name, value) = line.split_at(line.iter().position(|&c| c == b':')?);
        let value = value[1..].trim_ascii();
        match name.trim_ascii() {
            b"content-length" => match &self.content_length {
                Some(first) if first.as_slice() != value => {
                    return Some(Verdict::Ambiguous(
                        "A request must not carry two different Content-Length values.",
                    ));
                }
                _ => self.content_length = Some(value.to_vec()),
            },
            b"transfer-encoding" => self.transfer_encoding = true,
            _ => {}
        }
        None
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
        let idle = this.activity.idle();
        let epoch = this.activity.ended();
        let State::Watching(scan) = &mut this.state else {
            return Poll::Ready(Ok(()));
        };
        let (code, message) = match scan.check(&buf.filled()[before..], idle, epoch, this.limits) {
            Verdict::Pass => return Poll::Ready(Ok(())),
            Verdict::Http2 => {
                this.state = State::Off;
                return Poll::Ready(Ok(()));
            }
            Verdict::TooLarge(m) => (S3ErrorCode::RequestHeaderSectionTooLarge, m),
            Verdict::Ambiguous(m) => (S3ErrorCode::InvalidRequest, m),
        };
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

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.state {
            State::Watching(_) | State::Off => Pin::new(&mut this.inner).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_bytes: 64,
        max_headers: 3,
    };

    fn feed(scan: &mut Scan, chunks: &[&[u8]]) -> Vec<bool> {
        chunks
            .iter()
            .map(|c| matches!(scan.check(c, true, 0, LIMITS), Verdict::Pass))
            .collect()
    }

    #[test]
    fn a_head_within_the_limits_passes_and_its_body_is_not_scanned() {
        let mut scan = Scan::default();
        let head = b"PUT /b/k HTTP/1.1\r\nHost: x\r\n\r\n";
        let body = [b'a'; 500];
        assert_eq!(feed(&mut scan, &[head, &body]), vec![true, true]);
        assert!(scan.done);
    }

    #[test]
    fn a_head_split_across_reads_is_counted_whole() {
        let mut scan = Scan::default();
        let passes = feed(
            &mut scan,
            &[
                b"GET / HTTP/1.1\r\nA: 1\r",
                b"\nB: 2\r\n\r",
                b"\n",
                &[b'z'; 200],
            ],
        );
        assert_eq!(passes, vec![true, true, true, true]);
    }

    #[test]
    fn too_many_bytes_or_lines_are_refused() {
        let mut scan = Scan::default();
        let long = [b'x'; 100];
        assert_eq!(feed(&mut scan, &[b"GET /", &long]), vec![true, false]);
        let mut scan = Scan::default();
        let many = b"GET / HTTP/1.1\r\na:1\r\nb:2\r\nc:3\r\nd:4\r\n";
        assert_eq!(feed(&mut scan, &[many]), vec![false]);
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let both = b"POST /b HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            Scan::default().check(
                both,
                true,
                0,
                HeadLimits {
                    max_bytes: 4096,
                    max_headers: 10
                }
            ),
            Verdict::Ambiguous(_)
        ));
        let two = b"PUT /b HTTP/1.1\r\ncontent-length: 5\r\nCONTENT-LENGTH: 6\r\n\r\n";
        assert!(matches!(
            Scan::default().check(
                two,
                true,
                0,
                HeadLimits {
                    max_bytes: 4096,
                    max_headers: 10
                }
            ),
            Verdict::Ambiguous(_)
        ));
        let same = b"PUT /b HTTP/1.1\r\ncontent-length: 5\r\nContent-Length:5\r\n\r\n";
        assert!(matches!(
            Scan::default().check(
                same,
                true,
                0,
                HeadLimits {
                    max_bytes: 4096,
                    max_headers: 10
                }
            ),
            Verdict::Pass
        ));
    }

    #[test]
    fn http2_is_left_alone_and_a_new_head_is_scanned_after_a_request_ends() {
        let mut scan = Scan::default();
        assert!(matches!(
            scan.check(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", true, 0, LIMITS),
            Verdict::Http2
        ));
        let mut scan = Scan::default();
        assert_eq!(feed(&mut scan, &[b"GET / HTTP/1.1\r\n\r\n"]), vec![true]);
        // While a request is in flight nothing is scanned.
        assert!(matches!(
            scan.check(&[b'x'; 100], false, 0, LIMITS),
            Verdict::Pass
        ));
        // The next head, after that request ended, is held to the limits again.
        assert!(matches!(
            scan.check(&[b'x'; 100], true, 1, LIMITS),
            Verdict::TooLarge(_)
        ));
    }
}
