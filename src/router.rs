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
    ListObjects {
        bucket: String,
        params: ListParams,
    },
    ListObjectsV2 {
        bucket: String,
        params: ListParams,
    },
    PutObject {
        bucket: String,
        key: String,
    },
    GetObject {
        bucket: String,
        key: String,
        overrides: ResponseOverrides,
    },
    HeadObject {
        bucket: String,
        key: String,
    },
    DeleteObject {
        bucket: String,
        key: String,
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
            Operation::ListObjects { .. } => "ListObjects",
            Operation::ListObjectsV2 { .. } => "ListObjectsV2",
            Operation::PutObject { .. } => "PutObject",
            Operation::GetObject { .. } => "GetObject",
            Operation::HeadObject { .. } => "HeadObject",
            Operation::DeleteObject { .. } => "DeleteObject",
        }
    }

    /// The permission the operation needs.
    pub fn action(&self) -> Action {
        match self {
            Operation::ListBuckets
            | Operation::HeadBucket { .. }
            | Operation::GetBucketLocation { .. }
            | Operation::ListObjects { .. }
            | Operation::ListObjectsV2 { .. } => Action::List,
            Operation::CreateBucket { .. } | Operation::PutObject { .. } => Action::Write,
            Operation::DeleteBucket { .. } | Operation::DeleteObject { .. } => Action::Delete,
            Operation::GetObject { .. } | Operation::HeadObject { .. } => Action::Read,
        }
    }

    /// What the operation touches, for the grant check.
    pub fn resource(&self) -> Resource<'_> {
        match self {
            Operation::ListBuckets => Resource::Service,
            Operation::CreateBucket { bucket }
            | Operation::HeadBucket { bucket }
            | Operation::DeleteBucket { bucket }
            | Operation::GetBucketLocation { bucket } => Resource::Bucket(bucket),
            Operation::ListObjects { bucket, params }
            | Operation::ListObjectsV2 { bucket, params } => Resource::Listing {
                bucket,
                prefix: &params.prefix,
            },
            Operation::PutObject { bucket, key }
            | Operation::GetObject { bucket, key, .. }
            | Operation::HeadObject { bucket, key }
            | Operation::DeleteObject { bucket, key } => Resource::Object { bucket, key },
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
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
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
    "partNumber",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
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

/// Routes a request to its operation.
pub fn route(
    method: &Method,
    target: &Target,
    query: &[(String, String)],
    has_copy_source: bool,
) -> Result<Operation, S3Error> {
    let q = Query(query);
    let sub = UNIMPLEMENTED_SUBRESOURCES.iter().find(|s| q.has(s));
    let Some(bucket) = target.bucket.clone() else {
        return match *method {
            Method::GET => Ok(Operation::ListBuckets),
            _ => Err(method_not_allowed(method)),
        };
    };
    match &target.key {
        None => {
            if q.has("location") {
                return match *method {
                    Method::GET => Ok(Operation::GetBucketLocation { bucket }),
                    _ => Err(not_implemented("This bucket location operation")),
                };
            }
            if let Some(sub) = sub {
                return Err(not_implemented(&format!("The ?{sub} sub-resource")));
            }
            match *method {
                Method::GET => {
                    if q.get("list-type") == Some("2") {
                        Ok(Operation::ListObjectsV2 {
                            bucket,
                            params: list_params(&q, true)?,
                        })
                    } else {
                        Ok(Operation::ListObjects {
                            bucket,
                            params: list_params(&q, false)?,
                        })
                    }
                }
                Method::PUT => Ok(Operation::CreateBucket { bucket }),
                Method::HEAD => Ok(Operation::HeadBucket { bucket }),
                Method::DELETE => Ok(Operation::DeleteBucket { bucket }),
                Method::POST => Err(not_implemented("POST on a bucket")),
                _ => Err(method_not_allowed(method)),
            }
        }
        Some(key) => {
            let key = key.clone();
            if let Some(sub) = sub {
                return Err(not_implemented(&format!("The ?{sub} sub-resource")));
            }
            match *method {
                Method::GET => Ok(Operation::GetObject {
                    bucket,
                    key,
                    overrides: response_overrides(&q),
                }),
                Method::HEAD => Ok(Operation::HeadObject { bucket, key }),
                Method::PUT if has_copy_source => Err(not_implemented("CopyObject")),
                Method::PUT => Ok(Operation::PutObject { bucket, key }),
                Method::DELETE => Ok(Operation::DeleteObject { bucket, key }),
                Method::POST => Err(not_implemented("POST on an object")),
                _ => Err(method_not_allowed(method)),
            }
        }
    }
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
    let max_keys = match q.get("max-keys") {
        None => 1000,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 0 => n.min(1000) as usize,
            _ => {
                return Err(S3Error::invalid_argument(
                    "Provided max-keys not an integer or within integer range",
                    "max-keys",
                    v,
                ));
            }
        },
    };
    let encoding_url = match q.get("encoding-type") {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("url") => true,
        Some(v) => {
            return Err(S3Error::invalid_argument(
                "Invalid Encoding Method specified in Request",
                "encoding-type",
                v,
            ));
        }
    };
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
            code(r(Method::GET, h, "/", "versioning")),
            Some(S3ErrorCode::NotImplemented)
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
    fn response_overrides_are_collected() {
        let q = parse_query("response-content-type=text%2Fplain&response-cache-control=no-cache");
        let op = route(&Method::GET, &t(Some("b"), Some("k")), &q, false);
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
                let _ = route(&m, &target, &parse_query(&query), false);
            }
        }
    }
}
