//! The store's outbox side, for the replay worker, the gateway's reads and listings, and
//! `lifeboat dead-letters`: the async face of `catalog/replay.rs`.

use super::outbox::{Attempts, DeadLetter, DeadLetterFilter, OutboxEntry, OutboxOp, OutboxStats};
use super::{Retried, Store, StoreError};

impl Store {
    /// See `Catalog::queue_local_only`.
    pub async fn queue_local_only(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<String>,
        limit: usize,
        dry_run: bool,
    ) -> Result<super::catalog::MigrationPage, StoreError> {
        let (b, p) = (bucket.to_owned(), prefix.to_owned());
        let now = crate::time::now_ms();
        self.blocking(move |c| c.queue_local_only(&b, &p, after.as_deref(), limit, dry_run, now))
            .await
    }

    pub async fn outbox_batch(&self, limit: usize) -> Result<Vec<(u64, OutboxEntry)>, StoreError> {
        self.blocking(move |c| c.outbox_batch(limit)).await
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        self.blocking(|c| c.outbox_stats()).await
    }

    pub async fn pending_op(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<OutboxOp>, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |c| c.pending_op(&b, &k)).await
    }

    /// The write or delete of a key still queued for the upstream (not a dead letter).
    pub async fn queued_op(&self, bucket: &str, key: &str) -> Result<Option<OutboxOp>, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |c| c.queued_op(&b, &k)).await
    }

    pub async fn pending_under(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<OutboxOp>, StoreError> {
        let (b, p) = (bucket.to_owned(), prefix.to_owned());
        self.blocking(move |c| c.pending_under(&b, &p)).await
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
        self.blocking(move |c| c.enqueue_reconcile(&b, &k, e.as_deref(), now_ms))
            .await
    }

    pub async fn finish_entry(&self, seq: u64, op: &OutboxOp) -> Result<(), StoreError> {
        let op = op.clone();
        self.blocking(move |c| c.finish_entry(seq, &op)).await
    }

    pub async fn entry_is_current(
        &self,
        bucket: &str,
        key: &str,
        seq: u64,
    ) -> Result<bool, StoreError> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.blocking(move |c| c.entry_is_current(&b, &k, seq))
            .await
    }

    pub async fn dead_letter(
        &self,
        seq: u64,
        op: &OutboxOp,
        reason: &str,
        attempts: Option<Attempts>,
    ) -> Result<(), StoreError> {
        let (op, reason) = (op.clone(), reason.to_owned());
        self.blocking(move |c| c.dead_letter(seq, &op, &reason, attempts))
            .await
    }

    /// The dead letters `filter` selects, by the sequence number each had in the outbox.
    pub async fn dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<Vec<(u64, DeadLetter)>, StoreError> {
        self.blocking(move |c| c.dead_letters(&filter)).await
    }

    /// See `Catalog::retry_dead_letters`.
    pub async fn retry_dead_letters(
        &self,
        filter: DeadLetterFilter,
    ) -> Result<Retried, StoreError> {
        let now = crate::time::now_ms();
        self.blocking(move |c| c.retry_dead_letters(&filter, now))
            .await
    }

    /// See `Catalog::drop_dead_letters`.
    pub async fn drop_dead_letters(&self, filter: DeadLetterFilter) -> Result<usize, StoreError> {
        self.blocking(move |c| c.drop_dead_letters(&filter)).await
    }
}
