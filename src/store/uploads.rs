//! The multipart upload tables, inside a transaction the caller holds: the upload records and
//! their parts, each part a durable blob of its own. Completing an upload (in `catalog`) turns
//! the parts into the object's segments in one transaction, so no data is copied and a crash
//! leaves either the upload or the object.

use std::collections::HashSet;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::error::StoreError;
use super::meta::{CompletedUpload, PartMeta, Referenced, UploadMeta};
use super::schema::{
    COMPLETED_UPLOADS, PARTS, UPLOADS, decode, encode, part_key, part_number, parts_range,
};

pub fn create(txn: &WriteTransaction, id: &str, meta: &UploadMeta) -> Result<(), StoreError> {
    txn.open_table(UPLOADS)?
        .insert(id, encode(meta)?.as_slice())?;
    Ok(())
}

pub fn get(txn: &ReadTransaction, id: &str) -> Result<UploadMeta, StoreError> {
    let table = txn.open_table(UPLOADS)?;
    let v = table.get(id)?.ok_or(StoreError::NoSuchUpload)?;
    decode(v.value())
}

/// The upload as a write transaction sees it.
pub fn get_for_update(txn: &WriteTransaction, id: &str) -> Result<UploadMeta, StoreError> {
    let table = txn.open_table(UPLOADS)?;
    let v = table.get(id)?.ok_or(StoreError::NoSuchUpload)?;
    decode(v.value())
}

/// Records a part; returns the part it replaced (a re-upload).
pub fn put_part(
    txn: &WriteTransaction,
    id: &str,
    n: u16,
    part: &PartMeta,
) -> Result<Option<PartMeta>, StoreError> {
    if txn.open_table(UPLOADS)?.get(id)?.is_none() {
        return Err(StoreError::NoSuchUpload);
    }
    let mut parts = txn.open_table(PARTS)?;
    let k = part_key(id, n);
    let old = parts.insert(k.as_slice(), encode(part)?.as_slice())?;
    old.map(|v| decode::<PartMeta>(v.value())).transpose()
}

pub fn parts(txn: &ReadTransaction, id: &str) -> Result<Vec<(u16, PartMeta)>, StoreError> {
    if txn.open_table(UPLOADS)?.get(id)?.is_none() {
        return Err(StoreError::NoSuchUpload);
    }
    let table = txn.open_table(PARTS)?;
    let (start, end) = parts_range(id);
    let mut out = Vec::new();
    for entry in table.range::<&[u8]>(start.as_slice()..end.as_slice())? {
        let (k, v) = entry?;
        out.push((part_number(k.value()), decode(v.value())?));
    }
    Ok(out)
}

/// The blobs of an upload's parts as they are now, inside the transaction that completes it.
pub fn part_blobs(txn: &WriteTransaction, id: &str) -> Result<HashSet<String>, StoreError> {
    let parts = txn.open_table(PARTS)?;
    let (start, end) = parts_range(id);
    let mut current = HashSet::new();
    for entry in parts.range::<&[u8]>(start.as_slice()..end.as_slice())? {
        let (_, v) = entry?;
        current.insert(decode::<PartMeta>(v.value())?.blob);
    }
    Ok(current)
}

/// Removes the upload and all its parts; returns the parts.
pub fn remove(txn: &WriteTransaction, id: &str) -> Result<Vec<PartMeta>, StoreError> {
    if txn.open_table(UPLOADS)?.remove(id)?.is_none() {
        return Err(StoreError::NoSuchUpload);
    }
    let mut table = txn.open_table(PARTS)?;
    let (start, end) = parts_range(id);
    let keys: Vec<Vec<u8>> = table
        .range::<&[u8]>(start.as_slice()..end.as_slice())?
        .map(|e| e.map(|(k, _)| k.value().to_vec()))
        .collect::<Result<_, _>>()?;
    let mut removed = Vec::new();
    for k in keys {
        if let Some(v) = table.remove(k.as_slice())? {
            removed.push(decode(v.value())?);
        }
    }
    Ok(removed)
}

/// Every upload in progress, with its id.
pub fn list(txn: &ReadTransaction) -> Result<Vec<(String, UploadMeta)>, StoreError> {
    let table = txn.open_table(UPLOADS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_owned(), decode(v.value())?));
    }
    Ok(out)
}

/// Adds every part's blob to `set` (start-up recovery keeps them).
pub fn referenced_blobs(txn: &ReadTransaction, set: &mut Referenced) -> Result<(), StoreError> {
    let parts = txn.open_table(PARTS)?;
    for entry in parts.iter()? {
        let (_, v) = entry?;
        let part = decode::<PartMeta>(v.value())?;
        set.add(part.blob, part.sealed);
    }
    Ok(())
}

/// Keeps what a completed upload answered, for a retried Complete.
pub fn record_completed(
    txn: &WriteTransaction,
    id: &str,
    done: &CompletedUpload,
) -> Result<(), StoreError> {
    txn.open_table(COMPLETED_UPLOADS)?
        .insert(id, encode(done)?.as_slice())?;
    Ok(())
}

pub fn completed(txn: &ReadTransaction, id: &str) -> Result<Option<CompletedUpload>, StoreError> {
    let table = txn.open_table(COMPLETED_UPLOADS)?;
    table.get(id)?.map(|v| decode(v.value())).transpose()
}

/// Forgets completions older than `cutoff_ms`; returns how many.
pub fn forget_completed_before(
    txn: &WriteTransaction,
    cutoff_ms: i64,
) -> Result<usize, StoreError> {
    let mut table = txn.open_table(COMPLETED_UPLOADS)?;
    let mut n = 0;
    table.retain(|_, v| {
        let keep = decode::<CompletedUpload>(v).is_ok_and(|c| c.completed_ms >= cutoff_ms);
        if !keep {
            n += 1;
        }
        keep
    })?;
    Ok(n)
}
