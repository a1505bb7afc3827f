//! `lifeboat dead-letters list|retry|drop`: the operator's view of outbox entries the upstream
//! refused for good. The store is opened directly, so the server must be stopped (the catalog
//! is locked while it runs); the admin API will offer the same on a running server. Dead
//! letters are also queued again automatically each time the gateway starts.

use std::fmt::Write as _;

use crate::config::Config;
use crate::store::Store;
use crate::store::outbox::OutboxOp;

/// What to do with the dead letters.
#[derive(Debug, Clone)]
pub enum Action {
    List,
    /// Queue these (or, with `None`, every) dead letter for replay again.
    Retry(Option<Vec<u64>>),
    /// Forget these (or every) dead letter.
    Drop(Option<Vec<u64>>),
}

fn describe(op: &OutboxOp) -> String {
    match op {
        OutboxOp::Put { bucket, key, etag } => format!("put {bucket}/{key} (ETag {etag})"),
        OutboxOp::Delete { bucket, key } => format!("delete {bucket}/{key}"),
        OutboxOp::Revert { bucket, key, etag } => format!("revert {bucket}/{key} (ETag {etag})"),
    }
}

/// Runs the action on the store of `config`; returns what to print.
pub async fn run(config: &Config, action: Action) -> Result<String, String> {
    let dir = config.storage.data_dir.clone();
    let key = config.storage.encryption_key.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&dir, key))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| {
            format!(
                "cannot open the store in {} (is Lifeboat running? stop it first): {e}",
                config.storage.data_dir.display()
            )
        })?;
    let mut out = String::new();
    match action {
        Action::List => {
            let letters = store.dead_letters().await.map_err(|e| e.to_string())?;
            if letters.is_empty() {
                out.push_str("no dead letters\n");
            }
            for (seq, letter) in letters {
                let _ = writeln!(
                    out,
                    "{seq}\t{}\t{}\t{}",
                    crate::time::iso_date(letter.entry.enqueued_ms),
                    describe(&letter.entry.op),
                    letter.reason
                );
            }
        }
        Action::Retry(only) => {
            let n = store
                .retry_dead_letters(only)
                .await
                .map_err(|e| e.to_string())?;
            let _ = writeln!(out, "queued {n} dead letters for replay");
        }
        Action::Drop(only) => {
            let n = store
                .drop_dead_letters(only)
                .await
                .map_err(|e| e.to_string())?;
            let _ = writeln!(out, "dropped {n} dead letters");
        }
    }
    Ok(out)
}
