//! The router: method, host and path to one `Operation`, carrying its parsed parameters and the
//! permission it needs.
//!
//! Handles path-style (`/bucket/key`) and virtual-hosted-style (`bucket.<domain>/key`) addressing
//! as described in "Virtual hosting of buckets" (`VirtualHosting.html`). Sub-resources Lifeboat
//! does not implement answer `501 NotImplemented`; a method that makes no sense for the resource
//! answers `405 MethodNotAllowed`.

use http::Method;

use crate::auth::policy::{Action, Resource};
use crate::auth::sigv4::uri_decode;
use crate::error::{S3Error, S3ErrorCode};

/// Parameters of ListObjects (v1) and ListObjectsV2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub max_keys: usize,
    pub encoding_url: bool,
    /// v1 `marker`.
    pub marker: Option<String>,
    /// v2 `continuation-token`, still encoded.
    pub continuation_token: Option<String>,
    /// v2 `start-after`.
    pub start_after: Option<String>,
    pub fetch_owner: bool,
}

/// `response-*` query overrides of GetObject, as (header, value).
pub type ResponseOverrides = Vec<(&'static str, String)>;

/// The source of CopyObject and UploadPartCopy (`x-amz-copy-source`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
}

/// Parameters of ListMultipartUploads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadListParams {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
    pub encoding_url: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket {
        bucket: String,
    },
    HeadBucket {
        bucket: String,
    },
    DeleteBucket {
        bucket: String,
    },
    GetBucketLocation {
        bucket: String,
    },
    GetBucketVersioning {
        bucket: String,
    },
    GetBucketAcl {
        bucket: String,
    },
    PutBucketAcl {
        bucket: String,
    },
    ListObjects {
        bucket: String,
        params: ListParams,
    },
    ListObjectsV2 {
        bucket: String,
        params: ListParams,
    },
    ListMultipartUploads {
        bucket: String,
        params: UploadListParams,
    },
    DeleteObjects {
        bucket: String,
    },
    PostObject {
        bucket: String,
    },
    PutObject {
        bucket: String,
        key: String,
    },
    CopyObject {
        bucket: String,
        key: String,
        source: CopySource,
    },
    GetObject {
        bucket: String,
        key: String,
        overrides: ResponseOverrides,
        part_number: Option<u16>,
    },
    HeadObject {
        bucket: String,
        key: String,
        part_number: Option<u16>,
    },
    DeleteObject {
        bucket: String,
        key: String,
    },
    GetObjectAcl {
        bucket: String,
        key: String,
    },
    PutObjectAcl {
        bucket: String,
        key: String,
    },
    GetObjectTagging {
        bucket: String,
        key: String,
    },
    PutObjectTagging {
        bucket: String,
        key: String,
    },
    DeleteObjectTagging {
        bucket: String,
        key: String,
    },
    CreateMultipartUpload {
        bucket: String,
        key: String,
    },
    UploadPart {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u16,
    },
    UploadPartCopy {
        bucket: String,
        key: String,
        upload_id: String,
        part_number: u16,
        source: CopySource,
    },
    CompleteMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    AbortMultipartUpload {
        bucket: String,
        key: String,
        upload_id: String,
    },
    ListParts {
        bucket: String,
        key: String,
        upload_id: String,
        max_parts: usize,
        marker: u16,
    },
}

impl Operation {
    /// The AWS name of the operation, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::ListBuckets => "ListBuckets",
            Operation::CreateBucket { .. } => "CreateBucket",
            Operation::HeadBucket { .. } => "HeadBucket",
            Operation::DeleteBucket { .. } => "DeleteBucket",
            Operation::GetBucketLocation { .. } => "GetBucketLocation",
            Operation::GetBucketVersioning { .. } => "GetBucketVersioning",
            Operation::GetBucketAcl { .. } => "GetBucketAcl",
            Operation::PutBucketAcl { .. } => "PutBucketAcl",
            Operation::ListObjects { .. } => "ListObjects",
            Operation::ListObjectsV2 { .. } => "ListObjectsV2",
            Operation::ListMultipartUploads { .. } => "ListMultipartUploads",
            Operation::DeleteObjects { .. } => "DeleteObjects",
            Operation::PostObject { .. } => "PostObject",
            Operation::PutObject { .. } => "PutObject",
            Operation::CopyObject { .. } => "CopyObject",
            Operation::GetObject { .. } => "GetObject",
            Operation::HeadObject { .. } => "HeadObject",
            Operation::DeleteObject { .. } => "DeleteObject",
            Operation::GetObjectAcl { .. } => "GetObjectAcl",
            Operation::PutObjectAcl { .. } => "PutObjectAcl",
            Operation::GetObjectTagging { .. } => "GetObjectTagging",
            Operation::PutObjectTagging { .. } => "PutObjectTagging",
            Operation::DeleteObjectTagging { .. } => "DeleteObjectTagging",
            Operation::CreateMultipartUpload { .. } => "CreateMultipartUpload",
            Operation::UploadPart { .. } => "UploadPart",
            Operation::UploadPartCopy { .. } => "UploadPartCopy",
            Operation::CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            Operation::AbortMultipartUpload { .. } => "AbortMultipartUpload",
            Operation::ListParts { .. } => "ListParts",
        }
    }

    /// The permission the operation needs.
    pub fn action(&self) -> Action {
        match self {
            Operation::ListBuckets
            | Operation::HeadBucket { .. }
            | Operation::GetBucketLocation { .. }
            | Operation::GetBucketVersioning { .. }
            | Operation::GetBucketAcl { .. }
            | Operation::ListObjects { .. }
            | Operation::ListObjectsV2 { .. }
            | Operation::ListMultipartUploads { .. }
            | Operation::ListParts { .. } => Action::List,
            Operation::CreateBucket { .. }
            | Operation::PutBucketAcl { .. }
            | Operation::PostObject { .. }
            | Operation::PutObject { .. }
            | Operation::CopyObject { .. }
            | Operation::PutObjectAcl { .. }
            | Operation::PutObjectTagging { .. }
            | Operation::DeleteObjectTagging { .. }
            | Operation::CreateMultipartUpload { .. }
            | Operation::UploadPart { .. }
            | Operation::UploadPartCopy { .. }
            | Operation::CompleteMultipartUpload { .. }
            | Operation::AbortMultipartUpload { .. } => Action::Write,
            Operation::DeleteBucket { .. }
            | Operation::DeleteObject { .. }
            | Operation::DeleteObjects { .. } => Action::Delete,
            Operation::GetObject { .. }
            | Operation::HeadObject { .. }
            | Operation::GetObjectAcl { .. }
            | Operation::GetObjectTagging { .. } => Action::Read,
        }
    }

    /// The bucket the operation addresses, if any.
    pub fn bucket(&self) -> Option<&str> {
        match self.resource() {
            Resource::Service => None,
            Resource::Bucket(b) | Resource::AnyInBucket(b) => Some(b),
            Resource::Listing { bucket, .. } | Resource::Object { bucket, .. } => Some(bucket),
        }
    }

    /// What the operation touches, for the grant check.
    pub fn resource(&self) -> Resource<'_> {
        match self {
            Operation::ListBuckets => Resource::Service,
            Operation::CreateBucket { bucket }
            | Operation::HeadBucket { bucket }
            | Operation::DeleteBucket { bucket }
            | Operation::GetBucketLocation { bucket }
            | Operation::GetBucketVersioning { bucket }
            | Operation::GetBucketAcl { bucket }
            | Operation::PutBucketAcl { bucket } => Resource::Bucket(bucket),
            Operation::ListObjects { bucket, params }
            | Operation::ListObjectsV2 { bucket, params } => Resource::Listing {
                bucket,
                prefix: &params.prefix,
            },
            Operation::ListMultipartUploads { bucket, params } => Resource::Listing {
                bucket,
                prefix: &params.prefix,
            },
            // Checked per key by the handlers.
            Operation::DeleteObjects { bucket } | Operation::PostObject { bucket } => {
                Resource::AnyInBucket(bucket)
            }
            Operation::PutObject { bucket, key }
            | Operation::CopyObject { bucket, key, .. }
            | Operation::GetObject { bucket, key, .. }
            | Operation::HeadObject { bucket, key, .. }
            | Operation::DeleteObject { bucket, key }
            | Operation::GetObjectAcl { bucket, key }
            | Operation::PutObjectAcl { bucket, key }
            | Operation::GetObjectTagging { bucket, key }
            | Operation::PutObjectTagging { bucket, key }
            | Operation::DeleteObjectTagging { bucket, key }
            | Operation::CreateMultipartUpload { bucket, key }
            | Operation::UploadPart { bucket, key, .. }
            | Operation::UploadPartCopy { bucket, key, .. }
            | Operation::CompleteMultipartUpload { bucket, key, .. }
            | Operation::AbortMultipartUpload { bucket, key, .. }
            | Operation::ListParts { bucket, key, .. } => Resource::Object { bucket, key },
        }
    }
}

/// Bucket and key addressed by a request, before the operation is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: Option<String>,
    pub key: Option<String>,
}

impl Target {
    /// The `<Resource>` of an error response.
    pub fn resource(&self) -> String {
        match (&self.bucket, &self.key) {
            (Some(b), Some(k)) => format!("/{b}/{k}"),
            (Some(b), None) => format!("/{b}"),
            _ => "/".to_owned(),
        }
    }
}

/// Splits host and path into bucket and key. `host` may carry a port; `domains` are the configured
/// base domains for virtual-hosted-style requests.
pub fn target(host: Option<&str>, raw_path: &str, domains: &[String]) -> Target {
    let host = host.map(strip_port).map(|h| h.to_ascii_lowercase());
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    if let Some(host) = host {
        for d in domains {
            if let Some(bucket) = host
                .strip_suffix(d.as_str())
                .and_then(|b| b.strip_suffix('.'))
                && !bucket.is_empty()
            {
                let key = uri_decode(path);
                return Target {
                    bucket: Some(bucket.to_owned()),
                    key: (!key.is_empty()).then_some(key),
                };
            }
        }
    }
    match path.split_once('/') {
        None if path.is_empty() => Target {
            bucket: None,
            key: None,
        },
        None => Target {
            bucket: Some(uri_decode(path)),
            key: None,
        },
        Some((b, k)) => {
            let key = uri_decode(k);
            Target {
                bucket: Some(uri_decode(b)),
                key: (!key.is_empty()).then_some(key),
            }
        }
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        // IPv6 literal: [::1]:9000
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// Sub-resources S3 defines on buckets and objects that Lifeboat does not implement yet.
const UNIMPLEMENTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "torrent",
    "versions",
    "website",
];

pub struct Query<'a>(pub &'a [(String, String)]);

impl Query<'_> {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

fn not_implemented(what: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NotImplemented,
        format!("{what} is not implemented by Lifeboat."),
    )
}

fn method_not_allowed(method: &Method) -> S3Error {
    S3Error::new(S3ErrorCode::MethodNotAllowed)
        .extra("Method", method.as_str())
        .extra("ResourceType", "OBJECT")
}

/// Routes a request to its operation. `copy_source` is the `x-amz-copy-source` header and
/// `form_upload` says the body is `multipart/form-data` (a browser POST upload).
pub fn route(
    method: &Method,
    target: &Target,
    query: &[(String, String)],
    copy_source: Option<&str>,
    form_upload: bool,
) -> Result<Operation, S3Error> {
    let q = Query(query);
    let Some(bucket) = target.bucket.clone() else {
        return match *method {
            Method::GET => Ok(Operation::ListBuckets),
            _ => Err(method_not_allowed(method)),
        };
    };
    if let Some(sub) = UNIMPLEMENTED_SUBRESOURCES.iter().find(|s| q.has(s)) {
        return Err(not_implemented(&format!("The ?{sub} sub-resource")));
    }
    match target.key.clone() {
        None => route_bucket(method, bucket, &q, form_upload),
        Some(key) => route_object(method, bucket, key, &q, copy_source),
    }
}

fn route_bucket(
    method: &Method,
    bucket: String,
    q: &Query<'_>,
    form_upload: bool,
) -> Result<Operation, S3Error> {
    let m = method.clone();
    if q.has("location") {
        return match m {
            Method::GET => Ok(Operation::GetBucketLocation { bucket }),
            _ => Err(not_implemented("Setting a bucket location")),
        };
    }
    if q.has("versioning") {
        return match m {
            Method::GET => Ok(Operation::GetBucketVersioning { bucket }),
            _ => Err(not_implemented("Bucket versioning")),
        };
    }
    if q.has("acl") {
        return match m {
            Method::GET => Ok(Operation::GetBucketAcl { bucket }),
            Method::PUT => Ok(Operation::PutBucketAcl { bucket }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if q.has("tagging") || q.has("uploadId") || q.has("partNumber") {
        return Err(not_implemented("This bucket sub-resource"));
    }
    if q.has("uploads") {
        return match m {
            Method::GET => Ok(Operation::ListMultipartUploads {
                bucket,
                params: upload_list_params(q)?,
            }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if q.has("delete") {
        return match m {
            Method::POST => Ok(Operation::DeleteObjects { bucket }),
            _ => Err(method_not_allowed(method)),
        };
    }
    match m {
        Method::GET => {
            if q.get("list-type") == Some("2") {
                Ok(Operation::ListObjectsV2 {
                    bucket,
                    params: list_params(q, true)?,
                })
            } else {
                Ok(Operation::ListObjects {
                    bucket,
                    params: list_params(q, false)?,
                })
            }
        }
        Method::PUT => Ok(Operation::CreateBucket { bucket }),
        Method::HEAD => Ok(Operation::HeadBucket { bucket }),
        Method::DELETE => Ok(Operation::DeleteBucket { bucket }),
        Method::POST if form_upload => Ok(Operation::PostObject { bucket }),
        Method::POST => Err(not_implemented("This POST on a bucket")),
        _ => Err(method_not_allowed(method)),
    }
}

fn route_object(
    method: &Method,
    bucket: String,
    key: String,
    q: &Query<'_>,
    copy_source: Option<&str>,
) -> Result<Operation, S3Error> {
    let m = method.clone();
    let part_number = q.get("partNumber").map(parse_part_number).transpose()?;
    if let Some(upload_id) = q.get("uploadId").map(str::to_owned) {
        return match m {
            Method::PUT => {
                let part_number = part_number.ok_or_else(|| {
                    S3Error::invalid_argument("partNumber is required", "partNumber", "")
                })?;
                match copy_source {
                    Some(src) => Ok(Operation::UploadPartCopy {
                        bucket,
                        key,
                        upload_id,
                        part_number,
                        source: parse_copy_source(src)?,
                    }),
                    None => Ok(Operation::UploadPart {
                        bucket,
                        key,
                        upload_id,
                        part_number,
                    }),
                }
            }
            Method::POST => Ok(Operation::CompleteMultipartUpload {
                bucket,
                key,
                upload_id,
            }),
            Method::DELETE => Ok(Operation::AbortMultipartUpload {
                bucket,
                key,
                upload_id,
            }),
            Method::GET => Ok(Operation::ListParts {
                bucket,
                key,
                upload_id,
                max_parts: parse_max(q, "max-parts")?,
                marker: match q.get("part-number-marker") {
                    None => 0,
                    Some(v) => v.parse().map_err(|_| {
                        S3Error::invalid_argument(
                            "Invalid part-number-marker",
                            "part-number-marker",
                            v,
                        )
                    })?,
                },
            }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if q.has("uploads") {
        return match m {
            Method::POST => Ok(Operation::CreateMultipartUpload { bucket, key }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if q.has("acl") {
        return match m {
            Method::GET => Ok(Operation::GetObjectAcl { bucket, key }),
            Method::PUT => Ok(Operation::PutObjectAcl { bucket, key }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if q.has("tagging") {
        return match m {
            Method::GET => Ok(Operation::GetObjectTagging { bucket, key }),
            Method::PUT => Ok(Operation::PutObjectTagging { bucket, key }),
            Method::DELETE => Ok(Operation::DeleteObjectTagging { bucket, key }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if q.has("delete") || q.has("versioning") || q.has("location") {
        return Err(not_implemented("This object sub-resource"));
    }
    match m {
        Method::GET => Ok(Operation::GetObject {
            bucket,
            key,
            overrides: response_overrides(q),
            part_number,
        }),
        Method::HEAD => Ok(Operation::HeadObject {
            bucket,
            key,
            part_number,
        }),
        Method::PUT => match copy_source {
            Some(src) => Ok(Operation::CopyObject {
                bucket,
                key,
                source: parse_copy_source(src)?,
            }),
            None => Ok(Operation::PutObject { bucket, key }),
        },
        Method::DELETE => Ok(Operation::DeleteObject { bucket, key }),
        Method::POST => Err(not_implemented("This POST on an object")),
        _ => Err(method_not_allowed(method)),
    }
}

fn parse_part_number(v: &str) -> Result<u16, S3Error> {
    match v.trim().parse::<u16>() {
        Ok(n) if (1..=10000).contains(&n) => Ok(n),
        _ => Err(S3Error::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
            "partNumber",
            v,
        )),
    }
}

/// `x-amz-copy-source`: `bucket/key` or `/bucket/key`, URL-encoded, optionally `?versionId=`.
/// Lifeboat keeps no versions, so only `versionId=null` (the id of an unversioned object) is valid.
pub fn parse_copy_source(value: &str) -> Result<CopySource, S3Error> {
    let invalid = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
        .extra("ArgumentName", "x-amz-copy-source")
        .extra("ArgumentValue", value)
    };
    let (path, query) = value.split_once('?').unwrap_or((value, ""));
    for (k, v) in crate::auth::sigv4::parse_query(query) {
        if k == "versionId" && v != "null" {
            return Err(S3Error::invalid_argument(
                "Invalid version id specified",
                "versionId",
                &v,
            ));
        }
    }
    let path = uri_decode(path.trim_start_matches('/'));
    let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok(CopySource {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    })
}

fn parse_max(q: &Query<'_>, name: &str) -> Result<usize, S3Error> {
    match q.get(name) {
        None => Ok(1000),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => Ok(n.min(1000) as usize),
            _ => Err(S3Error::invalid_argument(
                format!("Provided {name} not an integer or within integer range"),
                name,
                v,
            )),
        },
    }
}

fn encoding_url(q: &Query<'_>) -> Result<bool, S3Error> {
    match q.get("encoding-type") {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("url") => Ok(true),
        Some(v) => Err(S3Error::invalid_argument(
            "Invalid Encoding Method specified in Request",
            "encoding-type",
            v,
        )),
    }
}

fn upload_list_params(q: &Query<'_>) -> Result<UploadListParams, S3Error> {
    Ok(UploadListParams {
        prefix: q.get("prefix").unwrap_or("").to_owned(),
        delimiter: q
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        key_marker: q
            .get("key-marker")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        upload_id_marker: q
            .get("upload-id-marker")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        max_uploads: parse_max(q, "max-uploads")?,
        encoding_url: encoding_url(q)?,
    })
}

fn response_overrides(q: &Query<'_>) -> ResponseOverrides {
    const MAP: [(&str, &str); 6] = [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ];
    MAP.iter()
        .filter_map(|(param, header)| q.get(param).map(|v| (*header, v.to_owned())))
        .collect()
}

fn list_params(q: &Query<'_>, v2: bool) -> Result<ListParams, S3Error> {
    let max_keys = parse_max(q, "max-keys")?;
    let encoding_url = encoding_url(q)?;
    Ok(ListParams {
        prefix: q.get("prefix").unwrap_or("").to_owned(),
        delimiter: q
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        max_keys,
        encoding_url,
        marker: (!v2).then(|| q.get("marker").map(str::to_owned)).flatten(),
        continuation_token: v2
            .then(|| q.get("continuation-token").map(str::to_owned))
            .flatten(),
        start_after: v2
            .then(|| q.get("start-after").map(str::to_owned))
            .flatten(),
        fetch_owner: v2 && q.get("fetch-owner") == Some("true"),
    })
}

/// AWS's naming rules for general purpose buckets (`bucketnamingrules.html`), with one documented
/// deviation: names of one or two characters are accepted (AWS wants three), so that the
/// quick start's `aws s3 mb s3://x` works.
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    if !(1..=63).contains(&b.len()) {
        return false;
    }
    let allowed = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-';
    if !b.iter().all(|&c| allowed(c)) {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return false;
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return false;
    }
    const BAD_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const BAD_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    !BAD_PREFIXES.iter().any(|p| name.starts_with(p))
        && !BAD_SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sigv4::parse_query;

    fn domains() -> Vec<String> {
        vec!["s3.localhost".into(), "s3.example.com".into()]
    }

    fn t(b: Option<&str>, k: Option<&str>) -> Target {
        Target {
            bucket: b.map(Into::into),
            key: k.map(Into::into),
        }
    }

    #[test]
    fn path_style_targets() {
        let d = domains();
        assert_eq!(target(Some("127.0.0.1:9000"), "/", &d), t(None, None));
        assert_eq!(target(Some("127.0.0.1:9000"), "/b", &d), t(Some("b"), None));
        assert_eq!(target(Some("localhost"), "/b/", &d), t(Some("b"), None));
        assert_eq!(
            target(Some("s3.localhost:9000"), "/b/dir/a%20b.txt", &d),
            t(Some("b"), Some("dir/a b.txt"))
        );
        assert_eq!(target(None, "/b/k//x", &d), t(Some("b"), Some("k//x")));
    }

    #[test]
    fn virtual_hosted_targets_with_ports_and_dotted_buckets() {
        let d = domains();
        assert_eq!(
            target(Some("my.dotted.bucket.s3.localhost:9000"), "/k/x", &d),
            t(Some("my.dotted.bucket"), Some("k/x"))
        );
        assert_eq!(
            target(Some("Videos.S3.Example.com"), "/", &d),
            t(Some("videos"), None)
        );
        assert_eq!(
            target(Some("[::1]:9000"), "/b/k", &d),
            t(Some("b"), Some("k"))
        );
    }

    #[test]
    fn aws_doc_urls_route_to_their_operations() {
        let r = |m: Method, host: &str, path: &str, query: &str| {
            route(
                &m,
                &target(Some(host), path, &domains()),
                &parse_query(query),
                None,
                false,
            )
        };
        let h = "examplebucket.s3.example.com";
        assert!(matches!(
            r(Method::GET, "s3.example.com", "/", ""),
            Ok(Operation::ListBuckets)
        ));
        assert!(matches!(
            r(
                Method::GET,
                h,
                "/",
                "list-type=2&prefix=photos/&max-keys=50"
            ),
            Ok(Operation::ListObjectsV2 {
                params: ListParams { max_keys: 50, .. },
                ..
            })
        ));
        assert!(matches!(
            r(Method::GET, h, "/", "location"),
            Ok(Operation::GetBucketLocation { .. })
        ));
        assert!(matches!(
            r(Method::GET, h, "/my-image.jpg", "x-id=GetObject"),
            Ok(Operation::GetObject { .. })
        ));
        assert!(matches!(
            r(Method::PUT, h, "/my-image.jpg", ""),
            Ok(Operation::PutObject { .. })
        ));
        assert!(matches!(
            r(Method::DELETE, h, "/", ""),
            Ok(Operation::DeleteBucket { .. })
        ));
        let code = |x: Result<Operation, S3Error>| x.err().map(|e| e.code);
        assert_eq!(
            code(r(Method::GET, h, "/", "policy")),
            Some(S3ErrorCode::NotImplemented)
        );
        let is = |x: Result<Operation, S3Error>, name: &str| {
            assert_eq!(x.map(|o| o.name()).ok(), Some(name));
        };
        is(r(Method::GET, h, "/", "versioning"), "GetBucketVersioning");
        is(r(Method::POST, h, "/k", "uploads"), "CreateMultipartUpload");
        is(
            r(Method::PUT, h, "/k", "partNumber=3&uploadId=u"),
            "UploadPart",
        );
        is(
            r(Method::POST, h, "/k", "uploadId=u"),
            "CompleteMultipartUpload",
        );
        is(
            r(Method::DELETE, h, "/k", "uploadId=u"),
            "AbortMultipartUpload",
        );
        is(r(Method::GET, h, "/k", "uploadId=u"), "ListParts");
        is(r(Method::GET, h, "/", "uploads"), "ListMultipartUploads");
        is(r(Method::POST, h, "/", "delete"), "DeleteObjects");
        is(r(Method::GET, h, "/k", "partNumber=2"), "GetObject");
        is(r(Method::GET, h, "/k", "tagging"), "GetObjectTagging");
        is(r(Method::PUT, h, "/k", "acl"), "PutObjectAcl");
        assert_eq!(
            code(r(Method::PUT, h, "/k", "partNumber=0&uploadId=u")),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code(r(Method::PATCH, h, "/k", "")),
            Some(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            code(r(Method::PUT, "s3.example.com", "/", "")),
            Some(S3ErrorCode::MethodNotAllowed)
        );
        assert_eq!(
            code(r(Method::GET, h, "/", "max-keys=-1")),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code(r(Method::GET, h, "/", "max-keys=abc")),
            Some(S3ErrorCode::InvalidArgument)
        );
        assert!(matches!(
            r(Method::GET, h, "/", "max-keys=5000"),
            Ok(Operation::ListObjects {
                params: ListParams { max_keys: 1000, .. },
                ..
            })
        ));
    }

    #[test]
    fn copy_sources_as_clients_send_them() {
        let want = |b: &str, k: &str| CopySource {
            bucket: b.into(),
            key: k.into(),
        };
        assert_eq!(parse_copy_source("b/k%20x").ok(), Some(want("b", "k x")));
        assert_eq!(
            parse_copy_source("/b/dir/k?versionId=null").ok(),
            Some(want("b", "dir/k"))
        );
        assert!(parse_copy_source("b/k?versionId=abc").is_err());
        assert!(parse_copy_source("justbucket").is_err());
        let op = route(
            &Method::PUT,
            &t(Some("b"), Some("k")),
            &[],
            Some("src/key"),
            false,
        );
        assert!(matches!(op, Ok(Operation::CopyObject { .. })));
    }

    #[test]
    fn response_overrides_are_collected() {
        let q = parse_query("response-content-type=text%2Fplain&response-cache-control=no-cache");
        let op = route(&Method::GET, &t(Some("b"), Some("k")), &q, None, false);
        let Ok(Operation::GetObject { overrides, .. }) = op else {
            panic!("not a GetObject")
        };
        assert!(overrides.contains(&("content-type", "text/plain".into())));
        assert!(overrides.contains(&("cache-control", "no-cache".into())));
    }

    #[test]
    fn bucket_naming_rules() {
        for ok in ["abc", "my-bucket.v2", "a1b", "docexamplebucket1", "x"] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Abc",
            "a_b",
            "-ab",
            "ab-",
            "a..b",
            "192.168.5.4",
            "xn--ab",
            "ab-s3alias",
            "a.-b",
            &"a".repeat(64),
        ] {
            assert!(!valid_bucket_name(bad), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn routing_never_panics(host in "\\PC{0,30}", path in "\\PC{0,60}", query in "\\PC{0,60}") {
            let target = target(Some(&host), &path, &domains());
            for m in [Method::GET, Method::PUT, Method::HEAD, Method::DELETE, Method::POST] {
                let _ = route(&m, &target, &parse_query(&query), None, false);
                let _ = route(&m, &target, &parse_query(&query), Some(&query), true);
            }
        }
    }
}
