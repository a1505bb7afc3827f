//! Minimal ACLs and tags: canned `x-amz-acl` is accepted and stored; GetObjectAcl and
//! GetBucketAcl answer the owner's FULL_CONTROL (plus AllUsers READ for public-read);
//! PutObjectAcl takes a canned ACL. Object tagging (`API_PutObjectTagging.html`, …) is stored
//! with the object. GetBucketVersioning answers "never enabled".

use http::{HeaderMap, StatusCode};

use super::headers::{check_body_digests, parse_acl, parse_tag_set};
use super::{S3Response, empty_response, xml_response};
use crate::body::RequestBody;
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::xml::XmlWriter;

fn acl_xml(owner: &str, acl: Option<&str>) -> String {
    let mut w = XmlWriter::new();
    w.root("AccessControlPolicy");
    w.open("Owner");
    w.element("ID", owner);
    w.element("DisplayName", owner);
    w.close("Owner");
    w.open("AccessControlList");
    let grant = |w: &mut XmlWriter, grantee: &dyn Fn(&mut XmlWriter), perm: &str| {
        w.open("Grant");
        grantee(w);
        w.element("Permission", perm);
        w.close("Grant");
    };
    grant(
        &mut w,
        &|w| {
            w.text_raw("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">");
            w.element("ID", owner);
            w.element("DisplayName", owner);
            w.close("Grantee");
        },
        "FULL_CONTROL",
    );
    let all_users = |w: &mut XmlWriter| {
        w.text_raw(
            "<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"Group\">",
        );
        w.element("URI", "http://acs.amazonaws.com/groups/global/AllUsers");
        w.close("Grantee");
    };
    match acl {
        Some("public-read") => grant(&mut w, &all_users, "READ"),
        Some("public-read-write") => {
            grant(&mut w, &all_users, "READ");
            grant(&mut w, &all_users, "WRITE");
        }
        _ => {}
    }
    w.close("AccessControlList");
    w.close("AccessControlPolicy");
    w.finish()
}

pub async fn get_bucket_acl(ctx: &Context, bucket: &str) -> S3Result<S3Response> {
    let b = ctx.store.bucket(bucket).await?;
    xml_response(acl_xml(&b.owner, None))
}

/// Only canned ACLs in `x-amz-acl` are taken; an ACL document in the body is not.
async fn canned_only(
    ctx: &Context,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> S3Result<String> {
    let acl = parse_acl(headers)?;
    let doc = body.read_small(ctx.config.limits.max_xml_body).await?;
    match acl {
        Some(a) if doc.iter().all(u8::is_ascii_whitespace) => Ok(a),
        _ => Err(S3Error::with_message(
            S3ErrorCode::NotImplemented,
            "Only canned ACLs in the x-amz-acl header are implemented by Lifeboat.",
        )),
    }
}

pub async fn put_bucket_acl(
    ctx: &Context,
    bucket: &str,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    ctx.store.bucket(bucket).await?;
    canned_only(ctx, headers, body).await?;
    empty_response(StatusCode::OK)
}

pub async fn get_object_acl(ctx: &Context, bucket: &str, key: &str) -> S3Result<S3Response> {
    let owner = ctx.store.bucket(bucket).await?.owner;
    let meta = ctx.store.object(bucket, key).await?;
    xml_response(acl_xml(&owner, meta.acl.as_deref()))
}

pub async fn put_object_acl(
    ctx: &Context,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let acl = canned_only(ctx, headers, body).await?;
    ctx.store
        .update_object(bucket, key, move |m| m.acl = Some(acl))
        .await?;
    empty_response(StatusCode::OK)
}

pub async fn get_tagging(ctx: &Context, bucket: &str, key: &str) -> S3Result<S3Response> {
    let meta = ctx.store.object(bucket, key).await?;
    let mut w = XmlWriter::new();
    w.root("Tagging");
    w.open("TagSet");
    for (k, v) in &meta.tags {
        w.open("Tag");
        w.element("Key", k);
        w.element("Value", v);
        w.close("Tag");
    }
    w.close("TagSet");
    w.close("Tagging");
    xml_response(w.finish())
}

pub async fn put_tagging(
    ctx: &Context,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let raw = body.read_small(ctx.config.limits.max_xml_body).await?;
    check_body_digests(headers, &raw)?;
    let tags = parse_tag_set(&raw)?;
    ctx.store
        .update_object(bucket, key, move |m| m.tags = tags)
        .await?;
    empty_response(StatusCode::OK)
}

pub async fn delete_tagging(ctx: &Context, bucket: &str, key: &str) -> S3Result<S3Response> {
    ctx.store
        .update_object(bucket, key, |m| m.tags.clear())
        .await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn get_bucket_versioning(ctx: &Context, bucket: &str) -> S3Result<S3Response> {
    ctx.store.bucket(bucket).await?;
    let mut w = XmlWriter::new();
    w.root("VersioningConfiguration");
    w.close("VersioningConfiguration");
    xml_response(w.finish())
}
