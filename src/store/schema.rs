//! The bottom of the store: every redb table, how keys are laid out, and how values are encoded.
//! The table modules (`objects`, `outbox`, `uploads`) and the `catalog` that composes them all
//! import their tables from here and from nowhere else (docs/ARCHITECTURE.md, "The store").
//!
//! Values are JSON (serde), so a field added later with `#[serde(default)]` reads old rows.

use redb::TableDefinition;

use super::error::StoreError;

/// Bucket name → `BucketMeta`.
pub const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
/// `bucket \0 key` → `ObjectMeta`: a bucket's keys are one contiguous, byte-ordered range.
pub const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
/// Upload id → `UploadMeta`.
pub const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// `upload id \0 part number (u16, big-endian)` → `PartMeta`.
pub const PARTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("parts");
/// Sequence number → `OutboxEntry`, in replay order.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// `bucket \0 key` → the sequence number of that key's newest queued entry.
pub const OUTBOX_KEYS: TableDefinition<&[u8], u64> = TableDefinition::new("outbox_keys");
/// Counters; `outbox_seq` only grows, so a sequence number is never handed out twice.
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Entries the upstream refused for good (a 4xx other than 408/429), kept for the operator.
pub const DEAD_LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");

/// Upload id → `CompletedUpload`: what a repeated CompleteMultipartUpload is answered with,
/// kept for `limits.completed_upload_seconds`.
pub const COMPLETED_UPLOADS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("completed_uploads");

/// `bucket \0 sync state` → object count and bytes (two big-endian u64s), kept by every
/// write of `OBJECTS`, so totals never need a scan.
pub const USAGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("usage");

/// `bucket \0 key` → when a cached object was last read from local disk (ms since the
/// epoch, big-endian i64), written in batches (`access.rs`), for least-recently-used eviction.
pub const ACCESS: TableDefinition<&[u8], i64> = TableDefinition::new("access");

/// `bucket \0 prefix` → `Pin`: objects under a pinned prefix are never evicted.
pub const PINS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pins");

/// `bucket \0 key` → the size of a synced copy evicted by the cache budget (big-endian u64):
/// what the upstream alone holds, and so what is unreachable once gateway mode is turned off
/// (counted for the status document only where the key is not local again).
pub const EVICTED: TableDefinition<&[u8], u64> = TableDefinition::new("evicted");

/// Set in `COUNTERS` once `USAGE` holds every object (stores from before it are counted once).
pub const USAGE_BUILT: &str = "usage_v1";

/// The counter that numbers outbox entries.
pub const OUTBOX_SEQ: &str = "outbox_seq";

/// Creates every table, so that readers never meet a missing one.
pub fn create_tables(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(BUCKETS)?;
    txn.open_table(OBJECTS)?;
    txn.open_table(UPLOADS)?;
    txn.open_table(PARTS)?;
    txn.open_table(OUTBOX)?;
    txn.open_table(OUTBOX_KEYS)?;
    txn.open_table(COUNTERS)?;
    txn.open_table(DEAD_LETTERS)?;
    txn.open_table(USAGE)?;
    txn.open_table(COMPLETED_UPLOADS)?;
    txn.open_table(ACCESS)?;
    txn.open_table(PINS)?;
    txn.open_table(EVICTED)?;
    Ok(())
}

/// `bucket \0 key`: the key of `OBJECTS` and `OUTBOX_KEYS`.
pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The exclusive upper bound of a bucket's range of object keys.
pub fn bucket_end(bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1);
    k.extend_from_slice(bucket.as_bytes());
    k.push(1);
    k
}

/// The bucket and key of an `OBJECTS` key (`None` when it is not `bucket \0 key` in UTF-8).
pub fn split_object_key(k: &[u8]) -> Option<(&str, &str)> {
    let at = k.iter().position(|b| *b == 0)?;
    let bucket = std::str::from_utf8(&k[..at]).ok()?;
    let key = std::str::from_utf8(&k[at + 1..]).ok()?;
    Some((bucket, key))
}

/// The range `[start, end)` of object keys under `prefix` in `bucket`.
pub fn prefix_range(bucket: &str, prefix: &str) -> (Vec<u8>, Vec<u8>) {
    let start = object_key(bucket, prefix);
    let mut end = start.clone();
    end.push(0xFF);
    (start, end)
}

/// `upload \0 part`: the key of `PARTS`.
pub fn part_key(upload: &str, part: u16) -> Vec<u8> {
    let mut k = Vec::with_capacity(upload.len() + 3);
    k.extend_from_slice(upload.as_bytes());
    k.push(0);
    k.extend_from_slice(&part.to_be_bytes());
    k
}

/// The part number at the end of a `PARTS` key.
pub fn part_number(k: &[u8]) -> u16 {
    match k {
        [.., a, b] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

/// The range `[start, end)` of an upload's parts.
pub fn parts_range(upload: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = upload.as_bytes().to_vec();
    start.push(0);
    let mut end = upload.as_bytes().to_vec();
    end.push(1);
    (start, end)
}

pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_range_holds_its_keys_and_no_other_buckets() {
        let end = bucket_end("b");
        assert!(object_key("b", "") < end && object_key("b", "\u{10FFFF}") < end);
        assert!(object_key("b2", "") > end, "b2 sorts after b's range");
        let (s, e) = prefix_range("b", "a/");
        assert!(object_key("b", "a/x") >= s && object_key("b", "a/x") < e);
        assert!(object_key("b", "b") >= e);
        assert_eq!(part_number(&part_key("u", 513)), 513);
        assert_eq!(
            split_object_key(&object_key("b", "a\0/x")),
            Some(("b", "a\0/x"))
        );
        assert_eq!(split_object_key(b"no-separator"), None);
    }
}
