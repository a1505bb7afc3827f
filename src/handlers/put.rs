//! PutObject (`API_PutObject.html`): every check that can be made from the headers is made before
//! the body is read (so `Expect: 100-continue` clients are refused early); the body then streams
//! through the hashes into a temp file, and the object becomes visible only once it is durable and
//! every digest the client sent has matched.

use http::{HeaderMap, Response, StatusCode, Version};

use super::{Context, S3Response, header, now_ms};
use crate::auth::PayloadMode;
use crate::body::{RequestBody, ResponseBody};
use crate::checksum::{self, BodyHashes, ChecksumAlgorithm};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::{ContentHeaders, ObjectMeta};

/// Everything about an upload that the headers say, checked before the body is read.
#[derive(Debug)]
pub struct UploadPlan {
    pub content_md5: Option<[u8; 16]>,
    /// The checksum to compute, and the value the client claims (from a header), if any.
    pub checksum: ChecksumAlgorithm,
    pub claimed_checksum: Option<Vec<u8>>,
    /// Set when the claimed checksum arrives in the aws-chunked trailer instead.
    pub trailer: Option<ChecksumAlgorithm>,
    /// The decoded body length the client declared, if it did.
    pub declared_len: Option<u64>,
    pub content: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
}

fn invalid_request(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, msg)
}

fn parse_len(headers: &HeaderMap, name: &str) -> S3Result<Option<u64>> {
    match header(headers, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| S3Error::invalid_argument(format!("Invalid {name}"), name, v)),
    }
}

/// Reads and checks the upload's headers.
pub fn plan_upload(
    ctx: &Context,
    headers: &HeaderMap,
    payload: &PayloadMode,
    version: Version,
) -> S3Result<UploadPlan> {
    let limits = &ctx.config.limits;
    let content_md5 = match header(headers, "content-md5") {
        None => None,
        Some(v) => Some(
            checksum::decode_content_md5(v)
                .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidDigest))?,
        ),
    };

    let mut claimed = None;
    for alg in ChecksumAlgorithm::ALL {
        if let Some(v) = header(headers, alg.header()) {
            if claimed.is_some() {
                return Err(invalid_request(
                    "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
                ));
            }
            let raw = alg.decode(v).ok_or_else(|| {
                invalid_request(format!("Value for {} header is invalid.", alg.header()))
            })?;
            claimed = Some((alg, raw));
        }
    }
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
    let checksum = claimed
        .as_ref()
        .map(|(a, _)| *a)
        .or(trailer)
        .or(sdk_alg)
        .unwrap_or(ChecksumAlgorithm::Crc64Nvme);
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
    if declared_len.is_some_and(|n| n > limits.max_object_size) {
        return Err(entity_too_large(limits.max_object_size));
    }

    let mut user_metadata = Vec::new();
    let mut meta_bytes = 0usize;
    for (name, value) in headers {
        if let Some(n) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            meta_bytes += n.len() + v.len();
            user_metadata.push((n.to_owned(), v));
        }
    }
    if meta_bytes > limits.max_metadata_bytes {
        return Err(S3Error::new(S3ErrorCode::MetadataTooLarge)
            .extra("Size", meta_bytes.to_string())
            .extra("MaxSizeAllowed", limits.max_metadata_bytes.to_string()));
    }
    let get = |n: &str| header(headers, n).map(str::to_owned);
    let content = ContentHeaders {
        content_type: get("content-type"),
        cache_control: get("cache-control"),
        content_disposition: get("content-disposition"),
        content_encoding: strip_aws_chunked(get("content-encoding")),
        content_language: get("content-language"),
        expires: get("expires"),
    };
    Ok(UploadPlan {
        content_md5,
        checksum,
        claimed_checksum: claimed.map(|(_, raw)| raw),
        trailer,
        declared_len,
        content,
        user_metadata,
    })
}

/// `aws-chunked` is a transfer detail, not part of the object's Content-Encoding.
fn strip_aws_chunked(enc: Option<String>) -> Option<String> {
    let enc = enc?;
    let rest: Vec<&str> = enc
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!rest.is_empty()).then(|| rest.join(","))
}

fn entity_too_large(max: u64) -> S3Error {
    S3Error::new(S3ErrorCode::EntityTooLarge).extra("MaxSizeAllowed", max.to_string())
}

pub async fn put_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    plan: UploadPlan,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let max = ctx.config.limits.max_object_size;
    let mut writer = ctx.store.blob_writer().await?;
    let mut hashes = BodyHashes::new(false, plan.checksum);
    while let Some(chunk) = body.next().await? {
        if writer.len() + chunk.len() as u64 > max {
            return Err(entity_too_large(max));
        }
        hashes.update(&chunk);
        writer.write(&chunk).await.map_err(S3Error::internal)?;
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
    let claimed = match plan.trailer {
        Some(alg) => {
            let value = body
                .trailers()
                .iter()
                .find(|(n, _)| n == alg.header())
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| {
                    invalid_request(format!("The {} trailer is missing.", alg.header()))
                })?;
            Some(alg.decode(value).ok_or_else(|| {
                invalid_request(format!(
                    "Value for {} trailing header is invalid.",
                    alg.header()
                ))
            })?)
        }
        None => plan.claimed_checksum,
    };
    if let Some(claimed) = claimed
        && checksum::base64(&claimed) != digests.checksum.value
    {
        return Err(S3Error::with_message(
            S3ErrorCode::BadDigest,
            format!(
                "The {} you specified did not match the calculated checksum.",
                plan.checksum.name()
            ),
        ));
    }
    let etag = hex::encode(digests.md5);
    let checksum = digests.checksum;
    let meta = ctx
        .store
        .put_object(bucket, key, writer, |blob| ObjectMeta {
            blob: blob.id.clone(),
            size,
            etag,
            last_modified_ms: now_ms(),
            content: plan.content,
            user_metadata: plan.user_metadata,
            checksum: Some(checksum),
        })
        .await?;
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header("etag", meta.quoted_etag())
        .header("content-length", 0);
    if let Some(c) = &meta.checksum {
        resp = resp
            .header(c.algorithm.header(), &c.value)
            .header("x-amz-checksum-type", "FULL_OBJECT");
    }
    resp.body(ResponseBody::Empty).map_err(S3Error::internal)
}
