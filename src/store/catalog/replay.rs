//! The catalog's outbox side: the queue the replay worker reads and settles, the pending work
//! that reads and listings must respect, and the dead letters (`lifeboat dead-letters`).

use redb::ReadTransaction;

use super::Catalog;
use crate::store::error::StoreError;
use crate::store::meta::SyncState;
use crate::store::objects;
use crate::store::outbox::{
    self, Attempts, DeadLetter, DeadLetterFilter, OutboxEntry, OutboxOp, OutboxStats,
};

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
    for (_, letter) in outbox::dead_letters(txn, &DeadLetterFilter::all())?
        .into_iter()
        .rev()
    {
        if letter.entry.op.bucket_key() == (bucket, key) && stands(txn, &letter.entry.op)? {
            out.push(letter.entry.op);
        }
    }
    Ok(out)
}

/// What retrying dead letters did: how many went back into the outbox, and how many were
/// dropped because a later write or delete of the key speaks for it now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retried {
    pub queued: usize,
    pub moot: usize,
}

impl Catalog {
    pub fn outbox_batch(&self, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        self.read(|txn| outbox::batch(txn, limit))
    }

    pub fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.read(outbox::stats)
    }

    /// The key's local change the upstream does not have: its queued entry, else a dead
    /// letter that still speaks for the key (a write refused for good whose version is still
    /// the local one, or a refused delete of a key still absent locally), so that a read never
    /// fetches back an object deleted here and a listing still shows a `failed` one.
    /// The write or delete of a key still queued for the upstream (dead letters aside).
    pub fn queued_op(&self, bucket: &str, key: &str) -> Result<Option<OutboxOp>, StoreError> {
        self.read(|txn| {
            Ok(outbox::pending_op(txn, bucket, key)?
                .filter(|op| matches!(op, OutboxOp::Put { .. } | OutboxOp::Delete { .. })))
        })
    }

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
            let under = DeadLetterFilter {
                bucket: Some(bucket.to_owned()),
                prefix: prefix.to_owned(),
                ids: None,
            };
            for (_, letter) in outbox::dead_letters(txn, &under)?.into_iter().rev() {
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

    /// Moves an entry the upstream refused for good to the dead letters, with the worker's
    /// attempts; the object (still at that version) reports `failed`.
    pub fn dead_letter(
        &self,
        seq: u64,
        op: &OutboxOp,
        reason: &str,
        attempts: Option<Attempts>,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            let (b, k) = op.bucket_key();
            let newest = outbox::newest(txn, b, k)? == Some(seq);
            let Some(entry) = outbox::take(txn, seq, op)? else {
                return Ok(());
            };
            outbox::record_dead_letter(txn, seq, &entry, reason, attempts)?;
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

    pub fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        self.read(|txn| outbox::dead_letters(txn, filter))
    }

    /// Queues the dead letters `filter` selects for replay again: each whose local state still
    /// stands (the version it names, or the key's absence for a delete) goes back into the
    /// outbox and its object reports `pending`; one made moot by a later write or delete is
    /// dropped.
    pub fn retry_dead_letters(
        &self,
        filter: &DeadLetterFilter,
        now_ms: i64,
    ) -> Result<Retried, StoreError> {
        self.write(|txn| {
            let mut done = Retried::default();
            for seq in outbox::selected_dead_letters(txn, filter)? {
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
                    done.moot += 1; // a later write or delete speaks for the key
                    continue;
                }
                if let (OutboxOp::Put { .. }, Some(mut meta)) = (&op, current) {
                    meta.sync = SyncState::Pending;
                    objects::replace(txn, &bucket, &key, &meta)?;
                }
                outbox::enqueue(txn, op, now_ms)?;
                done.queued += 1;
            }
            Ok(done)
        })
    }

    /// Forgets the dead letters `filter` selects; returns how many. Only the record goes: the
    /// local object stays as it is (a refused put's object keeps reporting `failed`) and
    /// nothing is sent upstream.
    pub fn drop_dead_letters(&self, filter: &DeadLetterFilter) -> Result<usize, StoreError> {
        self.write(|txn| {
            let mut n = 0;
            for seq in outbox::selected_dead_letters(txn, filter)? {
                if outbox::take_dead_letter(txn, seq)?.is_some() {
                    n += 1;
                }
            }
            Ok(n)
        })
    }
}
