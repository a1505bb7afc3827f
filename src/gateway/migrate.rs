//! Migration to the upstream (`lifeboat sync`, `POST /storage/sync`): objects written before
//! gateway mode was on are `local-only`; a sync marks them `pending` with a migration entry in
//! the outbox (`Catalog::queue_local_only`), and the replay worker pushes them like any write:
//! in order, with backoff, at `upstream.replication_rate` (or the sync's own rate), resumable
//! after a crash because the outbox is durable. A migration entry asks the upstream first, so
//! an object it already holds with the same ETag is marked `synced` without a second upload.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::Gateway;
use crate::limits::MIGRATION_PAGE;
use crate::store::StoreError;

/// What the last sync queued, and what the worker has done with its entries since (this
/// process's life: a restart keeps the queue, not these counts).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncRun {
    pub bucket: Option<String>,
    pub prefix: String,
    pub dry_run: bool,
    /// Still listing and queueing.
    pub queueing: bool,
    pub queued: u64,
    pub queued_bytes: u64,
    pub uploaded: u64,
    pub uploaded_bytes: u64,
    /// Already upstream with the same ETag: marked synced, not uploaded.
    pub skipped: u64,
    pub started_ms: i64,
    pub error: Option<String>,
    /// The replication rate for this run, bytes per second (0: the configured one).
    pub rate: u64,
}

/// The replication pace: a token bucket in bytes, shared by the worker's uploads.
#[derive(Default)]
pub struct Pace {
    state: Mutex<PaceState>,
}

#[derive(Default)]
struct PaceState {
    /// Bytes per second; 0 means no limit.
    rate: u64,
    /// Bytes that may go now (negative: owed).
    allowance: f64,
    last: Option<tokio::time::Instant>,
}

impl Pace {
    pub fn new(rate: u64) -> Self {
        let p = Self::default();
        p.set(rate);
        p
    }

    pub fn set(&self, rate: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.rate = rate;
        s.allowance = 0.0;
        s.last = None;
    }

    /// Whether uploads are paced at all.
    pub fn limited(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).rate > 0
    }

    /// Waits until `bytes` may be sent at the current rate. A body larger than a second's
    /// worth goes at once and is paid for by the waits after it, so the average holds.
    pub async fn take(&self, bytes: u64) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.rate == 0 {
                return;
            }
            let now = tokio::time::Instant::now();
            let rate = s.rate as f64;
            let elapsed = s.last.map_or(0.0, |l| now.duration_since(l).as_secs_f64());
            // At most a second's worth banked while idle.
            s.allowance = (s.allowance + elapsed * rate).min(rate);
            s.last = Some(now);
            let wait = if s.allowance < 0.0 {
                Duration::from_secs_f64(-s.allowance / rate)
            } else {
                Duration::ZERO
            };
            s.allowance -= bytes as f64;
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl Gateway {
    /// Starts a sync in the background (see `sync`); its first status, or `Err` with the
    /// running one's while one is still queueing.
    pub fn start_sync(
        self: &std::sync::Arc<Self>,
        bucket: Option<String>,
        prefix: String,
        dry_run: bool,
        rate: u64,
    ) -> Result<SyncRun, Box<SyncRun>> {
        if let Some(running) = self.sync_status().filter(|r| r.queueing) {
            return Err(Box::new(running));
        }
        let run = SyncRun {
            bucket: bucket.clone(),
            prefix: prefix.clone(),
            dry_run,
            queueing: true,
            started_ms: crate::time::now_ms(),
            rate,
            ..SyncRun::default()
        };
        *self.sync_run.lock().unwrap_or_else(|e| e.into_inner()) = Some(run.clone());
        let gw = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = gw.sync(bucket.as_deref(), &prefix, dry_run, rate).await {
                tracing::error!(error = %e, "sync stopped");
                gw.update_sync(|r| {
                    r.queueing = false;
                    r.error = Some(e.to_string());
                });
            }
        });
        Ok(run)
    }

    /// Queues the local-only objects of `bucket` (or every bucket) under `prefix`; with
    /// `dry_run` only counts them. `rate` (bytes per second) paces replication from now on
    /// (0: `upstream.replication_rate`).
    async fn sync(
        &self,
        bucket: Option<&str>,
        prefix: &str,
        dry_run: bool,
        rate: u64,
    ) -> Result<SyncRun, StoreError> {
        let mut run = SyncRun {
            bucket: bucket.map(str::to_owned),
            prefix: prefix.to_owned(),
            dry_run,
            queueing: true,
            started_ms: crate::time::now_ms(),
            rate,
            ..SyncRun::default()
        };
        if !dry_run {
            self.pace.set(match rate {
                0 => self.upstream.config.replication_rate,
                r => r,
            });
        }
        let buckets = match bucket {
            Some(b) => vec![b.to_owned()],
            None => self
                .store
                .list_buckets()
                .await?
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
        };
        for b in buckets {
            let mut after = None;
            loop {
                let page = self
                    .store
                    .queue_local_only(&b, prefix, after, MIGRATION_PAGE, dry_run)
                    .await?;
                run.queued += page.objects.len() as u64;
                run.queued_bytes += page.objects.iter().map(|(_, s)| s).sum::<u64>();
                self.update_sync(|r| {
                    r.queued = run.queued;
                    r.queued_bytes = run.queued_bytes;
                });
                if !dry_run && !page.objects.is_empty() {
                    self.kick();
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        run.queueing = false;
        self.update_sync(|r| r.queueing = false);
        Ok(self.sync_status().unwrap_or(run))
    }

    pub fn sync_status(&self) -> Option<SyncRun> {
        self.sync_run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn update_sync(&self, f: impl FnOnce(&mut SyncRun)) {
        if let Some(r) = self
            .sync_run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            f(r);
        }
    }

    /// Waits for the replication pace before an upload, outside the key's lock (a long wait
    /// must not hold the key's writes and reads).
    pub(super) async fn pace_upload(&self, op: &crate::store::outbox::OutboxOp) {
        if let crate::store::outbox::OutboxOp::Put { bucket, key, .. } = op
            && self.pace.limited()
            && let Ok(meta) = self.store.object(bucket, key).await
        {
            self.pace.take(meta.size).await;
        }
    }

    /// Counts a migration entry the worker settled: uploaded (`bytes`), or found upstream.
    pub(super) fn migrated(&self, uploaded: Option<u64>) {
        self.update_sync(|r| match uploaded {
            Some(b) => {
                r.uploaded += 1;
                r.uploaded_bytes += b;
            }
            None => r.skipped += 1,
        });
    }
}
