//! GetObjectAttributes (`API_GetObjectAttributes.html`): the attributes named in
//! `x-amz-object-attributes` (ETag, Checksum, ObjectParts, StorageClass, ObjectSize), with the
//! parts paged by `x-amz-max-parts` and `x-amz-part-number-marker`. The ETag is unquoted here,
//! as AWS sends it. In gateway mode an object not cached locally is described from the
//! upstream's HEAD (size, ETag and part count; no per-part detail).

use http::HeaderMap;

use super::headers::header;
use super::{S3Response, checksum_element};
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::replication::{ObjectSource, ReadRequest};
use crate::store::ObjectMeta;
use crate::time::http_date;
use crate::xml::XmlWriter;

const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];
const DEFAULT_MAX_PARTS: usize = 1000;

/// What is known of the object: the local metadata, or the upstream's headers.
enum Described {
    Local(Box<ObjectMeta>),
    Upstream {
        etag: String,
        size: u64,
        last_modified_ms: i64,
    },
}

fn wanted(headers: &HeaderMap) -> S3Result<Vec<&'static str>> {
    let missing = || {
        S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        )
    };
    let values: Vec<&str> = headers
        .get_all("x-amz-object-attributes")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if values.is_empty() {
        return Err(missing());
    }
    values
        .into_iter()
        .map(|v| {
            ATTRIBUTES
                .iter()
                .find(|a| **a == v)
                .copied()
                .ok_or_else(|| {
                    S3Error::with_message(
                        S3ErrorCode::InvalidArgument,
                        "Invalid attribute name specified.",
                    )
                })
        })
        .collect()
}

fn number(headers: &HeaderMap, name: &str) -> Option<usize> {
    header(headers, name).and_then(|v| v.trim().parse().ok())
}

pub async fn get_object_attributes(
    ctx: &Context,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
) -> S3Result<S3Response> {
    let want = wanted(headers)?;
    // AWS ignores a max-parts or marker it cannot read.
    let max_parts = number(headers, "x-amz-max-parts")
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_PARTS);
    let marker = number(headers, "x-amz-part-number-marker").unwrap_or(0);
    let none = HeaderMap::new();
    let read = ReadRequest {
        bucket,
        key,
        headers: &none,
        part_number: None,
        head: true,
    };
    let described = match ctx.replication.read(&read).await? {
        ObjectSource::Local { meta, .. } => Described::Local(Box::new(meta)),
        ObjectSource::Upstream(o) => Described::Upstream {
            size: header(&o.headers, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            etag: o.etag,
            last_modified_ms: o.last_modified_ms,
        },
    };
    let (etag, size, last_modified_ms) = match &described {
        Described::Local(m) => (m.etag.clone(), m.size, m.last_modified_ms),
        Described::Upstream {
            etag,
            size,
            last_modified_ms,
        } => (etag.clone(), *size, *last_modified_ms),
    };
    let mut w = XmlWriter::new();
    w.root("GetObjectAttributesResponse");
    if want.contains(&"ETag") {
        w.element("ETag", etag.trim_matches('"'));
    }
    if want.contains(&"Checksum")
        && let Described::Local(m) = &described
        && let Some(c) = &m.checksum
    {
        w.open("Checksum");
        w.element(&checksum_element(c.algorithm), &c.value);
        w.element("ChecksumType", c.type_name());
        w.close("Checksum");
    }
    if want.contains(&"ObjectParts") {
        write_parts(&mut w, &described, &etag, max_parts, marker);
    }
    if want.contains(&"StorageClass") {
        w.element("StorageClass", "STANDARD");
    }
    if want.contains(&"ObjectSize") {
        w.element("ObjectSize", &size.to_string());
    }
    w.close("GetObjectAttributesResponse");
    let mut resp = super::xml_response(w.finish())?;
    if let Ok(v) = http::HeaderValue::from_str(&http_date(last_modified_ms)) {
        resp.headers_mut().insert("last-modified", v);
    }
    Ok(resp)
}

/// `ObjectParts`, for a multipart object only (AWS sends none for a single-part one).
fn write_parts(w: &mut XmlWriter, d: &Described, etag: &str, max_parts: usize, marker: usize) {
    match d {
        Described::Local(m) if m.multipart => {
            let total = m.segments.len();
            // The part numbers the upload gave (by position for objects from before they
            // were kept).
            let all: Vec<(usize, _)> = m
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| match s.part_number {
                    0 => (i + 1, s),
                    n => (usize::from(n), s),
                })
                .collect();
            let page: Vec<_> = all
                .iter()
                .filter(|(n, _)| *n > marker)
                .take(max_parts)
                .collect();
            let last = page.last().map_or(marker, |(n, _)| *n);
            let more = all.iter().any(|(n, _)| *n > last);
            w.open("ObjectParts");
            w.element("PartsCount", &total.to_string());
            w.element("PartNumberMarker", &marker.to_string());
            w.element("NextPartNumberMarker", &last.to_string());
            w.element("MaxParts", &max_parts.to_string());
            w.element("IsTruncated", if more { "true" } else { "false" });
            for (n, seg) in page {
                w.open("Part");
                w.element("PartNumber", &n.to_string());
                w.element("Size", &seg.size.to_string());
                if let (Some(c), Some(v)) = (&m.checksum, &seg.checksum) {
                    w.element(&checksum_element(c.algorithm), v);
                }
                w.close("Part");
            }
            w.close("ObjectParts");
        }
        Described::Upstream { .. } => {
            let parts = etag
                .trim_matches('"')
                .rsplit_once('-')
                .and_then(|(_, n)| n.parse::<usize>().ok());
            if let Some(total) = parts {
                w.open("ObjectParts");
                w.element("PartsCount", &total.to_string());
                w.close("ObjectParts");
            }
        }
        Described::Local(_) => {}
    }
}
