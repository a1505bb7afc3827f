//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation
//! (`API_ListBuckets.html`, `API_CreateBucket.html`, `API_HeadBucket.html`,
//! `API_DeleteBucket.html`, `API_GetBucketLocation.html`).

use http::{Response, StatusCode};

use super::{S3Response, empty_response, xml_response};
use crate::auth::policy::User;
use crate::body::{RequestBody, ResponseBody};
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::router::{BucketListParams, valid_bucket_name};
use crate::store::{BucketMeta, StoreError};
use crate::time::iso_date;
use crate::xml::{XmlWriter, parse_location_constraint};

/// ListBuckets: the buckets the user may see, filtered by `prefix` and `bucket-region`, in name
/// order, a page of `max-buckets` at a time. The continuation token is the last name returned,
/// base64url-encoded (opaque to clients, as AWS's).
pub async fn list_buckets(
    ctx: &Context,
    user: &User,
    params: &BucketListParams,
) -> S3Result<S3Response> {
    let after = match &params.continuation_token {
        None => None,
        Some(t) => Some(super::list::decode_token(t)?),
    };
    let buckets = ctx.store.list_buckets().await?;
    let mut matching = buckets.iter().filter(|(name, meta)| {
        user.sees_bucket(name, &meta.owner)
            && params.prefix.as_deref().is_none_or(|p| name.starts_with(p))
            && params.region.as_deref().is_none_or(|r| meta.region == r)
            && after.as_deref().is_none_or(|a| name.as_str() > a)
    });
    let limit = params.max_buckets.unwrap_or(usize::MAX);
    let page: Vec<_> = matching.by_ref().take(limit).collect();
    let more = matching.next().is_some();
    let mut w = XmlWriter::new();
    w.root("ListAllMyBucketsResult");
    w.open("Owner");
    w.element("ID", &user.owner_id());
    w.element("DisplayName", &user.access_key);
    w.close("Owner");
    w.open("Buckets");
    for (name, meta) in &page {
        w.open("Bucket");
        w.element("Name", name);
        w.element("CreationDate", &iso_date(meta.created_ms));
        w.element("BucketRegion", &meta.region);
        w.close("Bucket");
    }
    w.close("Buckets");
    if more && let Some((last, _)) = page.last() {
        w.element("ContinuationToken", &super::list::encode_token(last));
    }
    if let Some(p) = &params.prefix {
        w.element("Prefix", p);
    }
    w.close("ListAllMyBucketsResult");
    xml_response(w.finish())
}

pub async fn create_bucket(
    ctx: &Context,
    user: &User,
    bucket: &str,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    if !valid_bucket_name(bucket) {
        return Err(S3ErrorCode::InvalidBucketName.into());
    }
    let xml = body.read_small(ctx.config.limits.max_xml_body).await?;
    let region = ctx.config.server.region();
    let location = parse_location_constraint(&xml)?;
    // With server.region unset any constraint is taken and becomes the bucket's region, as
    // MinIO does, so an SDK set to the app's own region (which sends it) can create buckets.
    let bucket_region = match (location.as_deref(), ctx.config.server.enforced_region()) {
        (Some(location), None) => location,
        (Some(location), Some(_)) if location != region => {
            return Err(incompatible_location(location));
        }
        _ => region,
    };
    match ctx
        .store
        .create_bucket(
            bucket,
            BucketMeta::new(user.owner_id(), bucket_region.to_owned()),
        )
        .await
    {
        Ok(()) => {}
        // AWS's legacy rule: in us-east-1, creating a bucket you already own succeeds again.
        Err(StoreError::BucketAlreadyOwnedByYou) if bucket_region == "us-east-1" => {
            return created(bucket);
        }
        Err(e) => return Err(e.into()),
    }
    if let Err(e) = ctx.replication.bucket_created(bucket).await {
        // Nothing diverges: the bucket exists on both sides or on neither.
        if let Err(undo) = ctx.store.delete_bucket(bucket).await {
            tracing::error!(bucket, error = %undo, "cannot undo a bucket the upstream refused");
        }
        return Err(e);
    }
    created(bucket)
}

fn created(bucket: &str) -> S3Result<S3Response> {
    Response::builder()
        .status(StatusCode::OK)
        .header("location", format!("/{bucket}"))
        .header("content-length", 0)
        .body(ResponseBody::Empty)
        .map_err(S3Error::internal)
}

pub async fn head_bucket(ctx: &Context, bucket: &str) -> S3Result<S3Response> {
    let meta = ctx.store.bucket(bucket).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", meta.region)
        .body(ResponseBody::Empty)
        .map_err(S3Error::internal)
}

pub async fn delete_bucket(ctx: &Context, bucket: &str) -> S3Result<S3Response> {
    match ctx.store.delete_bucket(bucket).await {
        Err(StoreError::BucketNotEmpty)
            if ctx.replication.drop_stale_bucket_copies(bucket).await =>
        {
            ctx.store.delete_bucket(bucket).await?;
        }
        done => done?,
    }
    // Uploads in progress in the bucket go with it (they could complete into a new bucket of
    // the same name otherwise).
    for (id, upload) in ctx.store.uploads().await? {
        if upload.bucket == bucket {
            let _ = ctx.store.abort_upload(&id).await;
        }
    }
    ctx.replication.bucket_deleted(bucket).await;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn get_bucket_location(ctx: &Context, bucket: &str) -> S3Result<S3Response> {
    let meta = ctx.store.bucket(bucket).await?;
    let mut w = XmlWriter::new();
    w.root("LocationConstraint");
    // AWS answers an empty constraint for us-east-1.
    if meta.region != "us-east-1" {
        w.text(&meta.region);
    }
    w.close("LocationConstraint");
    xml_response(w.finish())
}

/// CreateBucket's refusal of a LocationConstraint other than `server.region`, as AWS words it.
fn incompatible_location(location: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidArgument,
        format!(
            "The {location} location constraint is incompatible for the region specific endpoint this request was sent to."
        ),
    )
    .extra("ArgumentName", "LocationConstraint")
    .extra("ArgumentValue", location)
}
