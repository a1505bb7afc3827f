//! What a request says beside its body, parsed once for every handler that needs it: canned
//! ACLs, tags (the `x-amz-tagging` header and the `<Tagging>` document), server-side
//! encryption, write preconditions and the copy-source conditions, checksum headers, and the
//! stored object attributes (content headers and user metadata).

use http::HeaderMap;

use crate::checksum::{self, ChecksumAlgorithm};
use crate::conditional::{Condition, evaluate_prefixed};
use crate::config::LimitsConfig;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::{ContentHeaders, ObjectMeta, Precondition};
use crate::xml;

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn invalid_request(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidRequest, msg)
}

/// A numeric header (`Content-Length`, `x-amz-decoded-content-length`).
pub fn parse_len(headers: &HeaderMap, name: &str) -> S3Result<Option<u64>> {
    match header(headers, name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| S3Error::invalid_argument(format!("Invalid {name}"), name, v)),
    }
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

/// Parses a `<Tagging><TagSet><Tag><Key/><Value/></Tag>…` document (PutObjectTagging, and the
/// `tagging` field of a POST form) and checks S3's tag limits.
pub fn parse_tag_set(raw: &[u8]) -> S3Result<Vec<(String, String)>> {
    let root = xml::parse(raw)?;
    let set = root
        .child("TagSet")
        .filter(|_| root.name == "Tagging")
        .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
    let tags: Vec<(String, String)> = set
        .children_named("Tag")
        .map(|t| match (t.child_text("Key"), t.child_text("Value")) {
            (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
            _ => Err(S3Error::new(S3ErrorCode::MalformedXML)),
        })
        .collect::<S3Result<_>>()?;
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

/// `x-amz-server-side-encryption`: AES256 is accepted (and forwarded to an upstream); KMS needs
/// keys Lifeboat does not have.
pub fn parse_sse(headers: &HeaderMap) -> S3Result<Option<String>> {
    match header(headers, "x-amz-server-side-encryption").map(str::trim) {
        None => Ok(None),
        Some(v) => check_sse(v).map(Some),
    }
}

/// An SSE value.
fn check_sse(v: &str) -> S3Result<String> {
    match v {
        "AES256" => Ok("AES256".to_owned()),
        v if v.starts_with("aws:kms") => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "SSE-KMS is not implemented by Lifeboat; use AES256.",
        )),
        v => Err(S3Error::invalid_argument(
            "The encryption method specified is not supported",
            "x-amz-server-side-encryption",
            v,
        )),
    }
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

/// Checks `x-amz-copy-source-if-match`, `-if-none-match`, `-if-modified-since` and
/// `-if-unmodified-since` against the source; any that fails is 412 PreconditionFailed.
pub fn check_copy_conditions(headers: &HeaderMap, source: &ObjectMeta) -> S3Result<()> {
    let prefix = "x-amz-copy-source-";
    match evaluate_prefixed(headers, prefix, &source.etag, source.last_modified_ms) {
        Condition::Proceed => Ok(()),
        // A copy has no 304: a failed If-None-Match/If-Modified-Since is 412 too.
        Condition::NotModified | Condition::PreconditionFailed => {
            Err(S3ErrorCode::PreconditionFailed.into())
        }
    }
}

/// `x-amz-checksum-algorithm` (CopyObject, CreateMultipartUpload), if given.
pub fn checksum_algorithm(headers: &HeaderMap) -> S3Result<Option<ChecksumAlgorithm>> {
    match header(headers, "x-amz-checksum-algorithm") {
        None => Ok(None),
        Some(a) => ChecksumAlgorithm::from_name(a.trim())
            .map(Some)
            .ok_or_else(|| {
                S3Error::invalid_argument(
                    "Invalid checksum algorithm",
                    "x-amz-checksum-algorithm",
                    a,
                )
            }),
    }
}

/// The checksum algorithm of a copy: the one asked for, else the source's, else CRC64NVME.
pub fn copy_checksum(headers: &HeaderMap, source: &ObjectMeta) -> S3Result<ChecksumAlgorithm> {
    Ok(checksum_algorithm(headers)?.unwrap_or_else(|| {
        source
            .checksum
            .as_ref()
            .map_or(ChecksumAlgorithm::Crc64Nvme, |c| c.algorithm)
    }))
}

/// The one `x-amz-checksum-*` header a write may carry: algorithm and raw value.
pub fn claimed_checksum(headers: &HeaderMap) -> S3Result<Option<(ChecksumAlgorithm, Vec<u8>)>> {
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
    Ok(claimed)
}

/// `Content-MD5`, decoded (`InvalidDigest` when it is not 16 bytes of base64).
pub fn content_md5(headers: &HeaderMap) -> S3Result<Option<[u8; 16]>> {
    match header(headers, "content-md5") {
        None => Ok(None),
        Some(v) => checksum::decode_content_md5(v)
            .map(Some)
            .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidDigest)),
    }
}

/// Checks the digests a client sent over a small body it read whole.
pub fn check_body_digests(headers: &HeaderMap, body: &[u8]) -> S3Result<()> {
    if let Some(want) = content_md5(headers)? {
        let got: [u8; 16] = {
            use md5::Digest;
            md5::Md5::digest(body).into()
        };
        if want != got {
            return Err(S3ErrorCode::BadDigest.into());
        }
    }
    for alg in ChecksumAlgorithm::ALL {
        if let Some(v) = header(headers, alg.header()) {
            let want = alg.decode(v).ok_or_else(|| {
                invalid_request(format!("Value for {} header is invalid.", alg.header()))
            })?;
            let mut h = alg.hasher();
            h.update(body);
            if h.finish() != want {
                return Err(S3Error::with_message(
                    S3ErrorCode::BadDigest,
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        alg.name()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What a write stores beside the body: content headers, user metadata, ACL, tags and SSE.
pub struct ObjectAttributes {
    pub content: ContentHeaders,
    pub user_metadata: Vec<(String, String)>,
    pub acl: Option<String>,
    pub tags: Vec<(String, String)>,
    pub sse: Option<String>,
}

/// Reads the object attributes from a write's headers, checking the metadata size limit.
pub fn object_attributes(limits: &LimitsConfig, headers: &HeaderMap) -> S3Result<ObjectAttributes> {
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
/// The rest of the list is kept exactly as sent (`aws-chunked, deflate, gzip` → `deflate,
/// gzip`).
fn strip_aws_chunked(enc: Option<String>) -> Option<String> {
    let enc = enc?;
    let rest: Vec<&str> = enc
        .split(',')
        .filter(|e| !e.trim().eq_ignore_ascii_case("aws-chunked"))
        .collect();
    let kept = rest.join(",");
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_chunked_is_removed_and_the_rest_kept_as_sent() {
        let strip = |s: &str| strip_aws_chunked(Some(s.to_owned()));
        assert_eq!(
            strip("aws-chunked, deflate, gzip").as_deref(),
            Some("deflate, gzip")
        );
        assert_eq!(strip("gzip,aws-chunked").as_deref(), Some("gzip"));
        assert_eq!(
            strip("deflate, aws-chunked, gzip").as_deref(),
            Some("deflate, gzip")
        );
        assert_eq!(strip("aws-chunked"), None);
        assert_eq!(strip("br").as_deref(), Some("br"));
    }
}
