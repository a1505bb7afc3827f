//! Coherence with writers that bypass this node: S3 event notifications (the `Records[]` JSON
//! that AWS and MinIO's webhook target send) name objects written or removed upstream, and a
//! synced cached copy they make stale is dropped, so the next read is a miss. `[cluster]
//! peers` are told the same way, in batches, which keys this node put or removed upstream;
//! a notice lost costs at most `revalidate_after` of staleness.
//!
//! A copy that is `pending` or `local-only` is never dropped: it is newer than the upstream's.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Gateway;
use crate::limits::{PEER_BATCH, PEER_BATCH_WAIT, PEER_QUEUE, PEER_TIMEOUT};
use crate::secret::Secret;
use crate::store::{StoreError, SyncState};

/// An object written or removed upstream, in the upstream's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub bucket: String,
    pub key: String,
    /// The new version's ETag, when known (a write Lifeboat already has is then kept).
    pub etag: Option<String>,
    pub removed: bool,
}

/// The object changes in an S3 event notification; records of other events are skipped.
pub fn parse_events(body: &[u8]) -> Result<Vec<Change>, String> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let records = doc
        .get("Records")
        .and_then(Value::as_array)
        .ok_or("no Records array: expected an S3 event notification")?;
    let mut changes = Vec::new();
    for r in records {
        let name = r.get("eventName").and_then(Value::as_str).unwrap_or("");
        let name = name.strip_prefix("s3:").unwrap_or(name);
        let removed = if name.starts_with("ObjectCreated:") {
            false
        } else if name.starts_with("ObjectRemoved:") {
            true
        } else {
            continue;
        };
        let s3 = r.get("s3");
        let bucket = s3
            .and_then(|s| s.pointer("/bucket/name"))
            .and_then(Value::as_str)
            .ok_or("a record without s3.bucket.name")?;
        let key = s3
            .and_then(|s| s.pointer("/object/key"))
            .and_then(Value::as_str)
            .ok_or("a record without s3.object.key")?;
        // Keys in event notifications are URL-encoded, a space as "+".
        let key = percent_encoding::percent_decode_str(&key.replace('+', " "))
            .decode_utf8()
            .map_err(|_| format!("the key {key:?} is not URL-encoded UTF-8"))?
            .into_owned();
        let etag = s3
            .and_then(|s| s.pointer("/object/eTag"))
            .and_then(Value::as_str)
            .map(|e| e.trim_matches('"').to_owned())
            .filter(|e| !e.is_empty());
        changes.push(Change {
            bucket: bucket.to_owned(),
            key,
            etag,
            removed,
        });
    }
    Ok(changes)
}

/// Changes as an S3 event notification, for peers.
pub fn events_json(changes: &[Change]) -> Value {
    let records: Vec<Value> = changes
        .iter()
        .map(|c| {
            let name = if c.removed {
                "s3:ObjectRemoved:Delete"
            } else {
                "s3:ObjectCreated:Put"
            };
            let mut object = json!({ "key": url_encode_key(&c.key) });
            if let Some(e) = &c.etag {
                object["eTag"] = json!(e);
            }
            json!({
                "eventVersion": "2.1",
                "eventSource": "lifeboat:s3",
                "eventName": name,
                "s3": { "s3SchemaVersion": "1.0", "bucket": { "name": c.bucket }, "object": object },
            })
        })
        .collect();
    json!({ "Records": records })
}

/// URL-encodes a key as event notifications do (a space as "+").
fn url_encode_key(key: &str) -> String {
    crate::auth::sigv4::uri_encode(key, true).replace("%20", "+")
}

impl Gateway {
    /// Drops the cached copy a change makes stale; true when one was dropped.
    pub async fn apply_change(&self, change: &Change) -> Result<bool, StoreError> {
        let Some((bucket, key)) = self.upstream.unmap(&change.bucket, &change.key) else {
            return Ok(false);
        };
        // The key's lock first: a cache fill in flight holds it until its copy is committed,
        // so a notice that arrives mid-fill waits for the copy and then drops it, rather than
        // finding nothing and leaving the stale copy to be committed after it. The wait is
        // bounded, so that one long transfer does not hold up a batch of notices: past it the
        // notice applies to what is committed now (`revalidate_after` covers the rest).
        let _guard = tokio::time::timeout(
            crate::limits::NOTICE_LOCK_WAIT,
            self.key_lock(&bucket, &key),
        )
        .await
        .ok();
        let meta = match self.store.object(&bucket, &key).await {
            Ok(m) => m,
            Err(StoreError::NoSuchKey | StoreError::NoSuchBucket) => return Ok(false),
            Err(e) => return Err(e),
        };
        if meta.sync != SyncState::Synced
            || (!change.removed && change.etag.as_deref() == Some(meta.etag.as_str()))
        {
            return Ok(false);
        }
        let dropped = self
            .store
            .delete_if_synced(&bucket, &key, &meta.etag)
            .await?;
        if dropped {
            tracing::info!(
                bucket,
                key,
                removed = change.removed,
                "cached copy dropped: changed upstream"
            );
        }
        Ok(dropped)
    }

    /// Tells the peers that the upstream has this version of a key (or no longer has it).
    pub(super) fn changed_upstream(&self, bucket: &str, key: &str, etag: Option<&str>) {
        if let Some(peers) = &self.peers {
            let (ub, uk) = self.upstream.map(bucket, key);
            peers.notify(Change {
                bucket: ub,
                key: uk,
                etag: etag.map(str::to_owned),
                removed: etag.is_none(),
            });
        }
    }
}

/// The other nodes in front of the same upstream: their admin API's `/storage/events`.
pub struct Peers {
    tx: mpsc::Sender<Change>,
}

impl Peers {
    /// Starts the task that sends batches of changes to `urls` (admin API base URLs), with the
    /// admin bearer token they share.
    pub fn start(urls: Vec<String>, token: Secret) -> Result<Self, String> {
        let client: Client<_, Full<Bytes>> = crate::upstream::https_client(None, "cluster.peers")?;
        let (tx, mut rx) = mpsc::channel::<Change>(PEER_QUEUE);
        let token = Arc::new(token);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + PEER_BATCH_WAIT;
                while batch.len() < PEER_BATCH {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(c)) => batch.push(c),
                        _ => break,
                    }
                }
                let body = Bytes::from(events_json(&batch).to_string());
                for url in &urls {
                    send(&client, url, &token, body.clone(), batch.len()).await;
                }
            }
        });
        Ok(Self { tx })
    }

    fn notify(&self, change: Change) {
        if self.tx.try_send(change).is_err() {
            tracing::warn!(
                "peer notices are backing up: one dropped (peers revalidate after revalidate_after)"
            );
        }
    }
}

async fn send<C>(client: &Client<C, Full<Bytes>>, url: &str, token: &Secret, body: Bytes, n: usize)
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let req = http::Request::post(format!("{}/storage/events", url.trim_end_matches('/')))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.expose()),
        )
        .body(Full::new(body));
    let Ok(req) = req else {
        tracing::warn!(peer = url, "bad peer URL");
        return;
    };
    let answer = tokio::time::timeout(PEER_TIMEOUT, async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        Ok::<_, String>(status)
    })
    .await;
    match answer {
        Ok(Ok(s)) if s.is_success() => tracing::debug!(peer = url, changes = n, "peer told"),
        Ok(Ok(s)) => tracing::warn!(peer = url, status = s.as_u16(), "a peer refused a notice"),
        Ok(Err(e)) => tracing::warn!(peer = url, error = %e, "cannot reach a peer"),
        Err(_) => tracing::warn!(peer = url, "a peer did not answer a notice in time"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minio_and_aws_records_are_read_and_others_skipped() {
        let minio = br#"{"EventName":"s3:ObjectCreated:Put","Key":"images/a b+c.jpg","Records":[
            {"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-12-01T10:00:00.000Z",
             "eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"minio"},
             "requestParameters":{"sourceIPAddress":"127.0.0.1"},
             "responseElements":{"x-amz-request-id":"17C9A2F3B6D4E1A0"},
             "s3":{"s3SchemaVersion":"1.0","configurationId":"Config",
                   "bucket":{"name":"images","ownerIdentity":{"principalId":"minio"},"arn":"arn:aws:s3:::images"},
                   "object":{"key":"a+b%2Bc.jpg","size":5,"eTag":"5d41402abc4b2a76b9719d911017c592",
                             "contentType":"image/jpeg","userMetadata":{"content-type":"image/jpeg"},
                             "sequencer":"17C9A2F3B6D4E1A0"}}}]}"#;
        assert_eq!(
            parse_events(minio).expect("parses"),
            vec![Change {
                bucket: "images".into(),
                key: "a b+c.jpg".into(),
                etag: Some("5d41402abc4b2a76b9719d911017c592".into()),
                removed: false,
            }]
        );
        let aws = br#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}},
                                  {"eventName":"ObjectTagging:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        let changes = parse_events(aws).expect("parses");
        assert_eq!(changes.len(), 1);
        assert!(changes[0].removed && changes[0].etag.is_none());
        assert!(parse_events(b"{}").is_err());
        assert!(parse_events(b"not json").is_err());
    }

    #[test]
    fn peer_notices_parse_back() {
        let changes = vec![
            Change {
                bucket: "b".into(),
                key: "dir/a b+c%.txt".into(),
                etag: Some("e1".into()),
                removed: false,
            },
            Change {
                bucket: "b".into(),
                key: "gone".into(),
                etag: None,
                removed: true,
            },
        ];
        let text = events_json(&changes).to_string();
        assert_eq!(parse_events(text.as_bytes()).expect("parses"), changes);
    }
}
