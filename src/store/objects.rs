//! The bucket and object tables, inside a transaction the caller holds. Objects are keyed
//! `bucket \0 key` (`schema::object_key`), so a listing walks one contiguous range from its start
//! position and skips a whole common prefix with one seek: paging through a million keys stays
//! fast, and no directory is ever walked.

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::error::StoreError;
use super::meta::{BucketMeta, ObjectMeta, Precondition, Referenced};
use super::schema::{BUCKETS, OBJECTS, bucket_end, decode, encode, object_key};
use super::usage;

/// What to list: keys under `prefix`, after `start_after`, rolled up at `delimiter`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive start: a key, or a common prefix returned by an earlier page.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

#[derive(Debug, Default, Clone)]
pub struct ListPage {
    pub objects: Vec<(String, ObjectMeta)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned; where the next page starts.
    pub last: Option<String>,
    /// Set in gateway mode when the upstream did not answer the listing and it came from the
    /// local index instead (objects only upstream are missing from it).
    pub from_local_index: bool,
}

/// The object stored under `k` in `table`, if any.
fn read_object<T>(table: &T, k: &[u8]) -> Result<Option<ObjectMeta>, StoreError>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    table.get(k)?.map(|v| decode(v.value())).transpose()
}

pub fn bucket(txn: &ReadTransaction, name: &str) -> Result<Option<BucketMeta>, StoreError> {
    let table = txn.open_table(BUCKETS)?;
    table.get(name)?.map(|v| decode(v.value())).transpose()
}

pub fn list_buckets(txn: &ReadTransaction) -> Result<Vec<(String, BucketMeta)>, StoreError> {
    let table = txn.open_table(BUCKETS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        out.push((k.value().to_owned(), decode(v.value())?));
    }
    Ok(out)
}

/// `NoSuchBucket` unless the bucket exists.
pub fn require_bucket(txn: &WriteTransaction, bucket: &str) -> Result<(), StoreError> {
    match txn.open_table(BUCKETS)?.get(bucket)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NoSuchBucket),
    }
}

pub fn create_bucket(
    txn: &WriteTransaction,
    name: &str,
    meta: &BucketMeta,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(BUCKETS)?;
    if let Some(existing) = table.get(name)? {
        let existing: BucketMeta = decode(existing.value())?;
        return Err(if existing.owner == meta.owner {
            StoreError::BucketAlreadyOwnedByYou
        } else {
            StoreError::BucketAlreadyExists
        });
    }
    table.insert(name, encode(meta)?.as_slice())?;
    Ok(())
}

/// Changes a bucket's settings in place; `NoSuchBucket` when it does not exist.
pub fn update_bucket(
    txn: &WriteTransaction,
    name: &str,
    change: impl FnOnce(&mut BucketMeta),
) -> Result<(), StoreError> {
    let mut table = txn.open_table(BUCKETS)?;
    let mut meta: BucketMeta = match table.get(name)? {
        Some(v) => decode(v.value())?,
        None => return Err(StoreError::NoSuchBucket),
    };
    change(&mut meta);
    table.insert(name, encode(&meta)?.as_slice())?;
    Ok(())
}

pub fn delete_bucket(txn: &WriteTransaction, name: &str) -> Result<(), StoreError> {
    let mut buckets = txn.open_table(BUCKETS)?;
    if buckets.get(name)?.is_none() {
        return Err(StoreError::NoSuchBucket);
    }
    let objects = txn.open_table(OBJECTS)?;
    let (start, end) = (object_key(name, ""), bucket_end(name));
    if objects
        .range::<&[u8]>(start.as_slice()..end.as_slice())?
        .next()
        .is_some()
    {
        return Err(StoreError::BucketNotEmpty);
    }
    buckets.remove(name)?;
    Ok(())
}

/// The object, or `NoSuchKey` / `NoSuchBucket`.
pub fn object(txn: &ReadTransaction, bucket: &str, key: &str) -> Result<ObjectMeta, StoreError> {
    let table = txn.open_table(OBJECTS)?;
    match read_object(&table, &object_key(bucket, key))? {
        Some(m) => Ok(m),
        None if txn.open_table(BUCKETS)?.get(bucket)?.is_none() => Err(StoreError::NoSuchBucket),
        None => Err(StoreError::NoSuchKey),
    }
}

/// The object as a write transaction sees it (`None` when absent).
pub fn current(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectMeta>, StoreError> {
    read_object(&txn.open_table(OBJECTS)?, &object_key(bucket, key))
}

/// Inserts object metadata, checking the bucket and `precondition` in the same transaction so
/// the check is atomic with the write. Returns the metadata it replaced.
pub fn put(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
    precondition: &Precondition,
) -> Result<Option<ObjectMeta>, StoreError> {
    require_bucket(txn, bucket)?;
    let mut table = txn.open_table(OBJECTS)?;
    let k = object_key(bucket, key);
    let old = read_object(&table, &k)?;
    precondition.check(old.as_ref())?;
    table.insert(k.as_slice(), encode(meta)?.as_slice())?;
    drop(table);
    usage::adjust(txn, bucket, old.as_ref(), Some(meta))?;
    Ok(old)
}

/// Writes metadata over whatever is there, with no checks (a row the caller just read).
pub fn replace(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
) -> Result<(), StoreError> {
    let k = object_key(bucket, key);
    let mut table = txn.open_table(OBJECTS)?;
    let old = read_object(&table, &k)?;
    table.insert(k.as_slice(), encode(meta)?.as_slice())?;
    drop(table);
    usage::adjust(txn, bucket, old.as_ref(), Some(meta))?;
    Ok(())
}

/// Removes the object's metadata; returns it. `NoSuchBucket` unless the bucket exists.
pub fn remove(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectMeta>, StoreError> {
    require_bucket(txn, bucket)?;
    let mut table = txn.open_table(OBJECTS)?;
    let k = object_key(bucket, key);
    let removed: Option<ObjectMeta> = table
        .remove(k.as_slice())?
        .map(|v| decode(v.value()))
        .transpose()?;
    drop(table);
    usage::adjust(txn, bucket, removed.as_ref(), None)?;
    Ok(removed)
}

/// Changes an object's metadata in place (tags, ACL, validation time).
pub fn update(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    change: impl FnOnce(&mut ObjectMeta),
) -> Result<ObjectMeta, StoreError> {
    require_bucket(txn, bucket)?;
    let mut meta = current(txn, bucket, key)?.ok_or(StoreError::NoSuchKey)?;
    change(&mut meta);
    replace(txn, bucket, key, &meta)?;
    Ok(meta)
}

/// Adds every blob an object references to `set` (start-up recovery keeps them).
pub fn referenced_blobs(txn: &ReadTransaction, set: &mut Referenced) -> Result<(), StoreError> {
    let table = txn.open_table(OBJECTS)?;
    for entry in table.iter()? {
        let (_, v) = entry?;
        let meta: ObjectMeta = decode(v.value())?;
        for s in meta.segments {
            set.add(s.blob, s.sealed);
        }
    }
    Ok(())
}

/// One page of a bucket's keys (ListObjects / ListObjectsV2).
pub fn list(txn: &ReadTransaction, bucket: &str, q: &ListQuery) -> Result<ListPage, StoreError> {
    if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
        return Err(StoreError::NoSuchBucket);
    }
    let table = txn.open_table(OBJECTS)?;
    let end = bucket_end(bucket);
    let prefix_len = bucket.len() + 1;
    let mut page = ListPage::default();
    // Nothing asked for, nothing to continue from: an empty, complete answer.
    if q.max_keys == 0 {
        return Ok(page);
    }
    let mut cursor: Bound<Vec<u8>> = match &q.start_after {
        Some(s) if s.as_str() >= q.prefix.as_str() => Bound::Excluded(object_key(bucket, s)),
        _ => Bound::Included(object_key(bucket, &q.prefix)),
    };
    let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut count = 0usize;
    'restart: loop {
        let range = (
            cursor.as_ref().map(Vec::as_slice),
            Bound::Excluded(end.as_slice()),
        );
        for entry in table.range::<&[u8]>(range)? {
            let (k, v) = entry?;
            let raw = k.value();
            let key = std::str::from_utf8(&raw[prefix_len..])
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if !key.starts_with(q.prefix.as_str()) {
                break 'restart;
            }
            if let Some(d) = delimiter
                && let Some(pos) = key[q.prefix.len()..].find(d)
            {
                let cp = &key[..q.prefix.len() + pos + d.len()];
                // Skip past every key under this common prefix with one seek.
                let mut next = object_key(bucket, cp);
                next.push(0xFF);
                let returned_before = q.start_after.as_deref() == Some(cp);
                if !returned_before {
                    if count == q.max_keys {
                        page.is_truncated = true;
                        break 'restart;
                    }
                    page.common_prefixes.push(cp.to_owned());
                    page.last = Some(cp.to_owned());
                    count += 1;
                }
                cursor = Bound::Included(next);
                continue 'restart;
            }
            if count == q.max_keys {
                page.is_truncated = true;
                break 'restart;
            }
            page.objects.push((key.to_owned(), decode(v.value())?));
            page.last = Some(key.to_owned());
            count += 1;
        }
        break;
    }
    Ok(page)
}
