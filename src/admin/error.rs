//! Admin API failures, typed by meaning, and the one place that maps each to an HTTP status and
//! a code for the JSON body `{"error": {"code", "message", "request_id"}}`.

use http::StatusCode;

use crate::error::S3Error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(
        "this endpoint needs admin credentials: a SigV4 signature (service s3) of a user with \
         admin = true, or Authorization: Bearer <token> (server.admin_token_file)"
    )]
    MissingCredentials,
    /// The credentials did not check out (a bad signature, an unknown key, a wrong token).
    #[error("{message}")]
    BadCredentials { code: &'static str, message: String },
    #[error("user {0} is not an admin (set admin = true in its [[users]] entry)")]
    NotAdmin(String),
    /// The caller may not use this bucket (its grants).
    #[error("{0}")]
    BucketDenied(String),
    #[error("{0}")]
    NoSuchBucket(String),
    /// A request body or parameter that is not what the endpoint takes.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    ContentTypeNotAllowed(String),
    #[error("{0}")]
    SizeNotAllowed(String),
    #[error("{0}")]
    ExpiryNotAllowed(String),
    #[error("no such endpoint: {0}")]
    NotFound(String),
    #[error("{path} does not take {method}")]
    MethodNotAllowed { method: String, path: String },
    /// The request needs an upstream and this server runs local-only.
    #[error("{0}")]
    NoUpstream(String),
    #[error("the store is still opening (crash recovery); try again shortly")]
    NotReady,
    /// The upstream refused something the request needed (creating its bucket).
    #[error("{0}")]
    UpstreamRefused(String),
    /// Lifeboat's own failure; the cause is logged with the request id, not sent.
    #[error("internal error; the server log has the cause under this request id")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingCredentials | ApiError::BadCredentials { .. } => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::NotAdmin(_) | ApiError::BucketDenied(_) => StatusCode::FORBIDDEN,
            ApiError::NoSuchBucket(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::InvalidRequest(_)
            | ApiError::ContentTypeNotAllowed(_)
            | ApiError::SizeNotAllowed(_)
            | ApiError::ExpiryNotAllowed(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NoUpstream(_) => StatusCode::CONFLICT,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UpstreamRefused(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingCredentials => "MissingCredentials",
            ApiError::BadCredentials { code, .. } => code,
            ApiError::NotAdmin(_) => "NotAdmin",
            ApiError::BucketDenied(_) => "AccessDenied",
            ApiError::NoSuchBucket(_) => "NoSuchBucket",
            ApiError::InvalidRequest(_) => "InvalidRequest",
            ApiError::ContentTypeNotAllowed(_) => "ContentTypeNotAllowed",
            ApiError::SizeNotAllowed(_) => "SizeNotAllowed",
            ApiError::ExpiryNotAllowed(_) => "ExpiryNotAllowed",
            ApiError::NotFound(_) => "NotFound",
            ApiError::MethodNotAllowed { .. } => "MethodNotAllowed",
            ApiError::NoUpstream(_) => "NoUpstream",
            ApiError::NotReady => "NotReady",
            ApiError::UpstreamRefused(_) => "UpstreamRefused",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// A signature that did not check out, under the S3 code that says why.
    pub fn from_auth(e: &S3Error) -> Self {
        ApiError::BadCredentials {
            code: e.code.as_str(),
            message: e.message.clone(),
        }
    }

    /// What the log line says (the cause, for an internal error).
    pub fn detail(&self) -> String {
        match self {
            ApiError::Internal(cause) => cause.clone(),
            other => other.to_string(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// The JSON body.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "request_id": request_id,
            }
        })
    }
}

/// The gateway, for the endpoints that need an upstream; `NoUpstream` (409) when the server
/// runs local-only, saying what could not be done.
pub fn gateway<'a>(
    ctx: &'a crate::context::Context,
    what: &str,
) -> Result<&'a std::sync::Arc<crate::gateway::Gateway>, ApiError> {
    match &ctx.replication {
        crate::replication::Replication::Gateway(gw) => Ok(gw),
        crate::replication::Replication::Local(_) => Err(ApiError::NoUpstream(format!(
            "this server runs local-only ([upstream] is off): {what}"
        ))),
    }
}
