//! The catalog's migration side (`lifeboat sync`): local-only objects marked `pending`, each
//! with a migration entry in the outbox, a page at a time, so a sync of a million objects is a
//! thousand short transactions, and one cut short leaves every object either still local-only
//! or queued.

use super::Catalog;
use crate::store::error::StoreError;
use crate::store::meta::SyncState;
use crate::store::objects::{self, ListQuery};
use crate::store::outbox::{self, OutboxOp};

/// What one page of a migration found (and, unless a dry run, queued).
#[derive(Debug, Default)]
pub struct MigrationPage {
    /// Local-only objects: key and size.
    pub objects: Vec<(String, u64)>,
    /// Where the next page starts; `None` once the prefix is done.
    pub next: Option<String>,
}

impl Catalog {
    /// Queues the local-only objects among the next `limit` keys of `bucket` under `prefix`
    /// after `after` (only counts them with `dry_run`).
    pub fn queue_local_only(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        dry_run: bool,
        now_ms: i64,
    ) -> Result<MigrationPage, StoreError> {
        let q = ListQuery {
            prefix: prefix.to_owned(),
            delimiter: None,
            start_after: after.map(str::to_owned),
            max_keys: limit,
        };
        let page = self.read(|txn| objects::list(txn, bucket, &q))?;
        let next = page.is_truncated.then(|| page.last.clone()).flatten();
        let found: Vec<(String, String, u64)> = page
            .objects
            .into_iter()
            .filter(|(_, m)| m.sync == SyncState::LocalOnly)
            .map(|(k, m)| (k, m.etag, m.size))
            .collect();
        if dry_run || found.is_empty() {
            return Ok(MigrationPage {
                objects: found.into_iter().map(|(k, _, s)| (k, s)).collect(),
                next,
            });
        }
        let queued = self.write(|txn| {
            let mut queued = Vec::new();
            for (key, etag, size) in &found {
                // Still that local-only version (a write may have come in between).
                let Some(mut meta) = objects::current(txn, bucket, key)? else {
                    continue;
                };
                if meta.sync != SyncState::LocalOnly || meta.etag != *etag {
                    continue;
                }
                meta.sync = SyncState::Pending;
                objects::replace(txn, bucket, key, &meta)?;
                let op = OutboxOp::Put {
                    bucket: bucket.to_owned(),
                    key: key.clone(),
                    etag: etag.clone(),
                };
                outbox::enqueue_migration(txn, op, now_ms)?;
                queued.push((key.clone(), *size));
            }
            Ok(queued)
        })?;
        Ok(MigrationPage {
            objects: queued,
            next,
        })
    }
}
