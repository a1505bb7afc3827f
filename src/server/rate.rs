//! `limits.requests_per_second`: a token bucket per access key. A request over the rate is
//! answered `503 SlowDown`, as S3 answers one. Keys are authenticated access keys only, so the
//! table is bounded by the configured users.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `None` when `per_second` is 0 (no limit). The burst is at least one request.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0).then(|| Self {
            per_second: f64::from(per_second),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request's token for `key`; false when there is none.
    pub fn admit(&self, key: &str) -> bool {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.per_second;
        *tokens = (*tokens + refill).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_key_gets_its_burst_then_its_rate() {
        let r = RateLimiter::new(10, 3).expect("limited");
        let t = Instant::now();
        assert!((0..3).all(|_| r.admit_at("a", t)));
        assert!(!r.admit_at("a", t));
        assert!(r.admit_at("b", t), "keys are counted apart");
        assert!(r.admit_at("a", t + Duration::from_millis(100)));
        assert!(!r.admit_at("a", t + Duration::from_millis(110)));
        assert!(RateLimiter::new(0, 5).is_none());
    }
}
