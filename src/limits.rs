//! One home for limits: the fixed sizes and ticks of the server, each with the reason it has its
//! value. A leaf: it depends on nothing. The configurable limits are `[limits]`
//! (`config::LimitsConfig`, whose methods hold the checks more than one operation applies),
//! documented in the README ("Limits") and in `config/lifeboat.example.toml`.

use std::time::Duration;

/// Buffer in front of a blob's temp file, so a body arriving in small frames does not cost one
/// blocking write per frame.
pub const WRITE_BUFFER: usize = 1 << 20;
/// Read size of a blob streamed to a client: large enough for few syscalls, small enough that
/// `CHANNEL_DEPTH` of them in flight stay well under a few MiB per download.
pub const READ_CHUNK: usize = 256 * 1024;
/// A plain object of one blob up to this size is read whole with its metadata, in one blocking
/// call, and answered from memory (`Store::open_read`).
pub const SMALL_READ: u64 = 128 * 1024;
/// Chunks in flight between a blob reader (or the upstream) and the client's connection.
pub const CHANNEL_DEPTH: usize = 4;
/// Buffer of a server-side copy (file to file on a blocking thread).
pub const COPY_BUFFER: usize = 1 << 20;
/// Buffer used to hash a blob written before gateway mode was on (its SHA-256 is sent upstream).
pub const HASH_BUFFER: usize = 1 << 20;

/// Kept free on the data disk by a reserve file that a delete releases when the disk is full, so
/// the catalog commit that frees space can finish (a commit writes a few pages).
pub const DISK_RESERVE: u64 = 8 << 20;

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
/// After refusing a request head, or when any S3 connection closes, how long what the client
/// still sends is read and dropped before the socket closes (so an answer sent before its
/// request body was read is not lost to a reset).
pub const REFUSAL_LINGER: Duration = Duration::from_secs(2);
/// At the connection limit, the warning is logged at most this often.
pub const CONNECTION_LIMIT_WARN_EVERY: Duration = Duration::from_secs(60);
/// How long the replay worker gets to finish its current entry on shutdown.
pub const WORKER_STOP_WAIT: Duration = Duration::from_secs(10);
/// Largest JSON body the admin API reads (its requests are a few hundred bytes).
pub const MAX_ADMIN_BODY: usize = 64 * 1024;
/// Longest pause inside an admin request body.
pub const ADMIN_BODY_IDLE: Duration = Duration::from_secs(10);
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
/// A request body larger than this may still sit in socket buffers when it counts as sent, so
/// its answer gets the idle timeout rather than the (shorter) first-byte timeout.
pub const UPSTREAM_LARGE_BODY: u64 = 1 << 20;
/// How often a request in flight checks its upload progress against the timeouts.
pub const UPSTREAM_PROGRESS_TICK: Duration = Duration::from_millis(100);

/// Peer notices (`[cluster] peers`): changes per POST, how long a batch waits to fill, changes
/// queued before new ones are dropped (a dropped notice costs at most `revalidate_after`), and
/// how long a peer gets to answer.
pub const PEER_BATCH: usize = 100;
pub const PEER_BATCH_WAIT: Duration = Duration::from_millis(50);
pub const PEER_QUEUE: usize = 10_000;
pub const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// Cache warm-up: objects fetched at once, keys listed per page, and client requests in
/// flight at which it pauses (`WARM_YIELD_PAUSE` at a time) before starting another fetch.
pub const WARM_CONCURRENCY: usize = 2;
pub const WARM_PAGE: usize = 1000;
pub const WARM_YIELD_AT: usize = 4;
pub const WARM_YIELD_PAUSE: Duration = Duration::from_millis(20);

/// Keys a gateway listing reads from the local index per page, looking for local-only objects
/// (only in a bucket that has any).
pub const LOCAL_ONLY_SCAN: usize = 1000;
/// Keys a migration (`lifeboat sync`) looks at per transaction.
pub const MIGRATION_PAGE: usize = 500;

/// Outbox entries the replay worker reads per batch.
pub const OUTBOX_BATCH: usize = 64;
/// With an empty outbox the worker sleeps until woken, or this long (a safety net).
pub const OUTBOX_IDLE_WAIT: Duration = Duration::from_secs(5);
/// Wait after the outbox could not be read (a local disk problem).
pub const OUTBOX_READ_RETRY: Duration = Duration::from_secs(1);
/// Consecutive local failures (not the upstream's) of one outbox entry before it moves to the
/// dead letters: enough to ride out a passing problem (file descriptors, a busy disk) with
/// backoff, few enough that a lasting one (a blob gone from disk) does not hold the queue.
pub const MAX_LOCAL_FAILURES: u32 = 10;
/// Shortest wait after a failed replay, so a flapping upstream is not hammered.
pub const REPLAY_MIN_BACKOFF: Duration = Duration::from_millis(200);

/// Abandoned multipart uploads are looked for every half of `limits.abandoned_upload_seconds`,
/// but at most this rarely and at least every second.
pub const UPLOAD_SWEEP_MAX: Duration = Duration::from_secs(3600);

/// The eviction task's slow tick: besides the wake-ups after writes and fills, it looks at
/// the budget this often, for what changes without a write here (replicated objects becoming
/// evictable, other programs filling the disk). A look is two small reads (the usage totals
/// and `statvfs`), so this costs nothing while under budget.
pub const EVICT_TICK: Duration = Duration::from_secs(5);
/// Read times are kept in memory and written to the catalog at most this long after the read
/// (a crash loses at most this window; eviction then uses the object's own times).
pub const ACCESS_FLUSH_EVERY: Duration = Duration::from_secs(10);
/// ... or as soon as this many distinct objects were read, which bounds the map's memory
/// (about 100 bytes an entry) and makes one write transaction of a few hundred KiB.
pub const ACCESS_FLUSH_READS: usize = 4096;
/// Candidates one eviction scan keeps (the least recently used): the next wake-ups work
/// through them without scanning again, so a scan happens about once per this many evictions.
pub const EVICT_CANDIDATES: usize = 4096;
/// How long an event or peer notice waits for its key's lock (a fill or push of that key in
/// flight, which it must not overtake); past it the notice goes ahead, so one long transfer
/// cannot hold up a whole batch of notices.
pub const NOTICE_LOCK_WAIT: Duration = Duration::from_secs(1);
