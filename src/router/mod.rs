//! The router: method, host and path to one `Operation`, carrying its parsed parameters and the
//! permission it needs.
//!
//! Handles path-style (`/bucket/key`) and virtual-hosted-style (`bucket.<domain>/key`) addressing
//! as described in "Virtual hosting of buckets" (`VirtualHosting.html`). Sub-resources Lifeboat
//! does not implement answer `501 NotImplemented`; a method that makes no sense for the resource
//! answers `405 MethodNotAllowed`.

mod params;
mod target;

use http::Method;

use crate::auth::policy::{Action, Resource};
use crate::error::{S3Error, S3ErrorCode};
pub use params::{
    BucketListParams, CopySource, ListParams, Query, ResponseOverrides, UploadListParams,
};
use params::{
    list_params, parse_copy_source, parse_max, parse_part_number, response_overrides,
    upload_list_params, version_list_params,
};
pub use target::{Target, target, valid_bucket_name};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListBuckets {
        params: BucketListParams,
    },
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
    GetBucketCors {
        bucket: String,
    },
    PutBucketCors {
        bucket: String,
    },
    DeleteBucketCors {
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
    /// `GET /?versions`: in a bucket that never had versioning, every object's one `null`
    /// version.
    ListObjectVersions {
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
    GetObjectAttributes {
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
            Operation::ListBuckets { .. } => "ListBuckets",
            Operation::CreateBucket { .. } => "CreateBucket",
            Operation::HeadBucket { .. } => "HeadBucket",
            Operation::DeleteBucket { .. } => "DeleteBucket",
            Operation::GetBucketLocation { .. } => "GetBucketLocation",
            Operation::GetBucketVersioning { .. } => "GetBucketVersioning",
            Operation::GetBucketAcl { .. } => "GetBucketAcl",
            Operation::PutBucketAcl { .. } => "PutBucketAcl",
            Operation::GetBucketCors { .. } => "GetBucketCors",
            Operation::PutBucketCors { .. } => "PutBucketCors",
            Operation::DeleteBucketCors { .. } => "DeleteBucketCors",
            Operation::ListObjects { .. } => "ListObjects",
            Operation::ListObjectsV2 { .. } => "ListObjectsV2",
            Operation::ListObjectVersions { .. } => "ListObjectVersions",
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
            Operation::GetObjectAttributes { .. } => "GetObjectAttributes",
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
            Operation::ListBuckets { .. }
            | Operation::HeadBucket { .. }
            | Operation::GetBucketLocation { .. }
            | Operation::GetBucketVersioning { .. }
            | Operation::GetBucketAcl { .. }
            | Operation::GetBucketCors { .. }
            | Operation::ListObjects { .. }
            | Operation::ListObjectsV2 { .. }
            | Operation::ListObjectVersions { .. }
            | Operation::ListMultipartUploads { .. }
            | Operation::ListParts { .. } => Action::List,
            Operation::CreateBucket { .. }
            | Operation::PutBucketAcl { .. }
            | Operation::PutBucketCors { .. }
            | Operation::DeleteBucketCors { .. }
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
            | Operation::GetObjectTagging { .. }
            | Operation::GetObjectAttributes { .. } => Action::Read,
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
            Operation::ListBuckets { .. } => Resource::Service,
            Operation::CreateBucket { bucket }
            | Operation::HeadBucket { bucket }
            | Operation::DeleteBucket { bucket }
            | Operation::GetBucketLocation { bucket }
            | Operation::GetBucketVersioning { bucket }
            | Operation::GetBucketAcl { bucket }
            | Operation::PutBucketAcl { bucket }
            | Operation::GetBucketCors { bucket }
            | Operation::PutBucketCors { bucket }
            | Operation::DeleteBucketCors { bucket } => Resource::Bucket(bucket),
            Operation::ListObjects { bucket, params }
            | Operation::ListObjectsV2 { bucket, params }
            | Operation::ListObjectVersions { bucket, params } => Resource::Listing {
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
            | Operation::GetObjectAttributes { bucket, key }
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

/// Sub-resources S3 defines on buckets and objects that Lifeboat does not implement yet.
const UNIMPLEMENTED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
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
    "website",
];

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
            Method::GET => Ok(Operation::ListBuckets {
                params: BucketListParams::parse(&q)?,
            }),
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
    if q.has("cors") {
        return match m {
            Method::GET => Ok(Operation::GetBucketCors { bucket }),
            Method::PUT => Ok(Operation::PutBucketCors { bucket }),
            Method::DELETE => Ok(Operation::DeleteBucketCors { bucket }),
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
            if q.has("versions") {
                Ok(Operation::ListObjectVersions {
                    bucket,
                    params: version_list_params(q)?,
                })
            } else if q.get("list-type") == Some("2") {
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
    // Objects here have no versions but the one AWS calls `null` (an unversioned bucket's).
    if let Some(v) = q.get("versionId")
        && v != "null"
    {
        return Err(S3Error::invalid_argument(
            "Invalid version id specified",
            "versionId",
            v,
        ));
    }
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
    if q.has("attributes") {
        return match m {
            Method::GET => Ok(Operation::GetObjectAttributes { bucket, key }),
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
            virtual_host: false,
        }
    }

    fn vt(b: &str, k: Option<&str>) -> Target {
        Target {
            virtual_host: true,
            ..t(Some(b), k)
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
            vt("my.dotted.bucket", Some("k/x"))
        );
        assert_eq!(
            target(Some("Videos.S3.Example.com"), "/", &d),
            vt("videos", None)
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
            r(Method::GET, h, "/", "versions&prefix=photos/"),
            Ok(Operation::ListObjectVersions { .. })
        ));
        assert!(matches!(
            r(Method::GET, h, "/photos/a.jpg", "attributes"),
            Ok(Operation::GetObjectAttributes { .. })
        ));
        assert!(matches!(
            r(
                Method::GET,
                "s3.example.com",
                "/",
                "max-buckets=10&prefix=a"
            ),
            Ok(Operation::ListBuckets {
                params: BucketListParams {
                    max_buckets: Some(10),
                    ..
                }
            })
        ));
        assert!(matches!(
            r(Method::GET, "s3.example.com", "/", ""),
            Ok(Operation::ListBuckets { .. })
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
        let q = |v: &str| vec![("versionId".to_owned(), v.to_owned())];
        let object = t(Some("b"), Some("k"));
        assert!(route(&Method::GET, &object, &q("null"), None, false).is_ok());
        assert!(route(&Method::DELETE, &object, &q("null"), None, false).is_ok());
        let e = route(
            &Method::HEAD,
            &object,
            &q("3HL4kqtJlcpXroDTDmJ"),
            None,
            false,
        )
        .err();
        assert_eq!(e.map(|e| e.code), Some(S3ErrorCode::InvalidArgument));
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
        for ok in ["abc", "my-bucket.v2", "a1b", "docexamplebucket1"] {
            assert!(valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "",
            "x",
            "ab",
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
