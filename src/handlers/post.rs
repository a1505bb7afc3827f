//! POST Object: browser form uploads with a SigV4-signed policy (`RESTObjectPOST.html`,
//! `sigv4-HTTPPOSTConstructPolicy.html`). The form is parsed as a stream; fields before `file`
//! are small and capped, and the file part streams through the hashes to a temp file, never
//! buffered whole. The policy and its signature are checked by `auth::post_policy`; this module
//! reads the form, `${filename}` in the key, `success_action_status` and
//! `success_action_redirect`.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::S3Response;
use super::headers::{CANNED_ACLS, header, parse_tag_set};
use crate::auth::Users;
use crate::auth::policy::{Action, BucketOwner, Resource};
use crate::auth::post_policy::{Form, authenticate, check_policy};
use crate::body::ResponseBody;
use crate::checksum::{BodyHashes, ChecksumAlgorithm};
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::limits::{MAX_FORM_FIELD, MAX_FORM_FIELDS};
use crate::replication::{Origin, Write};
use crate::store::{ContentHeaders, ObjectMeta, Precondition};
use crate::xml::XmlWriter;

fn bad_form(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, msg)
}

fn form_error(e: multer::Error) -> S3Error {
    match e {
        multer::Error::StreamReadFailed(_) => S3Error::new(S3ErrorCode::IncompleteBody),
        other => S3Error::with_message(
            S3ErrorCode::MalformedPOSTRequest,
            format!(
                "The body of your POST request is not well-formed multipart/form-data: {other}"
            ),
        ),
    }
}

/// Form fields become response headers later (metadata, content headers, the redirect):
/// values a header cannot carry are refused now, not when the object is read.
fn validate_fields(form: &Form) -> S3Result<()> {
    const HEADERS: [&str; 6] = [
        "content-type",
        "cache-control",
        "content-disposition",
        "content-encoding",
        "expires",
        "success_action_redirect",
    ];
    for (name, value) in &form.fields {
        let is_header = HEADERS.contains(&name.as_str()) || name.starts_with("x-amz-meta-");
        if is_header
            && (http::HeaderName::from_bytes(name.as_bytes()).is_err()
                && name != "success_action_redirect"
                || http::HeaderValue::from_str(value).is_err())
        {
            return Err(bad_form(format!(
                "The form field {name} cannot be stored as a header."
            )));
        }
    }
    if let Some(acl) = form.get("acl")
        && !CANNED_ACLS.contains(&acl)
    {
        return Err(S3Error::invalid_argument("Invalid canned ACL", "acl", acl));
    }
    if let Some(sse) = form.get("x-amz-server-side-encryption")
        && sse != "AES256"
    {
        return Err(S3Error::invalid_argument(
            "The encryption method specified is not supported",
            "x-amz-server-side-encryption",
            sse,
        ));
    }
    Ok(())
}

async fn read_field(field: &mut multer::Field<'_>) -> S3Result<String> {
    let mut out = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(form_error)? {
        if out.len() + chunk.len() > MAX_FORM_FIELD {
            return Err(S3Error::with_message(
                S3ErrorCode::MaxMessageLengthExceeded,
                "A form field is too long.",
            ));
        }
        out.extend_from_slice(&chunk);
    }
    String::from_utf8(out).map_err(|_| bad_form("Form fields must be UTF-8."))
}

pub async fn post_object(
    ctx: &Context,
    users: &Users,
    bucket: &str,
    headers: &HeaderMap,
    incoming: Incoming,
) -> S3Result<S3Response> {
    let content_type = header(headers, "content-type").unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(form_error)?;
    ctx.store.bucket(bucket).await?;
    let stream = incoming.into_data_stream();
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = Form { fields: Vec::new() };
    let now = SystemTime::now();
    loop {
        let Some(mut field) = multipart.next_field().await.map_err(form_error)? else {
            return Err(bad_form(
                "POST requires exactly one file upload per request.",
            ));
        };
        let name = field.name().unwrap_or("").to_ascii_lowercase();
        if name != "file" {
            if form.fields.len() >= MAX_FORM_FIELDS {
                return Err(bad_form("Too many form fields."));
            }
            let value = read_field(&mut field).await?;
            form.fields.push((name, value));
            continue;
        }
        let filename = field.file_name().unwrap_or("").to_owned();
        let part_type = field.content_type().map(ToString::to_string);
        let key_template = form
            .get("key")
            .ok_or_else(|| bad_form("Bucket POST must contain a field named 'key'."))?
            .to_owned();
        let key = key_template.replace("${filename}", &filename);
        if key.is_empty() {
            return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
        }
        ctx.config.limits.check_key(&key)?;
        if let Some(slot) = form.fields.iter_mut().find(|(k, _)| k == "key") {
            slot.1.clone_from(&key);
        }
        let (user, doc) = authenticate(
            &form,
            users,
            ctx.config.server.sigv2,
            ctx.config.server.enforced_region(),
        )?;
        let policy = check_policy(&doc, &form, bucket, now)?;
        validate_fields(&form)?;
        let owner = ctx.store.bucket(bucket).await?.owner;
        if !user.allows(
            Action::Write,
            Resource::Object { bucket, key: &key },
            BucketOwner::Id(&owner),
        ) {
            return Err(S3ErrorCode::AccessDenied.into());
        }
        let max = policy
            .length_range
            .map_or(ctx.config.limits.max_object_size, |(_, hi)| {
                hi.min(ctx.config.limits.max_object_size)
            });
        // The file's size is known only once it is read; the form's declared length (capped
        // at what the policy allows) bounds it, and the room is checked before it is written.
        let declared = header(headers, "content-length")
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |n| n.min(max));
        ctx.replication
            .check_room(declared, ctx.config.storage.min_free_bytes)
            .await?;
        let mut writer = ctx.store.blob_writer().await?;
        let mut hashes = BodyHashes::new(ChecksumAlgorithm::Crc64Nvme)
            .with_sha256(ctx.replication.needs_sha256());
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            let chunk: Bytes = chunk;
            if writer.len() + chunk.len() as u64 > max {
                return Err(S3Error::entity_too_large(max));
            }
            hashes.update(&chunk);
            writer.write(&chunk).await.map_err(S3Error::from_io)?;
        }
        let size = writer.len();
        if let Some((lo, _)) = policy.length_range
            && size < lo
        {
            return Err(S3Error::new(S3ErrorCode::EntityTooSmall)
                .extra("ProposedSize", size.to_string())
                .extra("MinSizeAllowed", lo.to_string()));
        }
        let digests = hashes.finish();
        if let Some(want) = form.get("content-md5") {
            let want = crate::checksum::decode_content_md5(want)
                .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidDigest))?;
            if want != digests.md5 {
                return Err(S3ErrorCode::BadDigest.into());
            }
        }
        let tags = match form.get("tagging") {
            Some(xml) => parse_tag_set(xml.as_bytes())?,
            None => Vec::new(),
        };
        let user_metadata = form
            .fields
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("x-amz-meta-")
                    .map(|n| (n.to_owned(), v.clone()))
            })
            .collect();
        let get = |n: &str| form.get(n).map(str::to_owned);
        let content = ContentHeaders {
            content_type: get("content-type").or(part_type),
            cache_control: get("cache-control"),
            content_disposition: get("content-disposition"),
            content_encoding: get("content-encoding"),
            content_language: None,
            expires: get("expires"),
        };
        let acl = get("acl");
        let blob = ctx.store.finish_blob(writer).await?;
        let meta = ObjectMeta {
            content,
            user_metadata,
            tags,
            acl,
            sse: get("x-amz-server-side-encryption"),
            ..ObjectMeta::single(&blob, digests.md5, digests.checksum, digests.sha256)
        };
        let write = Write {
            bucket,
            key: &key,
            meta,
            precondition: Precondition::None,
            origin: Origin::Local,
            upload: None,
        };
        let meta = ctx.replication.commit(write, headers).await?;
        let host = header(headers, "host").unwrap_or("localhost");
        return respond(&form, host, bucket, &key, &meta);
    }
}

fn respond(
    form: &Form,
    host: &str,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
) -> S3Result<S3Response> {
    use crate::auth::sigv4::uri_encode;
    // The object's full URL, as S3 puts in Location.
    let location = format!("http://{host}/{bucket}/{}", uri_encode(key, false));
    let redirect = form
        .get("success_action_redirect")
        .or_else(|| form.get("redirect"))
        .filter(|r| !r.is_empty());
    if let Some(url) = redirect {
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            uri_encode(bucket, true),
            uri_encode(key, true),
            uri_encode(&meta.quoted_etag(), true)
        );
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header("location", target)
            .header("etag", meta.quoted_etag())
            .body(ResponseBody::Empty)
            .map_err(S3Error::internal);
    }
    let b = Response::builder()
        .header("etag", meta.quoted_etag())
        .header("location", &location);
    match form.get("success_action_status") {
        Some("200") => b.status(StatusCode::OK).body(ResponseBody::Empty),
        Some("201") => {
            let mut w = XmlWriter::new();
            w.open("PostResponse");
            w.element("Location", &location);
            w.element("Bucket", bucket);
            w.element("Key", key);
            w.element("ETag", &meta.quoted_etag());
            w.close("PostResponse");
            let xml = w.finish();
            b.status(StatusCode::CREATED)
                .header("content-type", "application/xml")
                .header("content-length", xml.len())
                .body(ResponseBody::full(xml))
        }
        _ => b.status(StatusCode::NO_CONTENT).body(ResponseBody::Empty),
    }
    .map_err(S3Error::internal)
}
