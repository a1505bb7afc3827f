//! The catalog's side of the cache budget: read times persisted in batches, the scan that
//! finds the least recently used synced copies, and the pinned prefixes. Eviction itself is
//! `Catalog::delete_if_synced` (mod.rs), the same race-safe removal a revalidation uses.

use std::collections::HashMap;

use redb::ReadableTable;
use serde::Deserialize;

use super::Catalog;
use crate::store::access::{self, AccessTimes};
use crate::store::error::StoreError;
use crate::store::lru::{Candidate, Oldest, last_access};
use crate::store::meta::SyncState;
use crate::store::pins::{self, Pin};
use crate::store::schema::{EVICTED, OBJECTS, object_key, split_object_key};

/// The fields of an `ObjectMeta` row that eviction needs; serde skips the rest of the JSON
/// (content headers, metadata, checksums), which is most of the cost of decoding a row.
#[derive(Deserialize)]
struct Row {
    size: u64,
    etag: String,
    last_modified_ms: i64,
    #[serde(default)]
    sync: SyncState,
    #[serde(default)]
    validated_ms: i64,
    segments: Vec<SegmentRow>,
}

#[derive(Deserialize)]
struct SegmentRow {
    blob: String,
}

/// Evicted objects not on local disk again: only the upstream has them.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Unreachable {
    pub objects: u64,
    pub bytes: u64,
    /// The first few, as `bucket/key`.
    pub sample: Vec<String>,
}

impl Catalog {
    /// Evicts a synced copy (as `delete_if_synced`) and records it in `EVICTED`, in one
    /// transaction.
    pub fn evict_if_synced(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<crate::store::meta::ObjectMeta>, StoreError> {
        self.write(|txn| {
            let removed = super::remove_if_synced(txn, bucket, key, etag)?;
            if let Some(m) = &removed {
                txn.open_table(EVICTED)?
                    .insert(object_key(bucket, key).as_slice(), m.size)?;
            }
            Ok(removed)
        })
    }

    /// The evicted objects that are not local again (a scan of the eviction record).
    pub fn unreachable(&self, sample: usize) -> Result<Unreachable, StoreError> {
        self.read(|txn| {
            let evicted = txn.open_table(EVICTED)?;
            let objects = txn.open_table(OBJECTS)?;
            let mut out = Unreachable::default();
            for entry in evicted.iter()? {
                let (k, size) = entry?;
                if objects.get(k.value())?.is_some() {
                    continue;
                }
                out.objects += 1;
                out.bytes += size.value();
                if out.sample.len() < sample
                    && let Some((b, key)) = split_object_key(k.value())
                {
                    out.sample.push(format!("{b}/{key}"));
                }
            }
            Ok(out)
        })
    }

    /// Writes a batch of read times in one transaction.
    pub fn persist_access(&self, batch: &HashMap<Vec<u8>, i64>) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(|txn| access::persist(txn, batch))
    }

    /// The `limit` least recently used synced objects not under one of `pins`: one read
    /// transaction over every object row (a partial decode of each) and one `ACCESS` look-up
    /// per synced row; `recent` holds reads not persisted yet.
    pub fn eviction_candidates(
        &self,
        pins: &[Pin],
        recent: &AccessTimes,
        limit: usize,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.read(|txn| {
            let objects = txn.open_table(OBJECTS)?;
            let times = access::table(txn)?;
            let mut oldest = Oldest::new(limit);
            for entry in objects.iter()? {
                let (k, v) = entry?;
                let row: Row = serde_json::from_slice(v.value())
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if row.sync != SyncState::Synced {
                    continue;
                }
                let raw = k.value();
                let Some((bucket, key)) = split_object_key(raw) else {
                    continue;
                };
                if pins::pinned(pins, bucket, key) {
                    continue;
                }
                let persisted = times.get(raw)?.map(|t| t.value());
                oldest.offer(Candidate {
                    last_access_ms: last_access(
                        recent.get(raw),
                        persisted,
                        row.validated_ms,
                        row.last_modified_ms,
                    ),
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    etag: row.etag,
                    size: row.size,
                    blobs: row.segments.into_iter().map(|s| s.blob).collect(),
                });
            }
            Ok(oldest.into_sorted())
        })
    }

    /// The persisted time of the last read of `bucket/key`.
    pub fn read_time(&self, bucket: &str, key: &str) -> Result<Option<i64>, StoreError> {
        self.read(|txn| {
            let k = crate::store::schema::object_key(bucket, key);
            Ok(access::table(txn)?.get(k.as_slice())?.map(|t| t.value()))
        })
    }

    pub fn add_pin(&self, pin: &Pin) -> Result<bool, StoreError> {
        self.write(|txn| pins::add(txn, pin))
    }

    pub fn remove_pin(&self, bucket: &str, prefix: &str) -> Result<bool, StoreError> {
        self.write(|txn| pins::remove(txn, bucket, prefix))
    }

    pub fn pins(&self) -> Result<Vec<Pin>, StoreError> {
        self.read(pins::list)
    }
}
