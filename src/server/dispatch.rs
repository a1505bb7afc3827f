//! One S3 request, from its head to its answer: a request id and a span, the header limit,
//! the CORS preflight, authentication (or a public bucket's anonymous read), routing, the grant
//! check, the rate limit and the handler; every failure rendered as S3 XML here, and the
//! metrics and the access log line (`access.rs`, written when the body is done) at the end.

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tracing::Instrument;

use super::access::{AccessRecord, client_ip};
use super::{App, request_id};
use crate::auth;
use crate::auth::PayloadMode;
use crate::auth::policy::{Action, Resource};
use crate::body::{CountedBody, RequestBody, ResponseBody};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::handlers::{
    S3Response, acl, attributes, bucket, copy, cors, delete, get, list, multipart, multipart_list,
    post, put,
};
use crate::router::{self, Operation, Target};

/// What dispatch learns of a request on the way, for the metrics and the access log.
#[derive(Default)]
struct Tally {
    op: &'static str,
    user: String,
    bytes_in: u64,
}

/// The access line of a request not answered yet: written as `499 ClientClosed` if the
/// request is dropped first (its client went away while it was being handled).
struct Unanswered {
    record: Option<AccessRecord>,
    tally: Tally,
}

impl Unanswered {
    /// The record, with what dispatch learnt, once the request has an answer.
    fn answered(&mut self) -> Option<AccessRecord> {
        let mut r = self.record.take()?;
        r.operation = self.tally.op;
        r.user = std::mem::take(&mut self.tally.user);
        r.bytes_in = self.tally.bytes_in;
        Some(r)
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(r) = self.answered() {
            r.finish(0);
        }
    }
}

pub(super) async fn handle(
    app: &App,
    req: Request<Incoming>,
    remote: SocketAddr,
) -> Response<CountedBody> {
    let started = Instant::now();
    let busy = crate::load::Busy::enter();
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = request_id();
    let (parts, incoming) = req.into_parts();
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .map(str::to_owned);
    let target = router::target(
        host.as_deref(),
        parts.uri.path(),
        &app.ctx.config.server.domains,
    );
    let is_head = parts.method == Method::HEAD;
    // botocore (boto/botocore#3755) leaves a pooled connection stalled after an
    // `Expect: 100-continue` request is answered without a 100 (an empty PUT, or a refusal).
    // Closing that connection costs one reconnect and spares the client a 30 s stall.
    let expects_continue = parts
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let empty_body = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    let mut pending = Unanswered {
        record: Some(AccessRecord {
            time,
            started,
            request_id: id.clone(),
            client: client_ip(
                remote,
                &parts.headers,
                &app.ctx.config.server.trusted_proxies,
            ),
            user: String::new(),
            operation: "Unknown",
            method: parts.method.to_string(),
            bucket: target.bucket.clone().unwrap_or_default(),
            key: target.key.clone().unwrap_or_default(),
            status: 499,
            bytes_in: 0,
            error: "ClientClosed",
            cache: String::new(),
            sync: String::new(),
            node: std::sync::Arc::clone(&app.node_name),
        }),
        tally: Tally {
            op: "Unknown",
            ..Tally::default()
        },
    };
    // Every line the request causes, in the gateway and the store too, carries these fields;
    // `op` is filled in once the request is routed.
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        op = tracing::field::Empty,
        bucket = target.bucket.as_deref().unwrap_or(""),
        key = target.key.as_deref().unwrap_or(""),
    );
    let result = dispatch(app, &parts, incoming, &target, &mut pending.tally)
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    let mut error = "";
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            error = e.code.as_str();
            error_response(&e, &target, &id, is_head)
        }
    };
    if parts.method != Method::OPTIONS {
        cors::decorate(
            &app.ctx,
            target.bucket.as_deref(),
            parts.method.as_str(),
            &parts.headers,
            resp.headers_mut(),
        )
        .await;
    }
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-amz-request-id", v.clone());
        h.insert("x-amz-id-2", v);
    }
    h.insert("server", HeaderValue::from_static("Lifeboat"));
    h.insert("x-lifeboat-node", app.node.clone());
    if expects_continue && (empty_body || !resp.status().is_success()) {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = resp.status().as_u16();
    crate::metrics::request(pending.tally.op, status, started.elapsed());
    tracing::debug!(op = pending.tally.op, status, "answered");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let record = pending.answered().map(|r| AccessRecord {
        status,
        error,
        cache: header("x-cache"),
        sync: header("x-lifeboat-sync"),
        ..r
    });
    let mut resp = CountedBody::wrap(resp);
    resp.body_mut().on_end(Box::new(move |bytes_out| {
        drop(busy);
        if let Some(r) = record {
            r.finish(bytes_out);
        }
    }));
    resp
}

fn error_response(
    e: &S3Error,
    target: &Target,
    request_id: &str,
    is_head: bool,
) -> Response<ResponseBody> {
    let mut b = Response::builder().status(e.code.status());
    for (name, value) in &e.headers {
        b = b.header(*name, value);
    }
    let built = if is_head || e.code.status() == StatusCode::NOT_MODIFIED {
        b.body(ResponseBody::Empty)
    } else {
        let xml = e.to_xml(&target.resource(), request_id);
        b.header("content-type", "application/xml")
            .header("content-length", xml.len())
            .body(ResponseBody::full(xml))
    };
    built.unwrap_or_else(|_| {
        let mut r = Response::new(ResponseBody::Empty);
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// The recorded owner of `bucket`: `None` when there is no bucket or it does not exist (the
/// handler answers NoSuchBucket); an unreadable record counts as owned by no one.
async fn bucket_owner(ctx: &crate::context::Context, bucket: Option<&str>) -> Option<String> {
    let bucket = bucket?;
    match ctx.store.bucket(bucket).await {
        Ok(meta) => Some(meta.owner),
        Err(crate::store::StoreError::NoSuchBucket) => None,
        Err(_) => Some(String::new()),
    }
}

/// A presigned upload URL from the admin API without a signed Content-Length carries its size
/// limit as a signed query parameter: the body must declare its length, within the limit.
fn check_signed_max_size(query: &[(String, String)], headers: &http::HeaderMap) -> S3Result<()> {
    let param = crate::admin::presign::MAX_SIZE_PARAM;
    let Some((_, max)) = query.iter().find(|(k, _)| k == param) else {
        return Ok(());
    };
    let max: u64 = max
        .parse()
        .map_err(|_| S3Error::invalid_argument("The size limit is not a number.", param, max))?;
    let len = headers
        .get("x-amz-decoded-content-length")
        .or_else(|| headers.get(http::header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| S3Error::new(S3ErrorCode::MissingContentLength))?;
    if len > max {
        return Err(S3Error::entity_too_large(max));
    }
    Ok(())
}

fn header_block_size(parts: &http::request::Parts) -> usize {
    let mut n = parts.method.as_str().len() + parts.uri.to_string().len() + 12;
    for (k, v) in &parts.headers {
        n += k.as_str().len() + v.len() + 4;
    }
    n
}

/// Whether a request carries no credentials at all (no header, no presigned query).
fn is_anonymous(parts: &http::request::Parts, query: &[(String, String)]) -> bool {
    !parts.headers.contains_key(http::header::AUTHORIZATION)
        && !query.iter().any(|(k, _)| {
            matches!(
                k.as_str(),
                "X-Amz-Algorithm"
                    | "X-Amz-Credential"
                    | "X-Amz-Signature"
                    | "AWSAccessKeyId"
                    | "Signature"
            )
        })
}

/// Whether `[[buckets]]` opens `op` to anonymous clients: GET and HEAD of an object in a
/// `public_read` bucket, listing a `public_list` one.
fn is_public(rules: &[crate::config::BucketRule], op: &Operation) -> bool {
    let rule = |b: &str| rules.iter().find(|r| r.name == b);
    match op {
        // As AWS, the response-* overrides are not for anonymous requests (they would let a
        // link serve an uploaded file as HTML from this origin).
        Operation::GetObject {
            bucket, overrides, ..
        } => overrides.is_empty() && rule(bucket).is_some_and(|r| r.public_read),
        Operation::HeadObject { bucket, .. } => rule(bucket).is_some_and(|r| r.public_read),
        Operation::ListObjects { bucket, .. } | Operation::ListObjectsV2 { bucket, .. } => {
            rule(bucket).is_some_and(|r| r.public_list)
        }
        _ => false,
    }
}

async fn dispatch(
    app: &App,
    parts: &http::request::Parts,
    incoming: Incoming,
    target: &Target,
    tally: &mut Tally,
) -> S3Result<S3Response> {
    let ctx = &app.ctx;
    let limits = &ctx.config.limits;
    if header_block_size(parts) > limits.max_header_bytes {
        return Err(S3ErrorCode::RequestHeaderSectionTooLarge.into());
    }
    // An alias of another URI (a bad %-escape, invalid UTF-8) names no key.
    if auth::sigv4::decode_path(parts.uri.path()).is_err() {
        return Err(S3ErrorCode::InvalidURI.into());
    }
    // A browser's CORS preflight carries no credentials.
    if parts.method == Method::OPTIONS {
        tally.op = "PreflightRequest";
        tracing::Span::current().record("op", "PreflightRequest");
        return cors::preflight(
            ctx,
            target.bucket.as_deref(),
            target.key.as_deref(),
            &parts.headers,
        )
        .await;
    }
    let raw_query = parts.uri.query().unwrap_or("");
    let query = auth::sigv4::parse_query(raw_query);
    let form_upload = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"));
    let routed = router::route(
        &parts.method,
        target,
        &query,
        parts
            .headers
            .get("x-amz-copy-source")
            .and_then(|v| v.to_str().ok()),
        form_upload,
    );
    // A browser form upload authenticates with the signed policy inside the form.
    if let Ok(Operation::PostObject { bucket }) = &routed
        && !parts.headers.contains_key(http::header::AUTHORIZATION)
    {
        tally.op = "PostObject";
        tracing::Span::current().record("op", "PostObject");
        return post::post_object(ctx, &app.users, bucket, &parts.headers, incoming).await;
    }
    // A public bucket's objects (or listing) need no credentials; everything else does.
    let public = is_anonymous(parts, &query)
        && routed
            .as_ref()
            .is_ok_and(|op| is_public(&ctx.config.buckets, op));
    let authenticated = match public {
        true => auth::Authenticated {
            user: std::sync::Arc::clone(&app.anonymous),
            payload: PayloadMode::Unsigned,
        },
        false => auth::authenticate(
            &auth::RequestParts {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                query: &query,
                headers: &parts.headers,
                authority: parts.uri.authority().map(|a| a.as_str()),
                body_sha256: None,
                virtual_bucket: target
                    .virtual_host
                    .then_some(())
                    .and(target.bucket.as_deref()),
            },
            &app.users,
            &app.auth,
            SystemTime::now(),
        )?,
    };
    let user = &authenticated.user;
    tally.user.clone_from(&user.access_key);
    let op = routed?;
    tally.op = op.name();
    tracing::Span::current().record("op", op.name());
    if let Some(rate) = &app.rate
        && !public
        && !rate.admit(&user.access_key)
    {
        return Err(S3ErrorCode::SlowDown.into());
    }
    // A bucket that exists only upstream is adopted first, owned by no user here: it is open
    // to users whose grants name it.
    if let Some(b) = op.bucket()
        && !matches!(op, Operation::CreateBucket { .. })
    {
        ctx.replication
            .bucket_used(b, "", ctx.config.server.region())
            .await;
    }
    // Only a user limited to its own buckets needs the owner (a store read); CreateBucket of an
    // existing bucket is the store's to answer (409, as AWS), not 403.
    let owner = match op {
        Operation::CreateBucket { .. } => None,
        _ if !user.own_buckets => None,
        _ => bucket_owner(ctx, op.bucket()).await,
    };
    if !public && !user.allows(op.action(), op.resource(), owner.as_ref().into()) {
        return Err(S3ErrorCode::AccessDenied.into());
    }
    if let Operation::CopyObject { source, .. } | Operation::UploadPartCopy { source, .. } = &op {
        let source_owner = match user.own_buckets {
            true => bucket_owner(ctx, Some(&source.bucket)).await,
            false => None,
        };
        let resource = Resource::Object {
            bucket: &source.bucket,
            key: &source.key,
        };
        if !user.allows(Action::Read, resource, source_owner.as_ref().into()) {
            return Err(S3ErrorCode::AccessDenied.into());
        }
    }
    if matches!(op, Operation::PutObject { .. }) {
        check_signed_max_size(&query, &parts.headers)?;
    }
    let payload = &authenticated.payload;
    let mut body = RequestBody::new(incoming, payload, limits.body_idle);
    let answer = handle_operation(ctx, parts, user, &op, payload, &mut body).await;
    tally.bytes_in = body.received();
    answer
}

/// The handler of each operation.
async fn handle_operation(
    ctx: &crate::context::Context,
    parts: &http::request::Parts,
    user: &crate::auth::policy::User,
    op: &Operation,
    payload: &PayloadMode,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let headers = &parts.headers;
    match op {
        Operation::ListBuckets { params } => bucket::list_buckets(ctx, user, params).await,
        Operation::CreateBucket { bucket } => bucket::create_bucket(ctx, user, bucket, body).await,
        Operation::HeadBucket { bucket } => bucket::head_bucket(ctx, bucket).await,
        Operation::DeleteBucket { bucket } => bucket::delete_bucket(ctx, bucket).await,
        Operation::GetBucketLocation { bucket } => bucket::get_bucket_location(ctx, bucket).await,
        Operation::GetBucketVersioning { bucket } => acl::get_bucket_versioning(ctx, bucket).await,
        Operation::GetBucketAcl { bucket } => acl::get_bucket_acl(ctx, bucket).await,
        Operation::GetBucketCors { bucket } => cors::get_bucket_cors(ctx, bucket).await,
        Operation::PutBucketCors { bucket } => {
            cors::put_bucket_cors(ctx, bucket, headers, body).await
        }
        Operation::DeleteBucketCors { bucket } => cors::delete_bucket_cors(ctx, bucket).await,
        Operation::PutBucketAcl { bucket } => acl::put_bucket_acl(ctx, bucket, headers, body).await,
        Operation::ListObjects { bucket, params } => {
            list::list_objects(ctx, bucket, params, false).await
        }
        Operation::ListObjectsV2 { bucket, params } => {
            list::list_objects(ctx, bucket, params, true).await
        }
        Operation::ListObjectVersions { bucket, params } => {
            list::list_versions(ctx, bucket, params).await
        }
        Operation::ListMultipartUploads { bucket, params } => {
            multipart_list::list_uploads(ctx, bucket, params).await
        }
        Operation::DeleteObjects { bucket } => {
            delete::delete_objects(ctx, user, bucket, headers, body).await
        }
        Operation::PostObject { .. } => Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "A POST form upload carries its signature in the form, not in an Authorization header.",
        )),
        Operation::PutObject { bucket, key } => {
            put::put_object(ctx, bucket, key, headers, payload, parts.version, body).await
        }
        Operation::CopyObject {
            bucket,
            key,
            source,
        } => copy::copy_object(ctx, bucket, key, source, headers).await,
        Operation::GetObject {
            bucket,
            key,
            overrides,
            part_number,
        } => get::get_object(ctx, bucket, key, headers, overrides, *part_number, false).await,
        Operation::HeadObject {
            bucket,
            key,
            part_number,
        } => get::get_object(ctx, bucket, key, headers, &Vec::new(), *part_number, true).await,
        Operation::DeleteObject { bucket, key } => {
            delete::delete_object(ctx, bucket, key, headers).await
        }
        Operation::GetObjectAcl { bucket, key } => acl::get_object_acl(ctx, bucket, key).await,
        Operation::PutObjectAcl { bucket, key } => {
            acl::put_object_acl(ctx, bucket, key, headers, body).await
        }
        Operation::GetObjectTagging { bucket, key } => acl::get_tagging(ctx, bucket, key).await,
        Operation::GetObjectAttributes { bucket, key } => {
            attributes::get_object_attributes(ctx, bucket, key, headers).await
        }
        Operation::PutObjectTagging { bucket, key } => {
            acl::put_tagging(ctx, bucket, key, headers, body).await
        }
        Operation::DeleteObjectTagging { bucket, key } => {
            acl::delete_tagging(ctx, bucket, key).await
        }
        Operation::CreateMultipartUpload { bucket, key } => {
            multipart::create(ctx, user, bucket, key, headers).await
        }
        Operation::UploadPart {
            bucket,
            key,
            upload_id,
            part_number,
        } => {
            multipart::upload_part(
                ctx,
                bucket,
                key,
                upload_id,
                *part_number,
                headers,
                payload,
                parts.version,
                body,
            )
            .await
        }
        Operation::UploadPartCopy {
            bucket,
            key,
            upload_id,
            part_number,
            source,
        } => {
            multipart::upload_part_copy(ctx, bucket, key, upload_id, *part_number, source, headers)
                .await
        }
        Operation::CompleteMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::complete(ctx, bucket, key, upload_id, headers, body).await,
        Operation::AbortMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::abort(ctx, bucket, key, upload_id).await,
        Operation::ListParts {
            bucket,
            key,
            upload_id,
            max_parts,
            marker,
        } => multipart_list::list_parts(ctx, bucket, key, upload_id, *max_parts, *marker).await,
    }
}
