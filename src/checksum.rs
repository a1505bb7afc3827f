//! Object integrity checksums: Content-MD5 and the `x-amz-checksum-*` family.
//!
//! Implements "Checking object integrity" in the S3 user guide (`checking-object-integrity.html`):
//! CRC32, CRC32C, CRC64NVME, SHA1 and SHA256, sent as base64 of the big-endian digest. When a client
//! sends none, Lifeboat computes CRC64NVME, as AWS does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The response/request header that carries this checksum.
    pub fn header(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The name as `x-amz-sdk-checksum-algorithm` and error messages spell it.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    pub fn from_header(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name))
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Length of the raw digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// Decodes a base64 header value, checking that it has the digest's length.
    pub fn decode(self, value: &str) -> Option<Vec<u8>> {
        let raw = B64.decode(value.trim()).ok()?;
        (raw.len() == self.digest_len()).then_some(raw)
    }

    pub fn hasher(self) -> ChecksumHasher {
        match self {
            ChecksumAlgorithm::Crc32 => ChecksumHasher::Crc(
                self,
                crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            ),
            ChecksumAlgorithm::Crc32c => ChecksumHasher::Crc(
                self,
                crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi),
            ),
            ChecksumAlgorithm::Crc64Nvme => ChecksumHasher::Crc(
                self,
                crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme),
            ),
            ChecksumAlgorithm::Sha1 => ChecksumHasher::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChecksumHasher::Sha256(Sha256::new()),
        }
    }
}

/// An incremental checksum over a body.
pub enum ChecksumHasher {
    Crc(ChecksumAlgorithm, crc_fast::Digest),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl ChecksumHasher {
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        match self {
            ChecksumHasher::Crc(a, _) => *a,
            ChecksumHasher::Sha1(_) => ChecksumAlgorithm::Sha1,
            ChecksumHasher::Sha256(_) => ChecksumAlgorithm::Sha256,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ChecksumHasher::Crc(_, d) => d.update(data),
            ChecksumHasher::Sha1(h) => h.update(data),
            ChecksumHasher::Sha256(h) => h.update(data),
        }
    }

    /// The raw big-endian digest.
    pub fn finish(self) -> Vec<u8> {
        match self {
            ChecksumHasher::Crc(a, d) => {
                let v = d.finalize();
                if a == ChecksumAlgorithm::Crc64Nvme {
                    v.to_be_bytes().to_vec()
                } else {
                    (v as u32).to_be_bytes().to_vec()
                }
            }
            ChecksumHasher::Sha1(h) => h.finalize().to_vec(),
            ChecksumHasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// A stored checksum: algorithm plus its base64 value as AWS prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub value: String,
}

pub fn base64(raw: &[u8]) -> String {
    B64.encode(raw)
}

/// Decodes a `Content-MD5` header: base64 of exactly 16 bytes.
pub fn decode_content_md5(value: &str) -> Option<[u8; 16]> {
    let raw = B64.decode(value.trim()).ok()?;
    raw.try_into().ok()
}

/// The hashes computed while a body streams to disk.
pub struct BodyHashes {
    md5: Md5,
    sha256: Option<Sha256>,
    checksum: ChecksumHasher,
}

/// What `BodyHashes` produced once the body ended.
pub struct BodyDigests {
    pub md5: [u8; 16],
    pub sha256: Option<[u8; 32]>,
    pub checksum: Checksum,
}

impl BodyHashes {
    pub fn new(want_sha256: bool, checksum: ChecksumAlgorithm) -> Self {
        Self {
            md5: Md5::new(),
            sha256: want_sha256.then(Sha256::new),
            checksum: checksum.hasher(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some(s) = &mut self.sha256 {
            s.update(data);
        }
        self.checksum.update(data);
    }

    pub fn finish(self) -> BodyDigests {
        let algorithm = self.checksum.algorithm();
        BodyDigests {
            md5: self.md5.finalize().into(),
            sha256: self.sha256.map(|s| s.finalize().into()),
            checksum: Checksum {
                algorithm,
                value: base64(&self.checksum.finish()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(alg: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut h = alg.hasher();
        h.update(data);
        h.finish()
    }

    #[test]
    fn check_values_for_123456789() {
        let d = b"123456789";
        assert_eq!(hex::encode(of(ChecksumAlgorithm::Crc32, d)), "cbf43926");
        assert_eq!(hex::encode(of(ChecksumAlgorithm::Crc32c, d)), "e3069283");
        assert_eq!(
            hex::encode(of(ChecksumAlgorithm::Crc64Nvme, d)),
            "ae8b14860a799888"
        );
    }

    #[test]
    fn decode_checks_length() {
        assert!(ChecksumAlgorithm::Crc32.decode("AAAAAA==").is_some());
        assert!(ChecksumAlgorithm::Crc32.decode("AAAAAAAAAAA=").is_none());
        assert!(ChecksumAlgorithm::Crc32.decode("not base64!").is_none());
        assert!(decode_content_md5("1B2M2Y8AsgTpgAmY7PhCfg==").is_some());
        assert!(decode_content_md5("AAAA").is_none());
    }
}
