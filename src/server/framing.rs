//! HTTP/1.1 request framing, as the head guard follows it: where each head starts and ends,
//! and the body after it (Content-Length bytes, or chunks up to the last one and its
//! trailers), so that only head bytes are ever held to the head limits and a body is never
//! taken for the next head. Pure: bytes in, a verdict out; the guard does the I/O.

use super::head_guard::HeadLimits;

/// What the bytes just looked at mean for the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// An HTTP/2 preface: nothing to follow.
    Http2,
    /// Framing this parser does not follow (a transfer coding other than chunked, a bad
    /// Content-Length or chunk line): hyper decides, the guard stops looking.
    GiveUp,
    /// A head past the limits.
    TooLarge(&'static str),
    /// Framing a server and a proxy could read two ways (request smuggling).
    Ambiguous(&'static str),
}

/// Longest chunk-size line (`<hex>;chunk-signature=<64 hex>` is about 90 bytes).
const MAX_CHUNK_LINE: usize = 1024;
/// Enough of a header line for `content-length: <20 digits>` and `transfer-encoding: …`.
const LINE_PREFIX: usize = 64;

#[derive(Default)]
pub struct Framing {
    /// The connection's first bytes, until there are four (an HTTP/2 preface is "PRI ").
    first: Vec<u8>,
    phase: Phase,
}

enum Phase {
    Head(Head),
    Body {
        left: u64,
    },
    ChunkSize {
        line: Vec<u8>,
    },
    ChunkData {
        left: u64,
    },
    /// The CRLF after a chunk's data.
    ChunkEnd {
        left: u8,
    },
    /// Trailer lines after the last chunk, up to an empty one.
    Trailers {
        line_len: usize,
        bytes: usize,
    },
}

impl Default for Phase {
    fn default() -> Self {
        Phase::Head(Head::default())
    }
}

#[derive(Default)]
struct Head {
    bytes: usize,
    lines: usize,
    /// The last four bytes, for the blank line that ends a head.
    tail: [u8; 4],
    /// Something other than CR and LF has been seen (blank lines before a head are skipped).
    begun: bool,
    /// The start of the current line, lower-cased.
    line: Vec<u8>,
    content_length: Option<Vec<u8>>,
    /// The transfer codings named, in order.
    transfer_encoding: Option<Vec<u8>>,
}

enum HeadStep {
    More,
    Done,
    Refuse(Verdict),
}

impl Head {
    fn push(&mut self, b: u8, limits: HeadLimits) -> HeadStep {
        self.bytes += 1;
        self.tail = [self.tail[1], self.tail[2], self.tail[3], b];
        if b != b'\r' && b != b'\n' {
            self.begun = true;
        }
        if !self.begun {
            // Blank lines between requests do not count.
            self.bytes = 0;
            return HeadStep::More;
        }
        if b == b'\n' {
            self.lines += 1;
            if &self.tail == b"\r\n\r\n" || self.tail[2..] == *b"\n\n" {
                return HeadStep::Done;
            }
            if let Some(v) = self.framing_line() {
                return HeadStep::Refuse(v);
            }
        } else if self.line.len() < LINE_PREFIX {
            self.line.push(b.to_ascii_lowercase());
        }
        if self.bytes > limits.max_bytes {
            return HeadStep::Refuse(Verdict::TooLarge(
                "Your request header section exceeds the maximum allowed size.",
            ));
        }
        // The request line, then the headers.
        if self.lines > limits.max_headers + 1 {
            return HeadStep::Refuse(Verdict::TooLarge(
                "Your request has more header fields than allowed.",
            ));
        }
        HeadStep::More
    }

    /// Notes a framing header on the line just ended; a second Content-Length that disagrees
    /// with the first is refused.
    fn framing_line(&mut self) -> Option<Verdict> {
        let line = std::mem::take(&mut self.line);
        let colon = line.iter().position(|&c| c == b':')?;
        let (name, value) = line.split_at(colon);
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
            b"transfer-encoding" => {
                let codings = self.transfer_encoding.get_or_insert_with(Vec::new);
                if !codings.is_empty() {
                    codings.push(b',');
                }
                codings.extend_from_slice(value);
            }
            _ => {}
        }
        None
    }

    /// What follows the head.
    fn body(&self) -> Result<Phase, Verdict> {
        match (&self.content_length, &self.transfer_encoding) {
            (Some(_), Some(_)) => Err(Verdict::Ambiguous(
                "A request must not carry both Content-Length and Transfer-Encoding.",
            )),
            (None, Some(te)) => {
                let last = te.rsplit(|&c| c == b',').next().unwrap_or(b"").trim_ascii();
                if last == b"chunked" {
                    Ok(Phase::ChunkSize { line: Vec::new() })
                } else {
                    Err(Verdict::GiveUp)
                }
            }
            (Some(cl), None) => {
                let n = std::str::from_utf8(cl)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(Verdict::GiveUp)?;
                Ok(match n {
                    0 => Phase::default(),
                    left => Phase::Body { left },
                })
            }
            (None, None) => Ok(Phase::default()),
        }
    }
}

impl Framing {
    /// Follows `data`, the next bytes of the connection.
    pub fn check(&mut self, data: &[u8], limits: HeadLimits) -> Verdict {
        if self.first.len() < 4 {
            let take = (4 - self.first.len()).min(data.len());
            self.first.extend_from_slice(&data[..take]);
            if self.first.len() == 4 && self.first == b"PRI " {
                return Verdict::Http2;
            }
        }
        let mut i = 0;
        while i < data.len() {
            match &mut self.phase {
                Phase::Body { left } | Phase::ChunkData { left } => {
                    let n = (*left).min((data.len() - i) as u64);
                    *left -= n;
                    i += n as usize;
                    if *left == 0 {
                        self.phase = match self.phase {
                            Phase::ChunkData { .. } => Phase::ChunkEnd { left: 2 },
                            _ => Phase::default(),
                        };
                    }
                    continue;
                }
                Phase::Head(head) => match head.push(data[i], limits) {
                    HeadStep::More => {}
                    HeadStep::Refuse(v) => return v,
                    HeadStep::Done => match head.body() {
                        Ok(next) => self.phase = next,
                        Err(v) => return v,
                    },
                },
                Phase::ChunkSize { line } => {
                    let b = data[i];
                    if b == b'\n' {
                        let text = std::str::from_utf8(line).unwrap_or("");
                        let size = text.split(';').next().unwrap_or("").trim();
                        let Ok(size) = u64::from_str_radix(size, 16) else {
                            return Verdict::GiveUp;
                        };
                        self.phase = match size {
                            0 => Phase::Trailers {
                                line_len: 0,
                                bytes: 0,
                            },
                            left => Phase::ChunkData { left },
                        };
                    } else if b != b'\r' {
                        if line.len() >= MAX_CHUNK_LINE {
                            return Verdict::GiveUp;
                        }
                        line.push(b);
                    }
                }
                Phase::ChunkEnd { left } => {
                    *left -= 1;
                    if *left == 0 {
                        self.phase = Phase::ChunkSize { line: Vec::new() };
                    }
                }
                Phase::Trailers { line_len, bytes } => {
                    let b = data[i];
                    *bytes += 1;
                    if *bytes > limits.max_bytes {
                        return Verdict::GiveUp;
                    }
                    match b {
                        b'\n' if *line_len == 0 => self.phase = Phase::default(),
                        b'\n' => *line_len = 0,
                        b'\r' => {}
                        _ => *line_len += 1,
                    }
                }
            }
            i += 1;
        }
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HeadLimits = HeadLimits {
        max_bytes: 64,
        max_headers: 3,
    };

    fn feed(f: &mut Framing, chunks: &[&[u8]]) -> Vec<Verdict> {
        chunks.iter().map(|c| f.check(c, LIMITS)).collect()
    }

    #[test]
    fn a_content_length_body_is_skipped_and_the_next_head_is_checked() {
        let mut f = Framing::default();
        let body = [b'x'; 500];
        let verdicts = feed(
            &mut f,
            &[
                b"PUT /b/k HTTP/1.1\r\nContent-Length: 500\r\n\r\n",
                &body,
                b"GET / HTTP/1.1\r\n\r\n",
            ],
        );
        assert_eq!(verdicts, vec![Verdict::Pass, Verdict::Pass, Verdict::Pass]);
        // A body with a thousand lines and a content-length line of its own is still a body.
        let mut f = Framing::default();
        let text = "content-length: 9\r\n".repeat(100);
        let head = format!(
            "PUT /b/k HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        assert_eq!(
            feed(&mut f, &[head.as_bytes(), text.as_bytes()]),
            vec![Verdict::Pass, Verdict::Pass]
        );
        let long = [b'y'; 100];
        assert!(matches!(
            feed(&mut f, &[b"GET /", &long])[1],
            Verdict::TooLarge(_)
        ));
    }

    #[test]
    fn a_head_split_across_reads_is_counted_whole() {
        let mut f = Framing::default();
        let verdicts = feed(
            &mut f,
            &[b"GET / HTTP/1.1\r\nA: 1\r", b"\nB: 2\r\n\r", b"\n"],
        );
        assert!(verdicts.iter().all(|v| *v == Verdict::Pass));
        let mut f = Framing::default();
        assert!(matches!(
            f.check(b"GET / HTTP/1.1\r\na:1\r\nb:2\r\nc:3\r\nd:4\r\n", LIMITS),
            Verdict::TooLarge(_)
        ));
    }

    #[test]
    fn chunked_bodies_and_trailers_are_followed_to_their_end() {
        let mut f = Framing::default();
        let req: &[u8] = b"PUT /b/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;chunk-signature=abc\r\nhello\r\n0\r\nx-amz-checksum-crc32: AAAA\r\n\r\n\
            GET / HTTP/1.1\r\n\r\n";
        // One byte at a time, so every state change sits on a read boundary.
        for b in req {
            assert_eq!(f.check(&[*b], LIMITS), Verdict::Pass);
        }
        assert!(matches!(f.phase, Phase::Head(_)));
        let mut f = Framing::default();
        assert_eq!(
            f.check(b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", LIMITS),
            Verdict::GiveUp
        );
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let limits = HeadLimits {
            max_bytes: 4096,
            max_headers: 10,
        };
        let both = b"POST /b HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(
            Framing::default().check(both, limits),
            Verdict::Ambiguous(_)
        ));
        let two = b"PUT /b HTTP/1.1\r\ncontent-length: 5\r\nCONTENT-LENGTH: 6\r\n\r\n";
        assert!(matches!(
            Framing::default().check(two, limits),
            Verdict::Ambiguous(_)
        ));
        let same = b"PUT /b HTTP/1.1\r\ncontent-length: 5\r\nContent-Length:5\r\n\r\nhello";
        assert_eq!(Framing::default().check(same, limits), Verdict::Pass);
    }

    #[test]
    fn http2_is_recognised_however_its_preface_is_split() {
        let mut f = Framing::default();
        assert_eq!(
            feed(&mut f, &[b"PR", b"I * HTTP/2.0"]),
            vec![Verdict::Pass, Verdict::Http2]
        );
        let mut f = Framing::default();
        assert_eq!(
            f.check(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", LIMITS),
            Verdict::Http2
        );
    }
}
