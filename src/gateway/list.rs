//! Listing in gateway mode: when the upstream answers, its listing is the truth, merged with
//! what the outbox has not replayed yet (queued puts shown, queued deletes hidden); when it does
//! not, the listing comes from the local index. `merge` is a pure function of the query, the
//! upstream's page and the queued entries, so its rules are unit-tested here.

use http::Method;

use super::Gateway;
use crate::error::S3Result;
use crate::limits::{LOCAL_ONLY_SCAN, UPSTREAM_LISTING_BODY};
use crate::store::outbox::OutboxOp;
use crate::store::{ListPage, ListQuery, ObjectMeta, SyncState};
use crate::upstream::{UpstreamError, UpstreamRequest};

/// An outbox entry under the listed prefix.
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived, one per request or entry; boxing would only add an allocation"
)]
#[derive(Debug, Clone)]
pub enum Queued {
    /// A write not yet upstream, with its local metadata when it is listed as an object.
    Put {
        key: String,
        meta: Option<ObjectMeta>,
    },
    /// A delete not yet upstream.
    Delete { key: String },
}

impl Gateway {
    pub async fn list(&self, bucket: &str, q: ListQuery) -> S3Result<ListPage> {
        // `max-keys=0` asks for nothing: an empty, untruncated page, as local-only answers
        // (an upstream may say otherwise, or refuse 0).
        if q.max_keys == 0 {
            self.store.bucket(bucket).await?;
            return Ok(ListPage::default());
        }
        let page = match self.upstream_page(bucket, &q).await {
            Ok(page) => page,
            Err(e) => {
                tracing::info!(bucket, error = %e, "upstream listing failed: listing from the local index");
                let mut page = self.store.list(bucket, q).await?;
                page.from_local_index = true;
                return Ok(page);
            }
        };
        let horizon = horizon(&page);
        let mut queued = Vec::new();
        for op in self.store.pending_under(bucket, &q.prefix).await? {
            match op {
                OutboxOp::Delete { key, .. } => queued.push(Queued::Delete { key }),
                OutboxOp::Revert { .. } => {}
                OutboxOp::Put { key, .. } => {
                    let meta = if listed_as_object(&q, horizon.as_deref(), &key) {
                        self.store.object(bucket, &key).await.ok()
                    } else {
                        None
                    };
                    queued.push(Queued::Put { key, meta });
                }
            }
        }
        // Objects written before gateway mode was on (not yet synced by `lifeboat sync`) are
        // listed too: the upstream does not have them.
        queued.extend(
            self.local_only_in_window(bucket, &q, horizon.as_deref())
                .await?,
        );
        Ok(merge(&q, page, queued))
    }

    /// The local-only objects of the listing's window, and under a delimiter the common
    /// prefixes of the local index (each counted once), up to `max_keys` entries; read from
    /// the index only when the bucket has local-only objects (the usage totals say so). A
    /// common prefix of synced copies only is one the upstream lists anyway.
    async fn local_only_in_window(
        &self,
        bucket: &str,
        q: &ListQuery,
        horizon: Option<&str>,
    ) -> S3Result<Vec<Queued>> {
        let usage = self.store.usage_by_bucket().await?;
        if usage.get(bucket).is_none_or(|u| u.objects.local_only == 0) {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let mut after = q.start_after.clone();
        loop {
            let page = self
                .store
                .list(
                    bucket,
                    ListQuery {
                        prefix: q.prefix.clone(),
                        delimiter: q.delimiter.clone(),
                        start_after: after.clone(),
                        max_keys: LOCAL_ONLY_SCAN,
                    },
                )
                .await?;
            let mut entries: Vec<(String, Option<ObjectMeta>)> = page
                .objects
                .into_iter()
                .filter(|(_, m)| m.sync == SyncState::LocalOnly)
                .map(|(k, m)| (k, Some(m)))
                .chain(page.common_prefixes.into_iter().map(|p| (p, None)))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, meta) in entries {
                if horizon.is_some_and(|h| key.as_str() > h) {
                    return Ok(found);
                }
                found.push(Queued::Put { key, meta });
                if found.len() >= q.max_keys {
                    return Ok(found);
                }
            }
            if !page.is_truncated || page.last.is_none() {
                return Ok(found);
            }
            after = page.last;
        }
    }

    async fn upstream_page(&self, bucket: &str, q: &ListQuery) -> Result<ListPage, UpstreamError> {
        let base = self.upstream.key_prefix(bucket);
        let (ub, _) = self.upstream.map(bucket, "");
        let mut r = UpstreamRequest::new(Method::GET, &ub, None)
            .query("list-type", "2")
            .query("prefix", format!("{base}{}", q.prefix))
            .query("max-keys", q.max_keys.max(1).to_string());
        if let Some(d) = &q.delimiter {
            r = r.query("delimiter", d.clone());
        }
        if let Some(s) = &q.start_after {
            r = r.query("start-after", format!("{base}{s}"));
        }
        let resp = self.upstream.send(&r).await?;
        let body = self.upstream.read_body(resp, UPSTREAM_LISTING_BODY).await?;
        let root = crate::xml::parse(&body)
            .map_err(|_| UpstreamError::Local("unreadable upstream listing".into()))?;
        Ok(parse_page(&root, &base, q))
    }
}

fn listed_meta(size: u64, etag: String, last_modified_ms: i64) -> ObjectMeta {
    ObjectMeta {
        segments: Vec::new(),
        size,
        etag,
        last_modified_ms,
        content: Default::default(),
        user_metadata: Vec::new(),
        checksum: None,
        multipart: false,
        tags: Vec::new(),
        acl: None,
        sync: SyncState::Synced,
        validated_ms: 0,
        sse: None,
    }
}

/// A ListObjectsV2 answer of the upstream, with the bucket map's key prefix `base` removed.
fn parse_page(root: &crate::xml::Element, base: &str, q: &ListQuery) -> ListPage {
    let strip = |k: &str| k.strip_prefix(base).unwrap_or(k).to_owned();
    let mut page = ListPage {
        is_truncated: root.child_text("IsTruncated") == Some("true"),
        ..ListPage::default()
    };
    for c in root.children_named("Contents") {
        let Some(key) = c.child_text("Key") else {
            continue;
        };
        let lm = c
            .child_text("LastModified")
            .and_then(crate::time::parse_iso_date_ms)
            .unwrap_or(0);
        let size = c
            .child_text("Size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let etag = c
            .child_text("ETag")
            .unwrap_or("")
            .trim_matches('"')
            .to_owned();
        page.objects.push((strip(key), listed_meta(size, etag, lm)));
    }
    for p in root.children_named("CommonPrefixes") {
        if let Some(prefix) = p.child_text("Prefix") {
            let cp = strip(prefix);
            // A prefix the previous page ended on is not repeated.
            if q.start_after.as_deref() != Some(cp.as_str()) {
                page.common_prefixes.push(cp);
            }
        }
    }
    // S3 lists in byte order; some upstreams (SeaweedFS) return common prefixes in their own.
    page.objects.sort_by(|a, b| a.0.cmp(&b.0));
    page.common_prefixes.sort();
    // Where the upstream page ended: the next page starts there even if every entry on this
    // one is hidden by a queued delete.
    page.last = last_of(&page);
    page
}

/// How far the upstream page reaches: its last entry when truncated, else everything.
fn horizon(page: &ListPage) -> Option<String> {
    if page.is_truncated {
        page.last.clone()
    } else {
        None
    }
}

fn in_window(q: &ListQuery, horizon: Option<&str>, key: &str) -> bool {
    q.start_after.as_deref().is_none_or(|s| key > s) && horizon.is_none_or(|h| key <= h)
}

/// The common prefix a key rolls up into under the query's delimiter.
fn rolled_up(q: &ListQuery, key: &str) -> Option<String> {
    let d = q.delimiter.as_deref().filter(|d| !d.is_empty())?;
    let rest = key.get(q.prefix.len()..)?;
    rest.find(d)
        .map(|i| key[..q.prefix.len() + i + d.len()].to_owned())
}

/// Whether a queued put is shown as an object (so its metadata is needed).
pub fn listed_as_object(q: &ListQuery, horizon: Option<&str>, key: &str) -> bool {
    in_window(q, horizon, key) && rolled_up(q, key).is_none()
}

/// Overlays the outbox's queued puts and deletes on an upstream page.
pub fn merge(q: &ListQuery, mut page: ListPage, queued: Vec<Queued>) -> ListPage {
    if queued.is_empty() {
        return page;
    }
    let horizon = horizon(&page);
    page.last = None;
    for entry in queued {
        match entry {
            Queued::Delete { key } => page.objects.retain(|(k, _)| *k != key),
            Queued::Put { key, meta } => {
                if !in_window(q, horizon.as_deref(), &key) {
                    continue;
                }
                match rolled_up(q, &key) {
                    Some(cp) => {
                        if !page.common_prefixes.contains(&cp)
                            && q.start_after.as_deref() != Some(cp.as_str())
                        {
                            page.common_prefixes.push(cp);
                        }
                    }
                    None => {
                        if let Some(meta) = meta {
                            page.objects.retain(|(k, _)| *k != key);
                            page.objects.push((key, meta));
                        }
                    }
                }
            }
        }
    }
    page.objects.sort_by(|a, b| a.0.cmp(&b.0));
    page.common_prefixes.sort();
    // Trim back to max-keys over keys and prefixes together, in order.
    let mut all: Vec<(String, bool)> = page
        .objects
        .iter()
        .map(|(k, _)| (k.clone(), true))
        .chain(page.common_prefixes.iter().map(|p| (p.clone(), false)))
        .collect();
    all.sort();
    if all.len() > q.max_keys {
        let cut = &all[q.max_keys..];
        page.objects
            .retain(|(k, _)| !cut.iter().any(|(c, o)| *o && c == k));
        page.common_prefixes
            .retain(|p| !cut.iter().any(|(c, o)| !*o && c == p));
        page.is_truncated = true;
        page.last = last_of(&page);
    } else {
        page.last = last_of(&page).max(horizon);
    }
    page
}

fn last_of(page: &ListPage) -> Option<String> {
    let k = page.objects.last().map(|(k, _)| k.clone());
    let p = page.common_prefixes.last().cloned();
    k.max(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(prefix: &str, delimiter: Option<&str>, after: Option<&str>, max: usize) -> ListQuery {
        ListQuery {
            prefix: prefix.into(),
            delimiter: delimiter.map(Into::into),
            start_after: after.map(Into::into),
            max_keys: max,
        }
    }

    fn upstream(keys: &[&str], prefixes: &[&str], truncated: bool) -> ListPage {
        let mut page = ListPage {
            objects: keys
                .iter()
                .map(|k| (k.to_string(), listed_meta(1, "up".into(), 0)))
                .collect(),
            common_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
            is_truncated: truncated,
            ..ListPage::default()
        };
        page.last = last_of(&page);
        page
    }

    fn put(key: &str) -> Queued {
        Queued::Put {
            key: key.into(),
            meta: Some(listed_meta(2, "local".into(), 0)),
        }
    }

    fn keys(p: &ListPage) -> Vec<&str> {
        p.objects.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn queued_puts_are_shown_and_queued_deletes_hidden() {
        let page = upstream(&["a", "c"], &[], false);
        let merged = merge(
            &q("", None, None, 1000),
            page,
            vec![put("b"), Queued::Delete { key: "c".into() }],
        );
        assert_eq!(keys(&merged), ["a", "b"]);
        assert_eq!(merged.objects[1].1.etag, "local", "the local version wins");
        assert!(!merged.is_truncated);
    }

    #[test]
    fn a_queued_put_replaces_the_upstream_version_of_its_key() {
        let merged = merge(
            &q("", None, None, 1000),
            upstream(&["a"], &[], false),
            vec![put("a")],
        );
        assert_eq!(keys(&merged), ["a"]);
        assert_eq!(merged.objects[0].1.etag, "local");
    }

    #[test]
    fn queued_puts_roll_up_under_the_delimiter() {
        let merged = merge(
            &q("", Some("/"), None, 1000),
            upstream(&["a"], &["p/"], false),
            vec![put("p/x"), put("q/y")],
        );
        assert_eq!(keys(&merged), ["a"]);
        assert_eq!(merged.common_prefixes, ["p/", "q/"]);
    }

    #[test]
    fn a_truncated_upstream_page_keeps_later_queued_puts_for_the_next_page() {
        // The upstream page ends at "b": a queued "z" belongs to a later page, and the next
        // page starts after "b" even though the delete hides it here.
        let merged = merge(
            &q("", None, None, 2),
            upstream(&["a", "b"], &[], true),
            vec![put("z"), Queued::Delete { key: "b".into() }],
        );
        assert_eq!(keys(&merged), ["a"]);
        assert!(merged.is_truncated);
        assert_eq!(merged.last.as_deref(), Some("b"));
        let next = merge(
            &q("", None, Some("b"), 2),
            upstream(&[], &[], false),
            vec![put("z")],
        );
        assert_eq!(keys(&next), ["z"]);
    }

    #[test]
    fn merged_pages_are_trimmed_to_max_keys_in_order() {
        let merged = merge(
            &q("", None, None, 2),
            upstream(&["b", "d"], &[], false),
            vec![put("a"), put("c")],
        );
        assert_eq!(keys(&merged), ["a", "b"]);
        assert!(merged.is_truncated);
        assert_eq!(merged.last.as_deref(), Some("b"));
    }

    #[test]
    fn queued_entries_before_start_after_are_not_repeated() {
        let merged = merge(
            &q("", Some("/"), Some("p/"), 1000),
            upstream(&["q"], &[], false),
            vec![put("a"), put("p/x")],
        );
        assert_eq!(keys(&merged), ["q"]);
        assert!(merged.common_prefixes.is_empty());
    }
}
