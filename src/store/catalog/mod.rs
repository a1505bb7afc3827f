//! The catalog: the one redb database that holds every bucket, object, multipart upload, outbox
//! entry and dead letter. Each method is one transaction that composes the table modules
//! (`objects`, `outbox`, `uploads`, peers that never call each other), so the rules that span
//! tables are written here once: "put the row, then enqueue or clear the key's outbox entry",
//! "a cache fill never hides queued work", "only the key's newest entry marks it synced".

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use redb::{Database, ReadTransaction, WriteTransaction};

use super::error::StoreError;
use super::meta::{
    BucketMeta, CompletedUpload, ObjectMeta, PartMeta, Precondition, SyncState, UploadMeta,
};
use super::objects::{self, ListPage, ListQuery};
use super::outbox::{self, DeadLetter, OutboxEntry, OutboxOp, OutboxStats};
use super::usage::{self, Usage};
use super::{schema, uploads};

pub struct Catalog {
    path: PathBuf,
    /// `None` only while it is being re-opened.
    db: RwLock<Option<Database>>,
}

/// What completing an upload replaced and left over: blobs to remove after the commit.
pub struct Completed {
    pub replaced: Option<ObjectMeta>,
    pub unused_parts: Vec<PartMeta>,
    pub seq: Option<u64>,
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

/// Whether a dead letter's local state still stands: the version it names is the local one, or,
/// for a delete or a revert, the key is still absent locally.
fn stands(txn: &ReadTransaction, op: &OutboxOp) -> Result<bool, StoreError> {
    let (bucket, key) = op.bucket_key();
    let current = match objects::object(txn, bucket, key) {
        Ok(m) => Some(m),
        Err(StoreError::NoSuchKey | StoreError::NoSuchBucket) => None,
        Err(e) => return Err(e),
    };
    Ok(match (op, current) {
        (OutboxOp::Put { etag, .. }, Some(m)) => m.etag == *etag,
        (OutboxOp::Delete { .. } | OutboxOp::Revert { .. }, None) => true,
        _ => false,
    })
}

/// The dead letters of one key whose local state still stands, newest first.
fn standing_dead_letters(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
) -> Result<Vec<OutboxOp>, StoreError> {
    let mut out = Vec::new();
    for (_, letter) in outbox::dead_letters(txn)?.into_iter().rev() {
        if letter.entry.op.bucket_key() == (bucket, key) && stands(txn, &letter.entry.op)? {
            out.push(letter.entry.op);
        }
    }
    Ok(out)
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

    pub fn referenced_blobs(&self) -> Result<HashSet<String>, StoreError> {
        self.read(|txn| {
            let mut set = HashSet::new();
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
    /// the key (a revalidation found the upstream changed or deleted it).
    pub fn delete_if_synced(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<ObjectMeta>, StoreError> {
        self.write(|txn| {
            if outbox::newest(txn, bucket, key)?.is_some() {
                return Ok(None);
            }
            match objects::current(txn, bucket, key)? {
                Some(m) if m.etag == etag && m.sync == SyncState::Synced => {
                    objects::remove(txn, bucket, key)?;
                    Ok(Some(m))
                }
                _ => Ok(None),
            }
        })
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

    pub fn outbox_batch(&self, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        self.read(|txn| outbox::batch(txn, limit))
    }

    pub fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.read(outbox::stats)
    }

    pub fn record_completed(&self, id: &str, done: &CompletedUpload) -> Result<(), StoreError> {
        self.write(|txn| uploads::record_completed(txn, id, done))
    }

    pub fn completed_upload(&self, id: &str) -> Result<Option<CompletedUpload>, StoreError> {
        self.read(|txn| uploads::completed(txn, id))
    }

    pub fn forget_completed_before(&self, cutoff_ms: i64) -> Result<usize, StoreError> {
        self.write(|txn| uploads::forget_completed_before(txn, cutoff_ms))
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

    /// The key's local change the upstream does not have: its queued entry, else a dead
    /// letter that still speaks for the key (a write refused for good whose version is still
    /// the local one, or a refused delete of a key still absent locally), so that a read never
    /// fetches back an object deleted here and a listing still shows a `failed` one.
    pub fn pending_op(&self, bucket: &str, key: &str) -> Result<Option<OutboxOp>, StoreError> {
        self.read(|txn| {
            let queued = outbox::pending_op(txn, bucket, key)?;
            if matches!(queued, Some(OutboxOp::Put { .. } | OutboxOp::Delete { .. })) {
                return Ok(queued);
            }
            // A refused delete outranks a revert: the object must not come back.
            let dead = standing_dead_letters(txn, bucket, key)?;
            let delete = dead.iter().find(|op| matches!(op, OutboxOp::Delete { .. }));
            Ok(delete
                .cloned()
                .or(queued)
                .or_else(|| dead.into_iter().next()))
        })
    }

    /// Every local change under a bucket's key prefix the upstream does not have (queued
    /// entries, and dead letters that still speak for their keys), for merged listings.
    pub fn pending_under(&self, bucket: &str, prefix: &str) -> Result<Vec<OutboxOp>, StoreError> {
        self.read(|txn| {
            let ops = outbox::pending_under(txn, bucket, prefix)?;
            let mut by_key: std::collections::BTreeMap<String, OutboxOp> = ops
                .into_iter()
                .map(|op| (op.bucket_key().1.to_owned(), op))
                .collect();
            for (_, letter) in outbox::dead_letters(txn)?.into_iter().rev() {
                let op = letter.entry.op;
                let (b, k) = op.bucket_key();
                if b != bucket || !k.starts_with(prefix) || !stands(txn, &op)? {
                    continue;
                }
                // A queued put or delete speaks for the key; else a refused delete wins.
                let keep = match by_key.get(k) {
                    None => true,
                    Some(OutboxOp::Revert { .. }) => matches!(op, OutboxOp::Delete { .. }),
                    Some(_) => false,
                };
                if keep {
                    by_key.insert(k.to_owned(), op);
                }
            }
            Ok(by_key.into_values().collect())
        })
    }

    pub fn entry_is_current(&self, bucket: &str, key: &str, seq: u64) -> Result<bool, StoreError> {
        self.read(|txn| outbox::is_current(txn, bucket, key, seq))
    }

    /// Queues whatever makes the upstream match the local state of a key: its current version,
    /// or, when it has none, undoing the failed write whose ETag is `failed_etag`. Returns
    /// whether anything was queued.
    pub fn enqueue_reconcile(
        &self,
        bucket: &str,
        key: &str,
        failed_etag: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            let (b, k) = (bucket.to_owned(), key.to_owned());
            let op = match (objects::current(txn, bucket, key)?, failed_etag) {
                (Some(meta), _) => OutboxOp::Put {
                    bucket: b,
                    key: k,
                    etag: meta.etag,
                },
                (None, Some(etag)) => OutboxOp::Revert {
                    bucket: b,
                    key: k,
                    etag: etag.to_owned(),
                },
                (None, None) => return Ok(false),
            };
            outbox::enqueue(txn, op, now_ms)?;
            Ok(true)
        })
    }

    /// Records a replayed entry. Only the key's newest entry may declare the object synced: an
    /// older one was superseded by a write (even of the same bytes) still waiting.
    pub fn finish_entry(&self, seq: u64, op: &OutboxOp) -> Result<(), StoreError> {
        self.write(|txn| {
            let (bucket, key) = op.bucket_key();
            let was_current = outbox::newest(txn, bucket, key)? == Some(seq);
            let Some(entry) = outbox::take(txn, seq, op)? else {
                return Ok(());
            };
            if !was_current {
                return Ok(());
            }
            if let OutboxOp::Put { etag, .. } = &entry.op
                && let Some(mut meta) = objects::current(txn, bucket, key)?
                && meta.etag == *etag
            {
                meta.sync = SyncState::Synced;
                objects::replace(txn, bucket, key, &meta)?;
            }
            Ok(())
        })
    }

    /// Moves an entry the upstream refused for good to the dead letters; the object (still at
    /// that version) reports `failed`.
    pub fn dead_letter(&self, seq: u64, op: &OutboxOp, reason: &str) -> Result<(), StoreError> {
        self.write(|txn| {
            let (b, k) = op.bucket_key();
            let newest = outbox::newest(txn, b, k)? == Some(seq);
            let Some(entry) = outbox::take(txn, seq, op)? else {
                return Ok(());
            };
            outbox::record_dead_letter(txn, seq, &entry, reason)?;
            // Only while no newer write of the key is queued (it speaks for the key).
            if newest
                && let OutboxOp::Put { bucket, key, etag } = op
                && let Some(mut meta) = objects::current(txn, bucket, key)?
                && meta.etag == *etag
            {
                meta.sync = SyncState::Failed;
                objects::replace(txn, bucket, key, &meta)?;
            }
            Ok(())
        })
    }

    pub fn dead_letters(&self) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        self.read(outbox::dead_letters)
    }

    /// Queues dead letters for replay again (all, or those numbered `only`): each whose local
    /// state still stands (the version it names, or the key's absence for a delete) goes back
    /// into the outbox; one made moot by a later write is dropped. Returns how many were queued.
    pub fn retry_dead_letters(
        &self,
        only: Option<&[u64]>,
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        self.write(|txn| {
            let mut queued = 0;
            let seqs: Vec<u64> = match only {
                Some(s) => s.to_vec(),
                None => outbox::dead_letter_seqs(txn)?,
            };
            for seq in seqs {
                let Some(letter) = outbox::take_dead_letter(txn, seq)? else {
                    continue;
                };
                let op = letter.entry.op;
                let (bucket, key) = op.bucket_key();
                let (bucket, key) = (bucket.to_owned(), key.to_owned());
                let current = objects::current(txn, &bucket, &key)?;
                let stands = match (&op, &current) {
                    (OutboxOp::Put { etag, .. }, Some(m)) => m.etag == *etag,
                    (OutboxOp::Delete { .. } | OutboxOp::Revert { .. }, None) => true,
                    _ => false,
                };
                if !stands || outbox::newest(txn, &bucket, &key)?.is_some() {
                    continue; // a later write or delete speaks for the key
                }
                if let (OutboxOp::Put { .. }, Some(mut meta)) = (&op, current) {
                    meta.sync = SyncState::Pending;
                    objects::replace(txn, &bucket, &key, &meta)?;
                }
                outbox::enqueue(txn, op, now_ms)?;
                queued += 1;
            }
            Ok(queued)
        })
    }

    /// Forgets dead letters (all, or those numbered `only`); returns how many.
    pub fn drop_dead_letters(&self, only: Option<&[u64]>) -> Result<usize, StoreError> {
        self.write(|txn| {
            let seqs = match only {
                Some(s) => s.to_vec(),
                None => outbox::dead_letter_seqs(txn)?,
            };
            let mut n = 0;
            for seq in seqs {
                if outbox::take_dead_letter(txn, seq)?.is_some() {
                    n += 1;
                }
            }
            Ok(n)
        })
    }

    pub fn create_upload(&self, id: &str, meta: &UploadMeta) -> Result<(), StoreError> {
        self.write(|txn| {
            objects::require_bucket(txn, &meta.bucket)?;
            uploads::create(txn, id, meta)
        })
    }

    pub fn upload(&self, id: &str) -> Result<UploadMeta, StoreError> {
        self.read(|txn| uploads::get(txn, id))
    }

    pub fn put_part(
        &self,
        id: &str,
        n: u16,
        part: &PartMeta,
    ) -> Result<Option<PartMeta>, StoreError> {
        self.write(|txn| uploads::put_part(txn, id, n, part))
    }

    pub fn parts(&self, id: &str) -> Result<Vec<(u16, PartMeta)>, StoreError> {
        self.read(|txn| uploads::parts(txn, id))
    }

    pub fn uploads(&self) -> Result<Vec<(String, UploadMeta)>, StoreError> {
        self.read(uploads::list)
    }

    pub fn abort_upload(&self, id: &str) -> Result<Vec<PartMeta>, StoreError> {
        self.write(|txn| uploads::remove(txn, id))
    }

    /// Makes the upload's parts the object's segments and forgets the upload, in one
    /// transaction, with the same precondition and outbox rules as `put_object`.
    pub fn complete_upload(
        &self,
        id: &str,
        meta: &ObjectMeta,
        precondition: &Precondition,
        replicate: bool,
    ) -> Result<Completed, StoreError> {
        self.write(|txn| {
            let upload = uploads::get_for_update(txn, id)?;
            // A part re-uploaded since Complete read the parts replaced (and removed) the blob
            // chosen: the object would point at nothing. Checked inside the commit.
            let current = uploads::part_blobs(txn, id)?;
            if meta.blobs().any(|b| !current.contains(b)) {
                return Err(StoreError::PartChanged);
            }
            let (replaced, seq) = put_and_queue(
                txn,
                &upload.bucket,
                &upload.key,
                meta,
                precondition,
                replicate,
            )?;
            let unused_parts = uploads::remove(txn, id)?
                .into_iter()
                .filter(|p| !meta.blobs().any(|b| b == p.blob))
                .collect();
            Ok(Completed {
                replaced,
                unused_parts,
                seq,
            })
        })
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
