//! The aws-chunked decoder (`auth::chunked::ChunkDecoder`) on a 1 MiB body in 64 KiB chunks,
//! in the three payload modes clients send (`sigv4-streaming.html`,
//! `sigv4-streaming-trailers.html`):
//!
//! - `signed`: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, every chunk signed (aws-cli, the Java SDK);
//! - `signed_trailer`: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, with a signed checksum trailer;
//! - `unsigned_trailer`: STREAMING-UNSIGNED-PAYLOAD-TRAILER, what boto3 and the JS SDK send
//!   over HTTPS.
//!
//! The body arrives in 16 KiB frames, as `RequestBody` hands them over: one `Vec` of decoded
//! slices per frame. The signed modes hash every chunk (SHA-256) and sign each chunk's string
//! to sign; the unsigned one only parses. Throughput counts decoded bytes.
//!
//! `cargo bench --bench chunked [-- --quick]`

use std::hint::black_box;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lifeboat::auth::chunked::{ChunkDecoder, ChunkSigner};
use lifeboat::auth::sigv4::{self, SigningKey};
use lifeboat::checksum::{ChecksumAlgorithm, base64};

const BODY: usize = 1 << 20;
const CHUNK: usize = 64 << 10;
const FRAME: usize = 16 << 10;

fn signer() -> ChunkSigner {
    // 2026-12-02T12:00:00Z
    let date = UNIX_EPOCH + Duration::from_secs(1_796_212_800);
    ChunkSigner {
        key: SigningKey::derive(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            date,
            "us-east-1",
            "s3",
        ),
        amz_date: "20261202T120000Z".into(),
        scope: "20261202/us-east-1/s3/aws4_request".into(),
        // The seed signature (the request's own); any one will do, the chunks chain from it.
        previous: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into(),
    }
}

fn data() -> Vec<u8> {
    (0..BODY).map(|i| (i % 251) as u8).collect()
}

fn crc32_trailer(data: &[u8]) -> String {
    let mut h = ChecksumAlgorithm::Crc32.hasher();
    h.update(data);
    format!("x-amz-checksum-crc32:{}", base64(&h.finish()))
}

/// The body as a client encodes it: signed chunks when `signer` is set, then the trailer
/// (signed too when `signer` is set) when `trailer`.
fn encode(data: &[u8], signer: Option<&ChunkSigner>, trailer: bool) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + 4096);
    let mut previous = signer.map(|s| s.previous.clone());
    let mut chunk_line = |body: &mut Vec<u8>, chunk: &[u8]| match (signer, previous.as_mut()) {
        (Some(s), Some(prev)) => {
            let sts =
                sigv4::chunk_string_to_sign(&s.amz_date, &s.scope, prev, &sigv4::sha256_hex(chunk));
            *prev = s.key.sign(&sts);
            body.extend_from_slice(
                format!("{:x};chunk-signature={prev}\r\n", chunk.len()).as_bytes(),
            );
        }
        _ => body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes()),
    };
    for chunk in data.chunks(CHUNK) {
        chunk_line(&mut body, chunk);
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    chunk_line(&mut body, &[]);
    if trailer {
        let line = crc32_trailer(data);
        body.extend_from_slice(line.as_bytes());
        body.extend_from_slice(b"\r\n");
        if let (Some(s), Some(prev)) = (signer, previous.as_ref()) {
            let sts = sigv4::trailer_string_to_sign(
                &s.amz_date,
                &s.scope,
                prev,
                &sigv4::sha256_hex(format!("{line}\n").as_bytes()),
            );
            let sig = s.key.sign(&sts);
            body.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
        }
    }
    body.extend_from_slice(b"\r\n");
    body
}

/// Decodes `frames` as `RequestBody` does; returns the decoded length.
fn decode(signer: Option<ChunkSigner>, signed_trailer: bool, frames: &[Bytes]) -> u64 {
    let mut d = ChunkDecoder::new(signer, signed_trailer);
    for frame in frames {
        let mut out = Vec::new();
        d.push(frame.clone(), &mut out)
            .unwrap_or_else(|e| panic!("the fixture must decode: {e}"));
        black_box(out);
    }
    d.finish()
        .unwrap_or_else(|e| panic!("the fixture must end cleanly: {e}"));
    d.decoded_len()
}

fn frames(body: Vec<u8>) -> Vec<Bytes> {
    let body = Bytes::from(body);
    (0..body.len())
        .step_by(FRAME)
        .map(|at| body.slice(at..(at + FRAME).min(body.len())))
        .collect()
}

fn bench_chunked(c: &mut Criterion) {
    let data = data();
    let signer = signer();
    let mut group = c.benchmark_group("chunked_1MiB_64KiB_chunks");
    group.throughput(Throughput::Bytes(BODY as u64));

    let cases = [
        ("signed", Some(&signer), false),
        ("signed_trailer", Some(&signer), true),
        ("unsigned_trailer", None, true),
    ];
    for (name, signer, trailer) in cases {
        let frames = frames(encode(&data, signer, trailer));
        let signed_trailer = signer.is_some() && trailer;
        assert_eq!(
            decode(signer.cloned(), signed_trailer, &frames),
            BODY as u64,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| decode(signer.cloned(), signed_trailer, black_box(&frames)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_chunked);
criterion_main!(benches);
