//! The aws-chunked body decoder, with per-chunk signature and trailer checks.
//!
//! Implements `sigv4-streaming.html` (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), and
//! `sigv4-streaming-trailers.html` (…-PAYLOAD-TRAILER and STREAMING-UNSIGNED-PAYLOAD-TRAILER).
//! The decoder is a push state machine: it is fed the raw body frames as they arrive and hands back
//! slices of them as decoded data, so nothing but a chunk header line is ever buffered.

use bytes::{Buf, Bytes, BytesMut};
use sha2::{Digest, Sha256};

use super::sigv4::{self, SigningKey};
use crate::limits::{MAX_CHUNK_LINE as MAX_LINE, MAX_CHUNK_TRAILER as MAX_TRAILER};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("malformed aws-chunked body: {0}")]
    Malformed(&'static str),
    #[error("chunk signature does not match")]
    SignatureMismatch,
    #[error("body ended before the final chunk")]
    Truncated,
}

/// What signs the chunks: the seed signature of the request and the key that signed it.
#[derive(Debug, Clone)]
pub struct ChunkSigner {
    pub key: SigningKey,
    pub amz_date: String,
    pub scope: String,
    pub previous: String,
}

#[derive(Debug)]
enum State {
    /// Reading a `size[;chunk-signature=…]` line.
    Header,
    /// Passing `remaining` data bytes through.
    Data {
        remaining: u64,
    },
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the zero-size chunk: trailer lines until an empty line.
    Trailer,
    Done,
}

pub struct ChunkDecoder {
    state: State,
    line: BytesMut,
    signer: Option<ChunkSigner>,
    expect_trailer_signature: bool,
    chunk_signature: Option<String>,
    chunk_hash: Option<Sha256>,
    trailers: Vec<(String, String)>,
    trailer_bytes: usize,
    trailer_signature: Option<String>,
    decoded: u64,
}

impl ChunkDecoder {
    /// `signer` is set for the signed modes; `signed_trailer` for …-PAYLOAD-TRAILER.
    pub fn new(signer: Option<ChunkSigner>, signed_trailer: bool) -> Self {
        Self {
            state: State::Header,
            line: BytesMut::new(),
            expect_trailer_signature: signed_trailer && signer.is_some(),
            signer,
            chunk_signature: None,
            chunk_hash: None,
            trailers: Vec::new(),
            trailer_bytes: 0,
            trailer_signature: None,
            decoded: 0,
        }
    }

    /// Decoded bytes so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The trailing headers, once the body has ended (`x-amz-checksum-*`).
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    /// Feeds one frame; decoded data is appended to `out` as slices of `input`.
    pub fn push(&mut self, mut input: Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkError> {
        while input.has_remaining() {
            match self.state {
                State::Header => {
                    if let Some(line) = self.take_line(&mut input)? {
                        self.start_chunk(&line)?;
                    }
                }
                State::Data { remaining } => {
                    let n = remaining.min(input.len() as u64) as usize;
                    let data = input.split_to(n);
                    if let Some(h) = &mut self.chunk_hash {
                        h.update(&data);
                    }
                    self.decoded += n as u64;
                    out.push(data);
                    let remaining = remaining - n as u64;
                    self.state = if remaining == 0 {
                        State::DataEnd
                    } else {
                        State::Data { remaining }
                    };
                }
                State::DataEnd => {
                    if let Some(line) = self.take_line(&mut input)? {
                        if !line.is_empty() {
                            return Err(ChunkError::Malformed("chunk data not followed by CRLF"));
                        }
                        self.verify_chunk()?;
                        self.state = State::Header;
                    }
                }
                State::Trailer => {
                    if let Some(line) = self.take_line(&mut input)? {
                        self.trailer_line(&line)?;
                    }
                }
                State::Done => {
                    // Some clients add a stray CRLF at the very end; anything else (or more
                    // than a few) is an error.
                    self.trailer_bytes += input.len();
                    if self.trailer_bytes <= MAX_TRAILER
                        && input.iter().all(|b| *b == b'\r' || *b == b'\n')
                    {
                        input.clear();
                    } else {
                        return Err(ChunkError::Malformed("data after the final chunk"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Called at the end of the body.
    pub fn finish(&mut self) -> Result<(), ChunkError> {
        match self.state {
            State::Done => Ok(()),
            // Tolerate a missing final empty line after the last trailer or zero chunk.
            State::Trailer if self.line.is_empty() => self.end_trailers(),
            _ => Err(ChunkError::Truncated),
        }
    }

    fn take_line(&mut self, input: &mut Bytes) -> Result<Option<String>, ChunkError> {
        match input.iter().position(|b| *b == b'\n') {
            Some(pos) => {
                self.line.extend_from_slice(&input[..pos]);
                input.advance(pos + 1);
                if self.line.len() > MAX_LINE {
                    return Err(ChunkError::Malformed("line too long"));
                }
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.truncate(line.len() - 1);
                }
                String::from_utf8(line.to_vec())
                    .map(Some)
                    .map_err(|_| ChunkError::Malformed("line is not UTF-8"))
            }
            None => {
                self.line.extend_from_slice(input);
                input.clear();
                if self.line.len() > MAX_LINE {
                    return Err(ChunkError::Malformed("line too long"));
                }
                Ok(None)
            }
        }
    }

    fn start_chunk(&mut self, line: &str) -> Result<(), ChunkError> {
        let mut parts = line.split(';');
        let size_hex = parts.next().unwrap_or("").trim();
        if size_hex.is_empty() || size_hex.len() > 16 {
            return Err(ChunkError::Malformed("bad chunk size"));
        }
        let size = u64::from_str_radix(size_hex, 16)
            .map_err(|_| ChunkError::Malformed("bad chunk size"))?;
        let mut signature = None;
        for ext in parts {
            if let Some(sig) = ext.trim().strip_prefix("chunk-signature=") {
                signature = Some(sig.to_owned());
            }
        }
        if self.signer.is_some() {
            self.chunk_signature =
                Some(signature.ok_or(ChunkError::Malformed("missing chunk-signature"))?);
            self.chunk_hash = Some(Sha256::new());
        }
        if size == 0 {
            self.verify_chunk()?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// Checks the signature of the chunk that just ended (signed modes only).
    fn verify_chunk(&mut self) -> Result<(), ChunkError> {
        let (Some(signer), Some(claimed), Some(hash)) = (
            self.signer.as_mut(),
            self.chunk_signature.take(),
            self.chunk_hash.take(),
        ) else {
            return Ok(());
        };
        let sts = sigv4::chunk_string_to_sign(
            &signer.amz_date,
            &signer.scope,
            &signer.previous,
            &hex::encode(hash.finalize()),
        );
        let expected = signer.key.sign(&sts);
        if !sigv4::signatures_equal(&expected, &claimed) {
            return Err(ChunkError::SignatureMismatch);
        }
        signer.previous = expected;
        Ok(())
    }

    fn trailer_line(&mut self, line: &str) -> Result<(), ChunkError> {
        if line.is_empty() {
            return self.end_trailers();
        }
        self.trailer_bytes += line.len();
        if self.trailer_bytes > MAX_TRAILER {
            return Err(ChunkError::Malformed("trailer too long"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(ChunkError::Malformed("trailer line without ':'"))?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim().to_owned();
        if name == "x-amz-trailer-signature" {
            self.trailer_signature = Some(value);
        } else {
            self.trailers.push((name, value));
        }
        Ok(())
    }

    fn end_trailers(&mut self) -> Result<(), ChunkError> {
        if self.expect_trailer_signature
            && let Some(signer) = &self.signer
        {
            let claimed = self
                .trailer_signature
                .take()
                .ok_or(ChunkError::Malformed("missing x-amz-trailer-signature"))?;
            let mut canonical = String::new();
            for (name, value) in &self.trailers {
                canonical.push_str(name);
                canonical.push(':');
                canonical.push_str(value);
                canonical.push('\n');
            }
            let sts = sigv4::trailer_string_to_sign(
                &signer.amz_date,
                &signer.scope,
                &signer.previous,
                &sigv4::sha256_hex(canonical.as_bytes()),
            );
            if !sigv4::signatures_equal(&signer.key.sign(&sts), &claimed) {
                return Err(ChunkError::SignatureMismatch);
            }
        }
        self.state = State::Done;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn example_signer() -> ChunkSigner {
        let date = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_369_353_600);
        ChunkSigner {
            key: SigningKey::derive(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                date,
                "us-east-1",
                "s3",
            ),
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            previous: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
        }
    }

    /// The body of the AWS documentation's example (sigv4-streaming.html), byte for byte.
    fn example_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n");
        body
    }

    fn decode(
        mut d: ChunkDecoder,
        body: &[u8],
        frame: usize,
    ) -> Result<(Vec<u8>, ChunkDecoder), ChunkError> {
        let mut out = Vec::new();
        for piece in body.chunks(frame.max(1)) {
            d.push(Bytes::copy_from_slice(piece), &mut out)?;
        }
        d.finish()?;
        Ok((out.concat(), d))
    }

    #[test]
    fn aws_doc_example_body_decodes_and_verifies() {
        let body = example_body();
        assert_eq!(body.len(), 66824); // the example's Content-Length
        for frame in [1, 7, 1000, 65536, body.len()] {
            let (data, d) = decode(
                ChunkDecoder::new(Some(example_signer()), false),
                &body,
                frame,
            )
            .unwrap_or_else(|e| panic!("frame {frame}: {e}"));
            assert_eq!(data.len(), 66560);
            assert!(data.iter().all(|b| *b == b'a'));
            assert_eq!(d.decoded_len(), 66560);
        }
    }

    #[test]
    fn tampered_chunk_signature_is_rejected() {
        let mut body = example_body();
        let pos = body.iter().position(|b| *b == b'=').unwrap_or(0) + 1;
        body[pos] = if body[pos] == b'0' { b'1' } else { b'0' };
        let r = decode(
            ChunkDecoder::new(Some(example_signer()), false),
            &body,
            4096,
        );
        assert_eq!(r.err(), Some(ChunkError::SignatureMismatch));
    }

    #[test]
    fn tampered_data_is_rejected() {
        let mut body = example_body();
        body[200] = b'b';
        let r = decode(
            ChunkDecoder::new(Some(example_signer()), false),
            &body,
            4096,
        );
        assert_eq!(r.err(), Some(ChunkError::SignatureMismatch));
    }

    #[test]
    fn unsigned_trailer_body_as_the_sdks_send_it() {
        let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
        let (data, d) = decode(ChunkDecoder::new(None, false), body, 3).unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(
            d.trailers(),
            &[("x-amz-checksum-crc32".to_string(), "NhCmhg==".to_string())]
        );
    }

    #[test]
    fn signed_trailer_is_verified() {
        let signer = example_signer();
        let seed = signer.previous.clone();
        let data = b"hello";
        let sig1 = signer.key.sign(&sigv4::chunk_string_to_sign(
            &signer.amz_date,
            &signer.scope,
            &seed,
            &sigv4::sha256_hex(data),
        ));
        let sig0 = signer.key.sign(&sigv4::chunk_string_to_sign(
            &signer.amz_date,
            &signer.scope,
            &sig1,
            sigv4::EMPTY_SHA256,
        ));
        let trailer = "x-amz-checksum-crc32:NhCmhg==\n";
        let tsig = signer.key.sign(&sigv4::trailer_string_to_sign(
            &signer.amz_date,
            &signer.scope,
            &sig0,
            &sigv4::sha256_hex(trailer.as_bytes()),
        ));
        let body = format!(
            "5;chunk-signature={sig1}\r\nhello\r\n0;chunk-signature={sig0}\r\n\
             x-amz-checksum-crc32:NhCmhg==\r\nx-amz-trailer-signature:{tsig}\r\n\r\n"
        );
        let (out, _) = decode(
            ChunkDecoder::new(Some(signer.clone()), true),
            body.as_bytes(),
            5,
        )
        .unwrap();
        assert_eq!(out, b"hello");
        let bad = body.replace("NhCmhg==", "AAAAAA==");
        assert_eq!(
            decode(ChunkDecoder::new(Some(signer), true), bad.as_bytes(), 5).err(),
            Some(ChunkError::SignatureMismatch)
        );
    }

    #[test]
    fn truncated_body_is_an_error() {
        let body = b"5\r\nhel";
        assert_eq!(
            decode(ChunkDecoder::new(None, false), body, 100).err(),
            Some(ChunkError::Truncated)
        );
    }

    proptest! {
        #[test]
        fn unsigned_encoding_round_trips(data in proptest::collection::vec(any::<u8>(), 0..3000),
                                         chunk in 1usize..700, frame in 1usize..500) {
            let mut body = Vec::new();
            for c in data.chunks(chunk) {
                body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                body.extend_from_slice(c);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n\r\n");
            let (out, _) = decode(ChunkDecoder::new(None, false), &body, frame).unwrap();
            prop_assert_eq!(out, data);
        }

        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(any::<u8>(), 0..600), frame in 1usize..64) {
            let _ = decode(ChunkDecoder::new(Some(example_signer()), true), &body, frame);
            let _ = decode(ChunkDecoder::new(None, false), &body, frame);
        }
    }
}
