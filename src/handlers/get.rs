//! GetObject and HeadObject (`API_GetObject.html`, `API_HeadObject.html`): Range (one range,
//! open and suffix forms), the conditional headers with the precedence AWS documents (RFC 7232),
//! `response-*` overrides, and stored checksums with `x-amz-checksum-mode: ENABLED`.

use http::{HeaderMap, Response, StatusCode};

use super::{Context, S3Response, header, http_date};
use crate::auth::parse_http_date;
use crate::body::{ResponseBody, stream_object};
use crate::error::{S3Error, S3ErrorCode, S3Result};
use crate::router::ResponseOverrides;
use crate::store::{ObjectMeta, ReadGuard, Segment};

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

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t.trim_matches('"') == etag
    })
}

/// The outcome of the conditional headers.
#[derive(Debug, PartialEq, Eq)]
pub enum Condition {
    Proceed,
    NotModified,
    PreconditionFailed,
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and If-Modified-Since in RFC 7232
/// order: If-Match overrides If-Unmodified-Since; If-None-Match overrides If-Modified-Since.
pub fn evaluate_conditions(headers: &HeaderMap, etag: &str, last_modified_ms: i64) -> Condition {
    evaluate_prefixed(headers, "", etag, last_modified_ms)
}

/// As `evaluate_conditions`, for headers named `<prefix>if-match` and so on (CopyObject's
/// `x-amz-copy-source-if-*` follow the same rules).
pub fn evaluate_prefixed(
    headers: &HeaderMap,
    prefix: &str,
    etag: &str,
    last_modified_ms: i64,
) -> Condition {
    let lm_secs = last_modified_ms.div_euclid(1000);
    let get = |name: &str| header(headers, &format!("{prefix}{name}"));
    let since = |name: &str| {
        get(name)
            .and_then(parse_http_date)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
    };
    match get("if-match") {
        Some(v) => {
            if !etag_matches(v, etag) {
                return Condition::PreconditionFailed;
            }
        }
        None => {
            if let Some(t) = since("if-unmodified-since")
                && lm_secs > t
            {
                return Condition::PreconditionFailed;
            }
        }
    }
    match get("if-none-match") {
        Some(v) => {
            if etag_matches(v, etag) {
                return Condition::NotModified;
            }
        }
        None => {
            if let Some(t) = since("if-modified-since")
                && lm_secs <= t
            {
                return Condition::NotModified;
            }
        }
    }
    Condition::Proceed
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

/// Serves GetObject (`head == false`) and HeadObject: from the store, or through the gateway's
/// read policy when an upstream is configured.
pub async fn get_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    overrides: &ResponseOverrides,
    part_number: Option<u16>,
    head: bool,
) -> S3Result<S3Response> {
    if let Some(gw) = &ctx.gateway {
        let req = crate::gateway::read::ReadRequest {
            bucket,
            key,
            headers,
            overrides,
            part_number,
            head,
        };
        return crate::gateway::read::get(ctx, gw, &req).await;
    }
    serve_local(ctx, bucket, key, headers, overrides, part_number, head).await
}

/// Serves an object from the local store.
pub async fn serve_local(
    ctx: &Context,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
    overrides: &ResponseOverrides,
    part_number: Option<u16>,
    head: bool,
) -> S3Result<S3Response> {
    let (meta, file) = open_local(ctx, bucket, key, head).await?;
    serve_opened(ctx, meta, file, headers, overrides, part_number)
}

/// An object's blobs, pinned for reading, with the first one open.
pub type OpenBlobs = (Option<tokio::fs::File>, ReadGuard);

/// The object's metadata and, unless this is a HEAD, its blobs pinned for reading.
pub async fn open_local(
    ctx: &Context,
    bucket: &str,
    key: &str,
    head: bool,
) -> Result<(ObjectMeta, Option<OpenBlobs>), crate::store::StoreError> {
    if head {
        Ok((ctx.store.object(bucket, key).await?, None))
    } else {
        let (meta, file, guard) = ctx.store.open_object(bucket, key).await?;
        Ok((meta, Some((file, guard))))
    }
}

/// Answers a GET (`file` set) or HEAD of an object already opened.
pub fn serve_opened(
    ctx: &Context,
    meta: ObjectMeta,
    file: Option<OpenBlobs>,
    headers: &HeaderMap,
    overrides: &ResponseOverrides,
    part_number: Option<u16>,
) -> S3Result<S3Response> {
    match evaluate_conditions(headers, &meta.etag, meta.last_modified_ms) {
        Condition::Proceed => {}
        Condition::NotModified => {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header("etag", meta.quoted_etag())
                .header("last-modified", http_date(meta.last_modified_ms))
                .body(ResponseBody::Empty)
                .map_err(S3Error::internal);
        }
        Condition::PreconditionFailed => {
            return Err(S3ErrorCode::PreconditionFailed.into());
        }
    }
    let checksum_mode =
        header(headers, "x-amz-checksum-mode").is_some_and(|m| m.eq_ignore_ascii_case("enabled"));
    let mut b = super::with_sync(
        object_headers(Response::builder(), &meta, overrides),
        ctx,
        &meta,
    );
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
            && (c.composite || !meta.multipart)
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
    let body = match file {
        Some((Some(f), guard)) if len > 0 => stream_object(
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

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn conditional_precedence_as_aws_documents() {
        let lm = 1_369_353_600_000; // Fri, 24 May 2013 00:00:00 GMT
        let before = "Thu, 23 May 2013 00:00:00 GMT";
        let after = "Sat, 25 May 2013 00:00:00 GMT";
        let ev = |p: &[(&'static str, &str)]| evaluate_conditions(&h(p), "abc", lm);
        assert_eq!(ev(&[]), Condition::Proceed);
        assert_eq!(ev(&[("if-match", "\"abc\"")]), Condition::Proceed);
        assert_eq!(ev(&[("if-match", "\"x\"")]), Condition::PreconditionFailed);
        // If-Match true and If-Unmodified-Since false: 200.
        assert_eq!(
            ev(&[("if-match", "\"abc\""), ("if-unmodified-since", before)]),
            Condition::Proceed
        );
        assert_eq!(
            ev(&[("if-unmodified-since", before)]),
            Condition::PreconditionFailed
        );
        // If-None-Match false and If-Modified-Since true: 304.
        assert_eq!(
            ev(&[("if-none-match", "\"abc\""), ("if-modified-since", before)]),
            Condition::NotModified
        );
        assert_eq!(
            ev(&[("if-none-match", "\"x\""), ("if-modified-since", after)]),
            Condition::Proceed
        );
        assert_eq!(ev(&[("if-modified-since", after)]), Condition::NotModified);
        assert_eq!(ev(&[("if-modified-since", before)]), Condition::Proceed);
        assert_eq!(ev(&[("if-none-match", "*")]), Condition::NotModified);
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
