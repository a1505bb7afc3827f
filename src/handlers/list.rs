//! ListObjects (v1) and ListObjectsV2 (`API_ListObjects.html`, `API_ListObjectsV2.html`), served
//! from the metadata index. Continuation tokens are opaque (base64url of where the page ended).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;

use super::{S3Response, xml_response};
use crate::auth::sigv4::uri_encode;
use crate::context::Context;
use crate::error::{S3Error, S3Result};
use crate::router::ListParams;
use crate::store::{ListPage, ListQuery};
use crate::time::iso_date;
use crate::xml::XmlWriter;

pub(super) fn encode_token(last: &str) -> String {
    TOKEN.encode(last.as_bytes())
}

pub(super) fn decode_token(token: &str) -> S3Result<String> {
    TOKEN
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::invalid_argument(
                "The continuation token provided is incorrect",
                "continuation-token",
                token,
            )
        })
}

struct Encoder(bool);

impl Encoder {
    fn apply(&self, s: &str) -> String {
        if self.0 {
            uri_encode(s, false)
        } else {
            s.to_owned()
        }
    }
}

fn write_contents(w: &mut XmlWriter, page: &ListPage, enc: &Encoder, owner: Option<&str>) {
    for (key, meta) in &page.objects {
        w.open("Contents");
        w.element("Key", &enc.apply(key));
        w.element("LastModified", &iso_date(meta.last_modified_ms));
        w.element("ETag", &meta.quoted_etag());
        if let Some(c) = &meta.checksum {
            w.element("ChecksumAlgorithm", c.algorithm.name());
            w.element("ChecksumType", c.type_name());
        }
        w.element("Size", &meta.size.to_string());
        if let Some(owner) = owner {
            w.open("Owner");
            w.element("ID", owner);
            w.element("DisplayName", owner);
            w.close("Owner");
        }
        w.element("StorageClass", "STANDARD");
        w.close("Contents");
    }
    for cp in &page.common_prefixes {
        w.open("CommonPrefixes");
        w.element("Prefix", &enc.apply(cp));
        w.close("CommonPrefixes");
    }
}

/// One page of the bucket's keys, from the replication backend, starting after `start_after`.
async fn list_page(
    ctx: &Context,
    bucket: &str,
    p: &ListParams,
    start_after: Option<String>,
) -> S3Result<ListPage> {
    let query = ListQuery {
        prefix: p.prefix.clone(),
        delimiter: p.delimiter.clone(),
        start_after: start_after.filter(|s| !s.is_empty()),
        max_keys: p.max_keys,
    };
    ctx.replication.list(bucket, query).await
}

/// `MaxKeys`, `Delimiter`, `EncodingType` and `IsTruncated`, as every listing sends them.
fn write_limits(w: &mut XmlWriter, p: &ListParams, enc: &Encoder, truncated: bool) {
    w.element("MaxKeys", &p.max_keys.to_string());
    if let Some(d) = &p.delimiter {
        w.element("Delimiter", &enc.apply(d));
    }
    if p.encoding_url {
        w.element("EncodingType", "url");
    }
    w.element("IsTruncated", if truncated { "true" } else { "false" });
}

/// The listing's answer; when the upstream did not answer, it says so (`x-lifeboat-list:
/// local`) rather than silently drop what only the upstream holds.
fn listing_response(xml: String, page: &ListPage) -> S3Result<S3Response> {
    let mut resp = xml_response(xml)?;
    if page.from_local_index {
        resp.headers_mut()
            .insert("x-lifeboat-list", http::HeaderValue::from_static("local"));
    }
    Ok(resp)
}

pub async fn list_objects(
    ctx: &Context,
    bucket: &str,
    p: &ListParams,
    v2: bool,
) -> S3Result<S3Response> {
    let start_after = if v2 {
        match &p.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => p.start_after.clone(),
        }
    } else {
        p.marker.clone()
    };
    let owner = ctx.store.bucket(bucket).await?.owner;
    let page = list_page(ctx, bucket, p, start_after).await?;
    let enc = Encoder(p.encoding_url);
    let mut w = XmlWriter::new();
    w.root("ListBucketResult");
    w.element("Name", bucket);
    w.element("Prefix", &enc.apply(&p.prefix));
    if v2 {
        if let Some(t) = &p.continuation_token {
            w.element("ContinuationToken", t);
        }
        if let Some(s) = &p.start_after {
            w.element("StartAfter", &enc.apply(s));
        }
        w.element(
            "KeyCount",
            &(page.objects.len() + page.common_prefixes.len()).to_string(),
        );
    } else {
        w.element("Marker", &enc.apply(p.marker.as_deref().unwrap_or("")));
    }
    write_limits(&mut w, p, &enc, page.is_truncated);
    if page.is_truncated
        && let Some(last) = &page.last
    {
        if v2 {
            w.element("NextContinuationToken", &encode_token(last));
        } else if p.delimiter.is_some() {
            w.element("NextMarker", &enc.apply(last));
        }
    }
    let show_owner = !v2 || p.fetch_owner;
    write_contents(&mut w, &page, &enc, show_owner.then_some(owner.as_str()));
    w.close("ListBucketResult");
    listing_response(w.finish(), &page)
}

/// ListObjectVersions (`API_ListObjectVersions.html`) of a bucket that never had versioning:
/// every object is its one version, `null` and latest; no delete markers. The listing is the
/// same as ListObjects' (the upstream's in gateway mode), `key-marker` its marker.
pub async fn list_versions(ctx: &Context, bucket: &str, p: &ListParams) -> S3Result<S3Response> {
    let owner = ctx.store.bucket(bucket).await?.owner;
    let page = list_page(ctx, bucket, p, p.marker.clone()).await?;
    let enc = Encoder(p.encoding_url);
    let mut w = XmlWriter::new();
    w.root("ListVersionsResult");
    w.element("Name", bucket);
    w.element("Prefix", &enc.apply(&p.prefix));
    w.element("KeyMarker", &enc.apply(p.marker.as_deref().unwrap_or("")));
    w.element(
        "VersionIdMarker",
        p.version_id_marker.as_deref().unwrap_or(""),
    );
    if page.is_truncated
        && let Some(last) = &page.last
    {
        w.element("NextKeyMarker", &enc.apply(last));
        w.element("NextVersionIdMarker", "null");
    }
    write_limits(&mut w, p, &enc, page.is_truncated);
    for (key, meta) in &page.objects {
        w.open("Version");
        w.element("Key", &enc.apply(key));
        w.element("VersionId", "null");
        w.element("IsLatest", "true");
        w.element("LastModified", &iso_date(meta.last_modified_ms));
        w.element("ETag", &meta.quoted_etag());
        if let Some(c) = &meta.checksum {
            w.element("ChecksumAlgorithm", c.algorithm.name());
            w.element("ChecksumType", c.type_name());
        }
        w.element("Size", &meta.size.to_string());
        w.open("Owner");
        w.element("ID", &owner);
        w.element("DisplayName", &owner);
        w.close("Owner");
        w.element("StorageClass", "STANDARD");
        w.close("Version");
    }
    for cp in &page.common_prefixes {
        w.open("CommonPrefixes");
        w.element("Prefix", &enc.apply(cp));
        w.close("CommonPrefixes");
    }
    w.close("ListVersionsResult");
    listing_response(w.finish(), &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbage_is_invalid_argument() {
        let t = encode_token("photos/2026/ä b+c");
        assert_eq!(decode_token(&t).ok().as_deref(), Some("photos/2026/ä b+c"));
        assert!(decode_token("!!!").is_err());
    }
}
