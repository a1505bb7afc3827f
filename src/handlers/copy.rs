//! CopyObject (`API_CopyObject.html`): metadata directive COPY or REPLACE, the
//! `x-amz-copy-source-if-*` conditions, and a body copy that streams file to file.

use http::{HeaderMap, Response, StatusCode};

use super::get::{Condition, evaluate_prefixed};
use super::put::{object_attributes, parse_write_precondition, with_checksum};
use super::{Context, S3Response, header, iso_date};
use crate::body::ResponseBody;
use crate::checksum::ChecksumAlgorithm;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::router::CopySource;
use crate::store::ObjectMeta;
use crate::xml::XmlWriter;

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

/// The checksum algorithm of a copy: the one asked for, else the source's, else CRC64NVME.
pub fn copy_checksum(headers: &HeaderMap, source: &ObjectMeta) -> S3Result<ChecksumAlgorithm> {
    match header(headers, "x-amz-checksum-algorithm") {
        Some(a) => ChecksumAlgorithm::from_name(a.trim()).ok_or_else(|| {
            S3Error::invalid_argument("Invalid checksum algorithm", "x-amz-checksum-algorithm", a)
        }),
        None => Ok(source
            .checksum
            .as_ref()
            .map_or(ChecksumAlgorithm::Crc64Nvme, |c| c.algorithm)),
    }
}

pub async fn copy_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    source: &CopySource,
    headers: &HeaderMap,
) -> S3Result<S3Response> {
    let src = crate::gateway::read::cached(ctx, &source.bucket, &source.key).await?;
    check_copy_conditions(headers, &src)?;
    let replace_metadata = match header(headers, "x-amz-metadata-directive") {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("COPY") => false,
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => true,
        Some(d) => {
            return Err(S3Error::invalid_argument(
                "Unknown metadata directive.",
                "x-amz-metadata-directive",
                d,
            ));
        }
    };
    let replace_tags = match header(headers, "x-amz-tagging-directive") {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("COPY") => false,
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => true,
        Some(d) => {
            return Err(S3Error::invalid_argument(
                "Unknown tagging directive.",
                "x-amz-tagging-directive",
                d,
            ));
        }
    };
    if source.bucket == bucket && source.key == key && !replace_metadata {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without \
             changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    if src.size > ctx.config.limits.max_object_size {
        return Err(super::put::entity_too_large(
            ctx.config.limits.max_object_size,
        ));
    }
    let attrs = object_attributes(ctx, headers)?;
    let precondition = parse_write_precondition(headers)?;
    let alg = copy_checksum(headers, &src)?;
    ctx.store.bucket(bucket).await?;
    let (blob, digests) = ctx
        .store
        .copy_range(&src.segments, 0, src.size, alg, ctx.gateway.is_some())
        .await?;
    // A source the upstream already holds is copied there server-side.
    let origin = if src.sync == crate::store::SyncState::Synced {
        crate::gateway::Origin::CopyOf {
            bucket: &source.bucket,
            key: &source.key,
            etag: &src.etag,
        }
    } else {
        crate::gateway::Origin::Local
    };
    let (content, user_metadata) = if replace_metadata {
        (attrs.content, attrs.user_metadata)
    } else {
        (src.content.clone(), src.user_metadata.clone())
    };
    let tags = if replace_tags {
        attrs.tags
    } else {
        src.tags.clone()
    };
    let meta = ObjectMeta {
        content,
        user_metadata,
        tags,
        acl: attrs.acl,
        sse: attrs.sse.or_else(|| src.sse.clone()),
        ..ObjectMeta::single(&blob, digests.md5, digests.checksum, digests.sha256)
    };
    let meta =
        crate::gateway::commit_write(ctx, bucket, key, meta, precondition, headers, origin).await?;
    let mut w = XmlWriter::new();
    w.root("CopyObjectResult");
    w.element("LastModified", &iso_date(meta.last_modified_ms));
    w.element("ETag", &meta.quoted_etag());
    if let Some(c) = &meta.checksum {
        w.element(&checksum_element(c.algorithm), &c.value);
        w.element("ChecksumType", c.type_name());
    }
    w.close("CopyObjectResult");
    let xml = w.finish();
    with_checksum(
        super::with_sync(Response::builder().status(StatusCode::OK), ctx, &meta),
        meta.checksum.as_ref(),
    )
    .header("content-type", "application/xml")
    .header("content-length", xml.len())
    .body(ResponseBody::full(xml))
    .map_err(S3Error::internal)
}

/// The XML element name of a checksum (`ChecksumCRC32`, …).
pub fn checksum_element(alg: ChecksumAlgorithm) -> String {
    format!("Checksum{}", alg.name())
}
