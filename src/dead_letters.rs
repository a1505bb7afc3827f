//! Dead letters as an operator sees them: outbox entries the upstream refused for good, on the
//! admin API (`/storage/dead-letters`, admin/dead_letters.rs) and on the command line
//! (`lifeboat dead-letters list|retry|drop`). Both speak the same JSON: the selection a command
//! acts on (`Selection`: all, ids, a bucket and key prefix) and the listing (`document`), so
//! the two cannot drift apart. The command line opens the store itself when the server is
//! stopped; while it runs (redb locks the catalog) it calls the running server's admin API.
//! Dead letters are also queued again automatically each time the gateway starts.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;
use crate::store::outbox::OutboxOp;
use crate::store::{DeadLetter, DeadLetterFilter, Store, StoreError};

/// Which dead letters a retry or a drop acts on, as the admin API's JSON body and the command
/// line's arguments give it. Empty: every one (a drop must say `all` to mean that).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<u64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
}

/// A selection that cannot be acted on, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("a prefix needs a bucket: give \"bucket\" too")]
    PrefixWithoutBucket,
    #[error("\"all\" selects every dead letter: give it alone, without ids, bucket or prefix")]
    AllWithOthers,
    #[error(
        "name the dead letters to drop: their ids, a bucket (and prefix), or all (\"all\": true, \
         or --all on the command line)"
    )]
    DropNeedsSelection,
}

impl Selection {
    fn names_some(&self) -> bool {
        self.ids.is_some() || self.bucket.is_some() || self.prefix.is_some()
    }

    /// The store's filter; `drop` refuses a selection that does not say what it drops.
    pub fn filter(&self, drop: bool) -> Result<DeadLetterFilter, SelectionError> {
        if self.all && self.names_some() {
            return Err(SelectionError::AllWithOthers);
        }
        if self.prefix.is_some() && self.bucket.is_none() {
            return Err(SelectionError::PrefixWithoutBucket);
        }
        if drop && !self.all && !self.names_some() {
            return Err(SelectionError::DropNeedsSelection);
        }
        Ok(DeadLetterFilter {
            ids: self.ids.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone().unwrap_or_default(),
        })
    }
}

/// One dead letter in the listing.
pub fn letter_json(seq: u64, letter: &DeadLetter) -> Value {
    let (operation, etag) = match &letter.entry.op {
        OutboxOp::Put { etag, .. } => ("put", Some(etag)),
        OutboxOp::Delete { .. } => ("delete", None),
        OutboxOp::Revert { etag, .. } => ("revert", Some(etag)),
    };
    let (bucket, key) = letter.entry.op.bucket_key();
    let time = |ms: Option<i64>| ms.map(crate::time::iso_date);
    json!({
        "id": seq,
        "bucket": bucket,
        "key": key,
        "operation": operation,
        "etag": etag,
        "error": letter.reason,
        "queued": crate::time::iso_date(letter.entry.enqueued_ms),
        "first_attempt": time(letter.first_attempt_ms),
        "last_attempt": time(letter.last_attempt_ms),
        "attempts": letter.attempts,
    })
}

/// The listing: `{"count", "dead_letters": [...]}`, oldest first.
pub fn document(letters: &[(u64, DeadLetter)]) -> Value {
    let list: Vec<Value> = letters.iter().map(|(s, l)| letter_json(*s, l)).collect();
    json!({"count": list.len(), "dead_letters": list})
}

/// What to do with the dead letters.
#[derive(Debug, Clone)]
pub enum Action {
    List(Selection),
    /// Queue the selected dead letters for replay again.
    Retry(Selection),
    /// Forget the selected dead letters.
    Drop(Selection),
}

/// The listing as lines for a terminal.
fn list_text(doc: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut out = String::new();
    let letters = doc["dead_letters"].as_array().cloned().unwrap_or_default();
    if letters.is_empty() {
        out.push_str("no dead letters\n");
    }
    for l in letters {
        let etag = l["etag"]
            .as_str()
            .map(|e| format!(" (ETag {e})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}\t{}\t{} {}/{}{etag}\t{} attempts, last {}\t{}",
            l["id"],
            s(&l["queued"]),
            s(&l["operation"]),
            s(&l["bucket"]),
            s(&l["key"]),
            l["attempts"],
            s(&l["last_attempt"]),
            s(&l["error"]),
        );
    }
    out
}

fn retried_text(doc: &Value) -> String {
    let mut out = format!("queued {} dead letters for replay\n", doc["queued"]);
    if doc["moot"].as_u64().is_some_and(|m| m > 0) {
        let _ = writeln!(
            out,
            "dropped {} made moot by a later write or delete",
            doc["moot"]
        );
    }
    out
}

fn dropped_text(doc: &Value) -> String {
    format!("dropped {} dead letters\n", doc["dropped"])
}

/// Runs the action on the store of `config`, or, while the server holds the store, through
/// its admin API; returns what to print.
pub async fn run(config: &Config, action: Action) -> Result<String, String> {
    let dir = config.storage.data_dir.clone();
    let key = config.storage.encryption_key.clone();
    let opened = tokio::task::spawn_blocking(move || Store::open(&dir, key))
        .await
        .map_err(|e| e.to_string())?;
    let store = match opened {
        Ok(store) => store,
        Err(e) if e.is_locked() => return through_admin_api(config, action).await,
        Err(e) => {
            return Err(format!(
                "cannot open the store in {}: {e}",
                config.storage.data_dir.display()
            ));
        }
    };
    let bad = |e: SelectionError| e.to_string();
    let store_err = |e: StoreError| e.to_string();
    Ok(match action {
        Action::List(sel) => {
            let letters = store
                .dead_letters(sel.filter(false).map_err(bad)?)
                .await
                .map_err(store_err)?;
            list_text(&document(&letters))
        }
        Action::Retry(sel) => {
            let r = store
                .retry_dead_letters(sel.filter(false).map_err(bad)?)
                .await
                .map_err(store_err)?;
            retried_text(&json!({"queued": r.queued, "moot": r.moot}))
        }
        Action::Drop(sel) => {
            let n = store
                .drop_dead_letters(sel.filter(true).map_err(bad)?)
                .await
                .map_err(store_err)?;
            dropped_text(&json!({"dropped": n}))
        }
    })
}

/// The same action on the running server (the store is locked by it).
async fn through_admin_api(config: &Config, action: Action) -> Result<String, String> {
    use crate::admin::cli;
    use http::Method;
    let base = cli::base_url(config, None);
    let call = |method: Method, path: String, body: Option<&Selection>| {
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        let base = base.clone();
        async move {
            cli::call_json(config, &base, method, &path, body, None)
                .await
                .map_err(|e| {
                    format!(
                        "the store is in use (Lifeboat is running) and its admin API did not help: {e}"
                    )
                })
        }
    };
    match action {
        Action::List(sel) => {
            let mut query = Vec::new();
            if let Some(b) = &sel.bucket {
                query.push(format!(
                    "bucket={}",
                    crate::auth::sigv4::uri_encode(b, true)
                ));
            }
            if let Some(p) = &sel.prefix {
                query.push(format!(
                    "prefix={}",
                    crate::auth::sigv4::uri_encode(p, true)
                ));
            }
            let path = if query.is_empty() {
                "/storage/dead-letters".to_owned()
            } else {
                format!("/storage/dead-letters?{}", query.join("&"))
            };
            Ok(list_text(&call(Method::GET, path, None).await?))
        }
        Action::Retry(sel) => {
            let doc = call(
                Method::POST,
                "/storage/dead-letters/retry".into(),
                Some(&sel),
            )
            .await?;
            Ok(retried_text(&doc))
        }
        Action::Drop(sel) => {
            let doc = call(Method::DELETE, "/storage/dead-letters".into(), Some(&sel)).await?;
            Ok(dropped_text(&doc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::OutboxEntry;

    #[test]
    fn a_selection_says_what_it_acts_on() {
        assert_eq!(
            Selection::default().filter(false),
            Ok(DeadLetterFilter::all())
        );
        assert_eq!(
            Selection::default().filter(true),
            Err(SelectionError::DropNeedsSelection)
        );
        let all = Selection {
            all: true,
            ..Selection::default()
        };
        assert_eq!(all.filter(true), Ok(DeadLetterFilter::all()));
        let prefix_only = Selection {
            prefix: Some("a/".into()),
            ..Selection::default()
        };
        assert_eq!(
            prefix_only.filter(false),
            Err(SelectionError::PrefixWithoutBucket)
        );
        let mixed = Selection {
            all: true,
            ids: Some(vec![1]),
            ..Selection::default()
        };
        assert_eq!(mixed.filter(true), Err(SelectionError::AllWithOthers));
        let under: Selection =
            serde_json::from_str(r#"{"bucket": "b", "prefix": "logs/"}"#).unwrap_or_default();
        let f = under.filter(true).unwrap_or_default();
        let op = |bucket: &str, key: &str| OutboxOp::Delete {
            bucket: bucket.into(),
            key: key.into(),
        };
        assert!(f.matches(1, &op("b", "logs/x")));
        assert!(!f.matches(1, &op("b", "other")));
        assert!(!f.matches(1, &op("c", "logs/x")));
        assert!(serde_json::from_str::<Selection>(r#"{"bucket": "b", "pefix": "x"}"#).is_err());
    }

    #[test]
    fn a_record_written_before_attempts_were_kept_still_lists() {
        let old = r#"{"entry":{"op":{"Put":{"bucket":"b","key":"k","etag":"e"}},"enqueued_ms":0},"reason":"no"}"#;
        let letter: DeadLetter = serde_json::from_str(old).expect("an old record reads");
        assert_eq!(
            letter.entry,
            OutboxEntry {
                op: OutboxOp::Put {
                    bucket: "b".into(),
                    key: "k".into(),
                    etag: "e".into()
                },
                enqueued_ms: 0,
                migrate: false,
            }
        );
        let v = letter_json(3, &letter);
        assert_eq!(v["attempts"], 0);
        assert!(v["first_attempt"].is_null() && v["last_attempt"].is_null());
        assert_eq!(v["operation"], "put");
        assert_eq!(v["error"], "no");
        assert!(list_text(&document(&[(3, letter)])).contains("put b/k (ETag e)"));
    }
}
