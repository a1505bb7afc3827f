//! Operation handlers, split by family: buckets, object writes, object reads, listings.
//! Each takes the routed `Operation`'s parameters and returns a response or an `S3Error`.

pub mod acl;
pub mod bucket;
pub mod copy;
pub mod delete;
pub mod get;
pub mod list;
pub mod multipart;
pub mod post;
pub mod put;

use chrono::{DateTime, TimeZone, Utc};
use http::{HeaderMap, Response, StatusCode};

use crate::body::ResponseBody;
use crate::config::Config;
use crate::error::{S3Error, S3Result};
use crate::store::Store;

/// What every handler can reach.
pub struct Context {
    pub config: Config,
    pub store: Store,
    /// Set in gateway mode (an upstream is configured).
    pub gateway: Option<std::sync::Arc<crate::gateway::Gateway>>,
}

/// Per-object response headers: `x-amz-server-side-encryption` when the object asked for it,
/// and `x-lifeboat-sync` in gateway mode.
pub fn with_sync(
    b: http::response::Builder,
    ctx: &Context,
    meta: &crate::store::ObjectMeta,
) -> http::response::Builder {
    let b = match &meta.sse {
        Some(sse) => b.header("x-amz-server-side-encryption", sse.as_str()),
        None => b,
    };
    if ctx.gateway.is_some() {
        b.header("x-lifeboat-sync", meta.sync.as_str())
    } else {
        b
    }
}

pub type S3Response = Response<ResponseBody>;

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn datetime(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// `Wed, 12 Oct 2009 17:50:00 GMT`, as Last-Modified carries it.
pub fn http_date(ms: i64) -> String {
    datetime(ms).format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// `2009-10-12T17:50:30.000Z`, as XML bodies carry it.
pub fn iso_date(ms: i64) -> String {
    datetime(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
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

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
