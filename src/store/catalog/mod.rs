//! The catalog: the one redb database that holds every bucket, object, multipart upload, outbox
//! entry and dead letter. Each method is one transaction that composes the table modules
//! (`objects`, `outbox`, `uploads`, peers that never call each other), so the rules that span
//! tables are written here once: "put the row, then enqueue or clear the key's outbox entry",
//! "a cache fill never hides queued work", "only the key's newest entry marks it synced".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use redb::{Database, ReadTransaction, WriteTransaction};

use super::error::StoreError;
use super::meta::{BucketMeta, ObjectMeta, Precondition, Referenced, SyncState};
use super::objects::{self, ListPage, ListQuery};
use super::outbox::{self, OutboxOp};
use super::usage::{self, Usage};
use super::{access, schema, uploads};

mod cache;
mod migrate;
mod multipart;
mod replay;

pub use cache::Unreachable;
pub use migrate::MigrationPage;
pub use replay::Retried;

pub struct Catalog {
    path: PathBuf,
    /// `None` only while it is being re-opened.
    db: RwLock<Option<Database>>,
}

/// Puts the row, then queues it for the upstream (`replicate`) or clears the key's queued entry
/// (its state needs no replay: local-only, or already upstream). Returns the replaced metadata
/// and the entry's sequence number.
fn put_and_queue(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    meta: &ObjectMeta,
    precondition: &Precondition,
    replicate: bool,
) -> Result<(Option<ObjectMeta>, Option<u64>), StoreError> {
    let old = objects::put(txn, bucket, key, meta, precondition)?;
    let seq = if replicate {
        let op = OutboxOp::Put {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            etag: meta.etag.clone(),
        };
        Some(outbox::enqueue(txn, op, meta.last_modified_ms)?)
    } else {
        outbox::clear_key(txn, bucket, key)?;
        None
    };
    Ok((old, seq))
}

/// Removes a copy only if it is still that synced version with nothing queued for its key.
fn remove_if_synced(
    txn: &redb::WriteTransaction,
    bucket: &str,
    key: &str,
    etag: &str,
) -> Result<Option<ObjectMeta>, StoreError> {
    if outbox::newest(txn, bucket, key)?.is_some() {
        return Ok(None);
    }
    match objects::current(txn, bucket, key)? {
        Some(m) if m.etag == etag && m.sync == SyncState::Synced => {
            objects::remove(txn, bucket, key)?;
            access::forget(txn, bucket, key)?;
            Ok(Some(m))
        }
        _ => Ok(None),
    }
}

impl Catalog {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            path: path.to_owned(),
            db: RwLock::new(Some(Self::open_db(path)?)),
        })
    }

    fn open_db(path: &Path) -> Result<Database, StoreError> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        schema::create_tables(&txn)?;
        if usage::rebuild_if_needed(&txn)? {
            tracing::info!("counted the objects of the index once (usage totals)");
        }
        txn.commit()?;
        Ok(db)
    }

    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(db) => f(db),
            None => Err(StoreError::Corrupt(
                "the catalog could not be re-opened".into(),
            )),
        }
    }

    /// After a failed commit (a full disk, an I/O error) redb refuses every later write until
    /// the database is opened again: it is re-opened here at once, so the next write (once
    /// space is freed) works without a restart. Opening may itself need a little space (redb
    /// repairs the file): on a full disk the reserve file is released for it.
    fn reopen(&self) -> Result<(), StoreError> {
        let mut guard = self.db.write().unwrap_or_else(|p| p.into_inner());
        *guard = None; // the old handle must close (and release its file lock) first
        let opened = match Self::open_db(&self.path) {
            Err(StoreError::NoSpace(_))
                if self
                    .path
                    .parent()
                    .is_some_and(super::space::release_reserve) =>
            {
                tracing::warn!("disk full: released the reserve to re-open the catalog");
                Self::open_db(&self.path)
            }
            other => other,
        };
        match opened {
            Ok(db) => {
                *guard = Some(db);
                tracing::warn!("the catalog was re-opened after a failed write");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot re-open the catalog");
                Err(e)
            }
        }
    }

    /// Re-opens the catalog if it is closed (a re-open failed, e.g. while the disk was full);
    /// the failure to open, `NoSpace` on a full disk, is this request's answer.
    fn ensure_open(&self) -> Result<(), StoreError> {
        let closed = self.db.read().unwrap_or_else(|p| p.into_inner()).is_none();
        if closed {
            self.reopen()?;
        }
        Ok(())
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.ensure_open()?;
        self.with_db(|db| f(&db.begin_read()?))
    }

    /// Runs `f` in a write transaction, committed when `f` succeeds and aborted when it fails.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.ensure_open()?;
        let result = self.with_db(|db| {
            let txn = db.begin_write()?;
            let out = f(&txn)?;
            txn.commit()?;
            Ok(out)
        });
        if matches!(result, Err(StoreError::Index(_) | StoreError::NoSpace(_))) {
            let _ = self.reopen();
        }
        result
    }

    pub fn referenced_blobs(&self) -> Result<Referenced, StoreError> {
        self.read(|txn| {
            let mut set = Referenced::default();
            objects::referenced_blobs(txn, &mut set)?;
            uploads::referenced_blobs(txn, &mut set)?;
            Ok(set)
        })
    }

    pub fn create_bucket(&self, name: &str, meta: &BucketMeta) -> Result<(), StoreError> {
        self.write(|txn| objects::create_bucket(txn, name, meta))
    }

    pub fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        self.write(|txn| objects::delete_bucket(txn, name))
    }

    pub fn bucket(&self, name: &str) -> Result<Option<BucketMeta>, StoreError> {
        self.read(|txn| objects::bucket(txn, name))
    }

    pub fn list_buckets(&self) -> Result<Vec<(String, BucketMeta)>, StoreError> {
        self.read(objects::list_buckets)
    }

    pub fn object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, StoreError> {
        self.read(|txn| objects::object(txn, bucket, key))
    }

    pub fn list(&self, bucket: &str, q: &ListQuery) -> Result<ListPage, StoreError> {
        self.read(|txn| objects::list(txn, bucket, q))
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
        self.write(|txn| put_and_queue(txn, bucket, key, meta, precondition, replicate))
    }

    pub fn update_object(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(&mut ObjectMeta),
    ) -> Result<ObjectMeta, StoreError> {
        self.write(|txn| objects::update(txn, bucket, key, change))
    }

    /// Deletes the object's metadata; with `tombstone` (the time), queues the delete for the
    /// upstream in the same transaction, else clears the key's queued entry. Returns the removed
    /// metadata and the tombstone's sequence number.
    pub fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        tombstone: Option<i64>,
    ) -> Result<(Option<ObjectMeta>, Option<u64>), StoreError> {
        self.write(|txn| {
            let old = objects::remove(txn, bucket, key)?;
            access::forget(txn, bucket, key)?;
            let seq = match tombstone {
                Some(now) => {
                    let op = OutboxOp::Delete {
                        bucket: bucket.to_owned(),
                        key: key.to_owned(),
                    };
                    Some(outbox::enqueue(txn, op, now)?)
                }
                None => {
                    outbox::clear_key(txn, bucket, key)?;
                    None
                }
            };
            Ok((old, seq))
        })
    }

    /// Deletes a cached copy only if it is still this synced version and nothing is queued for
    /// the key (a revalidation found the upstream changed or deleted it, or it is evicted).
    pub fn delete_if_synced(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<ObjectMeta>, StoreError> {
        self.write(|txn| remove_if_synced(txn, bucket, key, etag))
    }

    /// Commits a cache fill: only while the key is absent locally and nothing is queued for it,
    /// so a fill never hides a newer local write nor resurrects a queued delete.
    pub fn commit_fill(
        &self,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            if outbox::newest(txn, bucket, key)?.is_some() {
                return Ok(false);
            }
            match objects::put(txn, bucket, key, meta, &Precondition::IfNoneMatch) {
                Ok(_) => Ok(true),
                Err(StoreError::PreconditionFailed | StoreError::NoSuchBucket) => Ok(false),
                Err(e) => Err(e),
            }
        })
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
        p.check(current.as_ref())
    }

    /// Objects and bytes by sync state, over every bucket.
    pub fn usage(&self) -> Result<Usage, StoreError> {
        self.read(usage::total)
    }

    /// Objects and bytes by sync state, per bucket.
    pub fn usage_by_bucket(&self) -> Result<BTreeMap<String, Usage>, StoreError> {
        self.read(usage::by_bucket)
    }

    /// Changes a bucket's settings in place (its CORS rules).
    pub fn update_bucket(
        &self,
        name: &str,
        change: impl FnOnce(&mut BucketMeta),
    ) -> Result<(), StoreError> {
        self.write(|txn| objects::update_bucket(txn, name, change))
    }
}

#[cfg(test)]
mod listing_tests {
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
                part_number: 0,
                sealed: false,
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

    fn index_with(keys: &[&str]) -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let ix = Catalog::open(&dir.path().join("i.redb")).unwrap();
        let bm = BucketMeta::new("o", "r");
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

#[cfg(test)]
mod outbox_tests {
    use super::*;
    use crate::store::{ContentHeaders, Segment};

    fn meta(etag: &str, sync: SyncState) -> ObjectMeta {
        ObjectMeta {
            segments: vec![Segment {
                blob: format!("blob-{etag}"),
                size: 1,
                etag: etag.into(),
                checksum: None,
                sha256: None,
                part_number: 0,
                sealed: false,
            }],
            size: 1,
            etag: etag.into(),
            last_modified_ms: 0,
            content: ContentHeaders::default(),
            user_metadata: vec![],
            checksum: None,
            multipart: false,
            tags: vec![],
            acl: None,
            sync,
            validated_ms: 0,
            sse: None,
        }
    }

    fn index() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().unwrap();
        let ix = Catalog::open(&dir.path().join("i.redb")).unwrap();
        let bm = BucketMeta::new("o", "r");
        ix.create_bucket("b", &bm).unwrap();
        (dir, ix)
    }

    fn put(b: &str, k: &str, e: &str) -> OutboxOp {
        OutboxOp::Put {
            bucket: b.into(),
            key: k.into(),
            etag: e.into(),
        }
    }

    #[test]
    fn sequence_numbers_are_never_reused() {
        let (_d, ix) = index();
        let (_, s1) = ix
            .put_object(
                "b",
                "x",
                &meta("e1", SyncState::Pending),
                &Precondition::None,
                true,
            )
            .unwrap();
        let s1 = s1.unwrap();
        ix.finish_entry(s1, &put("b", "x", "e1")).unwrap();
        let (_, s2) = ix
            .put_object(
                "b",
                "y",
                &meta("e2", SyncState::Pending),
                &Precondition::None,
                true,
            )
            .unwrap();
        let s2 = s2.unwrap();
        assert!(s2 > s1);
        // A caller still holding the old number cannot remove the new entry.
        ix.finish_entry(s1, &put("b", "x", "e1")).unwrap();
        assert_eq!(ix.outbox_batch(10).unwrap().len(), 1);
        assert_eq!(ix.object("b", "y").unwrap().sync, SyncState::Pending);
    }

    #[test]
    fn a_newer_write_supersedes_a_queued_tombstone() {
        let (_d, ix) = index();
        ix.put_object(
            "b",
            "k",
            &meta("e1", SyncState::Synced),
            &Precondition::None,
            false,
        )
        .unwrap();
        let (_, tomb) = ix.delete_object("b", "k", Some(1)).unwrap();
        let tomb = tomb.unwrap();
        let (_, newer) = ix
            .put_object(
                "b",
                "k",
                &meta("e2", SyncState::Pending),
                &Precondition::None,
                true,
            )
            .unwrap();
        assert!(
            !ix.entry_is_current("b", "k", tomb).unwrap(),
            "the tombstone must not act any more"
        );
        assert!(ix.entry_is_current("b", "k", newer.unwrap()).unwrap());
        assert_eq!(ix.outbox_batch(10).unwrap().len(), 1);
    }

    #[test]
    fn fills_and_revalidation_deletes_respect_queued_work() {
        let (_d, ix) = index();
        // A queued delete: a fill may not bring the key back.
        ix.put_object(
            "b",
            "gone",
            &meta("e1", SyncState::Synced),
            &Precondition::None,
            false,
        )
        .unwrap();
        ix.delete_object("b", "gone", Some(1)).unwrap();
        assert!(
            !ix.commit_fill("b", "gone", &meta("e1", SyncState::Synced))
                .unwrap()
        );
        // A pending local write: revalidation may not delete it.
        ix.put_object(
            "b",
            "new",
            &meta("e2", SyncState::Pending),
            &Precondition::None,
            true,
        )
        .unwrap();
        assert!(ix.delete_if_synced("b", "new", "e2").unwrap().is_none());
        // A synced copy of that version: it may.
        ix.put_object(
            "b",
            "old",
            &meta("e3", SyncState::Synced),
            &Precondition::None,
            false,
        )
        .unwrap();
        assert!(ix.delete_if_synced("b", "old", "other").unwrap().is_none());
        assert!(ix.delete_if_synced("b", "old", "e3").unwrap().is_some());
        // An absent key with nothing queued: the fill lands.
        assert!(
            ix.commit_fill("b", "fresh", &meta("e4", SyncState::Synced))
                .unwrap()
        );
    }

    #[test]
    fn a_strict_commit_clears_queued_work_for_the_key() {
        let (_d, ix) = index();
        ix.put_object(
            "b",
            "k",
            &meta("e1", SyncState::Synced),
            &Precondition::None,
            false,
        )
        .unwrap();
        ix.delete_object("b", "k", Some(1)).unwrap();
        ix.put_object(
            "b",
            "k",
            &meta("e2", SyncState::Synced),
            &Precondition::None,
            false,
        )
        .unwrap();
        assert!(
            ix.outbox_batch(10).unwrap().is_empty(),
            "the old tombstone would delete the new write"
        );
    }
}
