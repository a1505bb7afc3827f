//! A circuit breaker in front of the upstream: after `threshold` consecutive failures it opens and
//! refuses calls for `cooldown`; then one half-open probe decides whether it closes again. Every
//! state change is logged with its reason.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
struct Inner {
    state: CircuitState,
    failures: u32,
    opened_at: Option<Instant>,
    probe_in_flight: bool,
    last_error: Option<String>,
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            inner: Mutex::new(Inner {
                state: CircuitState::Closed,
                failures: 0,
                opened_at: None,
                probe_in_flight: false,
                last_error: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn state(&self) -> CircuitState {
        self.lock().state
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// A permit for one call, or `None` while the circuit is open. In the open state, once the
    /// cooldown has passed, exactly one caller gets a permit as the half-open probe. A permit
    /// dropped without a verdict (the call was abandoned) releases the probe slot.
    pub fn allow(&self, now: Instant) -> Option<Permit<'_>> {
        let mut g = self.lock();
        let probe = match g.state {
            CircuitState::Closed => false,
            CircuitState::Open => {
                if g.opened_at
                    .is_some_and(|t| now.duration_since(t) >= self.cooldown)
                {
                    g.state = CircuitState::HalfOpen;
                    crate::metrics::circuit_changed(CircuitState::HalfOpen);
                    g.probe_in_flight = true;
                    tracing::info!(
                        circuit = "half-open",
                        reason = "cooldown elapsed",
                        "upstream circuit: sending a probe"
                    );
                    true
                } else {
                    return None;
                }
            }
            CircuitState::HalfOpen => {
                if g.probe_in_flight {
                    return None;
                }
                g.probe_in_flight = true;
                true
            }
        };
        Some(Permit {
            breaker: self,
            probe,
            settled: false,
        })
    }

    fn success(&self) {
        let mut g = self.lock();
        if g.state != CircuitState::Closed {
            tracing::info!(
                circuit = "closed",
                reason = "a call succeeded",
                "upstream circuit closed"
            );
            crate::metrics::circuit_changed(CircuitState::Closed);
        }
        g.state = CircuitState::Closed;
        g.failures = 0;
        g.opened_at = None;
        g.probe_in_flight = false;
    }

    fn failure(&self, reason: &str, now: Instant) {
        let mut g = self.lock();
        g.failures = g.failures.saturating_add(1);
        g.last_error = Some(reason.to_owned());
        g.probe_in_flight = false;
        let open = match g.state {
            CircuitState::HalfOpen => true,
            CircuitState::Closed => g.failures >= self.threshold,
            CircuitState::Open => false,
        };
        if open {
            tracing::warn!(
                circuit = "open",
                failures = g.failures,
                reason,
                "upstream circuit opened"
            );
            g.state = CircuitState::Open;
            crate::metrics::circuit_changed(CircuitState::Open);
            g.opened_at = Some(now);
        }
    }
}

/// The right to make one upstream call; report how it went with `success` or `failure`.
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    settled: bool,
}

impl Permit<'_> {
    /// The upstream answered (even with an error that is not an outage).
    pub fn success(mut self) {
        self.settled = true;
        self.breaker.success();
    }

    /// The upstream is down, overloaded or unreachable.
    pub fn failure(mut self, reason: &str, now: Instant) {
        self.settled = true;
        self.breaker.failure(reason, now);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.settled && self.probe {
            self.breaker.lock().probe_in_flight = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_then_probes_once() {
        let b = Breaker::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for _ in 0..2 {
            b.allow(t0).unwrap().failure("boom", t0);
        }
        assert_eq!(b.state(), CircuitState::Closed);
        b.allow(t0).unwrap().failure("boom", t0);
        assert_eq!(b.state(), CircuitState::Open);
        assert!(b.allow(t0 + Duration::from_secs(5)).is_none());
        let later = t0 + Duration::from_secs(11);
        let probe = b.allow(later).unwrap();
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(b.allow(later).is_none(), "only one probe at a time");
        probe.failure("still down", later);
        assert_eq!(b.state(), CircuitState::Open);
        let much_later = later + Duration::from_secs(11);
        b.allow(much_later).unwrap().success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(b.allow(much_later).is_some());
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let b = Breaker::new(1, Duration::from_secs(1));
        let t0 = Instant::now();
        b.allow(t0).unwrap().failure("boom", t0);
        let later = t0 + Duration::from_secs(2);
        drop(b.allow(later).unwrap());
        assert!(
            b.allow(later).is_some(),
            "a dropped probe must not wedge the circuit"
        );
    }
}
