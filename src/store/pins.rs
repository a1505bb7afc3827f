//! Pinned prefixes (`POST /storage/pin`): objects whose key starts with a pinned prefix of
//! their bucket are never evicted. A pin is a prefix, not a flag on each object, so an object
//! written under it later is pinned too, and pinning a million objects is one row. Eviction
//! matches every candidate against the (few) pins; nothing else reads them. Imports only
//! `schema` and `error`.

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::schema::{PINS, decode, encode, object_key, split_object_key};

/// One pinned prefix of a bucket (`""`: the whole bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin {
    pub bucket: String,
    pub prefix: String,
    pub created_ms: i64,
}

impl Pin {
    pub fn covers(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket && key.starts_with(self.prefix.as_str())
    }
}

/// Whether any of `pins` covers `bucket/key`.
pub fn pinned(pins: &[Pin], bucket: &str, key: &str) -> bool {
    pins.iter().any(|p| p.covers(bucket, key))
}

#[derive(Serialize, Deserialize)]
struct PinRow {
    created_ms: i64,
}

/// Adds a pin; false when it was already there (its first time is kept).
pub fn add(txn: &WriteTransaction, pin: &Pin) -> Result<bool, StoreError> {
    let mut table = txn.open_table(PINS)?;
    let k = object_key(&pin.bucket, &pin.prefix);
    if table.get(k.as_slice())?.is_some() {
        return Ok(false);
    }
    let row = encode(&PinRow {
        created_ms: pin.created_ms,
    })?;
    table.insert(k.as_slice(), row.as_slice())?;
    Ok(true)
}

/// Removes a pin; false when there was none.
pub fn remove(txn: &WriteTransaction, bucket: &str, prefix: &str) -> Result<bool, StoreError> {
    let mut table = txn.open_table(PINS)?;
    Ok(table
        .remove(object_key(bucket, prefix).as_slice())?
        .is_some())
}

/// Every pin, ordered by bucket and prefix.
pub fn list(txn: &ReadTransaction) -> Result<Vec<Pin>, StoreError> {
    let table = txn.open_table(PINS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        let Some((bucket, prefix)) = split_object_key(k.value()) else {
            continue;
        };
        let row: PinRow = decode(v.value())?;
        out.push(Pin {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            created_ms: row.created_ms,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_covers_its_prefix_in_its_bucket_only() {
        let pin = |b: &str, p: &str| Pin {
            bucket: b.into(),
            prefix: p.into(),
            created_ms: 0,
        };
        let pins = [pin("b", "keep/"), pin("all", "")];
        assert!(pinned(&pins, "b", "keep/x"));
        assert!(pinned(&pins, "b", "keep/"));
        assert!(
            !pinned(&pins, "b", "keep"),
            "the prefix is not under itself minus '/'"
        );
        assert!(!pinned(&pins, "b2", "keep/x"), "another bucket");
        assert!(pinned(&pins, "all", "anything"));
        assert!(!pinned(&[], "b", "x"));
    }
}
