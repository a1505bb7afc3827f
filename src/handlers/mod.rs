//! Operation handlers, split by family: buckets, object writes, object reads, listings,
//! multipart uploads, browser forms, ACLs and tags. Each takes the routed `Operation`'s
//! parameters and returns a response or an `S3Error`; each owns its rendering. What they share
//! lives in `headers` (request header parsers), `upload` (the PUT/UploadPart body pipeline) and
//! here (response helpers). Mode-specific behaviour goes through `Context::replication`.

pub mod acl;
pub mod attributes;
pub mod bucket;
pub mod copy;
pub mod cors;
pub mod delete;
pub mod get;
pub mod headers;
pub mod list;
pub mod multipart;
pub mod multipart_list;
pub mod post;
pub mod put;
pub mod upload;

use http::{Response, StatusCode};

use crate::body::ResponseBody;
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::context::Context;
use crate::error::{S3Error, S3Result};
use crate::store::ObjectMeta;

pub type S3Response = Response<ResponseBody>;

/// Per-object response headers: `x-amz-server-side-encryption` when the object asked for it,
/// and `x-lifeboat-sync` in gateway mode.
pub fn with_object_state(
    b: http::response::Builder,
    ctx: &Context,
    meta: &ObjectMeta,
) -> http::response::Builder {
    let b = match &meta.sse {
        Some(sse) => b.header("x-amz-server-side-encryption", sse.as_str()),
        None => b,
    };
    match ctx.replication.sync_header(meta) {
        Some(sync) => b.header("x-lifeboat-sync", sync),
        None => b,
    }
}

/// Adds the stored checksum headers to a write response.
pub fn with_checksum(
    mut b: http::response::Builder,
    c: Option<&Checksum>,
) -> http::response::Builder {
    if let Some(c) = c {
        b = b
            .header(c.algorithm.header(), &c.value)
            .header("x-amz-checksum-type", c.type_name());
    }
    b
}

/// The XML element name of a checksum (`ChecksumCRC32`, …).
pub fn checksum_element(alg: ChecksumAlgorithm) -> String {
    format!("Checksum{}", alg.name())
}

pub fn xml_response(body: String) -> S3Result<S3Response> {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/xml")
        .header("content-length", body.len())
        .body(ResponseBody::full(body))
        .map_err(S3Error::internal)
}

pub fn empty_response(status: StatusCode) -> S3Result<S3Response> {
    Response::builder()
        .status(status)
        .body(ResponseBody::Empty)
        .map_err(S3Error::internal)
}
