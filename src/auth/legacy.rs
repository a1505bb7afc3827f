//! Signature Version 2 on requests (`RESTAuthentication.html`): `Authorization: AWS AK:sig`
//! and presigned URLs with `AWSAccessKeyId`, `Expires` and `Signature`. aws-cli v1's `s3
//! presign` and older SDKs and upload widgets still send it. The signing functions are
//! `sigv2`; `[server] sigv2 = false` refuses it as before.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    AuthSettings, Authenticated, PayloadMode, RequestParts, Users, check_skew, header_str,
    query_get, sigv2,
};
use crate::error::{S3Error, S3ErrorCode};
use crate::time::{parse_amz_date, parse_http_date};

fn resource(req: &RequestParts<'_>) -> String {
    sigv2::canonical_resource(req.virtual_bucket, req.raw_path, req.query)
}

fn check(
    req: &RequestParts<'_>,
    users: &Users,
    access_key: &str,
    signature: &str,
    expires: Option<&str>,
) -> Result<Authenticated, S3Error> {
    let user = users
        .get(access_key)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
    let sts = sigv2::request_string_to_sign(req.method, req.headers, expires, &resource(req));
    if !sigv2::signatures_equal(&sigv2::sign(user.secret_key.expose(), &sts), signature) {
        return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch)
            .extra("AWSAccessKeyId", access_key)
            .extra("StringToSign", sts));
    }
    Ok(Authenticated {
        user: std::sync::Arc::clone(user),
        // SigV2 signs no payload hash; a Content-MD5 the client sends is still checked.
        payload: PayloadMode::Unsigned,
    })
}

/// `Authorization: AWS AK:signature`.
pub fn authenticate_header(
    req: &RequestParts<'_>,
    value: &str,
    users: &Users,
    settings: &AuthSettings,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    let (access_key, signature) = sigv2::parse_authorization(value).ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Authorization header is invalid -- one and only one ' ' (space) required",
        )
    })?;
    let time = match header_str(req.headers, "x-amz-date") {
        Some(d) => parse_http_date(d).or_else(|| parse_amz_date(d)),
        None => header_str(req.headers, "date").and_then(parse_http_date),
    }
    .ok_or_else(|| {
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "AWS authentication requires a valid Date or x-amz-date header",
        )
    })?;
    check_skew(time, now, settings.clock_skew)?;
    check(req, users, access_key, signature, None)
}

/// `?AWSAccessKeyId=…&Expires=…&Signature=…`.
pub fn authenticate_query(
    req: &RequestParts<'_>,
    users: &Users,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    let q = |n| query_get(req.query, n).unwrap_or("");
    let (access_key, signature, expires) = (q("AWSAccessKeyId"), q("Signature"), q("Expires"));
    let at: u64 = expires.parse().map_err(|_| {
        S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        )
    })?;
    let expiry = UNIX_EPOCH + Duration::from_secs(at);
    if now > expiry {
        return Err(
            S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")
                .extra(
                    "Expires",
                    chrono::DateTime::<chrono::Utc>::from(expiry).to_rfc3339(),
                )
                .extra(
                    "ServerTime",
                    chrono::DateTime::<chrono::Utc>::from(now).to_rfc3339(),
                ),
        );
    }
    check(req, users, access_key, signature, Some(expires))
}
