//! The upload pipeline shared by PutObject and UploadPart (`API_PutObject.html`,
//! `API_UploadPart.html`): every check that can be made from the headers is made before the
//! body is read (so `Expect: 100-continue` clients are refused early); the body then streams
//! through the hashes into a temp file, and is accepted only once every digest the client sent
//! has matched.

use http::{HeaderMap, Version};

use super::headers::{
    claimed_checksum, content_md5, header, invalid_request, object_attributes, parse_len,
    parse_write_precondition,
};
use crate::auth::PayloadMode;
use crate::body::RequestBody;
use crate::checksum::{self, BodyHashes, Checksum, ChecksumAlgorithm};
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::{BlobWriter, ContentHeaders, Precondition};

/// Everything about an upload that the headers say, checked before the body is read.
#[derive(Debug)]
pub struct UploadPlan {
    pub content_md5: Option<[u8; 16]>,
    /// The checksum to compute and store.
    pub checksum: ChecksumAlgorithm,
    /// The checksum the client claims (from a header): algorithm and raw value.
    pub claimed_checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    /// Set when the claimed checksum arrives in the aws-chunked trailer instead.
    pub trailer: Option<ChecksumAlgorithm>,
    /// The decoded body length the client declared, if it did.
    pub declared_len: Option<u64>,
    pub content: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
    pub acl: Option<String>,
    pub tags: Vec<(String, String)>,
    pub sse: Option<String>,
    pub precondition: Precondition,
}

/// A body that streamed to a temp file and matched every digest the client sent.
pub struct Received {
    pub writer: BlobWriter,
    pub size: u64,
    pub md5: [u8; 16],
    pub checksum: Checksum,
    /// The client's own checksum, when it used another algorithm than the stored one.
    pub claimed: Option<Checksum>,
    pub sha256: Option<String>,
}

/// How a part's checksum relates to its upload's.
#[derive(Debug, Clone, Copy)]
pub enum PartChecksum {
    /// Not a part: store what the client sends, or CRC64NVME.
    Object,
    /// The upload named this algorithm: a part claiming another is refused.
    Strict(ChecksumAlgorithm),
    /// The upload took the default: store this one, and verify whatever the part claims.
    Default(ChecksumAlgorithm),
}

/// Reads and checks the upload's headers.
pub fn plan_upload(
    ctx: &Context,
    headers: &HeaderMap,
    payload: &PayloadMode,
    version: Version,
    part: PartChecksum,
) -> S3Result<UploadPlan> {
    let limits = &ctx.config.limits;
    let content_md5 = content_md5(headers)?;
    let claimed = claimed_checksum(headers)?;
    let trailer = match header(headers, "x-amz-trailer") {
        None => None,
        Some(t) => Some(ChecksumAlgorithm::from_header(t.trim()).ok_or_else(|| {
            invalid_request(format!(
                "The value specified in the x-amz-trailer header is not supported: {t}"
            ))
        })?),
    };
    if trailer.is_some() && !matches!(payload, PayloadMode::Chunked { .. }) {
        return Err(invalid_request(
            "x-amz-trailer requires an aws-chunked STREAMING-*-TRAILER payload.",
        ));
    }
    let sdk_alg =
        match header(headers, "x-amz-sdk-checksum-algorithm") {
            None => None,
            Some(a) => Some(ChecksumAlgorithm::from_name(a.trim()).ok_or_else(|| {
                invalid_request(format!("Checksum algorithm {a} is not supported."))
            })?),
        };
    let sent = claimed.as_ref().map(|(a, _)| *a).or(trailer);
    if let (PartChecksum::Strict(req), Some(sent)) = (part, sent)
        && req != sent
    {
        return Err(invalid_request(format!(
            "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
            req.name().to_ascii_lowercase(),
            sent.name().to_ascii_lowercase()
        )));
    }
    let checksum = match part {
        PartChecksum::Strict(a) | PartChecksum::Default(a) => a,
        PartChecksum::Object => sent.or(sdk_alg).unwrap_or(ChecksumAlgorithm::Crc64Nvme),
    };
    if claimed.is_some() && trailer.is_some() {
        return Err(invalid_request(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        ));
    }

    let content_length = parse_len(headers, "content-length")?;
    let declared_len = match payload {
        PayloadMode::Chunked { .. } => parse_len(headers, "x-amz-decoded-content-length")?,
        _ => content_length,
    };
    let chunked_transfer = header(headers, "transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if content_length.is_none() && !chunked_transfer && version < Version::HTTP_2 {
        return Err(S3ErrorCode::MissingContentLength.into());
    }
    if let Some(n) = declared_len {
        limits.check_object_size(n)?;
    }

    let attrs = object_attributes(limits, headers)?;
    Ok(UploadPlan {
        content_md5,
        checksum,
        claimed_checksum: claimed,
        trailer,
        declared_len,
        content: attrs.content,
        user_metadata: attrs.user_metadata,
        acl: attrs.acl,
        tags: attrs.tags,
        sse: attrs.sse,
        precondition: parse_write_precondition(headers)?,
    })
}

/// Streams the body through the hashes into a temp file and checks every digest the client sent.
pub async fn receive(
    ctx: &Context,
    plan: &UploadPlan,
    body: &mut RequestBody,
    max: u64,
) -> S3Result<Received> {
    let mut writer = ctx.store.blob_writer().await?;
    let claimed_alg = plan
        .trailer
        .or(plan.claimed_checksum.as_ref().map(|(a, _)| *a));
    let mut hashes = BodyHashes::new(plan.checksum)
        .with_extra(claimed_alg)
        .with_sha256(ctx.replication.needs_sha256());
    while let Some(chunk) = body.next().await? {
        if writer.len() + chunk.len() as u64 > max {
            return Err(S3Error::entity_too_large(max));
        }
        hashes.update(&chunk);
        writer.write(&chunk).await.map_err(S3Error::from_io)?;
    }
    let size = writer.len();
    if plan.declared_len.is_some_and(|n| n != size) {
        return Err(S3ErrorCode::IncompleteBody.into());
    }
    let digests = hashes.finish();
    if let Some(md5) = plan.content_md5
        && md5 != digests.md5
    {
        return Err(S3Error::new(S3ErrorCode::BadDigest)
            .extra("ExpectedDigest", checksum::base64(&md5))
            .extra("CalculatedDigest", checksum::base64(&digests.md5)));
    }
    let claimed: Option<(ChecksumAlgorithm, Vec<u8>)> = match plan.trailer {
        Some(alg) => {
            let value = body
                .trailers()
                .iter()
                .find(|(n, _)| n == alg.header())
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| {
                    invalid_request(format!("The {} trailer is missing.", alg.header()))
                })?;
            Some((
                alg,
                alg.decode(value).ok_or_else(|| {
                    invalid_request(format!(
                        "Value for {} trailing header is invalid.",
                        alg.header()
                    ))
                })?,
            ))
        }
        None => plan.claimed_checksum.clone(),
    };
    if let Some((alg, raw)) = claimed {
        let computed = match &digests.extra {
            Some(e) if e.algorithm == alg => &e.value,
            _ => &digests.checksum.value,
        };
        if checksum::base64(&raw) != *computed {
            return Err(S3Error::with_message(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    alg.name()
                ),
            ));
        }
    }
    Ok(Received {
        writer,
        size,
        md5: digests.md5,
        checksum: digests.checksum,
        claimed: digests.extra,
        sha256: digests.sha256,
    })
}
