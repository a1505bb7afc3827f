//! The body hashes (`checksum.rs`) over 4 KiB and 1 MiB, in bytes per second: MD5 (every
//! object's ETag), and each `x-amz-checksum-*` algorithm through `ChecksumAlgorithm::hasher`
//! (CRC32 is what current boto3 sends, CRC64NVME what Lifeboat computes when a client sends
//! none). `put_hashes` is what a PutObject pays altogether: `BodyHashes` with MD5 and
//! CRC64NVME (local-only), and with SHA-256 as well (gateway mode, which signs the upstream
//! body with it).
//!
//! `cargo bench --bench checksum [-- --quick]`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lifeboat::checksum::{BodyHashes, ChecksumAlgorithm};
use md5::{Digest, Md5};

const SIZES: [(usize, &str); 2] = [(4 << 10, "4KiB"), (1 << 20, "1MiB")];

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn bench_checksums(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for (len, label) in SIZES {
        let data = data(len);
        group.throughput(Throughput::Bytes(len as u64));
        // MD5 of 1 MiB takes about 2 ms: 50 samples fit criterion's default 5 s.
        group.sample_size(if len > 64 << 10 { 50 } else { 100 });
        group.bench_with_input(BenchmarkId::new("MD5", label), &data, |b, data| {
            b.iter(|| Md5::digest(black_box(data)));
        });
        for alg in ChecksumAlgorithm::ALL {
            group.bench_with_input(BenchmarkId::new(alg.name(), label), &data, |b, data| {
                b.iter(|| {
                    let mut h = alg.hasher();
                    h.update(black_box(data));
                    h.finish()
                });
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("put_hashes");
    for (len, label) in SIZES {
        let data = data(len);
        group.throughput(Throughput::Bytes(len as u64));
        // MD5 of 1 MiB takes about 2 ms: 50 samples fit criterion's default 5 s.
        group.sample_size(if len > 64 << 10 { 50 } else { 100 });
        for (name, sha256) in [("md5+crc64nvme", false), ("md5+crc64nvme+sha256", true)] {
            group.bench_with_input(BenchmarkId::new(name, label), &data, |b, data| {
                b.iter(|| {
                    let mut h = BodyHashes::new(ChecksumAlgorithm::Crc64Nvme).with_sha256(sha256);
                    h.update(black_box(data));
                    h.finish()
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_checksums);
criterion_main!(benches);
