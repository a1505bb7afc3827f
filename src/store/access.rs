//! When each cached object was last read from local disk, for least-recently-used eviction
//! (issue 12, item 1). A read must not cost a write to the catalog, so reads only update an
//! in-memory map (`AccessTimes::touch`, one mutex and one map insert); the gateway's eviction
//! task moves the map into the `ACCESS` table in one transaction every few seconds or every
//! few thousand reads (`persist`). A crash loses at most that window of access times, and
//! eviction then falls back on the object's own times (when it was cached or last checked),
//! which only makes an object look older than it is. Imports only `schema` and `error`.

use std::collections::HashMap;
use std::sync::Mutex;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::error::StoreError;
use super::schema::{ACCESS, object_key};

/// Reads not yet persisted: `bucket \0 key` → the last read's time (ms since the epoch).
#[derive(Default)]
pub struct AccessTimes {
    recent: Mutex<HashMap<Vec<u8>, i64>>,
}

impl AccessTimes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, i64>> {
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a read at `now_ms`; returns how many reads wait to be persisted.
    pub fn touch(&self, bucket: &str, key: &str, now_ms: i64) -> usize {
        let mut recent = self.lock();
        let t = recent.entry(object_key(bucket, key)).or_insert(now_ms);
        *t = (*t).max(now_ms);
        recent.len()
    }

    /// The last unpersisted read of `bucket \0 key`, if any.
    pub fn get(&self, k: &[u8]) -> Option<i64> {
        self.lock().get(k).copied()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Takes every unpersisted read (for `persist`).
    pub fn take(&self) -> HashMap<Vec<u8>, i64> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back reads whose `persist` failed (newer times already recorded win).
    pub fn restore(&self, batch: HashMap<Vec<u8>, i64>) {
        let mut recent = self.lock();
        for (k, t) in batch {
            let e = recent.entry(k).or_insert(t);
            *e = (*e).max(t);
        }
    }
}

/// Writes a batch of read times, keeping the later of the stored and the new time.
pub fn persist(txn: &WriteTransaction, batch: &HashMap<Vec<u8>, i64>) -> Result<(), StoreError> {
    let mut table = txn.open_table(ACCESS)?;
    for (k, t) in batch {
        let stored = table.get(k.as_slice())?.map(|v| v.value());
        if stored.is_none_or(|s| s < *t) {
            table.insert(k.as_slice(), *t)?;
        }
    }
    Ok(())
}

/// Drops the read time of an object that left the cache.
pub fn forget(txn: &WriteTransaction, bucket: &str, key: &str) -> Result<(), StoreError> {
    txn.open_table(ACCESS)?
        .remove(object_key(bucket, key).as_slice())?;
    Ok(())
}

/// The persisted read times, for a scan that looks up one object after another.
pub fn table(txn: &ReadTransaction) -> Result<redb::ReadOnlyTable<&'static [u8], i64>, StoreError> {
    Ok(txn.open_table(ACCESS)?)
}
