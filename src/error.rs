//! S3 error codes and the one table that maps them to HTTP statuses.
//!
//! Implements the error response described in the AWS S3 API reference, "Error responses"
//! (`ErrorResponses.html`): every failure is rendered once, at the edge, as
//! `<Error><Code/><Message/><Resource/><RequestId/></Error>`.

use http::StatusCode;

/// Declares the S3 error codes, one row each: the code (AWS's own name, as it appears in
/// `<Code>`), the HTTP status AWS documents for it, and AWS's default wording, used when a
/// handler has nothing more specific. Adding a code is adding a row.
macro_rules! s3_error_codes {
    ($($code:ident => $status:ident, $message:literal;)*) => {
        /// The S3 error codes Lifeboat answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum S3ErrorCode {
            $($code,)*
        }

        impl S3ErrorCode {
            /// Every code, in table order.
            pub const ALL: &'static [S3ErrorCode] = &[$(S3ErrorCode::$code,)*];

            /// The code named `name` (as in `<Code>`), if Lifeboat has it.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $(stringify!($code) => Some(S3ErrorCode::$code),)*
                    _ => None,
                }
            }

            /// The code as it appears in `<Code>`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(S3ErrorCode::$code => stringify!($code),)*
                }
            }

            /// The HTTP status AWS documents for the code.
            pub fn status(self) -> StatusCode {
                match self {
                    $(S3ErrorCode::$code => StatusCode::$status,)*
                }
            }

            /// AWS's default wording for the code.
            pub fn default_message(self) -> &'static str {
                match self {
                    $(S3ErrorCode::$code => $message,)*
                }
            }
        }
    };
}

s3_error_codes! {
    AccessDenied => FORBIDDEN, "Access Denied";
    // A refused CORS preflight; S3's wording, its typo ("evalution") included.
    AccessForbidden => FORBIDDEN, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";
    AuthorizationHeaderMalformed => BAD_REQUEST, "The authorization header is malformed.";
    AuthorizationQueryParametersError => BAD_REQUEST, "Error parsing the X-Amz-Credential parameter or another presigned parameter.";
    BadDigest => BAD_REQUEST, "The Content-MD5 you specified did not match what we received.";
    BadRequest => BAD_REQUEST, "Bad Request";
    BucketAlreadyExists => CONFLICT, "The requested bucket name is not available. Please select a different name and try again.";
    BucketAlreadyOwnedByYou => CONFLICT, "Your previous request to create the named bucket succeeded and you already own it.";
    BucketNotEmpty => CONFLICT, "The bucket you tried to delete is not empty";
    ConditionalRequestConflict => CONFLICT, "A conflicting conditional operation is currently in progress against this resource. Please try again.";
    EntityTooLarge => BAD_REQUEST, "Your proposed upload exceeds the maximum allowed object size.";
    EntityTooSmall => BAD_REQUEST, "Your proposed upload is smaller than the minimum allowed object size.";
    IncompleteBody => BAD_REQUEST, "You did not provide the number of bytes specified by the Content-Length HTTP header.";
    InsufficientStorage => INSUFFICIENT_STORAGE, "There is not enough space left on the gateway's disk to store this object.";
    InternalError => INTERNAL_SERVER_ERROR, "We encountered an internal error. Please try again.";
    InvalidAccessKeyId => FORBIDDEN, "The AWS Access Key Id you provided does not exist in our records.";
    InvalidArgument => BAD_REQUEST, "Invalid Argument";
    InvalidBucketName => BAD_REQUEST, "The specified bucket is not valid.";
    InvalidDigest => BAD_REQUEST, "The Content-MD5 you specified is not valid.";
    InvalidRange => RANGE_NOT_SATISFIABLE, "The requested range is not satisfiable";
    InvalidRequest => BAD_REQUEST, "Invalid Request";
    InvalidTag => BAD_REQUEST, "The tag provided was not a valid tag.";
    InvalidURI => BAD_REQUEST, "Couldn't parse the specified URI.";
    InvalidPart => BAD_REQUEST, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.";
    InvalidPartOrder => BAD_REQUEST, "The list of parts was not in ascending order. Parts must be ordered by part number.";
    InvalidPartNumber => RANGE_NOT_SATISFIABLE, "The requested partnumber is not satisfiable";
    NoSuchUpload => NOT_FOUND, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.";
    KeyTooLongError => BAD_REQUEST, "Your key is too long";
    MalformedPOSTRequest => BAD_REQUEST, "The body of your POST request is not well-formed multipart/form-data.";
    MalformedXML => BAD_REQUEST, "The XML you provided was not well-formed or did not validate against our published schema.";
    MaxMessageLengthExceeded => BAD_REQUEST, "Your request was too big.";
    MetadataTooLarge => BAD_REQUEST, "Your metadata headers exceed the maximum allowed metadata size.";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "The specified method is not allowed against this resource.";
    MissingContentLength => LENGTH_REQUIRED, "You must provide the Content-Length HTTP header.";
    NoSuchBucket => NOT_FOUND, "The specified bucket does not exist";
    // The wire's wording; the error table's differs ("The specified bucket does not have a CORS
    // configuration.").
    NoSuchCORSConfiguration => NOT_FOUND, "The CORS configuration does not exist";
    NoSuchKey => NOT_FOUND, "The specified key does not exist.";
    NotImplemented => NOT_IMPLEMENTED, "A header or query you provided implies functionality that is not implemented.";
    NotModified => NOT_MODIFIED, "Not Modified";
    PreconditionFailed => PRECONDITION_FAILED, "At least one of the pre-conditions you specified did not hold";
    RequestHeaderSectionTooLarge => BAD_REQUEST, "Your request header section exceeds the maximum allowed size.";
    RequestTimeout => BAD_REQUEST, "Your socket connection to the server was not read from or written to within the timeout period.";
    RequestTimeTooSkewed => FORBIDDEN, "The difference between the request time and the server's time is too large.";
    ServiceUnavailable => SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    SlowDown => SERVICE_UNAVAILABLE, "Please reduce your request rate.";
    SignatureDoesNotMatch => FORBIDDEN, "The request signature we calculated does not match the signature you provided. Check your key and signing method.";
    XAmzContentSHA256Mismatch => BAD_REQUEST, "The provided 'x-amz-content-sha256' header does not match what was computed.";
}

/// An error on its way to the client: a code, a message, and optional extra elements.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct S3Error {
    pub code: S3ErrorCode,
    pub message: String,
    /// Extra `<Name>value</Name>` elements AWS adds for some codes (e.g. `ArgumentName`).
    pub extra: Vec<(&'static str, String)>,
    /// Extra response headers (e.g. `Content-Range` on 416, `ETag` on 304).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(code: S3ErrorCode) -> Self {
        Self {
            code,
            message: code.default_message().to_owned(),
            extra: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_message(code: S3ErrorCode, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Self::new(code)
        }
    }

    pub fn extra(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// An unexpected failure: the cause is logged here and never shown to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(cause = %cause, "internal error");
        Self::new(S3ErrorCode::InternalError)
    }

    /// A refusal from the upstream, as the client's answer: the upstream's code when Lifeboat
    /// has it (with the upstream's message), else `InvalidRequest` naming it.
    pub fn refused_upstream(code: &str, message: &str) -> Self {
        match S3ErrorCode::from_name(code) {
            Some(c) if !message.is_empty() => Self::with_message(c, message),
            Some(c) => Self::new(c),
            None => Self::with_message(
                S3ErrorCode::InvalidRequest,
                format!("The upstream refused the write: {code}: {message}"),
            ),
        }
    }

    /// `507 InsufficientStorage`: the disk is full, or would be (`storage.min_free_bytes`).
    pub fn insufficient_storage(detail: &str) -> Self {
        crate::metrics::insufficient_storage();
        tracing::warn!(detail, "write refused: not enough disk space");
        Self::new(S3ErrorCode::InsufficientStorage)
    }

    /// `507 InsufficientStorage` in gateway mode: what cannot be evicted fills the cache
    /// budget (`gateway::evict`); the message says what fills it.
    pub fn cache_full(message: String) -> Self {
        crate::metrics::insufficient_storage();
        tracing::warn!(detail = %message, "write refused: the cache budget is full");
        Self::with_message(S3ErrorCode::InsufficientStorage, message)
    }

    /// A local I/O error on a request path: 507 when the disk is full, else InternalError.
    pub fn from_io(e: std::io::Error) -> Self {
        if crate::store::is_no_space(&e) {
            Self::insufficient_storage(&e.to_string())
        } else {
            Self::internal(e)
        }
    }

    /// `EntityTooLarge` with the limit, as AWS reports it.
    pub fn entity_too_large(max: u64) -> Self {
        Self::new(S3ErrorCode::EntityTooLarge).extra("MaxSizeAllowed", max.to_string())
    }

    pub fn invalid_argument(message: impl Into<String>, name: &str, value: &str) -> Self {
        Self::with_message(S3ErrorCode::InvalidArgument, message)
            .extra("ArgumentName", name)
            .extra("ArgumentValue", value)
    }

    /// Renders the XML body of the error.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut w = crate::xml::XmlWriter::new();
        w.open("Error");
        w.element("Code", self.code.as_str());
        w.element("Message", &self.message);
        for (name, value) in &self.extra {
            w.element(name, value);
        }
        w.element("Resource", resource);
        w.element("RequestId", request_id);
        w.close("Error");
        w.finish()
    }
}

impl From<S3ErrorCode> for S3Error {
    fn from(code: S3ErrorCode) -> Self {
        Self::new(code)
    }
}

impl From<crate::store::StoreError> for S3Error {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::NoSuchBucket => S3ErrorCode::NoSuchBucket.into(),
            StoreError::NoSuchKey => S3ErrorCode::NoSuchKey.into(),
            StoreError::BucketNotEmpty => S3ErrorCode::BucketNotEmpty.into(),
            StoreError::BucketAlreadyOwnedByYou => S3ErrorCode::BucketAlreadyOwnedByYou.into(),
            StoreError::BucketAlreadyExists => S3ErrorCode::BucketAlreadyExists.into(),
            StoreError::NoSuchUpload => S3ErrorCode::NoSuchUpload.into(),
            StoreError::PreconditionFailed => S3ErrorCode::PreconditionFailed.into(),
            StoreError::PartChanged => S3Error::with_message(
                S3ErrorCode::InvalidPart,
                "A part was uploaded again while the upload was being completed; complete it again.",
            ),
            StoreError::NoSpace(e) => S3Error::insufficient_storage(&e),
            StoreError::Io(e) => S3Error::internal(e),
            StoreError::Index(e) => S3Error::internal(e),
            StoreError::Corrupt(e) => S3Error::internal(e),
            e @ (StoreError::KeyRequired { .. } | StoreError::WrongKey { .. }) => {
                S3Error::internal(e)
            }
        }
    }
}

impl From<crate::xml::XmlError> for S3Error {
    fn from(e: crate::xml::XmlError) -> Self {
        match e {
            crate::xml::XmlError::Malformed | crate::xml::XmlError::UnexpectedRoot(_) => {
                S3ErrorCode::MalformedXML.into()
            }
        }
    }
}

pub type S3Result<T> = Result<T, S3Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_xml_has_code_message_resource_and_request_id() {
        let xml = S3Error::new(S3ErrorCode::NoSuchKey).to_xml("/b/k&1", "REQ1");
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
             <Message>The specified key does not exist.</Message><Resource>/b/k&amp;1</Resource>\
             <RequestId>REQ1</RequestId></Error>"
        );
    }

    /// Every row of the table against the status AWS's error-code list gives for it
    /// (`ErrorResponses.html`, "List of error codes"), written out independently of the table.
    /// `AccessForbidden` and `BadRequest` are not in that list: their statuses are those S3
    /// answers a refused CORS preflight with.
    #[test]
    fn every_code_has_the_aws_status_a_name_and_a_message() {
        use S3ErrorCode::*;
        let expected = |c: S3ErrorCode| -> u16 {
            match c {
                AccessDenied
                | AccessForbidden
                | InvalidAccessKeyId
                | RequestTimeTooSkewed
                | SignatureDoesNotMatch => 403,
                NoSuchBucket | NoSuchCORSConfiguration | NoSuchKey | NoSuchUpload => 404,
                MethodNotAllowed => 405,
                BucketAlreadyExists
                | BucketAlreadyOwnedByYou
                | BucketNotEmpty
                | ConditionalRequestConflict => 409,
                MissingContentLength => 411,
                PreconditionFailed => 412,
                InvalidRange | InvalidPartNumber => 416,
                NotModified => 304,
                InternalError => 500,
                InsufficientStorage => 507,
                NotImplemented => 501,
                ServiceUnavailable | SlowDown => 503,
                _ => 400,
            }
        };
        assert_eq!(S3ErrorCode::ALL.len(), 47);
        for &c in S3ErrorCode::ALL {
            assert_eq!(c.status().as_u16(), expected(c), "{c:?}");
            assert_eq!(c.as_str(), format!("{c:?}"), "the code is AWS's name");
            assert!(!c.default_message().is_empty(), "{c:?} has no message");
            let xml = S3Error::new(c).to_xml("/", "R");
            assert!(xml.contains(&format!("<Code>{}</Code>", c.as_str())));
        }
    }

    #[test]
    fn statuses_follow_the_aws_table() {
        assert_eq!(S3ErrorCode::SignatureDoesNotMatch.status(), 403);
        assert_eq!(S3ErrorCode::BucketNotEmpty.status(), 409);
        assert_eq!(S3ErrorCode::InvalidRange.status(), 416);
        assert_eq!(S3ErrorCode::NotImplemented.status(), 501);
        assert_eq!(S3ErrorCode::MethodNotAllowed.status(), 405);
    }
}
