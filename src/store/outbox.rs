//! The outbox tables, inside a transaction the caller holds: a durable queue of writes and
//! deletes still to replay to the upstream, in the same redb database as the objects so that an
//! object and its entry commit together (docs/ARCHITECTURE.md, "The outbox").
//!
//! Entries are keyed by a sequence number (replay order). `OUTBOX_KEYS` maps each key to its
//! newest entry, so a newer write supersedes a queued older one in the same transaction.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::schema::{
    COUNTERS, DEAD_LETTERS, OUTBOX, OUTBOX_KEYS, OUTBOX_SEQ, decode, encode, object_key,
    prefix_range,
};

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
    /// Queued by a migration (`lifeboat sync`): the upstream may already hold this version
    /// (an earlier run, an earlier copy), so the replay asks before it uploads.
    #[serde(default)]
    pub migrate: bool,
}

/// Outbox depth and the age of its oldest entry.
#[derive(Debug, Clone, Copy)]
pub struct OutboxStats {
    pub depth: u64,
    pub oldest_enqueued_ms: Option<i64>,
    /// Entries the upstream refused for good, and when the oldest of them was queued.
    pub dead_letters: u64,
    pub oldest_dead_letter_ms: Option<i64>,
}

/// Adds an entry, superseding the key's older one. Returns its sequence number.
pub fn enqueue(txn: &WriteTransaction, op: OutboxOp, now_ms: i64) -> Result<u64, StoreError> {
    enqueue_entry(txn, op, now_ms, false)
}

/// As `enqueue`, for a migration's entry (`OutboxEntry::migrate`).
pub fn enqueue_migration(
    txn: &WriteTransaction,
    op: OutboxOp,
    now_ms: i64,
) -> Result<u64, StoreError> {
    enqueue_entry(txn, op, now_ms, true)
}

fn enqueue_entry(
    txn: &WriteTransaction,
    op: OutboxOp,
    now_ms: i64,
    migrate: bool,
) -> Result<u64, StoreError> {
    let mut outbox = txn.open_table(OUTBOX)?;
    let mut keys = txn.open_table(OUTBOX_KEYS)?;
    let mut counters = txn.open_table(COUNTERS)?;
    let seq = counters.get(OUTBOX_SEQ)?.map_or(0, |v| v.value()) + 1;
    counters.insert(OUTBOX_SEQ, seq)?;
    let (bucket, key) = op.bucket_key();
    let k = object_key(bucket, key);
    let older = keys.insert(k.as_slice(), seq)?.map(|v| v.value());
    if let Some(older) = older {
        outbox.remove(older)?;
    }
    let entry = OutboxEntry {
        op,
        enqueued_ms: now_ms,
        migrate,
    };
    outbox.insert(seq, encode(&entry)?.as_slice())?;
    Ok(seq)
}

/// Drops a key's queued entry (its state just reached the upstream by another way, e.g. a
/// strict write, or there is nothing left to replicate).
pub fn clear_key(txn: &WriteTransaction, bucket: &str, key: &str) -> Result<(), StoreError> {
    let k = object_key(bucket, key);
    let mut keys = txn.open_table(OUTBOX_KEYS)?;
    let seq = keys.remove(k.as_slice())?.map(|v| v.value());
    if let Some(seq) = seq {
        txn.open_table(OUTBOX)?.remove(seq)?;
    }
    Ok(())
}

/// The sequence number of the key's newest queued entry, as a write transaction sees it.
pub fn newest(txn: &WriteTransaction, bucket: &str, key: &str) -> Result<Option<u64>, StoreError> {
    let keys = txn.open_table(OUTBOX_KEYS)?;
    let seq = keys.get(object_key(bucket, key).as_slice())?;
    Ok(seq.map(|v| v.value()))
}

/// Removes entry `seq` if it is still `op` (a sequence number never names two entries, but a
/// caller holding an old one must not remove anything else), and its key mapping.
pub fn take(
    txn: &WriteTransaction,
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

/// An entry the upstream refused for good, kept with the reason, for the operator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeadLetter {
    pub entry: OutboxEntry,
    pub reason: String,
    /// The replay worker's tries of the entry since it was last queued, the refusal being the
    /// last; `None` and 0 in a record written before they were kept.
    #[serde(default)]
    pub first_attempt_ms: Option<i64>,
    #[serde(default)]
    pub last_attempt_ms: Option<i64>,
    #[serde(default)]
    pub attempts: u32,
}

/// How often, and when, the replay worker tried an entry before it was refused for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: u32,
}

/// Which dead letters an operator's command acts on: all of them, or those numbered `ids`,
/// narrowed to one bucket and a key prefix in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    pub ids: Option<Vec<u64>>,
    pub bucket: Option<String>,
    /// A key prefix ("" for every key).
    pub prefix: String,
}

impl DeadLetterFilter {
    /// Every dead letter.
    pub fn all() -> Self {
        Self::default()
    }

    pub fn matches(&self, seq: u64, op: &OutboxOp) -> bool {
        let (bucket, key) = op.bucket_key();
        self.ids.as_ref().is_none_or(|ids| ids.contains(&seq))
            && self.bucket.as_deref().is_none_or(|b| b == bucket)
            && key.starts_with(&self.prefix)
    }
}

/// Keeps an entry the upstream refused for good, with the reason and the worker's attempts.
pub fn record_dead_letter(
    txn: &WriteTransaction,
    seq: u64,
    entry: &OutboxEntry,
    reason: &str,
    attempts: Option<Attempts>,
) -> Result<(), StoreError> {
    let record = DeadLetter {
        entry: entry.clone(),
        reason: reason.to_owned(),
        first_attempt_ms: attempts.map(|a| a.first_ms),
        last_attempt_ms: attempts.map(|a| a.last_ms),
        attempts: attempts.map_or(0, |a| a.count),
    };
    txn.open_table(DEAD_LETTERS)?
        .insert(seq, encode(&record)?.as_slice())?;
    Ok(())
}

/// Every dead letter `filter` selects, by the sequence number it had in the outbox.
pub fn dead_letters(
    txn: &ReadTransaction,
    filter: &DeadLetterFilter,
) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
    let table = txn.open_table(DEAD_LETTERS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        let letter: DeadLetter = decode(v.value())?;
        if filter.matches(k.value(), &letter.entry.op) {
            out.push((k.value(), letter));
        }
    }
    Ok(out)
}

/// The sequence numbers of the dead letters `filter` selects, as a write transaction sees them.
pub fn selected_dead_letters(
    txn: &WriteTransaction,
    filter: &DeadLetterFilter,
) -> Result<Vec<u64>, StoreError> {
    let table = txn.open_table(DEAD_LETTERS)?;
    let mut out = Vec::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        let letter: DeadLetter = decode(v.value())?;
        if filter.matches(k.value(), &letter.entry.op) {
            out.push(k.value());
        }
    }
    Ok(out)
}

/// Removes a dead letter; returns it.
pub fn take_dead_letter(
    txn: &WriteTransaction,
    seq: u64,
) -> Result<Option<DeadLetter>, StoreError> {
    let mut table = txn.open_table(DEAD_LETTERS)?;
    let removed = table.remove(seq)?;
    removed.map(|v| decode(v.value())).transpose()
}

/// The first `limit` entries in replay order.
pub fn batch(txn: &ReadTransaction, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
    let table = txn.open_table(OUTBOX)?;
    let mut out = Vec::new();
    for entry in table.iter()?.take(limit) {
        let (k, v) = entry?;
        out.push((k.value(), decode(v.value())?));
    }
    Ok(out)
}

pub fn stats(txn: &ReadTransaction) -> Result<OutboxStats, StoreError> {
    let table = txn.open_table(OUTBOX)?;
    let depth = table.len()?;
    let oldest_enqueued_ms = match table.first()? {
        Some((_, v)) => Some(decode::<OutboxEntry>(v.value())?.enqueued_ms),
        None => None,
    };
    let dead = txn.open_table(DEAD_LETTERS)?;
    let oldest_dead_letter_ms = match dead.first()? {
        Some((_, v)) => Some(decode::<DeadLetter>(v.value())?.entry.enqueued_ms),
        None => None,
    };
    Ok(OutboxStats {
        depth,
        oldest_enqueued_ms,
        dead_letters: dead.len()?,
        oldest_dead_letter_ms,
    })
}

/// The pending entry for a key, if any.
pub fn pending_op(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
) -> Result<Option<OutboxOp>, StoreError> {
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

/// Every pending entry under a bucket's key prefix (for merged listings), in key order.
pub fn pending_under(
    txn: &ReadTransaction,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<OutboxOp>, StoreError> {
    let keys = txn.open_table(OUTBOX_KEYS)?;
    let outbox = txn.open_table(OUTBOX)?;
    let (start, end) = prefix_range(bucket, prefix);
    let mut out = Vec::new();
    for entry in keys.range::<&[u8]>(start.as_slice()..end.as_slice())? {
        let (_, seq) = entry?;
        if let Some(v) = outbox.get(seq.value())? {
            out.push(decode::<OutboxEntry>(v.value())?.op);
        }
    }
    Ok(out)
}

/// Whether `seq` is still the newest queued entry of its key.
pub fn is_current(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
    seq: u64,
) -> Result<bool, StoreError> {
    let keys = txn.open_table(OUTBOX_KEYS)?;
    let newest = keys.get(object_key(bucket, key).as_slice())?;
    Ok(newest.map(|v| v.value()) == Some(seq))
}
