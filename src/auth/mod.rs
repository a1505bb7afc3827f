//! Request authentication: SigV4 in the Authorization header or in a presigned query, resolved to
//! a user and to the mode in which the body must be read and checked.
//!
//! Implements `sig-v4-header-based-auth.html`, `sigv4-query-string-auth.html` and the payload
//! modes of `sigv4-streaming.html` of the S3 API reference.

pub mod chunked;
mod legacy;
pub mod policy;
pub mod post_policy;
pub mod presign;
pub mod sign;
pub mod sigv2;
pub mod sigv4;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use http::HeaderMap;

use crate::error::{S3Error, S3ErrorCode};
use crate::time::{format_amz_date, parse_amz_date, parse_http_date};
use chunked::ChunkSigner;
use policy::User;
use sigv4::SigningKey;

/// Longest validity of a presigned URL AWS allows: seven days.
pub const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

/// The configured users, by access key.
#[derive(Debug, Default)]
pub struct Users {
    by_key: HashMap<String, Arc<User>>,
}

impl Users {
    pub fn new(users: &[User]) -> Self {
        Self {
            by_key: users
                .iter()
                .map(|u| (u.access_key.clone(), Arc::new(u.clone())))
                .collect(),
        }
    }

    pub fn get(&self, access_key: &str) -> Option<&Arc<User>> {
        self.by_key.get(access_key)
    }
}

/// How the request body must be read and checked.
#[derive(Debug, Clone)]
pub enum PayloadMode {
    /// The body must hash to this SHA-256 (`XAmzContentSHA256Mismatch` otherwise).
    Sha256([u8; 32]),
    /// `UNSIGNED-PAYLOAD`, or a presigned URL.
    Unsigned,
    /// aws-chunked. `signer` is set when every chunk is signed; `signed_trailer` when the trailer is.
    Chunked {
        signer: Option<ChunkSigner>,
        signed_trailer: bool,
    },
}

/// A request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: Arc<User>,
    pub payload: PayloadMode,
}

/// The parts of a request that authentication reads.
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    /// The URI authority, used as `host` when the request has no Host header (HTTP/2).
    pub authority: Option<&'a str>,
    /// The body's hex SHA-256 as the server computed it, for a request signed without
    /// `x-amz-content-sha256` (the admin API's small bodies; S3 requests must send it).
    pub body_sha256: Option<&'a str>,
    /// The bucket when it came from the Host (virtual-hosted style): SigV2 signs it.
    pub virtual_bucket: Option<&'a str>,
}

pub struct AuthSettings {
    pub clock_skew: Duration,
    /// `server.region` when it is set: a credential scoped to another region is refused, as
    /// AWS refuses it (the right region in the error's `<Region>`). `None`: any region.
    pub region: Option<Arc<str>>,
    /// Whether Signature Version 2 is accepted (`[server] sigv2`).
    pub sigv2: bool,
}

fn malformed(msg: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::AuthorizationHeaderMalformed, msg)
}

fn query_error(msg: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::AuthorizationQueryParametersError, msg)
}

fn unsupported_mechanism() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::InvalidRequest,
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn query_get<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

struct Credential<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

fn parse_credential(s: &str) -> Option<Credential<'_>> {
    let mut parts = s.rsplitn(5, '/');
    let terminator = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let date = parts.next()?;
    let access_key = parts.next()?;
    if terminator != "aws4_request" || date.len() != 8 || access_key.is_empty() {
        return None;
    }
    Some(Credential {
        access_key,
        date,
        region,
        service,
    })
}

/// The three parts of an `AWS4-HMAC-SHA256` Authorization header.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthorizationHeader<'a> {
    pub credential: &'a str,
    pub signed_headers: &'a str,
    pub signature: &'a str,
}

pub fn parse_authorization(value: &str) -> Result<AuthorizationHeader<'_>, S3Error> {
    let rest = value
        .strip_prefix(sigv4::ALGORITHM)
        .ok_or_else(unsupported_mechanism)?;
    if rest.trim().is_empty() {
        return Err(malformed(
            "The authorization header is malformed; it must contain Credential, SignedHeaders and Signature.",
        ));
    }
    if !rest.starts_with(' ') {
        return Err(unsupported_mechanism());
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| malformed("The authorization header is malformed."))?;
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed_headers = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => return Err(malformed("The authorization header is malformed.")),
        }
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) => Ok(AuthorizationHeader {
            credential,
            signed_headers,
            signature,
        }),
        _ => Err(malformed(
            "The authorization header is malformed; it must contain Credential, SignedHeaders and Signature.",
        )),
    }
}

/// Authenticates a request, or says why not.
pub fn authenticate(
    req: &RequestParts<'_>,
    users: &Users,
    settings: &AuthSettings,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    if query_get(req.query, "X-Amz-Algorithm").is_some() {
        if req.headers.contains_key(http::header::AUTHORIZATION) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified",
            ));
        }
        return authenticate_presigned(req, users, settings, now);
    }
    if query_get(req.query, "AWSAccessKeyId").is_some()
        && query_get(req.query, "Signature").is_some()
    {
        if !settings.sigv2 {
            return Err(unsupported_mechanism());
        }
        if req.headers.contains_key(http::header::AUTHORIZATION) {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "Only one auth mechanism allowed; only the Signature query parameter or the Authorization header should be specified",
            ));
        }
        return legacy::authenticate_query(req, users, now);
    }
    let Some(auth) = req.headers.get(http::header::AUTHORIZATION) else {
        return Err(S3Error::new(S3ErrorCode::AccessDenied));
    };
    let auth = auth
        .to_str()
        .map_err(|_| malformed("The authorization header is malformed."))?;
    if settings.sigv2 && auth.starts_with("AWS ") {
        return legacy::authenticate_header(req, auth, users, settings, now);
    }
    let auth = parse_authorization(auth)?;
    let cred = parse_credential(auth.credential).ok_or_else(|| {
        malformed("The authorization header is malformed; the Credential is mal-formed.")
    })?;
    let user = users
        .get(cred.access_key)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;

    let (amz_date, time) = match header_str(req.headers, "x-amz-date") {
        Some(d) => (
            d.to_owned(),
            parse_amz_date(d).ok_or_else(|| {
                S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    "AWS authentication requires a valid Date or x-amz-date header",
                )
            })?,
        ),
        None => {
            let t = header_str(req.headers, "date")
                .and_then(parse_http_date)
                .ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::AccessDenied,
                        "AWS authentication requires a valid Date or x-amz-date header",
                    )
                })?;
            (format_amz_date(t), t)
        }
    };
    check_skew(time, now, settings.clock_skew)?;
    check_scope(
        &cred,
        &amz_date,
        settings.region.as_deref(),
        "The authorization header is malformed; ",
        malformed,
    )?;

    let payload_hash = header_str(req.headers, "x-amz-content-sha256")
        .or(req.body_sha256)
        .ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Missing required header for this request: x-amz-content-sha256",
            )
        })?;
    let scope = sigv4::scope(cred.date, cred.region, cred.service);
    let key = SigningKey::derive(user.secret_key.expose(), time, cred.region, cred.service);
    let expected = expected_signature(
        req,
        &key,
        &amz_date,
        &scope,
        auth.signed_headers,
        payload_hash,
        req.query,
    )?;
    if !sigv4::signatures_equal(&expected, auth.signature) {
        return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
    }
    let signer = || ChunkSigner {
        key: key.clone(),
        amz_date: amz_date.clone(),
        scope: scope.clone(),
        previous: expected.clone(),
    };
    let payload = match payload_hash {
        "UNSIGNED-PAYLOAD" => PayloadMode::Unsigned,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => PayloadMode::Chunked {
            signer: Some(signer()),
            signed_trailer: false,
        },
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => PayloadMode::Chunked {
            signer: Some(signer()),
            signed_trailer: true,
        },
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => PayloadMode::Chunked {
            signer: None,
            signed_trailer: false,
        },
        h if h.starts_with("STREAMING-AWS4-ECDSA") => {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "SigV4a streaming payloads are not supported.",
            ));
        }
        h => PayloadMode::Sha256(parse_sha256_hex(h).ok_or_else(|| {
            S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA-256 in hex.",
            )
        })?),
    };
    Ok(Authenticated {
        user: Arc::clone(user),
        payload,
    })
}

fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn check_skew(time: SystemTime, now: SystemTime, skew: Duration) -> Result<(), S3Error> {
    let diff = match now.duration_since(time) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    if diff > skew {
        return Err(S3Error::new(S3ErrorCode::RequestTimeTooSkewed)
            .extra("RequestTime", format_amz_date(time))
            .extra("ServerTime", format_amz_date(now))
            .extra("MaxAllowedSkewMilliseconds", skew.as_millis().to_string()));
    }
    Ok(())
}

fn check_scope(
    cred: &Credential<'_>,
    amz_date: &str,
    region: Option<&str>,
    preamble: &str,
    err: fn(&str) -> S3Error,
) -> Result<(), S3Error> {
    if !amz_date.starts_with(cred.date) {
        return Err(err(
            "Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }
    if cred.service != "s3" {
        return Err(err(&format!(
            "{preamble}incorrect service \"{}\". This endpoint belongs to \"s3\".",
            cred.service
        )));
    }
    if let Some(region) = region
        && cred.region != region
    {
        return Err(err(&format!(
            "{preamble}the region '{}' is wrong; expecting '{region}'",
            cred.region
        ))
        .extra("Region", region));
    }
    Ok(())
}

fn expected_signature(
    req: &RequestParts<'_>,
    key: &SigningKey,
    amz_date: &str,
    scope: &str,
    signed_headers: &str,
    payload_hash: &str,
    query: &[(String, String)],
) -> Result<String, S3Error> {
    let signed: Vec<&str> = signed_headers.split(';').collect();
    if !signed.contains(&"host") {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "The host header must be signed.",
        ));
    }
    // Every x-amz-* header changes what the request does (a copy source, metadata, ACLs, …):
    // one outside SignedHeaders could turn a presigned PUT into a CopyObject. S3 refuses them.
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Signature");
    let unsigned: Vec<&str> = req
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-amz-") && !signed.contains(k))
        .filter(|k| !(presigned && *k == "x-amz-content-sha256"))
        .collect();
    if !unsigned.is_empty() {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "There were headers present in the request which were not signed",
        )
        .extra("HeadersNotSigned", unsigned.join(", ")));
    }
    let mut headers = Vec::new();
    for name in signed {
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(malformed(
                "SignedHeaders must be lower-case names separated by ';'.",
            ));
        }
        let values = req
            .headers
            .get_all(name)
            .iter()
            .map(|v| {
                v.to_str().map_err(|_| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidArgument,
                        format!("The value of the signed header {name} is not valid text."),
                    )
                })
            })
            .collect::<Result<Vec<&str>, S3Error>>()?;
        let value = if values.is_empty() && name == "host" {
            req.authority.unwrap_or("").to_owned()
        } else {
            values
                .iter()
                .map(|v| sigv4::canonical_header_value(v))
                .collect::<Vec<_>>()
                .join(",")
        };
        headers.push((name.to_owned(), value));
    }
    let creq = sigv4::canonical_request(
        req.method,
        &sigv4::canonical_uri(req.raw_path),
        &sigv4::canonical_query(query),
        &headers,
        signed_headers,
        payload_hash,
    );
    tracing::trace!(canonical_request = %creq, "sigv4");
    Ok(key.sign(&sigv4::string_to_sign(amz_date, scope, &creq)))
}

fn authenticate_presigned(
    req: &RequestParts<'_>,
    users: &Users,
    settings: &AuthSettings,
    now: SystemTime,
) -> Result<Authenticated, S3Error> {
    let q = |name| query_get(req.query, name);
    let missing = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
                   X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";
    if q("X-Amz-Algorithm") != Some(sigv4::ALGORITHM) {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let (Some(credential), Some(amz_date), Some(expires), Some(signed_headers), Some(signature)) = (
        q("X-Amz-Credential"),
        q("X-Amz-Date"),
        q("X-Amz-Expires"),
        q("X-Amz-SignedHeaders"),
        q("X-Amz-Signature"),
    ) else {
        return Err(query_error(missing));
    };
    let cred = parse_credential(credential).ok_or_else(|| {
        query_error("Error parsing the X-Amz-Credential parameter; the Credential is mal-formed.")
    })?;
    let expires: u64 = expires
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if expires > MAX_PRESIGNED_EXPIRES {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    let time = parse_amz_date(amz_date).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    check_scope(
        &cred,
        amz_date,
        settings.region.as_deref(),
        "Error parsing the X-Amz-Credential parameter; ",
        query_error,
    )?;
    let user = users
        .get(cred.access_key)
        .ok_or_else(|| S3Error::new(S3ErrorCode::InvalidAccessKeyId))?;
    if time > now + settings.clock_skew {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "Request is not valid yet",
        ));
    }
    let expiry = time + Duration::from_secs(expires);
    if now > expiry {
        return Err(
            S3Error::with_message(S3ErrorCode::AccessDenied, "Request has expired")
                .extra("X-Amz-Expires", expires.to_string())
                .extra("Expires", DateTime::<Utc>::from(expiry).to_rfc3339())
                .extra("ServerTime", DateTime::<Utc>::from(now).to_rfc3339()),
        );
    }
    let payload_hash = q("X-Amz-Content-Sha256").unwrap_or("UNSIGNED-PAYLOAD");
    let scope = sigv4::scope(cred.date, cred.region, cred.service);
    let key = SigningKey::derive(user.secret_key.expose(), time, cred.region, cred.service);
    let expected = expected_signature(
        req,
        &key,
        amz_date,
        &scope,
        signed_headers,
        payload_hash,
        req.query,
    )?;
    if !sigv4::signatures_equal(&expected, signature) {
        return Err(S3Error::new(S3ErrorCode::SignatureDoesNotMatch));
    }
    let payload = match parse_sha256_hex(payload_hash) {
        Some(h) => PayloadMode::Sha256(h),
        None => PayloadMode::Unsigned,
    };
    Ok(Authenticated {
        user: Arc::clone(user),
        payload,
    })
}

/// The access key the server's own check accepts for a request a client-side signer built
/// (auth/presign.rs, auth/sign.rs), with the default clock skew; `None` when it refuses it.
#[cfg(test)]
pub(crate) fn accepted_key(
    method: &str,
    raw_path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    users: &Users,
    now: SystemTime,
) -> Option<String> {
    let parts = RequestParts {
        method,
        raw_path,
        query,
        headers,
        authority: None,
        body_sha256: None,
        virtual_bucket: None,
    };
    let settings = AuthSettings {
        clock_skew: Duration::from_secs(900),
        region: None,
        sigv2: true,
    };
    authenticate(&parts, users, &settings, now)
        .ok()
        .map(|a| a.user.access_key.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use proptest::prelude::*;
    use std::time::UNIX_EPOCH;

    fn users() -> Users {
        Users::new(&[User {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            admin: false,
            grants: vec![policy::Grant::all()],
            own_buckets: false,
        }])
    }

    fn settings() -> AuthSettings {
        AuthSettings {
            clock_skew: Duration::from_secs(900),
            region: None,
            sigv2: false,
        }
    }

    fn doc_time() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn get_object_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        h.insert("range", "bytes=0-9".parse().unwrap());
        h.insert("x-amz-content-sha256", sigv4::EMPTY_SHA256.parse().unwrap());
        h.insert("x-amz-date", "20130524T000000Z".parse().unwrap());
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
                .parse()
                .unwrap(),
        );
        h
    }

    fn parts<'a>(headers: &'a HeaderMap, query: &'a [(String, String)]) -> RequestParts<'a> {
        RequestParts {
            method: "GET",
            raw_path: "/test.txt",
            query,
            headers,
            authority: None,
            body_sha256: None,
            virtual_bucket: None,
        }
    }

    #[test]
    fn aws_doc_get_object_request_authenticates() {
        let h = get_object_headers();
        let r = authenticate(&parts(&h, &[]), &users(), &settings(), doc_time());
        assert!(matches!(
            r,
            Ok(Authenticated {
                payload: PayloadMode::Sha256(_),
                ..
            })
        ));
    }

    #[test]
    fn wrong_signature_unknown_key_and_skew() {
        let mut h = get_object_headers();
        h.insert("range", "bytes=0-10".parse().unwrap());
        let r = authenticate(&parts(&h, &[]), &users(), &settings(), doc_time());
        assert_eq!(
            r.err().map(|e| e.code),
            Some(S3ErrorCode::SignatureDoesNotMatch)
        );

        let h = get_object_headers();
        let late = doc_time() + Duration::from_secs(901);
        let r = authenticate(&parts(&h, &[]), &users(), &settings(), late);
        assert_eq!(
            r.err().map(|e| e.code),
            Some(S3ErrorCode::RequestTimeTooSkewed)
        );

        let r = authenticate(&parts(&h, &[]), &Users::default(), &settings(), doc_time());
        assert_eq!(
            r.err().map(|e| e.code),
            Some(S3ErrorCode::InvalidAccessKeyId)
        );

        let empty = HeaderMap::new();
        let r = authenticate(&parts(&empty, &[]), &users(), &settings(), doc_time());
        assert_eq!(r.err().map(|e| e.code), Some(S3ErrorCode::AccessDenied));
    }

    #[test]
    fn a_credential_for_another_region_names_the_right_one() {
        let h = get_object_headers();
        let elsewhere = AuthSettings {
            region: Some(Arc::from("eu-west-1")),
            ..settings()
        };
        let e = authenticate(&parts(&h, &[]), &users(), &elsewhere, doc_time()).err();
        assert_eq!(
            e.as_ref().map(|e| e.code),
            Some(S3ErrorCode::AuthorizationHeaderMalformed)
        );
        let e = e.unwrap();
        assert_eq!(
            e.message,
            "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'"
        );
        assert_eq!(e.extra, vec![("Region", "eu-west-1".to_owned())]);
        let here = AuthSettings {
            region: Some(Arc::from("us-east-1")),
            ..settings()
        };
        assert!(authenticate(&parts(&h, &[]), &users(), &here, doc_time()).is_ok());
    }

    #[test]
    fn aws_doc_presigned_url_and_its_expiry() {
        let mut h = HeaderMap::new();
        h.insert("host", "examplebucket.s3.amazonaws.com".parse().unwrap());
        let q = sigv4::parse_query(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        );
        let ok = authenticate(
            &parts(&h, &q),
            &users(),
            &settings(),
            doc_time() + Duration::from_secs(3600),
        );
        assert!(matches!(
            ok,
            Ok(Authenticated {
                payload: PayloadMode::Unsigned,
                ..
            })
        ));
        let expired = authenticate(
            &parts(&h, &q),
            &users(),
            &settings(),
            doc_time() + Duration::from_secs(86401),
        );
        let e = expired.err();
        assert_eq!(e.as_ref().map(|e| e.code), Some(S3ErrorCode::AccessDenied));
        assert_eq!(e.map(|e| e.message), Some("Request has expired".to_owned()));
    }

    #[test]
    fn sigv2_is_refused_with_invalid_request() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            "AWS AKIAIOSFODNN7EXAMPLE:abc=".parse().unwrap(),
        );
        let r = authenticate(&parts(&h, &[]), &users(), &settings(), doc_time());
        assert_eq!(r.err().map(|e| e.code), Some(S3ErrorCode::InvalidRequest));
    }

    #[test]
    fn authorization_header_parsing() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc",
        );
        assert_eq!(
            a.ok(),
            Some(AuthorizationHeader {
                credential: "AK/20130524/us-east-1/s3/aws4_request",
                signed_headers: "host;x-amz-date",
                signature: "abc"
            })
        );
        assert!(parse_authorization("AWS4-HMAC-SHA256 Credential=x").is_err());
        assert!(parse_authorization("AWS4-HMAC-SHA256Credential=x").is_err());
    }

    proptest! {
        #[test]
        fn authorization_parser_never_panics(s in "\\PC*") {
            let _ = parse_authorization(&s);
            let _ = parse_authorization(&format!("AWS4-HMAC-SHA256 {s}"));
        }
    }
}
