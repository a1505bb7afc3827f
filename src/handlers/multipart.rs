//! Multipart upload: CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts, ListMultipartUploads (`mpuoverview.html` and each
//! operation's `API_*.html`). Parts are separate blobs; Complete makes them the object's segments
//! without copying. The ETag is `md5(concat(part md5s))-N`.

use http::{HeaderMap, Response, StatusCode, Version};
use md5::{Digest, Md5};

use super::headers::{
    check_copy_conditions, checksum_algorithm, header, invalid_request, object_attributes,
    parse_write_precondition,
};
use super::upload::{PartChecksum, plan_upload, receive};
use super::{S3Response, checksum_element, with_checksum, with_object_state, xml_response};
use crate::auth::PayloadMode;
use crate::auth::policy::User;
use crate::body::{RequestBody, ResponseBody};
use crate::checksum::{self, Checksum, ChecksumAlgorithm};
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::replication::{Origin, Write};
use crate::router::CopySource;
use crate::store::{CompletedUpload, ObjectMeta, PartMeta, Segment, SyncState, UploadMeta};
use crate::time::{iso_date, now_ms};
use crate::xml::{self, XmlWriter};

/// Loads an upload and checks that it belongs to `bucket/key`.
pub(super) async fn upload_for(
    ctx: &Context,
    id: &str,
    bucket: &str,
    key: &str,
) -> S3Result<UploadMeta> {
    let upload = ctx.store.upload(id).await?;
    if upload.bucket != bucket || upload.key != key {
        return Err(S3ErrorCode::NoSuchUpload.into());
    }
    Ok(upload)
}

pub async fn create(
    ctx: &Context,
    user: &User,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
) -> S3Result<S3Response> {
    let limits = &ctx.config.limits;
    limits.check_key(key)?;
    let attrs = object_attributes(limits, headers)?;
    let alg = checksum_algorithm(headers)?;
    let checksum = alg.unwrap_or(ChecksumAlgorithm::Crc64Nvme);
    let composite = match header(headers, "x-amz-checksum-type") {
        Some(t) if t.eq_ignore_ascii_case("COMPOSITE") => true,
        Some(t) if t.eq_ignore_ascii_case("FULL_OBJECT") => false,
        Some(t) => {
            return Err(S3Error::invalid_argument(
                "Invalid checksum type",
                "x-amz-checksum-type",
                t,
            ));
        }
        // AWS's defaults: CRC64NVME is full-object, the others composite.
        None => checksum != ChecksumAlgorithm::Crc64Nvme,
    };
    if composite && checksum == ChecksumAlgorithm::Crc64Nvme {
        return Err(invalid_request(
            "The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.",
        ));
    }
    if !composite && !checksum.combinable() {
        return Err(invalid_request(format!(
            "The FULL_OBJECT checksum type cannot be used with the {} checksum algorithm.",
            checksum.name().to_ascii_lowercase()
        )));
    }
    let id = ctx
        .store
        .create_upload(UploadMeta {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            initiated_ms: now_ms(),
            owner: user.owner_id(),
            content: attrs.content,
            user_metadata: attrs.user_metadata,
            tags: attrs.tags,
            acl: attrs.acl,
            checksum,
            composite,
            explicit_checksum: alg.is_some(),
            sse: attrs.sse,
        })
        .await?;
    let mut w = XmlWriter::new();
    w.root("InitiateMultipartUploadResult");
    w.element("Bucket", bucket);
    w.element("Key", key);
    w.element("UploadId", &id);
    w.close("InitiateMultipartUploadResult");
    let xml = w.finish();
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/xml")
        .header("content-length", xml.len());
    if alg.is_some() {
        b = b
            .header("x-amz-checksum-algorithm", checksum.name())
            .header(
                "x-amz-checksum-type",
                if composite {
                    "COMPOSITE"
                } else {
                    "FULL_OBJECT"
                },
            );
    }
    b.body(ResponseBody::full(xml)).map_err(S3Error::internal)
}

#[allow(clippy::too_many_arguments)]
pub async fn upload_part(
    ctx: &Context,
    bucket: &str,
    key: &str,
    id: &str,
    n: u16,
    headers: &HeaderMap,
    payload: &PayloadMode,
    version: Version,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let upload = upload_for(ctx, id, bucket, key).await?;
    // Checked before the body is read, so 100-continue clients never send a refused part.
    let rule = if upload.explicit_checksum {
        PartChecksum::Strict(upload.checksum)
    } else {
        PartChecksum::Default(upload.checksum)
    };
    let plan = plan_upload(ctx, headers, payload, version, rule)?;
    ctx.replication
        .check_room(
            plan.declared_len.unwrap_or(0),
            ctx.config.storage.min_free_bytes,
        )
        .await?;
    let got = receive(ctx, &plan, body, ctx.config.limits.max_object_size).await?;
    let etag = hex::encode(got.md5);
    let size = got.size;
    let checksum = got.claimed.unwrap_or_else(|| got.checksum.clone());
    let value = got.checksum.value;
    let sha256 = got.sha256;
    let part = ctx
        .store
        .put_part(id, n, got.writer, |blob| PartMeta {
            blob: blob.id.clone(),
            size,
            etag,
            last_modified_ms: now_ms(),
            checksum: value,
            sha256,
            sealed: blob.sealed,
        })
        .await?;
    with_checksum(
        Response::builder()
            .status(StatusCode::OK)
            .header("etag", format!("\"{}\"", part.etag))
            .header("content-length", 0),
        Some(&checksum),
    )
    .body(ResponseBody::Empty)
    .map_err(S3Error::internal)
}

/// `x-amz-copy-source-range: bytes=first-last`, which must lie inside the source.
fn copy_range(headers: &HeaderMap, size: u64) -> S3Result<(u64, u64)> {
    let Some(v) = header(headers, "x-amz-copy-source-range") else {
        return Ok((0, size));
    };
    let bad = || {
        S3Error::invalid_argument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
            "x-amz-copy-source-range",
            v,
        )
    };
    let (a, b) = v
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let (first, last): (u64, u64) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if first > last {
        return Err(bad());
    }
    if last >= size {
        return Err(S3Error::invalid_argument(
            format!("Range specified is not valid for source object of size: {size}"),
            "x-amz-copy-source-range",
            v,
        ));
    }
    Ok((first, last - first + 1))
}

#[allow(clippy::too_many_arguments)]
pub async fn upload_part_copy(
    ctx: &Context,
    bucket: &str,
    key: &str,
    id: &str,
    n: u16,
    source: &CopySource,
    headers: &HeaderMap,
) -> S3Result<S3Response> {
    let upload = upload_for(ctx, id, bucket, key).await?;
    let src = ctx
        .replication
        .copy_source(&source.bucket, &source.key)
        .await?;
    check_copy_conditions(headers, &src)?;
    let (offset, len) = copy_range(headers, src.size)?;
    ctx.config.limits.check_object_size(len)?;
    ctx.replication
        .check_room(len, ctx.config.storage.min_free_bytes)
        .await?;
    let (blob, digests) = ctx
        .store
        .copy_range(
            &src.segments,
            offset,
            len,
            upload.checksum,
            ctx.replication.needs_sha256(),
        )
        .await?;
    let part = ctx
        .store
        .record_part(
            id,
            n,
            PartMeta {
                blob: blob.id.clone(),
                size: len,
                etag: hex::encode(digests.md5),
                last_modified_ms: now_ms(),
                checksum: digests.checksum.value.clone(),
                sha256: digests.sha256,
                sealed: blob.sealed,
            },
        )
        .await?;
    let mut w = XmlWriter::new();
    w.root("CopyPartResult");
    w.element("LastModified", &iso_date(part.last_modified_ms));
    w.element("ETag", &format!("\"{}\"", part.etag));
    w.element(&checksum_element(upload.checksum), &part.checksum);
    w.close("CopyPartResult");
    xml_response(w.finish())
}

/// One `<Part>` of a CompleteMultipartUpload body.
struct RequestedPart {
    number: u16,
    etag: String,
    checksum: Option<String>,
}

fn parse_complete(body: &[u8], alg: ChecksumAlgorithm) -> S3Result<Vec<RequestedPart>> {
    let root = xml::parse(body)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(S3ErrorCode::MalformedXML.into());
    }
    let element = checksum_element(alg);
    let mut parts = Vec::new();
    for p in root.children_named("Part") {
        let number = p
            .child_text("PartNumber")
            .and_then(|n| n.trim().parse::<u16>().ok())
            .filter(|n| (1..=10000).contains(n))
            .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?;
        let etag = p
            .child_text("ETag")
            .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))?
            .trim()
            .trim_matches('"')
            .to_owned();
        parts.push(RequestedPart {
            number,
            etag,
            checksum: p.child_text(&element).map(|c| c.trim().to_owned()),
        });
    }
    if parts.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema: at least one part is required.",
        ));
    }
    Ok(parts)
}

pub async fn complete(
    ctx: &Context,
    bucket: &str,
    key: &str,
    id: &str,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let limits = &ctx.config.limits;
    let precondition = parse_write_precondition(headers)?;
    let upload = match upload_for(ctx, id, bucket, key).await {
        Ok(u) => u,
        Err(e) if e.code == S3ErrorCode::NoSuchUpload => {
            return match ctx.store.completed_upload(id).await? {
                Some(done) if done.bucket == bucket && done.key == key => {
                    complete_again(ctx, &done, body).await?.ok_or(e)
                }
                _ => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let xml_body = body.read_small(limits.max_xml_body).await?;
    let requested = parse_complete(&xml_body, upload.checksum)?;
    if requested.len() > limits.max_parts {
        return Err(S3Error::invalid_argument(
            format!("Part count must not exceed {}", limits.max_parts),
            "parts",
            &requested.len().to_string(),
        ));
    }
    if requested.windows(2).any(|w| w[0].number >= w[1].number) {
        return Err(S3ErrorCode::InvalidPartOrder.into());
    }
    let stored = ctx.store.parts(id).await?;
    let mut chosen: Vec<&PartMeta> = Vec::with_capacity(requested.len());
    for r in &requested {
        let part = stored
            .iter()
            .find(|(n, _)| *n == r.number)
            .map(|(_, p)| p)
            .filter(|p| p.etag == r.etag)
            .ok_or_else(|| {
                S3Error::new(S3ErrorCode::InvalidPart)
                    .extra("UploadId", id)
                    .extra("PartNumber", r.number.to_string())
                    .extra("ETag", r.etag.clone())
            })?;
        if let Some(c) = &r.checksum
            && *c != part.checksum
        {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidPart,
                format!(
                    "The upload was created using the {} checksum mode. The complete request contains a different checksum for part {}.",
                    upload.checksum.name().to_ascii_lowercase(),
                    r.number
                ),
            ));
        }
        chosen.push(part);
    }
    for (i, p) in chosen.iter().enumerate() {
        if i + 1 < chosen.len() && p.size < limits.min_part_size {
            return Err(S3Error::new(S3ErrorCode::EntityTooSmall)
                .extra("ProposedSize", p.size.to_string())
                .extra("MinSizeAllowed", limits.min_part_size.to_string())
                .extra("PartNumber", requested[i].number.to_string())
                .extra("ETag", p.etag.clone()));
        }
    }
    let mut md5s = Md5::new();
    let mut raw_checksums = Vec::with_capacity(chosen.len());
    for p in &chosen {
        let raw = hex::decode(&p.etag).map_err(S3Error::internal)?;
        md5s.update(&raw);
        let c = upload
            .checksum
            .decode(&p.checksum)
            .ok_or_else(|| S3Error::internal("stored part checksum does not decode"))?;
        raw_checksums.push((c, p.size));
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
    let checksum: Checksum =
        checksum::multipart_checksum(upload.checksum, upload.composite, &raw_checksums)
            .ok_or_else(|| S3Error::internal("checksum type cannot be combined"))?;
    if let Some(claimed) = header(headers, upload.checksum.header())
        && claimed.trim() != checksum.value
    {
        return Err(S3Error::with_message(
            S3ErrorCode::BadDigest,
            format!(
                "The {} you specified did not match the calculated checksum.",
                upload.checksum.name()
            ),
        ));
    }
    let size = chosen.iter().map(|p| p.size).sum();
    let meta = ObjectMeta {
        segments: chosen
            .iter()
            .zip(&requested)
            .map(|(p, r)| Segment {
                blob: p.blob.clone(),
                size: p.size,
                etag: p.etag.clone(),
                checksum: Some(p.checksum.clone()),
                sha256: p.sha256.clone(),
                part_number: r.number,
                sealed: p.sealed,
            })
            .collect(),
        size,
        etag,
        last_modified_ms: now_ms(),
        content: upload.content,
        user_metadata: upload.user_metadata,
        checksum: Some(checksum),
        multipart: true,
        tags: upload.tags,
        acl: upload.acl,
        sync: SyncState::LocalOnly,
        validated_ms: now_ms(),
        sse: upload.sse,
    };
    limits.check_object_size(size)?;
    let write = Write {
        bucket,
        key,
        meta,
        precondition,
        origin: Origin::Local,
        upload: Some(id),
    };
    let meta = ctx.replication.commit(write, headers).await?;
    let done = CompletedUpload {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        etag: meta.etag.clone(),
        checksum: meta.checksum.clone(),
        parts: requested
            .iter()
            .map(|r| (r.number, r.etag.clone()))
            .collect(),
        completed_ms: now_ms(),
    };
    if let Err(e) = ctx.store.record_completed(id, done.clone()).await {
        // Only a retried Complete would miss it (it gets NoSuchUpload, as before).
        tracing::warn!(error = %e, "cannot keep the completed upload's answer");
    }
    complete_answer(ctx, &done, Some(&meta))
}

/// The CompleteMultipartUploadResult of a completed upload (`meta`: the object as stored, for
/// its state headers, when it is still that object).
fn complete_answer(
    ctx: &Context,
    done: &CompletedUpload,
    meta: Option<&ObjectMeta>,
) -> S3Result<S3Response> {
    let (bucket, key) = (&done.bucket, &done.key);
    let mut w = XmlWriter::new();
    w.root("CompleteMultipartUploadResult");
    w.element("Location", &format!("/{bucket}/{key}"));
    w.element("Bucket", bucket);
    w.element("Key", key);
    w.element("ETag", &format!("\"{}\"", done.etag));
    if let Some(c) = &done.checksum {
        w.element(&checksum_element(c.algorithm), &c.value);
        w.element("ChecksumType", c.type_name());
    }
    w.close("CompleteMultipartUploadResult");
    let xml = w.finish();
    let b = Response::builder().status(StatusCode::OK);
    let b = match meta {
        Some(m) => with_object_state(b, ctx, m),
        None => b,
    };
    b.header("content-type", "application/xml")
        .header("content-length", xml.len())
        .body(ResponseBody::full(xml))
        .map_err(S3Error::internal)
}

/// A Complete retried after it succeeded (its answer was lost): the same answer when the part
/// list is the same, as AWS gives; `None` otherwise (the caller answers NoSuchUpload).
async fn complete_again(
    ctx: &Context,
    done: &CompletedUpload,
    body: &mut RequestBody,
) -> S3Result<Option<S3Response>> {
    let xml_body = body.read_small(ctx.config.limits.max_xml_body).await?;
    let alg = done
        .checksum
        .as_ref()
        .map_or(ChecksumAlgorithm::Crc64Nvme, |c| c.algorithm);
    let requested = parse_complete(&xml_body, alg)?;
    let same = requested.len() == done.parts.len()
        && requested
            .iter()
            .zip(&done.parts)
            .all(|(r, (n, etag))| r.number == *n && r.etag == *etag);
    if !same {
        return Ok(None);
    }
    let current = ctx.store.object(&done.bucket, &done.key).await.ok();
    let current = current.filter(|m| m.etag == done.etag);
    complete_answer(ctx, done, current.as_ref()).map(Some)
}

pub async fn abort(ctx: &Context, bucket: &str, key: &str, id: &str) -> S3Result<S3Response> {
    upload_for(ctx, id, bucket, key).await?;
    ctx.store.abort_upload(id).await?;
    super::empty_response(StatusCode::NO_CONTENT)
}
