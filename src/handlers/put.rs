//! PutObject (`API_PutObject.html`): every check that can be made from the headers is made before
//! the body is read (so `Expect: 100-continue` clients are refused early); the body then streams
//! through the hashes into a temp file, and the object becomes visible only once it is durable and
//! every digest the client sent has matched.

use http::{HeaderMap, Response, StatusCode, Version};

use super::{Context, S3Response, header};
use crate::auth::PayloadMode;
use crate::body::{RequestBody, ResponseBody};
use crate::checksum::{self, BodyHashes, Checksum, ChecksumAlgorithm};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::{BlobWriter, ContentHeaders, ObjectMeta, Precondition};

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

/// The canned ACLs S3 accepts in `x-amz-acl`.
pub const CANNED_ACLS: [&str; 8] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
];

/// Reads `x-amz-acl`; grants given as `x-amz-grant-*` headers are not supported.
pub fn parse_acl(headers: &HeaderMap) -> S3Result<Option<String>> {
    if headers
        .keys()
        .any(|k| k.as_str().starts_with("x-amz-grant-"))
    {
        return Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "x-amz-grant-* headers are not implemented by Lifeboat; use a canned x-amz-acl.",
        ));
    }
    match header(headers, "x-amz-acl") {
        None => Ok(None),
        Some(a) if CANNED_ACLS.contains(&a.trim()) => Ok(Some(a.trim().to_owned())),
        Some(a) => Err(S3Error::invalid_argument(
            "Invalid canned ACL",
            "x-amz-acl",
            a,
        )),
    }
}

/// Parses a tag set in URL query form (`x-amz-tagging`), checking S3's tag limits.
pub fn parse_tagging(value: &str) -> S3Result<Vec<(String, String)>> {
    // Form encoding: `+` is a space, `%2B` a plus; so `+` is turned into `%20` before decoding.
    let tags: Vec<(String, String)> = crate::auth::sigv4::parse_query(&value.replace('+', "%20"));
    check_tags(&tags)?;
    Ok(tags)
}

/// S3's tag limits: at most 10 tags, keys up to 128 characters, values up to 256, keys unique.
pub fn check_tags(tags: &[(String, String)]) -> S3Result<()> {
    let invalid = |m: &str| S3Error::with_message(S3ErrorCode::InvalidTag, m);
    if tags.len() > 10 {
        return Err(invalid("Object tags cannot be greater than 10"));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if v.chars().count() > 256 {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if tags[..i].iter().any(|(k2, _)| k2 == k) {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// `If-None-Match: *` and `If-Match: <etag>` on a write (`conditional-requests.html`).
pub fn parse_write_precondition(headers: &HeaderMap) -> S3Result<Precondition> {
    match (
        header(headers, "if-none-match"),
        header(headers, "if-match"),
    ) {
        (Some(_), Some(_)) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "If-Match and If-None-Match together are not supported on writes.",
        )),
        (Some(v), None) if v.trim() == "*" => Ok(Precondition::IfNoneMatch),
        (Some(_), None) => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "If-None-Match on a write only supports *.",
        )),
        (None, Some(v)) => Ok(Precondition::IfMatch(
            v.trim()
                .trim_start_matches("W/")
                .trim_matches('"')
                .to_owned(),
        )),
        (None, None) => Ok(Precondition::None),
    }
}

pub fn invalid_request(msg: impl Into<String>) -> S3Error {
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
    if declared_len.is_some_and(|n| n > limits.max_object_size) {
        return Err(entity_too_large(limits.max_object_size));
    }

    let attrs = object_attributes(ctx, headers)?;
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

/// What a write stores beside the body: content headers, user metadata, ACL and tags.
pub struct ObjectAttributes {
    pub content: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
    pub acl: Option<String>,
    pub tags: Vec<(String, String)>,
    pub sse: Option<String>,
}

/// `x-amz-server-side-encryption`: AES256 is accepted (and forwarded to an upstream); KMS needs
/// keys Lifeboat does not have.
pub fn parse_sse(headers: &HeaderMap) -> S3Result<Option<String>> {
    match header(headers, "x-amz-server-side-encryption").map(str::trim) {
        None => Ok(None),
        Some("AES256") => Ok(Some("AES256".to_owned())),
        Some(v) if v.starts_with("aws:kms") => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "SSE-KMS is not implemented by Lifeboat; use AES256.",
        )),
        Some(v) => Err(S3Error::invalid_argument(
            "The encryption method specified is not supported",
            "x-amz-server-side-encryption",
            v,
        )),
    }
}

/// Reads the object attributes from a write's headers, checking the metadata size limit.
pub fn object_attributes(ctx: &Context, headers: &HeaderMap) -> S3Result<ObjectAttributes> {
    let limits = &ctx.config.limits;
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
    Ok(ObjectAttributes {
        content,
        user_metadata,
        acl: parse_acl(headers)?,
        tags: match header(headers, "x-amz-tagging") {
            Some(t) => parse_tagging(t)?,
            None => Vec::new(),
        },
        sse: parse_sse(headers)?,
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

pub fn entity_too_large(max: u64) -> S3Error {
    S3Error::new(S3ErrorCode::EntityTooLarge).extra("MaxSizeAllowed", max.to_string())
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
        .with_sha256(ctx.gateway.is_some());
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

/// Adds the stored checksum headers to a write response.
pub fn with_checksum(
    mut b: http::response::Builder,
    c: Option<&Checksum>,
) -> http::response::Builder {
    if let Some(c) = c {
        b = b
            .header(c.algorithm.header(), &c.value)
            .header("x-amz-checksum-type", c.type_name());
    }
    b
}

pub async fn put_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    plan: UploadPlan,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let got = receive(ctx, &plan, body, ctx.config.limits.max_object_size).await?;
    let blob = ctx.store.finish_blob(got.writer).await?;
    let meta = ObjectMeta {
        content: plan.content,
        user_metadata: plan.user_metadata,
        tags: plan.tags,
        acl: plan.acl,
        sse: plan.sse,
        ..ObjectMeta::single(&blob, got.md5, got.checksum, got.sha256)
    };
    let meta = crate::gateway::commit_write(
        ctx,
        bucket,
        key,
        meta,
        plan.precondition,
        headers,
        crate::gateway::Origin::Local,
    )
    .await?;
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header("etag", meta.quoted_etag())
        .header("content-length", 0);
    with_checksum(super::with_sync(resp, ctx, &meta), meta.checksum.as_ref())
        .body(ResponseBody::Empty)
        .map_err(S3Error::internal)
}
