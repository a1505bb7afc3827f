//! Object counts and bytes per bucket and sync state, kept inside the transaction of every
//! change to `OBJECTS` (`objects.rs` calls `adjust`), so the status document and the metrics
//! read totals without scanning the index or the blob tree. A store from before this table is
//! counted once when it is opened (`rebuild`).

use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};
use serde::Serialize;

use super::error::StoreError;
use super::meta::{ObjectMeta, SyncState};
use super::schema::{COUNTERS, OBJECTS, USAGE, USAGE_BUILT, decode};

const STATES: [SyncState; 4] = [
    SyncState::LocalOnly,
    SyncState::Pending,
    SyncState::Synced,
    SyncState::Failed,
];

fn state_byte(s: SyncState) -> u8 {
    match s {
        SyncState::LocalOnly => 0,
        SyncState::Pending => 1,
        SyncState::Synced => 2,
        SyncState::Failed => 3,
    }
}

fn usage_key(bucket: &str, state: SyncState) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 2);
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.push(state_byte(state));
    k
}

fn decode_pair(v: &[u8]) -> (u64, u64) {
    let mut count = [0u8; 8];
    let mut bytes = [0u8; 8];
    if v.len() == 16 {
        count.copy_from_slice(&v[..8]);
        bytes.copy_from_slice(&v[8..]);
    }
    (u64::from_be_bytes(count), u64::from_be_bytes(bytes))
}

/// Counts and bytes of one group of objects, by sync state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByState {
    pub local_only: u64,
    pub pending: u64,
    pub synced: u64,
    pub failed: u64,
}

impl ByState {
    fn slot(&mut self, s: SyncState) -> &mut u64 {
        match s {
            SyncState::LocalOnly => &mut self.local_only,
            SyncState::Pending => &mut self.pending,
            SyncState::Synced => &mut self.synced,
            SyncState::Failed => &mut self.failed,
        }
    }

    pub fn get(&self, s: SyncState) -> u64 {
        match s {
            SyncState::LocalOnly => self.local_only,
            SyncState::Pending => self.pending,
            SyncState::Synced => self.synced,
            SyncState::Failed => self.failed,
        }
    }

    pub fn total(&self) -> u64 {
        self.local_only + self.pending + self.synced + self.failed
    }
}

/// Objects and their bytes, by sync state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub objects: ByState,
    pub bytes: ByState,
}

impl Usage {
    fn add(&mut self, state: SyncState, count: u64, bytes: u64) {
        *self.objects.slot(state) += count;
        *self.bytes.slot(state) += bytes;
    }

    pub fn states() -> [SyncState; 4] {
        STATES
    }
}

fn bump(
    txn: &WriteTransaction,
    bucket: &str,
    state: SyncState,
    count: i64,
    bytes: i64,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(USAGE)?;
    let k = usage_key(bucket, state);
    let (c, b) = match table.get(k.as_slice())? {
        Some(v) => decode_pair(v.value()),
        None => (0, 0),
    };
    let c = c.saturating_add_signed(count);
    let b = b.saturating_add_signed(bytes);
    if c == 0 {
        table.remove(k.as_slice())?;
    } else {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&c.to_be_bytes());
        v[8..].copy_from_slice(&b.to_be_bytes());
        table.insert(k.as_slice(), v.as_slice())?;
    }
    Ok(())
}

/// Moves one object's row from `old` to `new` in the totals (either may be absent).
pub fn adjust(
    txn: &WriteTransaction,
    bucket: &str,
    old: Option<&ObjectMeta>,
    new: Option<&ObjectMeta>,
) -> Result<(), StoreError> {
    if let (Some(o), Some(n)) = (old, new)
        && o.sync == n.sync
        && o.size == n.size
    {
        return Ok(());
    }
    if let Some(o) = old {
        bump(txn, bucket, o.sync, -1, -(o.size as i64))?;
    }
    if let Some(n) = new {
        bump(txn, bucket, n.sync, 1, n.size as i64)?;
    }
    Ok(())
}

/// Totals per bucket.
pub fn by_bucket(txn: &ReadTransaction) -> Result<BTreeMap<String, Usage>, StoreError> {
    let table = txn.open_table(USAGE)?;
    let mut out: BTreeMap<String, Usage> = BTreeMap::new();
    for entry in table.iter()? {
        let (k, v) = entry?;
        let k = k.value();
        let Some((&state, rest)) = k.split_last() else {
            continue;
        };
        let Some((_, bucket)) = rest.split_last() else {
            continue;
        };
        let Some(state) = STATES.into_iter().find(|s| state_byte(*s) == state) else {
            continue;
        };
        let (c, b) = decode_pair(v.value());
        out.entry(String::from_utf8_lossy(bucket).into_owned())
            .or_default()
            .add(state, c, b);
    }
    Ok(out)
}

/// Totals over every bucket.
pub fn total(txn: &ReadTransaction) -> Result<Usage, StoreError> {
    let mut sum = Usage::default();
    for u in by_bucket(txn)?.values() {
        for s in STATES {
            sum.add(s, u.objects.get(s), u.bytes.get(s));
        }
    }
    Ok(sum)
}

/// Counts every object once, for a store written before the usage table existed.
pub fn rebuild_if_needed(txn: &WriteTransaction) -> Result<bool, StoreError> {
    let mut counters = txn.open_table(COUNTERS)?;
    if counters.get(USAGE_BUILT)?.is_some() {
        return Ok(false);
    }
    let mut usage = txn.open_table(USAGE)?;
    usage.retain(|_, _| false)?;
    drop(usage);
    let objects = txn.open_table(OBJECTS)?;
    for entry in objects.iter()? {
        let (k, v) = entry?;
        let meta: ObjectMeta = decode(v.value())?;
        let k = k.value();
        let bucket_len = k.iter().position(|b| *b == 0).unwrap_or(k.len());
        let bucket = String::from_utf8_lossy(&k[..bucket_len]).into_owned();
        bump(txn, &bucket, meta.sync, 1, meta.size as i64)?;
    }
    counters.insert(USAGE_BUILT, 1)?;
    Ok(true)
}
