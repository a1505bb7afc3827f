//! One home for limits: the fixed sizes and ticks of the server, each with the reason it has its
//! value, and the checks of the configurable limits (`[limits]`, `config::LimitsConfig`) that
//! more than one operation applies. The configurable ones are documented in the README
//! ("Limits") and in `config/lifeboat.example.toml`.

use std::time::Duration;

use crate::config::LimitsConfig;
use crate::error::{S3Error, S3ErrorCode, S3Result};

/// Buffer in front of a blob's temp file, so a body arriving in small frames does not cost one
/// blocking write per frame.
pub const WRITE_BUFFER: usize = 1 << 20;
/// Read size of a blob streamed to a client: large enough for few syscalls, small enough that
/// `CHANNEL_DEPTH` of them in flight stay well under a few MiB per download.
pub const READ_CHUNK: usize = 256 * 1024;
/// Chunks in flight between a blob reader (or the upstream) and the client's connection.
pub const CHANNEL_DEPTH: usize = 4;
/// Buffer of a server-side copy (file to file on a blocking thread).
pub const COPY_BUFFER: usize = 1 << 20;
/// Buffer used to hash a blob written before gateway mode was on (its SHA-256 is sent upstream).
pub const HASH_BUFFER: usize = 1 << 20;

/// A POST form field other than the file is at most this long (policies and signatures are a
/// few KiB at most).
pub const MAX_FORM_FIELD: usize = 64 * 1024;
/// At most this many form fields before the file.
pub const MAX_FORM_FIELDS: usize = 100;

/// HTTP/1 request headers hyper accepts; `limits.max_header_bytes` answers in S3 XML well
/// before a real client reaches this.
pub const MAX_HEADER_COUNT: usize = 1000;
/// hyper's own header buffer is this many times `limits.max_header_bytes` (at least
/// `MIN_HEADER_BUFFER`), so Lifeboat's check, with its S3 error, answers first.
pub const HEADER_BUFFER_FACTOR: usize = 4;
pub const MIN_HEADER_BUFFER: usize = 64 * 1024;
/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight requests get to finish on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// An aws-chunked chunk header line (`<hex size>;chunk-signature=<64 hex>`) is far shorter.
pub const MAX_CHUNK_LINE: usize = 4096;
/// The trailer of an aws-chunked body (a checksum and its signature).
pub const MAX_CHUNK_TRAILER: usize = 16 * 1024;
/// XML nesting deeper than this is refused; no S3 request body needs more than four levels.
pub const MAX_XML_DEPTH: usize = 16;

/// A small upstream answer read whole (CreateMultipartUpload, Complete, CopyObject results).
pub const UPSTREAM_SMALL_BODY: usize = 64 * 1024;
/// An upstream listing page of 1000 keys of 1 KiB each fits with room to spare.
pub const UPSTREAM_LISTING_BODY: usize = 16 << 20;
/// How much of an upstream error body is read for its code and message, and for how long.
pub const UPSTREAM_ERROR_BODY: usize = 64 * 1024;
pub const UPSTREAM_ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// Keep-alive connections to the upstream: idle time and count per host.
pub const UPSTREAM_POOL_IDLE: Duration = Duration::from_secs(60);
pub const UPSTREAM_POOL_MAX_IDLE: usize = 32;
/// How often a request in flight checks its upload progress against the timeouts.
pub const UPSTREAM_PROGRESS_TICK: Duration = Duration::from_millis(100);

/// Outbox entries the replay worker reads per batch.
pub const OUTBOX_BATCH: usize = 64;
/// With an empty outbox the worker sleeps until woken, or this long (a safety net).
pub const OUTBOX_IDLE_WAIT: Duration = Duration::from_secs(5);
/// Wait after the outbox could not be read (a local disk problem).
pub const OUTBOX_READ_RETRY: Duration = Duration::from_secs(1);
/// Shortest wait after a failed replay, so a flapping upstream is not hammered.
pub const REPLAY_MIN_BACKOFF: Duration = Duration::from_millis(200);

/// Abandoned multipart uploads are looked for every half of `limits.abandoned_upload_seconds`,
/// but at most this rarely and at least every second.
pub const UPLOAD_SWEEP_MAX: Duration = Duration::from_secs(3600);

/// The one key-length check every keyed write passes through (PutObject, CopyObject's
/// destination, CreateMultipartUpload, POST Object): `KeyTooLongError` past
/// `limits.max_key_length`.
pub fn check_key(limits: &LimitsConfig, key: &str) -> S3Result<()> {
    if key.len() > limits.max_key_length {
        return Err(S3Error::new(S3ErrorCode::KeyTooLongError)
            .extra("Size", key.len().to_string())
            .extra("MaxSizeAllowed", limits.max_key_length.to_string()));
    }
    Ok(())
}

/// `EntityTooLarge` with the limit, as AWS reports it.
pub fn entity_too_large(max: u64) -> S3Error {
    S3Error::new(S3ErrorCode::EntityTooLarge).extra("MaxSizeAllowed", max.to_string())
}

/// Checks an object size against `limits.max_object_size`.
pub fn check_object_size(limits: &LimitsConfig, size: u64) -> S3Result<()> {
    if size > limits.max_object_size {
        return Err(entity_too_large(limits.max_object_size));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_length_limit_is_inclusive() {
        let limits = LimitsConfig::default();
        assert!(check_key(&limits, &"k".repeat(1024)).is_ok());
        let e = check_key(&limits, &"k".repeat(1025)).err();
        assert_eq!(e.map(|e| e.code), Some(S3ErrorCode::KeyTooLongError));
    }
}
