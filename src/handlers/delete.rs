//! DeleteObject and DeleteObjects (`API_DeleteObject.html`, `API_DeleteObjects.html`).
//! DeleteObjects takes at most `limits.max_delete_keys` keys, honours Quiet mode, reports a
//! per-key `<Error>`, and accepts Content-MD5 or any `x-amz-checksum-*` over its body.

use http::{HeaderMap, StatusCode};

use super::headers::check_body_digests;
use super::{S3Response, empty_response, xml_response};
use crate::auth::policy::{Action, BucketOwner, Resource, User};
use crate::body::RequestBody;
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::xml::{self, XmlWriter};

pub async fn delete_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
) -> S3Result<S3Response> {
    ctx.replication.delete(bucket, key, headers).await?;
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn delete_objects(
    ctx: &Context,
    user: &User,
    bucket: &str,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let raw = body.read_small(ctx.config.limits.max_xml_body).await?;
    check_body_digests(headers, &raw)?;
    let root = xml::parse(&raw)?;
    if root.name != "Delete" {
        return Err(S3ErrorCode::MalformedXML.into());
    }
    let quiet = root.child_text("Quiet").is_some_and(|q| q.trim() == "true");
    // (key, VersionId): in a bucket that never had versioning the only version is `null`.
    // `x-amz-bypass-governance-retention` is accepted and has nothing to bypass.
    let keys: Vec<(&str, Option<&str>)> = root
        .children_named("Object")
        .map(|o| {
            o.child_text("Key")
                .map(|k| (k, o.child_text("VersionId").map(str::trim)))
                .ok_or_else(|| S3Error::new(S3ErrorCode::MalformedXML))
        })
        .collect::<S3Result<_>>()?;
    if keys.is_empty() || keys.len() > ctx.config.limits.max_delete_keys {
        return Err(S3Error::with_message(
            S3ErrorCode::MalformedXML,
            format!(
                "The XML you provided was not well-formed or did not validate against our published schema: \
                 a Delete request names between 1 and {} keys.",
                ctx.config.limits.max_delete_keys
            ),
        ));
    }
    let owner = ctx.store.bucket(bucket).await?.owner;
    let mut w = XmlWriter::new();
    w.root("DeleteResult");
    for (key, version) in keys {
        let outcome = if !user.allows(
            Action::Delete,
            Resource::Object { bucket, key },
            BucketOwner::Id(&owner),
        ) {
            Err(S3Error::new(S3ErrorCode::AccessDenied))
        } else if version.is_some_and(|v| v != "null") {
            Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Invalid version id specified",
            ))
        } else {
            ctx.replication.delete(bucket, key, headers).await
        };
        match outcome {
            Ok(()) => {
                if !quiet {
                    w.open("Deleted");
                    w.element("Key", key);
                    if let Some(v) = version {
                        w.element("VersionId", v);
                    }
                    w.close("Deleted");
                }
            }
            Err(e) => {
                w.open("Error");
                w.element("Key", key);
                if let Some(v) = version {
                    w.element("VersionId", v);
                }
                w.element("Code", e.code.as_str());
                w.element("Message", &e.message);
                w.close("Error");
            }
        }
    }
    w.close("DeleteResult");
    xml_response(w.finish())
}
