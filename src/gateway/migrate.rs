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
use crate::store::outbox::OutboxOp;
use crate::upstream::UpstreamError;

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
        let wait = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(tokio::time::Instant::now(), bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl PaceState {
    /// The token bucket, on a clock the caller gives: how long a send of `bytes` asked for at
    /// `now` must wait, charging it. The allowance earns `rate` bytes a second, at most a
    /// second's worth banked while idle; a send waits until what is owed is paid back.
    fn reserve(&mut self, now: tokio::time::Instant, bytes: u64) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let rate = self.rate as f64;
        let elapsed = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.allowance = (self.allowance + elapsed * rate).min(rate);
        self.last = Some(now);
        let wait = if self.allowance < 0.0 {
            Duration::from_secs_f64(-self.allowance / rate)
        } else {
            Duration::ZERO
        };
        self.allowance -= bytes as f64;
        wait
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
    /// must not hold the key's writes and reads). Only bytes that will be sent are charged:
    /// nothing for an entry whose version was replaced since (the replay skips it), nor for a
    /// migration entry whose object the upstream already holds, which is asked first. That
    /// answer is handed to the replay (`Some`), so the upstream is asked once.
    pub(super) async fn pace_upload(
        &self,
        op: &OutboxOp,
        migrate: bool,
    ) -> Result<Option<bool>, UpstreamError> {
        let OutboxOp::Put { bucket, key, etag } = op else {
            return Ok(None);
        };
        if !self.pace.limited() {
            return Ok(None);
        }
        let Ok(meta) = self.store.object(bucket, key).await else {
            return Ok(None);
        };
        if meta.etag != *etag {
            return Ok(None);
        }
        if migrate && self.upstream_has(bucket, key, etag).await? {
            return Ok(Some(true));
        }
        self.pace.take(meta.size).await;
        Ok(migrate.then_some(false))
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn bucket(rate: u64) -> PaceState {
        PaceState {
            rate,
            ..PaceState::default()
        }
    }

    /// Senders sharing one pace on a virtual clock: each asks, waits what it is told, sends
    /// `size` bytes at once and asks again. The start time of every send, in order.
    fn simulate(rate: u64, senders: usize, size: u64, sends: usize) -> Vec<Duration> {
        let t0 = Instant::now();
        let mut pace = bucket(rate);
        // When each sender asks next (offsets from t0).
        let mut next = vec![Duration::ZERO; senders];
        let mut starts = Vec::with_capacity(sends);
        while starts.len() < sends {
            let (i, at) = next
                .iter()
                .copied()
                .enumerate()
                .min_by_key(|&(_, at)| at)
                .expect("a sender");
            let start = at + pace.reserve(t0 + at, size);
            starts.push(start);
            next[i] = start;
        }
        starts.sort_unstable();
        starts
    }

    #[test]
    fn the_pace_holds_its_rate_for_one_sender_and_for_four_sharing_it() {
        // 10 KB/s in 1 KB sends: one every 100 ms, however many senders share the pace.
        for senders in [1, 4] {
            let starts = simulate(10_000, senders, 1_000, 200);
            for (k, start) in starts.iter().enumerate() {
                // By the k-th send's start, k + 1 sends have gone: never more than the rate
                // allows (plus the first, which goes at once).
                // (One byte of slack for the clock's whole nanoseconds.)
                let allowed = start.as_secs_f64() * 10_000.0 + 1_000.0;
                assert!(
                    (k as f64 + 1.0) * 1_000.0 <= allowed + 1.0,
                    "{senders} senders: send {k} at {start:?} is ahead of the rate"
                );
            }
            // And it does not fall behind: 200 KB start within 19.9 s (the last at 100 ms
            // steps after the first, which waits for nothing).
            let last = starts[199].as_secs_f64();
            assert!(
                (last - 19.9).abs() < 1e-3,
                "{senders} senders: last at {last}"
            );
        }
    }

    #[test]
    fn a_large_body_goes_at_once_and_the_next_send_pays_for_it() {
        let t0 = Instant::now();
        let mut pace = bucket(1_000);
        assert_eq!(pace.reserve(t0, 5_000), Duration::ZERO);
        let wait = pace.reserve(t0, 100);
        assert!((wait.as_secs_f64() - 5.0).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn an_idle_pace_banks_a_second_of_sending_at_most() {
        let t0 = Instant::now();
        let mut pace = bucket(1_000);
        assert_eq!(pace.reserve(t0, 100), Duration::ZERO);
        // A minute idle earns one second's worth (1,000 bytes), not sixty: two sends of 500
        // from the bank and a third on credit go at once, and the fourth pays for the third.
        let later = t0 + Duration::from_secs(60);
        let waits: Vec<Duration> = (0..3).map(|_| pace.reserve(later, 500)).collect();
        assert_eq!(waits, [Duration::ZERO; 3]);
        let wait = pace.reserve(later, 500);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn no_rate_means_no_wait() {
        let t0 = Instant::now();
        let mut pace = bucket(0);
        assert!((0..100).all(|_| pace.reserve(t0, u64::MAX) == Duration::ZERO));
        assert!(!Pace::new(0).limited());
        assert!(Pace::new(1).limited());
    }
}
