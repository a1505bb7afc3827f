//! The query parameters (and `x-amz-copy-source`) of the operations that take them, parsed
//! into typed values with S3's errors: ListObjects and ListObjectsV2, ListMultipartUploads,
//! `partNumber`, the `response-*` overrides of GetObject, and the copy source.

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
    /// ListObjectVersions `version-id-marker` (only `null` exists here).
    pub version_id_marker: Option<String>,
}

/// Parameters of ListBuckets (paginated since 2024): `max-buckets`, `continuation-token`,
/// `prefix`, `bucket-region`. `max_buckets` is `None` when none of them is given: all buckets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BucketListParams {
    pub max_buckets: Option<usize>,
    pub continuation_token: Option<String>,
    pub prefix: Option<String>,
    pub region: Option<String>,
}

/// The largest `max-buckets`, and the page size when only a token, prefix or region is given.
pub const MAX_BUCKETS_PAGE: usize = 10_000;

impl BucketListParams {
    pub fn parse(q: &Query<'_>) -> Result<Self, S3Error> {
        let mut p = BucketListParams {
            max_buckets: None,
            continuation_token: q.get("continuation-token").map(str::to_owned),
            prefix: q.get("prefix").map(str::to_owned),
            region: q.get("bucket-region").map(str::to_owned),
        };
        if let Some(v) = q.get("max-buckets") {
            let n = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_BUCKETS_PAGE).contains(n))
                .ok_or_else(|| {
                    S3Error::invalid_argument(
                        "Argument max-buckets must be an integer between 1 and 10000.",
                        "max-buckets",
                        v,
                    )
                })?;
            p.max_buckets = Some(n);
        } else if p.continuation_token.is_some() || p.prefix.is_some() || p.region.is_some() {
            p.max_buckets = Some(MAX_BUCKETS_PAGE);
        }
        Ok(p)
    }
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

pub fn parse_part_number(v: &str) -> Result<u16, S3Error> {
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
    // Decode first (some SDKs send the leading slash encoded, `%2Fbucket%2Fkey`), then strip it.
    let path = crate::auth::sigv4::decode_path(path).map_err(|_| invalid())?;
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok(CopySource {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
    })
}

pub fn parse_max(q: &Query<'_>, name: &str) -> Result<usize, S3Error> {
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

pub fn upload_list_params(q: &Query<'_>) -> Result<UploadListParams, S3Error> {
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

pub fn response_overrides(q: &Query<'_>) -> ResponseOverrides {
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

pub fn list_params(q: &Query<'_>, v2: bool) -> Result<ListParams, S3Error> {
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
        version_id_marker: None,
    })
}

/// ListObjectVersions: ListObjects' parameters with `key-marker` as the marker, and the
/// `version-id-marker` rules AWS applies (it needs a key marker; here only `null` names a
/// version).
pub fn version_list_params(q: &Query<'_>) -> Result<ListParams, S3Error> {
    let mut p = list_params(q, false)?;
    p.marker = q.get("key-marker").map(str::to_owned);
    if let Some(v) = q.get("version-id-marker") {
        let bad = |msg: &str| S3Error::invalid_argument(msg, "version-id-marker", v);
        if p.marker.as_deref().is_none_or(str::is_empty) {
            return Err(bad(
                "A version-id marker cannot be specified without a key marker.",
            ));
        }
        if v.is_empty() {
            return Err(bad("A version-id marker cannot be empty."));
        }
        if v != "null" {
            return Err(bad("Invalid version id specified"));
        }
        p.version_id_marker = Some(v.to_owned());
    }
    Ok(p)
}
