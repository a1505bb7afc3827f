//! The replay worker: drains the outbox in order (docs/ARCHITECTURE.md, "The outbox"). Each
//! entry is replayed under its key's lock, shared with the request path. Only the key's newest
//! entry acts, and only on the version it names: a superseded entry is dropped without touching
//! the upstream, so an older version (or an older tombstone) never lands after a newer write.
//! Failures back off with jitter; a refusal retrying cannot change moves to the dead letters.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::Gateway;
use crate::limits::{
    MAX_LOCAL_FAILURES, OUTBOX_BATCH, OUTBOX_IDLE_WAIT, OUTBOX_READ_RETRY, REPLAY_MIN_BACKOFF,
};
use crate::store::outbox::OutboxOp;
use crate::store::{Attempts, DeadLetterFilter, ObjectMeta, StoreError};
use crate::upstream::{Disposition, UpstreamError, backoff};

/// What replaying one entry does upstream.
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived, one per request or entry; boxing would only add an allocation"
)]
#[derive(Debug, PartialEq, Eq)]
pub enum ReplayStep {
    /// Nothing: the entry was superseded, or the local state it names is gone.
    Skip,
    /// Upload this (current) local version.
    Push(ObjectMeta),
    /// Apply a tombstone: the key has no local version.
    DeleteUpstream,
    /// Undo a strict write that may have landed: the key has no local version.
    Revert(String),
}

/// The ordering rules, as a pure function of the entry, whether it is still the key's newest
/// entry, and the key's local version.
pub fn replay_step(op: &OutboxOp, current: bool, local: Option<ObjectMeta>) -> ReplayStep {
    if !current {
        return ReplayStep::Skip;
    }
    match (op, local) {
        (OutboxOp::Put { etag, .. }, Some(meta)) if meta.etag == *etag => ReplayStep::Push(meta),
        (OutboxOp::Delete { .. }, None) => ReplayStep::DeleteUpstream,
        (OutboxOp::Revert { etag, .. }, None) => ReplayStep::Revert(etag.clone()),
        // A Put whose version was replaced or deleted since, or a delete or revert of a key
        // written again since: a newer entry (or none) speaks for the key.
        _ => ReplayStep::Skip,
    }
}

impl Gateway {
    /// Replays one outbox entry under the key's lock. Err only when the entry must stay.
    pub async fn replay(&self, seq: u64, op: &OutboxOp) -> Result<(), UpstreamError> {
        self.replay_entry(seq, op, false, None).await
    }

    /// As `replay`; a `migrate` entry (`lifeboat sync`) first asks whether the upstream holds
    /// that version already (unless `upstream_has` says, from `pace_upload`), and counts in
    /// the sync's progress.
    pub async fn replay_entry(
        &self,
        seq: u64,
        op: &OutboxOp,
        migrate: bool,
        upstream_has: Option<bool>,
    ) -> Result<(), UpstreamError> {
        let (bucket, key) = op.bucket_key();
        let _guard = self.key_lock(bucket, key).await;
        let local_err = |e: StoreError| UpstreamError::Local(e.to_string());
        let current = self
            .store
            .entry_is_current(bucket, key, seq)
            .await
            .map_err(local_err)?;
        let local = if current {
            match self.store.object(bucket, key).await {
                Ok(meta) => Some(meta),
                Err(StoreError::NoSuchKey) => None,
                Err(e) => return Err(local_err(e)),
            }
        } else {
            None
        };
        match replay_step(op, current, local) {
            ReplayStep::Skip => {}
            ReplayStep::Push(meta)
                if migrate
                    && match upstream_has {
                        Some(has) => has,
                        None => self.upstream_has(bucket, key, &meta.etag).await?,
                    } =>
            {
                self.migrated(None);
            }
            ReplayStep::Push(meta) => {
                self.push_object(bucket, key, &meta, false).await?;
                if migrate {
                    self.migrated(Some(meta.size));
                }
            }
            ReplayStep::DeleteUpstream => self.delete_upstream(bucket, key).await?,
            ReplayStep::Revert(etag) => self.revert_upstream(bucket, key, &etag).await?,
        }
        if let Err(e) = self.store.finish_entry(seq, op).await {
            tracing::error!(seq, error = %e, "cannot record a replayed outbox entry");
        }
        Ok(())
    }

    /// The replay worker: drains the outbox in order, backing off while the upstream fails.
    /// It starts by queueing the dead letters again: the upstream (or its configuration) may
    /// have changed since they were refused.
    pub fn spawn_worker(self: &Arc<Self>) {
        let gw = Arc::clone(self);
        let mut stop = self.stopping.subscribe();
        let handle = tokio::spawn(async move {
            match gw.store.retry_dead_letters(DeadLetterFilter::all()).await {
                Ok(r) if r.queued == 0 => {}
                Ok(r) => tracing::info!(entries = r.queued, "dead letters queued again for replay"),
                Err(e) => tracing::error!(error = %e, "cannot queue the dead letters again"),
            }
            let mut failures = 0u32;
            let concurrency = gw.upstream.config.replication_concurrency.max(1);
            // Local failures, and the worker's tries (kept with a refusal), of queued entries.
            let mut local_failures: HashMap<u64, u32> = HashMap::new();
            let mut tries: HashMap<u64, Attempts> = HashMap::new();
            loop {
                if *stop.borrow() {
                    break;
                }
                let batch = match gw.store.outbox_batch(OUTBOX_BATCH).await {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the outbox");
                        pause(&mut stop, OUTBOX_READ_RETRY).await;
                        continue;
                    }
                };
                if batch.is_empty() {
                    tokio::select! {
                        _ = tokio::time::timeout(OUTBOX_IDLE_WAIT, gw.wake.notified()) => {}
                        () = stopped(&mut stop) => {}
                    }
                    continue;
                }
                // Entries no longer queued (replayed, superseded) are forgotten.
                tries.retain(|seq, _| batch.iter().any(|(s, _)| s == seq));
                local_failures.retain(|seq, _| batch.iter().any(|(s, _)| s == seq));
                // A key has one entry at most (a newer write supersedes the older entry), so
                // entries of one batch are distinct keys and may replay side by side; each takes
                // its key's lock.
                let mut entries = batch.into_iter();
                let mut running = JoinSet::new();
                // The first failure of the batch: its entry, what it means, and why.
                let mut halted: Option<(Option<u64>, Disposition, String)> = None;
                loop {
                    while running.len() < concurrency && halted.is_none() && !*stop.borrow() {
                        let Some((seq, entry)) = entries.next() else {
                            break;
                        };
                        let attempts = count_attempt(&mut tries, seq, crate::time::now_ms());
                        let gw = Arc::clone(&gw);
                        running.spawn(async move {
                            let result = match gw.pace_upload(&entry.op, entry.migrate).await {
                                Ok(has) => {
                                    gw.replay_entry(seq, &entry.op, entry.migrate, has).await
                                }
                                Err(e) => Err(e),
                            };
                            (seq, entry, attempts, result)
                        });
                    }
                    let Some(joined) = running.join_next().await else {
                        break;
                    };
                    let Ok((seq, entry, attempts, result)) = joined else {
                        // A replay that panicked: its entry stays queued, and the worker backs
                        // off as after any failure.
                        halted.get_or_insert((
                            None,
                            Disposition::Local,
                            "a replay task failed".to_owned(),
                        ));
                        continue;
                    };
                    let e = match result {
                        Ok(()) => {
                            crate::metrics::replay("done");
                            // The object may be synced now, so evictable.
                            gw.cache_kick();
                            tries.remove(&seq);
                            local_failures.remove(&seq);
                            continue;
                        }
                        Err(e) => e,
                    };
                    let mut disposition = gw.disposition(&e);
                    if disposition == Disposition::Local {
                        // A transient local error (too many open files) passes; one that
                        // persists (a blob gone from disk) must not hold the queue forever.
                        let n = local_failures.entry(seq).or_insert(0);
                        *n = n.saturating_add(1);
                        if *n >= MAX_LOCAL_FAILURES {
                            disposition = Disposition::Refused;
                        }
                    }
                    if disposition == Disposition::Refused {
                        // Retrying cannot help; keep the queue moving and keep the entry, and
                        // the object reports `failed`.
                        tracing::error!(seq, op = ?entry.op, error = %e, "upstream refused a replay for good: moved to the dead letters");
                        crate::metrics::dead_lettered();
                        if let Err(err) = gw
                            .store
                            .dead_letter(seq, &entry.op, &e.to_string(), Some(attempts))
                            .await
                        {
                            tracing::error!(seq, error = %err, "cannot move an entry to the dead letters");
                        }
                        tries.remove(&seq);
                        local_failures.remove(&seq);
                        continue;
                    }
                    // The first failure stops new replays; those running finish first.
                    if halted.is_none() {
                        halted = Some((Some(seq), disposition, e.to_string()));
                    }
                }
                let Some((seq, disposition, e)) = halted else {
                    // A batch with no failure resets the backoff; one whose other entries went
                    // through while one failed does not.
                    failures = 0;
                    continue;
                };
                crate::metrics::replay("failed");
                failures = failures.saturating_add(1);
                let wait = backoff(failures, rand::random::<f64>()).max(REPLAY_MIN_BACKOFF);
                let reason = match disposition {
                    Disposition::Denied => "the upstream refuses the credentials",
                    Disposition::Local => "local error",
                    _ => "upstream unavailable",
                };
                tracing::warn!(seq, error = %e, reason, retry_in_ms = wait.as_millis() as u64, "outbox replay failed; the entry stays queued");
                pause(&mut stop, wait).await;
            }
            tracing::info!("replay worker stopped");
        });
        *self.worker.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
    }
}

/// Counts a try of entry `seq` at `now_ms`: another try of the head entry, or the first of a
/// new one. Kept in memory only (a failed try costs no write): after a restart the count
/// starts again.
fn count_attempt(tries: &mut HashMap<u64, Attempts>, seq: u64, now_ms: i64) -> Attempts {
    let attempts = match tries.get(&seq) {
        Some(a) => Attempts {
            last_ms: now_ms,
            count: a.count.saturating_add(1),
            ..*a
        },
        None => Attempts {
            first_ms: now_ms,
            last_ms: now_ms,
            count: 1,
        },
    };
    tries.insert(seq, attempts);
    attempts
}

/// Sleeps for `wait`, or until shutdown.
async fn pause(stop: &mut tokio::sync::watch::Receiver<bool>, wait: std::time::Duration) {
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = stopped(stop) => {}
    }
}

/// Resolves once shutdown has been asked for.
pub(super) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ContentHeaders, SyncState};

    fn meta(etag: &str) -> ObjectMeta {
        ObjectMeta {
            segments: Vec::new(),
            size: 0,
            etag: etag.into(),
            last_modified_ms: 0,
            content: ContentHeaders::default(),
            user_metadata: Vec::new(),
            checksum: None,
            multipart: false,
            tags: Vec::new(),
            acl: None,
            sync: SyncState::Pending,
            validated_ms: 0,
            sse: None,
        }
    }

    fn put(etag: &str) -> OutboxOp {
        OutboxOp::Put {
            bucket: "b".into(),
            key: "k".into(),
            etag: etag.into(),
        }
    }

    fn delete() -> OutboxOp {
        OutboxOp::Delete {
            bucket: "b".into(),
            key: "k".into(),
        }
    }

    #[test]
    fn attempts_count_the_tries_of_one_entry() {
        let mut head = HashMap::new();
        assert_eq!(count_attempt(&mut head, 7, 100).count, 1);
        assert_eq!(count_attempt(&mut head, 7, 200).count, 2);
        let a = count_attempt(&mut head, 7, 300);
        assert_eq!((a.first_ms, a.last_ms, a.count), (100, 300, 3));
        // Another entry has its own count, and the first keeps its own.
        let b = count_attempt(&mut head, 8, 400);
        assert_eq!((b.first_ms, b.last_ms, b.count), (400, 400, 1));
        assert_eq!(count_attempt(&mut head, 7, 500).count, 4);
    }

    #[test]
    fn a_superseded_entry_never_touches_the_upstream() {
        for op in [put("e1"), delete()] {
            assert_eq!(replay_step(&op, false, Some(meta("e1"))), ReplayStep::Skip);
            assert_eq!(replay_step(&op, false, None), ReplayStep::Skip);
        }
    }

    #[test]
    fn a_put_pushes_only_the_version_it_names() {
        assert_eq!(
            replay_step(&put("e1"), true, Some(meta("e1"))),
            ReplayStep::Push(meta("e1"))
        );
        // Replaced by a newer version (whose own entry pushes it), or deleted since.
        assert_eq!(
            replay_step(&put("e1"), true, Some(meta("e2"))),
            ReplayStep::Skip
        );
        assert_eq!(replay_step(&put("e1"), true, None), ReplayStep::Skip);
    }

    #[test]
    fn a_tombstone_never_deletes_a_newer_local_write() {
        assert_eq!(
            replay_step(&delete(), true, None),
            ReplayStep::DeleteUpstream
        );
        assert_eq!(
            replay_step(&delete(), true, Some(meta("e2"))),
            ReplayStep::Skip
        );
    }

    #[test]
    fn a_revert_only_acts_when_the_key_has_no_local_version() {
        let revert = OutboxOp::Revert {
            bucket: "b".into(),
            key: "k".into(),
            etag: "e9".into(),
        };
        assert_eq!(
            replay_step(&revert, true, None),
            ReplayStep::Revert("e9".into())
        );
        assert_eq!(
            replay_step(&revert, true, Some(meta("e1"))),
            ReplayStep::Skip
        );
    }
}
