//! The cache budget in gateway mode (issue 12, item 1; README, "Cache budget and pinning").
//! When the objects on local disk add up to more than `storage.max_bytes` (the catalog's
//! running totals, never a scan), or the disk has less than `storage.min_free_bytes` free, a
//! background task evicts the least recently read objects that are `synced` down to
//! `storage.evict_to`. It never evicts a `pending`, `local-only` or `failed` object (the scan
//! offers only synced ones), nor one under a pinned prefix, nor one being read, and each
//! eviction is `Store::delete_if_synced`: it removes the copy only if it is still that synced
//! version with nothing queued, so a write racing the eviction always wins. An evicted object
//! is fetched again on its next read (`read.rs`, a miss) and is still listed: gateway listings
//! come from the upstream.
//!
//! The task wakes after every write and cache fill (`cache_kick`) and on a slow tick. While
//! under budget a wake-up is two small reads (the totals and `statvfs`). Over budget, it scans
//! the catalog once for the `EVICT_CANDIDATES` least recently used copies and works through
//! them over later wake-ups before it scans again.
//!
//! Writes are checked before their body is read (`check_room`): when what cannot be evicted
//! already fills the budget, or the disk, they get `507 InsufficientStorage` with the reason,
//! and reads go on.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

use super::Gateway;
use crate::error::{S3Error, S3Result};
use crate::limits::{
    ACCESS_FLUSH_EVERY, ACCESS_FLUSH_READS, EVICT_CANDIDATES, EVICT_TICK, WORKER_STOP_WAIT,
};
use crate::store::{Candidate, StoreError, Usage};
use crate::time::now_ms;

/// `storage.max_bytes`, `storage.evict_to` and `storage.min_free_bytes`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_bytes: u64,
    pub evict_to: u64,
    pub min_free_bytes: u64,
}

impl Budget {
    /// How many bytes of synced copies to evict: down to `evict_to` when the total is over
    /// `max_bytes`, and (with the same margin) up to `min_free_bytes` free when the disk is
    /// short of it; 0 when neither.
    pub fn bytes_to_free(&self, total: u64, free: Option<u64>) -> u64 {
        let margin = self.max_bytes.saturating_sub(self.evict_to);
        let over = if total > self.max_bytes {
            total - self.evict_to
        } else {
            0
        };
        let short = match free {
            Some(f) if f < self.min_free_bytes => self.min_free_bytes - f + margin,
            _ => 0,
        };
        over.max(short)
    }

    /// Why a write of `incoming` bytes must be refused for the budget, if it must: what
    /// cannot be evicted (objects not on the upstream yet) would fill it, or the last eviction
    /// found nothing more to evict (`stuck`: pinned or busy) and the write would not fit.
    pub fn refusal(&self, usage: &Usage, stuck: bool, incoming: u64) -> Option<String> {
        let b = &usage.bytes;
        let unsynced = b.total().saturating_sub(b.synced);
        let max = self.max_bytes;
        if unsynced.saturating_add(incoming) > max {
            return Some(format!(
                "The cache budget (storage.max_bytes = {max} bytes) is full of objects that are \
                 not on the upstream yet ({} bytes pending, {} local-only, {} failed), which \
                 cannot be evicted until they are replicated; this write of {incoming} bytes \
                 does not fit. Reads still work.",
                b.pending, b.local_only, b.failed
            ));
        }
        if stuck && b.total().saturating_add(incoming) > max {
            return Some(format!(
                "The cache budget (storage.max_bytes = {max} bytes) is full and nothing more can \
                 be evicted: the rest is pinned, being read, or not on the upstream yet. Reads \
                 still work."
            ));
        }
        None
    }
}

/// A write refused for lack of room, remembered for the status document.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub reason: String,
    pub at_ms: i64,
    unsynced: u64,
    total: u64,
    free: Option<u64>,
}

impl Refusal {
    fn new(reason: String, usage: &Usage, free: Option<u64>) -> Self {
        let b = &usage.bytes;
        Self {
            reason,
            at_ms: now_ms(),
            unsynced: b.total().saturating_sub(b.synced),
            total: b.total(),
            free,
        }
    }

    /// Whether nothing was freed since: no object replicated or deleted, nothing evicted, no
    /// disk space released. A write admitted clears the refusal too.
    pub fn still_holds(&self, usage: &Usage, free: Option<u64>) -> bool {
        let b = &usage.bytes;
        let unsynced = b.total().saturating_sub(b.synced);
        unsynced >= self.unsynced
            && b.total() >= self.total
            && match (free, self.free) {
                (Some(now), Some(then)) => now <= then,
                _ => true,
            }
    }
}

/// The last catalog scan for eviction candidates, for the status document.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scan {
    pub at_ms: i64,
    pub candidates: usize,
    pub elapsed_ms: u64,
}

/// The eviction task's state, shared with the request path.
pub struct Cache {
    pub budget: Budget,
    wake: Notify,
    evicted_objects: AtomicU64,
    evicted_bytes: AtomicU64,
    /// The last pass was over budget and found nothing more it could evict.
    stuck: AtomicBool,
    refused: Mutex<Option<Refusal>>,
    /// What the last scan found and no pass has evicted yet, least recently used first.
    candidates: Mutex<VecDeque<Candidate>>,
    last_scan: Mutex<Option<Scan>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What the status document and the metrics say about the cache.
pub struct CacheReport {
    pub full: Option<String>,
    pub evicted_objects: u64,
    pub evicted_bytes: u64,
    pub last_refusal_ms: Option<i64>,
    pub last_scan: Option<Scan>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    pub fn new(budget: Budget) -> Self {
        Self {
            budget,
            wake: Notify::new(),
            evicted_objects: AtomicU64::new(0),
            evicted_bytes: AtomicU64::new(0),
            stuck: AtomicBool::new(false),
            refused: Mutex::new(None),
            candidates: Mutex::new(VecDeque::new()),
            last_scan: Mutex::new(None),
            task: Mutex::new(None),
        }
    }

    /// Whether writes are refused now, and why: a refusal nothing has been freed since, or
    /// over budget with nothing left to evict.
    pub fn report(&self, usage: &Usage, free: Option<u64>) -> CacheReport {
        let refused = lock(&self.refused).clone();
        let mut full = refused
            .as_ref()
            .filter(|r| r.still_holds(usage, free))
            .map(|r| r.reason.clone());
        if full.is_none()
            && self.stuck.load(Ordering::Relaxed)
            && usage.bytes.total() > self.budget.max_bytes
        {
            full = self.budget.refusal(usage, true, 1);
        }
        CacheReport {
            full,
            evicted_objects: self.evicted_objects.load(Ordering::Relaxed),
            evicted_bytes: self.evicted_bytes.load(Ordering::Relaxed),
            last_refusal_ms: refused.map(|r| r.at_ms),
            last_scan: *lock(&self.last_scan),
        }
    }
}

impl Gateway {
    /// Wakes the eviction task (after a write, a fill, a replay).
    pub fn cache_kick(&self) {
        self.cache.wake.notify_one();
    }

    /// Records a read served from local disk (in memory; persisted in batches).
    pub fn cache_read(&self, bucket: &str, key: &str) {
        if self.store.touch(bucket, key, now_ms()) >= ACCESS_FLUSH_READS {
            self.cache_kick();
        }
    }

    /// Checks, before its body is read, that a write of `incoming` bytes fits in the budget
    /// and on the disk: else `507 InsufficientStorage` saying why. A disk short of space
    /// wakes the eviction task, which frees synced copies.
    pub async fn check_room(&self, incoming: u64) -> S3Result<()> {
        let usage = self.store.usage().await?;
        let stuck = self.cache.stuck.load(Ordering::Relaxed);
        if let Some(reason) = self.cache.budget.refusal(&usage, stuck, incoming) {
            let free = self.store.free_bytes().await.ok();
            *lock(&self.cache.refused) = Some(Refusal::new(reason.clone(), &usage, free));
            self.cache_kick();
            return Err(S3Error::cache_full(reason));
        }
        let min_free = self.cache.budget.min_free_bytes;
        if let Err(e) = self.store.check_space(incoming, min_free).await {
            if let StoreError::NoSpace(detail) = &e {
                let free = self.store.free_bytes().await.ok();
                let reason = format!(
                    "The gateway's disk is short of space ({detail}); synced copies are being \
                     evicted to make room. Reads still work."
                );
                *lock(&self.cache.refused) = Some(Refusal::new(reason, &usage, free));
                self.cache_kick();
            }
            return Err(e.into());
        }
        *lock(&self.cache.refused) = None;
        if usage.bytes.total().saturating_add(incoming) > self.cache.budget.max_bytes {
            self.cache_kick();
        }
        Ok(())
    }

    /// Starts the eviction task; `stop` ends it (persisting the read times first).
    pub fn spawn_evictor(self: &Arc<Self>) {
        let gw = Arc::clone(self);
        let mut stop = self.stopping.subscribe();
        let handle = tokio::spawn(async move {
            let mut flushed = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::timeout(EVICT_TICK, gw.cache.wake.notified()) => {}
                    () = super::worker::stopped(&mut stop) => break,
                }
                if flushed.elapsed() >= ACCESS_FLUSH_EVERY
                    || gw.store.unpersisted_reads() >= ACCESS_FLUSH_READS
                {
                    gw.persist_reads().await;
                    flushed = Instant::now();
                }
                if let Err(e) = gw.evict_pass().await {
                    tracing::error!(error = %e, "eviction pass failed");
                }
            }
            gw.persist_reads().await;
        });
        *lock(&self.cache.task) = Some(handle);
    }

    /// Waits for the eviction task to end (after `stopping` was set).
    pub async fn stop_evictor(&self) {
        let task = lock(&self.cache.task).take();
        if let Some(t) = task {
            let _ = tokio::time::timeout(WORKER_STOP_WAIT, t).await;
        }
    }

    async fn persist_reads(&self) {
        if let Err(e) = self.store.persist_access().await {
            tracing::warn!(error = %e, "cannot persist read times; kept for the next attempt");
        }
    }

    /// One look at the budget, evicting when it is over. At most one catalog scan.
    async fn evict_pass(&self) -> Result<(), StoreError> {
        let usage = self.store.usage().await?;
        let free = self.store.free_bytes().await.ok();
        let need = self.cache.budget.bytes_to_free(usage.bytes.total(), free);
        if need == 0 {
            self.cache.stuck.store(false, Ordering::Relaxed);
            return Ok(());
        }
        let pins = self.store.pins().await?;
        let (mut freed, mut evicted) = (0u64, 0u64);
        let (mut scanned, mut busy) = (false, false);
        while freed < need {
            let next = lock(&self.cache.candidates).pop_front();
            let Some(c) = next else {
                if scanned {
                    break;
                }
                self.persist_reads().await;
                let started = Instant::now();
                let found = self
                    .store
                    .eviction_candidates(pins.clone(), EVICT_CANDIDATES)
                    .await?;
                let scan = Scan {
                    at_ms: now_ms(),
                    candidates: found.len(),
                    elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                };
                tracing::debug!(
                    candidates = scan.candidates,
                    elapsed_ms = scan.elapsed_ms,
                    "scanned the catalog for eviction"
                );
                *lock(&self.cache.last_scan) = Some(scan);
                *lock(&self.cache.candidates) = found.into();
                scanned = true;
                continue;
            };
            // Checked again: a pin added, a read, or a download started since the scan.
            if pins.iter().any(|p| p.covers(&c.bucket, &c.key)) {
                continue;
            }
            if self
                .store
                .last_read(&c.bucket, &c.key)
                .await?
                .is_some_and(|t| t > c.last_access_ms)
            {
                continue; // read since: younger than the scan thought; the next scan sees it
            }
            if self.store.being_read(&c.blobs) {
                busy = true;
                continue;
            }
            if self
                .store
                .evict_if_synced(&c.bucket, &c.key, &c.etag)
                .await?
            {
                freed = freed.saturating_add(c.size);
                evicted += 1;
                self.cache.evicted_objects.fetch_add(1, Ordering::Relaxed);
                self.cache
                    .evicted_bytes
                    .fetch_add(c.size, Ordering::Relaxed);
                crate::metrics::evicted(c.size);
                tracing::debug!(bucket = %c.bucket, key = %c.key, bytes = c.size, "evicted");
            }
        }
        let stuck = freed < need && scanned && !busy;
        let was_stuck = self.cache.stuck.swap(stuck, Ordering::Relaxed);
        if evicted > 0 {
            tracing::info!(
                objects = evicted,
                bytes = freed,
                wanted = need,
                total = usage.bytes.total(),
                "evicted synced copies over the cache budget"
            );
        }
        if stuck && !was_stuck {
            tracing::warn!(
                total = usage.bytes.total() - freed,
                max_bytes = self.cache.budget.max_bytes,
                pending = usage.bytes.pending,
                "over the cache budget and nothing more can be evicted (pinned, or not on the upstream yet)"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ByState;

    fn usage(pending: u64, synced: u64) -> Usage {
        Usage {
            objects: ByState::default(),
            bytes: ByState {
                local_only: 0,
                pending,
                synced,
                failed: 0,
            },
        }
    }

    const B: Budget = Budget {
        max_bytes: 1000,
        evict_to: 500,
        min_free_bytes: 100,
    };

    #[test]
    fn eviction_goes_down_to_the_low_water_mark_or_up_to_the_free_space() {
        assert_eq!(
            B.bytes_to_free(1000, Some(10_000)),
            0,
            "at the budget: nothing"
        );
        assert_eq!(B.bytes_to_free(1001, Some(10_000)), 501);
        assert_eq!(
            B.bytes_to_free(300, Some(40)),
            60 + 500,
            "disk short: with the margin"
        );
        assert_eq!(
            B.bytes_to_free(1200, Some(40)),
            700,
            "the larger of the two"
        );
        assert_eq!(B.bytes_to_free(1200, None), 700, "free space unknown");
    }

    #[test]
    fn only_what_cannot_be_evicted_refuses_a_write() {
        // Synced copies fill the budget: they are evicted, the write is admitted.
        assert_eq!(B.refusal(&usage(0, 5000), false, 400), None);
        // Pending data and this write would not fit.
        let r = B.refusal(&usage(700, 0), false, 400);
        assert!(r.is_some_and(|r| r.contains("not on the upstream yet")));
        assert_eq!(
            B.refusal(&usage(600, 9000), false, 400),
            None,
            "fits exactly"
        );
        // Nothing left to evict (pins): refused only while the write would not fit.
        assert!(B.refusal(&usage(0, 900), true, 200).is_some());
        assert_eq!(B.refusal(&usage(0, 700), true, 200), None);
    }

    #[test]
    fn a_refusal_holds_until_something_is_freed() {
        let r = Refusal::new("full".into(), &usage(900, 100), Some(5000));
        assert!(r.still_holds(&usage(900, 100), Some(5000)));
        assert!(
            r.still_holds(&usage(900, 300), Some(4000)),
            "a fill frees nothing"
        );
        assert!(!r.still_holds(&usage(700, 300), Some(5000)), "replicated");
        assert!(!r.still_holds(&usage(900, 0), Some(5100)), "evicted");
    }
}
