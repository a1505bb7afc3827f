//! What the store records about buckets, objects and multipart uploads: the values of the
//! catalog's tables (`schema`), and the write preconditions checked against them.

use serde::{Deserialize, Serialize};

use super::blob::DurableBlob;
use super::error::StoreError;
use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::cors::CorsConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketMeta {
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
    pub owner: String,
    pub region: String,
    /// The bucket's CORS rules (PutBucketCors), kept locally.
    #[serde(default)]
    pub cors: Option<CorsConfig>,
}

impl BucketMeta {
    /// A bucket created now.
    pub fn new(owner: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            created_ms: chrono::Utc::now().timestamp_millis(),
            owner: owner.into(),
            region: region.into(),
            cors: None,
        }
    }
}

/// The standard content headers stored with an object and returned on GET and HEAD.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentHeaders {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_disposition: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub expires: Option<String>,
}

/// One piece of an object's body: a blob file. A simple PUT has one segment; a completed
/// multipart upload has one per part, so Complete never copies data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Segment {
    pub blob: String,
    pub size: u64,
    /// The part's ETag (hex MD5) and checksum, for GET/HEAD with `partNumber`.
    #[serde(default)]
    pub etag: String,
    #[serde(default)]
    pub checksum: Option<String>,
    /// Hex SHA-256 of the segment, sent upstream as `x-amz-content-sha256`.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The part number the upload gave it (0: not a part, or recorded before it was kept).
    #[serde(default)]
    pub part_number: u16,
    /// Whether the blob was written sealed (store/sealed/); false for blobs written before
    /// `storage.encryption_key_file` was set, which stay readable as they are.
    #[serde(default)]
    pub sealed: bool,
}

/// Where an object stands with respect to the upstream (`x-lifeboat-sync`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum SyncState {
    /// Written while no upstream was configured; `lifeboat sync` would push it.
    #[default]
    LocalOnly,
    /// Queued in the outbox.
    Pending,
    /// The upstream holds this version.
    Synced,
    /// The upstream refused this version for good; its outbox entry is a dead letter.
    Failed,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::LocalOnly => "local-only",
            SyncState::Pending => "pending",
            SyncState::Synced => "synced",
            SyncState::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub segments: Vec<Segment>,
    pub size: u64,
    /// Hex MD5 of the body (or `md5(part md5s)-N` for multipart), without quotes.
    pub etag: String,
    pub last_modified_ms: i64,
    #[serde(default)]
    pub content: ContentHeaders,
    /// `x-amz-meta-*` pairs, names lower-case without the prefix.
    #[serde(default)]
    pub user_metadata: Vec<(String, String)>,
    pub checksum: Option<Checksum>,
    /// True when the segments are the parts of a multipart upload.
    #[serde(default)]
    pub multipart: bool,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// The canned ACL given at write time (`private` when absent).
    #[serde(default)]
    pub acl: Option<String>,
    #[serde(default)]
    pub sync: SyncState,
    /// When the cached copy was last checked against the upstream (gateway reads).
    #[serde(default)]
    pub validated_ms: i64,
    /// `x-amz-server-side-encryption` the client asked for (forwarded upstream, echoed back).
    #[serde(default)]
    pub sse: Option<String>,
}

impl ObjectMeta {
    /// An object made of one durable blob, its ETag the blob's MD5; the attributes beside the
    /// body (content headers, metadata, tags, ACL, SSE) start empty.
    pub fn single(
        blob: &DurableBlob,
        md5: [u8; 16],
        checksum: Checksum,
        sha256: Option<String>,
    ) -> Self {
        let etag = hex::encode(md5);
        let now = chrono::Utc::now().timestamp_millis();
        Self {
            segments: vec![Segment {
                blob: blob.id.clone(),
                size: blob.len,
                etag: etag.clone(),
                checksum: Some(checksum.value.clone()),
                sha256,
                part_number: 0,
                sealed: blob.sealed,
            }],
            size: blob.len,
            etag,
            last_modified_ms: now,
            content: ContentHeaders::default(),
            user_metadata: Vec::new(),
            checksum: Some(checksum),
            multipart: false,
            tags: Vec::new(),
            acl: None,
            sync: SyncState::LocalOnly,
            validated_ms: now,
            sse: None,
        }
    }

    pub fn quoted_etag(&self) -> String {
        format!("\"{}\"", self.etag)
    }

    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|s| s.blob.as_str())
    }
}

/// The blobs the catalog refers to (objects and parts), and how many of them are sealed: what
/// start-up recovery keeps, and whether the store needs its key.
#[derive(Debug, Default)]
pub struct Referenced {
    pub ids: std::collections::HashSet<String>,
    pub sealed: u64,
}

impl Referenced {
    pub fn add(&mut self, id: String, sealed: bool) {
        if self.ids.insert(id) && sealed {
            self.sealed += 1;
        }
    }
}

/// A condition checked inside the commit transaction, so it is atomic against concurrent writers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    #[default]
    None,
    /// `If-None-Match: *`: the key must not exist.
    IfNoneMatch,
    /// `If-Match: <etag>`: the key must exist with this ETag (unquoted).
    IfMatch(String),
}

/// An in-progress multipart upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMeta {
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub owner: String,
    #[serde(default)]
    pub content: ContentHeaders,
    #[serde(default)]
    pub user_metadata: Vec<(String, String)>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub acl: Option<String>,
    /// The checksum every part carries, and whether the final one is composite (`-N`).
    pub checksum: ChecksumAlgorithm,
    pub composite: bool,
    /// Whether the client named the algorithm (parts must then use it) or took the default.
    #[serde(default)]
    pub explicit_checksum: bool,
    #[serde(default)]
    pub sse: Option<String>,
}

/// A multipart upload that completed: enough to answer a retried Complete exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUpload {
    pub bucket: String,
    pub key: String,
    /// The object's ETag (unquoted) and checksum.
    pub etag: String,
    pub checksum: Option<Checksum>,
    /// The part list Complete was given: (number, unquoted ETag).
    pub parts: Vec<(u16, String)>,
    pub completed_ms: i64,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartMeta {
    pub blob: String,
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
    /// Base64 checksum of the part in the upload's algorithm.
    pub checksum: String,
    #[serde(default)]
    pub sha256: Option<String>,
    /// Whether the part's blob was written sealed (as `Segment::sealed`).
    #[serde(default)]
    pub sealed: bool,
}

impl Precondition {
    /// Checks the precondition against the key's current object: the one rule, used inside the
    /// commit transaction and (for strict writes) before the upstream is touched.
    pub fn check(&self, current: Option<&ObjectMeta>) -> Result<(), StoreError> {
        match (self, current) {
            (Precondition::None, _) | (Precondition::IfNoneMatch, None) => Ok(()),
            (Precondition::IfNoneMatch, Some(_)) => Err(StoreError::PreconditionFailed),
            // `If-Match: *` (RFC 7232): true when any version exists, so a missing key fails
            // the precondition; a named ETag on a missing key is `NoSuchKey`, as AWS answers.
            (Precondition::IfMatch(etag), None) if etag == "*" => {
                Err(StoreError::PreconditionFailed)
            }
            (Precondition::IfMatch(_), None) => Err(StoreError::NoSuchKey),
            (Precondition::IfMatch(etag), Some(_)) if etag == "*" => Ok(()),
            (Precondition::IfMatch(etag), Some(cur)) if *etag != cur.etag => {
                Err(StoreError::PreconditionFailed)
            }
            (Precondition::IfMatch(_), Some(_)) => Ok(()),
        }
    }
}
