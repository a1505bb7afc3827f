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
}

impl OutboxOp {
    pub fn bucket_key(&self) -> (&str, &str) {
        match self {
            OutboxOp::Put { bucket, key, .. } | OutboxOp::Delete { bucket, key } => (bucket, key),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    let seq = outbox.last()?.map_or(1, |(k, _)| k.value() + 1);
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
    /// or a tombstone when it has none.
    fn enqueue_reconcile(&self, bucket: &str, key: &str, now_ms: i64) -> Result<u64, StoreError> {
        let txn = self.db.begin_write()?;
        let current: Option<ObjectMeta> = txn
            .open_table(super::index::OBJECTS)?
            .get(object_key(bucket, key).as_slice())?
            .map(|v| decode(v.value()))
            .transpose()?;
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let op = match current {
            Some(meta) => OutboxOp::Put {
                bucket,
                key,
                etag: meta.etag,
            },
            None => OutboxOp::Delete { bucket, key },
        };
        let seq = enqueue_in(&txn, op, now_ms)?;
        txn.commit()?;
        Ok(seq)
    }

    /// Removes a replayed entry; for a put, marks the object synced if it is still that version.
    fn finish_entry(&self, seq: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut outbox = txn.open_table(OUTBOX)?;
            let Some(entry) = outbox
                .remove(seq)?
                .map(|v| decode::<OutboxEntry>(v.value()))
                .transpose()?
            else {
                return Ok(());
            };
            let (bucket, key) = entry.op.bucket_key();
            let k = object_key(bucket, key);
            let mut keys = txn.open_table(OUTBOX_KEYS)?;
            if keys.get(k.as_slice())?.map(|v| v.value()) == Some(seq) {
                keys.remove(k.as_slice())?;
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
        now_ms: i64,
    ) -> Result<u64, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |ix| ix.enqueue_reconcile(&b, &k, now_ms))
            .await
    }

    pub async fn finish_entry(&self, seq: u64) -> Result<(), StoreError> {
        self.blocking(move |ix| ix.finish_entry(seq)).await
    }
}
