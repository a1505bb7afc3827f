//! POST Object: browser form uploads with a SigV4-signed policy (`RESTObjectPOST.html`,
//! `sigv4-HTTPPOSTConstructPolicy.html`). The form is parsed as a stream; fields before `file`
//! are small and capped, and the file part streams through the hashes to a temp file, never
//! buffered whole. Policy conditions: exact match, `eq`, `starts-with`, `content-length-range`,
//! `${filename}` in the key, `success_action_status` and `success_action_redirect`.

use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use super::put::entity_too_large;
use super::{Context, S3Response, header};
use crate::auth::policy::{Action, Resource};
use crate::auth::sigv4::{self, SigningKey};
use crate::auth::{Users, parse_amz_date};
use crate::body::ResponseBody;
use crate::checksum::{BodyHashes, ChecksumAlgorithm};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::{ContentHeaders, ObjectMeta, Precondition};
use crate::xml::XmlWriter;

/// A form field other than the file is at most this long.
const MAX_FIELD: usize = 64 * 1024;
/// At most this many fields before the file.
const MAX_FIELDS: usize = 100;

fn denied(msg: impl Into<String>) -> S3Error {
    S3Error::with_message(S3ErrorCode::AccessDenied, msg)
}

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

/// The form fields, names lower-cased (S3 matches them case-insensitively).
struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A checked policy: what it allows the file's length to be.
struct Policy {
    length_range: Option<(u64, u64)>,
}

fn condition_text(c: &Value) -> String {
    c.to_string()
}

/// Checks the policy's expiration and every condition against the form (and `bucket`).
fn check_policy(doc: &Value, form: &Form, bucket: &str, now: SystemTime) -> S3Result<Policy> {
    let invalid = || denied("Invalid Policy: Invalid JSON.");
    let expiration = doc
        .get("expiration")
        .and_then(Value::as_str)
        .ok_or_else(|| denied("Invalid Policy: Policy missing expiration."))?;
    let expires = chrono::DateTime::parse_from_rfc3339(expiration)
        .map_err(|_| denied("Invalid Policy: Invalid 'expiration' value."))?;
    if chrono::DateTime::<chrono::Utc>::from(now) > expires {
        return Err(denied("Invalid according to Policy: Policy expired."));
    }
    let conditions = doc
        .get("conditions")
        .and_then(Value::as_array)
        .ok_or_else(|| denied("Invalid Policy: Policy missing conditions."))?;
    let value_of = |field: &str| -> Option<String> {
        let f = field.trim_start_matches('$').to_ascii_lowercase();
        if f == "bucket" {
            Some(bucket.to_owned())
        } else {
            form.get(&f).map(str::to_owned)
        }
    };
    let failed = |c: &Value| {
        denied(format!(
            "Invalid according to Policy: Policy Condition failed: {}",
            condition_text(c)
        ))
    };
    let mut covered: Vec<String> = Vec::new();
    let mut length_range = None;
    for c in conditions {
        match c {
            Value::Object(map) => {
                for (k, v) in map {
                    let want = v.as_str().ok_or_else(invalid)?;
                    covered.push(k.to_ascii_lowercase());
                    if value_of(k).as_deref() != Some(want) {
                        return Err(failed(c));
                    }
                }
            }
            Value::Array(items) => {
                let op = items.first().and_then(Value::as_str).ok_or_else(invalid)?;
                match op.to_ascii_lowercase().as_str() {
                    "content-length-range" => {
                        let n = |i: usize| items.get(i).and_then(Value::as_u64).ok_or_else(invalid);
                        length_range = Some((n(1)?, n(2)?));
                    }
                    "eq" | "starts-with" => {
                        let field = items.get(1).and_then(Value::as_str).ok_or_else(invalid)?;
                        let want = items.get(2).and_then(Value::as_str).ok_or_else(invalid)?;
                        let name = field.trim_start_matches('$').to_ascii_lowercase();
                        covered.push(name.clone());
                        let have = value_of(field).unwrap_or_default();
                        let ok = if op.eq_ignore_ascii_case("eq") {
                            have == want
                        } else if name == "content-type" {
                            // A comma-separated Content-Type must match per value.
                            have.split(',').all(|v| v.trim().starts_with(want))
                        } else {
                            have.starts_with(want)
                        };
                        if !ok {
                            return Err(failed(c));
                        }
                    }
                    _ => return Err(invalid()),
                }
            }
            _ => return Err(invalid()),
        }
    }
    const EXEMPT: [&str; 4] = ["x-amz-signature", "file", "policy", "awsaccesskeyid"];
    for (name, _) in &form.fields {
        if !EXEMPT.contains(&name.as_str())
            && !name.starts_with("x-ignore-")
            && !covered.contains(name)
        {
            return Err(denied(format!(
                "Invalid according to Policy: Extra input fields: {name}"
            )));
        }
    }
    Ok(Policy { length_range })
}

/// Authenticates the form: the policy's SigV4 signature, by the user in `x-amz-credential`.
fn authenticate(
    form: &Form,
    users: &Users,
) -> S3Result<(std::sync::Arc<crate::auth::policy::User>, Value)> {
    let field = |n: &str| {
        form.get(n)
            .ok_or_else(|| bad_form(format!("Bucket POST must contain a field named '{n}'.")))
    };
    let policy_b64 = field("policy")?;
    if field("x-amz-algorithm")? != sigv4::ALGORITHM {
        return Err(bad_form(
            "Only AWS4-HMAC-SHA256 is supported for POST uploads.",
        ));
    }
    let credential = field("x-amz-credential")?;
    let amz_date = field("x-amz-date")?;
    let signature = field("x-amz-signature")?;
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = parts.as_slice() else {
        return Err(bad_form("The x-amz-credential field is malformed."));
    };
    if *service != "s3" {
        return Err(bad_form(
            "The x-amz-credential field names another service than s3.",
        ));
    }
    let user = users
        .get(access_key)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
    let time = parse_amz_date(amz_date)
        .filter(|_| amz_date.starts_with(date))
        .ok_or_else(|| bad_form("The x-amz-date field is malformed."))?;
    let key = SigningKey::derive(user.secret_key.expose(), time, region, service);
    if !sigv4::signatures_equal(&key.sign(policy_b64), signature) {
        return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
    }
    let raw = crate::checksum::decode_base64(policy_b64)
        .ok_or_else(|| denied("Invalid Policy: Invalid Simple-Policy."))?;
    let doc: Value =
        serde_json::from_slice(&raw).map_err(|_| denied("Invalid Policy: Invalid JSON."))?;
    Ok((std::sync::Arc::clone(user), doc))
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
        && !super::put::CANNED_ACLS.contains(&acl)
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
        if out.len() + chunk.len() > MAX_FIELD {
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
            if form.fields.len() >= MAX_FIELDS {
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
        if key.is_empty() || key.len() > ctx.config.limits.max_key_length {
            return Err(S3Error::new(S3ErrorCode::KeyTooLongError));
        }
        if let Some(slot) = form.fields.iter_mut().find(|(k, _)| k == "key") {
            slot.1.clone_from(&key);
        }
        let (user, doc) = authenticate(&form, users)?;
        let policy = check_policy(&doc, &form, bucket, now)?;
        validate_fields(&form)?;
        if !user.allows(Action::Write, Resource::Object { bucket, key: &key }) {
            return Err(S3ErrorCode::AccessDenied.into());
        }
        let max = policy
            .length_range
            .map_or(ctx.config.limits.max_object_size, |(_, hi)| {
                hi.min(ctx.config.limits.max_object_size)
            });
        let mut writer = ctx.store.blob_writer().await?;
        let mut hashes =
            BodyHashes::new(ChecksumAlgorithm::Crc64Nvme).with_sha256(ctx.gateway.is_some());
        while let Some(chunk) = field.chunk().await.map_err(form_error)? {
            let chunk: Bytes = chunk;
            if writer.len() + chunk.len() as u64 > max {
                return Err(entity_too_large(max));
            }
            hashes.update(&chunk);
            writer.write(&chunk).await.map_err(S3Error::internal)?;
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
            Some(xml) => super::acl::parse_tag_set(xml.as_bytes())?,
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
        let meta = crate::gateway::commit_write(
            ctx,
            bucket,
            &key,
            meta,
            Precondition::None,
            headers,
            crate::gateway::Origin::Local,
        )
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn policy(conditions: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"expiration": "2099-01-01T00:00:00.000Z", "conditions": {conditions}}}"#
        ))
        .unwrap()
    }

    /// The conditions of the AWS documentation's POST policy example.
    #[test]
    fn aws_doc_example_policy_conditions() {
        let doc = policy(
            r#"[{"bucket": "sigv4examplebucket"}, ["starts-with", "$key", "user/user1/"],
                {"acl": "public-read"}, {"success_action_redirect": "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html"},
                ["starts-with", "$Content-Type", "image/"], {"x-amz-meta-uuid": "14365123651274"},
                {"x-amz-server-side-encryption": "AES256"}, ["starts-with", "$x-amz-meta-tag", ""],
                {"x-amz-credential": "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"},
                {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, {"x-amz-date": "20151229T000000Z" },
                ["content-length-range", 0, 1048576]]"#,
        );
        let mut f = form(&[
            ("key", "user/user1/photo.jpg"),
            ("acl", "public-read"),
            (
                "success_action_redirect",
                "http://sigv4examplebucket.s3.amazonaws.com/successful_upload.html",
            ),
            ("content-type", "image/jpeg"),
            ("x-amz-meta-uuid", "14365123651274"),
            ("x-amz-server-side-encryption", "AES256"),
            ("x-amz-meta-tag", ""),
            (
                "x-amz-credential",
                "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request",
            ),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-date", "20151229T000000Z"),
            ("policy", "…"),
            ("x-amz-signature", "…"),
        ]);
        let now = SystemTime::now();
        let p = check_policy(&doc, &f, "sigv4examplebucket", now).unwrap();
        assert_eq!(p.length_range, Some((0, 1_048_576)));
        assert!(check_policy(&doc, &f, "otherbucket", now).is_err());
        f.fields[0].1 = "user/user2/photo.jpg".into();
        let e = check_policy(&doc, &f, "sigv4examplebucket", now)
            .err()
            .unwrap();
        assert!(
            e.message.contains("Policy Condition failed"),
            "{}",
            e.message
        );
        f.fields[0].1 = "user/user1/photo.jpg".into();
        f.fields.push(("x-amz-meta-extra".into(), "x".into()));
        let e = check_policy(&doc, &f, "sigv4examplebucket", now)
            .err()
            .unwrap();
        assert!(e.message.contains("Extra input fields"), "{}", e.message);
    }

    #[test]
    fn expired_policy_is_refused() {
        let doc: Value =
            serde_json::from_str(r#"{"expiration": "2001-01-01T00:00:00Z", "conditions": []}"#)
                .unwrap();
        let e = check_policy(&doc, &form(&[]), "b", SystemTime::now())
            .err()
            .unwrap();
        assert_eq!(e.code, S3ErrorCode::AccessDenied);
        assert!(e.message.contains("Policy expired"));
    }
}
