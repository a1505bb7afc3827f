//! Which cached copies to evict first: the least recently read (issue 12, item 1). Pure: the
//! catalog's scan (`catalog/cache.rs`) feeds every evictable object through `Oldest`, which
//! keeps only the `limit` oldest in a bounded heap, so a scan of a million objects holds a few
//! thousand candidates in memory and the eviction task works through them over several
//! wake-ups before it needs to scan again.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A synced cached copy that may be evicted, with what the eviction checks again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// When it was last read (or, never read, cached or last checked): ms since the epoch.
    pub last_access_ms: i64,
    pub bucket: String,
    pub key: String,
    /// The version this was decided on: `Store::delete_if_synced` removes only that one.
    pub etag: String,
    pub size: u64,
    pub blobs: Vec<String>,
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.last_access_ms, &self.bucket, &self.key).cmp(&(
            other.last_access_ms,
            &other.bucket,
            &other.key,
        ))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// When an object was last used: its last recorded read (in memory or persisted), else the
/// later of when it was cached or last checked (`validated_ms`) and its `last_modified_ms`.
pub fn last_access(
    recent: Option<i64>,
    persisted: Option<i64>,
    validated_ms: i64,
    last_modified_ms: i64,
) -> i64 {
    recent
        .into_iter()
        .chain(persisted)
        .max()
        .unwrap_or_else(|| validated_ms.max(last_modified_ms))
}

/// The `limit` least recently used candidates of everything offered.
pub struct Oldest {
    limit: usize,
    /// A max-heap: the newest kept candidate is on top, and leaves first when a older one comes.
    heap: BinaryHeap<Candidate>,
}

impl Oldest {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            heap: BinaryHeap::with_capacity(limit.saturating_add(1)),
        }
    }

    pub fn offer(&mut self, c: Candidate) {
        if self.limit == 0 {
            return;
        }
        if self.heap.len() < self.limit {
            self.heap.push(c);
        } else if self.heap.peek().is_some_and(|top| c < *top) {
            self.heap.pop();
            self.heap.push(c);
        }
    }

    /// The kept candidates, least recently used first.
    pub fn into_sorted(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(key: &str, t: i64) -> Candidate {
        Candidate {
            last_access_ms: t,
            bucket: "b".into(),
            key: key.into(),
            etag: "e".into(),
            size: 1,
            blobs: vec![],
        }
    }

    fn keys(v: &[Candidate]) -> Vec<&str> {
        v.iter().map(|c| c.key.as_str()).collect()
    }

    #[test]
    fn the_least_recently_used_come_first_and_only_the_oldest_are_kept() {
        let mut o = Oldest::new(3);
        for (k, t) in [
            ("e", 50),
            ("a", 10),
            ("d", 40),
            ("b", 20),
            ("c", 30),
            ("f", 5),
        ] {
            o.offer(cand(k, t));
        }
        assert_eq!(keys(&o.into_sorted()), ["f", "a", "b"]);
        let mut all = Oldest::new(10);
        for (k, t) in [("x", 2), ("y", 1), ("w", 2)] {
            all.offer(cand(k, t));
        }
        assert_eq!(keys(&all.into_sorted()), ["y", "w", "x"], "ties by key");
        let mut none = Oldest::new(0);
        none.offer(cand("a", 1));
        assert!(none.into_sorted().is_empty());
    }

    #[test]
    fn a_read_makes_an_object_younger_than_its_own_times() {
        // Never read: the later of cached/checked and last modified.
        assert_eq!(last_access(None, None, 100, 40), 100);
        assert_eq!(last_access(None, None, 0, 40), 40);
        // A read, persisted or still in memory, wins; the later of the two.
        assert_eq!(last_access(None, Some(500), 100, 40), 500);
        assert_eq!(last_access(Some(700), Some(500), 100, 40), 700);
        assert_eq!(last_access(Some(300), Some(500), 100, 40), 500);
        // So an object read recently outlives one cached recently but never read since.
        let read = cand("read", last_access(Some(900), None, 100, 0));
        let cached = cand("cached", last_access(None, None, 800, 0));
        let mut o = Oldest::new(1);
        o.offer(read);
        o.offer(cached);
        assert_eq!(keys(&o.into_sorted()), ["cached"]);
    }
}
