//! Counters of events an operator must be able to see (the admin API exports them; until then
//! they are also logged where they happen). Plain atomics: cheap on every path, no locking.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing event count.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Self(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upstream bodies whose length, ETag or checksum did not match what the upstream declared.
pub static UPSTREAM_INTEGRITY_ERRORS: Counter = Counter::new();
/// Outbox entries moved to the dead letters (refused for good by the upstream).
pub static DEAD_LETTERS: Counter = Counter::new();
/// Writes refused with `507 InsufficientStorage` (the disk or `storage.min_free_bytes`).
pub static INSUFFICIENT_STORAGE: Counter = Counter::new();
