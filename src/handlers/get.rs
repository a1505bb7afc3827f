//! GetObject and HeadObject (`API_GetObject.html`, `API_HeadObject.html`): Range (one range,
//! open and suffix forms), the conditional headers with the precedence AWS documents (RFC 7232),
//! `response-*` overrides, and stored checksums with `x-amz-checksum-mode: ENABLED`. This module
//! renders every answer, whether the replication backend serves the object from the local
//! store or from the upstream; the conditional logic itself is `conditional.rs`.

use http::{HeaderMap, Response, StatusCode};

use super::headers::header;
use super::{S3Response, with_object_state};
use crate::body::{ResponseBody, stream_object};
use crate::conditional::{Condition, evaluate_conditions};
use crate::context::Context;
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::replication::{CacheStatus, ObjectSource, ReadRequest, UpstreamObject};
use crate::router::ResponseOverrides;
use crate::store::{ObjectMeta, OpenBlobs, Segment, SyncState};
use crate::time::http_date;

/// A parsed `Range: bytes=…` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` or `bytes=a-`.
    From { start: u64, end: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

/// Parses a Range header; `None` means "ignore it and send the whole object", as S3 does for
/// syntactically invalid or multi-range values.
pub fn parse_range(value: &str) -> Option<RangeSpec> {
    let spec = value.trim().strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return b.parse().ok().map(RangeSpec::Suffix);
    }
    let start: u64 = a.parse().ok()?;
    if b.is_empty() {
        return Some(RangeSpec::From { start, end: None });
    }
    let end: u64 = b.parse().ok()?;
    (end >= start).then_some(RangeSpec::From {
        start,
        end: Some(end),
    })
}

/// Resolves a range against the object size to inclusive `(first, last)`, or `None` when it
/// cannot be satisfied (416 InvalidRange).
pub fn resolve_range(spec: RangeSpec, size: u64) -> Option<(u64, u64)> {
    match spec {
        RangeSpec::From { start, end } => {
            if start >= size {
                return None;
            }
            Some((start, end.map_or(size - 1, |e| e.min(size - 1))))
        }
        RangeSpec::Suffix(n) => {
            if n == 0 || size == 0 {
                return None;
            }
            Some((size - n.min(size), size - 1))
        }
    }
}

fn object_headers(
    mut b: http::response::Builder,
    meta: &ObjectMeta,
    overrides: &ResponseOverrides,
) -> http::response::Builder {
    b = b
        .header("etag", meta.quoted_etag())
        .header("last-modified", http_date(meta.last_modified_ms))
        .header("accept-ranges", "bytes");
    let c = &meta.content;
    let stored = [
        (
            "content-type",
            c.content_type.as_deref().or(Some("binary/octet-stream")),
        ),
        ("cache-control", c.cache_control.as_deref()),
        ("content-disposition", c.content_disposition.as_deref()),
        ("content-encoding", c.content_encoding.as_deref()),
        ("content-language", c.content_language.as_deref()),
        ("expires", c.expires.as_deref()),
    ];
    for (name, value) in stored {
        let over = overrides
            .iter()
            .find(|(h, _)| *h == name)
            .map(|(_, v)| v.as_str());
        if let Some(v) = over.or(value) {
            b = b.header(name, v);
        }
    }
    for (k, v) in &meta.user_metadata {
        b = b.header(format!("x-amz-meta-{k}"), v);
    }
    b
}

/// Where part `n` of an object lies: `(offset, len)`. A simple object is its own part 1.
fn part_range(meta: &ObjectMeta, n: u16) -> Option<(u64, u64, &Segment)> {
    let idx = usize::from(n).checked_sub(1)?;
    let seg = meta.segments.get(idx)?;
    let offset = meta.segments[..idx].iter().map(|s| s.size).sum();
    Some((offset, seg.size, seg))
}

/// Serves GetObject (`head == false`) and HeadObject from wherever the replication backend
/// says the object is: the local store, or the upstream on a gateway miss.
pub async fn get_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    overrides: &ResponseOverrides,
    part_number: Option<u16>,
    head: bool,
) -> S3Result<S3Response> {
    let req = ReadRequest {
        bucket,
        key,
        headers,
        part_number,
        head,
    };
    match ctx.replication.read(&req).await? {
        ObjectSource::Local { meta, blobs, cache } => {
            serve_local(ctx, meta, blobs, headers, overrides, part_number, cache)
        }
        ObjectSource::Upstream(object) => serve_upstream(object, headers, overrides),
    }
}

/// A 304: the validators (ETag, Last-Modified) and `x-cache`, whichever path answered.
fn not_modified(
    etag: &str,
    last_modified_ms: i64,
    cache: Option<CacheStatus>,
) -> S3Result<S3Response> {
    let mut b = Response::builder()
        .status(StatusCode::NOT_MODIFIED)
        .header("etag", format!("\"{etag}\""))
        .header("last-modified", http_date(last_modified_ms));
    if let Some(c) = cache {
        crate::metrics::cache_result(c.label());
        b = b.header("x-cache", c.as_str());
    }
    b.body(ResponseBody::Empty).map_err(S3Error::internal)
}

/// Applies the conditional headers: `Some` is the answer (a 304), `None` means serve it.
fn conditions(
    headers: &HeaderMap,
    etag: &str,
    last_modified_ms: i64,
    cache: Option<CacheStatus>,
) -> S3Result<Option<S3Response>> {
    match evaluate_conditions(headers, etag, last_modified_ms) {
        Condition::Proceed => Ok(None),
        Condition::NotModified => not_modified(etag, last_modified_ms, cache).map(Some),
        Condition::PreconditionFailed => Err(S3ErrorCode::PreconditionFailed.into()),
    }
}

/// Answers a GET (`blobs` set) or HEAD of an object from the local store.
pub fn serve_local(
    ctx: &Context,
    meta: ObjectMeta,
    blobs: Option<OpenBlobs>,
    headers: &HeaderMap,
    overrides: &ResponseOverrides,
    part_number: Option<u16>,
    cache: Option<CacheStatus>,
) -> S3Result<S3Response> {
    if let Some(resp) = conditions(headers, &meta.etag, meta.last_modified_ms, cache)? {
        return Ok(resp);
    }
    let checksum_mode =
        header(headers, "x-amz-checksum-mode").is_some_and(|m| m.eq_ignore_ascii_case("enabled"));
    let mut b = with_object_state(
        object_headers(Response::builder(), &meta, overrides),
        ctx,
        &meta,
    );
    if let Some(c) = cache {
        crate::metrics::cache_result(c.label());
        b = b.header("x-cache", c.as_str());
    }
    if !meta.tags.is_empty() {
        b = b.header("x-amz-tagging-count", meta.tags.len());
    }
    // AWS returns the part count only when a part was asked for.
    if meta.multipart && part_number.is_some() {
        b = b.header("x-amz-mp-parts-count", meta.segments.len());
    }
    let (status, offset, len) = if let Some(n) = part_number {
        if header(headers, "range").is_some() {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        let (offset, len, seg) = part_range(&meta, n).ok_or_else(|| {
            S3Error::new(S3ErrorCode::InvalidPartNumber)
                .extra("PartNumberRequested", n.to_string())
                .extra("ActualPartCount", meta.segments.len().to_string())
        })?;
        if checksum_mode
            && let (Some(c), Some(v)) = (&meta.checksum, &seg.checksum)
            // A part's own checksum: of a composite multipart object, or of a single-part one
            // (its only part). A full-object multipart checksum says nothing of a part, and a
            // cached copy of an upstream multipart object knows only its composite value.
            && c.composite == meta.multipart
        {
            b = b.header(c.algorithm.header(), v);
        }
        if len > 0 {
            b = b.header(
                "content-range",
                format!("bytes {offset}-{}/{}", offset + len - 1, meta.size),
            );
        }
        (StatusCode::PARTIAL_CONTENT, offset, len)
    } else {
        let range = match header(headers, "range").and_then(parse_range) {
            None => None,
            Some(spec) => Some(resolve_range(spec, meta.size).ok_or_else(|| {
                S3Error::new(S3ErrorCode::InvalidRange)
                    .extra("RangeRequested", header(headers, "range").unwrap_or(""))
                    .extra("ActualObjectSize", meta.size.to_string())
                    .header("content-range", format!("bytes */{}", meta.size))
            })?),
        };
        match range {
            Some((first, last)) => {
                b = b.header(
                    "content-range",
                    format!("bytes {first}-{last}/{}", meta.size),
                );
                (StatusCode::PARTIAL_CONTENT, first, last - first + 1)
            }
            None => {
                if checksum_mode && let Some(c) = &meta.checksum {
                    b = b
                        .header(c.algorithm.header(), &c.value)
                        .header("x-amz-checksum-type", c.type_name());
                }
                (StatusCode::OK, 0, meta.size)
            }
        }
    };
    let body = match blobs {
        Some(OpenBlobs::Read(bytes)) if len > 0 => {
            let start = usize::try_from(offset).map_err(S3Error::internal)?;
            let end = usize::try_from(offset + len).map_err(S3Error::internal)?;
            if end > bytes.len() {
                return Err(S3Error::internal(std::io::Error::other(
                    "a small blob is shorter than its metadata",
                )));
            }
            ResponseBody::full(bytes.slice(start..end))
        }
        Some(OpenBlobs::Pinned(Some(f), guard)) if len > 0 => stream_object(
            ctx.store.clone(),
            meta.segments.clone(),
            f,
            guard,
            offset,
            len,
        ),
        _ => ResponseBody::Empty,
    };
    b.status(status)
        .header("content-length", len)
        .body(body)
        .map_err(S3Error::internal)
}

/// Answers a GET or HEAD the upstream is serving (a gateway miss, `x-cache: MISS`), with the
/// object's headers as the upstream sent them and the `response-*` overrides applied.
fn serve_upstream(
    object: UpstreamObject,
    headers: &HeaderMap,
    overrides: &ResponseOverrides,
) -> S3Result<S3Response> {
    let miss = Some(CacheStatus::Miss);
    if object.status == StatusCode::NOT_MODIFIED {
        return not_modified(&object.etag, object.last_modified_ms, miss);
    }
    if let Some(resp) = conditions(headers, &object.etag, object.last_modified_ms, miss)? {
        return Ok(resp);
    }
    let mut b = Response::builder().status(object.status);
    let checksum_mode =
        header(headers, "x-amz-checksum-mode").is_some_and(|m| m.eq_ignore_ascii_case("enabled"));
    for (name, value) in &object.headers {
        // Lifeboat asks the upstream for checksums on every fill; the client gets them only
        // when it asked too, as from AWS.
        if name.as_str().starts_with("x-amz-checksum-") && !checksum_mode {
            continue;
        }
        match overrides.iter().find(|(h, _)| *h == name.as_str()) {
            Some((_, v)) => b = b.header(name, v.as_str()),
            None => b = b.header(name, value),
        }
    }
    for (h, v) in overrides {
        if !object.headers.contains_key(*h) {
            b = b.header(*h, v.as_str());
        }
    }
    crate::metrics::cache_result(CacheStatus::Miss.label());
    b.header("x-lifeboat-sync", SyncState::Synced.as_str())
        .header("x-cache", CacheStatus::Miss.as_str())
        .body(object.body.unwrap_or(ResponseBody::Empty))
        .map_err(S3Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn range_forms_from_rfc_7233() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Some(RangeSpec::From {
                start: 0,
                end: Some(9)
            })
        );
        assert_eq!(
            parse_range("bytes=5-"),
            Some(RangeSpec::From {
                start: 5,
                end: None
            })
        );
        assert_eq!(parse_range("bytes=-3"), Some(RangeSpec::Suffix(3)));
        assert_eq!(parse_range("bytes=9-0"), None);
        assert_eq!(parse_range("bytes=0-1,3-4"), None);
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(
            resolve_range(
                RangeSpec::From {
                    start: 0,
                    end: Some(99)
                },
                10
            ),
            Some((0, 9))
        );
        assert_eq!(
            resolve_range(
                RangeSpec::From {
                    start: 10,
                    end: None
                },
                10
            ),
            None
        );
        assert_eq!(resolve_range(RangeSpec::Suffix(3), 10), Some((7, 9)));
        assert_eq!(resolve_range(RangeSpec::Suffix(30), 10), Some((0, 9)));
        assert_eq!(resolve_range(RangeSpec::Suffix(0), 10), None);
        assert_eq!(resolve_range(RangeSpec::Suffix(1), 0), None);
    }

    proptest! {
        #[test]
        fn resolved_ranges_stay_inside_the_object(v in "\\PC{0,20}", size in 0u64..1000) {
            if let Some(spec) = parse_range(&format!("bytes={v}"))
                && let Some((a, b)) = resolve_range(spec, size)
            {
                prop_assert!(a <= b && b < size);
            }
        }

        #[test]
        fn numeric_ranges_parse(a in 0u64..1_000_000, len in 0u64..1_000_000) {
            let spec = parse_range(&format!("bytes={a}-{}", a + len));
            prop_assert_eq!(spec, Some(RangeSpec::From { start: a, end: Some(a + len) }));
        }
    }
}
