//! Who is calling the admin API: a user with `admin = true` by SigV4 (header or presigned
//! query, service `s3`, checked by the S3 listener's own `auth::authenticate`), or the bearer
//! token of `server.admin_token_file`, compared in constant time.

use std::sync::Arc;
use std::time::SystemTime;

use http::request::Parts;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::auth::policy::User;
use crate::auth::{self, AuthSettings, PayloadMode, Users};

/// An authenticated admin caller.
pub enum Caller {
    /// The bearer token: the operator, with no user of its own.
    Token,
    User(Arc<User>),
}

impl Caller {
    /// For the log line: the user's access key, or "token".
    pub fn name(&self) -> &str {
        match self {
            Caller::Token => "token",
            Caller::User(u) => &u.access_key,
        }
    }
}

/// An admin caller, and the SHA-256 its signature covers for the body (if any).
pub struct Checked {
    pub caller: Caller,
    pub body_sha256: Option<[u8; 32]>,
}

pub fn authenticate(
    parts: &Parts,
    query: &[(String, String)],
    body_sha256: &str,
    users: &Users,
    settings: &AuthSettings,
    token: Option<&crate::secret::Secret>,
) -> Result<Checked, ApiError> {
    let header = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(h) = header
        && let Some(given) = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    {
        let Some(expected) = token else {
            return Err(ApiError::BadCredentials {
                code: "InvalidToken",
                message: "bearer tokens are not enabled: set server.admin_token_file".into(),
            });
        };
        let same: bool = given
            .trim()
            .as_bytes()
            .ct_eq(expected.expose().as_bytes())
            .into();
        if !same {
            return Err(ApiError::BadCredentials {
                code: "InvalidToken",
                message: "the bearer token is not the one in server.admin_token_file".into(),
            });
        }
        return Ok(Checked {
            caller: Caller::Token,
            body_sha256: None,
        });
    }
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    if header.is_none() && !presigned {
        return Err(ApiError::MissingCredentials);
    }
    let checked = auth::authenticate(
        &auth::RequestParts {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            query,
            headers: &parts.headers,
            authority: parts.uri.authority().map(|a| a.as_str()),
            body_sha256: Some(body_sha256),
            virtual_bucket: None,
        },
        users,
        // SigV4 only: SigV2 signs no body hash, and the admin API's bodies are checked by it.
        &AuthSettings {
            clock_skew: settings.clock_skew,
            region: settings.region.clone(),
            sigv2: false,
        },
        SystemTime::now(),
    )
    .map_err(|e| ApiError::from_auth(&e))?;
    if !checked.user.admin {
        return Err(ApiError::NotAdmin(checked.user.access_key.clone()));
    }
    let body_sha256 = match checked.payload {
        PayloadMode::Sha256(h) => Some(h),
        PayloadMode::Unsigned => None,
        PayloadMode::Chunked { .. } => {
            return Err(ApiError::InvalidRequest(
                "the admin API takes small JSON bodies, not aws-chunked ones".into(),
            ));
        }
    };
    Ok(Checked {
        caller: Caller::User(checked.user),
        body_sha256,
    })
}
