//! The metadata index in redb: buckets, and objects keyed by `bucket \0 key` so that a bucket's
//! keys are one contiguous, byte-ordered range. Listing walks that range from the start position
//! and skips a whole common prefix with one seek, so paging through a million keys stays fast.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};

use super::{BucketMeta, ObjectMeta, Precondition, StoreError};

pub(super) const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
pub(super) const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");

pub struct Index {
    pub(super) db: Database,
}

pub(super) fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The exclusive upper bound of a bucket's range.
fn bucket_end(bucket: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1);
    k.extend_from_slice(bucket.as_bytes());
    k.push(1);
    k
}

pub(super) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// What to list: keys under `prefix`, after `start_after`, rolled up at `delimiter`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive start: a key, or a common prefix returned by an earlier page.
    pub start_after: Option<String>,
    pub max_keys: usize,
}

/// Inserts object metadata inside an open write transaction, checking the bucket and
/// `precondition` there so the check is atomic with the write.
pub(super) fn put_in(
    txn: &redb::WriteTransaction,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
    precondition: &Precondition,
) -> Result<Option<ObjectMeta>, StoreError> {
    if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
        return Err(StoreError::NoSuchBucket);
    }
    let mut table = txn.open_table(OBJECTS)?;
    let k = object_key(bucket, key);
    let current: Option<ObjectMeta> = table
        .get(k.as_slice())?
        .map(|v| decode(v.value()))
        .transpose()?;
    match (precondition, &current) {
        (Precondition::None, _) => {}
        (Precondition::IfNoneMatch, Some(_)) => return Err(StoreError::PreconditionFailed),
        (Precondition::IfNoneMatch, None) => {}
        (Precondition::IfMatch(_), None) => return Err(StoreError::NoSuchKey),
        (Precondition::IfMatch(etag), Some(cur)) => {
            if *etag != cur.etag {
                return Err(StoreError::PreconditionFailed);
            }
        }
    }
    table.insert(k.as_slice(), encode(meta)?.as_slice())?;
    Ok(current)
}

#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<(String, ObjectMeta)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    /// The last key or common prefix returned; where the next page starts.
    pub last: Option<String>,
}

impl Index {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(BUCKETS)?;
        txn.open_table(OBJECTS)?;
        txn.open_table(super::uploads::UPLOADS)?;
        txn.open_table(super::uploads::PARTS)?;
        txn.open_table(super::outbox::OUTBOX)?;
        txn.open_table(super::outbox::OUTBOX_KEYS)?;
        txn.open_table(super::outbox::META)?;
        txn.open_table(super::outbox::DEAD_LETTERS)?;
        txn.commit()?;
        Ok(Self { db })
    }

    pub fn referenced_blobs(&self) -> Result<HashSet<String>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OBJECTS)?;
        let mut set = HashSet::new();
        for entry in table.iter()? {
            let (_, v) = entry?;
            let meta: ObjectMeta = decode(v.value())?;
            set.extend(meta.segments.into_iter().map(|s| s.blob));
        }
        let parts = txn.open_table(super::uploads::PARTS)?;
        for entry in parts.iter()? {
            let (_, v) = entry?;
            let part: super::PartMeta = decode(v.value())?;
            set.insert(part.blob);
        }
        Ok(set)
    }

    pub fn create_bucket(&self, name: &str, meta: &BucketMeta) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
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
        }
        txn.commit()?;
        Ok(())
    }

    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut buckets = txn.open_table(BUCKETS)?;
            if buckets.get(name)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let objects = txn.open_table(OBJECTS)?;
            let start = object_key(name, "");
            let end = bucket_end(name);
            if objects
                .range::<&[u8]>(start.as_slice()..end.as_slice())?
                .next()
                .is_some()
            {
                return Err(StoreError::BucketNotEmpty);
            }
            buckets.remove(name)?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn bucket(&self, name: &str) -> Result<Option<BucketMeta>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BUCKETS)?;
        table.get(name)?.map(|v| decode(v.value())).transpose()
    }

    pub fn list_buckets(&self) -> Result<Vec<(String, BucketMeta)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(BUCKETS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push((k.value().to_owned(), decode(v.value())?));
        }
        Ok(out)
    }

    /// Commits the object's metadata if `precondition` holds, with an outbox entry when
    /// `replicate`; returns the metadata it replaced and the entry's sequence number.
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        precondition: &Precondition,
        replicate: bool,
    ) -> Result<(Option<ObjectMeta>, Option<u64>), StoreError> {
        let txn = self.db.begin_write()?;
        let old = put_in(&txn, bucket, key, meta, precondition)?;
        if !replicate {
            super::outbox::clear_key_in(&txn, bucket, key)?;
        }
        let seq = replicate
            .then(|| {
                super::outbox::enqueue_in(
                    &txn,
                    super::outbox::OutboxOp::Put {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                        etag: meta.etag.clone(),
                    },
                    meta.last_modified_ms,
                )
            })
            .transpose()?;
        txn.commit()?;
        Ok((old, seq))
    }

    /// Changes an object's metadata in place (tags, ACL).
    pub fn update_object(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(&mut ObjectMeta),
    ) -> Result<ObjectMeta, StoreError> {
        let txn = self.db.begin_write()?;
        let meta = {
            if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let mut table = txn.open_table(OBJECTS)?;
            let k = object_key(bucket, key);
            let mut meta: ObjectMeta = match table.get(k.as_slice())? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NoSuchKey),
            };
            change(&mut meta);
            table.insert(k.as_slice(), encode(&meta)?.as_slice())?;
            meta
        };
        txn.commit()?;
        Ok(meta)
    }

    pub fn object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OBJECTS)?;
        match table.get(object_key(bucket, key).as_slice())? {
            Some(v) => decode(v.value()),
            None => {
                if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
                    Err(StoreError::NoSuchBucket)
                } else {
                    Err(StoreError::NoSuchKey)
                }
            }
        }
    }

    /// Deletes the object's metadata; with `tombstone`, queues the delete for the upstream in the
    /// same transaction. Returns the removed metadata and the tombstone's sequence number.
    pub fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        tombstone: Option<i64>,
    ) -> Result<(Option<ObjectMeta>, Option<u64>), StoreError> {
        let txn = self.db.begin_write()?;
        let old = {
            if txn.open_table(BUCKETS)?.get(bucket)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let mut table = txn.open_table(OBJECTS)?;
            let k = object_key(bucket, key);
            // The binding ends the guard's borrow of `table` before the block does.
            #[allow(clippy::let_and_return)]
            let old = table
                .remove(k.as_slice())?
                .map(|v| decode::<ObjectMeta>(v.value()))
                .transpose()?;
            old
        };
        if tombstone.is_none() {
            super::outbox::clear_key_in(&txn, bucket, key)?;
        }
        let seq = tombstone
            .map(|now| {
                super::outbox::enqueue_in(
                    &txn,
                    super::outbox::OutboxOp::Delete {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    },
                    now,
                )
            })
            .transpose()?;
        txn.commit()?;
        Ok((old, seq))
    }

    /// Deletes a cached copy only if it is still this synced version and nothing is queued for
    /// the key (a revalidation found the upstream changed or deleted it).
    pub fn delete_if_synced(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<ObjectMeta>, StoreError> {
        let txn = self.db.begin_write()?;
        let old = {
            if super::outbox::has_entry_in(&txn, bucket, key)? {
                return Ok(None);
            }
            let mut table = txn.open_table(OBJECTS)?;
            let k = object_key(bucket, key);
            let current: Option<ObjectMeta> = table
                .get(k.as_slice())?
                .map(|v| decode(v.value()))
                .transpose()?;
            match current {
                Some(m) if m.etag == etag && m.sync == super::SyncState::Synced => {
                    table.remove(k.as_slice())?;
                    Some(m)
                }
                _ => return Ok(None),
            }
        };
        txn.commit()?;
        Ok(old)
    }

    /// Commits a cache fill: only while the key is absent locally and nothing is queued for it,
    /// so a fill never hides a newer local write nor resurrects a queued delete.
    pub fn commit_fill(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        {
            if super::outbox::has_entry_in(&txn, bucket, key)? {
                return Ok(false);
            }
            match put_in(&txn, bucket, key, meta, &Precondition::IfNoneMatch) {
                Ok(_) => {}
                Err(StoreError::PreconditionFailed | StoreError::NoSuchBucket) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        txn.commit()?;
        Ok(true)
    }

    /// Evaluates a write precondition against the current state, without writing.
    pub fn check_precondition(
        &self,
        bucket: &str,
        key: &str,
        p: &Precondition,
    ) -> Result<(), StoreError> {
        let current = match self.object(bucket, key) {
            Ok(m) => Some(m),
            Err(StoreError::NoSuchKey) => None,
            Err(e) => return Err(e),
        };
        match (p, current) {
            (Precondition::IfNoneMatch, Some(_)) => Err(StoreError::PreconditionFailed),
            (Precondition::IfMatch(_), None) => Err(StoreError::NoSuchKey),
            (Precondition::IfMatch(e), Some(m)) if *e != m.etag => {
                Err(StoreError::PreconditionFailed)
            }
            _ => Ok(()),
        }
    }

    pub fn list(&self, bucket: &str, q: &ListQuery) -> Result<ListPage, StoreError> {
        let txn = self.db.begin_read()?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ContentHeaders;

    fn meta(n: u64) -> ObjectMeta {
        ObjectMeta {
            segments: vec![crate::store::Segment {
                blob: format!("blob{n}"),
                size: n,
                etag: String::new(),
                checksum: None,
                sha256: None,
            }],
            size: n,
            etag: "e".into(),
            last_modified_ms: 0,
            content: ContentHeaders::default(),
            user_metadata: vec![],
            checksum: None,
            multipart: false,
            tags: vec![],
            acl: None,
            sync: crate::store::SyncState::LocalOnly,
            validated_ms: 0,
            sse: None,
        }
    }

    fn index_with(keys: &[&str]) -> (tempfile::TempDir, Index) {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(&dir.path().join("i.redb")).unwrap();
        let bm = BucketMeta {
            created_ms: 0,
            owner: "o".into(),
            region: "r".into(),
        };
        ix.create_bucket("b", &bm).unwrap();
        ix.create_bucket("b2", &bm).unwrap();
        ix.put_object("b2", "zzz", &meta(0), &Precondition::None, false)
            .unwrap();
        for (i, k) in keys.iter().enumerate() {
            ix.put_object("b", k, &meta(i as u64), &Precondition::None, false)
                .unwrap();
        }
        (dir, ix)
    }

    fn q(prefix: &str, delim: Option<&str>, after: Option<&str>, max: usize) -> ListQuery {
        ListQuery {
            prefix: prefix.into(),
            delimiter: delim.map(Into::into),
            start_after: after.map(Into::into),
            max_keys: max,
        }
    }

    fn keys(p: &ListPage) -> Vec<&str> {
        p.objects.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn list_with_delimiter_rolls_up_and_pages() {
        let (_d, ix) = index_with(&[
            "a",
            "photos/1.jpg",
            "photos/2.jpg",
            "photos/x/3.jpg",
            "videos/v",
            "z",
        ]);
        let p = ix.list("b", &q("", Some("/"), None, 1000)).unwrap();
        assert_eq!(keys(&p), ["a", "z"]);
        assert_eq!(p.common_prefixes, ["photos/", "videos/"]);
        assert!(!p.is_truncated);

        let p = ix.list("b", &q("", Some("/"), None, 2)).unwrap();
        assert_eq!(keys(&p), ["a"]);
        assert_eq!(p.common_prefixes, ["photos/"]);
        assert!(p.is_truncated);
        let p2 = ix
            .list("b", &q("", Some("/"), p.last.as_deref(), 2))
            .unwrap();
        assert_eq!(p2.common_prefixes, ["videos/"]);
        assert_eq!(keys(&p2), ["z"]);
        assert!(!p2.is_truncated);

        let p = ix.list("b", &q("photos/", Some("/"), None, 1000)).unwrap();
        assert_eq!(keys(&p), ["photos/1.jpg", "photos/2.jpg"]);
        assert_eq!(p.common_prefixes, ["photos/x/"]);
    }

    #[test]
    fn list_without_delimiter_respects_prefix_and_start_after() {
        let (_d, ix) = index_with(&["a", "b/1", "b/2", "c"]);
        let p = ix.list("b", &q("b/", None, None, 1000)).unwrap();
        assert_eq!(keys(&p), ["b/1", "b/2"]);
        let p = ix.list("b", &q("", None, Some("b/1"), 1000)).unwrap();
        assert_eq!(keys(&p), ["b/2", "c"]);
        let p = ix.list("b", &q("", None, None, 0)).unwrap();
        assert!(p.objects.is_empty());
        // Another bucket's keys never leak in.
        let p = ix.list("b", &q("", None, Some("c"), 1000)).unwrap();
        assert!(p.objects.is_empty());
    }

    #[test]
    fn preconditions_are_checked_in_the_commit() {
        let (_d, ix) = index_with(&["k"]);
        let none = Precondition::IfNoneMatch;
        assert!(matches!(
            ix.put_object("b", "k", &meta(1), &none, false),
            Err(StoreError::PreconditionFailed)
        ));
        assert!(ix.put_object("b", "new", &meta(1), &none, false).is_ok());
        let wrong = Precondition::IfMatch("x".into());
        assert!(matches!(
            ix.put_object("b", "k", &meta(1), &wrong, false),
            Err(StoreError::PreconditionFailed)
        ));
        assert!(matches!(
            ix.put_object("b", "nope", &meta(1), &wrong, false),
            Err(StoreError::NoSuchKey)
        ));
        let right = Precondition::IfMatch("e".into());
        assert!(ix.put_object("b", "k", &meta(1), &right, false).is_ok());
    }

    #[test]
    fn bucket_lifecycle() {
        let (_d, ix) = index_with(&["k"]);
        assert!(matches!(
            ix.delete_bucket("b"),
            Err(StoreError::BucketNotEmpty)
        ));
        ix.delete_object("b", "k", None).unwrap();
        ix.delete_bucket("b").unwrap();
        assert!(matches!(ix.object("b", "k"), Err(StoreError::NoSuchBucket)));
        assert!(matches!(ix.object("b2", "k"), Err(StoreError::NoSuchKey)));
    }
}
