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

    /// Whether a call may go out now. In the open state, once the cooldown has passed, exactly
    /// one caller is let through as the half-open probe.
    pub fn allow(&self, now: Instant) -> bool {
        let mut g = self.lock();
        match g.state {
            CircuitState::Closed => true,
            CircuitState::Open => {
                if g.opened_at
                    .is_some_and(|t| now.duration_since(t) >= self.cooldown)
                {
                    g.state = CircuitState::HalfOpen;
                    g.probe_in_flight = true;
                    tracing::info!(
                        circuit = "half-open",
                        reason = "cooldown elapsed",
                        "upstream circuit: sending a probe"
                    );
                    true
                } else {
                    false
                }
            }
            CircuitState::HalfOpen => {
                if g.probe_in_flight {
                    false
                } else {
                    g.probe_in_flight = true;
                    true
                }
            }
        }
    }

    pub fn success(&self) {
        let mut g = self.lock();
        if g.state != CircuitState::Closed {
            tracing::info!(
                circuit = "closed",
                reason = "a call succeeded",
                "upstream circuit closed"
            );
        }
        g.state = CircuitState::Closed;
        g.failures = 0;
        g.opened_at = None;
        g.probe_in_flight = false;
    }

    pub fn failure(&self, reason: &str, now: Instant) {
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
            g.opened_at = Some(now);
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
            b.failure("boom", t0);
        }
        assert_eq!(b.state(), CircuitState::Closed);
        b.failure("boom", t0);
        assert_eq!(b.state(), CircuitState::Open);
        assert!(!b.allow(t0 + Duration::from_secs(5)));
        let later = t0 + Duration::from_secs(11);
        assert!(b.allow(later));
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(!b.allow(later), "only one probe at a time");
        b.failure("still down", later);
        assert_eq!(b.state(), CircuitState::Open);
        let much_later = later + Duration::from_secs(11);
        assert!(b.allow(much_later));
        b.success();
        assert_eq!(b.state(), CircuitState::Closed);
        assert!(b.allow(much_later));
    }
}
