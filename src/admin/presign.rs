//! `POST /storage/presigned-upload` and `POST /storage/presigned-download`: presigned URLs a
//! browser can use directly, with the upload's content type, size and key decided here
//! (`[presign]` in the config) rather than by the browser.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use super::filename;
use crate::auth::policy::{Action, BucketOwner, Resource, User};
use crate::auth::presign::{Presign, Signer, presign_url};
use crate::config::PresignTarget;
use crate::context::Context;
use crate::replication::Replication;
use crate::store::{BucketMeta, StoreError};

/// The query parameter that carries an upload's size limit when the URL does not sign a
/// Content-Length; the S3 listener refuses a larger body (`EntityTooLarge`).
pub const MAX_SIZE_PARAM: &str = "x-lifeboat-max-size";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    filename: String,
    content_type: String,
    size: Option<u64>,
    bucket: Option<String>,
    prefix: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadRequest {
    bucket: Option<String>,
    key: String,
    expires_in: Option<u64>,
    filename: Option<String>,
}

/// What presigning needs besides the request.
pub struct Env<'a> {
    pub ctx: &'a Context,
    pub caller: &'a Caller,
    /// The S3 listener's bound address (used when `server.public_url` is unset).
    pub s3_address: SocketAddr,
}

fn allowed_type(patterns: &[String], content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((kind, _)) = essence.split_once('/') else {
        return false;
    };
    patterns
        .iter()
        .any(|p| p == "*/*" || *p == essence || p.strip_suffix("/*").is_some_and(|t| t == kind))
}

fn expiry(ctx: &Context, asked: Option<u64>) -> Result<Duration, ApiError> {
    let p = &ctx.config.presign;
    let e = asked.map_or(p.default_expires, Duration::from_secs);
    if e.is_zero() || e > p.max_expires {
        return Err(ApiError::ExpiryNotAllowed(format!(
            "expires_in must be between 1 and {} seconds ([presign] max_expires)",
            p.max_expires.as_secs()
        )));
    }
    Ok(e)
}

fn bucket_of(ctx: &Context, asked: Option<String>) -> Result<String, ApiError> {
    let bucket = asked
        .or_else(|| ctx.config.presign.bucket.clone())
        .ok_or_else(|| {
            ApiError::InvalidRequest("name a bucket, or set [presign] bucket in the config".into())
        })?;
    if !crate::router::valid_bucket_name(&bucket) {
        return Err(ApiError::InvalidRequest(format!(
            "{bucket:?} is not a valid bucket name"
        )));
    }
    Ok(bucket)
}

/// The user a URL for `action` on the key is signed as: the caller, who must be allowed it;
/// for the bearer token, the first admin user allowed it, else the first user allowed it.
async fn signer<'a>(
    env: &Env<'a>,
    action: Action,
    bucket: &str,
    key: &str,
) -> Result<&'a User, ApiError> {
    let ctx = env.ctx;
    // A bucket only upstream is adopted first (owned by no user here), as the S3 API does.
    ctx.replication
        .bucket_used(bucket, "", ctx.config.server.region())
        .await;
    let owner = match ctx.store.bucket(bucket).await {
        Ok(meta) => Some(meta.owner),
        Err(StoreError::NoSuchBucket) => None,
        Err(e) => return Err(ApiError::internal(e)),
    };
    let owner = BucketOwner::from(owner.as_ref());
    let allowed = |u: &User| u.allows(action, Resource::Object { bucket, key }, owner);
    let found = match env.caller {
        Caller::User(u) => env
            .ctx
            .config
            .users
            .iter()
            .find(|c| c.access_key == u.access_key && allowed(c)),
        Caller::Token => {
            let users = &env.ctx.config.users;
            let admin = users.iter().find(|u| u.admin && allowed(u));
            admin.or_else(|| users.iter().find(|u| allowed(u)))
        }
    };
    found.ok_or_else(|| {
        let who = match env.caller {
            Caller::User(u) => u.access_key.clone(),
            Caller::Token => "no configured user".to_owned(),
        };
        ApiError::BucketDenied(format!(
            "{who} may not {} {bucket}/{key} (its grants)",
            action.as_str()
        ))
    })
}

/// The bucket exists (adopted from the upstream in gateway mode), or is created when
/// `[presign] create_bucket` says so.
async fn ensure_bucket(env: &Env<'_>, signer: &User, bucket: &str) -> Result<(), ApiError> {
    let ctx = env.ctx;
    let region = ctx.config.server.region();
    let owner = signer.owner_id();
    match ctx.store.bucket(bucket).await {
        Ok(_) => return Ok(()),
        Err(StoreError::NoSuchBucket) => {}
        Err(e) => return Err(ApiError::internal(e)),
    }
    if !ctx.config.presign.create_bucket {
        return Err(ApiError::NoSuchBucket(format!(
            "bucket {bucket} does not exist (set [presign] create_bucket = true to create it)"
        )));
    }
    match ctx
        .store
        .create_bucket(bucket, BucketMeta::new(owner, region.to_owned()))
        .await
    {
        Ok(()) | Err(StoreError::BucketAlreadyOwnedByYou) => {}
        Err(e) => return Err(ApiError::internal(e)),
    }
    if let Err(e) = ctx.replication.bucket_created(bucket).await {
        let _ = ctx.store.delete_bucket(bucket).await;
        return Err(ApiError::UpstreamRefused(format!(
            "the upstream refused to create bucket {bucket}: {}",
            e.message
        )));
    }
    tracing::info!(bucket, "created a bucket for presigned uploads");
    Ok(())
}

/// A URL for the S3 listener (or the upstream, per `[presign] target`).
#[allow(clippy::too_many_arguments)]
fn url(
    env: &Env<'_>,
    signer: &User,
    method: &str,
    bucket: &str,
    key: &str,
    headers: Vec<(String, String)>,
    query: Vec<(String, String)>,
    expires: Duration,
) -> Result<String, ApiError> {
    let ctx = env.ctx;
    if ctx.config.presign.target == PresignTarget::Upstream {
        let Replication::Gateway(gw) = &ctx.replication else {
            return Err(ApiError::InvalidRequest(
                "[presign] target = \"upstream\" needs an [upstream]".into(),
            ));
        };
        return Ok(gw
            .upstream
            .presign(method, bucket, key, headers, query, expires));
    }
    let (scheme, host) = match &ctx.config.server.public_url {
        Some(u) => {
            let (scheme, rest) = u.split_once("://").unwrap_or(("http", u));
            (scheme.to_owned(), rest.to_owned())
        }
        None => {
            let a = env.s3_address;
            let ip = if a.ip().is_unspecified() {
                std::net::IpAddr::from([127, 0, 0, 1])
            } else {
                a.ip()
            };
            let scheme = match ctx.config.server.tls_cert {
                Some(_) => "https",
                None => "http",
            };
            (scheme.to_owned(), SocketAddr::new(ip, a.port()).to_string())
        }
    };
    Ok(presign_url(
        &Signer {
            access_key: &signer.access_key,
            secret_key: &signer.secret_key,
            region: ctx.config.server.region(),
        },
        Presign {
            method,
            scheme: &scheme,
            host: &host,
            path: &format!("/{bucket}/{key}"),
            query,
            headers,
            expires,
            now: SystemTime::now(),
        },
    ))
}

fn expires_at(expires: Duration) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(expires.as_secs() as i64))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub async fn upload(env: &Env<'_>, req: UploadRequest) -> Result<Value, ApiError> {
    let ctx = env.ctx;
    let p = &ctx.config.presign;
    let content_type = req.content_type.trim().to_owned();
    if !allowed_type(&p.allowed_content_types, &content_type) {
        return Err(ApiError::ContentTypeNotAllowed(format!(
            "content type {content_type:?} is not allowed; allowed: {} ([presign] allowed_content_types)",
            p.allowed_content_types.join(", ")
        )));
    }
    let max = p.max_size.min(ctx.config.limits.max_object_size);
    if let Some(size) = req.size
        && size > max
    {
        return Err(ApiError::SizeNotAllowed(format!(
            "size {size} is over the limit of {max} bytes ([presign] max_size)"
        )));
    }
    if req.size.is_none() && p.target == PresignTarget::Upstream {
        return Err(ApiError::InvalidRequest(
            "size is required when presigned URLs point at the upstream, which cannot enforce [presign] max_size otherwise".into(),
        ));
    }
    let expires = expiry(ctx, req.expires_in)?;
    let bucket = bucket_of(ctx, req.bucket)?;
    let prefix = match &req.prefix {
        Some(asked) => filename::check_prefix(asked).map_err(ApiError::InvalidRequest)?,
        None => p.prefix.clone(),
    };
    let key = filename::upload_key(&prefix, chrono::Utc::now(), &req.filename);
    ctx.config
        .limits
        .check_key(&key)
        .map_err(|e| ApiError::InvalidRequest(e.message))?;
    let signer = signer(env, Action::Write, &bucket, &key).await?;
    ensure_bucket(env, signer, &bucket).await?;
    let mut headers = vec![("content-type".to_owned(), content_type.clone())];
    let mut query = Vec::new();
    match req.size {
        Some(size) => headers.push(("content-length".to_owned(), size.to_string())),
        None => query.push((MAX_SIZE_PARAM.to_owned(), max.to_string())),
    }
    let url = url(env, signer, "PUT", &bucket, &key, headers, query, expires)?;
    let mut shown = serde_json::Map::new();
    shown.insert("Content-Type".into(), json!(content_type));
    if let Some(size) = req.size {
        shown.insert("Content-Length".into(), json!(size.to_string()));
    }
    Ok(json!({
        "url": url,
        "method": "PUT",
        "headers": shown,
        "bucket": bucket,
        "key": key,
        "expires_at": expires_at(expires),
        "max_size": req.size.unwrap_or(max),
    }))
}

/// `attachment; filename="<safe ASCII>"; filename*=UTF-8''<encoded>` (RFC 6266).
fn disposition(name: &str) -> String {
    let ascii = filename::sanitise(name);
    let encoded = crate::auth::sigv4::uri_encode(
        &name.chars().filter(|c| !c.is_control()).collect::<String>(),
        true,
    );
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

pub async fn download(env: &Env<'_>, req: DownloadRequest) -> Result<Value, ApiError> {
    let ctx = env.ctx;
    let expires = expiry(ctx, req.expires_in)?;
    let bucket = bucket_of(ctx, req.bucket)?;
    if req.key.is_empty() {
        return Err(ApiError::InvalidRequest("key must not be empty".into()));
    }
    ctx.config
        .limits
        .check_key(&req.key)
        .map_err(|e| ApiError::InvalidRequest(e.message))?;
    let signer = signer(env, Action::Read, &bucket, &req.key).await?;
    match ctx.store.bucket(&bucket).await {
        Ok(_) => {}
        Err(StoreError::NoSuchBucket) => {
            return Err(ApiError::NoSuchBucket(format!(
                "bucket {bucket} does not exist"
            )));
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let query = req
        .filename
        .as_deref()
        .map(|f| vec![("response-content-disposition".to_owned(), disposition(f))])
        .unwrap_or_default();
    let url = url(
        env,
        signer,
        "GET",
        &bucket,
        &req.key,
        Vec::new(),
        query,
        expires,
    )?;
    Ok(json!({
        "url": url,
        "method": "GET",
        "bucket": bucket,
        "key": req.key,
        "expires_at": expires_at(expires),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_match_exactly_or_by_family() {
        let p: Vec<String> = ["image/*", "application/pdf"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert!(allowed_type(&p, "image/png"));
        assert!(allowed_type(&p, "Image/PNG; charset=x"));
        assert!(allowed_type(&p, "application/pdf"));
        assert!(!allowed_type(&p, "application/x-msdownload"));
        assert!(!allowed_type(&p, "imagepng"));
        assert!(!allowed_type(&p, "text/html"));
    }

    #[test]
    fn a_download_keeps_the_original_name_for_the_browser() {
        let d = disposition("Résumé 2026.pdf");
        assert!(
            d.starts_with("attachment; filename=\"R-sum-2026.pdf\""),
            "{d}"
        );
        assert!(
            d.ends_with("filename*=UTF-8''R%C3%A9sum%C3%A9%202026.pdf"),
            "{d}"
        );
    }
}
