//! CopyObject (`API_CopyObject.html`): metadata directive COPY or REPLACE, the
//! `x-amz-copy-source-if-*` conditions, and a body copy that streams file to file. In gateway
//! mode a source not cached is fetched first, and a synced source is copied upstream
//! server-side (`Origin::CopyOf`).

use http::{HeaderMap, Response, StatusCode};

use super::headers::{
    check_copy_conditions, copy_checksum, header, object_attributes, parse_write_precondition,
};
use super::{S3Response, checksum_element, with_checksum, with_object_state};
use crate::body::ResponseBody;
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::replication::{Origin, Write};
use crate::router::CopySource;
use crate::store::{ObjectMeta, SyncState};
use crate::time::iso_date;
use crate::xml::XmlWriter;

pub async fn copy_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    source: &CopySource,
    headers: &HeaderMap,
) -> S3Result<S3Response> {
    ctx.config.limits.check_key(key)?;
    let src = ctx
        .replication
        .copy_source(&source.bucket, &source.key)
        .await?;
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
    ctx.config.limits.check_object_size(src.size)?;
    let attrs = object_attributes(&ctx.config.limits, headers)?;
    let precondition = parse_write_precondition(headers)?;
    let alg = copy_checksum(headers, &src)?;
    ctx.store.bucket(bucket).await?;
    // The copy's size is the source's: checked before a byte of it is written.
    ctx.replication
        .check_room(src.size, ctx.config.storage.min_free_bytes)
        .await?;
    let (blob, digests) = ctx
        .store
        .copy_range(
            &src.segments,
            0,
            src.size,
            alg,
            ctx.replication.needs_sha256(),
        )
        .await?;
    // A source the upstream already holds is copied there server-side.
    let origin = if src.sync == SyncState::Synced {
        Origin::CopyOf {
            bucket: &source.bucket,
            key: &source.key,
            etag: &src.etag,
        }
    } else {
        Origin::Local
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
    let write = Write {
        bucket,
        key,
        meta,
        precondition,
        origin,
        upload: None,
    };
    let meta = ctx.replication.commit(write, headers).await?;
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
        with_object_state(Response::builder().status(StatusCode::OK), ctx, &meta),
        meta.checksum.as_ref(),
    )
    .header("content-type", "application/xml")
    .header("content-length", xml.len())
    .body(ResponseBody::full(xml))
    .map_err(S3Error::internal)
}
