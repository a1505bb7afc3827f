//! Object integrity checksums: Content-MD5 and the `x-amz-checksum-*` family.
//!
//! Implements "Checking object integrity" in the S3 user guide (`checking-object-integrity.html`):
//! CRC32, CRC32C, CRC64NVME, SHA1 and SHA256, sent as base64 of the big-endian digest. When a client
//! sends none, Lifeboat computes CRC64NVME, as AWS does.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use md5::Md5;
use sha1::Sha1;
use sha2::Digest;
use sha2::Sha256;

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

impl ChecksumAlgorithm {
    fn crc(self) -> Option<crc_fast::CrcAlgorithm> {
        match self {
            ChecksumAlgorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
            ChecksumAlgorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
            ChecksumAlgorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
            ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
        }
    }

    /// Whether a full-object checksum can be derived from the parts' (the CRCs can).
    pub fn combinable(self) -> bool {
        self.crc().is_some()
    }
}

/// The multipart checksum of `parts` (raw digests and lengths).
///
/// Composite (`checksum of the concatenated part checksums` plus `-N`) for any algorithm;
/// full-object for the CRCs, combined from the parts' CRCs without reading the data.
pub fn multipart_checksum(
    alg: ChecksumAlgorithm,
    composite: bool,
    parts: &[(Vec<u8>, u64)],
) -> Option<Checksum> {
    if composite {
        let mut h = alg.hasher();
        for (raw, _) in parts {
            h.update(raw);
        }
        return Some(Checksum {
            algorithm: alg,
            value: format!("{}-{}", base64(&h.finish()), parts.len()),
            composite: true,
        });
    }
    let crc = alg.crc()?;
    let mut acc: Option<u64> = None;
    for (raw, len) in parts {
        let v = raw.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
        acc = Some(match acc {
            None => v,
            Some(a) => crc_fast::checksum_combine(crc, a, v, *len),
        });
    }
    let v = acc.unwrap_or_else(|| crc_fast::Digest::new(crc).finalize());
    let raw = if alg == ChecksumAlgorithm::Crc64Nvme {
        v.to_be_bytes().to_vec()
    } else {
        (v as u32).to_be_bytes().to_vec()
    };
    Some(Checksum {
        algorithm: alg,
        value: base64(&raw),
        composite: false,
    })
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
    /// A multipart checksum of the parts' checksums (`…-N`), not of the whole body.
    #[serde(default)]
    pub composite: bool,
}

impl Checksum {
    /// `x-amz-checksum-type`.
    pub fn type_name(&self) -> &'static str {
        if self.composite {
            "COMPOSITE"
        } else {
            "FULL_OBJECT"
        }
    }
}

pub fn base64(raw: &[u8]) -> String {
    B64.encode(raw)
}

pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    B64.decode(text.trim()).ok()
}

/// Decodes a `Content-MD5` header: base64 of exactly 16 bytes.
pub fn decode_content_md5(value: &str) -> Option<[u8; 16]> {
    let raw = B64.decode(value.trim()).ok()?;
    raw.try_into().ok()
}

/// The hashes computed while a body streams to disk: MD5 (the ETag), the checksum that is
/// stored, and optionally a second checksum that is only verified (a part that carries another
/// algorithm than its upload's).
pub struct BodyHashes {
    md5: Md5,
    checksum: ChecksumHasher,
    extra: Option<ChecksumHasher>,
    sha256: Option<Sha256>,
}

/// What `BodyHashes` produced once the body ended.
pub struct BodyDigests {
    pub md5: [u8; 16],
    pub checksum: Checksum,
    pub extra: Option<Checksum>,
    /// Hex SHA-256, when asked for (gateway mode signs upstream bodies with it).
    pub sha256: Option<String>,
}

fn finish_checksum(h: ChecksumHasher) -> Checksum {
    let algorithm = h.algorithm();
    Checksum {
        algorithm,
        value: base64(&h.finish()),
        composite: false,
    }
}

impl BodyHashes {
    pub fn new(checksum: ChecksumAlgorithm) -> Self {
        Self {
            md5: Md5::new(),
            checksum: checksum.hasher(),
            extra: None,
            sha256: None,
        }
    }

    /// Also computes the SHA-256 of the body.
    pub fn with_sha256(mut self, on: bool) -> Self {
        self.sha256 = on.then(Sha256::new);
        self
    }

    /// Also computes `alg`, when it differs from the stored checksum's.
    pub fn with_extra(mut self, alg: Option<ChecksumAlgorithm>) -> Self {
        self.extra = alg
            .filter(|a| *a != self.checksum.algorithm())
            .map(ChecksumAlgorithm::hasher);
        self
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.checksum.update(data);
        if let Some(e) = &mut self.extra {
            e.update(data);
        }
        if let Some(s) = &mut self.sha256 {
            s.update(data);
        }
    }

    pub fn finish(self) -> BodyDigests {
        BodyDigests {
            md5: self.md5.finalize().into(),
            checksum: finish_checksum(self.checksum),
            extra: self.extra.map(finish_checksum),
            sha256: self.sha256.map(|s| hex::encode(s.finalize())),
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
    fn full_object_crc_combines_from_parts() {
        let data = b"hello multipart world";
        for alg in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let parts: Vec<(Vec<u8>, u64)> = data
                .chunks(5)
                .map(|c| (of(alg, c), c.len() as u64))
                .collect();
            let combined = multipart_checksum(alg, false, &parts).unwrap();
            assert_eq!(combined.value, base64(&of(alg, data)), "{alg:?}");
        }
        assert!(multipart_checksum(ChecksumAlgorithm::Sha256, false, &[]).is_none());
        let c = multipart_checksum(
            ChecksumAlgorithm::Sha256,
            true,
            &[(vec![1], 1), (vec![2], 1)],
        )
        .unwrap();
        assert!(c.value.ends_with("-2") && c.composite);
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
