//! Bucket CORS (`API_PutBucketCors.html`, `cors.html`): PutBucketCors, GetBucketCors and
//! DeleteBucketCors store a bucket's rules (locally; they are not forwarded upstream); a
//! preflight `OPTIONS` is answered from them without authentication, and every answer to a
//! request with an `Origin` carries the `Access-Control-*` headers of the rule that allows it.
//! A bucket without rules of its own uses `server.cors_origins`. The rules themselves are
//! `crate::cors`.

use http::{HeaderMap, StatusCode};

use super::headers::check_body_digests;
use super::{S3Response, empty_response, xml_response};
use crate::body::{RequestBody, ResponseBody};
use crate::context::Context;
use crate::cors::{self, CorsConfig};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::store::StoreError;

/// The rules that govern `bucket`: its own, else the server's default; `Err` says which
/// refusal a preflight gets when there are none.
async fn rules(ctx: &Context, bucket: &str) -> Result<CorsConfig, &'static str> {
    let own = match ctx.store.bucket(bucket).await {
        Ok(meta) => meta.cors,
        Err(StoreError::NoSuchBucket) => return Err(cors::NO_SUCH_BUCKET),
        Err(_) => None,
    };
    match own {
        Some(c) if !c.is_empty() => Ok(c),
        _ => {
            let default = CorsConfig::server_default(&ctx.config.server.cors_origins);
            if default.is_empty() {
                Err(cors::NOT_ENABLED)
            } else {
                Ok(default)
            }
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

fn forbidden(message: Option<&str>, method: &str, key: Option<&str>) -> S3Error {
    let e = match message {
        Some(m) => S3Error::with_message(S3ErrorCode::AccessForbidden, m),
        None => S3Error::new(S3ErrorCode::AccessForbidden),
    };
    e.extra("Method", method).extra(
        "ResourceType",
        if key.is_some() { "OBJECT" } else { "BUCKET" },
    )
}

/// A preflight `OPTIONS` on a bucket or object.
pub async fn preflight(
    ctx: &Context,
    bucket: Option<&str>,
    key: Option<&str>,
    headers: &HeaderMap,
) -> S3Result<S3Response> {
    let Some(origin) = header(headers, "origin") else {
        return Err(S3Error::with_message(
            S3ErrorCode::BadRequest,
            cors::NO_ORIGIN,
        ));
    };
    let asked_method = header(headers, "access-control-request-method");
    let shown_method = asked_method.unwrap_or("OPTIONS");
    let Some(bucket) = bucket else {
        return Err(forbidden(Some(cors::NOT_ENABLED), shown_method, None));
    };
    let config = rules(ctx, bucket)
        .await
        .map_err(|m| forbidden(Some(m), shown_method, None))?;
    let Some(method) = asked_method.filter(|m| cors::ALLOWED_METHODS.contains(m)) else {
        return Err(S3Error::with_message(
            S3ErrorCode::BadRequest,
            format!(
                "Invalid Access-Control-Request-Method: {}",
                asked_method.unwrap_or("null")
            ),
        ));
    };
    let asked_headers = header(headers, "access-control-request-headers")
        .map(cors::requested_headers)
        .unwrap_or_default();
    let Some(found) = config.preflight(origin, method, &asked_headers) else {
        return Err(forbidden(None, method, key));
    };
    let mut resp = http::Response::builder()
        .status(StatusCode::OK)
        .header("content-length", 0)
        .body(ResponseBody::Empty)
        .map_err(S3Error::internal)?;
    found.apply(resp.headers_mut(), true);
    Ok(resp)
}

/// Adds the CORS headers of the rule that allows this (non-preflight) request, if any; a
/// request no rule allows is answered without them, as S3 does.
pub async fn decorate(
    ctx: &Context,
    bucket: Option<&str>,
    method: &str,
    request: &HeaderMap,
    response: &mut HeaderMap,
) {
    let (Some(origin), Some(bucket)) = (header(request, "origin"), bucket) else {
        return;
    };
    let Ok(config) = rules(ctx, bucket).await else {
        return;
    };
    // S3 matches on Access-Control-Request-Method and -Headers when a client sends them.
    let found = match header(request, "access-control-request-method") {
        Some(asked) => {
            let asked_headers = header(request, "access-control-request-headers")
                .map(cors::requested_headers)
                .unwrap_or_default();
            config.preflight(origin, asked, &asked_headers)
        }
        None => config.actual(origin, method),
    };
    if let Some(found) = found {
        found.apply(response, false);
    }
}

pub async fn get_bucket_cors(ctx: &Context, bucket: &str) -> S3Result<S3Response> {
    let meta = ctx.store.bucket(bucket).await?;
    match meta.cors {
        Some(c) if !c.is_empty() => xml_response(c.to_xml()),
        _ => Err(S3Error::new(S3ErrorCode::NoSuchCORSConfiguration).extra("BucketName", bucket)),
    }
}

pub async fn put_bucket_cors(
    ctx: &Context,
    bucket: &str,
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> S3Result<S3Response> {
    let raw = body
        .read_small(cors::MAX_BODY.min(ctx.config.limits.max_xml_body))
        .await?;
    check_body_digests(headers, &raw)?;
    let config = CorsConfig::parse_xml(&raw)?;
    ctx.store.set_bucket_cors(bucket, Some(config)).await?;
    empty_response(StatusCode::OK)
}

pub async fn delete_bucket_cors(ctx: &Context, bucket: &str) -> S3Result<S3Response> {
    ctx.store.set_bucket_cors(bucket, None).await?;
    empty_response(StatusCode::NO_CONTENT)
}
