//! Cache warm-up: every object under a prefix fetched from the upstream into the cache, so
//! reads are served through an outage. One warm-up at a time runs in the background
//! (`POST /storage/warm` starts it, `GET /storage/warm` reports it, `lifeboat warm` drives
//! both); objects already cached are skipped, so a warm-up cut short is resumed by running it
//! again. It yields to clients: `WARM_CONCURRENCY` fetches at most, and none starts while
//! `WARM_YIELD_AT` client requests are in flight. `HEAD` with `x-lifeboat-cache: warm` fetches
//! one object the same way.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::task::JoinSet;

use super::Gateway;
use super::fill::prefetch;
use crate::limits::{WARM_CONCURRENCY, WARM_PAGE, WARM_YIELD_AT, WARM_YIELD_PAUSE};
use crate::store::ListQuery;

/// A warm-up's progress, as the admin API reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WarmStatus {
    pub bucket: String,
    pub prefix: String,
    pub running: bool,
    /// Objects listed so far (the total once `listed` is true).
    pub found: u64,
    pub listed: bool,
    /// Fetched into the cache now.
    pub fetched: u64,
    pub fetched_bytes: u64,
    /// Already cached (or written here and not yet upstream).
    pub skipped: u64,
    pub failed: u64,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// Why the warm-up stopped early (the upstream could not list).
    pub error: Option<String>,
}

/// The one warm-up this node runs (or ran last).
#[derive(Default)]
pub struct Warmer {
    status: Mutex<Option<WarmStatus>>,
}

impl Warmer {
    pub fn status(&self) -> Option<WarmStatus> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<WarmStatus>> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut WarmStatus)) {
        if let Some(s) = self.lock().as_mut() {
            f(s);
        }
    }
}

impl Gateway {
    /// Starts warming `prefix` of `bucket`; `Err` with the running one's status when a
    /// warm-up is already running.
    pub fn start_warm(
        self: &Arc<Self>,
        bucket: &str,
        prefix: &str,
    ) -> Result<WarmStatus, Box<WarmStatus>> {
        let status = {
            let mut current = self.warmer.lock();
            if let Some(s) = current.as_ref().filter(|s| s.running) {
                return Err(Box::new(s.clone()));
            }
            let s = WarmStatus {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                running: true,
                started_ms: crate::time::now_ms(),
                ..WarmStatus::default()
            };
            *current = Some(s.clone());
            s
        };
        let gw = Arc::clone(self);
        let (bucket, prefix) = (bucket.to_owned(), prefix.to_owned());
        tokio::spawn(async move {
            let error = gw.warm(&bucket, &prefix).await.err();
            if let Some(e) = &error {
                tracing::warn!(bucket, prefix, error = %e, "warm-up stopped");
            }
            gw.warmer.update(|s| {
                s.running = false;
                s.finished_ms = Some(crate::time::now_ms());
                s.error = error.map(|e| e.to_string());
            });
            if let Some(s) = gw.warmer.status() {
                tracing::info!(
                    bucket = s.bucket,
                    prefix = s.prefix,
                    fetched = s.fetched,
                    skipped = s.skipped,
                    failed = s.failed,
                    "warm-up finished"
                );
            }
        });
        Ok(status)
    }

    pub fn warm_status(&self) -> Option<WarmStatus> {
        self.warmer.status()
    }

    async fn warm(
        self: &Arc<Self>,
        bucket: &str,
        prefix: &str,
    ) -> Result<(), crate::error::S3Error> {
        let mut fetches = JoinSet::new();
        let mut start_after = None;
        loop {
            let page = self
                .list(
                    bucket,
                    ListQuery {
                        prefix: prefix.to_owned(),
                        delimiter: None,
                        start_after: start_after.clone(),
                        max_keys: WARM_PAGE,
                    },
                )
                .await?;
            // The local index is what the cache already holds: a warm-up needs the upstream.
            if page.from_local_index {
                return Err(crate::error::S3Error::with_message(
                    crate::error::S3ErrorCode::ServiceUnavailable,
                    "the upstream did not answer the listing; warm up again once it is back",
                ));
            }
            self.warmer.update(|s| s.found += page.objects.len() as u64);
            for (key, _) in &page.objects {
                if self.store.object(bucket, key).await.is_ok() {
                    self.warmer.update(|s| s.skipped += 1);
                    continue;
                }
                while fetches.len() >= WARM_CONCURRENCY {
                    if let Some(done) = fetches.join_next().await {
                        self.count_fetch(done.ok().flatten());
                    }
                }
                while crate::load::in_flight() >= WARM_YIELD_AT {
                    tokio::time::sleep(WARM_YIELD_PAUSE).await;
                }
                let gw = Arc::clone(self);
                let (b, k) = (bucket.to_owned(), key.clone());
                fetches.spawn(async move {
                    prefetch(Arc::clone(&gw), b.clone(), k.clone()).await;
                    gw.store.object(&b, &k).await.ok().map(|m| m.size)
                });
            }
            if !page.is_truncated || page.last.is_none() {
                break;
            }
            start_after = page.last;
        }
        self.warmer.update(|s| s.listed = true);
        while let Some(done) = fetches.join_next().await {
            self.count_fetch(done.ok().flatten());
        }
        Ok(())
    }

    fn count_fetch(&self, size: Option<u64>) {
        self.warmer.update(|s| match size {
            Some(n) => {
                s.fetched += 1;
                s.fetched_bytes += n;
            }
            None => s.failed += 1,
        });
    }
}
