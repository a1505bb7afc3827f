//! The outbox: a durable queue of writes and deletes still to replay to the upstream, kept in the
//! same redb database as the metadata so that an object and its outbox entry commit together.
//!
//! Entries are keyed by a sequence number (replay order). A second table maps each key to its
//! newest entry, so a newer write supersedes a queued older one in the same transaction.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::index::{Index, decode, encode, object_key};
use super::{ObjectMeta, Store, StoreError, SyncState};

pub(super) const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
pub(super) const OUTBOX_KEYS: TableDefinition<&[u8], u64> = TableDefinition::new("outbox_keys");
/// Counters; `outbox_seq` only grows, so a sequence number is never handed out twice.
pub(super) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// Entries the upstream refused for good (a 4xx other than 408/429), kept for the operator.
pub(super) const DEAD_LETTERS: TableDefinition<u64, &[u8]> = TableDefinition::new("dead_letters");

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum OutboxOp {
    /// Replicate this version (by ETag) of an object.
    Put {
        bucket: String,
        key: String,
        etag: String,
    },
    /// A tombstone: delete the object upstream.
    Delete { bucket: String, key: String },
    /// Undo a strict write whose outcome is unknown, for a key with no local version: delete
    /// the upstream object only if it is that write (its ETag), never data it did not write.
    Revert {
        bucket: String,
        key: String,
        etag: String,
    },
}

impl OutboxOp {
    pub fn bucket_key(&self) -> (&str, &str) {
        match self {
            OutboxOp::Put { bucket, key, .. }
            | OutboxOp::Delete { bucket, key }
            | OutboxOp::Revert { bucket, key, .. } => (bucket, key),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutboxEntry {
    pub op: OutboxOp,
    pub enqueued_ms: i64,
}

/// Adds an entry inside an open write transaction, superseding the key's older entry.
pub(super) fn enqueue_in(
    txn: &redb::WriteTransaction,
    op: OutboxOp,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut outbox = txn.open_table(OUTBOX)?;
    let mut keys = txn.open_table(OUTBOX_KEYS)?;
    let mut meta = txn.open_table(META)?;
    let seq = meta.get("outbox_seq")?.map_or(0, |v| v.value()) + 1;
    meta.insert("outbox_seq", seq)?;
    let (bucket, key) = op.bucket_key();
    let k = object_key(bucket, key);
    let older = keys.insert(k.as_slice(), seq)?.map(|v| v.value());
    if let Some(older) = older {
        outbox.remove(older)?;
    }
    outbox.insert(
        seq,
        encode(&OutboxEntry {
            op,
            enqueued_ms: now_ms,
        })?
        .as_slice(),
    )?;
    Ok(seq)
}

impl Index {
    fn outbox_batch(&self, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OUTBOX)?;
        let mut out = Vec::new();
        for entry in table.iter()?.take(limit) {
            let (k, v) = entry?;
            out.push((k.value(), decode(v.value())?));
        }
        Ok(out)
    }

    fn outbox_stats(&self) -> Result<(u64, Option<i64>), StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OUTBOX)?;
        let depth = table.len()?;
        let oldest = match table.first()? {
            Some((_, v)) => Some(decode::<OutboxEntry>(v.value())?.enqueued_ms),
            None => None,
        };
        Ok((depth, oldest))
    }

    /// The pending entry for a key, if any.
    fn pending_op(&self, bucket: &str, key: &str) -> Result<Option<OutboxOp>, StoreError> {
        let txn = self.db.begin_read()?;
        let keys = txn.open_table(OUTBOX_KEYS)?;
        let Some(seq) = keys
            .get(object_key(bucket, key).as_slice())?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let outbox = txn.open_table(OUTBOX)?;
        Ok(match outbox.get(seq)? {
            Some(v) => Some(decode::<OutboxEntry>(v.value())?.op),
            None => None,
        })
    }

    /// Every pending entry under a bucket's key prefix (for merged listings).
    fn pending_under(&self, bucket: &str, prefix: &str) -> Result<Vec<OutboxOp>, StoreError> {
        let txn = self.db.begin_read()?;
        let keys = txn.open_table(OUTBOX_KEYS)?;
        let outbox = txn.open_table(OUTBOX)?;
        let start = object_key(bucket, prefix);
        let mut end = object_key(bucket, prefix);
        end.push(0xFF);
        let mut out = Vec::new();
        for entry in keys.range::<&[u8]>(start.as_slice()..end.as_slice())? {
            let (_, seq) = entry?;
            if let Some(v) = outbox.get(seq.value())? {
                out.push(decode::<OutboxEntry>(v.value())?.op);
            }
        }
        Ok(out)
    }

    /// Queues whatever makes the upstream match the local state of a key: its current version,
    /// or, when it has none, undoing the failed write whose ETag is `failed_etag`. Returns
    /// whether anything was queued.
    fn enqueue_reconcile(
        &self,
        bucket: &str,
        key: &str,
        failed_etag: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin_write()?;
        let current: Option<ObjectMeta> = txn
            .open_table(super::index::OBJECTS)?
            .get(object_key(bucket, key).as_slice())?
            .map(|v| decode(v.value()))
            .transpose()?;
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let op = match (current, failed_etag) {
            (Some(meta), _) => OutboxOp::Put {
                bucket,
                key,
                etag: meta.etag,
            },
            (None, Some(etag)) => OutboxOp::Revert {
                bucket,
                key,
                etag: etag.to_owned(),
            },
            (None, None) => return Ok(false),
        };
        enqueue_in(&txn, op, now_ms)?;
        txn.commit()?;
        Ok(true)
    }

    /// Whether `seq` is still the newest queued entry of its key.
    fn entry_is_current(&self, bucket: &str, key: &str, seq: u64) -> Result<bool, StoreError> {
        let txn = self.db.begin_read()?;
        let keys = txn.open_table(OUTBOX_KEYS)?;
        Ok(keys
            .get(object_key(bucket, key).as_slice())?
            .map(|v| v.value())
            == Some(seq))
    }

    /// Moves an entry the upstream refused for good to the dead letters.
    fn dead_letter(&self, seq: u64, op: &OutboxOp, reason: &str) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let Some(entry) = take_entry(&txn, seq, op)? else {
                return Ok(());
            };
            let record = serde_json::json!({ "entry": entry, "reason": reason });
            txn.open_table(DEAD_LETTERS)?.insert(
                seq,
                serde_json::to_vec(&record)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
                    .as_slice(),
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    fn finish_entry(&self, seq: u64, op: &OutboxOp) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let (bucket, key) = op.bucket_key();
            let k = object_key(bucket, key);
            let was_current = txn
                .open_table(OUTBOX_KEYS)?
                .get(k.as_slice())?
                .map(|v| v.value())
                == Some(seq);
            let Some(entry) = take_entry(&txn, seq, op)? else {
                return Ok(());
            };
            // Only the key's newest entry may declare the object synced: an older one was
            // superseded by a write (even of the same bytes) still waiting.
            if !was_current {
                txn.commit()?;
                return Ok(());
            }
            if let OutboxOp::Put { etag, .. } = &entry.op {
                let mut objects = txn.open_table(super::index::OBJECTS)?;
                let current: Option<ObjectMeta> = objects
                    .get(k.as_slice())?
                    .map(|v| decode(v.value()))
                    .transpose()?;
                if let Some(mut meta) = current
                    && meta.etag == *etag
                {
                    meta.sync = SyncState::Synced;
                    objects.insert(k.as_slice(), encode(&meta)?.as_slice())?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }
}

/// Removes entry `seq` if it is still `op` (a sequence number never names two entries, but a
/// caller holding an old one must not remove anything else), and its key mapping.
fn take_entry(
    txn: &redb::WriteTransaction,
    seq: u64,
    op: &OutboxOp,
) -> Result<Option<OutboxEntry>, StoreError> {
    let mut outbox = txn.open_table(OUTBOX)?;
    let entry: Option<OutboxEntry> = outbox.get(seq)?.map(|v| decode(v.value())).transpose()?;
    let Some(entry) = entry.filter(|e| e.op == *op) else {
        return Ok(None);
    };
    outbox.remove(seq)?;
    let (bucket, key) = op.bucket_key();
    let k = object_key(bucket, key);
    let mut keys = txn.open_table(OUTBOX_KEYS)?;
    if keys.get(k.as_slice())?.map(|v| v.value()) == Some(seq) {
        keys.remove(k.as_slice())?;
    }
    Ok(Some(entry))
}

/// Drops a key's queued entry inside a write transaction (its state just reached the upstream
/// by another way, e.g. a strict write).
pub(super) fn clear_key_in(
    txn: &redb::WriteTransaction,
    bucket: &str,
    key: &str,
) -> Result<(), StoreError> {
    let k = object_key(bucket, key);
    let mut keys = txn.open_table(OUTBOX_KEYS)?;
    let seq = keys.remove(k.as_slice())?.map(|v| v.value());
    if let Some(seq) = seq {
        txn.open_table(OUTBOX)?.remove(seq)?;
    }
    Ok(())
}

/// Whether a key has a queued entry, inside a transaction.
pub(super) fn has_entry_in(
    txn: &redb::WriteTransaction,
    bucket: &str,
    key: &str,
) -> Result<bool, StoreError> {
    Ok(txn
        .open_table(OUTBOX_KEYS)?
        .get(object_key(bucket, key).as_slice())?
        .is_some())
}

/// Outbox depth and the age of its oldest entry.
#[derive(Debug, Clone, Copy)]
pub struct OutboxStats {
    pub depth: u64,
    pub oldest_enqueued_ms: Option<i64>,
}

impl Store {
    pub async fn outbox_batch(&self, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        self.blocking(move |ix| ix.outbox_batch(limit)).await
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        let (depth, oldest_enqueued_ms) = self.blocking(|ix| ix.outbox_stats()).await?;
        Ok(OutboxStats {
            depth,
            oldest_enqueued_ms,
        })
    }

    pub async fn pending_op(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<OutboxOp>, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |ix| ix.pending_op(&b, &k)).await
    }

    pub async fn pending_under(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<OutboxOp>, StoreError> {
        let (b, p) = (bucket.to_owned(), prefix.to_owned());
        self.blocking(move |ix| ix.pending_under(&b, &p)).await
    }

    pub async fn enqueue_reconcile(
        &self,
        bucket: &str,
        key: &str,
        failed_etag: Option<&str>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (b, k, e) = (
            bucket.to_owned(),
            key.to_owned(),
            failed_etag.map(str::to_owned),
        );
        self.blocking(move |ix| ix.enqueue_reconcile(&b, &k, e.as_deref(), now_ms))
            .await
    }

    pub async fn finish_entry(&self, seq: u64, op: &OutboxOp) -> Result<(), StoreError> {
        let op = op.clone();
        self.blocking(move |ix| ix.finish_entry(seq, &op)).await
    }

    pub async fn entry_is_current(
        &self,
        bucket: &str,
        key: &str,
        seq: u64,
    ) -> Result<bool, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |ix| ix.entry_is_current(&b, &k, seq))
            .await
    }

    pub async fn dead_letter(
        &self,
        seq: u64,
        op: &OutboxOp,
        reason: &str,
    ) -> Result<(), StoreError> {
        let (op, reason) = (op.clone(), reason.to_owned());
        self.blocking(move |ix| ix.dead_letter(seq, &op, &reason))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{BucketMeta, ContentHeaders, Precondition, Segment};

    fn meta(etag: &str, sync: SyncState) -> ObjectMeta {
        ObjectMeta {
            segments: vec![Segment {
                blob: format!("blob-{etag}"),
                size: 1,
                etag: etag.into(),
                checksum: None,
                sha256: None,
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

    fn index() -> (tempfile::TempDir, Index) {
        let dir = tempfile::tempdir().unwrap();
        let ix = Index::open(&dir.path().join("i.redb")).unwrap();
        let bm = BucketMeta {
            created_ms: 0,
            owner: "o".into(),
            region: "r".into(),
        };
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
