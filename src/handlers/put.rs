//! PutObject (`API_PutObject.html`): the upload pipeline (`upload`) into a durable blob, then a
//! commit through the replication backend.

use http::{HeaderMap, Response, StatusCode, Version};

use super::upload::{PartChecksum, plan_upload, receive};
use super::{S3Response, with_checksum, with_object_state};
use crate::auth::PayloadMode;
use crate::body::{RequestBody, ResponseBody};
use crate::context::Context;
use crate::error::{S3Error, S3Result};
use crate::replication::{Origin, Write};
use crate::store::ObjectMeta;

pub async fn put_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    payload: &PayloadMode,
    version: Version,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    ctx.config.limits.check_key(key)?;
    // Checked before the body is read, so 100-continue clients never send it.
    let plan = plan_upload(ctx, headers, payload, version, PartChecksum::Object)?;
    ctx.store.bucket(bucket).await?;
    ctx.replication
        .check_room(
            plan.declared_len.unwrap_or(0),
            ctx.config.storage.min_free_bytes,
        )
        .await?;
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
    let write = Write {
        bucket,
        key,
        meta,
        precondition: plan.precondition,
        origin: Origin::Local,
        upload: None,
    };
    let meta = ctx.replication.commit(write, headers).await?;
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header("etag", meta.quoted_etag())
        .header("content-length", 0);
    with_checksum(with_object_state(resp, ctx, &meta), meta.checksum.as_ref())
        .body(ResponseBody::Empty)
        .map_err(S3Error::internal)
}
